"""User-facing options, read once when a graph is instrumented."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

import structlog

_log = structlog.get_logger("otelstream")

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


@dataclass(frozen=True)
class Options:
    """What otelstream records.

    Attributes:
        capture_content: Record prompts, chunk text, tool arguments and results, custom payloads
            and interrupt values. Off unless ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT``
            is true.
        tool_stall_threshold: Seconds after which a running tool call counts as stalled.
        trace_chunks: Record each LLM call's streamed chunks as timed events and its
            time-to-first-token. This makes chat models stream instead of generate, as LangGraph's
            ``messages`` mode does; set ``False`` to leave the model's behaviour untouched (chat
            spans then have no chunk events and no TTFT unless the app streams anyway).
        max_content_length: Longest captured value, in characters; longer values are cut and
            end with ``…``.
    """

    capture_content: bool = field(default_factory=capture_content_from_env)
    tool_stall_threshold: float = 30.0
    trace_chunks: bool = True
    max_content_length: int = 4096

    def __post_init__(self) -> None:
        if not isinstance(self.capture_content, bool):
            msg = f"capture_content must be True or False, not {self.capture_content!r}"
            raise TypeError(msg)
        if not isinstance(self.trace_chunks, bool):
            msg = f"trace_chunks must be True or False, not {self.trace_chunks!r}"
            raise TypeError(msg)
        threshold = self.tool_stall_threshold
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)):
            msg = f"tool_stall_threshold must be a number of seconds, not {threshold!r}"
            raise TypeError(msg)
        if threshold < 0 or math.isnan(threshold):
            msg = (
                f"tool_stall_threshold must be zero or more seconds, not {threshold!r}; "
                "use math.inf to never report a tool call as stalled"
            )
            raise ValueError(msg)
        length = self.max_content_length
        if isinstance(length, bool) or not isinstance(length, int):
            msg = f"max_content_length must be a whole number of characters, not {length!r}"
            raise TypeError(msg)
        if length < 1:
            msg = f"max_content_length must be at least 1, not {length!r}"
            raise ValueError(msg)
