"""``instrument(graph)``: a traced view of a compiled graph or of a ``RemoteGraph``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, overload

from langgraph.pregel import Pregel
from langgraph.pregel.remote import RemoteGraph

from otelstream.feeds.proxy import InstrumentedGraph
from otelstream.feeds.stream import Tracing
from otelstream.remote import InstrumentedRemoteGraph, instrument_remote

if TYPE_CHECKING:
    from opentelemetry.metrics import MeterProvider
    from opentelemetry.trace import TracerProvider

    from otelstream.options import Options


@overload
def instrument(
    graph: RemoteGraph,
    *,
    tracer_provider: TracerProvider | None = None,
    meter_provider: MeterProvider | None = None,
    options: Options | None = None,
) -> InstrumentedRemoteGraph: ...


@overload
def instrument(
    graph: Any,
    *,
    tracer_provider: TracerProvider | None = None,
    meter_provider: MeterProvider | None = None,
    options: Options | None = None,
) -> InstrumentedGraph: ...


def instrument(
    graph: Any,
    *,
    tracer_provider: TracerProvider | None = None,
    meter_provider: MeterProvider | None = None,
    options: Options | None = None,
) -> InstrumentedGraph | InstrumentedRemoteGraph:
    """Trace every ``stream``/``astream``/``invoke``/``ainvoke`` of a compiled LangGraph graph.

    Args:
        graph: A compiled graph: ``StateGraph(...).compile()``, a ``create_agent`` agent, any
            ``langgraph.pregel.Pregel``, or a ``RemoteGraph`` on a LangGraph server (traced
            from its stream; see the README's "Runs on a LangGraph server").
        tracer_provider: Where spans go; the global provider when ``None``.
        meter_provider: Where metrics go; the global provider when ``None``.
        options: What to record; ``Options()`` when ``None``.

    Returns:
        A traced view of the graph; the graph itself is not changed.

    Raises:
        TypeError: ``graph`` is not a compiled graph, or ``options`` is not an ``Options``.
    """
    if isinstance(graph, InstrumentedGraph):
        msg = "this graph is already instrumented; pass the original graph to instrument()"
        raise TypeError(msg)
    if isinstance(graph, RemoteGraph):
        return instrument_remote(
            graph, tracer_provider=tracer_provider, meter_provider=meter_provider, options=options
        )
    if not isinstance(graph, Pregel):
        hint = ""
        if hasattr(graph, "compile"):
            hint = "; call .compile() on the StateGraph first"
        msg = (
            "instrument() takes a compiled LangGraph graph (langgraph.pregel.Pregel), "
            f"not {type(graph).__qualname__}{hint}"
        )
        raise TypeError(msg)
    return InstrumentedGraph(graph, Tracing(tracer_provider, meter_provider, options))
