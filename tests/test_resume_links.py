"""Resumed runs linked: a run that starts from a checkpoint links to the run span that wrote it.

Real graphs and real checkpointers: ``InMemorySaver`` within one process, SQLite
(``langgraph-checkpoint-sqlite``) across two: the test process pauses a thread, a second Python
process (``tests/resume_process.py``, its own ``TracerProvider`` and JSON Lines file) resumes it.
"""

from __future__ import annotations

import copy
import gc
import json
import os
import re
import sqlite3
import subprocess
import sys
import weakref
from contextlib import closing
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from helpers import NO_ASYNC_CONFIG_BEFORE_311, attr, events, run_spans
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from langgraph.config import get_config
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command
from opentelemetry import metrics
from opentelemetry.trace import Link
from resume_process import Draft, approval_graph, functional_graph, request
from test_passthrough import run_astream, run_stream

import otelstream
from otelstream import names
from otelstream.cli import main as cli_main
from otelstream.cli.traces import read_trace_file
from otelstream.feeds.checkpoints import (
    RunCheckpoints,
    TracedSaver,
    parse_traceparent,
    traceparent,
)
from otelstream.instrumentor import OtelStreamInstrumentor
from otelstream.record.instruments import Instruments
from otelstream.record.run import RunRecorder

if TYPE_CHECKING:
    from collections.abc import Callable

    from opentelemetry.sdk.trace import ReadableSpan, TracerProvider

    Spans = Callable[[], list[ReadableSpan]]

HELPER = Path(__file__).parent / "resume_process.py"
# Interrupt ids: a hash of the task's checkpoint namespace, different in any two runs.
_INTERRUPT_ID = re.compile(r"'[0-9a-f]{32}'")
THREAD = {"configurable": {"thread_id": "order-42"}}


def _ids(span: ReadableSpan) -> tuple[int, int]:
    context = span.get_span_context()
    return context.trace_id, context.span_id


def _link(span: ReadableSpan) -> tuple[tuple[int, int], dict[str, Any]]:
    """The run span's only link: (trace id, span id) of the linked span, and its attributes."""
    assert len(span.links) == 1, span.links
    link = span.links[0]
    return (link.context.trace_id, link.context.span_id), dict(link.attributes or {})


def _paused_at(span: ReadableSpan) -> str:
    """The checkpoint an interrupted run span says it paused at."""
    assert attr(span, names.OTELSTREAM_OUTCOME) == names.OUTCOME_INTERRUPTED
    (paused,) = events(span, names.EVENT_PAUSED)
    checkpoint_id = paused.attributes[names.LANGGRAPH_CHECKPOINT_ID]
    assert isinstance(checkpoint_id, str)
    return checkpoint_id


def _assert_resumes(resumed: ReadableSpan, paused: ReadableSpan) -> None:
    """``resumed`` links to ``paused`` as a resume, from the checkpoint ``paused`` paused at."""
    checkpoint_id = _paused_at(paused)
    target, attributes = _link(resumed)
    assert target == _ids(paused)
    assert attributes == {
        names.OTELSTREAM_LINK_REASON: names.LINK_REASON_RESUME,
        names.LANGGRAPH_CHECKPOINT_ID: checkpoint_id,
    }
    (event,) = events(resumed, names.EVENT_RESUMED)
    assert dict(event.attributes or {}) == {names.LANGGRAPH_CHECKPOINT_ID: checkpoint_id}
    assert resumed.start_time <= event.timestamp <= resumed.end_time  # type: ignore[operator]
    assert _ids(resumed)[0] != _ids(paused)[0]  # a trace of its own, linked
    assert attr(resumed, names.OTELSTREAM_OUTCOME) == names.OUTCOME_COMPLETED


def _traced(graph: Any, tracer_provider: TracerProvider) -> Any:
    return otelstream.instrument(graph, tracer_provider=tracer_provider)


# ---- one process, InMemorySaver ----------------------------------------------------------------


