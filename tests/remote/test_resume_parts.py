"""The parts of remote resume links that need no server: why a run starts where it does, the
sidecar's derived run span ids, and the chunks the caller gets back without the client's key."""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from otelstream import names
from otelstream.remote._request import SKIP, plan
from otelstream.remote._resume import (
    derive_run_span_ids,
    derived_writer,
    planned_run_span,
    run_span_ids,
    start_reason,
    writers,
)

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


@pytest.mark.parametrize(
    ("has_input", "command", "checkpoint_id", "reason"),
    [
        (False, None, None, names.LINK_REASON_RESUME),
        (False, {"resume": "yes"}, None, names.LINK_REASON_RESUME),
        (False, {"goto": "x"}, None, names.LINK_REASON_RESUME),
        (False, {"resume": "yes"}, "c1", names.LINK_REASON_RESUME),
        (False, None, "c1", names.LINK_REASON_TIME_TRAVEL),
        (True, None, "c1", names.LINK_REASON_TIME_TRAVEL),
        (True, None, None, names.LINK_REASON_CONTINUE),
    ],
)
def test_start_reason_follows_langgraph(
    has_input: bool, command: Any, checkpoint_id: Any, reason: str
) -> None:
    """``resume`` for no input or a command, ``time_travel`` for a named checkpoint without a
    resume value, else ``continue``."""
    assert start_reason(has_input=has_input, command=command, checkpoint_id=checkpoint_id) == reason


def test_planned_run_span_gets_derived_ids(tracer_provider: Any, span_exporter: Any) -> None:
    """Only the span started in the block gets the run's ids; spans before, after and inside
    the block after it keep random ones."""
    tracer = tracer_provider.get_tracer("otelstream-test")
    assert derive_run_span_ids(tracer)
    assert derive_run_span_ids(tracer)  # once is enough: not wrapped twice
    tracer.start_span("before").end()
    with planned_run_span("run-1", None):
        run = tracer.start_span("run")
        child = tracer.start_span("child")
    run.end()
    child.end()
    tracer.start_span("after").end()
    spans = span_exporter.get_finished_spans()
    ids = {s.name: (s.context.trace_id, s.context.span_id) for s in spans}
    assert ids["run"] == run_span_ids("run-1", None)
    assert len({span for _, span in ids.values()}) == 4
    assert ids["child"][1] != run_span_ids("run-1", None)[1]


def test_a_parent_keeps_its_trace(tracer_provider: Any, span_exporter: Any) -> None:
    """With a caller's ``traceparent``, the run span is in the caller's trace, and the writer
    derived from a checkpoint's metadata names the same span."""
    tracer = tracer_provider.get_tracer("otelstream-test")
    derive_run_span_ids(tracer)
    parent = TraceContextTextMapPropagator().extract({"traceparent": TRACEPARENT})
    with planned_run_span("run-2", parent):
        tracer.start_span("run", context=parent).end()
    (span,) = span_exporter.get_finished_spans()
    writer = derived_writer({"run_id": "run-2", "traceparent": TRACEPARENT}, parent)
    assert writer is not None
    assert (writer.trace_id, writer.span_id) == (span.context.trace_id, span.context.span_id)
    assert f"{span.context.trace_id:032x}" == "4bf92f3577b34da6a3ce929d0e0e4736"


def test_writers_own_side_first_without_duplicates() -> None:
    """This side's span first, then the in-server one; the same span is named once."""
    other = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    found = writers(
        {names.OTELSTREAM_REMOTE_TRACEPARENT: TRACEPARENT, names.OTELSTREAM_TRACEPARENT: other},
        own_key=names.OTELSTREAM_REMOTE_TRACEPARENT,
    )
    assert [f"{w.span_id:016x}" for w in found] == ["00f067aa0ba902b7", "b7ad6b7169203331"]
    both = {
        names.OTELSTREAM_REMOTE_TRACEPARENT: TRACEPARENT,
        names.OTELSTREAM_TRACEPARENT: TRACEPARENT,
    }
    same = writers(both, own_key=names.OTELSTREAM_REMOTE_TRACEPARENT)
    assert len(same) == 1
    assert writers({names.OTELSTREAM_TRACEPARENT: "garbage"}) == []


def test_chunks_lose_only_the_client_key() -> None:
    """The key the client added leaves each chunk kind that carries metadata; the rest stays."""
    config = {"configurable": {"thread_id": "t"}}
    modes = {"stream_mode": ["messages", "tasks", "debug"]}
    remote = plan((None, config), modes, trace_chunks=True)
    assert remote is not None
    assert "checkpoints" in remote.kwargs["stream_mode"]  # a resume reads where it resumes from
    marked = remote.marking(TRACEPARENT)
    assert marked.kwargs["metadata"] == {names.OTELSTREAM_REMOTE_TRACEPARENT: TRACEPARENT}
    key = names.OTELSTREAM_REMOTE_TRACEPARENT
    message = ({"content": "hi"}, {"langgraph_node": "agent", key: TRACEPARENT})
    out = marked.reshape(message, (), "messages", message)
    assert out.data == ({"content": "hi"}, {"langgraph_node": "agent"})
    task = {"id": "1", "metadata": {key: TRACEPARENT, "a": 1}}
    assert marked.reshape(task, (), "tasks", task).data == {"id": "1", "metadata": {"a": 1}}
    debug = {"type": "task", "payload": {"metadata": {key: TRACEPARENT}}}
    assert marked.reshape(debug, (), "debug", debug).data == {
        "type": "task",
        "payload": {"metadata": {}},
    }
    plain = {"id": "2", "metadata": {"a": 1}}
    assert marked.reshape(plain, (), "tasks", plain).data is plain
    assert marked.reshape(task, (), "checkpoints", task) is SKIP  # asked for by otelstream only
