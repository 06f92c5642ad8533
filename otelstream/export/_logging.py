"""structlog wiring: log lines that carry the current span's ``trace_id`` and ``span_id``.

A log line with ids can be pasted into Jaeger or Tempo to open the trace it belongs to, and
Grafana's Loki/Tempo links work on the same two fields.
"""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING, Literal, TextIO

import structlog
from opentelemetry import trace

if TYPE_CHECKING:
    from structlog.typing import EventDict, Processor, WrappedLogger

__all__ = ["add_trace_context", "configure_logging"]


def add_trace_context(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
    """A structlog processor adding ``trace_id`` and ``span_id`` (hex) of the current span.

    Lines logged outside any recording span get neither key. Keys the caller set are kept.

    Args:
        logger: The wrapped logger (unused; structlog's processor signature).
        method_name: The log method's name (unused).
        event_dict: The event being logged.

    Returns:
        The same event dict.
    """
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        event_dict.setdefault("trace_id", trace.format_trace_id(context.trace_id))
        event_dict.setdefault("span_id", trace.format_span_id(context.span_id))
    return event_dict


def configure_logging(
    *,
    renderer: Literal["json", "console"] | None = None,
    level: int | str = logging.INFO,
    stream: TextIO | None = None,
) -> None:
    """Configure structlog so every line carries the current trace and span ids.

    This sets structlog's global configuration, so call it from the application, once, and
    not from a library. To keep your own structlog setup instead, add
    :func:`add_trace_context` to its processor chain.

    Args:
        renderer: ``"json"`` for one JSON object per line, ``"console"`` for humans. By
            default JSON unless ``stream`` is a terminal.
        level: The lowest level logged, as a ``logging`` number or name.
        stream: Where lines go (default: ``sys.stderr``).
    """
    out = stream if stream is not None else sys.stderr
    if renderer is None:
        renderer = "console" if out.isatty() else "json"
    if renderer not in ("json", "console"):
        msg = f'Invalid renderer: "{renderer}"; use "json" or "console"'
        raise ValueError(msg)
    numeric_level = logging.getLevelName(level.upper()) if isinstance(level, str) else level
    if not isinstance(numeric_level, int):
        msg = f'Invalid level: "{level}"; use a logging level name such as "INFO"'
        raise ValueError(msg)

    processors: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        add_trace_context,
        structlog.processors.StackInfoRenderer(),
    ]
    if renderer == "json":
        processors += [structlog.processors.format_exc_info, structlog.processors.JSONRenderer()]
    else:
        processors.append(structlog.dev.ConsoleRenderer(colors=out.isatty()))
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(numeric_level),
        logger_factory=structlog.PrintLoggerFactory(file=out),
        # Not cached: a later configure_logging() call (tests, notebooks) must take effect.
        cache_logger_on_first_use=False,
    )
