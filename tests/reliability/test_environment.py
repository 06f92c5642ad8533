"""Bad environment values: one clear warning and a safe default, or a clear error."""

from __future__ import annotations

import logging
import math

import pytest

import otelstream
from otelstream import Options
from otelstream.options import CAPTURE_CONTENT_ENV, LLM_STALL_ENV, TASK_STALL_ENV, TOOL_STALL_ENV


def _warnings(caplog: pytest.LogCaptureFixture, variable: str) -> list[logging.LogRecord]:
    return [
        r for r in caplog.records if r.levelno >= logging.WARNING and variable in r.getMessage()
    ]


@pytest.mark.parametrize("value", ["maybe", "2", "tru", "enabled!", "ja"])
def test_bad_capture_value_warns_once_and_leaves_capture_off(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, value: str
) -> None:
    """An unknown content-capture value logs one warning naming the variable; capture stays off."""
    caplog.set_level(logging.WARNING, logger="otelstream")
    monkeypatch.setenv(CAPTURE_CONTENT_ENV, value)
    assert Options().capture_content is False
    assert len(_warnings(caplog, CAPTURE_CONTENT_ENV)) == 1


THRESHOLDS = [
    (TOOL_STALL_ENV, "tool_stall_threshold", 30.0),
    (LLM_STALL_ENV, "llm_stall_threshold", 60.0),
    (TASK_STALL_ENV, "task_stall_threshold", None),
]


@pytest.mark.parametrize("value", ["abc", "-5", "nan", "1s", "--1"])
@pytest.mark.parametrize(("variable", "field", "default"), THRESHOLDS)
def test_bad_threshold_warns_once_and_keeps_the_default(
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    variable: str,
    field: str,
    default: float | None,
    value: str,
) -> None:
    """A stall threshold that is not a number of seconds logs one warning and keeps the default."""
    caplog.set_level(logging.WARNING, logger="otelstream")
    monkeypatch.setenv(variable, value)
    assert getattr(Options(), field) == default
    assert len(_warnings(caplog, variable)) == 1


@pytest.mark.parametrize(("variable", "field", "default"), THRESHOLDS)
def test_off_and_empty_thresholds_are_not_warned_about(
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    variable: str,
    field: str,
    default: float | None,
) -> None:
    """``off`` turns a threshold off and an empty value keeps the default, without a warning."""
    caplog.set_level(logging.WARNING, logger="otelstream")
    monkeypatch.setenv(variable, "off")
    off = math.inf if field == "tool_stall_threshold" else None
    assert getattr(Options(), field) == off
    monkeypatch.setenv(variable, "  ")
    assert getattr(Options(), field) == default
    assert _warnings(caplog, variable) == []


# ---- configure(): what the SDK and otelstream do with bad OTEL_* values ----------------------


def _configure_ok(caplog: pytest.LogCaptureFixture) -> otelstream.Telemetry:
    telemetry = otelstream.configure()
    telemetry.shutdown(timeout=2.0)
    return telemetry


def test_bad_metric_export_interval_warns_and_uses_the_default(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """OTEL_METRIC_EXPORT_INTERVAL=abc logs one warning and configure() still works."""
    caplog.set_level(logging.WARNING)
    monkeypatch.setenv("OTEL_METRIC_EXPORT_INTERVAL", "abc")
    _configure_ok(caplog)
    found = [r for r in caplog.records if "export interval" in r.getMessage()]
    assert len(found) == 1


def test_bad_sampler_warns_and_samples_everything(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """OTEL_TRACES_SAMPLER=nope logs one warning naming it and keeps the default sampler."""
    caplog.set_level(logging.WARNING)
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "nope")
    telemetry = otelstream.configure()
    assert telemetry.tracer_provider.sampler.get_description().startswith("ParentBased")
    telemetry.shutdown(timeout=2.0)
    assert len([r for r in caplog.records if "nope" in r.getMessage()]) == 1


def test_bad_protocol_with_an_endpoint_is_a_clear_value_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """OTEL_EXPORTER_OTLP_PROTOCOL=bogus with an endpoint raises ValueError saying what to set."""
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "bogus")
    with pytest.raises(ValueError, match="OTEL_EXPORTER_OTLP_PROTOCOL"):
        otelstream.configure()


def test_bad_protocol_without_an_endpoint_is_ignored_for_the_local_files(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without an endpoint no OTLP exporter is built, so a bad protocol changes nothing."""
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "bogus")
    telemetry = otelstream.configure()
    assert telemetry.trace_file is not None
    assert telemetry.shutdown(timeout=2.0) is True


@pytest.mark.parametrize("value", ["-5", "0"])
def test_non_positive_batch_schedule_delay_is_warned_and_the_default_used(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, value: str
) -> None:
    """OTEL_BSP_SCHEDULE_DELAY=-5 logs a warning naming the variable and keeps the 5 s default,
    instead of the SDK's bare "schedule_delay_millis must be positive"."""
    caplog.set_level(logging.WARNING)
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", value)
    telemetry = otelstream.configure()
    telemetry.shutdown(timeout=2.0)
    warned = [r.getMessage() for r in caplog.records if "OTEL_BSP_SCHEDULE_DELAY" in r.getMessage()]
    assert len(warned) == 1
    assert "5000" in warned[0]


def test_unparsable_batch_schedule_delay_logs_and_uses_the_default(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """OTEL_BSP_SCHEDULE_DELAY=abc is reported by the SDK and configure() still works."""
    caplog.set_level(logging.WARNING)
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "abc")
    _configure_ok(caplog)
    assert [r for r in caplog.records if "OTEL_BSP_SCHEDULE_DELAY" in r.getMessage()]


def test_unknown_traces_exporter_is_a_clear_value_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """OTEL_TRACES_EXPORTER=bogus raises ValueError naming the variable (configure() documents
    ValueError for bad exporter settings), not the SDK's RuntimeError about entry points."""
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "bogus")
    with pytest.raises(ValueError, match="OTEL_TRACES_EXPORTER"):
        otelstream.configure()


def test_bad_otlp_timeout_with_grpc_is_a_clear_value_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """OTEL_EXPORTER_OTLP_TIMEOUT=abc with gRPC raises a ValueError naming the variable, not the
    exporter's bare "could not convert string to float"."""
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "abc")
    with pytest.raises(ValueError, match="OTEL_EXPORTER_OTLP_TIMEOUT"):
        otelstream.configure()
