"""One contender on one workload and mode, in its own process, driven by ``benchmarks.run``.

Protocol: the worker prints ``@@`` + a JSON object per line on stdout (anything else a library
prints is ignored). First ``{"ready": ..., "versions": ...}``; then for each ``run`` line read
on stdin, one ``{"ms", "cpu_ms", "chunks", "spans", "events", "points", "dropped_events"}``; on
``quit``,
``{"rss_mb": ...}`` (the process's peak resident set size) and exit.

Contenders:
    bare: the compiled graph itself, no OpenTelemetry at all.
    bare-again: the same, in a second process: how far two identical contenders drift apart on
        this machine (the noise floor of every ratio).
    otelstream: ``otelstream.instrument(graph)`` with default ``Options``.
    otelstream-nochunks: otelstream with ``Options(trace_chunks=False)``: it no longer makes the
        chat model stream, so on W3 (``updates`` only) the model runs unstreamed as in the bare
        graph; where the caller streams ``messages`` anyway (W1, W2) it records the same.
    otelstream-noop: otelstream on OpenTelemetry's no-op tracer and meter providers: its own cost,
        without the SDK's.
    sdk-floor: the bare graph, then otelstream's telemetry of the same run replayed into the SDK
        (``benchmarks.floor``): what recording that telemetry costs the SDK alone.
    openinference: ``openinference-instrumentation-langchain``'s ``LangChainInstrumentor``.
    openllmetry: ``opentelemetry-instrumentation-langchain``'s ``LangchainInstrumentor``.
    otel-genai: the OpenTelemetry project's own ``opentelemetry-instrumentation-genai-langchain``
        (``LangChainInstrumentor`` in ``opentelemetry.instrumentation.genai.langchain``).

Every traced contender exports to an ``InMemorySpanExporter`` through a ``BatchSpanProcessor``
(the production setup: export happens on the SDK's worker thread) and records metrics into an
SDK ``MeterProvider`` with an ``InMemoryMetricReader``.

``ms`` is the wall clock of the run. ``cpu_ms`` is the CPU time of the whole process (every
thread: LangGraph's pool, the SDK's export thread, a tracer's own threads) from the start of the
run until its spans are flushed and its metrics collected, so a tracer's export work is counted
wherever the batch processor's schedule happens to put it. ``points`` counts the metric
measurements of the run: histogram recordings plus the amounts added to counters.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import gc
import json
import resource
import sys
import time
from dataclasses import dataclass
from importlib import metadata
from typing import TYPE_CHECKING, Any

from opentelemetry.metrics import NoOpMeterProvider
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    HistogramDataPoint,
    InMemoryMetricReader,
    MetricsData,
    NumberDataPoint,
    Sum,
)
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import NoOpTracerProvider

import otelstream
from benchmarks import floor, workloads
from benchmarks.run import LOCAL, PEERS

if TYPE_CHECKING:
    from collections.abc import Callable

CONTENDERS = (*LOCAL, *PEERS)
_PACKAGES = {
    "otelstream": "otelstream",
    "openinference": "openinference-instrumentation-langchain",
    "openllmetry": "opentelemetry-instrumentation-langchain",
    "otel-genai": "opentelemetry-instrumentation-genai-langchain",
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
        self._measurements = 0

    def drain(self) -> tuple[int, int, int, int]:
        """Spans, span events, metric measurements and events dropped by span limits since the
        last drain."""
        self.tracer_provider.force_flush()
        spans = self.exporter.get_finished_spans()
        self.exporter.clear()
        total = _measurements(self.reader.get_metrics_data())
        # The reader's temporality is cumulative: a run's measurements are the growth.
        points, self._measurements = total - self._measurements, total
        events = sum(len(span.events) for span in spans)
        dropped = sum(span.dropped_events for span in spans)
        return len(spans), events, points, dropped


def _measurements(data: MetricsData | None) -> int:
    """Histogram recordings plus counter increments, cumulative since the reader started."""
    total = 0
    for resource_metrics in data.resource_metrics if data else ():
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                for point in metric.data.data_points:
                    if isinstance(point, HistogramDataPoint):
                        total += point.count
                    elif isinstance(point, NumberDataPoint) and isinstance(metric.data, Sum):
                        total += int(point.value)
    return total


@dataclass
class Contender:
    """How one contender runs a workload.

    Attributes:
        telemetry: The SDK pipeline it exports to (``None``: no OpenTelemetry at all).
        wrap: Turns the bare graph into the one to stream.
        after: Runs inside the timed section, after the stream (the SDK floor's replay).
    """

    telemetry: Telemetry | None
    wrap: Callable[[Any], Any] = lambda graph: graph
    after: Callable[[], None] | None = None


def _setup(contender: str, workload: str, sizes: workloads.Sizes, run: Any) -> Contender:
    """How ``contender`` runs ``workload``; ``run(graph)`` streams one run of a graph."""
    if contender in ("bare", "bare-again"):
        return Contender(None)
    if contender == "otelstream-noop":
        return Contender(
            None,
            lambda graph: otelstream.instrument(
                graph,
                tracer_provider=NoOpTracerProvider(),
                meter_provider=NoOpMeterProvider(),
            ),
        )
    telemetry = Telemetry()
    if contender in ("otelstream", "otelstream-nochunks"):
        options = otelstream.Options(trace_chunks=contender == "otelstream")
        return Contender(
            telemetry,
            lambda graph: otelstream.instrument(
                graph,
                tracer_provider=telemetry.tracer_provider,
                meter_provider=telemetry.meter_provider,
                options=options,
            ),
        )
    if contender == "sdk-floor":
        script = floor.record_script(run, workloads.build(workload, sizes))
        replay = floor.Replay(
            telemetry.tracer_provider.get_tracer("sdk-floor"),
            telemetry.meter_provider.get_meter("sdk-floor"),
        )
        return Contender(telemetry, after=lambda: replay.play(script))
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
    elif contender == "otel-genai":
        from opentelemetry.instrumentation.genai.langchain import (  # noqa: PLC0415
            LangChainInstrumentor as GenAILangChainInstrumentor,
        )

        GenAILangChainInstrumentor().instrument(
            tracer_provider=telemetry.tracer_provider,
            meter_provider=telemetry.meter_provider,
        )
    else:
        msg = f"unknown contender {contender!r}; use one of {', '.join(CONTENDERS)}"
        raise ValueError(msg)
    return Contender(telemetry)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--contender", choices=CONTENDERS, required=True)
    parser.add_argument("--workload", choices=workloads.WORKLOADS, required=True)
    parser.add_argument("--mode", choices=("sync", "async"), required=True)
    parser.add_argument("--sizes", required=True, help="JSON of benchmarks.workloads.Sizes")
    parser.add_argument(
        "--callgrind-shim",
        help="shared library from benchmarks.instructions: count each run's instructions",
    )
    args = parser.parse_args(argv)

    sizes = workloads.Sizes(**json.loads(args.sizes))
    mode = workloads.stream_mode(args.workload)
    loop = asyncio.new_event_loop() if args.mode == "async" else None

    async def consume_async(graph: Any) -> int:
        count = 0
        async for _ in graph.astream(workloads.inputs(), stream_mode=mode):
            count += 1
        return count

    def consume(graph: Any) -> int:
        if loop is None:
            return sum(1 for _ in graph.stream(workloads.inputs(), stream_mode=mode))
        return loop.run_until_complete(consume_async(graph))

    contender = _setup(args.contender, args.workload, sizes, consume)
    telemetry = contender.telemetry

    # Under callgrind, each run's instructions (every thread's) are dumped on their own.
    shim = ctypes.CDLL(args.callgrind_shim) if args.callgrind_shim else None

    def run_once() -> dict[str, Any]:
        graph = contender.wrap(workloads.build(args.workload, sizes))
        gc.collect()
        if shim is not None:
            shim.otelstream_bench_zero()
        cpu_start = time.process_time_ns()
        start = time.perf_counter_ns()
        count = consume(graph)
        if contender.after is not None:
            contender.after()
        elapsed = time.perf_counter_ns() - start
        if shim is not None:
            shim.otelstream_bench_dump()
        spans, events, points, dropped = telemetry.drain() if telemetry else (0, 0, 0, 0)
        cpu = time.process_time_ns() - cpu_start
        return {
            "ms": elapsed / 1e6,
            "cpu_ms": cpu / 1e6,
            "chunks": count,
            "spans": spans,
            "events": events,
            "points": points,
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
