"""``otelstream sidecar``: follow every run on a LangGraph server and turn each into one trace.

::

    otelstream sidecar --url http://127.0.0.1:2024 [--assistant ID ...] [--poll SECONDS]
                       [--state FILE] [--max-runs N] [--concurrency N] [--status]

Every ``--poll`` seconds the sidecar looks for the runs created since its last look, whatever
their status by then (``_discover``), and follows each to its end (``_follow``): a run still going
is joined live; one created with ``stream_resumable=True`` is replayed from its first event, even
after it ended; a run on a thread has the task spans its stream did not carry rebuilt from the
thread's checkpoints (``_history``). The events go to the same record layer as
``instrument_remote``. Traces and metrics go where ``otelstream.configure()`` sends them (the
``OTEL_*`` environment, else JSON Lines files).

Following a run is waiting on I/O, so the sidecar follows every run it finds at once; only the
streams open at the same time (``--concurrency``, 256) and the short requests are bounded, and a
run waiting for a stream is replayed or rebuilt when its turn comes, never dropped. A run the
sidecar learns of but cannot trace at all is counted (``otelstream.sidecar.runs.untraced``) and
logged (``sidecar_run_untraced``).

The server streams a run only in the modes its creator asked for, so for a full trace create runs
with ``stream_mode=SIDECAR_STREAM_MODES``, ``stream_subgraphs=True`` and ``stream_resumable=True``
(``create_run_kwargs()`` returns them). A run whose metadata carries a W3C ``traceparent`` joins the
caller's trace::

    carrier = {}
    TraceContextTextMapPropagator().inject(carrier)
    await client.runs.create(thread_id, "agent", input=..., metadata=carrier,
                             **create_run_kwargs())

A run that resumes a thread or travels back on it links to the sidecar's span of the run that
wrote the checkpoint it started from: the sidecar's run span ids are derived from the server's run
ids, so nothing is written to the server or kept per thread (``_follow``, ``_resume``).

Finished run ids and the discovery cursor are kept in the ``--state`` JSON file, so a restarted
sidecar never traces a run twice (a run it was following when stopped stays traced as
``cancelled``) and picks up the runs created while it was down; the same file carries the status
line ``--status`` prints. Ctrl-C (or SIGTERM) ends the runs being followed as ``cancelled``,
flushes the exporters and exits 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
from typing import TYPE_CHECKING, Any

from opentelemetry import metrics

from otelstream import __version__, _internal, names
from otelstream._log import logger as _log
from otelstream.feeds.stream import Tracing
from otelstream.record.instruments import DURATION_BUCKETS
from otelstream.remote._discover import Discovery, Found, Look
from otelstream.remote._follow import Follower, RunLost
from otelstream.remote._sidecar_cli import DEFAULT_CONCURRENCY, DEFAULT_POLL, main
from otelstream.remote._state import State

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from opentelemetry.metrics import MeterProvider
    from opentelemetry.trace import TracerProvider

    from otelstream.options import Options

__all__ = ["SIDECAR_STREAM_MODES", "RunLost", "Sidecar", "create_run_kwargs", "main"]

SIDECAR_STREAM_MODES = ["tasks", "messages-tuple", "custom", "updates"]
"""The modes a client should create runs with for the sidecar to see the whole span model."""

_REQUESTS = 32
_MAX_BACKOFF = 30.0
_KEEP_IGNORED = 10_000
_UNTRACED_DELETED = "deleted"


def create_run_kwargs() -> dict[str, Any]:
    """The ``runs.create``/``runs.stream`` arguments that give the sidecar a run's whole trace:
    its modes, subgraph events and a resumable stream (for replay)."""
    return {
        "stream_mode": list(SIDECAR_STREAM_MODES),
        "stream_subgraphs": True,
        "stream_resumable": True,
    }


def _event_ms(event_id: str | None) -> int | None:
    """The publish time the server put in an event id (``<ms>-<seq>``), if it did."""
    if not event_id:
        return None
    head = event_id.partition("-")[0]
    return int(head) if head.isdigit() else None


async def _client(url: str, streams: int) -> Any:
    """An SDK client whose connection pool fits every stream and request the sidecar bounds.

    ``get_client``'s pool holds 100 connections and waits 5 s for one: more runs followed at once
    would fail for want of a connection, so the client is rebuilt around a pool that never waits.
    """
    import httpx  # noqa: PLC0415 - the SDK's dependency, needed only here
    from langgraph_sdk import get_client  # noqa: PLC0415 - only the sidecar needs the SDK
    from langgraph_sdk.client import LangGraphClient  # noqa: PLC0415

    base = get_client(url=url)
    headers = dict(base.http.client.headers)  # the API key from the environment, if any
    await base.aclose()
    size = streams + _REQUESTS + 8
    return LangGraphClient(
        httpx.AsyncClient(
            base_url=url,
            transport=httpx.AsyncHTTPTransport(
                retries=5, limits=httpx.Limits(max_connections=size, max_keepalive_connections=size)
            ),
            timeout=httpx.Timeout(connect=5, read=300, write=300, pool=None),
            headers=headers,
        )
    )


class Sidecar:
    """Discovers runs on one LangGraph server and follows each to the end.

    Args:
        url: The server's base URL.
        assistants: Follow only runs of these assistant ids or graph ids (all when empty).
        poll: Seconds between two looks for new runs.
        state_path: The JSON state file, or ``None`` to remember nothing across restarts.
        max_runs: Stop after following this many runs to their end.
        concurrency: Runs streamed at the same time, at most; more wait their turn.
        tracer_provider: Where spans go; the global provider when ``None``.
        meter_provider: Where metrics go; the global provider when ``None``.
        options: What to record, stall thresholds included.
    """

    def __init__(
        self,
        url: str,
        *,
        assistants: Sequence[str] = (),
        poll: float = DEFAULT_POLL,
        state_path: Path | None = None,
        max_runs: int | None = None,
        concurrency: int = DEFAULT_CONCURRENCY,
        tracer_provider: TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
        options: Options | None = None,
    ) -> None:
        if poll <= 0 or concurrency < 1 or (max_runs is not None and max_runs < 1):
            msg = "poll must be > 0, concurrency >= 1 and max_runs >= 1 (or None)"
            raise ValueError(msg)
        self.url = url
        self.assistants = frozenset(assistants)
        self.poll = poll
        self.max_runs = max_runs
        self.concurrency = concurrency
        self.tracing = Tracing(tracer_provider, meter_provider, options)
        self.state = State(state_path)
        meter = metrics.get_meter("otelstream.sidecar", __version__, meter_provider)
        self._runs_counter = meter.create_counter(
            names.METRIC_SIDECAR_RUNS, unit="{run}", description="Runs followed to their end."
        )
        self._untraced_counter = meter.create_counter(
            names.METRIC_SIDECAR_UNTRACED,
            unit="{run}",
            description="Runs the sidecar learned of but could not trace.",
        )
        self._lag = meter.create_histogram(
            names.METRIC_SIDECAR_LAG,
            unit="s",
            description="From the server publishing a stream event to the sidecar recording it.",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )
        self._reconnects_counter = meter.create_counter(
            names.METRIC_SIDECAR_RECONNECTS,
            unit="{reconnect}",
            description="Times the sidecar lost the server or a run's stream and reconnected.",
        )
        self._active_counter = meter.create_up_down_counter(
            names.METRIC_SIDECAR_ACTIVE, unit="{run}", description="Runs followed now."
        )
        self.runs_followed = 0
        self.runs_untraced = 0
        self.reconnects = 0
        self.last_lag: float | None = None
        self.last_poll: float | None = None
        self.connected = False
        self._following: dict[str, asyncio.Task[None]] = {}
        self._ignored: dict[str, None] = {}  # runs of assistants not followed (bounded)
        self._stop = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._discovery: Discovery | None = None
        self._follower: Follower | None = None

    # ---- status ----------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """What ``--status`` prints: the sidecar's health now."""
        return {
            "url": self.url,
            "pid": os.getpid(),
            "connected": self.connected,
            "following": len(self._following),
            "runs_followed": self.runs_followed,
            "runs_untraced": self.runs_untraced,
            "reconnects": self.reconnects,
            "last_lag_s": None if self.last_lag is None else round(self.last_lag, 3),
            "last_poll": self.last_poll,
            "updated": time.time(),
        }

    def _save(self) -> None:
        try:
            cursor = self._discovery.cursor if self._discovery is not None else self.state.cursor
            self.state.save(self.status(), cursor)
        except OSError:
            _internal.internal_error("sidecar state")

    # ---- the loop --------------------------------------------------------------------------

    def stop(self) -> None:
        """Ask ``run`` to end: followed runs end as ``cancelled``, state is saved.

        Safe to call from any thread and from a signal handler.
        """
        loop = self._loop
        if loop is None or loop.is_closed():
            self._stop.set()
        else:
            loop.call_soon_threadsafe(self._stop.set)

    async def run(self) -> None:
        """Look for runs and follow them until ``stop()`` or ``max_runs`` is reached."""
        self._loop = asyncio.get_running_loop()
        client = await _client(self.url, self.concurrency)
        requests = asyncio.Semaphore(_REQUESTS)
        self._discovery = Discovery(
            client,
            known=self._known,
            on_found=self._take_run,
            requests=requests,
            since=self.state.cursor,
        )
        self._follower = Follower(
            client,
            self.tracing,
            streams=asyncio.Semaphore(self.concurrency),
            requests=requests,
            rejoin_delay=min(self.poll, 1.0),
            on_event=self._event_seen,
            on_reconnect=self._reconnected,
        )
        failures = 0
        try:
            while not self._stop.is_set():
                began = time.monotonic()
                try:
                    self._take(await self._discovery.look())
                    self.connected = True
                    failures = 0
                except Exception:
                    if self.connected or failures == 0:
                        self._reconnected()
                    self.connected = False
                    failures += 1
                self.last_poll = time.time()
                self._save()
                if self._reached_max():
                    break
                # Looks start every `poll` seconds, however long one takes: a stateless run lives
                # only while it runs, and a look that waited `poll` after a slow one could miss it.
                delay = min(self.poll * 2 ** min(failures, 6), _MAX_BACKOFF)
                delay = max(delay - (time.monotonic() - began), 0.0)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), delay)
        finally:
            tasks = list(self._following.values())
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self._save()
            with contextlib.suppress(Exception):
                await client.aclose()

    def _reached_max(self) -> bool:
        return self.max_runs is not None and self.runs_followed >= self.max_runs

    def _reconnected(self) -> None:
        self.reconnects += 1
        self._reconnects_counter.add(1)

    def _event_seen(self, mode: str, event_id: str | None) -> None:
        published = _event_ms(event_id)
        if published is not None:
            self.last_lag = max(time.time() - published / 1000, 0.0)
            self._lag.record(self.last_lag, {names.GEN_AI_OPERATION_NAME: mode})

    def _known(self, run_id: str) -> bool:
        return run_id in self._following or run_id in self.state.finished or run_id in self._ignored

    def _take(self, look: Look) -> None:
        for thread_id in look.vanished:
            self._untraced(_UNTRACED_DELETED, thread_id)

    def _take_run(self, found: Found) -> None:
        if self.max_runs is not None and self.runs_followed + len(self._following) >= self.max_runs:
            # Not taken, so not known: a later sidecar (or this one, under no limit) may take it.
            return
        run_id = str(found.run["run_id"])
        self._following[run_id] = asyncio.create_task(self._follow(found))

    def _untraced(self, reason: str, thread_id: str) -> None:
        self.runs_untraced += 1
        self._untraced_counter.add(1, {names.OTELSTREAM_SIDECAR_REASON: reason})
        _log.warning(
            names.LOG_SIDECAR_RUN_UNTRACED,
            reason=reason,
            thread_id=thread_id,
            detail="the run's thread was deleted before the sidecar could read its runs",
        )

    # ---- one run ---------------------------------------------------------------------------

    async def _follow(self, found: Found) -> None:
        follower = self._follower
        assert follower is not None
        run_id = str(found.run["run_id"])
        try:
            graph = await follower.graph_name(found)
        except asyncio.CancelledError:
            self._following.pop(run_id, None)
            raise
        if not self._wanted(found, graph):
            self._following.pop(run_id, None)
            self._ignored[run_id] = None
            while len(self._ignored) > _KEEP_IGNORED:
                del self._ignored[next(iter(self._ignored))]
            return
        self._active_counter.add(1)
        outcome = names.OUTCOME_CANCELLED
        try:
            outcome = await follower.trace(found, graph)
        except Exception:
            # A bug of otelstream's: the run's trace is ended (``trace``'s finally); fail the
            # test suite, log in production.
            if _internal.is_strict():
                _internal.record_thread_error()
            _log.debug("otelstream_internal_error", where="sidecar follow", exc_info=True)
        finally:
            self._active_counter.add(-1)
            self._runs_counter.add(1, {names.OTELSTREAM_OUTCOME: outcome})
            self._following.pop(run_id, None)
            self.state.done(run_id)
            self.runs_followed += 1
            if self._reached_max():
                self._stop.set()

    def _wanted(self, found: Found, graph: str) -> bool:
        if not self.assistants:
            return True
        return str(found.run.get("assistant_id")) in self.assistants or graph in self.assistants


if __name__ == "__main__":
    sys.exit(main())
