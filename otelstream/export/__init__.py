"""Export: SDK providers from the ``OTEL_*`` environment, OTLP JSON Lines files, structlog.

This is the only part of otelstream that touches global state, and only when asked:
:func:`configure` builds providers (and installs them as globals with ``set_global=True``);
:func:`configure_logging` configures structlog.
"""

from __future__ import annotations

from otelstream.export._configure import (
    DEFAULT_TRACE_FILE,
    OTELSTREAM_METRICS_FILE,
    OTELSTREAM_TRACE_FILE,
    Telemetry,
    configure,
)
from otelstream.export._jsonl import (
    JsonLinesLogExporter,
    JsonLinesMetricExporter,
    JsonLinesSpanExporter,
    ids_to_hex,
    to_otlp_json,
)
from otelstream.export._logging import add_trace_context, configure_logging

__all__ = [
    "DEFAULT_TRACE_FILE",
    "OTELSTREAM_METRICS_FILE",
    "OTELSTREAM_TRACE_FILE",
    "JsonLinesLogExporter",
    "JsonLinesMetricExporter",
    "JsonLinesSpanExporter",
    "Telemetry",
    "add_trace_context",
    "configure",
    "configure_logging",
    "ids_to_hex",
    "to_otlp_json",
]