@pytest.mark.parametrize("durability", ["async", "sync", "exit"])
def test_resume_links_to_the_interrupted_run(
    durability: str, tracer_provider: TracerProvider, spans: Spans
) -> None:
    """``Command(resume=...)`` on an interrupted thread: the run span links to the interrupted
    run's span, whatever the durability mode, and every checkpoint names its writer."""
    saver = InMemorySaver()
    graph = _traced(approval_graph(saver), tracer_provider)
    first = graph.invoke(request(), THREAD, durability=durability)
    assert "__interrupt__" in first
    final = graph.invoke(Command(resume="approved"), THREAD, durability=durability)
    assert final["verdict"] == "approved"
    paused, resumed = run_spans(spans())
    _assert_resumes(resumed, paused)
    writers = {_ids(paused): 0, _ids(resumed): 0}
    for snapshot in graph.get_state_history(THREAD):
        writer = parse_traceparent(snapshot.metadata[names.OTELSTREAM_TRACEPARENT])
        assert writer is not None
        writers[writer.trace_id, writer.span_id] += 1
    assert all(writers.values()), writers  # both runs saved checkpoints, each under its name


@NO_ASYNC_CONFIG_BEFORE_311
async def test_async_resume_links_to_the_interrupted_run(
    tracer_provider: TracerProvider, spans: Spans
) -> None:
    """The same through ``astream`` and ``ainvoke`` (``aget_tuple``/``aput``)."""
    graph = _traced(approval_graph(InMemorySaver()), tracer_provider)
    chunks = [c async for c in graph.astream(request(), THREAD, stream_mode="updates")]
    assert "__interrupt__" in chunks[-1]
    final = await graph.ainvoke(Command(resume="approved"), THREAD)
    assert final["verdict"] == "approved"
    paused, resumed = run_spans(spans())
    _assert_resumes(resumed, paused)


def test_none_input_after_a_static_interrupt_is_a_resume(
    tracer_provider: TracerProvider, spans: Spans
) -> None:
    """A graph stopped by ``interrupt_before`` and continued with ``None`` input is resumed."""
    builder = StateGraph(Draft)
    builder.add_node("draft", lambda s: {"draft": "d"})
    builder.add_node("publish", lambda s: {"verdict": "published"})
    builder.add_edge(START, "draft")
    builder.add_edge("draft", "publish")
    builder.add_edge("publish", END)
    graph = _traced(
        builder.compile(checkpointer=InMemorySaver(), interrupt_before=["publish"]),
        tracer_provider,
    )
    graph.invoke(request(), THREAD)
    assert graph.invoke(None, THREAD)["verdict"] == "published"
    paused, resumed = run_spans(spans())
    _assert_resumes(resumed, paused)


def test_time_travel_links_to_the_run_that_wrote_the_checkpoint(
    tracer_provider: TracerProvider, spans: Spans
) -> None:
    """Replaying from an older checkpoint links to whichever run saved that checkpoint."""
    graph = _traced(approval_graph(InMemorySaver()), tracer_provider)
    graph.invoke(request(), THREAD)
    graph.invoke(Command(resume="approved"), THREAD)
    paused, resumed = run_spans(spans())
    by_next = {s.next: s for s in graph.get_state_history(THREAD)}
    cases = [(("review",), paused), (("publish",), resumed)]  # saved by the first, the second
    for index, (next_nodes, writer) in enumerate(cases):
        checkpoint_id = by_next[next_nodes].config["configurable"]["checkpoint_id"]
        config = {"configurable": {**THREAD["configurable"], "checkpoint_id": checkpoint_id}}
        graph.invoke(None, config)
        travel = run_spans(spans())[2 + index]
        target, attributes = _link(travel)
        assert target == _ids(writer)
        assert attributes == {
            names.OTELSTREAM_LINK_REASON: names.LINK_REASON_TIME_TRAVEL,
            names.LANGGRAPH_CHECKPOINT_ID: checkpoint_id,
        }
        assert events(travel, names.EVENT_RESUMED) == []


def test_new_input_on_a_finished_thread_continues_it(
    tracer_provider: TracerProvider, spans: Spans
) -> None:
    """A second turn with new input links to the run that saved the thread's latest checkpoint,
    as ``continue``, with no resumed event; the first run of a thread links to nothing."""
    graph = _traced(approval_graph(InMemorySaver()), tracer_provider)
    graph.invoke(request(), THREAD)
    graph.invoke(Command(resume="approved"), THREAD)
    graph.invoke(request(), THREAD)
    first, second, third = run_spans(spans())
    assert first.links == () or list(first.links) == []
    assert events(first, names.EVENT_RESUMED) == []
    target, attributes = _link(third)
    assert target == _ids(second)
    assert attributes[names.OTELSTREAM_LINK_REASON] == names.LINK_REASON_CONTINUE
    assert events(third, names.EVENT_RESUMED) == []


