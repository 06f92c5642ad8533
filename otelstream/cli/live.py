"""The live view: spans opening and closing as a tree, chunks, TTFT, custom writes and stalls.

It has two inputs, and touches nothing in otelstream's core:

- :class:`LiveSpanProcessor`, an SDK span processor added to the tracer provider next to the
  exporter's. Spans arrive as they start and end; a stall marker span (``stalled …``) starts and
  ends the moment the watchdog sees the stall, so the warning shows while the tool still hangs.
- :meth:`LiveView.on_stream`, fed with the ``(mode, chunk)`` pairs the CLI reads from the traced
  stream: ``messages`` chunks give the chunk count, the rate and the TTFT as they happen,
  ``custom`` chunks the custom writes.

On a terminal, ``rich.live.Live`` redraws the tree several times a second; elsewhere (pipes, CI)
every event is printed once as a plain line. Spans arrive on LangGraph's worker threads, so the
state is guarded by a lock; every callback and every redraw swallows its own errors, because a
broken display must never break the run it displays.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from opentelemetry.sdk.trace import SpanProcessor
from rich.live import Live
from rich.text import Text

from otelstream import names
from otelstream.cli.traces import from_readable
from otelstream.cli.waterfall import seconds, span_kind

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.sdk.trace import ReadableSpan, Span
    from rich.console import Console, ConsoleOptions, RenderResult

    from otelstream.cli.traces import SpanRecord

__all__ = ["LiveSpanProcessor", "LiveView"]

_logger = logging.getLogger(__name__)

_SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
_TAIL = 56
"""Characters of the streaming answer shown on the chat span's line."""
_RECENT_CUSTOM = 4
"""Custom writes kept on screen (the plain output prints every one)."""


@dataclass
class _Open:
    """What the view knows of one span."""

    span_id: int
    parent_id: int | None
    name: str
    kind: str
    depth: int
    start: float
    """Seconds since the view started."""
    end: float | None = None
    error: bool = False
    notes: str = ""
    stalled: bool = False


@dataclass
class _Stream:
    """The chunks of the chat call streaming now, as read from the ``messages`` mode."""

    chunks: int = 0
    first: float | None = None
    last: float | None = None
    text: str = ""

    def rate(self) -> float | None:
        if self.first is None or self.last is None or self.chunks < 2 or self.last <= self.first:
            return None
        return (self.chunks - 1) / (self.last - self.first)


@dataclass
class _State:
    spans: dict[int, _Open] = field(default_factory=dict)
    order: list[int] = field(default_factory=list)
    stream: _Stream = field(default_factory=_Stream)
    stream_span: int | None = None
    ttft: float | None = None
    customs: list[tuple[float, str]] = field(default_factory=list)
    stalls: list[str] = field(default_factory=list)
    answer: str = ""
    total_chunks: int = 0


