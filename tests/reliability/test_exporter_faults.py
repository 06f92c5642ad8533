"""Exporter faults never reach the app: down, refusing, blackholed and restarted OTLP backends.

Every case goes through ``otelstream.configure()`` with OTLP over gRPC and over HTTP/protobuf, and
compares the traced stream with a bare run of an identical graph (``test_passthrough.Normaliser``).
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

import pytest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from otlp_testkit import AGENT_INPUT, STREAM_MODES, make_agent_graph
from reliability_kit import (
    CountOnly,
    Receiver,
    blackhole,
    closed_port,
    no_current_span,
    resetter,
    wait_until,
)
from test_passthrough import Normaliser

import otelstream

if TYPE_CHECKING:
    from collections.abc import Iterator

    from otelstream import Telemetry

PROTOCOLS = ["grpc", "http/protobuf"]


def _point_at(monkeypatch: pytest.MonkeyPatch, url: str, protocol: str, timeout: int) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", url)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", protocol)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", str(timeout))
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "20")
    monkeypatch.setenv("OTEL_METRIC_EXPORT_INTERVAL", "200")


@pytest.fixture
def handles() -> Iterator[list[Telemetry]]:
    """Telemetry handles made by a test, shut down (bounded) afterwards whatever happened."""
    made: list[Telemetry] = []
    yield made
    for handle in made:
        handle.shutdown(timeout=0.5)


def _bare_chunks() -> list[Any]:
    return list(make_agent_graph().stream(AGENT_INPUT, stream_mode=STREAM_MODES))


def _traced_chunks(telemetry: Telemetry) -> list[Any]:
    traced = otelstream.instrument(
        make_agent_graph(),
        tracer_provider=telemetry.tracer_provider,
        meter_provider=telemetry.meter_provider,
    )
    chunks = []
    for chunk in traced.stream(AGENT_INPUT, stream_mode=STREAM_MODES):
        assert no_current_span()
        chunks.append(chunk)
    return chunks


def _same(bare: list[Any], traced: list[Any]) -> None:
    assert Normaliser(number_ids=True)(traced) == Normaliser(number_ids=True)(bare)


def _export_warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if r.name.startswith("otelstream") and r.levelno >= logging.WARNING
    ]


def _fail_exports(
    monkeypatch: pytest.MonkeyPatch, handles: list[Telemetry], protocol: str, fault: str
) -> Telemetry:
    """Three traced runs against a down or resetting collector, each equal to bare; the handle."""
    peer = resetter() if fault == "refusing" else None
    port = peer.port if peer is not None else closed_port()
    try:
        _point_at(monkeypatch, f"http://127.0.0.1:{port}", protocol, timeout=1)
        telemetry = otelstream.configure(service_name="faults")
        handles.append(telemetry)
        bare = _bare_chunks()
        for _ in range(3):
            _same(bare, _traced_chunks(telemetry))
            # Generous: a flush that outlasts its timeout logs a warning of its own, and a
            # loaded machine can stretch three refused exports past a few seconds.
            telemetry.force_flush(timeout=15.0)
        assert wait_until(lambda: telemetry.export_failures["traces"] >= 1, 15.0)
        assert wait_until(lambda: telemetry.export_failures["metrics"] >= 1, 15.0)
    finally:
        if peer is not None:
            peer.close()
    return telemetry


@pytest.mark.slow
@pytest.mark.parametrize("fault", ["down", "refusing"])
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_failed_exports_are_counted_never_raised(
    monkeypatch: pytest.MonkeyPatch, handles: list[Telemetry], protocol: str, fault: str
) -> None:
    """With the collector down or resetting connections, every chunk reaches the app unchanged,
    nothing is raised, the lost telemetry is counted and shutdown(0.5) returns in bounded time."""
    telemetry = _fail_exports(monkeypatch, handles, protocol, fault)
    started = time.monotonic()
    telemetry.shutdown(timeout=0.5)
    assert time.monotonic() - started < 3.0


@pytest.mark.slow
def test_failed_exports_are_logged_once_by_otelstream(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, handles: list[Telemetry]
) -> None:
    """Telemetry lost to a down collector is logged once by otelstream's export layer, however
    many exports fail (README: "Export failures are counted ... and logged")."""
    caplog.set_level(logging.WARNING)
    _fail_exports(monkeypatch, handles, "http/protobuf", "down")
    warnings = _export_warnings(caplog)
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    assert "export" in warnings[0].getMessage()


def _threads_inside_exporter() -> set[int]:
    """Threads whose stack is inside an OTLP exporter's ``export`` right now."""
    inside = set()
    for ident, frame in sys._current_frames().items():
        f: Any = frame
        while f is not None:
            if "opentelemetry/exporter/otlp" in f.f_code.co_filename and f.f_code.co_name in {
                "export",
                "_export",
            }:
                inside.add(ident)
                break
            f = f.f_back
    return inside


