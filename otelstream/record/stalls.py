"""Stall checks on a run's work in flight, called from the watchdog thread.

A mixin of ``RunRecorder``: it reads the recorder's running tools, chats and tasks under the
recorder's lock and reports each item once when it crosses its threshold.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from opentelemetry import trace
from opentelemetry.trace import SpanKind

from otelstream import names
from otelstream._log import logger as _log

if TYPE_CHECKING:
    import threading
    from collections.abc import Iterator
    from uuid import UUID

    from opentelemetry.context import Context
    from opentelemetry.trace import Span, Tracer
    from opentelemetry.util.types import AttributeValue

    from otelstream.record.instruments import Instruments
    from otelstream.record.work import Chat, Task, Tool

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
    _tasks: dict[str, Task]
    chats: dict[UUID, Chat]

    def in_flight(self, now: int) -> Iterator[tuple[str, str, str, float]]:
        """``(kind, name attribute, name, age in seconds)`` of every work item running now.

        An LLM call's age counts from its last chunk (or its start): silence is what stalls it.
        """
        for tool in list(self._tools.values()):
            name = str(tool.metric_attributes.get(names.GEN_AI_TOOL_NAME, ""))
            yield names.WORK_TOOL, names.GEN_AI_TOOL_NAME, name, (now - tool.start_ns) / 1e9
        for chat in list(self.chats.values()):
            last = chat.last_ns or chat.start_ns
            model = str(chat.attributes.get(names.GEN_AI_REQUEST_MODEL, ""))
            yield names.WORK_LLM, names.GEN_AI_REQUEST_MODEL, model, (now - last) / 1e9
        for task in list(self._tasks.values()):
            if task.end_ns is None:
                node = str(task.metric_attributes.get(names.LANGGRAPH_NODE, ""))
                yield names.WORK_TASK, names.LANGGRAPH_NODE, node, (now - task.start_ns) / 1e9

    def check_stalls(
        self, now: int, tool_ns: float | None, llm_ns: float | None, task_ns: float | None
    ) -> int:
        """Report every work item that crossed its threshold (in ns) since the last check.

        Returns how many were reported. Each item is reported once.
        """
        reported = 0
        with self._lock:
            if self._finished:
                return 0
            if tool_ns is not None:
                for tool in list(self._tools.values()):
                    if tool.stall_onset_ns is None and now - tool.start_ns >= tool_ns:
                        tool.stall_onset_ns = tool.start_ns + int(tool_ns)
                        self._report_stall(
                            names.WORK_TOOL,
                            tool.span,
                            tool.context,
                            now,
                            tool.start_ns,
                            tool_ns,
                            {
                                names.GEN_AI_TOOL_NAME: tool.metric_attributes.get(
                                    names.GEN_AI_TOOL_NAME, ""
                                ),
                                names.GEN_AI_TOOL_CALL_ID: tool.call_id,
                            },
                        )
                        reported += 1
            if llm_ns is not None:
                for chat in list(self.chats.values()):
                    last = chat.last_ns or chat.start_ns
                    if chat.stall_onset_ns is None and now - last >= llm_ns:
                        chat.stall_onset_ns = last + int(llm_ns)
                        self._report_stall(
                            names.WORK_LLM,
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
            if task_ns is not None:
                for task in list(self._tasks.values()):
                    stalled = now - task.start_ns >= task_ns
                    if task.end_ns is None and task.stall_onset_ns is None and stalled:
                        task.stall_onset_ns = task.start_ns + int(task_ns)
                        self._report_stall(
                            names.WORK_TASK,
                            task.span,
                            task.context,
                            now,
                            task.start_ns,
                            task_ns,
                            {
                                names.LANGGRAPH_NODE: task.metric_attributes.get(
                                    names.LANGGRAPH_NODE, ""
                                ),
                                names.LANGGRAPH_TASK_ID: task.key.rpartition(":")[2],
                            },
                        )
                        reported += 1
        return reported

    def _report_stall(
        self,
        kind: str,
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
            names.OTELSTREAM_STALL_AGE: age,
            names.OTELSTREAM_STALL_THRESHOLD: threshold,
            **{key: str(value) for key, value in identity.items()},
        }
        context = context if context is not None else trace.set_span_in_context(span)
        self._instruments.stalls.add(
            1, {names.OTELSTREAM_WORK_KIND: kind, name_key: name}, context=context
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
            age=round(age, 3),
            threshold=threshold,
            **{_LOG_KEYS.get(key, key): str(value) for key, value in identity.items()},
        )