def test_resume_of_an_untraced_run_is_marked_but_not_linked(
    tracer_provider: TracerProvider, spans: Spans
) -> None:
    """A thread paused by an untraced run: the resume has its resumed event, and no link."""
    saver = InMemorySaver()
    approval_graph(saver).invoke(request(), THREAD)
    _traced(approval_graph(saver), tracer_provider).invoke(Command(resume="ok"), THREAD)
    (run,) = run_spans(spans())
    assert list(run.links) == []
    (event,) = events(run, names.EVENT_RESUMED)
    assert names.LANGGRAPH_CHECKPOINT_ID in (event.attributes or {})


@pytest.mark.parametrize("own_history", [None, True], ids=["inherited", "checkpointer-true"])
def test_interrupt_inside_a_subgraph_links_the_parent_runs(
    own_history: bool | None, tracer_provider: TracerProvider, spans: Spans
) -> None:
    """A subgraph on the parent's checkpointer (inherited, or ``checkpointer=True``: a history
    of its own per thread) pauses; the resumed parent run links to the paused parent run, and the
    subgraph's own checkpoints name the run too."""
    builder = StateGraph(Draft)
    builder.add_node("inner", approval_graph(own_history, name="inner"))
    builder.add_edge(START, "inner")
    builder.add_edge("inner", END)
    saver = InMemorySaver()
    graph = _traced(builder.compile(checkpointer=saver, name="outer"), tracer_provider)
    assert "__interrupt__" in graph.invoke(request(), THREAD)
    assert graph.invoke(Command(resume="approved"), THREAD)["verdict"] == "approved"
    paused, resumed = run_spans(spans())
    _assert_resumes(resumed, paused)
    root_ids = {c.config["configurable"]["checkpoint_id"] for c in saver.list(THREAD)}
    assert _paused_at(paused) in root_ids  # the parent's checkpoint, not the subgraph's
    nested = [
        c for c in saver.list(None) if c.config["configurable"]["checkpoint_ns"].startswith("inner")
    ]
    assert nested
    assert all(names.OTELSTREAM_TRACEPARENT in c.metadata for c in nested)


def test_functional_api_resume_links(tracer_provider: TracerProvider, spans: Spans) -> None:
    """An ``@entrypoint`` that calls ``interrupt()`` is linked across its resume."""
    graph = _traced(functional_graph(InMemorySaver()), tracer_provider)
    graph.invoke("refund", THREAD)
    assert graph.invoke(Command(resume="ok"), THREAD) == "REFUND [ok]"
    paused, resumed = run_spans(spans())
    assert paused.name == "invoke_workflow approve"
    _assert_resumes(resumed, paused)


def test_v3_stream_events_resume_links(tracer_provider: TracerProvider, spans: Spans) -> None:
    """A v3 run (``stream_events(version="v3")``) started with ``Command(resume=...)``."""
    graph = _traced(approval_graph(InMemorySaver()), tracer_provider)
    list(graph.stream_events(request(), THREAD, version="v3"))
    run = graph.stream_events(Command(resume="approved"), THREAD, version="v3")
    list(run)
    assert run.output["verdict"] == "approved"
    paused, resumed = run_spans(spans())
    _assert_resumes(resumed, paused)


@NO_ASYNC_CONFIG_BEFORE_311
async def test_async_v3_stream_events_resume_links(
    tracer_provider: TracerProvider, spans: Spans
) -> None:
    """The async v3 run stream, the same."""
    graph = _traced(approval_graph(InMemorySaver()), tracer_provider)
    [e async for e in await graph.astream_events(request(), THREAD, version="v3")]
    [e async for e in await graph.astream_events(Command(resume="ok"), THREAD, version="v3")]
    paused, resumed = run_spans(spans())
    _assert_resumes(resumed, paused)


def test_resume_under_the_instrumentor_links(tracer_provider: TracerProvider, spans: Spans) -> None:
    """With no code change (``OtelStreamInstrumentor``), a bare graph's resume is linked."""
    instrumentor = OtelStreamInstrumentor()
    instrumentor.instrument(tracer_provider=tracer_provider)
    try:
        graph = approval_graph(InMemorySaver())
        graph.invoke(request(), THREAD)
        graph.invoke(Command(resume="approved"), THREAD)
    finally:
        instrumentor.uninstrument()
    paused, resumed = run_spans(spans())
    _assert_resumes(resumed, paused)


