"""Following one run on a LangGraph server to its end, and turning it into one trace.

A run still going is joined (``runs.join_stream``): live, or replayed from its first event when it
was created with ``stream_resumable=True``. A run that ended before the sidecar saw it is replayed
the same way where the server kept its events, else traced from what the server still has: its
status and times. Then, for a run on a thread, the task spans its stream did not carry are rebuilt
from the thread's checkpoints (``_history``).

How a run ended is the server's word (``runs.get``) wherever the server still knows the run. A
stateless run's thread, and the run with it, is deleted when it ends: a stream that closed with no
``error`` event and a run gone afterwards is ``completed`` (``otelstream.remote.outcome_inferred``);
a run gone before its stream was seen to close is ``unknown`` when it was stateless (it may well
have finished) and ``RunLost`` when it was not (the server forgot a run it should keep).

A run that resumes a thread, or travels back to an older checkpoint, links to the sidecar's run
span of the run that wrote that checkpoint (and to its in-server run span, where the server is
traced too). The sidecar's run span ids are derived from the server's run ids (``_resume``), so it
keeps nothing per thread: it reads the checkpoint's metadata (which names the writer's run id)
with one ``threads.get_history`` request, after finding which checkpoint the run started from: the
one the caller named (time travel) or the parent of the run's first checkpoint (a resume, read
with the run's history, one more request when the run's trace did not need it anyway). An
interrupted run's ``gen_ai.agent.paused`` names its last checkpoint, from the same history (or
one request).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import TYPE_CHECKING, Any

from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from otelstream import _internal, names
from otelstream._log import logger as _log
from otelstream.remote._feed import RemoteError, remote_error
from otelstream.remote._graph import end_feed, start_feed
from otelstream.remote._history import (
    HISTORY_LIMIT,
    own_checkpoints,
    record_steps,
    run_error,
    silent_steps,
    steps,
)
from otelstream.remote._resume import (
    derive_run_span_ids,
    derived_writer,
    link_writers,
    planned_run_span,
    start_reason,
    writers,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from opentelemetry.context import Context

    from otelstream.feeds.stream import Tracing
    from otelstream.record.run import RunRecorder
    from otelstream.remote._discover import Found
    from otelstream.remote._feed import RemoteFeed

ACTIVE = frozenset({"pending", "running"})
_OUTCOMES = {
    "success": names.OUTCOME_COMPLETED,
    "error": names.OUTCOME_ERROR,
    "timeout": names.OUTCOME_TIMEOUT,
    "interrupted": names.OUTCOME_CANCELLED,
    "rollback": names.OUTCOME_CANCELLED,
}
_MAX_BACKOFF = 30.0
_KEEP_GRAPHS = 1024
_HISTORY_FIELDS = ["created_at", "metadata", "tasks", "checkpoint", "parent_checkpoint"]
_CHECKPOINT_FIELDS = ["checkpoint", "metadata"]


class RunLost(RemoteError):
    """A followed run the server no longer knows; its trace ends as an error of this type.

    The server restarted without keeping its runs (the in-memory ``langgraph dev`` does), or the
    run was deleted while it ran.
    """


def not_found(exc: BaseException) -> bool:
    """Whether ``exc`` is the server answering 404 (the SDK's errors are httpx's, by duck type)."""
    response = getattr(exc, "response", None)
    return getattr(response, "status_code", None) == 404


def _split(event: str) -> tuple[tuple[str, ...], str]:
    mode, _, ns = event.partition("|")
    return (tuple(ns.split("|")) if ns else ()), mode


def _ns(value: Any) -> int | None:
    from otelstream.remote._discover import parse_time  # noqa: PLC0415 - one parser for both

    parsed = parse_time(value)
    return None if parsed is None else int(parsed.timestamp() * 1_000_000) * 1000


def _parent(metadata: dict[str, Any]) -> Context | None:
    traceparent = metadata.get("traceparent")
    if not isinstance(traceparent, str):
        return None
    carrier = {"traceparent": traceparent}
    if isinstance(metadata.get("tracestate"), str):
        carrier["tracestate"] = metadata["tracestate"]
    return TraceContextTextMapPropagator().extract(carrier)


def _modes(kwargs: dict[str, Any]) -> list[str]:
    modes = kwargs.get("stream_mode")
    if isinstance(modes, str):
        return [modes]
    return [str(m) for m in modes] if isinstance(modes, (list, tuple)) else []


class _Watch:
    """One run's feed, with what its stream showed: the modes, and the root tasks it started."""

    def __init__(self, feed: RemoteFeed, on_event: Callable[[str, str | None], None]) -> None:
        self.feed = feed
        self.modes: set[str] = set()
        self.started: set[str] = set()
        self._on_event = on_event

    def event(self, ns: tuple[str, ...], mode: str, data: Any, event_id: str | None) -> None:
        try:
            if mode not in ("metadata", "error"):  # protocol events, not stream modes
                self.modes.add(mode)
            if mode == "tasks" and not ns and isinstance(data, dict) and "triggers" in data:
                self.started.add(str(data.get("id")))
            self.feed.event(ns, mode, data)
            self._on_event(mode, event_id)
        except Exception:
            _internal.internal_error("sidecar observe")


