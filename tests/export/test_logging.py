"""structlog wiring: log lines carry the current span's trace and span ids."""

from __future__ import annotations

import io
import json
from typing import TYPE_CHECKING

import pytest
import structlog
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import format_span_id, format_trace_id

from otelstream.export import add_trace_context, configure_logging

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture(autouse=True)
def reset_structlog() -> Iterator[None]:
    """Leave structlog's global configuration as it was found."""
    yield
    structlog.reset_defaults()


def test_json_lines_carry_trace_and_span_ids_inside_a_span() -> None:
    """A line logged inside a span has that span's hex trace_id and span_id."""
    out = io.StringIO()
    configure_logging(renderer="json", stream=out)
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("work") as span:
        structlog.get_logger("otelstream").info("inside", node="model")
    line = json.loads(out.getvalue().splitlines()[0])
    context = span.get_span_context()
    assert line["event"] == "inside"
    assert line["node"] == "model"
    assert line["level"] == "info"
    assert line["trace_id"] == format_trace_id(context.trace_id)
    assert line["span_id"] == format_span_id(context.span_id)


def test_lines_outside_spans_have_no_ids() -> None:
    """A line logged with no current span carries neither id."""
    out = io.StringIO()
    configure_logging(renderer="json", stream=out)
    structlog.get_logger().warning("outside")
    line = json.loads(out.getvalue())
    assert "trace_id" not in line
    assert "span_id" not in line


def test_level_filters_and_console_renderer_works() -> None:
    """Below-level lines are dropped; the console renderer prints the ids too."""
    out = io.StringIO()
    configure_logging(renderer="console", level="WARNING", stream=out)
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("work"):
        structlog.get_logger().info("dropped")
        structlog.get_logger().warning("kept")
    text = out.getvalue()
    assert "dropped" not in text
    assert "kept" in text
    assert "trace_id" in text


def test_processor_keeps_ids_the_caller_set() -> None:
    """add_trace_context does not overwrite ids already in the event."""
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("work"):
        event = add_trace_context(None, "info", {"event": "x", "trace_id": "mine"})
    assert event["trace_id"] == "mine"
    assert len(event["span_id"]) == 16


def test_bad_arguments_raise_value_error() -> None:
    """An unknown renderer or level name is a ValueError that says what to use."""
    with pytest.raises(ValueError, match="json"):
        configure_logging(renderer="xml")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="level"):
        configure_logging(level="LOUD")
