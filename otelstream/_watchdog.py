"""The watchdog: sees stalled tool calls, silent LLM streams and slow or idle tasks while they
still run.

A span is exported only when it ends, so a hung tool is invisible to a trace backend until it
returns, which may be never. The watchdog is a daemon thread, started when the first traced run
opens and stopped when the last one finishes, that checks every open run a few times per
threshold: it needs nothing from the consumer (blocked on the next chunk, sync or async) and
costs the streamed chunks nothing. It also serves the in-flight metrics, computed when they are
collected rather than counted per item: ``otelstream.inflight``,
``otelstream.inflight.oldest_age`` and ``otelstream.inflight.idle_age``.
"""

from __future__ import annotations

import threading
import time
import weakref
from typing import TYPE_CHECKING

from opentelemetry.metrics import CallbackOptions, Meter, Observation

from otelstream import _internal, names

if TYPE_CHECKING:
    from collections.abc import Iterable

    from otelstream.options import Options
    from otelstream.record.run import RunRecorder

_MIN_INTERVAL = 0.01
_MAX_INTERVAL = 1.0


class Watchdog:
    """Open runs of one ``instrument()`` or instrumentor, checked for stalls from a thread."""

    def __init__(self, options: Options, meter: Meter) -> None:
        def ns(seconds: float | None) -> float | None:
            return None if seconds is None or seconds == float("inf") else seconds * 1e9

        self._tool_ns = ns(options.tool_stall_threshold)
        self._llm_ns = ns(options.llm_stall_threshold)
        self._task_ns = ns(options.task_stall_threshold)
        self._tool_idle_ns = ns(options.tool_idle_threshold)
        self._task_idle_ns = ns(options.task_idle_threshold)
        thresholds = (
            self._tool_ns,
            self._llm_ns,
            self._task_ns,
            self._tool_idle_ns,
            self._task_idle_ns,
        )
        enabled = [t for t in thresholds if t is not None]
        self.interval = (
            min(max(min(enabled) / 1e9 / 4, _MIN_INTERVAL), _MAX_INTERVAL) if enabled else None
        )
        self._lock = threading.Lock()
        self._runs: set[RunRecorder] = set()
        self._thread: threading.Thread | None = None
        self._wake = threading.Event()
        _observers_for(meter).watchdogs.add(self)

    @property
    def running(self) -> bool:
        """Whether the watchdog thread is alive (for tests and the status line)."""
        thread = self._thread
        return thread is not None and thread.is_alive()

    def watch(self, run: RunRecorder) -> None:
        """Check ``run`` until ``forget(run)``; starts the thread if it is not running."""
        with self._lock:
            self._runs.add(run)
            if self.interval is None or self._thread is not None:
                return
            self._wake.clear()
            self._thread = threading.Thread(
                target=self._loop, name="otelstream-watchdog", daemon=True
            )
            self._thread.start()

    def forget(self, run: RunRecorder) -> None:
        """Stop checking ``run``.

        The thread stops at its next check that finds no run left (within one interval, at most
        a second), so back-to-back runs share one thread instead of starting one each.
        """
        with self._lock:
            self._runs.discard(run)

    def _loop(self) -> None:
        interval = self.interval or _MAX_INTERVAL
        while True:
            with self._lock:
                runs = list(self._runs)
                if not runs:
                    self._thread = None
                    return
            now = time.time_ns()
            wait = interval
            for run in runs:
                try:
                    run.check_stalls(
                        now,
                        self._tool_ns,
                        self._llm_ns,
                        self._task_ns,
                        self._tool_idle_ns,
                        self._task_idle_ns,
                    )
                    # A node's own idle timeout (TimeoutPolicy) may be shorter than any option.
                    hint = run.idle_hint_ns
                    if hint is not None:
                        wait = min(wait, max(hint / 1e9 / 4, _MIN_INTERVAL))
                except Exception:
                    try:
                        _internal.internal_error("watchdog")
                    except Exception:  # strict mode: a thread cannot raise into a test
                        _internal.record_thread_error()
            # Hold no finished run (and its spans) while sleeping.
            del runs, run
            self._wake.wait(wait)

    def open_runs(self) -> list[RunRecorder]:
        """The runs being watched now."""
        with self._lock:
            return list(self._runs)


class _Observers:
    """The in-flight metrics of one meter, observed over every watchdog that uses the meter.

    The SDK hands back the first instrument when one of the same name is created again on a
    meter, callbacks and all, so two ``instrument()`` calls sharing a meter provider must share
    these instruments too, or the second graph's work would never be observed.
    """

    def __init__(self, meter: Meter) -> None:
        self.watchdogs: weakref.WeakSet[Watchdog] = weakref.WeakSet()
        meter.create_observable_up_down_counter(
            names.METRIC_INFLIGHT,
            callbacks=[self._observe_inflight],
            unit="{work}",
            description="Tool calls, LLM calls and tasks running now.",
        )
        meter.create_observable_gauge(
            names.METRIC_INFLIGHT_OLDEST_AGE,
            callbacks=[self._observe_oldest],
            unit="s",
            description="Seconds the oldest running tool call, LLM call (since its last chunk) "
            "or task of each name has been running.",
        )
        meter.create_observable_gauge(
            names.METRIC_INFLIGHT_IDLE_AGE,
            callbacks=[self._observe_idle],
            unit="s",
            description="Seconds the longest-idle running tool call or task of each name has "
            "gone without progress.",
        )

    def _in_flight(self) -> Iterable[tuple[str, str, str, float, float | None]]:
        now = time.time_ns()
        for watchdog in list(self.watchdogs):
            for run in watchdog.open_runs():
                yield from run.in_flight(now)

    def _observe_inflight(self, options: CallbackOptions) -> Iterable[Observation]:
        counts = dict.fromkeys((names.WORK_TOOL, names.WORK_LLM, names.WORK_TASK), 0)
        for kind, _key, _name, _age, _idle in self._in_flight():
            counts[kind] += 1
        return [Observation(n, {names.OTELSTREAM_WORK_KIND: k}) for k, n in counts.items()]

    def _observe_oldest(self, options: CallbackOptions) -> Iterable[Observation]:
        oldest: dict[tuple[str, str, str], float] = {}
        for kind, key, name, age, _idle in self._in_flight():
            if age > oldest.get((kind, key, name), -1.0):
                oldest[(kind, key, name)] = age
        return _observations(oldest)

    def _observe_idle(self, options: CallbackOptions) -> Iterable[Observation]:
        idlest: dict[tuple[str, str, str], float] = {}
        for kind, key, name, _age, idle in self._in_flight():
            if idle is not None and idle > idlest.get((kind, key, name), -1.0):
                idlest[(kind, key, name)] = idle
        return _observations(idlest)


def _observations(ages: dict[tuple[str, str, str], float]) -> list[Observation]:
    return [
        Observation(age, {names.OTELSTREAM_WORK_KIND: kind, key: name})
        for (kind, key, name), age in ages.items()
    ]


_observers: weakref.WeakKeyDictionary[Meter, _Observers] = weakref.WeakKeyDictionary()
_observers_lock = threading.Lock()


def _observers_for(meter: Meter) -> _Observers:
    with _observers_lock:
        try:
            observers = _observers.get(meter)
        except TypeError:  # a meter that cannot be weakly referenced: nothing to share with
            return _Observers(meter)
        if observers is None:
            observers = _observers[meter] = _Observers(meter)
        return observers
