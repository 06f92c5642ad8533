"""Task (node execution) and tool-call spans of one run.

A task span opens when its node's runnable starts and ends when it returns or raises, at the
times its callbacks report. Feeds that see only a stream (a server's events, the v3 transformer)
may ask a task span to wait for the stream's own end event too (``awaits_stream_end``), so that
custom writes still queued in the stream land on it; its end time stays the callback's.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from langgraph.errors import NodeTimeoutError
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from otelstream import names
from otelstream.record.content import truncate
from otelstream.record.work import (
    NS_SEP,
    Task,
    Tool,
    Work,
    error_attributes,
    is_failure,
    is_interrupt,
    stalled_attributes,
)
from otelstream.record.writes import custom_attributes

if TYPE_CHECKING:
    import threading
    from uuid import UUID

    from opentelemetry.context import Context
    from opentelemetry.trace import Span, Tracer
    from opentelemetry.util.types import AttributeValue

    from otelstream.options import Options
    from otelstream.record.instruments import Instruments


def task_key(metadata: dict[str, Any] | None) -> str | None:
    """The key of the task a callback's metadata belongs to: its checkpoint namespace."""
    if not metadata:
        return None
    ns = metadata.get("langgraph_checkpoint_ns")
    return ns if isinstance(ns, str) and ns else None


