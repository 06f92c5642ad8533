"""Load: many concurrent runs, async and threaded, stay separate, complete and leave nothing.

Every run gets its own key (input and thread id); its tool-call ids carry the key, so a span that
lands in the wrong trace shows up as a key that does not belong there.
"""

from __future__ import annotations

import asyncio
import gc
import threading
import tracemalloc
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from reliability_kit import (
    CountOnly,
    check_traces,
    live_recorders,
    no_current_span,
    parallel_tools_graph,
    run_config,
    run_input,
    wait_until,
    watchdog_threads,
)

import otelstream
from otelstream import OtelStreamInstrumentor

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

MODES = ["updates", "messages", "custom"]
ASYNC_RUNS = 200
THREADS = 16
RUNS_PER_THREAD = 4


@pytest.fixture(params=["instrument", "instrumentor"])
def make_traced(request: pytest.FixtureRequest) -> Iterator[Callable[..., Any]]:
    """A factory ``(tracer_provider, meter_provider) -> graph`` tracing through instrument() or
    through the instrumentor (uninstrumented afterwards)."""
    instrumentors: list[OtelStreamInstrumentor] = []

    def make(tracer_provider: TracerProvider, meter_provider: MeterProvider) -> Any:
        graph = parallel_tools_graph()
        if request.param == "instrument":
            return otelstream.instrument(
                graph, tracer_provider=tracer_provider, meter_provider=meter_provider
            )
        instrumentor = OtelStreamInstrumentor()
        if instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.uninstrument()
        instrumentor.instrument(tracer_provider=tracer_provider, meter_provider=meter_provider)
        instrumentors.append(instrumentor)
        return graph

    yield make
    for instrumentor in instrumentors:
        instrumentor.uninstrument()


def _providers() -> tuple[TracerProvider, MeterProvider, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    return tracer_provider, MeterProvider(metric_readers=[InMemoryMetricReader()]), exporter


def _nothing_left_behind() -> None:
    # The watchdog lingers at most one check interval (1 s at the default thresholds), and its
    # last check's locals may hold finished runs until then.
    assert wait_until(lambda: not watchdog_threads(), 5.0)
    assert live_recorders() == []


async def _arun(graph: Any, key: str) -> int:
    assert no_current_span()
    count = 0
    async for _chunk in graph.astream(run_input(key), run_config(key), stream_mode=MODES):
        assert no_current_span()
        count += 1
    assert no_current_span()
    return count


def _run(graph: Any, key: str) -> int:
    assert no_current_span()
    count = 0
    for _chunk in graph.stream(run_input(key), run_config(key), stream_mode=MODES):
        assert no_current_span()
        count += 1
    assert no_current_span()
    return count


@pytest.mark.slow
async def test_200_concurrent_astream_runs_are_separate_complete_traces(
    make_traced: Callable[..., Any],
) -> None:
    """200 concurrent ``astream`` runs each make one complete, well-nested trace holding only
    their own run's ids, leak no context into their tasks and leave no recorder or watchdog."""
    tracer_provider, meter_provider, exporter = _providers()
    graph = make_traced(tracer_provider, meter_provider)
    keys = [f"async-{i:03d}" for i in range(ASYNC_RUNS)]
    counts = await asyncio.gather(*(_arun(graph, key) for key in keys))
    assert len(set(counts)) == 1
    assert counts[0] > 0
    check_traces(exporter.get_finished_spans(), keys)
    _nothing_left_behind()


@pytest.mark.slow
def test_16_threads_of_sync_stream_runs_are_separate_complete_traces(
    make_traced: Callable[..., Any],
) -> None:
    """16 threads running sync ``stream`` at once each make complete, separate traces, leak no
    context into their thread and leave no recorder or watchdog behind."""
    tracer_provider, meter_provider, exporter = _providers()
    graph = make_traced(tracer_provider, meter_provider)
    keys = [f"thread-{t:02d}-{r}" for t in range(THREADS) for r in range(RUNS_PER_THREAD)]
    barrier = threading.Barrier(THREADS)

    def worker(thread: int) -> list[int]:
        barrier.wait()
        mine = [k for k in keys if k.startswith(f"thread-{thread:02d}-")]
        return [_run(graph, key) for key in mine]

    with ThreadPoolExecutor(THREADS) as pool:
        counts = [c for result in pool.map(worker, range(THREADS)) for c in result]
    assert len(set(counts)) == 1
    assert counts[0] > 0
    check_traces(exporter.get_finished_spans(), keys)
    _nothing_left_behind()


def _otelstream_bytes(snapshot: tracemalloc.Snapshot) -> int:
    filtered = snapshot.filter_traces([tracemalloc.Filter(True, "*/otelstream/*")])
    return sum(stat.size for stat in filtered.statistics("filename"))


@pytest.mark.slow
async def test_memory_returns_to_baseline_after_concurrent_runs() -> None:
    """Live memory allocated by otelstream after N and after 3N finished concurrent runs stays
    within a fixed slack of the baseline: nothing grows per run."""
    counted = CountOnly()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(counted)
    meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    graph = otelstream.instrument(
        parallel_tools_graph(), tracer_provider=tracer_provider, meter_provider=meter_provider
    )

    async def batch(prefix: str, n: int) -> None:
        await asyncio.gather(*(_arun(graph, f"{prefix}-{i}") for i in range(n)))
        assert wait_until(lambda: not watchdog_threads(), 5.0)

    await batch("warm", 20)
    tracemalloc.start()
    try:
        gc.collect()
        baseline = _otelstream_bytes(tracemalloc.take_snapshot())
        await batch("first", 30)
        gc.collect()
        after_n = _otelstream_bytes(tracemalloc.take_snapshot())
        await batch("second", 60)
        gc.collect()
        after_3n = _otelstream_bytes(tracemalloc.take_snapshot())
    finally:
        tracemalloc.stop()
    slack = 16 * 1024
    assert after_n - baseline < slack, (baseline, after_n)
    assert after_3n - baseline < slack, (baseline, after_3n)
    assert counted.ended == (20 + 30 + 60) * 8
    _nothing_left_behind()


def test_watchdog_runs_only_while_a_stream_is_open(
    tracer_provider: TracerProvider, meter_provider: MeterProvider
) -> None:
    """The watchdog's set of open runs is empty once a run ends, and its thread stops within its
    linger."""
    traced = otelstream.instrument(
        parallel_tools_graph(), tracer_provider=tracer_provider, meter_provider=meter_provider
    )
    watchdog = traced._otelstream_tracing.watchdog
    stream = traced.stream(run_input("w"), run_config("w"), stream_mode=MODES)
    next(stream)
    assert len(watchdog._runs) == 1
    assert watchdog.running
    list(stream)
    assert watchdog._runs == set()
    assert wait_until(lambda: not watchdog.running, (watchdog.interval or 1.0) * 3 + 1.0)
