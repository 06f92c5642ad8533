"""``otelstream sidecar``: follow every run on a LangGraph server and turn each into one trace.

::

    otelstream sidecar --url http://127.0.0.1:2024 [--assistant ID ...] [--poll SECONDS]
                       [--state FILE] [--max-runs N] [--concurrency N] [--status]

Every ``--poll`` seconds the sidecar lists busy threads and their pending or running runs
(``threads.search`` / ``runs.list``), joins each new run's stream (``runs.join_stream`` with
``last_event_id="-1"``, so a run created with ``stream_resumable=True`` is replayed from its first
event) and feeds the events to the same record layer as ``instrument_remote``. Traces and metrics
go where ``otelstream.configure()`` sends them (the ``OTEL_*`` environment, else JSON Lines files).

The server streams a run only in the modes its creator asked for, and ``join_stream`` honours
only the last of several modes, so the sidecar asks for none and receives the run's own. For a
full trace, create runs with ``stream_mode=SIDECAR_STREAM_MODES`` and ``stream_resumable=True``;
``tools`` and ``lifecycle`` are refused by the server (HTTP 422).

A run whose metadata carries a W3C ``traceparent`` joins the caller's trace::

    carrier = {}
    TraceContextTextMapPropagator().inject(carrier)
    await client.runs.create(thread_id, "agent", input=..., metadata=carrier, ...)

A run the server forgets while it is followed (an in-memory server restarted, the run was
deleted) ends as ``error`` with ``error.type = "RunLost"``; one the server still has after a
reconnect is rejoined from the last event id. Finished run ids are kept in the ``--state`` JSON
file, so a restarted sidecar never traces a run twice (a run it was following when stopped
stays traced as ``cancelled``); the same file carries the status line ``--status`` prints.
Ctrl-C (or SIGTERM) ends the runs being followed as ``cancelled``, flushes the exporters and
exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from opentelemetry import metrics
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from otelstream import __version__, _internal, names
from otelstream.feeds.stream import Tracing
from otelstream.record.instruments import DURATION_BUCKETS
from otelstream.remote._feed import RemoteError, RemoteFeed, remote_error
from otelstream.remote._graph import end_feed, start_feed

if TYPE_CHECKING:
    from collections.abc import Sequence

    from opentelemetry.metrics import MeterProvider
    from opentelemetry.trace import TracerProvider

    from otelstream.options import Options

SIDECAR_STREAM_MODES = ["tasks", "messages-tuple", "custom", "updates"]
"""The modes a client should create runs with for the sidecar to see the whole span model."""

_ACTIVE = frozenset({"pending", "running"})
_OUTCOMES = {
    "success": names.OUTCOME_COMPLETED,
    "error": names.OUTCOME_ERROR,
    "timeout": names.OUTCOME_ERROR,
    "interrupted": names.OUTCOME_CANCELLED,
}
_KEEP_FINISHED = 10_000
_MAX_BACKOFF = 30.0


class _State:
    """Finished run ids (bounded, oldest dropped) and the status line, in one JSON file."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.finished: dict[str, None] = {}  # insertion-ordered set
        if path is not None and path.exists():
            try:
                data = json.loads(path.read_text())
                self.finished = dict.fromkeys(str(r) for r in data.get("finished", []))
            except (OSError, ValueError, AttributeError):
                self.finished = {}

    def done(self, run_id: str) -> None:
        self.finished[run_id] = None
        while len(self.finished) > _KEEP_FINISHED:
            del self.finished[next(iter(self.finished))]

    def save(self, status: dict[str, Any]) -> None:
        if self.path is None:
            return
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(
            json.dumps({"version": 1, "finished": list(self.finished), "status": status})
        )
        os.replace(tmp, self.path)


class RunLost(RemoteError):
    """A followed run the server no longer knows; its trace ends as an error of this type.

    The server restarted without keeping its runs (the in-memory ``langgraph dev`` does), or the
    run was deleted.
    """


def _lost(run_id: str) -> RunLost:
    return RunLost(
        f"the server no longer knows run {run_id}: it restarted without keeping its runs, "
        "or the run was deleted"
    )


def _not_found(exc: BaseException) -> bool:
    """Whether ``exc`` is the server answering 404.

    The SDK's errors subclass ``httpx.HTTPStatusError``; read by duck typing, as httpx is the
    SDK's dependency, not otelstream's.
    """
    response = getattr(exc, "response", None)
    return getattr(response, "status_code", None) == 404


def _split(event: str) -> tuple[tuple[str, ...], str]:
    mode, _, ns = event.partition("|")
    return (tuple(ns.split("|")) if ns else ()), mode


def _event_ms(event_id: str | None) -> int | None:
    """The publish time the server put in an event id (``<ms>-<seq>``), if it did."""
    if not event_id:
        return None
    head = event_id.partition("-")[0]
    return int(head) if head.isdigit() else None


