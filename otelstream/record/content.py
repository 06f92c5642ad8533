"""Turning app values into bounded strings, only ever when content capture is on.

Every captured value passes through ``Capture.text``: values under keys that look secret are
masked, the value is encoded as JSON (never raising, whatever the object), the user's redaction
hook runs on the result, and only then is it cut to the configured length.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from otelstream._log import logger as _log

if TYPE_CHECKING:
    from collections.abc import Callable

_ELLIPSIS = "…"
MASK = "***"
_SECRET_KEY = re.compile(
    r"(api_?key|apikey|authorization|auth|password|passwd|passphrase|secret|client_?secret|"
    r"private_?key|token|access_?token|refresh_?token|id_?token|session_?token|cookie|"
    r"set_?cookie|x_?api_?key)",
)
_MAX_DEPTH = 32


def truncate(text: str, limit: int) -> str:
    """Cut ``text`` to ``limit`` characters, marking the cut."""
    if len(text) <= limit:
        return text
    return text[: max(limit - 1, 0)] + _ELLIPSIS


def is_secret_key(key: object) -> bool:
    """Whether a mapping key names a secret (``api_key``, ``Authorization``, ``password``…)."""
    if not isinstance(key, str):
        return False
    normal = re.sub(r"[^a-z0-9]+", "_", key.lower()).strip("_")
    return _SECRET_KEY.fullmatch(normal) is not None or normal.endswith(
        ("_api_key", "_apikey", "_password", "_secret", "_token")
    )


def _plain(value: Any, depth: int, seen: set[int]) -> Any:
    """A JSON-ready copy of ``value`` with secret-looking keys masked; cycles and depth cut."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if depth > _MAX_DEPTH:
        return "<too deep>"
    if id(value) in seen:
        return "<cycle>"
    if isinstance(value, dict):
        seen.add(id(value))
        try:
            return {
                str(k): MASK if is_secret_key(k) else _plain(v, depth + 1, seen)
                for k, v in list(value.items())
            }
        finally:
            seen.discard(id(value))
    if isinstance(value, (list, tuple, set, frozenset)):
        seen.add(id(value))
        try:
            return [_plain(v, depth + 1, seen) for v in list(value)]
        finally:
            seen.discard(id(value))
    if isinstance(value, (bytes, bytearray, memoryview)):
        return f"<{len(value)} bytes>"
    content = getattr(value, "content", None)
    if content is not None and hasattr(value, "type"):  # a LangChain message
        message: dict[str, Any] = {"role": value.type, "content": _plain(content, depth + 1, seen)}
        calls = getattr(value, "tool_calls", None)
        if calls:
            message["tool_calls"] = _plain(calls, depth + 1, seen)
        return message
    return repr(value)


def to_json(value: Any) -> str:
    """``value`` as JSON with secret-looking keys masked; never raises."""
    try:
        return json.dumps(_plain(value, 0, set()), ensure_ascii=False)
    except Exception:  # a hostile __repr__, __len__ or __iter__ may raise anything
        return f"<unserializable {type(value).__qualname__}>"


def bounded_json(value: Any, limit: int) -> str:
    """``value`` as JSON of at most ``limit`` characters, secrets masked; never raises."""
    return truncate(to_json(value), limit)


def payload_size(value: Any) -> int | None:
    """``len(value)`` where it has one; ``None`` otherwise or when ``len`` raises."""
    try:
        return len(value)
    except Exception:
        return None


class Capture:
    """Content capture for one run: masking, the user's redaction hook, the length limit."""

    __slots__ = ("_limit", "_redact")

    def __init__(self, limit: int, redact: Callable[[str, str], str | None] | None) -> None:
        self._limit = limit
        self._redact = redact

    def text(self, key: str, value: Any, *, raw: bool = False) -> str | None:
        """What to record under ``key`` for ``value``, or ``None`` to record nothing.

        ``raw`` values are already text (streamed chunk text) and are not JSON-encoded.
        """
        text = value if raw and isinstance(value, str) else to_json(value)
        if self._redact is not None:
            try:
                redacted = self._redact(key, text)
            except Exception:
                # Never record what the hook failed to clean.
                _log.warning("redaction_hook_failed", key=key, exc_info=True)
                return None
            if redacted is None:
                return None
            if not isinstance(redacted, str):
                _log.warning(
                    "redaction_hook_returned_no_text",
                    key=key,
                    returned=type(redacted).__qualname__,
                    hint="return a str, or None to record nothing",
                )
                return None
            text = redacted
        return truncate(text, self._limit)