class LiveView:
    """Shows a traced run as it happens, and keeps its finished spans for the waterfall.

    Args:
        console: Where to draw.
        interactive: Redraw a live tree (a terminal) or print plain lines (anything else).
        title: What is running, for the header.
    """

    def __init__(self, console: Console, *, interactive: bool, title: str) -> None:
        self._console = console
        self._interactive = interactive
        self._title = title
        self._lock = threading.RLock()
        self._state = _State()
        self._t0 = time.monotonic()
        self._wall0 = time.time_ns()
        self._live: Live | None = None
        self._finished: list[SpanRecord] = []
        self._done = False

    # --- lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        """Start the clock and, on a terminal, the live display."""
        self._t0 = time.monotonic()
        self._wall0 = time.time_ns()
        if not self._interactive:
            self._print(f"{self._title}: started")
            return
        try:
            # transient: the live tree makes way for the waterfall, which shows it all again.
            self._live = Live(self, console=self._console, refresh_per_second=10, transient=True)
            self._live.start()
        except Exception:
            _logger.debug("otelstream: live view failed to start", exc_info=True)
            self._live = None

    def stop(self) -> None:
        """Stop the live display (idempotent)."""
        with self._lock:
            self._done = True
        live, self._live = self._live, None
        if live is not None:
            try:
                live.stop()
            except Exception:
                _logger.debug("otelstream: live view failed to stop", exc_info=True)

    @property
    def finished(self) -> list[SpanRecord]:
        """Every span that ended while the view was attached."""
        with self._lock:
            return list(self._finished)

    @property
    def answer(self) -> str:
        """The text streamed by the last chat call that streamed text."""
        with self._lock:
            return self._state.answer

    @property
    def stalls(self) -> list[str]:
        """The stall warnings shown so far, oldest first."""
        with self._lock:
            return list(self._state.stalls)

    @property
    def ttft(self) -> float | None:
        """Seconds from the start to the first chunk read from the ``messages`` stream."""
        with self._lock:
            return self._state.ttft

    # --- inputs -----------------------------------------------------------------------------

    def _now(self) -> float:
        return time.monotonic() - self._t0

    def _since_start(self, time_ns: int | None) -> float:
        return ((time_ns or self._wall0) - self._wall0) / 1e9

    def span_started(self, span: Span) -> None:
        """Record a span that just started (called by :class:`LiveSpanProcessor`)."""
        try:
            self._span_started(span)
        except Exception:
            _logger.debug("otelstream: live view could not show a span start", exc_info=True)

    def _span_started(self, span: Span) -> None:
        context = span.get_span_context()
        if context is None:
            return
        attributes: dict[str, Any] = dict(span.attributes or {})
        kind = span_kind(span.name, attributes)
        parent_id = span.parent.span_id if span.parent is not None else None
        with self._lock:
            parent = self._state.spans.get(parent_id) if parent_id is not None else None
            depth = parent.depth + 1 if parent is not None else 0
            item = _Open(
                context.span_id,
                parent_id,
                span.name,
                kind,
                depth,
                self._since_start(span.start_time),
            )
            self._state.spans[item.span_id] = item
            self._state.order.append(item.span_id)
            if kind == "chat":
                # Chunks from the messages stream belong to the chat call that opened last;
                # parallel model calls would share one counter, which a live glance tolerates.
                self._state.stream = _Stream()
                self._state.stream_span = item.span_id
            if kind == "stall":
                item.end = item.start
                if parent is not None:
                    parent.stalled = True
                age = attributes.get(names.OTELSTREAM_STALL_AGE)
                threshold = attributes.get(names.OTELSTREAM_STALL_THRESHOLD)
                target = parent.name if parent is not None else span.name
                message = f"STALLED {target}"
                if age is not None and threshold is not None:
                    message += (
                        f": running {seconds(float(age))}, past its"
                        f" {seconds(float(threshold))} threshold, still waiting"
                    )
                self._state.stalls.append(message)
                self._print(f"{'  ' * depth}! {message}", at=item.start, tag="stall")
                return
        self._print(f"{'  ' * depth}{span.name}", at=item.start, tag="start")

    def span_ended(self, span: ReadableSpan) -> None:
        """Record a span that just ended (called by :class:`LiveSpanProcessor`)."""
        try:
            self._span_ended(span)
        except Exception:
            _logger.debug("otelstream: live view could not show a span end", exc_info=True)

    def _span_ended(self, span: ReadableSpan) -> None:
        record = from_readable(span)
        context = span.get_span_context()
        with self._lock:
            self._finished.append(record)
            item = self._state.spans.get(context.span_id) if context is not None else None
            if item is None or item.kind == "stall":
                return
            item.end = self._since_start(span.end_time)
            item.error = record.error
            item.notes = _end_notes(record, item.kind)
            line = f"{'  ' * item.depth}{span.name}  {seconds(record.duration_s)}"
        self._print(
            f"{line}  {item.notes}".rstrip(), at=item.end, tag="error" if item.error else "end"
        )

    def on_stream(self, mode: str, chunk: Any) -> None:
        """Read one ``(mode, chunk)`` pair of the traced stream.

        Args:
            mode: The stream mode (``messages`` and ``custom`` are shown; others ignored).
            chunk: What LangGraph yielded for that mode.
        """
        try:
            if mode == "messages":
                self._on_message(chunk)
            elif mode == "custom":
                self._on_custom(chunk)
        except Exception:
            _logger.debug("otelstream: live view could not show a stream chunk", exc_info=True)

    def _on_message(self, chunk: Any) -> None:
        message = chunk[0] if isinstance(chunk, tuple) else chunk
        # Only streamed model output counts; the messages mode also carries whole tool messages.
        if type(message).__name__ != "AIMessageChunk":
            return
        content = message.content
        text = content if isinstance(content, str) else ""
        if not text and not getattr(message, "tool_call_chunks", None):
            return
        now = self._now()
        first_token = False
        with self._lock:
            state = self._state
            stream = state.stream
            stream.chunks += 1
            state.total_chunks += 1
            stream.first = now if stream.first is None else stream.first
            stream.last = now
            if text:
                stream.text += text
                state.answer = stream.text
            # Like otelstream.time_to_first_token: the first text the end user sees.
            if state.ttft is None and text:
                state.ttft = now
                first_token = True
        if first_token:
            self._print(f"TTFT {seconds(now)}: first text of the run", at=now, tag="ttft")

    def _on_custom(self, chunk: Any) -> None:
        now = self._now()
        text = " ".join(str(chunk).split())
        with self._lock:
            self._state.customs.append((now, text))
        self._print(f"custom write {text}", at=now, tag="custom")

    # --- output -----------------------------------------------------------------------------

    def _print(self, text: str, *, at: float | None = None, tag: str = "") -> None:
        """One plain line (non-interactive only): ``[  1.23s] tag     text``."""
        if self._interactive:
            return
        try:
            stamp = f"[{at if at is not None else self._now():7.2f}s] " if tag else ""
            with self._lock:
                self._console.print(Text(f"{stamp}{tag:<7}{text}" if tag else text), soft_wrap=True)
        except Exception:
            _logger.debug("otelstream: live view could not print", exc_info=True)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        """Draw the live tree; a drawing error shows one line instead of breaking the run."""
        try:
            yield from self._render(options.max_height)
        except Exception as exc:
            yield Text(f"(live view unavailable: {type(exc).__name__})", style="dim")

    def _render(self, max_height: int) -> list[Text]:
        now = self._now()
        spin = _SPINNER[int(now * 10) % len(_SPINNER)]
        with self._lock:
            state = self._state
            header = Text.assemble(
                (f"{spin} " if not self._done else "  ", "bold cyan"),
                (self._title, "bold"),
                f"  {seconds(now)}",
            )
            if state.ttft is not None:
                header.append(f"  TTFT {seconds(state.ttft)}", style="bold yellow")
            header.append(f"  {state.total_chunks} chunks", style="magenta")
            tree = [self._span_line(state.spans[span_id], now, spin) for span_id in state.order]
            extra: list[Text] = [
                Text(f"⚠ {message}", style="bold yellow") for message in state.stalls[-3:]
            ]
            extra += [
                Text(f"• custom +{seconds(at)}  {text}", style="cyan")
                for at, text in state.customs[-_RECENT_CUSTOM:]
            ]
        room = max(3, max_height - len(extra) - 2)
        if len(tree) > room:
            # Keep the newest lines: open work is at the bottom of a run's tree.
            tree = [
                Text(f"  … {len(tree) - room + 1} earlier spans", style="dim"),
                *tree[-room + 1 :],
            ]
        lines = [header, *tree, *extra]
        for line in lines:
            line.no_wrap = True
            line.overflow = "ellipsis"
        return lines

    def _span_line(self, item: _Open, now: float, spin: str) -> Text:
        indent = "  " * item.depth
        if item.kind == "stall":
            return Text(f"{indent}◆ {item.name}", style="bold yellow")
        if item.end is None:
            line = Text(f"{indent}{spin} ", style="cyan")
            line.append(item.name, style="bold")
            line.append(f"  {seconds(max(0.0, now - item.start))}", style="dim")
            if item.stalled:
                line.append("  ⚠ STALLED", style="bold yellow")
            if item.span_id == self._state.stream_span and self._state.stream.chunks:
                stream = self._state.stream
                rate = stream.rate()
                line.append(f"  {stream.chunks} chunks", style="magenta")
                if rate is not None:
                    line.append(f" · {rate:.0f} chunks/s", style="magenta")
                tail = " ".join(stream.text.split())[-_TAIL:]
                if tail:
                    line.append(f"  “{tail}”", style="dim")
            return line
        mark, style = ("✗", "bold red") if item.error else ("✓", "green")
        line = Text(f"{indent}{mark} ", style=style)
        line.append(item.name)
        line.append(f"  {seconds(max(0.0, item.end - item.start))}", style="dim")
        if item.notes:
            line.append(f"  {item.notes}", style="red" if item.error else "yellow")
        return line