@NO_ASYNC_CONFIG_BEFORE_311
async def test_astream_events_v2_resume_links(
    tracer_provider: TracerProvider, spans: Spans
) -> None:
    """LangChain's ``astream_events(version="v2")`` reads the traced ``astream``: linked too."""
    graph = _traced(approval_graph(InMemorySaver()), tracer_provider)
    [e async for e in graph.astream_events(request(), THREAD, version="v2")]
    [e async for e in graph.astream_events(Command(resume="ok"), THREAD, version="v2")]
    paused, resumed = run_spans(spans())
    _assert_resumes(resumed, paused)


# ---- untouched: no checkpointer, the caller's chunks -------------------------------------------


def test_graph_without_checkpointer_is_untouched(
    tracer_provider: TracerProvider, spans: Spans
) -> None:
    """No checkpointer: no saver is lent to the run (a node sees LangGraph's ``None``), and the
    run span has no link and no pause or resume event."""
    seen: list[Any] = []

    def node(state: Draft) -> dict[str, Any]:
        seen.append(get_config()["configurable"].get("__pregel_checkpointer", "missing"))
        return {"draft": "d"}

    builder = StateGraph(Draft)
    builder.add_node("node", node)
    builder.add_edge(START, "node")
    for graph in (builder.compile(), _traced(builder.compile(), tracer_provider)):
        graph.invoke(request(), THREAD)
    assert seen == [None, None]
    (run,) = run_spans(spans())
    assert list(run.links) == []
    assert [e.name for e in run.events] == []


@pytest.mark.parametrize(
    "kwargs",
    [
        {"stream_mode": ["updates", "checkpoints", "values"]},
        {"stream_mode": "debug", "subgraphs": True},
        {"stream_mode": ["tasks", "checkpoints"], "version": "v2"},
    ],
    ids=["list", "debug", "v2"],
)
@NO_ASYNC_CONFIG_BEFORE_311
async def test_interrupt_and_resume_chunks_match_bare(
    kwargs: dict[str, Any], tracer_provider: TracerProvider
) -> None:
    """Pausing and resuming a thread streams exactly the bare graph's chunks (checkpoint
    payloads and their metadata included), sync and async."""
    runs = []
    for traced in (False, True):
        graph = approval_graph(InMemorySaver())
        if traced:
            graph = _traced(graph, tracer_provider)
        first = run_stream(graph, (request(), THREAD), kwargs)
        second = await run_astream(graph, (Command(resume="ok"), THREAD), kwargs)
        assert first.error is None
        assert second.error is None
        first.chunks.extend(second.chunks)
        runs.append(_INTERRUPT_ID.sub("'<interrupt id>'", repr(first.normalised(ordered=True))))
    assert "'<interrupt id>'" in runs[0]
    assert runs[1] == runs[0]


# ---- another process, SQLite -------------------------------------------------------------------


def _other_process(
    tmp_path: Path, db: Path, *args: str, env: dict[str, str] | None = None
) -> tuple[Any, list[Any], Path]:
    """Run ``resume_process.py`` on the database; its result, the run spans it wrote, and the
    file it wrote them to."""
    out = tmp_path / f"spans-{len(list(tmp_path.glob('spans-*')))}.jsonl"
    completed = subprocess.run(
        [sys.executable, str(HELPER), "--db", str(db), "--thread", "order-42", "--spans", str(out)]
        + list(args),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=None if env is None else {**os.environ, **env},
    )
    assert completed.returncode == 0, completed.stderr
    traces = read_trace_file(out)
    runs = [
        span
        for trace in traces
        for span in trace.spans
        if span.attributes.get(names.GEN_AI_OPERATION_NAME) == names.OP_INVOKE_WORKFLOW
    ]
    return json.loads(completed.stdout.strip().splitlines()[-1]), runs, out


def _pause_here(db: Path, graph_kind: str, tracer_provider: TracerProvider) -> None:
    with closing(sqlite3.connect(db, check_same_thread=False)) as conn:
        saver = SqliteSaver(conn)
        graph = approval_graph(saver) if graph_kind == "approval" else functional_graph(saver)
        first = _traced(graph, tracer_provider).invoke(
            request() if graph_kind == "approval" else "refund", THREAD
        )
    assert "__interrupt__" in first or first is None


