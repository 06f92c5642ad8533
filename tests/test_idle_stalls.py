"""Stalls judged by progress, on real graphs: work that keeps showing progress is never idle-
stalled, however long it runs, while silent work beside it is reported while it still runs.

Every test has a silent sibling that must be reported, so a watchdog that reported nothing
would fail it; thresholds are generous (0.3 s of silence against progress every 0.05 s).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import pytest
from helpers import (
    NO_ASYNC_CONFIG_BEFORE_311,
    USER,
    attr,
    await_for,
    events,
    markers,
    metric_points,
    one,
    parent_of,
    toolnode_graph,
    wait_for,
)
from langchain.agents import create_agent
from langchain.tools import ToolRuntime  # noqa: TC002 - the tool decorator reads the annotation
from langchain_core.messages import AIMessage
from langchain_core.tools import BaseTool, tool
from langgraph.config import get_stream_writer
from langgraph.errors import NodeTimeoutError
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.runtime import Runtime  # noqa: TC002 - LangGraph reads the annotation to inject it
from langgraph.types import TimeoutPolicy

import otelstream
from otelstream import names
from otelstream.options import (
    LLM_STALL_ENV,
    TASK_IDLE_ENV,
    TASK_STALL_ENV,
    TOOL_IDLE_ENV,
    TOOL_STALL_ENV,
    Options,
)
from otelstream.testing import FakeStreamingChatModel, tool_calls

if TYPE_CHECKING:
    import threading

    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

IDLE = 0.3
"""The idle threshold: silence this long is a stall."""
BEAT = 0.05
"""How often chatty work shows progress: six times per idle threshold."""
DEADLINE = 5.0
HANG_LIMIT = 20.0
"""Silent or chatty work stops after this long even if a test forgets to release it."""
MODES = ["updates", "messages"]


@pytest.fixture(autouse=True)
def no_stall_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The thresholds come from each test, never from the environment running the suite."""
    for variable in (TOOL_STALL_ENV, LLM_STALL_ENV, TASK_STALL_ENV, TOOL_IDLE_ENV, TASK_IDLE_ENV):
        monkeypatch.delenv(variable, raising=False)


# ---- helpers --------------------------------------------------------------------------------


def traced(
    graph: Any, tracer_provider: TracerProvider, meter_provider: MeterProvider, **options: Any
) -> Any:
    """``graph`` instrumented with the running-time thresholds off unless a test sets them."""
    settings = {
        "tool_stall_threshold": math.inf,
        "llm_stall_threshold": None,
        "task_stall_threshold": None,
        **options,
    }
    return otelstream.instrument(
        graph,
        tracer_provider=tracer_provider,
        meter_provider=meter_provider,
        options=Options(**settings),
    )


def marked(span_exporter: InMemorySpanExporter) -> list[tuple[str, str]]:
    """``(marker name, reason)`` of every marker, sorted."""
    return sorted((m.name, attr(m, names.OTELSTREAM_STALL_REASON)) for m in markers(span_exporter))


def stall_points(reader: InMemoryMetricReader) -> list[tuple[dict[str, Any], int]]:
    """``otelstream.stalls`` data points as (attributes, value)."""
    points = metric_points(reader).get(names.METRIC_STALLS, [])
    return sorted(
        ((dict(p.attributes), p.value) for p in points), key=lambda p: sorted(p[0].items())
    )


def silent_tool(release: threading.Event, name: str = "silent_search") -> BaseTool:
    """A sync tool that shows no progress until ``release`` is set."""

    def run(query: str) -> str:
        release.wait(HANG_LIMIT)
        return f"nothing for {query}"

    return tool(name, description="Search without a word.")(run)


def chatty_tool(release: threading.Event) -> BaseTool:
    """A sync tool that writes progress every ``BEAT`` until ``release`` is set."""

    def run(query: str) -> str:
        writer = get_stream_writer()
        end = time.monotonic() + HANG_LIMIT
        beats = 0
        while not release.wait(BEAT) and time.monotonic() < end:
            beats += 1
            writer({"progress": beats})
        return f"{beats} pages about {query}"

    return tool("chatty_crawl", description="Crawl, reporting each page.")(run)


