"""OTLP JSON Lines files: the embedded default when no OTLP endpoint is configured.

The format is the one the OpenTelemetry file exporter specifies: one ``TracesData`` (or
``MetricsData``, ``LogsData``) object per line, protobuf JSON with lowerCamelCase keys, integer
enums, 64-bit integers as strings, and trace/span ids as hex. Jaeger's UI and ``otel-cli`` can load
such a file directly, and a collector's ``otlpjsonfile`` receiver can replay it.

The SDK's OTLP encoders build the protobuf messages, so the file holds exactly what an OTLP exporter
would have sent. Only the ids need fixing: protobuf's JSON mapping writes ``bytes`` as base64, the
OTLP JSON encoding wants hex.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from google.protobuf import json_format
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.logs.v1 import logs_pb2
from opentelemetry.proto.metrics.v1 import metrics_pb2
from opentelemetry.proto.trace.v1 import trace_pb2
from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult
from opentelemetry.sdk.metrics.export import MetricExporter, MetricExportResult
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

if TYPE_CHECKING:
    import os
    from collections.abc import Sequence

    from google.protobuf.message import Message
    from opentelemetry.sdk._logs import ReadableLogRecord
    from opentelemetry.sdk.metrics.export import MetricsData
    from opentelemetry.sdk.trace import ReadableSpan

__all__ = [
    "JsonLinesLogExporter",
    "JsonLinesMetricExporter",
    "JsonLinesSpanExporter",
    "ids_to_hex",
    "to_otlp_json",
]

_logger = logging.getLogger(__name__)

# The only ``bytes`` fields in the trace, metrics and logs protos: span, parent, link, exemplar
# and log record ids. Attribute keys never collide with them, since attributes are encoded as
# ``{"key": ..., "value": ...}`` objects.
_ID_KEYS = frozenset({"traceId", "spanId", "parentSpanId"})


def ids_to_hex(node: Any) -> Any:
    """Rewrite base64 ``traceId``/``spanId``/``parentSpanId`` values to hex, in place.

    Args:
        node: The output of ``json_format.MessageToDict`` (or any part of it).

    Returns:
        The same object, for chaining.
    """
    if isinstance(node, dict):
        for key, value in node.items():
            if key in _ID_KEYS and isinstance(value, str):
                node[key] = base64.b64decode(value).hex()
            else:
                ids_to_hex(value)
    elif isinstance(node, list):
        for item in node:
            ids_to_hex(item)
    return node


def to_otlp_json(message: Message) -> dict[str, Any]:
    """Convert an OTLP protobuf message to the OTLP JSON encoding as a dict.

    Args:
        message: A ``TracesData``, ``MetricsData`` or ``LogsData`` message.

    Returns:
        A dict ready for ``json.dumps``: lowerCamelCase keys, integer enums, 64-bit integers as
        strings (protobuf's JSON mapping already does this), hex ids.
    """
    as_dict = json_format.MessageToDict(message, use_integers_for_enums=True)
    result: dict[str, Any] = ids_to_hex(as_dict)
    return result


class _JsonLinesFile:
    """Appends one serialized message per line to a file, safely from several threads.

    Each batch opens, appends and closes the file: batches come at most every few seconds, and
    this way a rotated or deleted file is simply recreated, and several providers may share one.
    """

    def __init__(self, path: str | os.PathLike[str], signal: str) -> None:
        self.path = Path(path)
        self._signal = signal
        self._lock = threading.Lock()
        self.failures = 0
        """Batches that could not be written (the exporter returned FAILURE for them)."""

    def append(self, message: Message) -> bool:
        """Serialize ``message`` as one line; return whether it was written.

        A failure is logged and counted, never raised: the exporter runs in the SDK's worker thread
        and an exception there would only be logged less helpfully by the SDK.
        """
        try:
            text = json.dumps(to_otlp_json(message), separators=(",", ":"), ensure_ascii=False)
            with self._lock:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                with self.path.open("a", encoding="utf-8") as file:
                    file.write(text + "\n")
        except Exception:
            self.failures += 1
            # The first failure is a warning so that a wrong path is noticed; repeats are debug
            # so that a full disk does not flood the application's own logs.
            level = logging.WARNING if self.failures == 1 else logging.DEBUG
            text = "otelstream: could not write %s to %s"
            _logger.log(level, text, self._signal, self.path, exc_info=True)
            return False
        return True


class JsonLinesSpanExporter(SpanExporter):
    """A span exporter that appends one OTLP JSON ``TracesData`` object per batch to a file.

    Args:
        path: The file to append to; parent directories are created.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self._file = _JsonLinesFile(path, "spans")

    @property
    def path(self) -> Path:
        """The file spans are appended to."""
        return self._file.path

    @property
    def failures(self) -> int:
        """How many batches could not be written."""
        return self._file.failures

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Append ``spans`` as one ``TracesData`` line."""
        if not spans:
            return SpanExportResult.SUCCESS
        try:
            request = encode_spans(spans)
        except Exception:
            _logger.debug("otelstream: could not encode spans", exc_info=True)
            self._file.failures += 1
            return SpanExportResult.FAILURE
        data = trace_pb2.TracesData(resource_spans=request.resource_spans)
        ok = self._file.append(data)
        return SpanExportResult.SUCCESS if ok else SpanExportResult.FAILURE

    def shutdown(self) -> None:
        """Nothing to release: the file is closed after every batch."""

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Nothing is buffered here; the batch processor in front of this exporter buffers."""
        return True


class JsonLinesMetricExporter(MetricExporter):
    """A metric exporter that appends one OTLP JSON ``MetricsData`` object per collection.

    Args:
        path: The file to append to; parent directories are created.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        super().__init__()
        self._file = _JsonLinesFile(path, "metrics")

    @property
    def path(self) -> Path:
        """The file metrics are appended to."""
        return self._file.path

    @property
    def failures(self) -> int:
        """How many collections could not be written."""
        return self._file.failures

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        """Append one collection as a ``MetricsData`` line (skipped when it holds no metric)."""
        try:
            request = encode_metrics(metrics_data)
        except Exception:
            _logger.debug("otelstream: could not encode metrics", exc_info=True)
            self._file.failures += 1
            return MetricExportResult.FAILURE
        if not request.resource_metrics:
            return MetricExportResult.SUCCESS
        data = metrics_pb2.MetricsData(resource_metrics=request.resource_metrics)
        ok = self._file.append(data)
        return MetricExportResult.SUCCESS if ok else MetricExportResult.FAILURE

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        """Nothing is buffered here."""
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        """Nothing to release: the file is closed after every collection."""


class JsonLinesLogExporter(LogRecordExporter):
    """A log record exporter that appends one OTLP JSON ``LogsData`` object per batch.

    Args:
        path: The file to append to; parent directories are created.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self._file = _JsonLinesFile(path, "logs")

    @property
    def path(self) -> Path:
        """The file log records are appended to."""
        return self._file.path

    @property
    def failures(self) -> int:
        """How many batches could not be written."""
        return self._file.failures

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        """Append ``batch`` as one ``LogsData`` line."""
        if not batch:
            return LogRecordExportResult.SUCCESS
        try:
            request = encode_logs(batch)
        except Exception:
            _logger.debug("otelstream: could not encode log records", exc_info=True)
            self._file.failures += 1
            return LogRecordExportResult.FAILURE
        data = logs_pb2.LogsData(resource_logs=request.resource_logs)
        ok = self._file.append(data)
        return LogRecordExportResult.SUCCESS if ok else LogRecordExportResult.FAILURE

    def shutdown(self) -> None:
        """Nothing to release: the file is closed after every batch."""

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Nothing is buffered here; the batch processor in front of this exporter buffers."""
        return True
