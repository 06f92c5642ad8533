"""``instrument(graph)``: a traced view of one compiled graph."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, overload

from langgraph.pregel import Pregel
from langgraph.pregel.remote import RemoteGraph

from otelstream._wrap import Tracing

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

    from opentelemetry.metrics import MeterProvider
    from opentelemetry.trace import TracerProvider

    from otelstream.options import Options
    from otelstream.remote import InstrumentedRemoteGraph


class TracedProxy:
    """A traced view of a graph: ``invoke``/``ainvoke`` are the graph's own methods run over
    the view's traced ``stream``/``astream``, and every other attribute is the graph's own."""

    __slots__ = ("__wrapped__", "_otelstream_tracing")
    _factory = "otelstream.instrument"

    def __init__(self, graph: Any, tracing: Tracing) -> None:
        object.__setattr__(self, "__wrapped__", graph)
        object.__setattr__(self, "_otelstream_tracing", tracing)

    def invoke(self, *args: Any, **kwargs: Any) -> Any:
        """The graph's own ``invoke``, reading its chunks from the traced ``stream``."""
        return type(self.__wrapped__).invoke(self, *args, **kwargs)

    async def ainvoke(self, *args: Any, **kwargs: Any) -> Any:
        """The graph's own ``ainvoke``, reading its chunks from the traced ``astream``."""
        return await type(self.__wrapped__).ainvoke(self, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.__wrapped__, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self.__wrapped__, name, value)

    def __repr__(self) -> str:
        return f"{self._factory}({self.__wrapped__!r})"


class InstrumentedGraph(TracedProxy):
    """A compiled graph whose ``stream``, ``astream``, ``invoke`` and ``ainvoke`` are traced.

    Each takes exactly the graph's arguments and returns exactly what the graph returns; every
    other attribute is the graph's own.
    """

    __slots__ = ()

    def stream(self, *args: Any, **kwargs: Any) -> Iterator[Any]:
        """The graph's ``stream``, traced."""
        graph = self.__wrapped__
        stream: Iterator[Any] = self._otelstream_tracing.stream(graph, graph.stream, args, kwargs)
        return stream

    def astream(self, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        """The graph's ``astream``, traced."""
        graph = self.__wrapped__
        tracing = self._otelstream_tracing
        stream: AsyncIterator[Any] = tracing.astream(graph, graph.astream, args, kwargs)
        return stream


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
        from otelstream.remote import instrument_remote  # noqa: PLC0415 - no cycle at import

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
