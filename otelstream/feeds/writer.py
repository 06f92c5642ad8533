"""The write tap: every ``get_stream_writer()`` write of a traced run reaches the recorder while
it is written, whatever the caller streams, without changing how LangGraph schedules the run.

How it works, and what of LangGraph it relies on (``tests/test_custom_writes.py`` fails loudly if
any of it changes):

1. ``get_stream_writer()``, a node's injected ``writer`` and a tool's ``ToolRuntime`` all read
   ``stream_writer`` from the ``Runtime`` stored under ``CONFIG_KEY_RUNTIME`` in the config
   (``langgraph/config.py``, ``pregel/_algo.py``).
2. ``Pregel.stream`` builds the run's runtime as ``parent.merge(own)``, where ``parent`` is the
   ``Runtime`` it finds under ``CONFIG_KEY_RUNTIME`` in the config it was given, taken as it is
   when it is a ``Runtime`` (``_coerce_parent_runtime``), and ``own`` carries the run's writer:
   LangGraph's queue writer when the caller streams ``custom``, else a local no-op.
3. Each task's runtime is ``run_runtime.override(execution_info=ExecutionInfo(checkpoint_ns=…,
   …))``, made with ``dataclasses.replace``, which keeps the runtime's class.

So otelstream puts a ``TapRuntime`` (a ``Runtime`` subclass) in the config of the traced call.
Its ``merge`` wraps the run's writer in a ``WriteTap`` and returns a ``TapRuntime`` again; its
``override`` binds a fresh tap to each task's checkpoint namespace as LangGraph prepares the
task. A graph the task runs inside itself (a subgraph, ``other_graph.invoke``) merges from the
task's runtime and is tapped the same way. The tap records the write on the recorder, then hands
it to the writer it wraps: the caller's ``custom`` stream gets exactly what it would have got.
LangGraph schedules nothing differently: no stream mode is added, so no step moves off the
caller's thread.

The runtime's ``heartbeat`` is tapped the same way (a ``HeartbeatTap`` per task): a heartbeat is
the task's progress for the stall watchdog (``record/stalls.py``), then reaches the heartbeat it
wraps. A ``TimeoutPolicy`` attempt overrides the heartbeat with its idle clock's ``touch``
(``pregel/_retry.py``, ``_TimedAttemptScope.wrap_config``): ``override`` wraps that one too.

The tap learns the callback run it is called from (a tool call, or the task's node) from the
callback manager in the writer's config (``get_config()["callbacks"].parent_run_id``). Where that
cannot be read (an async node on Python 3.10 that passes no config), the write still lands on its
task.
"""

from __future__ import annotations

import dataclasses
import threading
from typing import TYPE_CHECKING, Any

from langchain_core.callbacks import BaseCallbackManager
from langgraph.config import get_config
from langgraph.runtime import Runtime

from otelstream import _internal

if TYPE_CHECKING:
    from collections.abc import Callable
    from uuid import UUID

    from otelstream.record.run import RunRecorder

_RUNTIME_KEY = "__pregel_runtime"  # langgraph._internal._constants.CONFIG_KEY_RUNTIME
_FIELDS = tuple(f.name for f in dataclasses.fields(Runtime))

_inside = threading.local()
"""Set while a tap records, so that a tap wrapped around another tap records a write once."""


class WriteTap:
    """A stream writer that records each write on the run's recorder, then passes it on."""

    __slots__ = ("inner", "recorder", "task_key")

    def __init__(
        self, inner: Callable[[Any], None], recorder: RunRecorder, task_key: str | None
    ) -> None:
        self.inner = inner
        self.recorder = recorder
        self.task_key = task_key

    def __call__(self, chunk: Any) -> None:
        if getattr(_inside, "active", False):
            self.inner(chunk)
            return
        _inside.active = True
        try:
            self.recorder.custom_write(self.task_key, _callback_run(), chunk)
        except Exception:
            _internal.internal_error("custom_write")
        finally:
            _inside.active = False
        self.inner(chunk)