class Follower:
    """Follows runs to their end, each as one trace.

    Args:
        client: A ``langgraph_sdk`` async client.
        tracing: Where spans and metrics go.
        streams: Bounds the runs streamed at once; a run waiting here is replayed or rebuilt
            when its turn comes, never dropped.
        requests: Bounds the short requests in flight at once.
        rejoin_delay: Seconds before rejoining a run whose stream closed while it still ran.
        on_event: Called with each event's mode and id (the sidecar's lag metric).
        on_reconnect: Called once per lost stream, however many attempts it takes.
    """

    def __init__(
        self,
        client: Any,
        tracing: Tracing,
        *,
        streams: asyncio.Semaphore,
        requests: asyncio.Semaphore,
        rejoin_delay: float,
        on_event: Callable[[str, str | None], None],
        on_reconnect: Callable[[], None],
    ) -> None:
        self._client = client
        self._tracing = tracing
        self._streams = streams
        self._requests = requests
        self._rejoin_delay = rejoin_delay
        self._on_event = on_event
        self._on_reconnect = on_reconnect
        self._graphs: dict[str, asyncio.Future[str | None]] = {}
        self._derives = derive_run_span_ids(tracing.tracer)

    # ---- the graph's name --------------------------------------------------------------------

    async def graph_name(self, found: Found) -> str:
        """The run's graph id (``assistants.get``, cached), never the assistant's UUID."""
        assistant_id = str(found.run.get("assistant_id") or "")
        future = self._graphs.get(assistant_id)
        if future is None:
            future = asyncio.ensure_future(self._fetch_graph(assistant_id))
            self._graphs[assistant_id] = future
            while len(self._graphs) > _KEEP_GRAPHS:
                del self._graphs[next(iter(self._graphs))]
        name = await asyncio.shield(future)
        if name is None:
            self._graphs.pop(assistant_id, None)  # ask again next time
            metadata = found.run.get("metadata") or {}
            name = found.thread_metadata.get("graph_id") or metadata.get("graph_id")
        return str(name) if name else "LangGraph"

    async def _fetch_graph(self, assistant_id: str) -> str | None:
        if not assistant_id:
            return None
        # Not behind the request bound: one request per assistant (the rest wait on its future),
        # and a stateless run must not wait behind a look's listings before it is joined.
        try:
            assistant = await self._client.assistants.get(assistant_id)
        except Exception:
            return None
        graph_id = assistant.get("graph_id") if isinstance(assistant, dict) else None
        return str(graph_id) if graph_id else None

    # ---- one run -----------------------------------------------------------------------------

    async def trace(self, found: Found, graph: str) -> str:
        """Follow ``found`` to its end and export its trace; the outcome."""
        run, thread_id = found.run, found.thread_id
        run_id = str(run["run_id"])
        kwargs: dict[str, Any] = run.get("kwargs") or {}
        status = str(run.get("status"))
        ended = status not in ACTIVE
        resumable, temporary = bool(kwargs.get("resumable")), bool(kwargs.get("temporary"))
        now = time.time_ns()
        created = _ns(run.get("created_at"))
        parent = _parent(run.get("metadata") or {})
        planned = planned_run_span(run_id, parent) if self._derives else contextlib.nullcontext()
        with planned:
            feed = start_feed(
                self._tracing,
                agent_name=graph,
                conversation_id=None if temporary else thread_id,
                parent=parent,
                sees_nested=True,
                start_ns=min(created, now) if created is not None else now,
            )
        recorder = feed.recorder
        recorder.set_run_attribute(names.OTELSTREAM_REMOTE_RUN_ID, run_id)
        if resumable and status != "pending":
            recorder.set_run_attribute(names.OTELSTREAM_REMOTE_REPLAYED, True)
        watch = _Watch(feed, self._on_event)
        outcome, error, inferred = names.OUTCOME_CANCELLED, None, False
        end_ns = _ns(run.get("updated_at")) if ended else None
        try:
            async with self._streams:
                if ended and not resumable:  # nothing to replay: the server's word and times
                    outcome = _OUTCOMES.get(status, names.OUTCOME_UNKNOWN)
                    error = run_error(status)
                else:
                    outcome, error, inferred = await self._stream(
                        thread_id, run_id, watch, temporary=temporary
                    )
                lost = isinstance(error, RunLost) or outcome == names.OUTCOME_UNKNOWN
                history: list[dict[str, Any]] | None = None
                if not (temporary or lost or (resumable and "tasks" in _modes(kwargs))):
                    error, history = await self._rebuild(thread_id, run_id, watch, end_ns, error)
                if not (temporary or lost):
                    await self._link(thread_id, run_id, kwargs, feed, history)
                    if recorder.interrupted:
                        await self._paused_at(thread_id, run_id, recorder, history)
        finally:
            recorder.set_run_attribute(names.OTELSTREAM_REMOTE_STREAM_MODES, sorted(watch.modes))
            if inferred:
                recorder.set_run_attribute(names.OTELSTREAM_REMOTE_OUTCOME_INFERRED, True)
            end_feed(self._tracing, feed, outcome, error, end_ns=end_ns)
        return outcome

    async def _stream(
        self, thread_id: str, run_id: str, watch: _Watch, *, temporary: bool
    ) -> tuple[str, BaseException | None, bool]:
        """Join the run until it ends: ``(outcome, error, outcome_inferred)``."""
        client = self._client
        last_id = "-1"
        failures = 0
        while True:
            closed = False
            try:
                async for part in client.runs.join_stream(thread_id, run_id, last_event_id=last_id):
                    if part.id:
                        last_id = part.id
                    ns, mode = _split(part.event)
                    watch.event(ns, mode, part.data, part.id)
                    if mode == "error":
                        if await self._known(thread_id, run_id):
                            return names.OUTCOME_ERROR, remote_error(part.data), False
                        # A server that lost the run says so as an error event, "Run not found".
                        return self._gone(run_id, temporary=temporary, closed=False)
                closed = True
                failures = 0
                async with self._requests:
                    status = (await client.runs.get(thread_id, run_id)).get("status")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not_found(exc):
                    return self._gone(run_id, temporary=temporary, closed=closed)
                if failures == 0:  # one loss, however many attempts it takes to get back
                    self._on_reconnect()
                failures += 1
                await asyncio.sleep(min(0.25 * 2 ** min(failures, 7), _MAX_BACKOFF))
                continue
            if status not in ACTIVE:
                return _OUTCOMES.get(str(status), names.OUTCOME_UNKNOWN), run_error(status), False
            # The stream ended but the run goes on (a server restart, a proxy timeout): rejoin.
            self._on_reconnect()
            await asyncio.sleep(self._rejoin_delay)

    async def _known(self, thread_id: str, run_id: str) -> bool:
        try:
            async with self._requests:
                await self._client.runs.get(thread_id, run_id)
        except Exception as exc:
            return not not_found(exc)
        return True

    @staticmethod
    def _gone(
        run_id: str, *, temporary: bool, closed: bool
    ) -> tuple[str, BaseException | None, bool]:
        """The outcome of a run the server no longer knows."""
        if closed:  # the stream closed with no error event, then the run was deleted
            return names.OUTCOME_COMPLETED, None, True
        if temporary:  # a stateless run is deleted when it ends: how it ended is unknown
            return names.OUTCOME_UNKNOWN, None, False
        return (
            names.OUTCOME_ERROR,
            RunLost(
                f"the server no longer knows run {run_id}: it restarted without keeping its "
                "runs, or the run was deleted"
            ),
            False,
        )

    async def _history(self, thread_id: str, run_id: str) -> list[dict[str, Any]] | None:
        """The run's own checkpoints (newest first), or ``None`` if the server would not say."""
        try:
            async with self._requests:
                history: list[dict[str, Any]] = await self._client.threads.get_history(
                    thread_id,
                    limit=HISTORY_LIMIT,
                    metadata={"run_id": run_id},
                    select=_HISTORY_FIELDS,
                )
        except asyncio.CancelledError:
            raise
        except Exception:
            _log.debug("sidecar_history_unavailable", run_id=run_id, exc_info=True)
            return None
        return history

    async def _link(
        self,
        thread_id: str,
        run_id: str,
        kwargs: dict[str, Any],
        feed: RemoteFeed,
        history: list[dict[str, Any]] | None,
    ) -> None:
        """Link a run that resumed the thread or travelled back on it to the run that wrote the
        checkpoint it started from (a new input, ``continue``, is not linked: see the module
        docstring)."""
        configurable = (kwargs.get("config") or {}).get("configurable") or {}
        named = configurable.get("checkpoint_id") or kwargs.get("checkpoint_id")
        reason = start_reason(
            has_input=kwargs.get("input") is not None,
            command=kwargs.get("command"),
            checkpoint_id=named,
        )
        if reason == names.LINK_REASON_CONTINUE:
            return
        checkpoint_id = named if isinstance(named, str) and named else None
        if checkpoint_id is None:  # a resume: from the parent of the run's first checkpoint
            if history is None:
                history = await self._history(thread_id, run_id)
            own = own_checkpoints(history or [], run_id)
            parent = (own[0].get("parent_checkpoint") or {}) if own else {}
            checkpoint_id = parent.get("checkpoint_id")
        if not isinstance(checkpoint_id, str):
            return
        try:
            async with self._requests:
                found = await self._client.threads.get_history(
                    thread_id,
                    limit=1,
                    checkpoint={"checkpoint_id": checkpoint_id},
                    select=_CHECKPOINT_FIELDS,
                )
        except asyncio.CancelledError:
            raise
        except Exception:
            _log.debug("sidecar_checkpoint_unavailable", run_id=run_id, exc_info=True)
            return
        try:
            metadata = found[0].get("metadata") if found else None
            if not isinstance(metadata, dict):
                return
            mine = derived_writer(metadata, _parent(metadata)) if self._derives else None
            own_span = feed.recorder.span.get_span_context().span_id
            link_writers(
                feed.recorder,
                [w for w in writers(metadata, own=mine) if w.span_id != own_span],
                reason,
                checkpoint_id,
                at_ns=feed.recorder.start_ns,
            )
        except Exception:
            _internal.internal_error("sidecar link")

    async def _paused_at(
        self,
        thread_id: str,
        run_id: str,
        recorder: RunRecorder,
        history: list[dict[str, Any]] | None,
    ) -> None:
        """Name the checkpoint an interrupted run paused at (its last) on ``gen_ai.agent.paused``:
        from the run's history where it was read, else with one request."""
        if history is None:
            try:
                async with self._requests:
                    history = await self._client.threads.get_history(
                        thread_id,
                        limit=1,
                        metadata={"run_id": run_id},
                        select=["checkpoint", "metadata", "created_at"],
                    )
            except asyncio.CancelledError:
                raise
            except Exception:
                _log.debug("sidecar_history_unavailable", run_id=run_id, exc_info=True)
                return
        own = own_checkpoints(history or [], run_id)
        checkpoint_id = (own[-1].get("checkpoint") or {}).get("checkpoint_id") if own else None
        if isinstance(checkpoint_id, str):
            recorder.saved_checkpoint_id = checkpoint_id

    async def _rebuild(
        self,
        thread_id: str,
        run_id: str,
        watch: _Watch,
        end_ns: int | None,
        error: BaseException | None,
    ) -> tuple[BaseException | None, list[dict[str, Any]] | None]:
        """Task spans from the thread's checkpoints for what the stream did not show.

        Returns the run's error, made exact from the failed step where the server gave none,
        and the history it read.
        """
        history = await self._history(thread_id, run_id)
        if history is None:
            return error, None
        try:
            found = steps(history, run_id)
            silent = silent_steps(history, run_id)
            if silent:
                watch.feed.recorder.set_run_attribute(names.OTELSTREAM_RECONSTRUCTED_SILENT, silent)
            record_steps(
                self._tracing,
                watch.feed.recorder,
                found,
                seen=watch.started,
                end_ns=end_ns if end_ns is not None else time.time_ns(),
            )
        except Exception:
            _internal.internal_error("sidecar rebuild")
            return error, history
        failed = [s for s in found if s.error is not None]
        if failed and (error is None or type(error).__name__ == "RunError"):
            return run_error("error", failed[-1].error), history
        return error, history