def _end_notes(record: SpanRecord, kind: str) -> str:
    """A few words about a span that ended: TTFT and chunks, stalls, errors."""
    attributes = record.attributes
    notes: list[str] = []
    if kind in {"chat", "run"}:
        key = (
            names.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK
            if kind == "chat"
            else names.OTELSTREAM_TIME_TO_FIRST_TOKEN
        )
        if key in attributes:
            notes.append(f"TTFT {seconds(float(attributes[key]))}")
    if names.OTELSTREAM_CHUNK_COUNT_TOTAL in attributes:
        notes.append(f"{attributes[names.OTELSTREAM_CHUNK_COUNT_TOTAL]} chunks")
    if names.OTELSTREAM_CUSTOM_COUNT in attributes:
        notes.append(f"{attributes[names.OTELSTREAM_CUSTOM_COUNT]} custom writes")
    if attributes.get(names.OTELSTREAM_STALLED):
        notes.append("stalled")
    if names.OTELSTREAM_OUTCOME in attributes:
        notes.append(str(attributes[names.OTELSTREAM_OUTCOME]))
    for link in record.links:
        reason = link.attributes.get(names.OTELSTREAM_LINK_REASON)
        notes.append(f"↩ {str(reason).replace('_', ' ')} of trace {link.trace_id}")
    if record.error:
        error_type = attributes.get(names.ERROR_TYPE, "error")
        notes.append(
            f"{error_type}: {record.status_message}" if record.status_message else str(error_type)
        )
    return ", ".join(notes)


class LiveSpanProcessor(SpanProcessor):
    """Hands every span start and end to a :class:`LiveView`; never raises into the SDK.

    Args:
        view: The view to feed.
    """

    def __init__(self, view: LiveView) -> None:
        self._view = view

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        """Show the span as open."""
        self._view.span_started(span)

    def on_end(self, span: ReadableSpan) -> None:
        """Show the span as closed and keep it for the waterfall."""
        self._view.span_ended(span)

    def shutdown(self) -> None:
        """Nothing to release."""

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Nothing is buffered."""
        return True
