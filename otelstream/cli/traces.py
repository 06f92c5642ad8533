"""The span model the CLI renders, read from an OTLP JSON Lines file or from live SDK spans.

``otelstream view`` reads the file ``configure()`` writes (one ``TracesData`` object per line,
see ``otelstream/export/_jsonl.py``); ``demo`` and ``run`` convert the SDK's ``ReadableSpan``
objects they saw end. Both become the same small, immutable model, so the waterfall has one
input whatever the source.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from opentelemetry.trace import StatusCode

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from pathlib import Path

    from opentelemetry.sdk.trace import ReadableSpan

__all__ = [
    "SpanEvent",
    "SpanLink",
    "SpanRecord",
    "Trace",
    "TraceFileError",
    "group_traces",
    "read_trace_file",
]

_STATUS_ERROR = 2
"""``Status.code`` of an errored span in OTLP JSON (``STATUS_CODE_ERROR``)."""


class TraceFileError(ValueError):
    """The trace file cannot be read or is not OTLP JSON Lines; the message says where."""


@dataclass(frozen=True)
class SpanEvent:
    """One span event.

    Attributes:
        name: The event name, such as ``otelstream.chunk``.
        time_ns: When it happened, in nanoseconds since the epoch.
        attributes: Its attributes.
    """

    name: str
    time_ns: int
    attributes: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SpanLink:
    """One span link: the span this one follows from, in this trace or another.

    Attributes:
        trace_id: Hex trace id of the linked span.
        span_id: Hex span id of the linked span.
        attributes: The link's attributes (``otelstream.link.reason``...).
    """

    trace_id: str
    span_id: str
    attributes: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SpanRecord:
    """One finished span.

    Attributes:
        trace_id: Hex trace id.
        span_id: Hex span id.
        parent_id: Hex id of the parent span, or ``None`` for a root.
        name: The span name.
        start_ns: Start, in nanoseconds since the epoch.
        end_ns: End, in nanoseconds since the epoch.
        attributes: The span's attributes (arrays as tuples).
        events: The span's events, in time order.
        error: Whether the span's status is ERROR.
        status_message: The status description, if any.
        links: The span's links (a resumed run's link to the run it resumes).
    """

    trace_id: str
    span_id: str
    parent_id: str | None
    name: str
    start_ns: int
    end_ns: int
    attributes: Mapping[str, Any] = field(default_factory=dict)
    events: tuple[SpanEvent, ...] = ()
    error: bool = False
    status_message: str = ""
    links: tuple[SpanLink, ...] = ()

    @property
    def duration_s(self) -> float:
        """Seconds from start to end."""
        return max(0, self.end_ns - self.start_ns) / 1e9


@dataclass(frozen=True)
class Trace:
    """The spans of one trace, in start order, with their tree.

    Attributes:
        trace_id: Hex trace id.
        spans: Every span, sorted by start time.
    """

    trace_id: str
    spans: tuple[SpanRecord, ...]

    @property
    def start_ns(self) -> int:
        """The earliest span start."""
        return min(span.start_ns for span in self.spans)

    @property
    def end_ns(self) -> int:
        """The latest span end."""
        return max(span.end_ns for span in self.spans)

    def roots(self) -> list[SpanRecord]:
        """Spans whose parent is not in this trace (a run's root, or orphans of a lost batch)."""
        ids = {span.span_id for span in self.spans}
        return [span for span in self.spans if span.parent_id not in ids]

    def children(self, span_id: str) -> list[SpanRecord]:
        """The direct children of a span, in start order."""
        return [span for span in self.spans if span.parent_id == span_id]


def group_traces(spans: Iterable[SpanRecord]) -> list[Trace]:
    """Group spans by trace id; traces in the order they started.

    Args:
        spans: Spans of any number of traces.

    Returns:
        One :class:`Trace` per trace id, each with its spans sorted by start time.
    """
    by_trace: dict[str, list[SpanRecord]] = {}
    for span in spans:
        by_trace.setdefault(span.trace_id, []).append(span)
    traces = [
        Trace(trace_id, tuple(sorted(items, key=lambda s: (s.start_ns, s.end_ns))))
        for trace_id, items in by_trace.items()
    ]
    return sorted(traces, key=lambda trace: trace.start_ns)


# --- from the SDK -------------------------------------------------------------------------


def from_readable(span: ReadableSpan) -> SpanRecord:
    """Convert a finished SDK span to a :class:`SpanRecord`.

    Args:
        span: A span the SDK ended (as a span processor's ``on_end`` receives it).

    Returns:
        The same facts in the CLI's model.
    """
    context = span.get_span_context()
    parent = span.parent
    return SpanRecord(
        trace_id=f"{context.trace_id:032x}" if context else "",
        span_id=f"{context.span_id:016x}" if context else "",
        parent_id=f"{parent.span_id:016x}" if parent is not None else None,
        name=span.name,
        start_ns=span.start_time or 0,
        end_ns=span.end_time or span.start_time or 0,
        attributes=dict(span.attributes or {}),
        events=tuple(
            SpanEvent(event.name, event.timestamp, dict(event.attributes or {}))
            for event in span.events
        ),
        error=span.status.status_code is StatusCode.ERROR,
        status_message=span.status.description or "",
        links=tuple(
            SpanLink(
                f"{link.context.trace_id:032x}",
                f"{link.context.span_id:016x}",
                dict(link.attributes or {}),
            )
            for link in span.links
        ),
    )


# --- from OTLP JSON -----------------------------------------------------------------------


def _any_value(value: Mapping[str, Any]) -> Any:
    """Decode an OTLP JSON ``AnyValue``: 64-bit integers arrive as strings, arrays as lists."""
    if "stringValue" in value:
        return value["stringValue"]
    if "intValue" in value:
        return int(value["intValue"])
    if "doubleValue" in value:
        return float(value["doubleValue"])
    if "boolValue" in value:
        return bool(value["boolValue"])
    if "arrayValue" in value:
        return tuple(_any_value(item) for item in value["arrayValue"].get("values", []))
    if "kvlistValue" in value:
        return _attributes(value["kvlistValue"].get("values", []))
    if "bytesValue" in value:
        return value["bytesValue"]
    return None


def _attributes(items: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    return {item["key"]: _any_value(item.get("value", {})) for item in items}


def _span_from_json(data: Mapping[str, Any]) -> SpanRecord:
    status = data.get("status", {})
    start = int(data["startTimeUnixNano"])
    return SpanRecord(
        trace_id=str(data["traceId"]),
        span_id=str(data["spanId"]),
        parent_id=str(data["parentSpanId"]) if data.get("parentSpanId") else None,
        name=str(data.get("name", "")),
        start_ns=start,
        end_ns=int(data.get("endTimeUnixNano", start)),
        attributes=_attributes(data.get("attributes", [])),
        events=tuple(
            sorted(
                (
                    SpanEvent(
                        str(event.get("name", "")),
                        int(event.get("timeUnixNano", start)),
                        _attributes(event.get("attributes", [])),
                    )
                    for event in data.get("events", [])
                ),
                key=lambda event: event.time_ns,
            )
        ),
        error=int(status.get("code", 0)) == _STATUS_ERROR,
        status_message=str(status.get("message", "")),
        links=tuple(
            SpanLink(
                str(link["traceId"]),
                str(link["spanId"]),
                _attributes(link.get("attributes", [])),
            )
            for link in data.get("links", [])
        ),
    )


def parse_line(line: str) -> list[SpanRecord]:
    """Parse one line of an OTLP JSON Lines trace file.

    Args:
        line: One ``TracesData`` JSON object.

    Returns:
        Its spans.

    Raises:
        ValueError: The line is not JSON, or not a ``TracesData`` object.
        KeyError: A span lacks a required field.
        TypeError: A field has the wrong shape.
    """
    data = json.loads(line)
    if not isinstance(data, dict) or "resourceSpans" not in data:
        msg = "not an OTLP TracesData object (no 'resourceSpans')"
        raise ValueError(msg)
    return [
        _span_from_json(span)
        for resource in data["resourceSpans"]
        for scope in resource.get("scopeSpans", [])
        for span in scope.get("spans", [])
    ]


def read_trace_file(path: Path) -> list[Trace]:
    """Read an OTLP JSON Lines trace file into traces.

    Args:
        path: The file ``otelstream.configure()`` wrote (or any OTLP JSON Lines trace file).

    Returns:
        Its traces, in the order they started.

    Raises:
        TraceFileError: The file cannot be read, a line is not OTLP ``TracesData`` JSON, or the
            file holds no span at all.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        msg = f"cannot read {path}: {reason}"
        raise TraceFileError(msg) from exc
    spans: list[SpanRecord] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            spans.extend(parse_line(line))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            msg = f"{path}:{number}: not an OTLP JSON trace line ({exc})"
            raise TraceFileError(msg) from exc
    if not spans:
        msg = f"{path}: no spans in this file (is it an OTLP JSON Lines trace file?)"
        raise TraceFileError(msg)
    return group_traces(spans)
