"""Guards around exporters: failures are counted and logged, never raised; waits are bounded."""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any, TypeVar

from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult
from opentelemetry.sdk.metrics.export import MetricExporter, MetricExportResult
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from opentelemetry.sdk._logs import ReadableLogRecord
    from opentelemetry.sdk.metrics.export import MetricsData
    from opentelemetry.sdk.trace import ReadableSpan

_logger = logging.getLogger("otelstream.export")
_Result = TypeVar("_Result", SpanExportResult, MetricExportResult, LogRecordExportResult)


class FailureCount:
    """Thread-safe counters of failed exports, by signal; the first failure is logged once.

    A collector that is down fails every export; one warning says so and where the count is,
    instead of a line per batch.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counts: dict[str, int] = {"traces": 0, "metrics": 0, "logs": 0}

    def add(self, signal: str) -> None:
        with self._lock:
            self.counts[signal] += 1
            first = sum(self.counts.values()) == 1
        if first:
            _logger.warning(
                "otelstream: %s export failed; telemetry is being dropped. Further failures are "
                "counted in Telemetry.export_failures and not logged again.",
                signal,
            )


def run_bounded(work: Callable[[], object], timeout: float, what: str) -> bool:
    """Run ``work()`` in a daemon thread and wait at most ``timeout`` seconds for it."""
    error: list[BaseException] = []

    def target() -> None:
        try:
            work()
        except Exception as exc:
            error.append(exc)

    thread = threading.Thread(target=target, name=f"otelstream-{what}", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        _logger.warning("otelstream: telemetry %s did not finish within %.1f s", what, timeout)
        return False
    if error:
        _logger.warning("otelstream: telemetry %s failed: %r", what, error[0])
        return False
    return True


def _guarded(
    export: Callable[[], _Result],
    success: _Result,
    failure: _Result,
    failures: FailureCount,
    signal: str,
) -> _Result:
    """Run one export: an exception becomes a failure, and every failure is counted."""
    try:
        result = export()
    except Exception:
        _logger.debug("otelstream: %s exporter raised", signal, exc_info=True)
        result = failure
    if result is not success:
        failures.add(signal)
    return result


class CountingSpanExporter(SpanExporter):
    """Counts failed exports and keeps exporter exceptions away from the SDK worker thread."""

    def __init__(self, inner: SpanExporter, failures: FailureCount) -> None:
        self.inner = inner
        self._failures = failures

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return _guarded(
            lambda: self.inner.export(spans),
            SpanExportResult.SUCCESS,
            SpanExportResult.FAILURE,
            self._failures,
            "traces",
        )

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self.inner.force_flush(timeout_millis)


class CountingMetricExporter(MetricExporter):
    """Counts failed exports; keeps the inner exporter's temporality and aggregation choices."""

    def __init__(self, inner: MetricExporter, failures: FailureCount) -> None:
        super().__init__(
            preferred_temporality=inner._preferred_temporality,
            preferred_aggregation=inner._preferred_aggregation,
        )
        self.inner = inner
        self._failures = failures

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        return _guarded(
            lambda: self.inner.export(metrics_data, timeout_millis=timeout_millis, **kwargs),
            MetricExportResult.SUCCESS,
            MetricExportResult.FAILURE,
            self._failures,
            "metrics",
        )

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return self.inner.force_flush(timeout_millis)

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        self.inner.shutdown(timeout_millis=timeout_millis, **kwargs)


class CountingLogExporter(LogRecordExporter):
    """Counts failed exports of log records."""

    def __init__(self, inner: LogRecordExporter, failures: FailureCount) -> None:
        self.inner = inner
        self._failures = failures

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        return _guarded(
            lambda: self.inner.export(batch),
            LogRecordExportResult.SUCCESS,
            LogRecordExportResult.FAILURE,
            self._failures,
            "logs",
        )

    def shutdown(self) -> None:
        self.inner.shutdown()  # type: ignore[no-untyped-call]

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self.inner.force_flush(timeout_millis)
