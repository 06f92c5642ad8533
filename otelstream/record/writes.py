"""Where a custom write is attributed: the one place that decides which span a
``get_stream_writer()`` write becomes a ``langgraph.custom`` event on.

Two feeds report writes, and they know different things:

* **At write time** (``custom_write``, in-process runs). otelstream's ``WriteTap``
  (``feeds/writer.py``) is the stream writer every task of the run holds, so each write reaches
  the recorder on the writer's own thread, while it writes. The tap knows the writing task (its
  checkpoint namespace, bound when LangGraph prepared the task) and the callback run it writes
  from (the parent run id of the callback manager in its config). If that run is a tool call in
  flight, the write is the tool call's; otherwise it is the task's. Both spans are open: a task
  or tool span ends only when its callback says the work returned, after every write it made.
  The attribution is ``exact`` except for one case: a task with tool calls in flight, written
  from a runnable nested inside one of them (not from the tool itself), is put on the task as
  ``ancestor``.
* **In stream order** (``custom``, for feeds that see only a stream: a LangGraph server's SSE
  events, the v3 transformer). The stream drops the task segment of a write's namespace, so a
  write is known only to come from one of the tasks open in its namespace. With exactly one
  open task (and within it at most one open tool call) it is exact; otherwise it goes on the
  nearest certain ancestor, labelled ``ancestor``.

A span keeps at most its event budget of writes; past it a write costs a counter only.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from otelstream import names
from otelstream.record.content import payload_size
from otelstream.record.work import NS_SEP, Work, Writes

if TYPE_CHECKING:
    import threading
    from uuid import UUID

    from opentelemetry.trace import Span
    from opentelemetry.util.types import AttributeValue

    from otelstream.record.content import Capture
    from otelstream.record.work import Task, Tool


def custom_attributes(writes: Writes | Work) -> dict[str, AttributeValue]:
    """How many custom writes a span got, and how many of them it had no room for."""
    attributes: dict[str, AttributeValue] = {}
    if writes.custom_count:
        attributes[names.OTELSTREAM_CUSTOM_COUNT] = writes.custom_count
    if writes.custom_dropped:
        attributes[names.OTELSTREAM_CUSTOM_DROPPED] = writes.custom_dropped
    return attributes


class CustomWrites:
    """The custom-write part of ``RunRecorder`` (a mixin: the state is the recorder's)."""

    _lock: threading.Lock
    _finished: bool
    _capture: Capture | None
    _custom_budget: int
    _run_writes: Writes
    _tasks: dict[str, Task]
    _tools: dict[UUID, Tool]
    _tools_by_call: dict[str, Tool]
    span: Span

    def _init_writes(self) -> None:
        # The stream's view, in stream order: open task keys per namespace, open tool-call ids
        # per task key. Bumped whenever what a write could be attributed to changes, so a burst
        # of writes reuses one attribution.
        self._open_tasks: dict[tuple[str, ...], list[str]] = {}
        self._open_calls: dict[str | None, list[str]] = {}
        self._layout = 0
        self._custom_cache: tuple[tuple[str, ...], int, Work | None, bool] | None = None

    # ---- at write time ------------------------------------------------------------------------

    def custom_write(self, task_key: str | None, run_id: UUID | None, payload: Any) -> None:
        """A write made now by task ``task_key`` from callback run ``run_id`` (both if known)."""
        now = time.time_ns()
        with self._lock:
            if self._finished:
                return
            target: Work | None = self._tools.get(run_id) if run_id is not None else None
            exact = target is not None
            if target is None and task_key is not None:
                target = self._tasks.get(task_key)
                if target is not None:
                    exact = not any(t.task_key == task_key for t in self._tools.values())
                else:
                    target = self._open_ancestor(task_key)
        self._record_custom(target, exact, payload, now)

    def _open_ancestor(self, key: str) -> Work | None:
        """The nearest open task above ``key`` (a write from a task no callback reported)."""
        while NS_SEP in key:
            key = key.rpartition(NS_SEP)[0]
            task = self._tasks.get(key)
            if task is not None and not task.ended:
                return task
        return None

    # ---- in stream order ----------------------------------------------------------------------

    def custom(self, ns: tuple[str, ...], payload: Any) -> None:
        """A write read from a stream, from namespace ``ns``, attributed in stream order."""
        now = time.time_ns()
        cached = self._custom_cache
        if cached is not None and cached[0] == ns and cached[1] == self._layout:
            target, exact = cached[2], cached[3]
        else:
            with self._lock:
                target, exact = self._attribute(ns)
                self._custom_cache = (ns, self._layout, target, exact)
        self._record_custom(target, exact, payload, now)

    def stream_task(self, ns: tuple[str, ...], payload: Any) -> None:
        """A ``tasks`` stream event: a task starts, or its writes committed (it ended)."""
        if not isinstance(payload, dict):
            return
        key = NS_SEP.join((*ns, f"{payload.get('name')}:{payload.get('id')}"))
        self._layout += 1
        if "triggers" in payload:  # start
            self._open_tasks.setdefault(ns, []).append(key)
            return
        open_keys = self._open_tasks.get(ns)
        if open_keys is not None and key in open_keys:
            open_keys.remove(key)
            if not open_keys:
                del self._open_tasks[ns]
        if payload.get("interrupts"):
            self.interrupted = True
        with self._lock:
            task = self._tasks.get(key)
            if task is not None:
                task.seen_stream_end = True
                self._maybe_end(task)

    def tool_call_opened(self, call_id: str) -> None:
        """The stream says tool call ``call_id`` has started: writes after this may be its."""
        with self._lock:
            tool = self._tools_by_call.get(call_id)
            if tool is None:
                return
            self._layout += 1
            self._open_calls.setdefault(tool.task_key, []).append(call_id)

    def tool_call_closed(self, call_id: str) -> None:
        """The stream says tool call ``call_id`` has ended: every write of it was read."""
        with self._lock:
            tool = self._tools_by_call.get(call_id)
            if tool is None:
                return
            self._layout += 1
            calls = self._open_calls.get(tool.task_key)
            if calls is not None:
                if call_id in calls:
                    calls.remove(call_id)
                if not calls:
                    del self._open_calls[tool.task_key]

    def _attribute(self, ns: tuple[str, ...]) -> tuple[Work | None, bool]:
        """The span a stream-order write from ``ns`` certainly came from, and whether it is
        exact. Holds the lock; the answer holds until ``_layout`` changes."""
        target: Work | None = None
        exact = False
        open_keys = self._open_tasks.get(ns)
        if open_keys is not None and len(open_keys) == 1:
            task_key = open_keys[0]
            target = self._tasks.get(task_key)
            calls = self._open_calls.get(task_key)
            if calls is not None and len(calls) == 1:
                target = self._tools_by_call.get(calls[0]) or target
                exact = target is not None
            else:
                exact = target is not None and not calls
        if target is None or target.ended:
            exact = False
            target = self._tasks.get(NS_SEP.join(ns)) if ns else None
            if target is not None and target.ended:
                target = None
        return target, exact

    # ---- recording ----------------------------------------------------------------------------

    def _record_custom(self, target: Work | None, exact: bool, payload: Any, now: int) -> None:
        self._progressed(target, now)
        # Count first: past the span's event budget a write costs a counter, nothing more.
        holder: Work | Writes = target if target is not None else self._run_writes
        holder.custom_count += 1
        if holder.custom_count > self._custom_budget:
            holder.custom_dropped += 1
            return
        attributes: dict[str, AttributeValue] = {
            names.OTELSTREAM_CUSTOM_TYPE: type(payload).__qualname__,
            names.OTELSTREAM_ATTRIBUTION: "exact" if exact else "ancestor",
        }
        size = payload_size(payload)
        if size is not None:
            attributes[names.OTELSTREAM_CUSTOM_SIZE] = size
        if self._capture is not None:
            text = self._capture.text(names.OTELSTREAM_CUSTOM_PAYLOAD, payload)
            if text is not None:
                attributes[names.OTELSTREAM_CUSTOM_PAYLOAD] = text
        span = target.span if target is not None else self.span
        span.add_event(names.EVENT_CUSTOM, attributes, timestamp=now)

    # Provided by the recorder.
    interrupted: bool
    if TYPE_CHECKING:

        def _maybe_end(self, work: Work) -> None: ...

        def _progressed(self, work: Work | None, now: int) -> None: ...
