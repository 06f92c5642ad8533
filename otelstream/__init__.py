"""otelstream: OpenTelemetry traces and metrics for LangGraph streams.

>>> traced = otelstream.instrument(graph)
>>> for chunk in traced.stream(inputs, stream_mode=["updates", "messages"]):
...     ...  # exactly the chunks the bare graph yields; the run is one trace
"""

from __future__ import annotations

__version__ = "0.1.0"

from otelstream._instrument import instrument
from otelstream.export import Telemetry, configure, configure_logging
from otelstream.feeds.proxy import InstrumentedGraph
from otelstream.feeds.transformer import transformer
from otelstream.instrumentor import OtelStreamInstrumentor
from otelstream.options import Options

__all__ = [
    "InstrumentedGraph",
    "Options",
    "OtelStreamInstrumentor",
    "Telemetry",
    "__version__",
    "configure",
    "configure_logging",
    "instrument",
    "transformer",
]