def agent_calling_both(*tools: BaseTool) -> Any:
    """A ``create_agent`` graph whose model calls ``tools`` at once (one task per call)."""
    calls = tool_calls(*((t.name, {"query": "otel"}, f"call_{t.name}") for t in tools))
    model = FakeStreamingChatModel(responses=[calls, AIMessage(content="All done.")])
    return create_agent(model, tools=list(tools), name="agent")


def in_background(pool: ThreadPoolExecutor, graph: Any) -> Future[list[Any]]:
    """Consume ``graph.stream`` in a worker thread, as an app's request handler would."""
    return pool.submit(lambda: list(graph.stream(USER, stream_mode=MODES)))


def parallel_nodes(**nodes: Any) -> Any:
    """A graph running ``nodes`` side by side in one step."""
    builder = StateGraph(MessagesState)
    for name, node in nodes.items():
        builder.add_node(name, node)
        builder.add_edge(START, name)
        builder.add_edge(name, END)
    return builder.compile(name="side_by_side")


def point(kind: str, key: str, name: str, reason: str) -> tuple[dict[str, Any], int]:
    return {
        names.OTELSTREAM_WORK_KIND: kind,
        key: name,
        names.OTELSTREAM_STALL_REASON: reason,
    }, 1


# ---- tools: custom writes -------------------------------------------------------------------


