"""The traced-graph proxy: a view of a graph whose streaming methods go through otelstream."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from langchain_core.runnables import Runnable

from otelstream.feeds.once import suppress

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

    from otelstream.feeds.stream import Tracing


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

    def stream_events(
        self, input: Any, config: Any = None, *, version: str = "v2", **kwargs: Any
    ) -> Any:
        """The graph's ``stream_events``, run over the traced ``stream``: v3's run stream, or
        LangChain's v1/v2 events."""
        if version == "v3":
            return type(self.__wrapped__).stream_events(
                self, input, config, version=version, **kwargs
            )
        return Runnable.stream_events(self, input, config, version=version, **kwargs)  # type: ignore[call-overload]

    def astream_events(
        self, input: Any, config: Any = None, *, version: str = "v2", **kwargs: Any
    ) -> Any:
        """The graph's ``astream_events``, run over the traced ``astream``: (awaitable) v3's run
        stream, or LangChain's v1/v2 events."""
        if version == "v3":
            return type(self.__wrapped__).astream_events(
                self, input, config, version=version, **kwargs
            )
        return Runnable.astream_events(self, input, config, version=version, **kwargs)  # type: ignore[call-overload]

    # LangGraph's v3 entry points call ``self.stream``/``self.astream``: bound to this view, they
    # reach the traced ones. The run is traced here, so an otelstream transformer registered on
    # the graph stays passive (``suppress``): never a run traced twice.
    def _pregel_stream_v3(self, *args: Any, **kwargs: Any) -> Any:
        with suppress():
            return type(self.__wrapped__)._pregel_stream_v3(self, *args, **kwargs)

    async def _apregel_stream_v3(self, *args: Any, **kwargs: Any) -> Any:
        with suppress():  # LangGraph builds the async run's transformers when it is awaited
            return await type(self.__wrapped__)._apregel_stream_v3(self, *args, **kwargs)

    def _astream_events_v1_v2(self, *args: Any, **kwargs: Any) -> Any:
        # LangChain's v1/v2 astream_events reads the graph through ``self.astream``.
        return Runnable._astream_events_v1_v2(self, *args, **kwargs)  # type: ignore[arg-type]
