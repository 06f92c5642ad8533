"""``instrument_remote(remote_graph)``: a traced view of a ``langgraph.pregel.remote.RemoteGraph``.

The traced ``stream``/``astream`` ask the server for the modes otelstream needs
(``_request.plan``), feed every event to a ``RemoteFeed`` and yield exactly the chunks the bare
``RemoteGraph`` would. ``invoke``/``ainvoke`` are ``RemoteGraph``'s own, reading the traced
streams. Every exit path finishes the run exactly once, as in process (``otelstream.feeds.stream``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from langgraph.pregel.remote import RemoteGraph

from otelstream import _internal, names
from otelstream.feeds.proxy import TracedProxy
from otelstream.feeds.stream import Tracing, aclose, failed_outcome
from otelstream.record.run import RunRecorder
from otelstream.remote._feed import RemoteFeed
from otelstream.remote._request import SKIP, RemotePlan, plan

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Iterator

    from opentelemetry.context import Context
    from opentelemetry.metrics import MeterProvider
    from opentelemetry.trace import TracerProvider

    from otelstream.options import Options


def start_feed(
    tracing: Tracing,
    *,
    agent_name: str,
    conversation_id: str | None,
    parent: Context | None,
    sees_nested: bool,
    start_ns: int | None = None,
) -> RemoteFeed:
    """Open a run span (now, or at ``start_ns``) and its feed, watched for stalls until
    ``end_feed``."""
    recorder = RunRecorder(
        tracing.tracer,
        tracing.instruments,
        tracing.options,
        name=agent_name,
        conversation_id=conversation_id,
        parent=parent,
        sees_nested=sees_nested,
        reads_tasks=True,
        start_ns=start_ns,
    )
    tracing.watchdog.watch(recorder)
    return RemoteFeed(recorder)


def end_feed(
    tracing: Tracing,
    feed: RemoteFeed,
    outcome: str,
    error: BaseException | None,
    *,
    end_ns: int | None = None,
) -> None:
    """Finish the run exactly once (now, or at ``end_ns``); a failure here is otelstream's, never
    the caller's."""
    try:
        feed.finish(outcome, error, end_ns=end_ns)
    except Exception:
        _internal.internal_error("remote finish")
    finally:
        tracing.watchdog.forget(feed.recorder)


def _observe(feed: RemoteFeed, ns: tuple[str, ...], mode: str, data: Any) -> None:
    try:
        feed.event(ns, mode, data)
    except Exception:
        _internal.internal_error("remote observe")


class InstrumentedRemoteGraph(TracedProxy):
    """A ``RemoteGraph`` whose ``stream``, ``astream``, ``invoke`` and ``ainvoke`` are traced.

    Each takes exactly ``RemoteGraph``'s arguments and returns exactly what it returns; every
    other attribute is the remote graph's own.
    """

    __slots__ = ()
    _factory = "otelstream.instrument_remote"

    def _plan(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> RemotePlan | None:
        try:
            return plan(args, kwargs, trace_chunks=self._otelstream_tracing.options.trace_chunks)
        except Exception:
            _internal.internal_error("remote plan")
            return None

    def _start(self, plan_: RemotePlan) -> RemoteFeed | None:
        graph = self.__wrapped__
        try:
            return start_feed(
                self._otelstream_tracing,
                agent_name=plan_.agent_name or str(graph.name or graph.assistant_id),
                conversation_id=plan_.conversation_id,
                parent=None,
                sees_nested=plan_.sees_nested,
            )
        except Exception:
            _internal.internal_error("remote start")
            return None

    def stream(self, *args: Any, **kwargs: Any) -> Iterator[Any]:
        """``RemoteGraph.stream``, traced."""
        plan_ = self._plan(args, kwargs)
        if plan_ is None:
            bare: Iterator[Any] = self.__wrapped__.stream(*args, **kwargs)
            return bare
        return self._traced(self.__wrapped__.stream, plan_)

    def astream(self, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        """``RemoteGraph.astream``, traced."""
        plan_ = self._plan(args, kwargs)
        if plan_ is None:
            bare: AsyncIterator[Any] = self.__wrapped__.astream(*args, **kwargs)
            return bare
        return self._atraced(self.__wrapped__.astream, plan_)

    def _traced(self, stream: Callable[..., Iterator[Any]], plan_: RemotePlan) -> Iterator[Any]:
        feed = self._start(plan_)
        inner = stream(plan_.input, plan_.config, **plan_.kwargs)
        outcome, error = names.OUTCOME_COMPLETED, None
        try:
            for item in inner:
                ns, mode, data = plan_.split(item)
                if feed is not None:
                    _observe(feed, ns, mode, data)
                out = plan_.reshape(item, ns, mode, data)
                if out is not SKIP:
                    yield out
        except GeneratorExit:
            outcome = names.OUTCOME_CANCELLED
            close = getattr(inner, "close", None)
            if close is not None:
                close()
            raise
        except BaseException as exc:
            outcome, error = failed_outcome(exc)
            raise
        finally:
            if feed is not None:
                end_feed(self._otelstream_tracing, feed, outcome, error)

    async def _atraced(
        self, astream: Callable[..., AsyncIterator[Any]], plan_: RemotePlan
    ) -> AsyncIterator[Any]:
        feed = self._start(plan_)
        inner = astream(plan_.input, plan_.config, **plan_.kwargs)
        outcome, error = names.OUTCOME_COMPLETED, None
        try:
            async for item in inner:
                ns, mode, data = plan_.split(item)
                if feed is not None:
                    _observe(feed, ns, mode, data)
                out = plan_.reshape(item, ns, mode, data)
                if out is not SKIP:
                    yield out
        except GeneratorExit:
            outcome = names.OUTCOME_CANCELLED
            await aclose(inner)
            raise
        except BaseException as exc:
            outcome, error = failed_outcome(exc)
            if outcome == names.OUTCOME_CANCELLED:
                await aclose(inner)
            raise
        finally:
            if feed is not None:
                end_feed(self._otelstream_tracing, feed, outcome, error)


def instrument_remote(
    remote_graph: Any,
    *,
    tracer_provider: TracerProvider | None = None,
    meter_provider: MeterProvider | None = None,
    options: Options | None = None,
) -> InstrumentedRemoteGraph:
    """Trace every ``stream``/``astream``/``invoke``/``ainvoke`` of a ``RemoteGraph``.

    Args:
        remote_graph: A ``langgraph.pregel.remote.RemoteGraph``.
        tracer_provider: Where spans go; the global provider when ``None``.
        meter_provider: Where metrics go; the global provider when ``None``.
        options: What to record; ``Options()`` when ``None``.

    Returns:
        A traced view of the remote graph; the remote graph itself is not changed.

    Raises:
        TypeError: ``remote_graph`` is not a ``RemoteGraph``, or ``options`` is not an
            ``Options``.
    """
    if isinstance(remote_graph, InstrumentedRemoteGraph):
        msg = "this graph is already instrumented; pass the original RemoteGraph"
        raise TypeError(msg)
    if not isinstance(remote_graph, RemoteGraph):
        msg = (
            "instrument_remote() takes a langgraph.pregel.remote.RemoteGraph, not "
            f"{type(remote_graph).__qualname__}; use otelstream.instrument() for a compiled graph"
        )
        raise TypeError(msg)
    return InstrumentedRemoteGraph(remote_graph, Tracing(tracer_provider, meter_provider, options))
