"""The waterfall summary shared by ``demo``, ``run`` and ``view``.

Each span is one row: its place in the tree, its start and duration, a bar on a time axis common
to the whole trace, and notes (TTFT, chunks, tokens, stalls, errors). Under a chat span, the
chunk rate is drawn on the same axis from its ``otelstream.chunk`` events; under a span with
custom writes, a dot marks each write. A line of totals closes the trace.

Everything is a ``rich`` renderable; on a console that is not a terminal rich drops the styles,
so the same code prints plain text to pipes and CI logs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from rich.console import Group
from rich.text import Text

from otelstream import names

if TYPE_CHECKING:
    from pathlib import Path

    from otelstream.cli.traces import SpanRecord, Trace

__all__ = ["STALLED_PREFIX", "TraceTotals", "render_trace", "render_traces", "span_kind", "totals"]

STALLED_PREFIX = names.SPAN_STALLED.split("{", 1)[0]
"""Start of every stall marker span's name (``stalled ``)."""

NAME_WIDTH = 40
"""Columns of the span-tree column."""
_TIME_WIDTH = 17
_MIN_BAR = 20
_MAX_BAR = 72
_SPARKS = " ▁▂▃▄▅▆▇█"
_MIN_CHUNKS_FOR_RATE = 5
"""A chat span with fewer chunks (a tool call streamed in two) gets no rate row: nothing to see."""

_STYLES = {
    "run": "bold blue",
    "task": "cyan",
    "chat": "magenta",
    "tool": "green",
    "stall": "bold yellow",
    "other": "white",
}


def span_kind(span_name: str, attributes: Any) -> str:
    """Classify a span for display: ``run``, ``task``, ``chat``, ``tool``, ``stall`` or ``other``.

    Args:
        span_name: The span's name.
        attributes: The span's attributes (any mapping).

    Returns:
        The kind, which picks the bar style and the notes.
    """
    if span_name.startswith(STALLED_PREFIX) and names.OTELSTREAM_STALL_THRESHOLD in attributes:
        return "stall"
    operation = attributes.get(names.GEN_AI_OPERATION_NAME)
    if operation in (names.OP_INVOKE_AGENT, names.OP_INVOKE_WORKFLOW):
        return "run"
    if operation == names.OP_CHAT:
        return "chat"
    if operation == names.OP_EXECUTE_TOOL:
        return "tool"
    if names.LANGGRAPH_NODE in attributes:
        return "task"
    return "other"


def seconds(value: float) -> str:
    """Format seconds for a human: ``850ms`` under a second, ``2.41s`` above."""
    if value < 1:
        return f"{value * 1000:.0f}ms"
    return f"{value:.2f}s"