class HeartbeatTap:
    """A ``runtime.heartbeat`` that records progress of the calling task (or tool call) on the
    run's recorder, then calls the heartbeat it wraps (LangGraph's no-op, or the idle clock of a
    ``TimeoutPolicy`` attempt)."""

    __slots__ = ("inner", "recorder", "task_key")

    def __init__(
        self, inner: Callable[[], None], recorder: RunRecorder, task_key: str | None
    ) -> None:
        self.inner = inner
        self.recorder = recorder
        self.task_key = task_key

    def __call__(self) -> None:
        try:
            self.recorder.progress(self.task_key, _callback_run())
        except Exception:
            _internal.internal_error("heartbeat")
        self.inner()


def _callback_run() -> UUID | None:
    """The callback run a write is made from: the manager's parent run in the writer's config."""
    try:
        callbacks = get_config().get("callbacks")
    except RuntimeError:  # no config in this context (async on Python 3.10)
        return None
    if isinstance(callbacks, BaseCallbackManager):
        return callbacks.parent_run_id
    return None


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class TapRuntime(Runtime[Any]):  # type: ignore[misc]  # Runtime is frozen; mypy cannot see it
    """A ``Runtime`` whose stream writers are ``WriteTap``s, for the run and each of its tasks.

    The recorder rides on the runtime itself, not only on its writer: LangGraph may replace the
    writer with a wrapper of its own (a ``TimeoutPolicy`` attempt guards it), and a graph run
    inside such a task must still be tapped.
    """

    tap_recorder: Any = None

    def merge(self, other: Runtime[Any]) -> Runtime[Any]:
        merged = Runtime.merge(self, other)
        writer = merged.stream_writer
        info = self.execution_info
        key = info.checkpoint_ns if info else None
        if not isinstance(writer, WriteTap):
            writer = WriteTap(writer, self.tap_recorder, key)
        heartbeat = merged.heartbeat
        if not isinstance(heartbeat, HeartbeatTap):
            heartbeat = HeartbeatTap(heartbeat, self.tap_recorder, key)
        return _tap_runtime(merged, writer, heartbeat)

    def override(self, **overrides: Any) -> Runtime[Any]:
        info = overrides.get("execution_info")
        recorder = self.tap_recorder
        if info is not None:
            # LangGraph prepares a task: the task's writes and heartbeats are the task's.
            tap = self.stream_writer
            if "stream_writer" not in overrides:
                inner = tap.inner if isinstance(tap, WriteTap) else tap
                overrides["stream_writer"] = WriteTap(inner, recorder, info.checkpoint_ns)
            if "heartbeat" not in overrides:
                own = self.heartbeat
                inner_beat = own.inner if isinstance(own, HeartbeatTap) else own
                overrides["heartbeat"] = HeartbeatTap(inner_beat, recorder, info.checkpoint_ns)
        beat = overrides.get("heartbeat")
        if beat is not None and not isinstance(beat, HeartbeatTap):
            # A TimeoutPolicy attempt installs its idle clock's ``touch``: ours records the
            # progress, then touches it.
            info = info or self.execution_info
            key = info.checkpoint_ns if info else None
            overrides["heartbeat"] = HeartbeatTap(beat, recorder, key)
        return dataclasses.replace(self, **overrides)


def _tap_runtime(runtime: Runtime[Any], writer: WriteTap, heartbeat: HeartbeatTap) -> TapRuntime:
    values = {name: getattr(runtime, name) for name in _FIELDS}
    values["stream_writer"] = writer
    values["heartbeat"] = heartbeat
    return TapRuntime(**values, tap_recorder=writer.recorder)


def tap_writes(configurable: dict[str, Any], recorder: RunRecorder) -> None:
    """Put a ``TapRuntime`` for ``recorder`` in a traced call's ``configurable``, as the runtime
    the run inherits.

    A runtime already there (a server that seeds one, an outer graph) keeps its context, store
    and writer: the tap wraps its writer.
    """
    parent = configurable.get(_RUNTIME_KEY)
    if isinstance(parent, Runtime):
        base: Runtime[Any] = parent
    else:
        base = Runtime(context=getattr(parent, "context", None))
    configurable[_RUNTIME_KEY] = _tap_runtime(
        base,
        WriteTap(base.stream_writer, recorder, task_key=None),
        HeartbeatTap(base.heartbeat, recorder, task_key=None),
    )
