"""Turning app values into bounded strings, only ever when content capture is on."""

from __future__ import annotations

import json
from typing import Any

_ELLIPSIS = "…"


def truncate(text: str, limit: int) -> str:
    """Cut ``text`` to ``limit`` characters, marking the cut."""
    if len(text) <= limit:
        return text
    return text[: max(limit - 1, 0)] + _ELLIPSIS


def bounded_json(value: Any, limit: int) -> str:
    """``value`` as JSON of at most ``limit`` characters; never raises.

    Values JSON cannot encode fall back to ``repr``; a value whose ``repr`` raises, or a cyclic
    one, becomes a placeholder naming its type.
    """
    try:
        text = json.dumps(value, default=_fallback, ensure_ascii=False)
    except (ValueError, TypeError, RecursionError):
        text = f"<unserializable {type(value).__qualname__}>"
    except Exception:  # a hostile __repr__ or __str__ may raise anything
        text = f"<unserializable {type(value).__qualname__}>"
    return truncate(text, limit)


def _fallback(value: Any) -> Any:
    content = getattr(value, "content", None)
    if content is not None and hasattr(value, "type"):  # a LangChain message
        return {"role": value.type, "content": content}
    if isinstance(value, (bytes, bytearray)):
        return f"<{len(value)} bytes>"
    return repr(value)


def payload_size(value: Any) -> int | None:
    """``len(value)`` where it has one; ``None`` otherwise or when ``len`` raises."""
    try:
        return len(value)
    except Exception:
        return None