class WorkSpans:
    """The task and tool part of ``RunRecorder`` (a mixin: the state is the recorder's)."""

    _lock: threading.Lock
    _finished: bool
    _tracer: Tracer
    _instruments: Instruments
    _options: Options
    _reads_tasks: bool
    _sees_nested: bool
    _layout: int
    interrupted: bool

    def _init_work(self) -> None:
        # Work started by callbacks. Keys: checkpoint namespace for tasks, callback run id for
        # tools; entries leave when their span ends, so these stay as small as the work in flight.
        self._tasks: dict[str, Task] = {}
        self._task_runs: dict[UUID, str] = {}
        self._tools: dict[UUID, Tool] = {}
        self._tools_by_call: dict[str, Tool] = {}
        # Tasks whose attempt failed, until LangGraph retries them or they end (see _maybe_end),
        # and idle timeouts LangGraph reported before the attempt's runnable started.
        self._failed: dict[str, Task] = {}
        self._idle_timeouts: dict[str, float] = {}

    if TYPE_CHECKING:

        def _parent_context(self, key: str | None) -> Context: ...

        def _put_content(
            self, attributes: dict[str, AttributeValue], key: str, value: Any, *, raw: bool = False
        ) -> None: ...

        def _progressed(self, work: Work | None, now: int) -> None: ...

    # ---- tasks --------------------------------------------------------------------------------

    def is_task_run(self, run_id: UUID) -> bool:
        """Whether ``run_id`` is a node run this recorder opened a task span for."""
        return run_id in self._task_runs

    def task_started(self, run_id: UUID, metadata: dict[str, Any]) -> None:
        """A node's runnable started (``on_chain_start`` whose name is the node's).

        A node LangGraph runs again after a failed attempt (``RetryPolicy``) starts under the same
        checkpoint namespace: it continues the task's span, which gets a ``langgraph.retry``
        event for the failed attempt.
        """
        key = task_key(metadata)
        if key is None or self._finished:
            return
        now = time.time_ns()
        with self._lock:
            task = self._tasks.get(key)
            if task is not None:
                if task.end_ns is not None and task.error is not None and not task.ended:
                    self._retry(task, run_id)
                # else a subgraph named like its node starts a second chain
                return
            parent_key = key.rpartition(NS_SEP)[0] or None
            node = str(metadata.get("langgraph_node", ""))
            attributes: dict[str, AttributeValue] = {
                names.LANGGRAPH_NODE: node,
                names.LANGGRAPH_TASK_ID: key.rpartition(":")[2],
                names.LANGGRAPH_CHECKPOINT_NS: key,
                names.LANGGRAPH_TASK_ATTEMPTS: 1,
            }
            step = metadata.get("langgraph_step")
            if isinstance(step, int):
                attributes[names.LANGGRAPH_STEP] = step
                if self._failed:
                    self._end_failed_before(parent_key, step)
            else:
                step = None
            triggers = metadata.get("langgraph_triggers")
            if isinstance(triggers, (list, tuple)):
                attributes[names.LANGGRAPH_TRIGGERS] = [str(t) for t in triggers]
            span = self._tracer.start_span(
                names.SPAN_TASK.format(node=node),
                context=self._parent_context(parent_key),
                kind=SpanKind.INTERNAL,
                attributes=attributes,
                start_time=now,
            )
            self._tasks[key] = Task(
                span=span,
                context=trace.set_span_in_context(span),
                parent_key=parent_key,
                start_ns=now,
                awaits_stream_end=self._reads_tasks and (self._sees_nested or parent_key is None),
                key=key,
                run_id=run_id,
                step=step,
                idle_timeout_s=self._idle_timeouts.pop(key, None) if self._idle_timeouts else None,
                metric_attributes={names.LANGGRAPH_NODE: node},
            )
            self._task_runs[run_id] = key
            self._layout += 1

    def task_ended(self, run_id: UUID, error: BaseException | None) -> None:
        """A node's runnable returned or raised."""
        now = time.time_ns()
        with self._lock:
            key = self._task_runs.pop(run_id, None)
            task = self._tasks.get(key) if key is not None else None
            # An attempt LangGraph cut off (a timeout) reports its cancellation late, maybe
            # while the next attempt runs: only the current attempt's run ends the task.
            if task is None or task.end_ns is not None or task.run_id != run_id:
                return
            task.end_ns = now
            if error is not None and is_interrupt(error):
                self._interrupt(task.span, error, now)
            elif is_failure(error):
                task.error = error
            self._maybe_end(task)

    # ---- durable execution: retries and timeouts ----------------------------------------------

    def _retry(self, task: Task, run_id: UUID) -> None:
        """``task`` failed and LangGraph runs its node again (as ``run_id``). Holds the lock."""
        error = task.error
        assert error is not None
        assert task.end_ns is not None
        attributes: dict[str, AttributeValue] = {
            names.ERROR_TYPE: type(error).__qualname__,
            names.EXCEPTION_MESSAGE: truncate(str(error), 1024),
            names.LANGGRAPH_TASK_ATTEMPT: task.attempts,
        }
        if isinstance(error, NodeTimeoutError):
            attributes[names.LANGGRAPH_TIMEOUT_KIND] = error.kind
            attributes[names.LANGGRAPH_TIMEOUT_SECONDS] = error.timeout
        task.span.add_event(names.EVENT_RETRY, attributes, timestamp=task.end_ns)
        self._failed.pop(task.key, None)
        task.attempts += 1
        task.error = None
        task.end_ns = None
        task.run_id = run_id
        # One span, one running time: a running-time stall is reported once per task, retries
        # included. Each attempt may go idle on its own.
        task.stall_reasons = tuple(r for r in task.stall_reasons if r != names.STALL_REASON_IDLE)
        task.progress_ns = None
        if self._idle_timeouts:
            task.idle_timeout_s = self._idle_timeouts.pop(task.key, task.idle_timeout_s)
        self._task_runs[run_id] = task.key

    def attempt_started(self, key: str, idle_timeout_s: float | None) -> None:
        """LangGraph starts an attempt of a node under a ``TimeoutPolicy`` (before its runnable
        starts, so the task span may not exist yet)."""
        if idle_timeout_s is None or self._finished:
            return
        with self._lock:
            task = self._tasks.get(key)
            if task is not None and task.end_ns is None:
                task.idle_timeout_s = idle_timeout_s
            else:  # the node's runnable (first attempt) or next attempt starts next
                self._idle_timeouts[key] = idle_timeout_s

    def attempt_progress(self, key: str) -> None:
        """LangGraph saw progress of a node's attempt under a ``TimeoutPolicy`` (idle timeout)."""
        task = self._tasks.get(key)
        if task is not None:
            task.progress_ns = time.time_ns()

    def attempt_timed_out(self, key: str, error: NodeTimeoutError) -> None:
        """A node's ``TimeoutPolicy`` cut its attempt off, now: the task span ends here, failed
        (unless LangGraph retries it)."""
        now = time.time_ns()
        with self._lock:
            task = self._tasks.get(key)
            if task is None or task.end_ns is not None:
                return
            task.end_ns = now
            task.error = error
            self._maybe_end(task)

    def _end_failed_before(self, parent_key: str | None, step: int) -> None:
        """A task of a later step starts beside failed ones: those will not be retried (LangGraph
        retries a node within its step). Holds the lock."""
        for task in list(self._failed.values()):
            if task.parent_key == parent_key and task.step is not None and task.step < step:
                self._end_failed(task)

    def _end_failed(self, task: Task) -> None:
        self._failed.pop(task.key, None)
        if not task.ended and task.end_ns is not None:
            self._end_work(task, task.end_ns)

    def _interrupt(self, span: Span, error: BaseException, now: int) -> None:
        self.interrupted = True
        attributes: dict[str, AttributeValue] = {}
        if self._options.capture_content:
            interrupts = error.args[0] if error.args else ()
            if not isinstance(interrupts, (list, tuple)):
                interrupts = (interrupts,)
            values = [getattr(i, "value", i) for i in interrupts]
            self._put_content(attributes, names.OTELSTREAM_INTERRUPT_VALUE, values)
        span.add_event(names.EVENT_INTERRUPT, attributes, timestamp=now)

    # ---- tools --------------------------------------------------------------------------------

    def tool_started(
        self,
        run_id: UUID,
        metadata: dict[str, Any] | None,
        name: str,
        call_id: str,
        arguments: Any,
    ) -> None:
        """A tool started (``on_tool_start``)."""
        if self._finished:
            return
        now = time.time_ns()
        key = task_key(metadata)
        attributes: dict[str, AttributeValue] = {
            names.GEN_AI_OPERATION_NAME: names.OP_EXECUTE_TOOL,
            names.GEN_AI_TOOL_NAME: name,
            names.GEN_AI_TOOL_CALL_ID: call_id,
        }
        self._put_content(attributes, names.GEN_AI_TOOL_CALL_ARGUMENTS, arguments)
        with self._lock:
            span = self._tracer.start_span(
                names.SPAN_EXECUTE_TOOL.format(tool=name),
                context=self._parent_context(key),
                kind=SpanKind.INTERNAL,
                attributes=attributes,
                start_time=now,
            )
            tool = Tool(
                span=span,
                context=trace.set_span_in_context(span),
                parent_key=key,
                start_ns=now,
                awaits_stream_end=False,
                task_key=key,
                call_id=call_id,
                metric_attributes={
                    names.GEN_AI_OPERATION_NAME: names.OP_EXECUTE_TOOL,
                    names.GEN_AI_TOOL_NAME: name,
                },
            )
            self._tools[run_id] = tool
            self._tools_by_call[call_id] = tool
            self._layout += 1
            self._progressed(tool, now)  # the task's progress: a nested start

    def tool_ended(self, run_id: UUID, output: Any, error: BaseException | None) -> None:
        """A tool returned (``output``) or raised."""
        now = time.time_ns()
        with self._lock:
            tool = self._tools.pop(run_id, None)
            if tool is None or tool.end_ns is not None:
                return
            tool.end_ns = now
            self._progressed(tool, now)  # the task's progress: a nested end
            if is_failure(error):
                tool.error = error
            elif error is None and self._options.capture_content:
                result: dict[str, AttributeValue] = {}
                self._put_content(
                    result, names.GEN_AI_TOOL_CALL_RESULT, getattr(output, "content", output)
                )
                tool.span.set_attributes(result)
            self._maybe_end(tool)

    def _owner(self, run_id: UUID | None, key: str | None) -> Work | None:
        """The tool call ``run_id`` if it is one in flight, else the task ``key``."""
        tool = self._tools.get(run_id) if run_id is not None else None
        if tool is not None or key is None:
            return tool
        return self._tasks.get(key)

    def tool_parent(self, run_id: UUID | None) -> Context | None:
        """The context of the running tool ``run_id``, for a model called inside a tool."""
        if run_id is None:
            return None
        tool = self._tools.get(run_id)
        return tool.context if tool is not None else None

    # ---- ending -------------------------------------------------------------------------------

    def _maybe_end(self, work: Work) -> None:
        """End ``work``'s span once its work ended (and, where asked, the stream caught up).

        Holds the lock.
        """
        if work.ended or work.end_ns is None:
            return
        if work.awaits_stream_end and not work.seen_stream_end and not self._finished:
            return
        if work.error is not None and isinstance(work, Task) and not self._finished:
            # LangGraph may run the node again (RetryPolicy): the span waits for that, for a
            # later step, for its parent's end or for the run's end, and ends at this time.
            self._failed[work.key] = work
            return
        self._end_work(work, work.end_ns)

    def _end_work(self, work: Work, end_ns: int) -> None:
        work.ended = True
        if self._failed and isinstance(work, Task):
            # A failed child waiting for a retry gets none once its parent ends.
            self._failed.pop(work.key, None)
            for child in [t for t in self._failed.values() if t.parent_key == work.key]:
                self._end_failed(child)
        self._layout += 1
        span = work.span
        attributes = work.metric_attributes
        if work.error is not None:
            attributes = {**attributes, names.ERROR_TYPE: error_attributes(span, work.error)}
        late = custom_attributes(work)
        if isinstance(work, Task):
            if work.attempts > 1:
                late[names.LANGGRAPH_TASK_ATTEMPTS] = work.attempts
            if isinstance(work.error, NodeTimeoutError):
                late[names.LANGGRAPH_TIMEOUT_KIND] = work.error.kind
                late[names.LANGGRAPH_TIMEOUT_SECONDS] = work.error.timeout
        if work.stall_onset_ns is not None:
            stalled_attributes(late, work.stall_onset_ns, end_ns)
        if late:
            span.set_attributes(late)
        span.end(end_time=end_ns)
        context = work.context
        seconds = (end_ns - work.start_ns) / 1e9
        if isinstance(work, Task):
            self._tasks.pop(work.key, None)
            self._instruments.task_duration.record(seconds, attributes, context=context)
        elif isinstance(work, Tool):
            self._tools_by_call.pop(work.call_id, None)
            self._instruments.execute_tool_duration.record(seconds, attributes, context=context)

    def _end_open_work(self, now: int) -> None:
        """End every task and tool span still open, children before parents. Holds the lock."""
        for tool in list(self._tools_by_call.values()):
            if not tool.ended:
                self._end_work(tool, tool.end_ns if tool.end_ns is not None else now)
        # Deepest tasks first, so no parent ends before its child.
        for task in sorted(self._tasks.values(), key=lambda t: -t.key.count(NS_SEP)):
            if not task.ended:
                self._end_work(task, task.end_ns if task.end_ns is not None else now)
        self._tasks.clear()
        self._failed.clear()
        self._idle_timeouts.clear()
        self._tools.clear()
        self._tools_by_call.clear()
        self._task_runs.clear()