def test_chatty_tool_is_never_idle_while_a_silent_one_beside_it_is_reported_live(
    tracer_provider: TracerProvider,
    meter_provider: MeterProvider,
    metric_reader: InMemoryMetricReader,
    span_exporter: InMemorySpanExporter,
    release: threading.Event,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A tool writing progress every 0.05 s for many idle thresholds is never marked, while the
    silent tool beside it is marked ``idle`` (marker, counter, log) before it returns."""
    caplog.set_level(logging.WARNING, logger="otelstream")
    graph = traced(
        agent_calling_both(chatty_tool(release), silent_tool(release)),
        tracer_provider,
        meter_provider,
        tool_idle_threshold=IDLE,
    )
    with ThreadPoolExecutor(1) as pool:
        try:
            run = in_background(pool, graph)
            [marker] = wait_for(lambda: markers(span_exporter), "the silent tool's marker")
            # Several more idle thresholds in which the chatty tool could wrongly be marked.
            time.sleep(4 * IDLE)
            assert not run.done()
            assert marked(span_exporter) == [("stalled execute_tool silent_search", "idle")]
            assert attr(marker, names.GEN_AI_TOOL_CALL_ID) == "call_silent_search"
            assert attr(marker, names.OTELSTREAM_STALL_THRESHOLD) == IDLE
            assert attr(marker, names.OTELSTREAM_STALL_AGE) >= IDLE
            assert stall_points(metric_reader) == [
                point("tool", names.GEN_AI_TOOL_NAME, "silent_search", "idle")
            ]
            [log] = [
                r.getMessage() for r in caplog.records if "tool_call_stalled" in r.getMessage()
            ]
            assert "reason=idle" in log
            assert "tool=silent_search" in log
        finally:
            release.set()
        run.result(timeout=DEADLINE)
    spans = span_exporter.get_finished_spans()
    chatty = one(spans, "execute_tool chatty_crawl")
    silent = one(spans, "execute_tool silent_search")
    assert parent_of(spans, marker) is silent
    # It ran through many idle thresholds, writing all along.
    assert attr(chatty, names.OTELSTREAM_CUSTOM_COUNT) >= 5 * IDLE / BEAT
    assert names.OTELSTREAM_STALLED not in (chatty.attributes or {})
    assert events(chatty, names.EVENT_STALL) == []
    assert attr(silent, names.OTELSTREAM_STALLED) is True
    [event] = events(silent, names.EVENT_STALL)
    assert event.attributes[names.OTELSTREAM_STALL_REASON] == "idle"


async def test_chatty_async_tool_is_never_idle_while_a_silent_one_is_reported_live(
    tracer_provider: TracerProvider,
    meter_provider: MeterProvider,
    span_exporter: InMemorySpanExporter,
) -> None:
    """The same with async tools on one event loop: only the silent one is marked, while it
    still awaits."""
    release = asyncio.Event()

    @tool
    async def chatty_fetch(query: str) -> str:
        """Fetch, reporting each page."""
        writer = get_stream_writer()
        for beat in range(int(HANG_LIMIT / BEAT)):
            if release.is_set():
                break
            writer({"progress": beat})
            await asyncio.sleep(BEAT)
        return f"pages about {query}"

    @tool
    async def silent_fetch(query: str) -> str:
        """Fetch without a word."""
        await asyncio.wait_for(release.wait(), HANG_LIMIT)
        return f"nothing for {query}"

    graph = traced(
        agent_calling_both(chatty_fetch, silent_fetch),
        tracer_provider,
        meter_provider,
        tool_idle_threshold=IDLE,
    )

    async def consume() -> list[Any]:
        return [chunk async for chunk in graph.astream(USER, stream_mode=MODES)]

    run = asyncio.create_task(consume())
    try:
        await await_for(lambda: markers(span_exporter), "the silent tool's marker")
        await asyncio.sleep(4 * IDLE)
        assert not run.done()
        assert marked(span_exporter) == [("stalled execute_tool silent_fetch", "idle")]
    finally:
        release.set()
        await asyncio.wait_for(run, DEADLINE)
    chatty = one(span_exporter.get_finished_spans(), "execute_tool chatty_fetch")
    assert attr(chatty, names.OTELSTREAM_CUSTOM_COUNT) >= 5 * IDLE / BEAT
    assert names.OTELSTREAM_STALLED not in (chatty.attributes or {})


def test_a_tools_progress_is_its_tasks_progress(
    tracer_provider: TracerProvider,
    meter_provider: MeterProvider,
    span_exporter: InMemorySpanExporter,
    release: threading.Event,
) -> None:
    """With a task idle threshold, the task running the chatty tool is not marked; the one
    running the silent tool is (and so is the silent tool)."""
    graph = traced(
        agent_calling_both(chatty_tool(release), silent_tool(release)),
        tracer_provider,
        meter_provider,
        tool_idle_threshold=IDLE,
        task_idle_threshold=IDLE,
    )
    with ThreadPoolExecutor(1) as pool:
        try:
            run = in_background(pool, graph)
            wait_for(lambda: len(markers(span_exporter)) >= 2, "the silent tool's two markers")
            time.sleep(4 * IDLE)
            assert not run.done()
            assert marked(span_exporter) == [
                ("stalled execute_tool silent_search", "idle"),
                ("stalled tools", "idle"),
            ]
        finally:
            release.set()
        run.result(timeout=DEADLINE)
    spans = span_exporter.get_finished_spans()
    silent_task = parent_of(spans, one(spans, "execute_tool silent_search"))
    chatty_task = parent_of(spans, one(spans, "execute_tool chatty_crawl"))
    [task_marker] = [m for m in markers(span_exporter) if m.name == "stalled tools"]
    assert parent_of(spans, task_marker) is silent_task
    assert chatty_task is not None
    assert names.OTELSTREAM_STALLED not in (chatty_task.attributes or {})


def test_tool_output_deltas_are_progress_in_a_v3_run(
    tracer_provider: TracerProvider,
    meter_provider: MeterProvider,
    span_exporter: InMemorySpanExporter,
    release: threading.Event,
) -> None:
    """Traced through LangGraph's v3 protocol (``otelstream.transformer()``), a tool streaming a
    ``tool-output-delta`` every 0.05 s is not marked idle; the silent tool beside it in the same
    ``ToolNode`` is, while it still runs."""

    @tool
    def tail_log(query: str, runtime: ToolRuntime) -> str:
        """Tail a log, streaming each line."""
        end = time.monotonic() + HANG_LIMIT
        lines = 0
        while not release.wait(BEAT) and time.monotonic() < end:
            lines += 1
            runtime.emit_output_delta(f"line {lines}")
        return f"{lines} lines about {query}"

    calls = tool_calls(
        ("tail_log", {"query": "otel"}, "call_tail"),
        ("silent_search", {"query": "otel"}, "call_silent"),
    )
    model = FakeStreamingChatModel(responses=[calls, AIMessage(content="All done.")])
    graph = toolnode_graph(model, [tail_log, silent_tool(release)])
    factory = otelstream.transformer(
        tracer_provider=tracer_provider,
        meter_provider=meter_provider,
        options=Options(
            tool_stall_threshold=math.inf, llm_stall_threshold=None, tool_idle_threshold=IDLE
        ),
    )

    def consume() -> list[Any]:
        return list(graph.stream_events(USER, version="v3", transformers=[factory]))

    with ThreadPoolExecutor(1) as pool:
        try:
            run = pool.submit(consume)
            wait_for(lambda: markers(span_exporter), "the silent tool's marker")
            time.sleep(4 * IDLE)
            assert not run.done()
            assert marked(span_exporter) == [("stalled execute_tool silent_search", "idle")]
        finally:
            release.set()
        run.result(timeout=DEADLINE)
    tail = one(span_exporter.get_finished_spans(), "execute_tool tail_log")
    assert names.OTELSTREAM_STALLED not in (tail.attributes or {})


# ---- model chunks -----------------------------------------------------------------------------


def test_a_models_chunks_are_progress_of_the_tool_and_task_calling_it(
    tracer_provider: TracerProvider,
    meter_provider: MeterProvider,
    span_exporter: InMemorySpanExporter,
    release: threading.Event,
) -> None:
    """A tool whose model streams a chunk every 0.05 s for many idle thresholds is not marked,
    nor is its task; the silent tool and its task beside it are."""
    words = " ".join(f"w{i}" for i in range(int(8 * IDLE / BEAT)))
    writer_model = FakeStreamingChatModel(
        responses=[AIMessage(content=words)], chunk_delay=BEAT, model_name="slow-writer"
    )

    @tool
    def summarize(query: str) -> str:
        """Summarize with a model that streams slowly."""
        return str(writer_model.invoke(f"summarize {query}").content)

    graph = traced(
        agent_calling_both(summarize, silent_tool(release)),
        tracer_provider,
        meter_provider,
        tool_idle_threshold=IDLE,
        task_idle_threshold=IDLE,
    )
    with ThreadPoolExecutor(1) as pool:
        try:
            run = in_background(pool, graph)
            wait_for(lambda: len(markers(span_exporter)) >= 2, "the silent tool's two markers")
            # The summary streams for 8 idle thresholds: wait until it is done.
            wait_for(
                lambda: [
                    s for s in span_exporter.get_finished_spans() if s.name == "chat slow-writer"
                ],
                "the slow model's answer",
            )
            assert not run.done()
            assert marked(span_exporter) == [
                ("stalled execute_tool silent_search", "idle"),
                ("stalled tools", "idle"),
            ]
        finally:
            release.set()
        run.result(timeout=DEADLINE)
    spans = span_exporter.get_finished_spans()
    chat = one(spans, "chat slow-writer")
    summary = one(spans, "execute_tool summarize")
    assert parent_of(spans, chat) is summary
    assert attr(chat, names.OTELSTREAM_CHUNK_COUNT_TOTAL) > 8 * IDLE / BEAT
    assert names.OTELSTREAM_STALLED not in (summary.attributes or {})
    summary_task = parent_of(spans, summary)
    assert summary_task is not None
    assert names.OTELSTREAM_STALLED not in (summary_task.attributes or {})


@NO_ASYNC_CONFIG_BEFORE_311
async def test_a_models_chunks_are_progress_of_the_node_calling_it_async(
    tracer_provider: TracerProvider,
    meter_provider: MeterProvider,
    span_exporter: InMemorySpanExporter,
) -> None:
    """An async node streaming a slow model's answer is not marked idle; a silent async node
    beside it is, while it still awaits."""
    release = asyncio.Event()
    words = " ".join(f"w{i}" for i in range(int(8 * IDLE / BEAT)))
    model = FakeStreamingChatModel(
        responses=[AIMessage(content=words)], chunk_delay=BEAT, model_name="slow-writer"
    )

    async def write(state: MessagesState) -> dict[str, Any]:
        return {"messages": [await model.ainvoke(state["messages"])]}

    async def wait(state: MessagesState) -> dict[str, Any]:
        await asyncio.wait_for(release.wait(), HANG_LIMIT)
        return {}

    graph = traced(
        parallel_nodes(write=write, wait=wait),
        tracer_provider,
        meter_provider,
        task_idle_threshold=IDLE,
    )

    async def consume() -> list[Any]:
        return [chunk async for chunk in graph.astream(USER, stream_mode=MODES)]

    run = asyncio.create_task(consume())
    try:
        await await_for(lambda: markers(span_exporter), "the silent node's marker")
        await await_for(
            lambda: [s for s in span_exporter.get_finished_spans() if s.name == "chat slow-writer"],
            "the slow model's answer",
        )
        assert not run.done()
        assert marked(span_exporter) == [("stalled wait", "idle")]
    finally:
        release.set()
        await asyncio.wait_for(run, DEADLINE)
    write_span = one(span_exporter.get_finished_spans(), "write")
    assert names.OTELSTREAM_STALLED not in (write_span.attributes or {})


# ---- runtime.heartbeat() and TimeoutPolicy ----------------------------------------------------


def test_a_node_calling_runtime_heartbeat_is_not_idle(
    tracer_provider: TracerProvider,
    meter_provider: MeterProvider,
    span_exporter: InMemorySpanExporter,
    release: threading.Event,
) -> None:
    """A sync node that only calls ``runtime.heartbeat()`` (a no-op for LangGraph without a
    TimeoutPolicy) is not marked idle; a silent node beside it is."""

    def beat(state: MessagesState, runtime: Runtime[Any]) -> dict[str, Any]:
        end = time.monotonic() + HANG_LIMIT
        while not release.wait(BEAT) and time.monotonic() < end:
            runtime.heartbeat()
        return {}

    def wait(state: MessagesState) -> dict[str, Any]:
        release.wait(HANG_LIMIT)
        return {}

    graph = traced(
        parallel_nodes(beat=beat, wait=wait),
        tracer_provider,
        meter_provider,
        task_idle_threshold=IDLE,
    )
    with ThreadPoolExecutor(1) as pool:
        try:
            run = in_background(pool, graph)
            wait_for(lambda: markers(span_exporter), "the silent node's marker")
            time.sleep(4 * IDLE)
            assert not run.done()
            assert marked(span_exporter) == [("stalled wait", "idle")]
        finally:
            release.set()
        run.result(timeout=DEADLINE)
    beat_span = one(span_exporter.get_finished_spans(), "beat")
    assert names.OTELSTREAM_STALLED not in (beat_span.attributes or {})


async def test_heartbeats_under_a_timeout_policy_reach_langgraph_and_count_as_progress(
    tracer_provider: TracerProvider,
    meter_provider: MeterProvider,
    span_exporter: InMemorySpanExporter,
) -> None:
    """A node under ``TimeoutPolicy(idle_timeout=0.3, refresh_on="heartbeat")`` that heartbeats
    every 0.05 s for several windows completes (LangGraph's idle clock got every heartbeat
    through otelstream's) and is not marked idle; a silent node beside it is."""
    release = asyncio.Event()

    async def beat(state: MessagesState, runtime: Runtime[Any]) -> dict[str, Any]:
        for _ in range(int(6 * IDLE / BEAT)):
            runtime.heartbeat()
            await asyncio.sleep(BEAT)
        release.set()
        return {"messages": [AIMessage(content="beaten")]}

    async def wait(state: MessagesState) -> dict[str, Any]:
        await asyncio.wait_for(release.wait(), HANG_LIMIT)
        return {}

    builder = StateGraph(MessagesState)
    builder.add_node("beat", beat, timeout=TimeoutPolicy(idle_timeout=IDLE, refresh_on="heartbeat"))
    builder.add_node("wait", wait)
    for name in ("beat", "wait"):
        builder.add_edge(START, name)
        builder.add_edge(name, END)
    graph = traced(builder.compile(), tracer_provider, meter_provider, task_idle_threshold=IDLE)
    try:
        result = await asyncio.wait_for(graph.ainvoke(USER), DEADLINE + HANG_LIMIT)
    finally:
        release.set()
    assert result["messages"][-1].content == "beaten"
    assert marked(span_exporter) == [("stalled wait", "idle")]
    beat_span = one(span_exporter.get_finished_spans(), "beat")
    assert names.OTELSTREAM_STALLED not in (beat_span.attributes or {})


def test_a_nodes_idle_timeout_is_its_idle_threshold(
    tracer_provider: TracerProvider,
    meter_provider: MeterProvider,
    span_exporter: InMemorySpanExporter,
    release: threading.Event,
) -> None:
    """A node under ``TimeoutPolicy(idle_timeout=0.3)`` is marked idle at 0.3 s with no task
    idle threshold set. It blocks its event loop, so LangGraph's own idle timer cannot fire:
    the case where only the watchdog thread sees it, while it still runs."""

    async def block(state: MessagesState) -> dict[str, Any]:
        release.wait(HANG_LIMIT)  # blocks the loop, as a sync client inside async code does
        return {}

    builder = StateGraph(MessagesState)
    builder.add_node("block", block, timeout=TimeoutPolicy(idle_timeout=IDLE))
    builder.add_edge(START, "block")
    builder.add_edge("block", END)
    # Some threshold on, so the watchdog thread runs (the tool threshold is on by default).
    graph = traced(builder.compile(), tracer_provider, meter_provider, tool_stall_threshold=30.0)

    def consume() -> list[Any]:
        async def stream() -> list[Any]:
            return [chunk async for chunk in graph.astream(USER, stream_mode=MODES)]

        return asyncio.run(stream())

    with ThreadPoolExecutor(1) as pool:
        try:
            run = pool.submit(consume)
            [marker] = wait_for(lambda: markers(span_exporter), "the blocked node's marker")
            assert not run.done()
            assert marker.name == "stalled block"
            assert attr(marker, names.OTELSTREAM_STALL_REASON) == "idle"
            assert attr(marker, names.OTELSTREAM_STALL_THRESHOLD) == pytest.approx(IDLE)
        finally:
            release.set()
        # Once the loop runs again LangGraph may still cut the attempt: either end is fine here.
        error = run.exception(timeout=DEADLINE)
    assert error is None or isinstance(error, NodeTimeoutError), error


def test_without_a_threshold_or_policy_a_silent_node_is_not_idle(
    tracer_provider: TracerProvider,
    meter_provider: MeterProvider,
    span_exporter: InMemorySpanExporter,
) -> None:
    """Idle thresholds are off by default: a node silent for several idle windows is not
    marked when neither an option nor a ``TimeoutPolicy`` asks for it."""

    def wait(state: MessagesState) -> dict[str, Any]:
        time.sleep(3 * IDLE)
        return {}

    graph = traced(
        parallel_nodes(wait=wait), tracer_provider, meter_provider, tool_stall_threshold=0.1
    )
    list(graph.stream(USER))
    assert markers(span_exporter) == []


# ---- reasons, once each -----------------------------------------------------------------------


def test_silent_work_past_both_thresholds_is_reported_once_per_reason(
    tracer_provider: TracerProvider,
    meter_provider: MeterProvider,
    metric_reader: InMemoryMetricReader,
    span_exporter: InMemorySpanExporter,
    release: threading.Event,
) -> None:
    """A silent tool past its running-time and its idle threshold gets one marker and one
    counter point for each reason, and no more however long it hangs."""
    graph = traced(
        agent_calling_both(silent_tool(release)),
        tracer_provider,
        meter_provider,
        tool_stall_threshold=IDLE,
        tool_idle_threshold=IDLE,
    )
    with ThreadPoolExecutor(1) as pool:
        try:
            run = in_background(pool, graph)
            wait_for(lambda: len(markers(span_exporter)) >= 2, "two markers")
            time.sleep(4 * IDLE)
            assert marked(span_exporter) == [
                ("stalled execute_tool silent_search", "idle"),
                ("stalled execute_tool silent_search", "running"),
            ]
            assert stall_points(metric_reader) == [
                point("tool", names.GEN_AI_TOOL_NAME, "silent_search", "idle"),
                point("tool", names.GEN_AI_TOOL_NAME, "silent_search", "running"),
            ]
        finally:
            release.set()
        run.result(timeout=DEADLINE)
    silent = one(span_exporter.get_finished_spans(), "execute_tool silent_search")
    assert sorted(
        e.attributes[names.OTELSTREAM_STALL_REASON] for e in events(silent, names.EVENT_STALL)
    ) == ["idle", "running"]


def test_idle_age_gauge_stays_low_for_chatty_work_and_grows_for_silent_work(
    tracer_provider: TracerProvider,
    meter_provider: MeterProvider,
    metric_reader: InMemoryMetricReader,
    span_exporter: InMemorySpanExporter,
    release: threading.Event,
) -> None:
    """``otelstream.inflight.idle_age``: the silent tool's idle age is its running age, the
    chatty tool's stays under the idle threshold although it has run longer."""
    graph = traced(
        agent_calling_both(chatty_tool(release), silent_tool(release)),
        tracer_provider,
        meter_provider,
        tool_idle_threshold=IDLE,
    )
    with ThreadPoolExecutor(1) as pool:
        try:
            run = in_background(pool, graph)
            wait_for(lambda: markers(span_exporter), "the silent tool's marker")
            time.sleep(2 * IDLE)
            points = metric_points(metric_reader)
            idle = {
                p.attributes.get(names.GEN_AI_TOOL_NAME): p.value
                for p in points[names.METRIC_INFLIGHT_IDLE_AGE]
                if p.attributes[names.OTELSTREAM_WORK_KIND] == "tool"
            }
            oldest = {
                p.attributes.get(names.GEN_AI_TOOL_NAME): p.value
                for p in points[names.METRIC_INFLIGHT_OLDEST_AGE]
                if p.attributes[names.OTELSTREAM_WORK_KIND] == "tool"
            }
            assert idle["silent_search"] >= 3 * IDLE
            assert idle["chatty_crawl"] < IDLE
            assert oldest["chatty_crawl"] >= 3 * IDLE
        finally:
            release.set()
        run.result(timeout=DEADLINE)


# ---- options ----------------------------------------------------------------------------------


def test_idle_thresholds_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """``OTELSTREAM_TOOL_IDLE_THRESHOLD`` / ``OTELSTREAM_TASK_IDLE_THRESHOLD`` set the idle
    thresholds; both are off by default."""
    assert (Options().tool_idle_threshold, Options().task_idle_threshold) == (None, None)
    monkeypatch.setenv(TOOL_IDLE_ENV, "20")
    monkeypatch.setenv(TASK_IDLE_ENV, " 0.5 ")
    options = Options()
    assert (options.tool_idle_threshold, options.task_idle_threshold) == (20.0, 0.5)
    monkeypatch.setenv(TOOL_IDLE_ENV, "off")
    assert Options().tool_idle_threshold is None


@pytest.mark.parametrize("value", ["soon", "-1", "nan"])
def test_bad_idle_threshold_in_the_environment_warns_and_stays_off(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, value: str
) -> None:
    """A bad idle threshold in the environment logs one warning naming the variable and keeps
    the default (off)."""
    caplog.set_level(logging.WARNING, logger="otelstream")
    monkeypatch.setenv(TASK_IDLE_ENV, value)
    assert Options().task_idle_threshold is None
    [log] = [r.getMessage() for r in caplog.records if r.name == "otelstream"]
    assert "invalid_environment_value" in log
    assert TASK_IDLE_ENV in log


@pytest.mark.parametrize(
    ("value", "error"), [("30", TypeError), (True, TypeError), (-1.0, ValueError)]
)
def test_bad_idle_threshold_option_raises(value: Any, error: type[Exception]) -> None:
    """An idle threshold that is not a number of seconds raises and says what to use."""
    with pytest.raises(error, match="tool_idle_threshold"):
        Options(tool_idle_threshold=value)
    with pytest.raises(error, match="task_idle_threshold"):
        Options(task_idle_threshold=value)
