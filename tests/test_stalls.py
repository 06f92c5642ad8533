"""The stall watchdog on real graphs: hung tools, silent LLM streams and slow tasks, seen live."""

from __future__ import annotations

import asyncio
import logging
import math
import threading  # noqa: TC003 - a pydantic model field below needs it at run time
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import pytest
from helpers import (
    USER,
    attr,
    await_for,
    by_name,
    chat_graph,
    events,
    markers,
    metric_points,
    one,
    parent_of,
    wait_for,
)
from langchain.agents import create_agent
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.tools import BaseTool, tool
from langgraph.graph import END, START, MessagesState, StateGraph
from opentelemetry import trace
from pydantic import ConfigDict

import otelstream
from otelstream import names
from otelstream.options import LLM_STALL_ENV, TASK_STALL_ENV, TOOL_STALL_ENV, Options
from otelstream.testing import FakeStreamingChatModel, tool_call, tool_calls

if TYPE_CHECKING:
    from collections.abc import Iterator

    from langchain_core.callbacks import CallbackManagerForLLMRun
    from langchain_core.language_models import LangSmithParams
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

THRESHOLD = 0.2
DEADLINE = 5.0
# Hung work waits at most this long even if a test forgets to release it, so nothing hangs forever.
HANG_LIMIT = 20.0


@pytest.fixture(autouse=True)
def no_stall_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The stall thresholds come from each test, never from the environment running the suite."""
    for variable in (TOOL_STALL_ENV, LLM_STALL_ENV, TASK_STALL_ENV):
        monkeypatch.delenv(variable, raising=False)


# ---- helpers --------------------------------------------------------------------------------


def hanging_tool(release: threading.Event, name: str = "slow_search") -> BaseTool:
    """A sync tool that blocks until ``release`` is set."""

    def run(query: str) -> str:
        release.wait(HANG_LIMIT)
        return f"results for {query}"

    return tool(name, description="Search slowly.")(run)


@tool
def quick_lookup(query: str) -> str:
    """Look something up at once."""
    return f"found {query}"


def agent_calling(*tools: BaseTool, calls: AIMessage | None = None) -> Any:
    """A ``create_agent`` graph whose model calls ``tools`` (all at once), then answers."""
    answer = calls or tool_call(tools[0].name, {"query": "otel"}, call_id="call_1")
    model = FakeStreamingChatModel(responses=[answer, AIMessage(content="All done.")])
    return create_agent(model, tools=list(tools), name="agent")


def traced(
    graph: Any,
    tracer_provider: TracerProvider,
    meter_provider: MeterProvider,
    **thresholds: float | None,
) -> Any:
    options = Options(**{"tool_stall_threshold": THRESHOLD, **thresholds})  # type: ignore[arg-type]
    return otelstream.instrument(
        graph, tracer_provider=tracer_provider, meter_provider=meter_provider, options=options
    )


def stream_in_background(pool: ThreadPoolExecutor, graph: Any) -> Future[list[Any]]:
    """Consume ``graph.stream`` in a worker thread, as an app's request handler would."""
    return pool.submit(lambda: list(graph.stream(USER, stream_mode=["updates", "messages"])))


def stall_points(reader: InMemoryMetricReader) -> list[tuple[dict[str, Any], int]]:
    """``otelstream.stalls`` data points as (attributes, value)."""
    points = metric_points(reader).get(names.METRIC_STALLS, [])
    return [(dict(p.attributes), p.value) for p in points]


def stall_logs(caplog: pytest.LogCaptureFixture, event: str) -> list[str]:
    """Messages of otelstream's warnings called ``event``."""
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "otelstream" and r.levelno == logging.WARNING and event in r.getMessage()
    ]


def span_hex(span: ReadableSpan) -> tuple[str, str]:
    """``(trace_id, span_id)`` of ``span`` in the hex form logs use."""
    context = span.get_span_context()
    return trace.format_trace_id(context.trace_id), trace.format_span_id(context.span_id)


# ---- tools ------------------------------------------------------------------------------------


