"""``configure()``: SDK providers from the standard ``OTEL_*`` environment, with a local default.

Everything the OpenTelemetry SDK already reads from the environment is left to the SDK: the
resource (``OTEL_SERVICE_NAME``, ``OTEL_RESOURCE_ATTRIBUTES``), the sampler
(``OTEL_TRACES_SAMPLER``/``_ARG``), exporter choice (``OTEL_TRACES_EXPORTER``, ...), the OTLP
protocol (``OTEL_EXPORTER_OTLP_PROTOCOL`` and its per-signal forms), endpoints, headers, timeouts
and compression (read by the OTLP exporters themselves), and the metric export interval
(``OTEL_METRIC_EXPORT_INTERVAL``, read by ``PeriodicExportingMetricReader``). otelstream adds one
thing: when no exporter and no OTLP endpoint is configured for a signal, it goes to a local OTLP
JSON Lines file instead of a collector nobody runs.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from opentelemetry import metrics, trace
from opentelemetry._logs import set_logger_provider
from opentelemetry.environment_variables import (
    OTEL_LOGS_EXPORTER,
    OTEL_METRICS_EXPORTER,
    OTEL_TRACES_EXPORTER,
)
from opentelemetry.sdk import _configuration as sdk_configuration
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import (
    BatchLogRecordProcessor,
    LogRecordExporter,
)
from opentelemetry.sdk.environment_variables import (
    OTEL_EXPORTER_OTLP_ENDPOINT,
    OTEL_EXPORTER_OTLP_LOGS_ENDPOINT,
    OTEL_EXPORTER_OTLP_METRICS_ENDPOINT,
    OTEL_EXPORTER_OTLP_TRACES_ENDPOINT,
)
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    MetricReader,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter

from otelstream.export._guard import (
    CountingLogExporter,
    CountingMetricExporter,
    CountingSpanExporter,
    FailureCount,
    run_bounded,
)
from otelstream.export._jsonl import (
    JsonLinesLogExporter,
    JsonLinesMetricExporter,
    JsonLinesSpanExporter,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

    from opentelemetry.util.types import AttributeValue

__all__ = [
    "DEFAULT_TRACE_FILE",
    "OTELSTREAM_METRICS_FILE",
    "OTELSTREAM_TRACE_FILE",
    "Telemetry",
    "configure",
]

_logger = logging.getLogger(__name__)

OTELSTREAM_TRACE_FILE = "OTELSTREAM_TRACE_FILE"
"""Environment variable: path of the OTLP JSON Lines trace file."""
OTELSTREAM_METRICS_FILE = "OTELSTREAM_METRICS_FILE"
"""Environment variable: path of the OTLP JSON Lines metrics file."""
DEFAULT_TRACE_FILE = "otelstream-traces.jsonl"
"""Where traces go when nothing else is configured (relative to the working directory)."""

_Signal = Literal["traces", "metrics", "logs"]
_EXPORTER_ENV: dict[_Signal, str] = {
    "traces": OTEL_TRACES_EXPORTER,
    "metrics": OTEL_METRICS_EXPORTER,
    "logs": OTEL_LOGS_EXPORTER,
}
_ENDPOINT_ENV: dict[_Signal, str] = {
    "traces": OTEL_EXPORTER_OTLP_TRACES_ENDPOINT,
    "metrics": OTEL_EXPORTER_OTLP_METRICS_ENDPOINT,
    "logs": OTEL_EXPORTER_OTLP_LOGS_ENDPOINT,
}


@dataclass
class Telemetry:
    """What :func:`configure` set up; call :meth:`shutdown` when the application ends.

    Attributes:
        tracer_provider: The SDK tracer provider; pass it to ``otelstream.instrument``.
        meter_provider: The SDK meter provider; pass it to ``otelstream.instrument``.
        logger_provider: The SDK logger provider, when ``logs=True`` was asked for.
        trace_file: The OTLP JSON Lines file spans are written to, or ``None``.
        metrics_file: The OTLP JSON Lines file metrics are written to, or ``None``.
    """

    tracer_provider: TracerProvider
    meter_provider: MeterProvider
    logger_provider: LoggerProvider | None = None
    trace_file: Path | None = None
    metrics_file: Path | None = None
    _failures: FailureCount = field(default_factory=FailureCount, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _done: bool = field(default=False, repr=False)

    @property
    def export_failures(self) -> dict[str, int]:
        """Failed export calls so far, by signal (``traces``, ``metrics``, ``logs``)."""
        return dict(self._failures.counts)

    def force_flush(self, timeout: float = 5.0) -> bool:
        """Export what is buffered now, waiting at most ``timeout`` seconds.

        Args:
            timeout: Seconds to wait in total.

        Returns:
            Whether everything was flushed in time.
        """
        return run_bounded(self._flush_all, timeout, "flush")

    def shutdown(self, timeout: float = 5.0) -> bool:
        """Flush and shut down all providers, waiting at most ``timeout`` seconds.

        The SDK's own shutdown can block for 30 s or more when the collector is unreachable
        (the OTLP exporters retry with backoff). The work runs in a daemon thread; if it is not
        done in time, this returns ``False`` and the thread is abandoned, so a dead endpoint never
        holds up the application's exit. Calling it again does nothing.

        Args:
            timeout: Seconds to wait in total.

        Returns:
            Whether everything was flushed and shut down in time.
        """
        with self._lock:
            if self._done:
                return True
            self._done = True
        atexit.unregister(self.shutdown)
        return run_bounded(lambda: self._shutdown_all(timeout), timeout, "shutdown")

    def _flush_all(self) -> None:
        self.tracer_provider.force_flush()
        self.meter_provider.force_flush()
        if self.logger_provider is not None:
            self.logger_provider.force_flush()

    def _shutdown_all(self, timeout: float) -> None:
        millis = int(timeout * 1000)
        # Flush first with the bound, so that a healthy endpoint gets everything even if a
        # later step is slow; then shut down. Each step is guarded so one failure does not
        # skip the others.
        steps: list[tuple[str, Any]] = [
            ("traces", lambda: self.tracer_provider.force_flush(millis)),
            ("traces", self.tracer_provider.shutdown),
            ("metrics", lambda: self.meter_provider.shutdown(timeout_millis=millis)),
        ]
        if self.logger_provider is not None:
            steps.append(("logs", self.logger_provider.shutdown))
        for signal, step in steps:
            try:
                step()
            except Exception:
                _logger.debug("otelstream: %s shutdown step failed", signal, exc_info=True)


def _env(name: str) -> str:
    return os.environ.get(name, "").strip()


def _exporter_classes(signal: _Signal) -> list[type[Any]] | None:
    """The exporter classes the SDK's own environment handling selects for ``signal``.

    Returns:
        ``None`` when the environment configures nothing for the signal (no
        ``OTEL_<SIGNAL>_EXPORTER``, no OTLP endpoint): the caller then uses the local file.
        Otherwise the classes, possibly empty (``OTEL_<SIGNAL>_EXPORTER=none``).
    """
    if _env(_EXPORTER_ENV[signal]):
        names = sdk_configuration._get_exporter_names(signal)
    elif _env(_ENDPOINT_ENV[signal]) or _env(OTEL_EXPORTER_OTLP_ENDPOINT):
        # An endpoint alone means OTLP, with the protocol from OTEL_EXPORTER_OTLP_*PROTOCOL,
        # resolved exactly as OTEL_<SIGNAL>_EXPORTER=otlp would be.
        try:
            names = [str(sdk_configuration._get_exporter_entry_point("otlp", signal))]
        except RuntimeError as exc:
            msg = f"{exc}: set OTEL_EXPORTER_OTLP_PROTOCOL to 'grpc' or 'http/protobuf'"
            raise ValueError(msg) from exc
    else:
        return None
    try:
        traces, metrics_, logs = sdk_configuration._import_exporters(
            names if signal == "traces" else [],
            names if signal == "metrics" else [],
            names if signal == "logs" else [],
        )
    except RuntimeError as exc:
        msg = (
            f"{exc}: set {_EXPORTER_ENV[signal]} to exporters that are installed "
            "(otlp, console, none, or one an installed package registers)"
        )
        raise ValueError(msg) from exc
    chosen: dict[str, type[Any]] = {"traces": traces, "metrics": metrics_, "logs": logs}[signal]  # type: ignore[assignment]
    return list(chosen.values())


def _create(cls: type[Any], signal: _Signal) -> Any:
    """An exporter built from the environment, or a ValueError naming what to fix."""
    try:
        return cls()
    except ValueError as exc:
        prefix = f"OTEL_EXPORTER_OTLP_{signal.upper()}_"
        msg = (
            f"could not create the {signal} exporter {cls.__name__} from the environment: {exc}; "
            f"check OTEL_EXPORTER_OTLP_TIMEOUT, {prefix}TIMEOUT, OTEL_EXPORTER_OTLP_HEADERS and "
            f"the other OTEL_EXPORTER_OTLP_* values"
        )
        raise ValueError(msg) from exc


_BSP_DEFAULTS = {
    "schedule_delay_millis": 5000,
    "max_queue_size": 2048,
    "max_export_batch_size": 512,
    "export_timeout_millis": 30000,
}


def _batch(exporter: SpanExporter) -> BatchSpanProcessor:
    """A BatchSpanProcessor from the ``OTEL_BSP_*`` environment; bad values fall back, warned."""
    try:
        return BatchSpanProcessor(exporter)
    except ValueError as exc:
        settings = {
            name: os.environ.get(name)
            for name in (
                "OTEL_BSP_SCHEDULE_DELAY",
                "OTEL_BSP_MAX_QUEUE_SIZE",
                "OTEL_BSP_MAX_EXPORT_BATCH_SIZE",
                "OTEL_BSP_EXPORT_TIMEOUT",
            )
            if os.environ.get(name) is not None
        }
        _logger.warning(
            "otelstream: invalid batch span processor settings %s (%s); using the defaults %s",
            settings,
            exc,
            _BSP_DEFAULTS,
        )
        return BatchSpanProcessor(
            exporter,
            schedule_delay_millis=_BSP_DEFAULTS["schedule_delay_millis"],
            max_queue_size=_BSP_DEFAULTS["max_queue_size"],
            max_export_batch_size=_BSP_DEFAULTS["max_export_batch_size"],
            export_timeout_millis=_BSP_DEFAULTS["export_timeout_millis"],
        )


def _metrics_path_for(trace_path: Path) -> Path:
    """The default metrics file next to a trace file: ``*traces*`` → ``*metrics*``."""
    if "traces" in trace_path.name:
        return trace_path.with_name(trace_path.name.replace("traces", "metrics"))
    return trace_path.with_name(f"{trace_path.stem}.metrics{trace_path.suffix or '.jsonl'}")


def configure(
    *,
    service_name: str | None = None,
    jsonl_path: str | os.PathLike[str] | None = None,
    metrics_jsonl_path: str | os.PathLike[str] | None = None,
    resource_attributes: Mapping[str, AttributeValue] | None = None,
    logs: bool = False,
    set_global: bool = False,
) -> Telemetry:
    """Build tracer, meter and (optionally) logger providers from the ``OTEL_*`` environment.

    Exporters are chosen per signal: ``OTEL_<SIGNAL>_EXPORTER`` if set (as the SDK's
    auto-configuration reads it), else OTLP if an OTLP endpoint is set (protocol from
    ``OTEL_EXPORTER_OTLP_PROTOCOL``, ``grpc`` by default as in the Python SDK), else a local OTLP
    JSON Lines file. A file is also written, next to any other exporter, when ``jsonl_path`` or
    ``OTELSTREAM_TRACE_FILE`` names one explicitly. Spans go through a ``BatchSpanProcessor``.

    Example:
        >>> telemetry = otelstream.export.configure(service_name="my-agent")
        >>> traced = otelstream.instrument(
        ...     graph,
        ...     tracer_provider=telemetry.tracer_provider,
        ...     meter_provider=telemetry.meter_provider,
        ... )
        >>> telemetry.shutdown()

    Args:
        service_name: Overrides ``OTEL_SERVICE_NAME`` and ``service.name`` in
            ``OTEL_RESOURCE_ATTRIBUTES``.
        jsonl_path: Trace file path (default: ``$OTELSTREAM_TRACE_FILE``, else
            ``./otelstream-traces.jsonl`` when nothing else is configured).
        metrics_jsonl_path: Metrics file path (default: ``$OTELSTREAM_METRICS_FILE``, else
            the trace file's name with ``traces`` replaced by ``metrics``).
        resource_attributes: Extra resource attributes; they override the environment's.
        logs: Also build a ``LoggerProvider`` (OTLP, or ``*logs*`` JSON Lines next to the
            trace file).
        set_global: Install the providers as the OpenTelemetry globals. Off by default: a
            library should not take over an application's globals unasked.

    Returns:
        A :class:`Telemetry` handle. Its ``shutdown`` also runs at interpreter exit, bounded.

    Raises:
        ValueError: If ``OTEL_EXPORTER_OTLP_PROTOCOL`` names an unknown protocol, an
            ``OTEL_<SIGNAL>_EXPORTER`` names an exporter that is not installed, or an exporter
            cannot be built from its ``OTEL_EXPORTER_OTLP_*`` values (the message names them).
    """
    attributes: dict[str, AttributeValue] = dict(resource_attributes or {})
    if service_name is not None:
        attributes[SERVICE_NAME] = service_name
    # Resource.create merges OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME under ours.
    resource = Resource.create(attributes)
    failures = FailureCount()

    explicit_trace_file = jsonl_path if jsonl_path is not None else _env(OTELSTREAM_TRACE_FILE)
    trace_path = Path(explicit_trace_file or DEFAULT_TRACE_FILE)

    # --- traces ---------------------------------------------------------------------------
    # shutdown_on_exit=False: the SDK's own atexit hook would shut down unbounded; ours is
    # bounded (registered below).
    tracer_provider = TracerProvider(resource=resource, shutdown_on_exit=False)
    trace_exporters: list[SpanExporter] = []
    trace_classes = _exporter_classes("traces")
    for cls in trace_classes or []:
        trace_exporters.append(_create(cls, "traces"))
    trace_file: Path | None = None
    if trace_classes is None or explicit_trace_file:
        trace_file = trace_path.absolute()
        trace_exporters.append(JsonLinesSpanExporter(trace_file))
    for exporter in trace_exporters:
        tracer_provider.add_span_processor(_batch(CountingSpanExporter(exporter, failures)))

    # --- metrics --------------------------------------------------------------------------
    explicit_metrics_file = (
        metrics_jsonl_path if metrics_jsonl_path is not None else _env(OTELSTREAM_METRICS_FILE)
    )
    readers: list[MetricReader] = []
    metric_classes = _exporter_classes("metrics")
    for cls in metric_classes or []:
        if issubclass(cls, MetricReader):
            readers.append(_create(cls, "metrics"))  # a pull exporter is its own reader
        else:
            exporter_ = _create(cls, "metrics")
            readers.append(
                PeriodicExportingMetricReader(CountingMetricExporter(exporter_, failures))
            )
    metrics_file: Path | None = None
    if metric_classes is None or explicit_metrics_file:
        metrics_file = Path(explicit_metrics_file or _metrics_path_for(trace_path)).absolute()
        readers.append(
            PeriodicExportingMetricReader(
                CountingMetricExporter(JsonLinesMetricExporter(metrics_file), failures)
            )
        )
    meter_provider = MeterProvider(
        resource=resource, metric_readers=readers, shutdown_on_exit=False
    )

    # --- logs -----------------------------------------------------------------------------
    logger_provider: LoggerProvider | None = None
    if logs:
        logger_provider = LoggerProvider(resource=resource, shutdown_on_exit=False)
        log_exporters: list[LogRecordExporter] = []
        log_classes = _exporter_classes("logs")
        for cls in log_classes or []:
            log_exporters.append(_create(cls, "logs"))
        if log_classes is None:
            logs_path = trace_path.with_name(trace_path.name.replace("traces", "logs"))
            if logs_path == trace_path:
                logs_path = trace_path.with_name(f"{trace_path.stem}.logs.jsonl")
            log_exporters.append(JsonLinesLogExporter(logs_path.absolute()))
        for log_exporter in log_exporters:
            logger_provider.add_log_record_processor(
                BatchLogRecordProcessor(CountingLogExporter(log_exporter, failures))
            )

    telemetry = Telemetry(
        tracer_provider=tracer_provider,
        meter_provider=meter_provider,
        logger_provider=logger_provider,
        trace_file=trace_file,
        metrics_file=metrics_file,
        _failures=failures,
    )
    atexit.register(telemetry.shutdown)

    if set_global:
        trace.set_tracer_provider(tracer_provider)
        metrics.set_meter_provider(meter_provider)
        if logger_provider is not None:
            set_logger_provider(logger_provider)
    return telemetry
