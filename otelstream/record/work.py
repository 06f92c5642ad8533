"""Work in flight in one traced run: the items a ``RunRecorder`` keeps while they run.

A task (node execution) or tool call ends when its callback says so (a stream-only feed may make
a task wait for the stream's end event too, see ``record/tasks.py``); a chat call belongs to the
thread running it. Also the
helpers that turn an ending into span attributes: errors, and stalls.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from langgraph.errors import GraphBubbleUp, GraphInterrupt
from opentelemetry.sdk.trace import SpanLimits
from opentelemetry.trace import Status, StatusCode

from otelstream import names
from otelstream.record.chunks import ChunkWindows
from otelstream.record.content import truncate

if TYPE_CHECKING:
    from uuid import UUID

    from opentelemetry.context import Context
    from opentelemetry.trace import Span
    from opentelemetry.util.types import AttributeValue

    class _Run(Protocol):
        first_content_ns: int | None


NS_SEP = "|"
"""LangGraph's separator between the segments of a checkpoint namespace."""

# Events a span keeps for things other than chunk windows or custom writes: an exception event,
# stall markers and an interrupt.
RESERVED_EVENTS = 8


_NOT_ERRORS = (GraphBubbleUp, asyncio.CancelledError, GeneratorExit, KeyboardInterrupt)


def is_failure(error: BaseException | None) -> bool:
    """Whether ``error`` marks the work as failed.

    LangGraph's control flow (``interrupt()``, ``Command(graph=PARENT)``) and cancellation (the
    consumer closed the stream or cancelled its task) end work without it having failed.
    """
    return error is not None and not isinstance(error, _NOT_ERRORS)


def is_interrupt(error: BaseException) -> bool:
    return isinstance(error, GraphInterrupt)


def event_limit() -> int:
    # The SDK reads OTEL_SPAN_EVENT_COUNT_LIMIT; a provider may set its own, which we cannot read
    # through the API, so the environment's (default 128) is the budget.
    limit = SpanLimits().max_events
    return 128 if limit is None else int(limit)


def stalled_attributes(attributes: dict[str, AttributeValue], onset_ns: int, end_ns: int) -> None:
    """Put a stalled item's attributes, for the span it ends with, into ``attributes``."""
    attributes[names.OTELSTREAM_STALLED] = True
    attributes[names.OTELSTREAM_STALL_DURATION] = max(end_ns - onset_ns, 0) / 1e9


def error_attributes(span: Span, error: BaseException) -> str:
    error_type = type(error).__qualname__
    span.set_status(Status(StatusCode.ERROR, truncate(str(error), 1024)))
    span.set_attribute(names.ERROR_TYPE, error_type)
    span.record_exception(error, escaped=True)
    return error_type


@dataclass(eq=False)
class Writes:
    """Custom writes attributed to one span: how many, and how many past its event budget."""

    custom_count: int = 0
    custom_dropped: int = 0


@dataclass(eq=False)
class Work:
    """A task or tool span whose end waits for both its callback and the stream's end event."""

    span: Span
    context: Context
    parent_key: str | None
    start_ns: int
    awaits_stream_end: bool
    end_ns: int | None = None
    error: BaseException | None = None
    seen_stream_end: bool = False
    ended: bool = False
    custom_count: int = 0
    custom_dropped: int = 0
    metric_attributes: dict[str, AttributeValue] = field(default_factory=dict)
    stall_onset_ns: int | None = None
    """When the work first crossed a stall threshold (of either reason)."""
    progress_ns: int | None = None
    """When the work last showed progress (``None``: not since it started)."""
    stall_reasons: tuple[str, ...] = ()
    """The stall reasons (``running``, ``idle``) already reported: each is reported once."""


@dataclass(eq=False)
class Task(Work):
    key: str = ""
    run_id: UUID | None = None
    """The callback run of the node's current attempt."""
    step: int | None = None
    attempts: int = 1
    idle_timeout_s: float | None = None
    """The node's ``TimeoutPolicy(idle_timeout=...)``, as LangGraph reported it for this attempt."""


@dataclass(eq=False)
class Tool(Work):
    task_key: str | None = None
    call_id: str = ""


class Chat(ChunkWindows):
    """One LLM call and the windows of its streamed chunks; only the thread or task running the
    call adds chunks to it."""

    __slots__ = (
        "attributes",
        "content_ns",
        "owner",
        "run",
        "span",
        "stall_onset_ns",
        "start_ns",
        "texts",
        "via_events",
        "watch",
    )

    def __init__(
        self,
        run: _Run,
        span: Span,
        start_ns: int,
        budget: int,
        capture: bool,
        owner: Work | None = None,
    ) -> None:
        super().__init__(budget)
        self.run = run
        self.span = span
        self.start_ns = start_ns
        self.owner = owner
        """The tool call or task that made the call: its chunks are that work's progress, read
        by the watchdog from ``last_ns`` (nothing is written per chunk for it)."""
        self.content_ns: int | None = None
        self.texts: list[str] | None = [] if capture else None
        self.attributes: dict[str, AttributeValue] = {}
        self.stall_onset_ns: int | None = None
        self.via_events = False
        """Whether the chunks come from ``on_stream_event`` (v3) rather than tokens."""
        self.watch = True
        """Whether a chunk still needs ``note``: content capture is on, or the call's first
        content or the run's first text is still to come."""

    def receive(self, token: Any, chunk: Any) -> None:
        """One streamed chunk, received now."""
        now = time.time_ns()
        self.add(now)
        if self.watch:
            self.note(token, chunk, now)

    def note(self, token: Any, chunk: Any, now: int) -> None:
        """What a chunk says beyond its time: first content, the run's first text, its text."""
        if self.content_ns is None and (token or has_tool_call(chunk)):
            self.content_ns = now
        # The run's TTFT is what the end user waits for: the first text, not a tool call.
        run = self.run
        if token and run.first_content_ns is None:
            run.first_content_ns = now
        if self.texts is not None:
            self.texts.append(token if isinstance(token, str) else str(token))
        else:
            self.watch = self.content_ns is None or run.first_content_ns is None


def has_tool_call(chunk: Any) -> bool:
    return bool(getattr(getattr(chunk, "message", None), "tool_call_chunks", None))