async def _apause_here(db: Path, tracer_provider: TracerProvider) -> None:
    async with AsyncSqliteSaver.from_conn_string(str(db)) as saver:
        first = await _traced(approval_graph(saver), tracer_provider).ainvoke(request(), THREAD)
    assert "__interrupt__" in first


@pytest.mark.parametrize("graph_kind", ["approval", "functional"])
def test_resume_in_another_process_links_to_this_one(
    graph_kind: str,
    tmp_path: Path,
    tracer_provider: TracerProvider,
    spans: Spans,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A thread paused here and resumed by another Python process (its own provider, nothing
    shared but the SQLite file): that process's run span links to this one's, and ``otelstream
    view`` of its trace file says so."""
    db = tmp_path / "checkpoints.sqlite"
    _pause_here(db, graph_kind, tracer_provider)
    (paused,) = run_spans(spans())
    result, (resumed,), out = _other_process(
        tmp_path, db, "--resume", "approved", "--graph", graph_kind
    )
    assert "approved" in str(result)
    (link,) = resumed.links
    assert (link.trace_id, link.span_id) == (
        f"{paused.context.trace_id:032x}",  # type: ignore[union-attr]
        f"{paused.context.span_id:016x}",  # type: ignore[union-attr]
    )
    assert link.attributes == {
        names.OTELSTREAM_LINK_REASON: names.LINK_REASON_RESUME,
        names.LANGGRAPH_CHECKPOINT_ID: _paused_at(paused),
    }
    assert [e.name for e in resumed.events] == [names.EVENT_RESUMED]
    assert resumed.attributes[names.OTELSTREAM_OUTCOME] == names.OUTCOME_COMPLETED
    capsys.readouterr()
    assert cli_main(["view", str(out)]) == 0
    shown = capsys.readouterr().out
    assert "↩ resumes" in shown
    assert f"trace {link.trace_id} span {link.span_id} · checkpoint {_paused_at(paused)}" in shown


@NO_ASYNC_CONFIG_BEFORE_311
async def test_async_resume_in_another_process_then_time_travel(
    tmp_path: Path, tracer_provider: TracerProvider, spans: Spans
) -> None:
    """``AsyncSqliteSaver`` on both sides: paused here, resumed in a second process, then a
    third process travels back to the checkpoint this process paused at: linked to this run."""
    db = tmp_path / "checkpoints.sqlite"
    await _apause_here(db, tracer_provider)
    (paused,) = run_spans(spans())
    _, (resumed,), _ = _other_process(tmp_path, db, "--resume", "approved", "--async")
    assert resumed.links[0].attributes[names.OTELSTREAM_LINK_REASON] == names.LINK_REASON_RESUME
    checkpoint_id = _paused_at(paused)
    _, (travel,), _ = _other_process(tmp_path, db, "--checkpoint", checkpoint_id, "--async")
    (link,) = travel.links
    assert link.span_id == f"{paused.context.span_id:016x}"  # type: ignore[union-attr]
    assert link.attributes == {
        names.OTELSTREAM_LINK_REASON: names.LINK_REASON_TIME_TRAVEL,
        names.LANGGRAPH_CHECKPOINT_ID: checkpoint_id,
    }
    assert travel.attributes[names.OTELSTREAM_OUTCOME] == names.OUTCOME_INTERRUPTED


def test_resume_with_strict_msgpack_links(
    tmp_path: Path, tracer_provider: TracerProvider, spans: Spans
) -> None:
    """``LANGGRAPH_STRICT_MSGPACK`` in the resuming process: LangGraph clones the lent saver
    with the graph's allowlist (``with_allowlist``), and the clone is traced the same way."""
    db = tmp_path / "checkpoints.sqlite"
    _pause_here(db, "approval", tracer_provider)
    (paused,) = run_spans(spans())
    env = {"LANGGRAPH_STRICT_MSGPACK": "true"}
    result, (resumed,), _ = _other_process(tmp_path, db, "--resume", "approved", env=env)
    assert result["verdict"] == "approved"
    (link,) = resumed.links
    assert link.span_id == f"{paused.context.span_id:016x}"  # type: ignore[union-attr]
    with closing(sqlite3.connect(db, check_same_thread=False)) as conn:
        latest = SqliteSaver(conn).get_tuple(THREAD)
    assert latest is not None
    writer = parse_traceparent(latest.metadata[names.OTELSTREAM_TRACEPARENT])
    assert writer is not None
    assert f"{writer.span_id:016x}" == resumed.span_id


# ---- the traceparent itself --------------------------------------------------------------------


def test_traceparent_round_trips_and_rejects_anything_else(tracer_provider: TracerProvider) -> None:
    """A span context survives the metadata string; malformed values name no span."""
    span = tracer_provider.get_tracer("t").start_span("s")
    context = span.get_span_context()
    span.end()
    parsed = parse_traceparent(traceparent(context))
    assert parsed is not None
    assert (parsed.trace_id, parsed.span_id, parsed.trace_flags) == (
        context.trace_id,
        context.span_id,
        context.trace_flags,
    )
    assert parsed.is_remote
    for bad in (None, 42, "", "00-0-0-00", f"00-{'0' * 32}-{'1' * 16}-01", "01" + "x" * 53):
        assert parse_traceparent(bad) is None


def test_recorder_takes_links_known_before_the_run_starts(
    tracer_provider: TracerProvider, spans: Spans
) -> None:
    """A feed that read the starting checkpoint before the run (``links=``) gives the run span
    its link at the start, visible to samplers; ``resumed_from(linked=True)`` then only adds the
    resumed event, never a second link."""
    writer = parse_traceparent(f"00-{'ab' * 16}-{'cd' * 8}-01")
    assert writer is not None
    attributes = {
        names.OTELSTREAM_LINK_REASON: names.LINK_REASON_RESUME,
        names.LANGGRAPH_CHECKPOINT_ID: "cp-1",
    }
    recorder = RunRecorder(
        tracer_provider.get_tracer("t"),
        Instruments(metrics.NoOpMeterProvider().get_meter("t")),
        otelstream.Options(),
        name="remote",
        conversation_id="order-42",
        parent=None,
        links=[Link(writer, attributes)],
    )
    recorder.resumed_from(writer, names.LINK_REASON_RESUME, "cp-1", linked=True)
    recorder.finish(names.OUTCOME_COMPLETED, None)
    (run,) = spans()
    assert [(link.context.span_id, dict(link.attributes or {})) for link in run.links] == [
        (writer.span_id, attributes)
    ]
    assert [e.name for e in run.events] == [names.EVENT_RESUMED]


def test_traced_saver_copies_and_delegates(tracer_provider: TracerProvider) -> None:
    """The lent saver is the wrapped one in all but its three jobs: attributes of its own and
    unwrapped methods reach the wrapped saver, and a copy (LangGraph copies savers) still works."""
    recorder = RunRecorder(
        tracer_provider.get_tracer("t"),
        Instruments(metrics.NoOpMeterProvider().get_meter("t")),
        otelstream.Options(),
        name="copy",
        conversation_id=None,
        parent=None,
    )
    inner = InMemorySaver()
    saver = TracedSaver(inner, RunCheckpoints(recorder, names.LINK_REASON_CONTINUE))
    assert saver.storage is inner.storage
    assert saver.put_writes == inner.put_writes
    assert saver.config_specs == inner.config_specs
    clone = copy.copy(saver)
    assert clone.inner is inner
    assert clone.get_tuple(THREAD) is None
    recorder.finish(names.OUTCOME_COMPLETED, None)


def test_nothing_is_kept_per_thread(tracer_provider: TracerProvider) -> None:
    """The lent saver (the only tracing state a resume needs) dies with its run: a process that
    serves many threads holds none of it afterwards."""
    lent: list[weakref.ref[Any]] = []
    kinds: set[type] = set()

    def node(state: Draft) -> dict[str, Any]:
        saver = get_config()["configurable"]["__pregel_checkpointer"]
        kinds.add(type(saver))
        lent.append(weakref.ref(saver))
        return {"draft": "d"}

    builder = StateGraph(Draft)
    builder.add_node("node", node)
    builder.add_edge(START, "node")
    graph = _traced(builder.compile(checkpointer=InMemorySaver()), tracer_provider)
    for thread in range(50):
        graph.invoke(request(), {"configurable": {"thread_id": f"t{thread}"}})
    assert len(lent) == 50
    assert kinds == {TracedSaver}
    gc.collect()
    assert [ref for ref in lent if ref() is not None] == []
