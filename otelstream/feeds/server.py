"""What a run's config says about where the run comes from, when it runs on a LangGraph server.

A LangGraph server (``langgraph dev``, ``langgraph up``, an Agent Server) runs each graph with a
config it builds from the request that created the run:

* ``configurable.run_id`` and ``metadata.run_id`` carry the server's run id (the config's own
  ``run_id`` too, on the first attempt only), ``configurable.thread_id`` the thread's;
* ``metadata`` carries the creator's metadata, so a ``traceparent`` put there by the caller (or by
  a cron's metadata) reaches the graph.

When the server's own OpenTelemetry is on (``langgraph_api/otel_context.py``, ``OTEL_ENABLED``),
the graph already runs inside its ``worker.stream_run`` span, which continues the trace of the
HTTP request (and so the caller's ``traceparent`` header). The run span nests there unless the
metadata names another trace.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from opentelemetry import trace
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

if TYPE_CHECKING:
    from opentelemetry.context import Context

# W3C by definition: the metadata keys are W3C's, whatever propagator the process configured.
_W3C = TraceContextTextMapPropagator()
_TRACEPARENT = "traceparent"
_TRACESTATE = "tracestate"
_RUN_ID = "run_id"


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def parent_from_metadata(config: Mapping[str, Any]) -> Context | None:
    """The context the run span should be a child of, from ``traceparent`` in the config's
    metadata; ``None`` to keep the current context.

    The current context wins when its span is already in the metadata's trace: that is the
    server's ``worker.stream_run`` span continuing the caller's trace, and the run span nests
    under it. Otherwise the metadata is the creator's explicit word and wins. A missing or
    malformed ``traceparent`` is ignored.

    Args:
        config: The run's effective config (``metadata`` is read).
    """
    metadata = _mapping(config.get("metadata"))
    traceparent = metadata.get(_TRACEPARENT)
    if not isinstance(traceparent, str):
        return None
    carrier = {_TRACEPARENT: traceparent}
    tracestate = metadata.get(_TRACESTATE)
    if isinstance(tracestate, str):
        carrier[_TRACESTATE] = tracestate
    context = _W3C.extract(carrier)
    remote = trace.get_current_span(context).get_span_context()
    if not remote.is_valid:
        return None
    current = trace.get_current_span().get_span_context()
    if current.is_valid and current.trace_id == remote.trace_id:
        return None
    return context


def run_id(config: Mapping[str, Any]) -> str | None:
    """The run's id: the LangGraph server's (``configurable``/``metadata``), else the config's.

    The server puts its run id in ``configurable`` and ``metadata`` on every attempt; the
    config's top-level ``run_id`` (LangChain's id of the root run) is the same id on the first
    attempt only, and is all an in-process caller may have set.

    Args:
        config: The run's effective config.
    """
    for source in (_mapping(config.get("configurable")), _mapping(config.get("metadata")), config):
        value = source.get(_RUN_ID)
        if value is not None:
            return str(value)
    return None
