"""LangGraph's timed-attempt observer: what a node under a ``TimeoutPolicy`` says of its attempts.

For a node with a ``TimeoutPolicy``, LangGraph calls the observer it finds under
``configurable["__pregel_timed_attempt_observer"]`` at each attempt's start (with the policy's
limits), on its progress (rate-limited to about four events per idle window), and at its finish
(with the error that ended it: a ``NodeTimeoutError`` when a limit cut it off). The LangGraph
server installs one of its own; otelstream chains to it, so the server sees every event it saw
before.

A ``NodeTimeoutError`` is raised outside the node's runnable, after LangGraph cancelled it: the
node's callbacks see only a ``CancelledError``, later. The observer's finish event is the one
place that says, at the moment of the cut, that a limit fired; the exception itself (its
``kind``) is the one being handled when LangGraph reports the finish.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from langgraph.errors import NodeTimeoutError

from otelstream import _internal

if TYPE_CHECKING:
    from collections.abc import Callable

    from otelstream.record.run import RunRecorder

_OBSERVER_KEY = "__pregel_timed_attempt_observer"
"""``langgraph._internal._constants.CONFIG_KEY_TIMED_ATTEMPT_OBSERVER``."""


class AttemptObserver:
    """Reports LangGraph's timed-attempt events to a run's recorder, then to the observer it
    replaced (if any)."""

    __slots__ = ("inner", "recorder")

    def __init__(self, recorder: RunRecorder, inner: Callable[[Any], None] | None) -> None:
        self.recorder = recorder
        self.inner = inner

    def __call__(self, event: Any) -> None:
        try:
            self._record(event)
        except Exception:
            _internal.internal_error("timed attempt")
        if self.inner is not None:
            self.inner(event)

    def _record(self, event: Any) -> None:
        context = event.context
        key = context.checkpoint_ns
        if not key:
            return
        kind = event.event
        if kind == "progress":
            self.recorder.attempt_progress(key)
        elif kind == "start":
            self.recorder.attempt_started(key, context.idle_timeout_secs)
        elif kind == "finish" and event.status == "error":
            error = sys.exc_info()[1]
            if isinstance(error, NodeTimeoutError):
                self.recorder.attempt_timed_out(key, error)


def observe_attempts(configurable: dict[str, Any], recorder: RunRecorder) -> None:
    """Put an ``AttemptObserver`` for ``recorder`` in a traced call's ``configurable`` (chained to
    any observer already there)."""
    inner = configurable.get(_OBSERVER_KEY)
    if isinstance(inner, AttemptObserver):  # a run nested in a traced run: LangGraph's own
        inner = inner.inner
    configurable[_OBSERVER_KEY] = AttemptObserver(recorder, inner if callable(inner) else None)