class Sidecar:
    """Discovers runs on one LangGraph server and follows each to the end.

    Args:
        url: The server's base URL.
        assistants: Follow only runs of these assistant ids or graph ids (all when empty).
        poll: Seconds between two looks for new runs.
        state_path: The JSON state file, or ``None`` to remember nothing across restarts.
        max_runs: Stop after following this many runs to their end.
        concurrency: Runs followed at the same time, at most.
        tracer_provider: Where spans go; the global provider when ``None``.
        meter_provider: Where metrics go; the global provider when ``None``.
        options: What to record, stall thresholds included.
    """

    def __init__(
        self,
        url: str,
        *,
        assistants: Sequence[str] = (),
        poll: float = 2.0,
        state_path: Path | None = None,
        max_runs: int | None = None,
        concurrency: int = 8,
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
        self.state = _State(state_path)
        meter = metrics.get_meter("otelstream.sidecar", __version__, meter_provider)
        self._runs_counter = meter.create_counter(
            names.METRIC_SIDECAR_RUNS, unit="{run}", description="Runs followed to their end."
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
        self.reconnects = 0
        self.last_lag: float | None = None
        self.last_poll: float | None = None
        self.connected = False
        self._following: dict[str, asyncio.Task[None]] = {}
        self._stop = asyncio.Event()
        self._client: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # ---- status ----------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """What ``--status`` prints: the sidecar's health now."""
        return {
            "url": self.url,
            "pid": os.getpid(),
            "connected": self.connected,
            "following": len(self._following),
            "runs_followed": self.runs_followed,
            "reconnects": self.reconnects,
            "last_lag_s": None if self.last_lag is None else round(self.last_lag, 3),
            "last_poll": self.last_poll,
            "updated": time.time(),
        }

    def _save(self) -> None:
        try:
            self.state.save(self.status())
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
        """Poll for runs and follow them until ``stop()`` or ``max_runs`` is reached."""
        from langgraph_sdk import get_client  # noqa: PLC0415 - only the sidecar needs the SDK

        self._loop = asyncio.get_running_loop()
        self._client = get_client(url=self.url)
        failures = 0
        try:
            while not self._stop.is_set():
                try:
                    await self._discover()
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
                delay = min(self.poll * 2 ** min(failures, 6), _MAX_BACKOFF)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), delay)
        finally:
            tasks = list(self._following.values())
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self._save()
            with contextlib.suppress(Exception):
                await self._client.aclose()

    def _reached_max(self) -> bool:
        return self.max_runs is not None and self.runs_followed >= self.max_runs

    def _reconnected(self) -> None:
        self.reconnects += 1
        self._reconnects_counter.add(1)

    async def _discover(self) -> None:
        client = self._client
        threads = await client.threads.search(status="busy", limit=100)
        for thread in threads:
            thread_id = thread["thread_id"]
            for run in await client.runs.list(thread_id, limit=20):
                run_id = str(run["run_id"])
                if run.get("status") not in _ACTIVE or not self._wanted(run):
                    continue
                if run_id in self.state.finished or run_id in self._following:
                    continue
                if len(self._following) >= self.concurrency:
                    return
                if self.max_runs is not None and (
                    self.runs_followed + len(self._following) >= self.max_runs
                ):
                    return
                task = asyncio.create_task(self._follow(thread_id, run))
                self._following[run_id] = task

    def _wanted(self, run: dict[str, Any]) -> bool:
        if not self.assistants:
            return True
        graph_id = (run.get("metadata") or {}).get("graph_id")
        return run.get("assistant_id") in self.assistants or graph_id in self.assistants

    # ---- one run ---------------------------------------------------------------------------

    async def _follow(self, thread_id: str, run: dict[str, Any]) -> None:
        run_id = str(run["run_id"])
        metadata = run.get("metadata") or {}
        traceparent = metadata.get("traceparent")
        parent = None
        if isinstance(traceparent, str):
            carrier = {"traceparent": traceparent}
            if isinstance(metadata.get("tracestate"), str):
                carrier["tracestate"] = metadata["tracestate"]
            parent = TraceContextTextMapPropagator().extract(carrier)
        feed = start_feed(
            self.tracing,
            agent_name=str(metadata.get("graph_id") or run.get("assistant_id") or "LangGraph"),
            conversation_id=thread_id,
            parent=parent,
            sees_nested=True,
        )
        feed.recorder.set_run_attribute(names.OTELSTREAM_REMOTE_RUN_ID, run_id)
        if run.get("status") == "running":
            feed.recorder.set_run_attribute(names.OTELSTREAM_REMOTE_REPLAYED, True)
        self._active_counter.add(1)
        outcome, error = names.OUTCOME_CANCELLED, None
        try:
            outcome, error = await self._stream(thread_id, run_id, feed)
        finally:
            end_feed(self.tracing, feed, outcome, error)
            self._active_counter.add(-1)
            self._runs_counter.add(1, {names.OTELSTREAM_OUTCOME: outcome})
            self._following.pop(run_id, None)
            self.state.done(run_id)
            self.runs_followed += 1
            self._save()
            if self._reached_max():
                self._stop.set()

    async def _stream(
        self, thread_id: str, run_id: str, feed: RemoteFeed
    ) -> tuple[str, BaseException | None]:
        client = self._client
        last_id = "-1"
        failures = 0
        while True:
            try:
                async for part in client.runs.join_stream(thread_id, run_id, last_event_id=last_id):
                    if part.id:
                        last_id = part.id
                    ns, mode = _split(part.event)
                    if mode == "error":
                        return names.OUTCOME_ERROR, await self._error(thread_id, run_id, part.data)
                    self._observe(feed, ns, mode, part.data, part.id)
                failures = 0
                status = (await client.runs.get(thread_id, run_id)).get("status")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if _not_found(exc):
                    return names.OUTCOME_ERROR, _lost(run_id)
                if failures == 0:  # one loss, however many attempts it takes to get back
                    self._reconnected()
                failures += 1
                await asyncio.sleep(min(0.25 * 2 ** min(failures, 7), _MAX_BACKOFF))
                continue
            if status not in _ACTIVE:
                return _OUTCOMES.get(str(status), names.OUTCOME_COMPLETED), None
            # The stream ended but the run goes on (a server restart, a proxy timeout): rejoin.
            self._reconnected()
            await asyncio.sleep(min(self.poll, 1.0))

    async def _error(self, thread_id: str, run_id: str, data: Any) -> BaseException:
        """The error of a run's ``error`` event; ``RunLost`` if the server no longer knows it.

        A server that lost the run (an in-memory server restarted) reports that as an ordinary
        error event, "Run not found"; only asking for the run tells the two apart.
        """
        try:
            await self._client.runs.get(thread_id, run_id)
        except Exception as exc:
            if _not_found(exc):
                return _lost(run_id)
        return remote_error(data)

    def _observe(
        self, feed: RemoteFeed, ns: tuple[str, ...], mode: str, data: Any, event_id: str | None
    ) -> None:
        try:
            feed.event(ns, mode, data)
            published = _event_ms(event_id)
            if published is not None:
                self.last_lag = max(time.time() - published / 1000, 0.0)
                self._lag.record(self.last_lag, {names.GEN_AI_OPERATION_NAME: mode})
        except Exception:
            _internal.internal_error("sidecar observe")