@pytest.mark.slow
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_stream_never_waits_on_a_blackholed_exporter(
    monkeypatch: pytest.MonkeyPatch, handles: list[Telemetry], protocol: str
) -> None:
    """A whole traced run completes while the span exporter's thread is stuck inside a blackholed
    export: only the exporter's own thread waits, and shutdown(0.5) returns in bounded time."""
    hole = blackhole()
    try:
        _point_at(monkeypatch, f"http://127.0.0.1:{hole.port}", protocol, timeout=60)
        telemetry = otelstream.configure(service_name="blackhole")
        handles.append(telemetry)
        counted = CountOnly()
        telemetry.tracer_provider.add_span_processor(counted)
        bare = _bare_chunks()
        _same(bare, _traced_chunks(telemetry))  # its spans now wait on the blackhole
        assert hole.received.wait(10.0), "the exporter never reached the blackhole"
        assert wait_until(lambda: bool(_threads_inside_exporter()), 10.0)
        stuck_before = _threads_inside_exporter()
        assert threading.get_ident() not in stuck_before
        ended_before = counted.ended

        _same(bare, _traced_chunks(telemetry))

        # The exporter's threads were inside export() before the run and still are after it:
        # the run finished without waiting for any of them.
        assert stuck_before <= _threads_inside_exporter()
        assert counted.ended > ended_before
        started = time.monotonic()
        assert telemetry.shutdown(timeout=0.5) is False
        assert time.monotonic() - started < 3.0
    finally:
        hole.close()


@pytest.mark.slow
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_backend_restarted_between_and_during_runs(
    monkeypatch: pytest.MonkeyPatch, handles: list[Telemetry], protocol: str
) -> None:
    """A real OTLP receiver stopped and started again, between runs and in the middle of one,
    never changes a chunk or raises; what is lost while it is down is counted, and runs after
    it comes back arrive."""
    receiver = Receiver(protocol, closed_port())
    receiver.start()
    try:
        _point_at(monkeypatch, receiver.url, protocol, timeout=3)
        telemetry = otelstream.configure(service_name="restart")
        handles.append(telemetry)
        memory = InMemorySpanExporter()
        telemetry.tracer_provider.add_span_processor(SimpleSpanProcessor(memory))
        bare = _bare_chunks()

        def last_root() -> int:
            roots = [s for s in memory.get_finished_spans() if s.parent is None]
            return roots[-1].context.trace_id  # type: ignore[union-attr]

        _same(bare, _traced_chunks(telemetry))
        first = last_root()
        telemetry.force_flush(timeout=5.0)
        assert wait_until(lambda: receiver.has_trace(first), 10.0)

        receiver.stop()  # between runs
        _same(bare, _traced_chunks(telemetry))
        telemetry.force_flush(timeout=5.0)
        assert wait_until(lambda: telemetry.export_failures["traces"] >= 1, 15.0)

        receiver.start()
        # during a run: down after the first chunk, back before the last
        traced = otelstream.instrument(
            make_agent_graph(),
            tracer_provider=telemetry.tracer_provider,
            meter_provider=telemetry.meter_provider,
        )
        chunks = []
        for index, chunk in enumerate(traced.stream(AGENT_INPUT, stream_mode=STREAM_MODES)):
            if index == 0:
                receiver.stop()
            chunks.append(chunk)
        receiver.start()
        _same(bare, chunks)

        def a_new_run_arrives() -> bool:
            _same(bare, _traced_chunks(telemetry))
            trace_id = last_root()
            telemetry.force_flush(timeout=5.0)
            return wait_until(lambda: receiver.has_trace(trace_id), 2.0)

        assert any(a_new_run_arrives() for _ in range(5))
        started = time.monotonic()
        assert telemetry.shutdown(timeout=2.0) is True
        assert time.monotonic() - started < 5.0
    finally:
        receiver.stop()
