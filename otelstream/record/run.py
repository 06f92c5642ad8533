"""The record layer's entry: one traced run's spans, span events and metric points.

A ``RunRecorder`` touches no I/O and no global state. Feeds call it:

* LangChain callbacks (``feeds/callbacks.py``), on whichever thread or task runs the work, at the
  moment it starts and ends: task (node), chat and tool spans with exact times, and every
  streamed chunk. Callbacks for one piece of work arrive in causal order (a node starts before
  the model it calls), so a parent span always exists before its children.
* The write tap (``feeds/writer.py``): every custom write, while it is written.
* The stream wrapper (``feeds/stream.py``): interrupts the caller's chunks show.
* Stream-only feeds (a LangGraph server's events, the v3 transformer) call the same methods with
  the times they read each event.

Each concern lives in its own module: ``tasks.py`` (task and tool spans), ``chats.py`` (chat
spans and chunks), ``writes.py`` (where a custom write lands), ``stalls.py`` (what the watchdog
asks). Spans are never made current: parents are passed explicitly as contexts.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

from opentelemetry import trace
from opentelemetry.trace import SpanKind

from otelstream import names
from otelstream.record.chats import ChatSpans
from otelstream.record.content import Capture
from otelstream.record.stalls import StallChecks
from otelstream.record.tasks import WorkSpans, task_key
from otelstream.record.work import (
    NS_SEP,
    RESERVED_EVENTS,
    Writes,
    error_attributes,
    event_limit,
)
from otelstream.record.writes import CustomWrites, custom_attributes

__all__ = ["NS_SEP", "RunRecorder"]

_FAILED = frozenset({names.OUTCOME_ERROR, names.OUTCOME_TIMEOUT})
"""Outcomes whose run span is an error."""
_PAUSED = frozenset({names.OUTCOME_INTERRUPTED, names.OUTCOME_DRAINED})
"""Outcomes of a run that stopped where a later run can resume it."""

if TYPE_CHECKING:
    from collections.abc import Sequence

    from opentelemetry.context import Context
    from opentelemetry.trace import Link, SpanContext, Tracer
    from opentelemetry.util.types import AttributeValue

    from otelstream.options import Options
    from otelstream.record.instruments import Instruments


class RunRecorder(WorkSpans, ChatSpans, CustomWrites, StallChecks):
    """Spans and metrics for one traced run.

    The run span is ``invoke_agent {name}`` for an agent (a ``create_agent`` graph) and
    ``invoke_workflow {name}`` for any other graph or entrypoint.

    Args:
        tracer: Where spans go.
        instruments: Where metric points go.
        options: What to record.
        name: The graph's (or entrypoint's) name, for the run span.
        agent: Whether the graph is an agent.
        conversation_id: The config's ``thread_id``, if any.
        parent: The caller's context; the run span is its child.
        sees_nested: For stream-only feeds: whether the stream reports ``tasks`` and ``custom``
            events from inside subgraphs.
        reads_tasks: For stream-only feeds: whether the stream reports each task's start and
            end (``tasks`` events); then a task span ends only once the stream has caught up.
        start_ns: When the run started, if not now (a remote run the server created earlier).
        links: Links for the run span, known before it starts (a feed that read the checkpoint
            the run starts from, see ``resumed_from``).
    """

    def __init__(
        self,
        tracer: Tracer,
        instruments: Instruments,
        options: Options,
        *,
        name: str,
        agent: bool = False,
        conversation_id: str | None,
        parent: Context | None,
        sees_nested: bool = False,
        reads_tasks: bool = False,
        start_ns: int | None = None,
        links: Sequence[Link] | None = None,
    ) -> None:
        self._tracer = tracer
        self._instruments = instruments
        self._options = options
        self._sees_nested = sees_nested
        self._reads_tasks = reads_tasks
        self._capture = (
            Capture(options.max_content_length, options.redact) if options.capture_content else None
        )
        self._lock = threading.Lock()
        self._finished = False
        self.start_ns = time.time_ns() if start_ns is None else start_ns
        self.name = name
        self.agent = agent
        if agent:
            operation, name_key, span_name = (
                names.OP_INVOKE_AGENT,
                names.GEN_AI_AGENT_NAME,
                names.SPAN_INVOKE_AGENT.format(agent=name),
            )
        else:
            operation, name_key, span_name = (
                names.OP_INVOKE_WORKFLOW,
                names.GEN_AI_WORKFLOW_NAME,
                names.SPAN_INVOKE_WORKFLOW.format(workflow=name),
            )
        self._metric_attributes: dict[str, AttributeValue] = {
            names.GEN_AI_OPERATION_NAME: operation,
            name_key: name,
        }
        attributes = dict(self._metric_attributes)
        if conversation_id is not None:
            attributes[names.GEN_AI_CONVERSATION_ID] = conversation_id
        self.span = tracer.start_span(
            span_name,
            context=parent,
            kind=SpanKind.INTERNAL,
            attributes=attributes,
            links=links,
            start_time=self.start_ns,
        )
        self._context = trace.set_span_in_context(self.span)
        budget = event_limit() - RESERVED_EVENTS
        # Each event costs the SDK several microseconds: use no more than the option asks for.
        self._chunk_budget = max(min(budget, options.chunk_events), 2)
        self._custom_budget = max(budget, 0)
        self.first_content_ns: int | None = None
        self.interrupted = False
        # The last checkpoint the run saved (set by the traced saver): where it paused, if it did.
        self.saved_checkpoint_id: str | None = None
        self._run_writes = Writes()
        self._init_work()
        self._init_chats()
        self._init_writes()

    @property
    def context(self) -> Context:
        """The run span's context: the parent of its root tasks."""
        return self._context

    # ---- content ------------------------------------------------------------------------------

    def _put_content(
        self, attributes: dict[str, AttributeValue], key: str, value: Any, *, raw: bool = False
    ) -> None:
        """Record ``value`` under ``key`` only with content capture, masked and redacted."""
        if self._capture is None:
            return
        text = self._capture.text(key, value, raw=raw)
        if text is not None:
            attributes[key] = text

    # ---- parents ------------------------------------------------------------------------------

    def _parent_context(self, key: str | None) -> Context:
        if key is not None:
            task = self._tasks.get(key)
            if task is not None:
                return task.context
        return self._context

    def set_run_attribute(self, key: str, value: AttributeValue) -> None:
        """Set an attribute on the run span (for feeds that learn facts about the run late)."""
        self.span.set_attribute(key, value)

    task_key = staticmethod(task_key)

    # ---- durable runs -------------------------------------------------------------------------

    def resumed_from(
        self,
        writer: SpanContext | None,
        reason: str,
        checkpoint_id: str | None,
        *,
        linked: bool = False,
        at_ns: int | None = None,
    ) -> None:
        """The run starts from a persisted checkpoint, written by the run span ``writer`` (when
        its metadata named one): link to it, and mark a resume with ``gen_ai.agent.resumed``.

        Args:
            writer: The span context of the run that wrote the checkpoint, or ``None``.
            reason: ``resume``, ``time_travel`` or ``continue`` (``names.LINK_REASON_*``).
            checkpoint_id: The checkpoint the run starts from.
            linked: The link was already given to the span at its start (``links=``).
            at_ns: When the run resumed, if not now (a feed that learns of it after the start).
        """
        if self._finished:
            return
        attributes: dict[str, AttributeValue] = {names.OTELSTREAM_LINK_REASON: reason}
        if checkpoint_id is not None:
            attributes[names.LANGGRAPH_CHECKPOINT_ID] = checkpoint_id
        span = self.span
        if writer is not None and not linked:
            # Added after the start: LangGraph reads the checkpoint (with its metadata) only
            # once the run is under way, and a second read of our own would cost the app I/O.
            span.add_link(writer, attributes)
        if reason == names.LINK_REASON_RESUME:
            event: dict[str, AttributeValue] = {}
            if checkpoint_id is not None:
                event[names.LANGGRAPH_CHECKPOINT_ID] = checkpoint_id
            span.add_event(names.EVENT_RESUMED, event, timestamp=at_ns)

    # ---- the end ------------------------------------------------------------------------------

    def finish(
        self, outcome: str, error: BaseException | None, *, end_ns: int | None = None
    ) -> None:
        """End the run: every span still open ends now (or at ``end_ns``), children first."""
        now = time.time_ns() if end_ns is None else max(end_ns, self.start_ns)
        with self._lock:
            if self._finished:
                return
            self._finished = True
            chats = list(self.chats.values())
            self.chats.clear()
            for chat in chats:
                self._end_chat(chat, now, None, None)
            self._end_open_work(now)
            self._open_tasks.clear()
            self._open_calls.clear()
            self._custom_cache = None
        if outcome == names.OUTCOME_COMPLETED and self.interrupted:
            outcome = names.OUTCOME_INTERRUPTED
        span = self.span
        if outcome in _PAUSED:
            paused: dict[str, AttributeValue] = {}
            if self.saved_checkpoint_id is not None:
                paused[names.LANGGRAPH_CHECKPOINT_ID] = self.saved_checkpoint_id
            span.add_event(names.EVENT_PAUSED, paused, timestamp=now)
        late = custom_attributes(self._run_writes)
        late[names.OTELSTREAM_OUTCOME] = outcome
        if self.first_content_ns is not None:
            late[names.OTELSTREAM_TIME_TO_FIRST_TOKEN] = (
                self.first_content_ns - self.start_ns
            ) / 1e9
        span.set_attributes(late)
        metric_attributes = {**self._metric_attributes, names.OTELSTREAM_OUTCOME: outcome}
        if error is not None and outcome in _FAILED:
            metric_attributes[names.ERROR_TYPE] = error_attributes(span, error)
        span.end(end_time=now)
        duration = (
            self._instruments.invoke_agent_duration
            if self.agent
            else self._instruments.workflow_duration
        )
        duration.record((now - self.start_ns) / 1e9, metric_attributes, context=self._context)
