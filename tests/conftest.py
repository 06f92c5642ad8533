"""Shared fixtures: real OTel SDK providers with in-memory exporters, strict internal errors."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import pytest

# Every skip fails the run: make test provisions all the suite needs, so a skip is a gap.
from no_skip import pytest_make_collect_report, pytest_runtest_makereport
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otelstream import _internal

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["pytest_make_collect_report", "pytest_runtest_makereport"]


@pytest.fixture(autouse=True)
def strict_internal_errors() -> Iterator[None]:
    """Every test fails on an otelstream internal error instead of having it logged."""
    _internal.set_strict(True)
    _internal.take_thread_errors()
    yield
    _internal.set_strict(True)
    errors = _internal.take_thread_errors()
    assert errors == [], f"otelstream's background threads failed: {errors!r}"


@pytest.fixture
def span_exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def tracer_provider(span_exporter: InMemorySpanExporter) -> Iterator[TracerProvider]:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(span_exporter))
    yield provider
    provider.shutdown()


@pytest.fixture
def metric_reader() -> InMemoryMetricReader:
    return InMemoryMetricReader()


@pytest.fixture
def meter_provider(metric_reader: InMemoryMetricReader) -> Iterator[MeterProvider]:
    provider = MeterProvider(metric_readers=[metric_reader])
    yield provider
    provider.shutdown()


@pytest.fixture
def spans(span_exporter: InMemorySpanExporter):  # type: ignore[no-untyped-def]
    """A callable returning the finished spans so far, in start order."""

    def get() -> list[ReadableSpan]:
        return sorted(span_exporter.get_finished_spans(), key=lambda s: s.start_time or 0)

    return get


@pytest.fixture
def release() -> Iterator[threading.Event]:
    """The event hung work waits for; set on teardown whatever happened, so no hung or chatty
    work outlives its test."""
    event = threading.Event()
    yield event
    event.set()
