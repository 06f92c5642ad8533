"""User-facing options, read once when a graph is instrumented."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from otelstream._log import logger as _log

if TYPE_CHECKING:
    from collections.abc import Callable

CAPTURE_CONTENT_ENV = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
_TRUE = {"true", "1", "yes", "on", "span_only", "span_and_event", "event_only"}
_FALSE = {"", "false", "0", "no", "off", "no_content"}


def capture_content_from_env() -> bool:
    """Content capture as ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`` says; off if unset.

    An unknown value is reported once and treated as off: the safe default for content.
    """
    raw = os.environ.get(CAPTURE_CONTENT_ENV, "")
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value not in _FALSE:
        _log.warning(
            "invalid_environment_value",
            variable=CAPTURE_CONTENT_ENV,
            value=raw,
            using="false",
            hint="use true or false",
        )
    return False


TOOL_STALL_ENV = "OTELSTREAM_TOOL_STALL_THRESHOLD"
LLM_STALL_ENV = "OTELSTREAM_LLM_STALL_THRESHOLD"
TASK_STALL_ENV = "OTELSTREAM_TASK_STALL_THRESHOLD"
TOOL_IDLE_ENV = "OTELSTREAM_TOOL_IDLE_THRESHOLD"
TASK_IDLE_ENV = "OTELSTREAM_TASK_IDLE_THRESHOLD"
_OFF = {"off", "none", "inf", "infinity", "never"}


def _seconds_from_env(variable: str, default: float | None) -> float | None:
    """A threshold in seconds from ``variable``; ``off`` turns it off, a bad value warns once."""
    raw = os.environ.get(variable)
    if raw is None or not raw.strip():
        return default
    value = raw.strip().lower()
    if value in _OFF:
        return None
    try:
        seconds = float(value)
    except ValueError:
        seconds = math.nan
    if math.isnan(seconds) or seconds < 0:
        _log.warning(
            "invalid_environment_value",
            variable=variable,
            value=raw,
            using=default,
            hint="use a number of seconds, or off",
        )
        return default
    return seconds


def _tool_threshold_default() -> float:
    seconds = _seconds_from_env(TOOL_STALL_ENV, 30.0)
    return math.inf if seconds is None else seconds


def _check_threshold(name: str, value: object, *, optional: bool) -> None:
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        off = " or None to turn it off" if optional else ""
        msg = f"{name} must be a number of seconds{off}, not {value!r}"
        raise TypeError(msg)
    if value < 0 or math.isnan(value):
        off = "None" if optional else "math.inf"
        msg = f"{name} must be zero or more seconds, not {value!r}; use {off} to turn it off"
        raise ValueError(msg)


@dataclass(frozen=True)
class Options:
    """What otelstream records.

    Attributes:
        capture_content: Record prompts, chunk text, tool arguments and results, custom payloads
            and interrupt values. Off unless ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT``
            is true.
        tool_stall_threshold: Seconds after which a running tool call counts as stalled
            (``OTELSTREAM_TOOL_STALL_THRESHOLD``, default 30).
        llm_stall_threshold: Seconds without a chunk, before the first or between two, after
            which a streaming LLM call counts as stalled (``OTELSTREAM_LLM_STALL_THRESHOLD``,
            default 60; ``None`` turns it off).
        task_stall_threshold: Seconds after which a running task counts as stalled
            (``OTELSTREAM_TASK_STALL_THRESHOLD``; off by default).
        tool_idle_threshold: Seconds without progress after which a running tool call counts
            as stalled, reason ``idle`` (``OTELSTREAM_TOOL_IDLE_THRESHOLD``; off by default).
            Progress is a custom write, a chunk of a model the tool calls, a nested model,
            tool or node starting or ending, or ``runtime.heartbeat()``.
        task_idle_threshold: The same for a running task, whose tool calls' progress is its
            own too (``OTELSTREAM_TASK_IDLE_THRESHOLD``; off by default). A node with
            ``TimeoutPolicy(idle_timeout=...)`` uses its idle timeout instead.
        trace_chunks: Record each LLM call's streamed chunks as timed events and its
            time-to-first-token. This makes chat models stream instead of generate, as LangGraph's
            ``messages`` mode does; set ``False`` to leave the model's behaviour untouched (chat
            spans then have no chunk events and no TTFT unless the app streams anyway).
        chunk_events: Most ``otelstream.chunk`` events per chat span (the first chunk alone,
            then windows whose width doubles as the answer grows); never more than the SDK's
            event limit allows. More events give a finer timeline and cost more per call.
        max_content_length: Longest captured value, in characters; longer values are cut and
            end with ``…``.
        redact: Called as ``redact(key, text)`` on every captured value (already JSON, secret-
            looking keys already masked) before it is recorded under attribute ``key``; returns
            the text to record, or ``None`` to record nothing. A hook that raises records
            nothing.
    """

    capture_content: bool = field(default_factory=capture_content_from_env)
    tool_stall_threshold: float = field(default_factory=_tool_threshold_default)
    llm_stall_threshold: float | None = field(
        default_factory=lambda: _seconds_from_env(LLM_STALL_ENV, 60.0)
    )
    task_stall_threshold: float | None = field(
        default_factory=lambda: _seconds_from_env(TASK_STALL_ENV, None)
    )
    tool_idle_threshold: float | None = field(
        default_factory=lambda: _seconds_from_env(TOOL_IDLE_ENV, None)
    )
    task_idle_threshold: float | None = field(
        default_factory=lambda: _seconds_from_env(TASK_IDLE_ENV, None)
    )
    trace_chunks: bool = True
    chunk_events: int = 32
    max_content_length: int = 4096
    redact: Callable[[str, str], str | None] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.capture_content, bool):
            msg = f"capture_content must be True or False, not {self.capture_content!r}"
            raise TypeError(msg)
        if not isinstance(self.trace_chunks, bool):
            msg = f"trace_chunks must be True or False, not {self.trace_chunks!r}"
            raise TypeError(msg)
        _check_threshold("tool_stall_threshold", self.tool_stall_threshold, optional=False)
        _check_threshold("llm_stall_threshold", self.llm_stall_threshold, optional=True)
        _check_threshold("task_stall_threshold", self.task_stall_threshold, optional=True)
        _check_threshold("tool_idle_threshold", self.tool_idle_threshold, optional=True)
        _check_threshold("task_idle_threshold", self.task_idle_threshold, optional=True)
        if self.redact is not None and not callable(self.redact):
            msg = f"redact must be a function (key, text) -> text or None, not {self.redact!r}"
            raise TypeError(msg)
        events = self.chunk_events
        if isinstance(events, bool) or not isinstance(events, int):
            msg = f"chunk_events must be a whole number of events, not {events!r}"
            raise TypeError(msg)
        if events < 2:
            msg = f"chunk_events must be at least 2 (the first chunk and the rest), not {events!r}"
            raise ValueError(msg)
        length = self.max_content_length
        if isinstance(length, bool) or not isinstance(length, int):
            msg = f"max_content_length must be a whole number of characters, not {length!r}"
            raise TypeError(msg)
        if length < 1:
            msg = f"max_content_length must be at least 1, not {length!r}"
            raise ValueError(msg)