def plural(count: int, noun: str) -> str:
    """``1 stall``, ``2 stalls``."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


@dataclass(frozen=True)
class TraceTotals:
    """What the totals line says about one trace.

    Attributes:
        duration: Seconds from the first span's start to the last span's end.
        ttft: The run's time to first token, when recorded.
        outcome: The run's outcome, when recorded.
        llm_calls: Chat spans.
        chunks: Chunks streamed over all chat spans.
        input_tokens: Input tokens over all chat spans.
        output_tokens: Output tokens over all chat spans.
        tool_calls: Tool spans.
        errors: Spans with status ERROR.
        stalls: Stall marker spans.
        custom_writes: Custom writes recorded (events, plus dropped ones).
    """

    duration: float
    ttft: float | None
    outcome: str | None
    llm_calls: int
    chunks: int
    input_tokens: int
    output_tokens: int
    tool_calls: int
    errors: int
    stalls: int
    custom_writes: int


def totals(trace: Trace) -> TraceTotals:
    """Add up one trace.

    Args:
        trace: The trace.

    Returns:
        Its totals.
    """
    kinds = [(span, span_kind(span.name, span.attributes)) for span in trace.spans]
    runs = [span for span, kind in kinds if kind == "run"]
    run = runs[0] if runs else None
    chats = [span for span, kind in kinds if kind == "chat"]

    def total(spans: list[SpanRecord], key: str) -> int:
        return sum(int(span.attributes.get(key, 0) or 0) for span in spans)

    custom = sum(
        sum(1 for event in span.events if event.name == names.EVENT_CUSTOM)
        + int(span.attributes.get(names.OTELSTREAM_CUSTOM_DROPPED, 0) or 0)
        for span in trace.spans
    )
    ttft = run.attributes.get(names.OTELSTREAM_TIME_TO_FIRST_TOKEN) if run else None
    outcome = run.attributes.get(names.OTELSTREAM_OUTCOME) if run else None
    return TraceTotals(
        duration=(trace.end_ns - trace.start_ns) / 1e9,
        ttft=float(ttft) if ttft is not None else None,
        outcome=str(outcome) if outcome is not None else None,
        llm_calls=len(chats),
        chunks=total(chats, names.OTELSTREAM_CHUNK_COUNT_TOTAL),
        input_tokens=total(chats, names.GEN_AI_USAGE_INPUT_TOKENS),
        output_tokens=total(chats, names.GEN_AI_USAGE_OUTPUT_TOKENS),
        tool_calls=sum(1 for _, kind in kinds if kind == "tool"),
        errors=sum(1 for span in trace.spans if span.error),
        stalls=sum(1 for _, kind in kinds if kind == "stall"),
        custom_writes=custom,
    )


_OUTCOME_STYLES = {
    names.OUTCOME_COMPLETED: "green",
    names.OUTCOME_ERROR: "red",
    names.OUTCOME_TIMEOUT: "red",
}


def _totals_text(trace: Trace) -> Text:
    t = totals(trace)
    text = Text()
    text.append("Totals: ", style="bold")
    parts: list[tuple[str, str]] = [(f"{seconds(t.duration)} total", "")]
    if t.outcome:
        parts.append((t.outcome, _OUTCOME_STYLES.get(t.outcome, "yellow")))
    if t.ttft is not None:
        parts.append((f"TTFT {seconds(t.ttft)}", "bold yellow"))
    parts.append((f"{plural(t.llm_calls, 'LLM call')}, {plural(t.chunks, 'chunk')}", ""))
    if t.input_tokens or t.output_tokens:
        parts.append((f"tokens {t.input_tokens} in / {t.output_tokens} out", ""))
    parts.append((plural(t.tool_calls, "tool call"), ""))
    parts.append((plural(t.errors, "error"), "red" if t.errors else ""))
    parts.append((plural(t.stalls, "stall"), "yellow" if t.stalls else ""))
    parts.append((plural(t.custom_writes, "custom write"), ""))
    for index, (part, style) in enumerate(parts):
        if index:
            text.append(" · ")
        text.append(part, style=style)
    return text


class _Axis:
    """Maps times onto the columns of the bar, common to every row of one trace."""

    def __init__(self, start_ns: int, end_ns: int, width: int) -> None:
        self.start_ns = start_ns
        self.span_ns = max(end_ns - start_ns, 1)
        self.width = width

    def column(self, time_ns: int) -> int:
        offset = (time_ns - self.start_ns) / self.span_ns * self.width
        return min(self.width - 1, max(0, math.floor(offset)))

    def columns(self, start_ns: int, end_ns: int) -> range:
        first = self.column(start_ns)
        last = max(
            first,
            min(
                self.width - 1, math.ceil((end_ns - self.start_ns) / self.span_ns * self.width) - 1
            ),
        )
        return range(first, last + 1)

    def seconds_per_column(self) -> float:
        return self.span_ns / 1e9 / self.width


def _bar(span: SpanRecord, kind: str, axis: _Axis) -> Text:
    cells = [" "] * axis.width
    style = "bold red" if span.error else _STYLES[kind]
    if kind == "stall":
        cells[axis.column(span.start_ns)] = "◆"
    else:
        for column in axis.columns(span.start_ns, span.end_ns):
            cells[column] = "█"
    text = Text("".join(cells), style=style)
    ttft_key = {
        "run": names.OTELSTREAM_TIME_TO_FIRST_TOKEN,
        "chat": names.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK,
    }.get(kind)
    ttft = span.attributes.get(ttft_key) if ttft_key else None
    if ttft is not None:
        column = axis.column(span.start_ns + int(float(ttft) * 1e9))
        text = text[:column] + Text("┃", style="bold yellow") + text[column + 1 :]
    return text


def _notes(span: SpanRecord, kind: str) -> Text:
    attributes = span.attributes
    notes = Text()

    def add(part: str, style: str = "") -> None:
        if notes:
            notes.append(", ")
        notes.append(part, style=style)

    if kind == "run":
        if names.OTELSTREAM_TIME_TO_FIRST_TOKEN in attributes:
            ttft = float(attributes[names.OTELSTREAM_TIME_TO_FIRST_TOKEN])
            add(f"TTFT {seconds(ttft)}", "bold yellow")
        if names.OTELSTREAM_OUTCOME in attributes:
            add(str(attributes[names.OTELSTREAM_OUTCOME]))
    if kind == "chat":
        if names.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK in attributes:
            ttft = float(attributes[names.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK])
            add(f"TTFT {seconds(ttft)}", "bold yellow")
        if names.OTELSTREAM_CHUNK_COUNT_TOTAL in attributes:
            add(f"{attributes[names.OTELSTREAM_CHUNK_COUNT_TOTAL]} chunks")
        if names.GEN_AI_USAGE_OUTPUT_TOKENS in attributes:
            add(plural(int(attributes[names.GEN_AI_USAGE_OUTPUT_TOKENS]), "token") + " out")
    if kind == "stall":
        age = attributes.get(names.OTELSTREAM_STALL_AGE)
        threshold = attributes.get(names.OTELSTREAM_STALL_THRESHOLD)
        text = "⚠ STALLED"
        if age is not None and threshold is not None:
            text += f" after {seconds(float(age))} (threshold {seconds(float(threshold))})"
        add(text, "bold yellow")
    attempts = attributes.get(names.LANGGRAPH_TASK_ATTEMPTS)
    if isinstance(attempts, int) and attempts > 1:
        failed = sorted(
            {
                str(event.attributes.get(names.ERROR_TYPE, "error"))
                for event in span.events
                if event.name == names.EVENT_RETRY
            }
        )
        add(f"↻ {attempts} attempts (retried after {', '.join(failed)})", "yellow")
    if names.LANGGRAPH_TIMEOUT_KIND in attributes:
        limit = attributes.get(names.LANGGRAPH_TIMEOUT_SECONDS)
        after = f" {seconds(float(limit))}" if limit is not None else ""
        add(f"⏱ {attributes[names.LANGGRAPH_TIMEOUT_KIND]} timeout{after}", "bold red")
    if attributes.get(names.OTELSTREAM_STALLED) and kind != "stall":
        duration = attributes.get(names.OTELSTREAM_STALL_DURATION)
        extra = f" for {seconds(float(duration))}" if duration is not None else ""
        add(f"⚠ stalled{extra}", "yellow")
    if span.error:
        error_type = attributes.get(names.ERROR_TYPE, "error")
        message = f": {span.status_message}" if span.status_message else ""
        add(f"✗ {error_type}{message}", "bold red")
    return notes


def _name_cell(span_name: str, depth: int, style: str = "") -> Text:
    indent = "  " * depth
    room = NAME_WIDTH - len(indent) - 1
    label = span_name if len(span_name) <= room else span_name[: room - 1] + "…"
    return Text(f"{indent}{label}".ljust(NAME_WIDTH), style=style)


def _rate_row(span: SpanRecord, depth: int, axis: _Axis) -> Text | None:
    """The chunk-rate histogram of a chat span, drawn on the common axis."""
    chunks = [event for event in span.events if event.name == names.EVENT_CHUNK]
    total = sum(int(event.attributes.get(names.OTELSTREAM_CHUNK_COUNT, 1)) for event in chunks)
    if total < _MIN_CHUNKS_FOR_RATE:
        return None
    columns = axis.columns(span.start_ns, span.end_ns)
    counts = dict.fromkeys(columns, 0.0)
    # Windows are coalesced (their width doubles), each stamped at its first chunk: spread each
    # window's chunks evenly until the next window starts, so the rate does not spike at stamps.
    for index, event in enumerate(chunks):
        count = float(event.attributes.get(names.OTELSTREAM_CHUNK_COUNT, 1))
        start = event.time_ns
        end = chunks[index + 1].time_ns if index + 1 < len(chunks) else span.end_ns
        if end <= start:
            counts[axis.column(start)] = counts.get(axis.column(start), 0.0) + count
            continue
        for column in axis.columns(start, end):
            cell_start = axis.start_ns + column * axis.span_ns / axis.width
            cell_end = cell_start + axis.span_ns / axis.width
            overlap = max(0.0, min(end, cell_end) - max(start, cell_start))
            counts[column] = counts.get(column, 0.0) + count * overlap / (end - start)
    per_column = axis.seconds_per_column()
    rates = {column: count / per_column for column, count in counts.items()}
    peak = max(rates.values(), default=0.0)
    cells = [" "] * axis.width
    for column, rate in rates.items():
        if rate > 0 and peak > 0:
            level = max(1, round(rate / peak * (len(_SPARKS) - 1)))
            cells[column] = _SPARKS[level]
    gap = span.attributes.get(names.OTELSTREAM_CHUNK_GAP_MEAN)
    mean = f", mean {1 / float(gap):.0f}/s" if gap else ""
    row = _name_cell("└ chunk rate", depth + 1, "dim")
    row.append(" " * _TIME_WIDTH)
    row.append("".join(cells), style="magenta")
    row.append(f"  peak {peak:.0f} chunks/s{mean}", style="dim")
    return row


def _custom_row(span: SpanRecord, depth: int, axis: _Axis) -> Text | None:
    """One dot on the axis per custom write of a span, with what is known of the payloads."""
    writes = [event for event in span.events if event.name == names.EVENT_CUSTOM]
    if not writes:
        return None
    cells = [" "] * axis.width
    for event in writes:
        cells[axis.column(event.time_ns)] = "•"
    payloads = [event.attributes.get(names.OTELSTREAM_CUSTOM_PAYLOAD) for event in writes]
    if all(payload is not None for payload in payloads):
        detail = " ".join(str(payload) for payload in payloads)
    else:
        kinds = sorted(
            {str(event.attributes.get(names.OTELSTREAM_CUSTOM_TYPE, "?")) for event in writes}
        )
        detail = f"payload type {', '.join(kinds)}"
    row = _name_cell(f"· {plural(len(writes), 'custom write')}", depth + 1, "dim")
    row.append(" " * _TIME_WIDTH)
    row.append("".join(cells), style="cyan")
    row.append(f"  {detail}", style="dim")
    return row


_LINK_VERBS = {
    names.LINK_REASON_RESUME: "resumes",
    names.LINK_REASON_TIME_TRAVEL: "time-travels from",
    names.LINK_REASON_CONTINUE: "continues",
}


def _durable_rows(span: SpanRecord, depth: int, trace_id: str) -> list[Text]:
    """Where a run paused, and one line per link: the run it resumes (or follows), in which
    trace, from which checkpoint. Full ids, to search a backend for them."""
    rows = []
    for event in span.events:
        if event.name == names.EVENT_PAUSED:
            row = _name_cell("⏸ paused", depth + 1, "bold yellow")
            checkpoint = event.attributes.get(names.LANGGRAPH_CHECKPOINT_ID)
            if checkpoint is not None:
                row.append(f"at checkpoint {checkpoint}", style="yellow")
            rows.append(row)
    for link in span.links:
        reason = link.attributes.get(names.OTELSTREAM_LINK_REASON)
        verb = _LINK_VERBS.get(str(reason), "links to")
        where = "this trace" if link.trace_id == trace_id else f"trace {link.trace_id}"
        row = _name_cell(f"↩ {verb}", depth + 1, "bold blue")
        row.append(f"{where} span {link.span_id}", style="blue")
        checkpoint = link.attributes.get(names.LANGGRAPH_CHECKPOINT_ID)
        if checkpoint is not None:
            row.append(f" · checkpoint {checkpoint}", style="dim")
        rows.append(row)
    return rows


def render_trace(trace: Trace, *, width: int) -> Group:
    """Render one trace as a waterfall with a totals line.

    Args:
        trace: The trace.
        width: Columns available; the time axis takes what the tree and notes leave.

    Returns:
        A renderable group of lines.
    """
    bar_width = max(_MIN_BAR, min(_MAX_BAR, width - NAME_WIDTH - _TIME_WIDTH - 46))
    axis = _Axis(trace.start_ns, trace.end_ns, bar_width)
    started = datetime.fromtimestamp(trace.start_ns / 1e9).astimezone()
    lines: list[Text] = [
        Text.assemble(
            ("Trace ", "bold"),
            (trace.trace_id, "bold"),
            f"  started {started:%Y-%m-%d %H:%M:%S}",
        )
    ]
    header = Text("span".ljust(NAME_WIDTH), style="dim")
    header.append("   start    took ", style="dim")
    end_label = seconds((trace.end_ns - trace.start_ns) / 1e9)
    header.append(("0s".ljust(bar_width - len(end_label)) + end_label)[:bar_width], style="dim")
    header.append("  ┃ first token  ◆ stall  • custom write", style="dim")
    lines.append(header)

    def visit(span: SpanRecord, depth: int) -> None:
        kind = span_kind(span.name, span.attributes)
        row = _name_cell(span.name, depth, "bold red" if span.error else "")
        start = (span.start_ns - trace.start_ns) / 1e9
        row.append(f"{'+' + seconds(start):>8}{seconds(span.duration_s):>8} ")
        row.append(_bar(span, kind, axis))
        notes = _notes(span, kind)
        if notes:
            row.append("  ")
            row.append(notes)
        lines.append(row)
        lines.extend(_durable_rows(span, depth, trace.trace_id))
        for extra in (
            _rate_row(span, depth, axis) if kind == "chat" else None,
            _custom_row(span, depth, axis),
        ):
            if extra is not None:
                lines.append(extra)
        for child in trace.children(span.span_id):
            visit(child, depth + 1)

    for root in trace.roots():
        visit(root, 0)
    lines.append(_totals_text(trace))
    for line in lines:
        line.no_wrap = True
        line.overflow = "ellipsis"
    return Group(*lines)


def render_traces(
    traces: list[Trace], *, width: int, trace_file: Path | None = None, title: str = "Waterfall"
) -> Group:
    """Render several traces, one waterfall each, and where the trace file is.

    Args:
        traces: The traces, in the order to show them.
        width: Columns available.
        trace_file: Where the traces were written, to say so at the end.
        title: The heading.

    Returns:
        A renderable group.
    """
    parts: list[Any] = [Text(f"── {title} ", style="bold").append("─" * 20, style="dim")]
    for index, trace in enumerate(traces):
        if index:
            parts.append(Text(""))
        parts.append(render_trace(trace, width=width))
    if trace_file is not None:
        parts.append(Text(""))
        parts.append(Text.assemble(("Trace file: ", "bold"), (str(trace_file), "underline")))
        parts.append(Text(f"Show it again with: otelstream view {trace_file}", style="dim"))
    return Group(*parts)