def test_stalled_sync_tool_is_reported_before_it_returns(
    tracer_provider: TracerProvider,
    meter_provider: MeterProvider,
    metric_reader: InMemoryMetricReader,
    span_exporter: InMemorySpanExporter,
    release: threading.Event,
) -> None:
    """A sync tool hung past its threshold shows a marker span and a counter while it still runs."""
    graph = traced(agent_calling(hanging_tool(release)), tracer_provider, meter_provider)
    with ThreadPoolExecutor(1) as pool:
        try:
            run = stream_in_background(pool, graph)
            marker = wait_for(lambda: markers(span_exporter), "a stall marker span")[0]
            assert not run.done()
            assert by_name(span_exporter.get_finished_spans(), "execute_tool slow_search") == []
            assert stall_points(metric_reader) == [
                (
                    {
                        names.OTELSTREAM_WORK_KIND: "tool",
                        names.GEN_AI_TOOL_NAME: "slow_search",
                        names.OTELSTREAM_STALL_REASON: "running",
                    },
                    1,
                )
            ]
            assert marker.name == "stalled execute_tool slow_search"
            assert marker.start_time == marker.end_time
            assert attr(marker, names.GEN_AI_TOOL_CALL_ID) == "call_1"
            assert attr(marker, names.OTELSTREAM_STALL_THRESHOLD) == THRESHOLD
            assert attr(marker, names.OTELSTREAM_STALL_AGE) >= THRESHOLD
        finally:
            release.set()
        run.result(timeout=DEADLINE)
    spans = span_exporter.get_finished_spans()
    tool_span = one(spans, "execute_tool slow_search")
    assert parent_of(spans, marker) is tool_span
    assert attr(tool_span, names.OTELSTREAM_STALLED) is True
    assert attr(tool_span, names.OTELSTREAM_STALL_DURATION) > 0
    [event] = events(tool_span, names.EVENT_STALL)
    assert event.attributes[names.OTELSTREAM_WORK_KIND] == "tool"
    # Counted once, however long it hung after crossing the threshold.
    assert stall_points(metric_reader)[0][1] == 1


async def test_stalled_async_tool_is_reported_before_it_returns(
    tracer_provider: TracerProvider,
    meter_provider: MeterProvider,
    metric_reader: InMemoryMetricReader,
    span_exporter: InMemorySpanExporter,
) -> None:
    """An async tool awaiting an event past its threshold is reported while the run awaits it."""
    release = asyncio.Event()

    @tool
    async def slow_fetch(query: str) -> str:
        """Fetch slowly."""
        await asyncio.wait_for(release.wait(), HANG_LIMIT)
        return f"fetched {query}"

    graph = traced(agent_calling(slow_fetch), tracer_provider, meter_provider)

    async def consume() -> list[Any]:
        return [chunk async for chunk in graph.astream(USER, stream_mode=["updates", "messages"])]

    run = asyncio.create_task(consume())
    try:
        [marker] = await await_for(lambda: markers(span_exporter), "a stall marker span")
        assert not run.done()
        assert marker.name == "stalled execute_tool slow_fetch"
        assert stall_points(metric_reader) == [
            (
                {
                    names.OTELSTREAM_WORK_KIND: "tool",
                    names.GEN_AI_TOOL_NAME: "slow_fetch",
                    names.OTELSTREAM_STALL_REASON: "running",
                },
                1,
            )
        ]
    finally:
        release.set()
        await asyncio.wait_for(run, DEADLINE)
    tool_span = one(span_exporter.get_finished_spans(), "execute_tool slow_fetch")
    assert attr(tool_span, names.OTELSTREAM_STALLED) is True
    assert parent_of(span_exporter.get_finished_spans(), marker) is tool_span


def test_stalled_tool_inside_a_subgraph_is_reported_under_its_span(
    tracer_provider: TracerProvider,
    meter_provider: MeterProvider,
    metric_reader: InMemoryMetricReader,
    span_exporter: InMemorySpanExporter,
    release: threading.Event,
) -> None:
    """A tool hung inside a subgraph is reported, its marker a child of the tool's span."""
    inner = agent_calling(hanging_tool(release, "deep_search"))
    builder = StateGraph(MessagesState)
    builder.add_node("research", inner)
    builder.add_edge(START, "research")
    builder.add_edge("research", END)
    graph = traced(builder.compile(name="outer"), tracer_provider, meter_provider)
    with ThreadPoolExecutor(1) as pool:
        try:
            run = stream_in_background(pool, graph)
            [marker] = wait_for(lambda: markers(span_exporter), "a stall marker span")
            assert marker.name == "stalled execute_tool deep_search"
            assert stall_points(metric_reader) == [
                (
                    {
                        names.OTELSTREAM_WORK_KIND: "tool",
                        names.GEN_AI_TOOL_NAME: "deep_search",
                        names.OTELSTREAM_STALL_REASON: "running",
                    },
                    1,
                )
            ]
        finally:
            release.set()
        run.result(timeout=DEADLINE)
    spans = span_exporter.get_finished_spans()
    tool_span = one(spans, "execute_tool deep_search")
    assert parent_of(spans, marker) is tool_span
    assert attr(tool_span, names.OTELSTREAM_STALLED) is True
    # The marker sits in the run's trace, below the outer graph's "research" task.
    ancestors = []
    span: ReadableSpan | None = tool_span
    while span is not None:
        ancestors.append(span.name)
        span = parent_of(spans, span)
    assert "research" in ancestors
    assert marker.context.trace_id == tool_span.context.trace_id  # type: ignore[union-attr]