# ---- the command line ------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="otelstream sidecar",
        description="Follow every run on a LangGraph server and export each as one trace.",
    )
    parser.add_argument("--url", help="the LangGraph server, e.g. http://127.0.0.1:2024")
    parser.add_argument(
        "--assistant", action="append", default=[], help="follow only this assistant or graph id"
    )
    parser.add_argument("--poll", type=float, default=2.0, help="seconds between looks for runs")
    parser.add_argument(
        "--state",
        type=Path,
        default=Path("otelstream-sidecar.json"),
        help="JSON file of finished run ids and status",
    )
    parser.add_argument("--max-runs", type=int, default=None, help="exit after N runs")
    parser.add_argument("--concurrency", type=int, default=8, help="runs followed at once")
    parser.add_argument(
        "--status", action="store_true", help="print the running sidecar's status line and exit"
    )
    return parser


def _print_status(path: Path) -> int:
    try:
        status = json.loads(path.read_text()).get("status") or {}
    except (OSError, ValueError):
        print(f"otelstream sidecar: no state at {path}")
        return 1
    age = time.time() - float(status.get("updated") or 0)
    print(
        f"otelstream sidecar {status.get('url')}: "
        f"{'connected' if status.get('connected') else 'DISCONNECTED'}, "
        f"following {status.get('following', 0)}, followed {status.get('runs_followed', 0)}, "
        f"reconnects {status.get('reconnects', 0)}, lag {status.get('last_lag_s')} s, "
        f"updated {age:.1f} s ago"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the sidecar until Ctrl-C, ``--max-runs`` or SIGTERM; ``--status`` prints one line."""
    args = _parser().parse_args(argv)
    if args.status:
        return _print_status(args.state)
    if not args.url:
        print("otelstream sidecar: --url is required", file=sys.stderr)
        return 2
    from otelstream.export import configure  # noqa: PLC0415 - global-free until asked

    telemetry = configure(service_name=os.environ.get("OTEL_SERVICE_NAME") or "otelstream-sidecar")
    try:
        sidecar = Sidecar(
            args.url,
            assistants=args.assistant,
            poll=args.poll,
            state_path=args.state,
            max_runs=args.max_runs,
            concurrency=args.concurrency,
            tracer_provider=telemetry.tracer_provider,
            meter_provider=telemetry.meter_provider,
        )
    except ValueError as exc:
        print(f"otelstream sidecar: {exc}", file=sys.stderr)
        telemetry.shutdown(timeout=1.0)
        return 2

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, sidecar.stop)
        await sidecar.run()

    try:
        asyncio.run(serve())
    except KeyboardInterrupt:
        pass
    finally:
        telemetry.shutdown(timeout=5.0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
