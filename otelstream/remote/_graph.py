"""``instrument_remote(remote_graph)``: a traced view of a ``langgraph.pregel.remote.RemoteGraph``.

The traced ``stream``/``astream`` ask the server for the modes otelstream needs
(``_request.plan``), feed every event to a ``RemoteFeed`` and yield exactly the chunks the bare
``RemoteGraph`` would. ``invoke``/``ainvoke`` are ``RemoteGraph``'s own, reading the traced
streams. Every exit path finishes the run exactly once, as in process (``otelstream.feeds.stream``).

A run on a thread that starts from an existing checkpoint links to the run that wrote it
(``_resume``): a resume reads the checkpoint's metadata from the server's first ``checkpoints``
event (no request of its own); a time travel names a checkpoint the stream does not show, so its
metadata is read with one ``threads.get_history`` request, made while the run streams and waited
for at most ``LOOKUP_WAIT`` seconds when it ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from typing import TYPE_CHECKING, Any

from langgraph.pregel.remote import RemoteGraph

from otelstream import _internal, names
from otelstream._log import logger as _log
from otelstream.feeds.checkpoints import traceparent
from otelstream.feeds.proxy import TracedProxy
from otelstream.feeds.stream import Tracing, aclose, failed_outcome
from otelstream.record.run import RunRecorder
from otelstream.remote._feed import RemoteFeed
from otelstream.remote._request import SKIP, RemotePlan, plan
from otelstream.remote._resume import link_writers, writers

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

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


LOOKUP_WAIT = 1.0
"""Seconds a time-travel run's end waits, at most, for the checkpoint lookup still in flight."""
_LOOKUP_FIELDS = ["checkpoint", "metadata"]


def _observe(
    feed: RemoteFeed, links: _Links | None, ns: tuple[str, ...], mode: str, data: Any
) -> None:
    try:
        feed.event(ns, mode, data)
        if links is not None and mode == "checkpoints" and not ns:
            links.checkpoint(data)
    except Exception:
        _internal.internal_error("remote observe")


class _Links:
    """One traced run's link to the run that wrote the checkpoint it starts from."""

    def __init__(self, feed: RemoteFeed, plan_: RemotePlan) -> None:
        self.feed = feed
        self.reason = plan_.reason
        self.own = feed.recorder.span.get_span_context()
        self.waiting = plan_.reason == names.LINK_REASON_RESUME
        self.found: list[dict[str, Any]] = []  # a lookup's answer (another thread may fill it)

    def checkpoint(self, data: Any) -> None:
        """A root ``checkpoints`` event: on a resume, the first is the one it resumes from."""
        if not self.waiting:
            return
        self.waiting = False
        if not isinstance(data, dict):
            return
        configurable = (data.get("config") or {}).get("configurable") or {}
        self.link(data.get("metadata"), configurable.get("checkpoint_id"))

    def link(self, metadata: Any, checkpoint_id: Any) -> None:
        """Link to the writer of a saved checkpoint (its metadata names the run that wrote it)."""
        if self.reason is None or not isinstance(metadata, dict):
            return
        if not isinstance(metadata.get("run_id"), str):
            return  # not a saved checkpoint: the run's own first one (a new thread)
        found = [
            w
            for w in writers(metadata, own_key=names.OTELSTREAM_REMOTE_TRACEPARENT)
            if w.span_id != self.own.span_id
        ]
        link_writers(
            self.feed.recorder,
            found,
            self.reason,
            checkpoint_id if isinstance(checkpoint_id, str) else None,
        )

    def looked_up(self, checkpoint_id: str) -> None:
        """Link from a lookup's answer, if it came."""
        for state in self.found[:1]:
            self.link(state.get("metadata"), checkpoint_id)


def _lookup_kwargs(plan_: RemotePlan) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "limit": 1,
        "checkpoint": {"checkpoint_id": plan_.checkpoint_id},
        "select": _LOOKUP_FIELDS,
    }
    if plan_.kwargs.get("headers") is not None:
        kwargs["headers"] = plan_.kwargs["headers"]
    return kwargs


def _thread_id(plan_: RemotePlan) -> str:
    return str(((plan_.config or {}).get("configurable") or {}).get("thread_id"))


def _settle(wait: Callable[[bool], None], outcome: str) -> None:
    try:
        wait(outcome == names.OUTCOME_CANCELLED)
    except Exception:
        _internal.internal_error("remote lookup")