def test_only_the_hung_one_of_two_parallel_tool_calls_is_reported(
    tracer_provider: TracerProvider,
    meter_provider: MeterProvider,
    metric_reader: InMemoryMetricReader,
    span_exporter: InMemorySpanExporter,
    release: threading.Event,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Of two parallel tool calls only the hung one gets a counter point, a marker and a log."""
    caplog.set_level(logging.WARNING, logger="otelstream")
    calls = tool_calls(
        ("slow_search", {"query": "a"}, "call_slow"), ("quick_lookup", {"query": "b"}, "call_quick")
    )
    graph = traced(
        agent_calling(hanging_tool(release), quick_lookup, calls=calls),
        tracer_provider,
        meter_provider,
    )
    with ThreadPoolExecutor(1) as pool:
        try:
            run = stream_in_background(pool, graph)
            wait_for(lambda: markers(span_exporter), "a stall marker span")
            # Give the watchdog several more checks in which it could wrongly report the other.
            time.sleep(3 * THRESHOLD)
            assert [m.name for m in markers(span_exporter)] == ["stalled execute_tool slow_search"]
            assert stall_points(metric_reader) == [
                (
                    {
                        names.OTELSTREAM_WORK_KIND: "tool",
                        names.GEN_AI_TOOL_NAME: "slow_search",
                        names.OTELSTREAM_STALL_REASON: "running",
                    },
                    1,
                )
            ]
            [log] = stall_logs(caplog, names.LOG_TOOL_CALL_STALLED)
            assert "call_slow" in log
            assert "call_quick" not in log
        finally:
            release.set()
        run.result(timeout=DEADLINE)
    spans = span_exporter.get_finished_spans()
    quick = one(spans, "execute_tool quick_lookup")
    assert names.OTELSTREAM_STALLED not in (quick.attributes or {})
    assert events(quick, names.EVENT_STALL) == []
    assert attr(one(spans, "execute_tool slow_search"), names.OTELSTREAM_STALLED) is True


def test_stall_warning_carries_the_trace_id_of_the_stalled_span(
    tracer_provider: TracerProvider,
    meter_provider: MeterProvider,
    span_exporter: InMemorySpanExporter,
    release: threading.Event,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The ``tool_call_stalled`` warning names the trace and span of the hung tool call."""
    caplog.set_level(logging.WARNING, logger="otelstream")
    graph = traced(agent_calling(hanging_tool(release)), tracer_provider, meter_provider)
    with ThreadPoolExecutor(1) as pool:
        try:
            run = stream_in_background(pool, graph)
            [log] = wait_for(
                lambda: stall_logs(caplog, names.LOG_TOOL_CALL_STALLED), "a stall warning"
            )
        finally:
            release.set()
        run.result(timeout=DEADLINE)
    tool_span = one(span_exporter.get_finished_spans(), "execute_tool slow_search")
    trace_id, span_id = span_hex(tool_span)
    assert f"trace_id={trace_id}" in log
    assert f"span_id={span_id}" in log
    assert "tool=slow_search" in log
    assert "call_id=call_1" in log
    assert "age=" in log


def test_work_under_its_threshold_is_never_reported(
    tracer_provider: TracerProvider,
    meter_provider: MeterProvider,
    metric_reader: InMemoryMetricReader,
    span_exporter: InMemorySpanExporter,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Tools, LLM calls and tasks that end within their thresholds leave no stall trace."""
    caplog.set_level(logging.WARNING, logger="otelstream")

    @tool
    def brief_search(query: str) -> str:
        """Search briefly."""
        time.sleep(0.05)
        return "ok"

    graph = traced(
        agent_calling(brief_search),
        tracer_provider,
        meter_provider,
        tool_stall_threshold=1.0,
        llm_stall_threshold=1.0,
        task_stall_threshold=1.0,
    )
    list(graph.stream(USER, stream_mode=["updates", "messages"]))
    assert markers(span_exporter) == []
    assert stall_points(metric_reader) == []
    assert [r.getMessage() for r in caplog.records if "stall" in r.getMessage()] == []
    for span in span_exporter.get_finished_spans():
        assert names.OTELSTREAM_STALLED not in (span.attributes or {}), span.name


# ---- LLM streams --------------------------------------------------------------------------------


class StallingChatModel(BaseChatModel):
    """Streams ``before`` words, then blocks on ``release`` mid-answer, then streams the rest."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    words: list[str]
    before: int
    release: threading.Event

    @property
    def _llm_type(self) -> str:
        return "stalling-fake"

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        return {"ls_provider": "stalling-fake", "ls_model_name": "stall-model"}

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        self.release.wait(HANG_LIMIT)
        return ChatResult(generations=[ChatGeneration(message=AIMessage("".join(self.words)))])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        for index, word in enumerate(self.words):
            if index == self.before:
                self.release.wait(HANG_LIMIT)
            chunk = ChatGenerationChunk(message=AIMessageChunk(content=word))
            if run_manager is not None:
                run_manager.on_llm_new_token(word, chunk=chunk)
            yield chunk


def test_llm_that_stops_streaming_mid_answer_is_reported(
    tracer_provider: TracerProvider,
    meter_provider: MeterProvider,
    metric_reader: InMemoryMetricReader,
    span_exporter: InMemorySpanExporter,
    release: threading.Event,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An LLM silent after two chunks is reported as stalled before its answer completes."""
    caplog.set_level(logging.WARNING, logger="otelstream")
    model = StallingChatModel(words=["The ", "answer ", "is ", "42."], before=2, release=release)
    graph = traced(chat_graph(model), tracer_provider, meter_provider, llm_stall_threshold=0.3)  # type: ignore[arg-type]
    with ThreadPoolExecutor(1) as pool:
        try:
            run = stream_in_background(pool, graph)
            [marker] = wait_for(lambda: markers(span_exporter), "a stall marker span")
            assert not run.done()
            assert marker.name == "stalled chat stall-model"
            assert attr(marker, names.OTELSTREAM_WORK_KIND) == "llm"
            assert stall_points(metric_reader) == [
                (
                    {
                        names.OTELSTREAM_WORK_KIND: "llm",
                        names.GEN_AI_REQUEST_MODEL: "stall-model",
                        names.OTELSTREAM_STALL_REASON: "idle",
                    },
                    1,
                )
            ]
            [log] = stall_logs(caplog, names.LOG_LLM_STREAM_STALLED)
        finally:
            release.set()
        run.result(timeout=DEADLINE)
    spans = span_exporter.get_finished_spans()
    chat = one(spans, "chat stall-model")
    assert parent_of(spans, marker) is chat
    assert attr(chat, names.OTELSTREAM_STALLED) is True
    assert attr(chat, names.OTELSTREAM_STALL_DURATION) > 0
    assert f"trace_id={span_hex(chat)[0]}" in log
    assert "model=stall-model" in log


async def test_llm_with_a_long_gap_between_chunks_is_reported_async(
    tracer_provider: TracerProvider,
    meter_provider: MeterProvider,
    metric_reader: InMemoryMetricReader,
    span_exporter: InMemorySpanExporter,
) -> None:
    """An async LLM stream whose chunks come slower than the threshold is reported once."""
    model = FakeStreamingChatModel(responses=[AIMessage(content="slow words")], chunk_delay=0.6)
    graph = traced(chat_graph(model), tracer_provider, meter_provider, llm_stall_threshold=0.2)
    async for _ in graph.astream(USER, stream_mode=["updates", "messages"]):
        pass
    [marker] = markers(span_exporter)
    assert marker.name == "stalled chat fake-model"
    assert stall_points(metric_reader) == [
        (
            {
                names.OTELSTREAM_WORK_KIND: "llm",
                names.GEN_AI_REQUEST_MODEL: "fake-model",
                names.OTELSTREAM_STALL_REASON: "idle",
            },
            1,
        )
    ]
    assert attr(
        one(span_exporter.get_finished_spans(), "chat fake-model"), names.OTELSTREAM_STALLED
    )


# ---- tasks --------------------------------------------------------------------------------------


def test_task_past_task_stall_threshold_is_reported(
    tracer_provider: TracerProvider,
    meter_provider: MeterProvider,
    metric_reader: InMemoryMetricReader,
    span_exporter: InMemorySpanExporter,
    release: threading.Event,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """With ``task_stall_threshold`` set, a node running too long is reported as a stalled task."""
    caplog.set_level(logging.WARNING, logger="otelstream")

    def crunch(state: MessagesState) -> dict[str, Any]:
        release.wait(HANG_LIMIT)
        return {"messages": [AIMessage(content="crunched")]}

    builder = StateGraph(MessagesState)
    builder.add_node("crunch", crunch)
    builder.add_edge(START, "crunch")
    builder.add_edge("crunch", END)
    graph = traced(builder.compile(), tracer_provider, meter_provider, task_stall_threshold=0.2)
    with ThreadPoolExecutor(1) as pool:
        try:
            run = stream_in_background(pool, graph)
            [marker] = wait_for(lambda: markers(span_exporter), "a stall marker span")
            assert marker.name == "stalled crunch"
            assert stall_points(metric_reader) == [
                (
                    {
                        names.OTELSTREAM_WORK_KIND: "task",
                        names.LANGGRAPH_NODE: "crunch",
                        names.OTELSTREAM_STALL_REASON: "running",
                    },
                    1,
                )
            ]
            [log] = stall_logs(caplog, names.LOG_TASK_STALLED)
        finally:
            release.set()
        run.result(timeout=DEADLINE)
    task = one(span_exporter.get_finished_spans(), "crunch")
    assert attr(task, names.OTELSTREAM_STALLED) is True
    assert f"trace_id={span_hex(task)[0]}" in log
    assert "node=crunch" in log


def test_tasks_are_not_watched_by_default(
    tracer_provider: TracerProvider,
    meter_provider: MeterProvider,
    metric_reader: InMemoryMetricReader,
    span_exporter: InMemorySpanExporter,
) -> None:
    """Without ``task_stall_threshold`` a slow node is not reported."""

    def crunch(state: MessagesState) -> dict[str, Any]:
        time.sleep(3 * THRESHOLD)
        return {"messages": [AIMessage(content="crunched")]}

    builder = StateGraph(MessagesState)
    builder.add_node("crunch", crunch)
    builder.add_edge(START, "crunch")
    builder.add_edge("crunch", END)
    list(traced(builder.compile(), tracer_provider, meter_provider).stream(USER))
    assert markers(span_exporter) == []
    assert stall_points(metric_reader) == []


# ---- in-flight metrics and the watchdog thread --------------------------------------------------


def inflight(reader: InMemoryMetricReader) -> tuple[dict[str, float], dict[tuple[str, str], float]]:
    """``otelstream.inflight`` by kind and ``otelstream.inflight.oldest_age`` by (kind, name)."""
    points = metric_points(reader)
    counts = {
        p.attributes[names.OTELSTREAM_WORK_KIND]: p.value
        for p in points.get(names.METRIC_INFLIGHT, [])
    }
    ages = {}
    for p in points.get(names.METRIC_INFLIGHT_OLDEST_AGE, []):
        attributes = dict(p.attributes)
        kind = attributes.pop(names.OTELSTREAM_WORK_KIND)
        [name] = attributes.values()
        ages[(kind, name)] = p.value
    return counts, ages


def test_inflight_metrics_rise_while_a_tool_hangs_and_fall_after(
    tracer_provider: TracerProvider,
    meter_provider: MeterProvider,
    metric_reader: InMemoryMetricReader,
    span_exporter: InMemorySpanExporter,
    release: threading.Event,
) -> None:
    """In-flight count and oldest age show the hung tool, and drop to 0 / absent once it returns."""
    graph = traced(agent_calling(hanging_tool(release)), tracer_provider, meter_provider)
    watchdog = graph._otelstream_tracing.watchdog
    with ThreadPoolExecutor(1) as pool:
        try:
            run = stream_in_background(pool, graph)
            wait_for(lambda: markers(span_exporter), "a stall marker span")
            counts, ages = inflight(metric_reader)
            assert counts["tool"] == 1
            assert counts["task"] == 1
            assert ages[("tool", "slow_search")] >= THRESHOLD
            assert ages[("task", "tools")] >= THRESHOLD
            first_age = ages[("tool", "slow_search")]
            time.sleep(0.05)
            assert inflight(metric_reader)[1][("tool", "slow_search")] > first_age
        finally:
            release.set()
        run.result(timeout=DEADLINE)
    wait_for(lambda: not watchdog.running, "the watchdog thread to stop")
    counts, ages = inflight(metric_reader)
    assert all(count == 0 for count in counts.values()), counts
    assert ages == {}


def test_watchdog_thread_runs_only_while_a_traced_stream_is_open(
    tracer_provider: TracerProvider,
    meter_provider: MeterProvider,
    span_exporter: InMemorySpanExporter,
    release: threading.Event,
) -> None:
    """The watchdog starts with the first open stream and stops soon after the last one ends."""
    graph = traced(agent_calling(hanging_tool(release)), tracer_provider, meter_provider)
    watchdog = graph._otelstream_tracing.watchdog
    assert not watchdog.running
    with ThreadPoolExecutor(1) as pool:
        try:
            run = stream_in_background(pool, graph)
            wait_for(lambda: markers(span_exporter), "a stall marker span")
            assert watchdog.running
        finally:
            release.set()
        run.result(timeout=DEADLINE)
    wait_for(lambda: not watchdog.running, "the watchdog thread to stop")
    # A stream opened later starts it again.
    stream = graph.stream(USER)
    next(stream)
    assert watchdog.running
    stream.close()
    wait_for(lambda: not watchdog.running, "the watchdog thread to stop again")


# ---- environment --------------------------------------------------------------------------------


def test_tool_threshold_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """``OTELSTREAM_TOOL_STALL_THRESHOLD=0.5`` sets the tool threshold to half a second."""
    monkeypatch.setenv(TOOL_STALL_ENV, "0.5")
    assert Options().tool_stall_threshold == 0.5


@pytest.mark.parametrize("value", ["off", "OFF", " off "])
def test_off_in_the_environment_turns_thresholds_off(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    """``off`` makes the tool threshold infinite and the LLM and task thresholds ``None``."""
    for variable in (TOOL_STALL_ENV, LLM_STALL_ENV, TASK_STALL_ENV):
        monkeypatch.setenv(variable, value)
    options = Options()
    assert options.tool_stall_threshold == math.inf
    assert options.llm_stall_threshold is None
    assert options.task_stall_threshold is None


@pytest.mark.parametrize("value", ["soon", "-3", "nan"])
def test_bad_environment_value_warns_once_and_keeps_the_default(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, value: str
) -> None:
    """A threshold that is not a number of seconds logs one warning and keeps the default."""
    caplog.set_level(logging.WARNING, logger="otelstream")
    monkeypatch.setenv(TOOL_STALL_ENV, value)
    assert Options().tool_stall_threshold == 30.0
    [log] = [r.getMessage() for r in caplog.records if r.name == "otelstream"]
    assert "invalid_environment_value" in log
    assert TOOL_STALL_ENV in log


def test_llm_and_task_thresholds_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The LLM and task thresholds read their own variables."""
    monkeypatch.setenv(LLM_STALL_ENV, "2.5")
    monkeypatch.setenv(TASK_STALL_ENV, "120")
    options = Options()
    assert (options.llm_stall_threshold, options.task_stall_threshold) == (2.5, 120.0)
    assert options.tool_stall_threshold == 30.0


def test_inflight_metrics_see_every_graph_sharing_a_meter_provider(
    tracer_provider: TracerProvider,
    meter_provider: MeterProvider,
    metric_reader: InMemoryMetricReader,
    span_exporter: InMemorySpanExporter,
    release: threading.Event,
) -> None:
    """A tool hung in the second graph instrumented with one meter provider shows in-flight."""
    # Fails today: each instrument() creates its own Watchdog, whose observable instruments have
    # the same names in the same meter; the SDK hands back the first graph's instruments and the
    # second graph's callbacks are never called, so its hung tool reads as 0 in flight.
    traced(agent_calling(quick_lookup), tracer_provider, meter_provider)
    second = traced(agent_calling(hanging_tool(release)), tracer_provider, meter_provider)
    with ThreadPoolExecutor(1) as pool:
        try:
            run = stream_in_background(pool, second)
            wait_for(lambda: markers(span_exporter), "a stall marker span")
            counts, ages = inflight(metric_reader)
            assert counts["tool"] == 1
            assert ("tool", "slow_search") in ages
        finally:
            release.set()
        run.result(timeout=DEADLINE)
