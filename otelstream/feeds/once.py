"""Never a run traced twice: a switch that makes otelstream's v3 transformer passive.

otelstream's proxy and instrumentor trace a v3 run through its inner ``stream`` call, so while
they build the run stream, a transformer registered on the graph must not record it as well.
"""

from __future__ import annotations

import contextlib
from contextvars import ContextVar
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator

_suppressed: ContextVar[bool] = ContextVar("otelstream_transformer_suppressed", default=False)


@contextlib.contextmanager
def suppress() -> Iterator[None]:
    """Make transformers created inside this block passive: the run is traced elsewhere.

    otelstream's proxy and instrumentor wrap the construction of the run stream in it, so a graph
    compiled with ``otelstream.transformer()`` is not traced twice: the ``stream_events(...,
    version="v3")`` call, or the ``await`` of ``astream_events(..., version="v3")`` (LangGraph
    builds the async run's mux, and so calls the factories, only when it is awaited).
    """
    token = _suppressed.set(True)
    try:
        yield
    finally:
        _suppressed.reset(token)


def suppressed() -> bool:
    """Whether transformers created now must stay passive."""
    return _suppressed.get()
