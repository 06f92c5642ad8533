"""Stall checks on a run's work in flight, called from the watchdog thread.

A mixin of ``RunRecorder``: it reads the recorder's running tools, chats and tasks under the
recorder's lock and reports each item once per reason when it crosses a threshold:

* ``running``: a tool call or task ran longer than its running-time threshold; an LLM call is
  judged by silence alone (``idle``: no chunk for its threshold).
* ``idle``: a tool call or task showed no progress for its idle threshold. Progress is recorded
  where it happens, never per chunk: a custom write (``writes.py``), a chat, tool or node
  starting or ending under the work (``chats.py``, ``tasks.py``, the callback feed), a
  ``runtime.heartbeat()`` (the write tap's runtime), LangGraph's own progress events of a node
  under a ``TimeoutPolicy`` (``attempt_progress``). Progress of a tool call, or of a task nested
  in a subgraph, is progress of every task it runs in. The chunks of a model call still
  streaming are read at check time, from the call's last chunk time, so streaming costs nothing
  more. A node with ``TimeoutPolicy(idle_timeout=...)`` is judged by its idle timeout.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Any

from opentelemetry import trace
from opentelemetry.trace import SpanKind

from otelstream import names
from otelstream._log import logger as _log

if TYPE_CHECKING:
    import threading
    from collections.abc import Callable, Iterator
    from uuid import UUID

    from opentelemetry.context import Context
    from opentelemetry.trace import Span, Tracer
    from opentelemetry.util.types import AttributeValue

    from otelstream.record.instruments import Instruments
    from otelstream.record.work import Chat, Task, Tool, Work

_RUNNING = names.STALL_REASON_RUNNING
_IDLE = names.STALL_REASON_IDLE

# Short keys for the stall warnings' identity fields.
_LOG_KEYS = {
    names.GEN_AI_TOOL_NAME: "tool",
    names.GEN_AI_TOOL_CALL_ID: "call_id",
    names.GEN_AI_REQUEST_MODEL: "model",
    names.LANGGRAPH_NODE: "node",
    names.LANGGRAPH_TASK_ID: "task_id",
}


class StallChecks:
    """What the watchdog asks of a run: its work in flight, and which of it stalled."""

    _lock: threading.Lock
    _finished: bool
    _tracer: Tracer
    _instruments: Instruments
    _tools: dict[UUID, Tool]
    _tools_by_call: dict[str, Tool]
    _tasks: dict[str, Task]
    _task_runs: dict[UUID, str]
    chats: dict[UUID, Chat]

    if TYPE_CHECKING:

        def _owner(self, run_id: UUID | None, key: str | None) -> Work | None: ...

    idle_hint_ns: float | None = None
    """The shortest idle timeout (``TimeoutPolicy``) of a task running at the last check, which
    the watchdog's options do not know: it checks at least four times per such window."""

    # ---- progress -----------------------------------------------------------------------------

    def _lineage(self, work: Work | None) -> Iterator[Work]:
        """``work``, then the task it runs in, then each task that one runs in."""
        tasks = self._tasks
        while work is not None:
            yield work
            key = work.parent_key
            work = tasks.get(key) if key is not None else None

    def _progressed(self, work: Work | None, now: int) -> None:
        """``work`` showed progress at ``now``, and so did every task it runs in.

        Unlocked: a late store of an older time only makes the work look idle a moment longer.
        """
        for item in self._lineage(work):
            item.progress_ns = now

    def progress(self, task_key: str | None, run_id: UUID | None) -> None:
        """Progress now, reported from task ``task_key`` by callback run ``run_id`` (both if
        known): a heartbeat, a nested node starting or ending. It is the tool call's if
        ``run_id`` is a tool call in flight, else the task's."""
        if not self._finished:
            self._progressed(self._owner(run_id, task_key), time.time_ns())

    def node_progress(self, run_id: UUID) -> None:
        """Node run ``run_id`` starts or ends now: progress of every task it runs in."""
        key = self._task_runs.get(run_id)
        if key is not None:
            self._progressed(self._tasks.get(key), time.time_ns())

    def tool_output_delta(self, call_id: str) -> None:
        """A ``tool-output-delta`` of tool call ``call_id`` (a stream-only feed read it)."""
        self._progressed(self._tools_by_call.get(call_id), time.time_ns())

    def _chunk_progress(self) -> dict[Work, int]:
        """The last chunk of a model call still streaming under each tool call and task."""
        latest: dict[Work, int] = {}
        for chat in list(self.chats.values()):
            last = chat.last_ns
            if not last:
                continue
            for work in self._lineage(chat.owner):
                if latest.get(work, 0) < last:
                    latest[work] = last
        return latest

    @staticmethod
    def _last_progress(work: Work, chunks: dict[Work, int]) -> int:
        """When ``work`` last showed progress, or started."""
        progress = work.progress_ns
        last = work.start_ns if progress is None or progress < work.start_ns else progress
        chunk = chunks.get(work, 0)
        return chunk if chunk > last else last

    # ---- what the watchdog asks ---------------------------------------------------------------

    def in_flight(self, now: int) -> Iterator[tuple[str, str, str, float, float | None]]:
        """``(kind, name attribute, name, age, idle age)`` of every work item running now, in
        seconds; the idle age (since the last progress, or the start) is ``None`` for LLM calls.

        An LLM call's age counts from its last chunk (or its start): silence is what stalls it.
        """
        chunks = self._chunk_progress() if self.chats else {}
        for tool in list(self._tools.values()):
            name = str(tool.metric_attributes.get(names.GEN_AI_TOOL_NAME, ""))
            idle = (now - self._last_progress(tool, chunks)) / 1e9
            yield names.WORK_TOOL, names.GEN_AI_TOOL_NAME, name, (now - tool.start_ns) / 1e9, idle
        for chat in list(self.chats.values()):
            last = chat.last_ns or chat.start_ns
            model = str(chat.attributes.get(names.GEN_AI_REQUEST_MODEL, ""))
            yield names.WORK_LLM, names.GEN_AI_REQUEST_MODEL, model, (now - last) / 1e9, None
        for task in list(self._tasks.values()):
            if task.end_ns is None:
                node = str(task.metric_attributes.get(names.LANGGRAPH_NODE, ""))
                idle = (now - self._last_progress(task, chunks)) / 1e9
                age = (now - task.start_ns) / 1e9
                yield names.WORK_TASK, names.LANGGRAPH_NODE, node, age, idle

    def check_stalls(
        self,
        now: int,
        tool_ns: float | None,
        llm_ns: float | None,
        task_ns: float | None,
        tool_idle_ns: float | None = None,
        task_idle_ns: float | None = None,
    ) -> int:
        """Report every work item that crossed a threshold (in ns) since the last check.

        ``*_ns`` are running-time thresholds (an LLM call's: silence), ``*_idle_ns`` idle ones;
        a task under ``TimeoutPolicy(idle_timeout=...)`` uses that instead of ``task_idle_ns``.
        Returns how many reports were made: at most one per item and reason.
        """
        reported = 0
        with self._lock:
            if self._finished:
                return 0
            tasks = [t for t in self._tasks.values() if t.end_ns is None]
            hint: float | None = None
            idle_of: dict[Task, float] = {}
            for task in tasks:
                timeout = task.idle_timeout_s
                if timeout is not None and math.isfinite(timeout) and timeout > 0:
                    idle_of[task] = timeout * 1e9
                    hint = idle_of[task] if hint is None else min(hint, idle_of[task])
                elif task_idle_ns is not None:
                    idle_of[task] = task_idle_ns
            self.idle_hint_ns = hint
            chunks = (
                self._chunk_progress()
                if self.chats and (tool_idle_ns is not None or idle_of)
                else {}
            )
            for tool in list(self._tools.values()):
                reported += self._check_work(
                    tool, names.WORK_TOOL, now, tool_ns, tool_idle_ns, chunks, _tool_identity
                )
            if llm_ns is not None:
                for chat in list(self.chats.values()):
                    last = chat.last_ns or chat.start_ns
                    if chat.stall_onset_ns is None and now - last >= llm_ns:
                        chat.stall_onset_ns = last + int(llm_ns)
                        self._report_stall(
                            names.WORK_LLM,
                            _IDLE,
                            chat.span,
                            None,
                            now,
                            last,
                            llm_ns,
                            {
                                names.GEN_AI_REQUEST_MODEL: chat.attributes.get(
                                    names.GEN_AI_REQUEST_MODEL, ""
                                )
                            },
                        )
                        reported += 1
            for task in tasks:
                reported += self._check_work(
                    task, names.WORK_TASK, now, task_ns, idle_of.get(task), chunks, _task_identity
                )
        return reported

    def _check_work(
        self,
        work: Work,
        kind: str,
        now: int,
        running_ns: float | None,
        idle_ns: float | None,
        chunks: dict[Work, int],
        identity: Callable[[Any], dict[str, Any]],
    ) -> int:
        """Report ``work`` for each reason it newly crossed; returns how many. Holds the lock."""
        reported = 0
        reasons = work.stall_reasons
        if running_ns is not None and _RUNNING not in reasons and now - work.start_ns >= running_ns:
            self._stalled(work, kind, _RUNNING, now, work.start_ns, running_ns, identity(work))
            reported += 1
        if idle_ns is not None and _IDLE not in reasons:
            last = self._last_progress(work, chunks)
            if now - last >= idle_ns:
                self._stalled(work, kind, _IDLE, now, last, idle_ns, identity(work))
                reported += 1
        return reported

    def _stalled(
        self,
        work: Work,
        kind: str,
        reason: str,
        now: int,
        since_ns: int,
        threshold_ns: float,
        identity: dict[str, Any],
    ) -> None:
        """Mark ``work`` stalled for ``reason`` and report it. Holds the lock."""
        work.stall_reasons = (*work.stall_reasons, reason)
        onset = since_ns + int(threshold_ns)
        if work.stall_onset_ns is None or onset < work.stall_onset_ns:
            work.stall_onset_ns = onset
        self._report_stall(
            kind, reason, work.span, work.context, now, since_ns, threshold_ns, identity
        )

    def _report_stall(
        self,
        kind: str,
        reason: str,
        span: Span,
        context: Context | None,
        now: int,
        since_ns: int,
        threshold_ns: float,
        identity: dict[str, Any],
    ) -> None:
        """Counter, warning log, marker span and span event for one stalled item."""
        age = (now - since_ns) / 1e9
        threshold = threshold_ns / 1e9
        name_key = next(iter(identity))
        name = str(identity[name_key])
        attributes: dict[str, AttributeValue] = {
            names.OTELSTREAM_WORK_KIND: kind,
            names.OTELSTREAM_STALL_REASON: reason,
            names.OTELSTREAM_STALL_AGE: age,
            names.OTELSTREAM_STALL_THRESHOLD: threshold,
            **{key: str(value) for key, value in identity.items()},
        }
        context = context if context is not None else trace.set_span_in_context(span)
        self._instruments.stalls.add(
            1,
            {
                names.OTELSTREAM_WORK_KIND: kind,
                name_key: name,
                names.OTELSTREAM_STALL_REASON: reason,
            },
            context=context,
        )
        span.add_event(names.EVENT_STALL, attributes, timestamp=now)
        marker = self._tracer.start_span(
            names.SPAN_STALLED.format(span=getattr(span, "name", kind)),
            context=context,
            kind=SpanKind.INTERNAL,
            attributes={**attributes, names.OTELSTREAM_STALLED: True},
            start_time=now,
        )
        marker.end(end_time=now)
        span_context = span.get_span_context()
        log_event = {
            names.WORK_TOOL: names.LOG_TOOL_CALL_STALLED,
            names.WORK_LLM: names.LOG_LLM_STREAM_STALLED,
            names.WORK_TASK: names.LOG_TASK_STALLED,
        }[kind]
        _log.warning(
            log_event,
            trace_id=trace.format_trace_id(span_context.trace_id),
            span_id=trace.format_span_id(span_context.span_id),
            reason=reason,
            age=round(age, 3),
            threshold=threshold,
            **{_LOG_KEYS.get(key, key): str(value) for key, value in identity.items()},
        )


def _tool_identity(tool: Tool) -> dict[str, Any]:
    return {
        names.GEN_AI_TOOL_NAME: tool.metric_attributes.get(names.GEN_AI_TOOL_NAME, ""),
        names.GEN_AI_TOOL_CALL_ID: tool.call_id,
    }


def _task_identity(task: Task) -> dict[str, Any]:
    return {
        names.LANGGRAPH_NODE: task.metric_attributes.get(names.LANGGRAPH_NODE, ""),
        names.LANGGRAPH_TASK_ID: task.key.rpartition(":")[2],
    }
