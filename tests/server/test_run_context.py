"""What a run's config says about its origin, in process: the parent from ``traceparent`` in the
metadata, and the run id, exactly as a LangGraph server's config carries them (no server here)."""

from __future__ import annotations

from typing import Any

import pytest
from helpers import linear_graph
from opentelemetry import trace

import otelstream
from otelstream import names

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
SPAN_ID = "b7ad6b7169203331"
TRACEPARENT = f"00-{TRACE_ID}-{SPAN_ID}-01"


def _run_span(spans: Any) -> Any:
    (run,) = [s for s in spans() if s.name.startswith(("invoke_agent ", "invoke_workflow "))]
    return run


def _invoke(tracer_provider: Any, config: dict[str, Any]) -> None:
    traced = otelstream.instrument(linear_graph("a", "b"), tracer_provider=tracer_provider)
    traced.invoke({"items": []}, config)


def test_metadata_traceparent_is_the_parent(tracer_provider: Any, spans: Any) -> None:
    """With no current span, the run span is a child of the metadata's ``traceparent``."""
    _invoke(tracer_provider, {"metadata": {"traceparent": TRACEPARENT}})
    run = _run_span(spans)
    assert format(run.context.trace_id, "032x") == TRACE_ID
    assert run.parent is not None
    assert format(run.parent.span_id, "016x") == SPAN_ID
    assert run.parent.is_remote


def test_tracestate_travels_with_the_parent(tracer_provider: Any, spans: Any) -> None:
    """``tracestate`` beside ``traceparent`` in the metadata reaches the run span's context."""
    _invoke(tracer_provider, {"metadata": {"traceparent": TRACEPARENT, "tracestate": "v=1"}})
    assert _run_span(spans).context.trace_state.get("v") == "1"


def test_current_span_in_the_same_trace_wins(tracer_provider: Any, spans: Any) -> None:
    """A current span already in the metadata's trace (the server's ``worker.stream_run``) is
    the run span's parent, so the run nests under the server's spans."""
    tracer = tracer_provider.get_tracer("test")
    remote = trace.propagation.tracecontext.TraceContextTextMapPropagator().extract(
        {"traceparent": TRACEPARENT}
    )
    with tracer.start_as_current_span("worker.stream_run", context=remote) as worker:
        _invoke(tracer_provider, {"metadata": {"traceparent": TRACEPARENT}})
    run = _run_span(spans)
    assert run.parent is not None
    assert run.parent.span_id == worker.get_span_context().span_id


def test_metadata_wins_over_a_current_span_of_another_trace(
    tracer_provider: Any, spans: Any
) -> None:
    """A current span of another trace (a request that carried no caller context) does not
    take the run from the trace its creator named in the metadata."""
    tracer = tracer_provider.get_tracer("test")
    with tracer.start_as_current_span("POST /runs"):
        _invoke(tracer_provider, {"metadata": {"traceparent": TRACEPARENT}})
    run = _run_span(spans)
    assert format(run.context.trace_id, "032x") == TRACE_ID
    assert format(run.parent.span_id, "016x") == SPAN_ID


@pytest.mark.parametrize("bad", ["", "garbage", "00-" + "0" * 32 + "-" + "0" * 16 + "-01", 42])
def test_bad_traceparent_is_ignored(tracer_provider: Any, spans: Any, bad: Any) -> None:
    """A malformed, all-zero or non-string ``traceparent`` leaves the run where it would be:
    under the current span (here none, so a new trace)."""
    _invoke(tracer_provider, {"metadata": {"traceparent": bad}})
    assert _run_span(spans).parent is None


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        # The server's config: its run id in configurable and metadata, the config's own run_id
        # on the first attempt.
        (
            {
                "configurable": {"run_id": "srv-1", "thread_id": "t-1"},
                "metadata": {"run_id": "srv-1"},
                "run_id": "00000000-0000-0000-0000-000000000001",
            },
            "srv-1",
        ),
        ({"metadata": {"run_id": "srv-2"}}, "srv-2"),
        (
            {"run_id": "00000000-0000-0000-0000-000000000003"},
            "00000000-0000-0000-0000-000000000003",
        ),
    ],
)
def test_run_id(tracer_provider: Any, spans: Any, config: dict[str, Any], expected: str) -> None:
    """The run span's ``langgraph.run.id`` is the server's run id, else the config's."""
    _invoke(tracer_provider, config)
    assert _run_span(spans).attributes[names.LANGGRAPH_RUN_ID] == expected


def test_no_run_id(tracer_provider: Any, spans: Any) -> None:
    """A config without any run id gives the run span no ``langgraph.run.id``."""
    _invoke(tracer_provider, {})
    assert names.LANGGRAPH_RUN_ID not in _run_span(spans).attributes
