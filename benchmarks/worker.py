"""One contender on one workload and mode, in its own process, driven by ``benchmarks.run``.

Protocol: the worker prints ``@@`` + a JSON object per line on stdout (anything else a library
prints is ignored). First ``{"ready": ..., "versions": ...}``; then for each ``run`` line read
on stdin, one ``{"ms", "chunks", "spans", "events", "dropped_events"}``; on ``quit``,
``{"rss_mb": ...}`` (the process's peak resident set size) and exit.

Contenders:
    bare: the compiled graph itself, no OpenTelemetry at all.
    otelstream: ``otelstream.instrument(graph)`` with default ``Options``.
    openinference: ``openinference-instrumentation-langchain``'s ``LangChainInstrumentor``.
    openllmetry: ``opentelemetry-instrumentation-langchain``'s ``LangchainInstrumentor``.

Every traced contender exports to an ``InMemorySpanExporter`` through a ``BatchSpanProcessor``
(the production setup: export happens on the SDK's worker thread) and records metrics into an
SDK ``MeterProvider`` with an ``InMemoryMetricReader``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import resource
import sys
import time
from importlib import metadata
from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import otelstream
from benchmarks import workloads

CONTENDERS = ("bare", "otelstream", "openinference", "openllmetry")
_PACKAGES = {
    "otelstream": "otelstream",
    "openinference": "openinference-instrumentation-langchain",
    "openllmetry": "opentelemetry-instrumentation-langchain",
}


def _emit(obj: dict[str, Any]) -> None:
    sys.stdout.write("@@" + json.dumps(obj) + "\n")
    sys.stdout.flush()


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "-"


def versions(contender: str) -> dict[str, str]:
    """The versions that matter to the numbers."""
    found = {
        "python": sys.version.split()[0],
        "langgraph": _version("langgraph"),
        "langchain": _version("langchain"),
        "langchain-core": _version("langchain-core"),
        "opentelemetry-sdk": _version("opentelemetry-sdk"),
    }
    if contender in _PACKAGES:
        found[_PACKAGES[contender]] = _version(_PACKAGES[contender])
    return found


class Telemetry:
    """The SDK pipeline every traced contender exports to."""

    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(BatchSpanProcessor(self.exporter))
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])

    def drain(self) -> tuple[int, int, int]:
        """Spans, span events and events dropped by span limits since the last drain."""
        self.tracer_provider.force_flush()
        spans = self.exporter.get_finished_spans()
        self.exporter.clear()
        self.reader.get_metrics_data()
        events = sum(len(span.events) for span in spans)
        dropped = sum(span.dropped_events for span in spans)
        return len(spans), events, dropped


def _setup(contender: str) -> tuple[Telemetry | None, Any]:
    """The telemetry pipeline and a function turning a bare graph into the one to stream."""
    if contender == "bare":
        return None, lambda graph: graph
    telemetry = Telemetry()
    if contender == "otelstream":

        def wrap(graph: Any) -> Any:
            return otelstream.instrument(
                graph,
                tracer_provider=telemetry.tracer_provider,
                meter_provider=telemetry.meter_provider,
            )

        return telemetry, wrap
    if contender == "openinference":
        # Peers live in a separate venv: imported only in the process that runs them.
        from openinference.instrumentation.langchain import (  # noqa: PLC0415
            LangChainInstrumentor,
        )

        LangChainInstrumentor().instrument(tracer_provider=telemetry.tracer_provider)
    elif contender == "openllmetry":
        from opentelemetry.instrumentation.langchain import (  # noqa: PLC0415
            LangchainInstrumentor,
        )

        LangchainInstrumentor().instrument(
            tracer_provider=telemetry.tracer_provider,
            meter_provider=telemetry.meter_provider,
        )
    else:
        msg = f"unknown contender {contender!r}; use one of {', '.join(CONTENDERS)}"
        raise ValueError(msg)
    return telemetry, lambda graph: graph


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--contender", choices=CONTENDERS, required=True)
    parser.add_argument("--workload", choices=workloads.WORKLOADS, required=True)
    parser.add_argument("--mode", choices=("sync", "async"), required=True)
    parser.add_argument("--sizes", required=True, help="JSON of benchmarks.workloads.Sizes")
    args = parser.parse_args(argv)

    sizes = workloads.Sizes(**json.loads(args.sizes))
    telemetry, wrap = _setup(args.contender)
    mode = workloads.stream_mode(args.workload)
    loop = asyncio.new_event_loop() if args.mode == "async" else None

    async def consume_async(graph: Any) -> int:
        count = 0
        async for _ in graph.astream(workloads.inputs(), stream_mode=mode):
            count += 1
        return count

    def run_once() -> dict[str, Any]:
        graph = wrap(workloads.build(args.workload, sizes))
        gc.collect()
        start = time.perf_counter_ns()
        if loop is None:
            count = sum(1 for _ in graph.stream(workloads.inputs(), stream_mode=mode))
        else:
            count = loop.run_until_complete(consume_async(graph))
        elapsed = time.perf_counter_ns() - start
        spans, events, dropped = telemetry.drain() if telemetry else (0, 0, 0)
        return {
            "ms": elapsed / 1e6,
            "chunks": count,
            "spans": spans,
            "events": events,
            "dropped_events": dropped,
        }

    _emit({"ready": True, "versions": versions(args.contender)})
    for line in sys.stdin:
        command = line.strip()
        if command == "run":
            _emit(run_once())
        elif command == "quit":
            break
    if loop is not None:
        loop.close()
    # ru_maxrss is in KiB on Linux.
    _emit({"rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024})


if __name__ == "__main__":
    main()