async def _asettle(wait: Callable[[bool], Awaitable[None]], outcome: str) -> None:
    try:
        await wait(outcome == names.OUTCOME_CANCELLED)
    except Exception:
        _internal.internal_error("remote lookup")


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

    def _links(
        self, feed: RemoteFeed | None, plan_: RemotePlan
    ) -> tuple[RemotePlan, _Links | None]:
        """The plan to call with (the client's run span in a thread run's metadata) and the
        run's links."""
        if feed is None or plan_.reason is None:
            return plan_, None
        try:
            context = feed.recorder.span.get_span_context()
            if not context.is_valid:
                return plan_, None
            return plan_.marking(traceparent(context)), _Links(feed, plan_)
        except Exception:
            _internal.internal_error("remote links")
            return plan_, None

    def _lookup(self, links: _Links | None, plan_: RemotePlan) -> Callable[[bool], None] | None:
        """Start reading a time travel's checkpoint on a thread; the call that waits for it
        (a cancelled run does not wait: it links only if the answer is already there)."""
        if links is None or plan_.reason != names.LINK_REASON_TIME_TRAVEL:
            return None
        client = getattr(self.__wrapped__, "sync_client", None)
        checkpoint_id = plan_.checkpoint_id
        if client is None or checkpoint_id is None:
            return None
        thread_id, kwargs = _thread_id(plan_), _lookup_kwargs(plan_)

        def read() -> None:
            try:
                links.found.extend(client.threads.get_history(thread_id, **kwargs))
            except Exception:
                _log.debug("remote_checkpoint_lookup_failed", exc_info=True)

        try:
            worker = threading.Thread(target=read, name="otelstream-checkpoint-lookup", daemon=True)
            worker.start()
        except Exception:
            _internal.internal_error("remote lookup")
            return None

        def wait(cancelled: bool) -> None:
            if not cancelled:
                worker.join(LOOKUP_WAIT)
            if not worker.is_alive():
                links.looked_up(checkpoint_id)

        return wait

    def _alookup(
        self, links: _Links | None, plan_: RemotePlan
    ) -> Callable[[bool], Awaitable[None]] | None:
        """``_lookup`` for ``astream``: a task on the caller's loop, cancelled with the run."""
        if links is None or plan_.reason != names.LINK_REASON_TIME_TRAVEL:
            return None
        client = getattr(self.__wrapped__, "client", None)
        checkpoint_id = plan_.checkpoint_id
        if client is None or checkpoint_id is None:
            return None
        thread_id, kwargs = _thread_id(plan_), _lookup_kwargs(plan_)

        async def read() -> None:
            try:
                links.found.extend(await client.threads.get_history(thread_id, **kwargs))
            except Exception:
                _log.debug("remote_checkpoint_lookup_failed", exc_info=True)

        try:
            task = asyncio.ensure_future(read())
        except Exception:
            _internal.internal_error("remote lookup")
            return None

        async def wait(cancelled: bool) -> None:
            if not cancelled:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(task, LOOKUP_WAIT)
            if task.done():
                links.looked_up(checkpoint_id)
            else:
                task.cancel()

        return wait

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
        plan_, links = self._links(feed, plan_)
        wait = self._lookup(links, plan_)
        inner = stream(plan_.input, plan_.config, **plan_.kwargs)
        outcome, error = names.OUTCOME_COMPLETED, None
        try:
            for item in inner:
                ns, mode, data = plan_.split(item)
                if feed is not None:
                    _observe(feed, links, ns, mode, data)
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
                if wait is not None:
                    _settle(wait, outcome)
                end_feed(self._otelstream_tracing, feed, outcome, error)

    async def _atraced(
        self, astream: Callable[..., AsyncIterator[Any]], plan_: RemotePlan
    ) -> AsyncIterator[Any]:
        feed = self._start(plan_)
        plan_, links = self._links(feed, plan_)
        wait = self._alookup(links, plan_)
        inner = astream(plan_.input, plan_.config, **plan_.kwargs)
        outcome, error = names.OUTCOME_COMPLETED, None
        try:
            async for item in inner:
                ns, mode, data = plan_.split(item)
                if feed is not None:
                    _observe(feed, links, ns, mode, data)
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
                if wait is not None:
                    await _asettle(wait, outcome)
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
