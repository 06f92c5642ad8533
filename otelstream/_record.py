"""The record layer: one traced run's spans, span events and metric points.

A ``RunRecorder`` is fed from two sides and touches no I/O and no global state:

* LangChain callbacks (``_callbacks.SpanCallbackHandler``), on whichever thread or task runs the
  work, at the moment it starts and ends: task (node), chat and tool spans with exact times, and
  every streamed chunk. Callbacks for one piece of work arrive in causal order (a node starts
  before the model it calls), so a parent span always exists before its children.
* The consumer of the stream (``_wrap``), in stream order: ``tasks`` and ``tools`` events, custom
  writes and interrupts. Stream order is what makes custom-write attribution certain: a write sits
  between its task's start and end events. A task or tool span whose work has ended stays open
  until the consumer has seen its end event, so that writes that were still queued land on it;
  its end time is still the one its callback recorded.

Spans are never made current: parents are passed explicitly as contexts.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

from opentelemetry import trace
from opentelemetry.trace import SpanKind

from otelstream import names
from otelstream._content import Capture, payload_size
from otelstream._stalls import StallChecks
from otelstream._work import (
    NS_SEP,
    RESERVED_EVENTS,
    Chat,
    Task,
    Tool,
    ToolMark,
    Work,
    Writes,
    error_attributes,
    event_limit,
    is_failure,
    is_interrupt,
    stalled_attributes,
)

# Kept for feeds written against the earlier module layout.
_Chat = Chat
__all__ = ["NS_SEP", "RunRecorder"]

if TYPE_CHECKING:
    from uuid import UUID

    from opentelemetry.context import Context
    from opentelemetry.trace import Span, Tracer
    from opentelemetry.util.types import AttributeValue

    from otelstream._instruments import Instruments
    from otelstream.options import Options


_USAGE = (
    ("input_tokens", names.GEN_AI_USAGE_INPUT_TOKENS, names.TOKEN_TYPE_INPUT),
    ("output_tokens", names.GEN_AI_USAGE_OUTPUT_TOKENS, names.TOKEN_TYPE_OUTPUT),
)


def _response_attributes(attributes: dict[str, AttributeValue], message: Any) -> dict[str, int]:
    """Put what a chat call's final message says about the response into ``attributes``;
    returns its token counts by ``gen_ai.token.type``."""
    metadata = getattr(message, "response_metadata", None) or {}
    model = metadata.get("model_name") or metadata.get("model")
    if isinstance(model, str):
        attributes[names.GEN_AI_RESPONSE_MODEL] = model
    reason = metadata.get("finish_reason") or metadata.get("stop_reason")
    if isinstance(reason, str):
        attributes[names.GEN_AI_RESPONSE_FINISH_REASONS] = [reason]
    message_id = getattr(message, "id", None)
    if isinstance(message_id, str):
        attributes[names.GEN_AI_RESPONSE_ID] = message_id
    usage = getattr(message, "usage_metadata", None) or {}
    tokens: dict[str, int] = {}
    for key, attribute, token_type in _USAGE:
        value = usage.get(key)
        if isinstance(value, int):
            attributes[attribute] = value
            tokens[token_type] = value
    return tokens


def _custom_attributes(writes: Writes | Work) -> dict[str, AttributeValue]:
    """How many custom writes a span got, and how many of them it had no room for."""
    attributes: dict[str, AttributeValue] = {}
    if writes.custom_count:
        attributes[names.OTELSTREAM_CUSTOM_COUNT] = writes.custom_count
    if writes.custom_dropped:
        attributes[names.OTELSTREAM_CUSTOM_DROPPED] = writes.custom_dropped
    return attributes


class RunRecorder(StallChecks):
    """Spans and metrics for one traced stream call (one run).

    Args:
        tracer: Where spans go.
        instruments: Where metric points go.
        options: What to record.
        agent_name: The graph's name, for the run span.
        conversation_id: The config's ``thread_id``, if any.
        parent: The caller's context; the run span is its child.
        sees_nested: Whether the stream reports ``tasks`` and ``custom`` events from inside
            subgraphs (``subgraphs=True`` was requested internally).
        reads_tasks: Whether the stream reports each task's start and end (``tasks`` events):
            then a task span ends only once the stream has caught up with its end.
        marks_tools: Whether tool calls may be marked in the stream (``ToolMark``), which the
            callback handler then does for the calls whose stream writer is this run's own.
        start_ns: When the run started, if not now (a remote run the server created earlier).
    """

    def __init__(
        self,
        tracer: Tracer,
        instruments: Instruments,
        options: Options,
        *,
        agent_name: str,
        conversation_id: str | None,
        parent: Context | None,
        sees_nested: bool,
        reads_tasks: bool = True,
        marks_tools: bool = False,
        start_ns: int | None = None,
    ) -> None:
        self._tracer = tracer
        self._instruments = instruments
        self._options = options
        self._sees_nested = sees_nested
        self._reads_tasks = reads_tasks
        self.marks_tools = marks_tools
        self.stream_writer: Any = None
        """This run's own custom-stream writer, once a callback in a root-level task showed it."""
        self._capture = (
            Capture(options.max_content_length, options.redact) if options.capture_content else None
        )
        self._lock = threading.Lock()
        self._finished = False
        self.start_ns = time.time_ns() if start_ns is None else start_ns
        attributes: dict[str, AttributeValue] = {
            names.GEN_AI_OPERATION_NAME: names.OP_INVOKE_AGENT,
            names.GEN_AI_AGENT_NAME: agent_name,
        }
        if conversation_id is not None:
            attributes[names.GEN_AI_CONVERSATION_ID] = conversation_id
        self.agent_name = agent_name
        self.span = tracer.start_span(
            names.SPAN_INVOKE_AGENT.format(agent=agent_name),
            context=parent,
            kind=SpanKind.INTERNAL,
            attributes=attributes,
            start_time=self.start_ns,
        )
        self._context = trace.set_span_in_context(self.span)
        budget = event_limit() - RESERVED_EVENTS
        # Each event costs the SDK several microseconds: use no more than the option asks for.
        self._chunk_budget = max(min(budget, options.chunk_events), 2)
        self._custom_budget = max(budget, 0)
        self.first_content_ns: int | None = None
        self.interrupted = False
        self._run_writes = Writes()
        # Bumped whenever what a custom write could be attributed to changes (a task or tool
        # call opens or ends), so a burst of writes reuses one attribution.
        self._layout = 0
        self._custom_cache: tuple[tuple[str, ...], int, Work | None, bool] | None = None
        # Work started by callbacks. Keys: checkpoint namespace for tasks, callback run id for
        # chats and tools; entries leave when their span ends, so these stay as small as the
        # work in flight.
        self._tasks: dict[str, Task] = {}
        self._task_runs: dict[UUID, str] = {}
        self._tools: dict[UUID, Tool] = {}
        self._tools_by_call: dict[str, Tool] = {}
        self.chats: dict[UUID, Chat] = {}
        """Chat calls in flight by callback run id; the handler reads it on every chunk."""
        # The stream's view, in stream order: open task keys per namespace, open tool-call ids per
        # task key.
        self._open_tasks: dict[tuple[str, ...], list[str]] = {}
        self._open_calls: dict[str | None, list[str]] = {}

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

    @staticmethod
    def task_key(metadata: dict[str, Any] | None) -> str | None:
        """The key of the task a callback's metadata belongs to: its checkpoint namespace."""
        if not metadata:
            return None
        ns = metadata.get("langgraph_checkpoint_ns")
        return ns if isinstance(ns, str) and ns else None

    # ---- tasks (callbacks) --------------------------------------------------------------------

    def is_task_run(self, run_id: UUID) -> bool:
        """Whether ``run_id`` is a node run this recorder opened a task span for."""
        return run_id in self._task_runs

    def task_started(self, run_id: UUID, metadata: dict[str, Any]) -> None:
        """A node's runnable started (``on_chain_start`` whose name is the node's)."""
        key = self.task_key(metadata)
        if key is None or self._finished:
            return
        now = time.time_ns()
        with self._lock:
            if key in self._tasks:  # a subgraph named like its node starts a second chain
                return
            parent_key = key.rpartition(NS_SEP)[0] or None
            node = str(metadata.get("langgraph_node", ""))
            attributes: dict[str, AttributeValue] = {
                names.LANGGRAPH_NODE: node,
                names.LANGGRAPH_TASK_ID: key.rpartition(":")[2],
                names.LANGGRAPH_CHECKPOINT_NS: key,
            }
            step = metadata.get("langgraph_step")
            if isinstance(step, int):
                attributes[names.LANGGRAPH_STEP] = step
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
                metric_attributes={names.LANGGRAPH_NODE: node},
            )
            self._task_runs[run_id] = key

    def task_ended(self, run_id: UUID, error: BaseException | None) -> None:
        """A node's runnable returned or raised."""
        now = time.time_ns()
        with self._lock:
            key = self._task_runs.pop(run_id, None)
            task = self._tasks.get(key) if key is not None else None
            if task is None or task.end_ns is not None:
                return
            task.end_ns = now
            if error is not None and is_interrupt(error):
                self._interrupt(task.span, error, now)
            elif is_failure(error):
                task.error = error
            self._maybe_end(task)

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

    # ---- tools (callbacks) --------------------------------------------------------------------

    def tool_started(
        self,
        run_id: UUID,
        metadata: dict[str, Any] | None,
        name: str,
        call_id: str,
        arguments: Any,
        *,
        writer: Any = None,
    ) -> None:
        """A tool started (``on_tool_start``); ``writer`` will mark it in the stream, if given."""
        if self._finished:
            return
        now = time.time_ns()
        task_key = self.task_key(metadata)
        attributes: dict[str, AttributeValue] = {
            names.GEN_AI_OPERATION_NAME: names.OP_EXECUTE_TOOL,
            names.GEN_AI_TOOL_NAME: name,
            names.GEN_AI_TOOL_CALL_ID: call_id,
        }
        self._put_content(attributes, names.GEN_AI_TOOL_CALL_ARGUMENTS, arguments)
        with self._lock:
            span = self._tracer.start_span(
                names.SPAN_EXECUTE_TOOL.format(tool=name),
                context=self._parent_context(task_key),
                kind=SpanKind.INTERNAL,
                attributes=attributes,
                start_time=now,
            )
            tool = Tool(
                span=span,
                context=trace.set_span_in_context(span),
                parent_key=task_key,
                start_ns=now,
                # A marked call's span waits for its closing mark, so queued writes land on it.
                awaits_stream_end=writer is not None,
                task_key=task_key,
                call_id=call_id,
                writer=writer,
                metric_attributes={
                    names.GEN_AI_OPERATION_NAME: names.OP_EXECUTE_TOOL,
                    names.GEN_AI_TOOL_NAME: name,
                },
            )
            self._tools[run_id] = tool
            self._tools_by_call[call_id] = tool
            task = self._tasks.get(task_key) if task_key is not None else None
            if task is not None and writer is None:
                task.unmarked_tool_calls += 1
            self._layout += 1

    def own_writer(self, task_key: str | None, writer: Any) -> Any:
        """``writer`` if it is this run's own stream writer, so that marks it writes reach this
        run's stream and no other; else ``None``.

        A task of the run's root graph writes through the run's writer (``marks_tools`` is set
        only for a run that is not itself inside another graph), so a writer seen there is
        remembered. Deeper down, a node may stream a graph of its own, whose writer feeds the
        node's code rather than this run: only the writer already seen at the root is trusted.
        """
        if writer is None:
            return None
        if task_key is not None and NS_SEP not in task_key:
            self.stream_writer = writer
            return writer
        return writer if writer is self.stream_writer else None

    def tool_ended(
        self, run_id: UUID, output: Any, error: BaseException | None
    ) -> tuple[Any, ToolMark] | None:
        """A tool returned or raised; returns the writer and mark that close its ``ToolMark``,
        if it has one (the caller writes it)."""
        now = time.time_ns()
        with self._lock:
            tool = self._tools.pop(run_id, None)
            if tool is None or tool.end_ns is not None:
                return None
            tool.end_ns = now
            if is_failure(error):
                tool.error = error
            elif error is None and self._capture is not None:
                result: dict[str, AttributeValue] = {}
                self._put_content(
                    result, names.GEN_AI_TOOL_CALL_RESULT, getattr(output, "content", output)
                )
                tool.span.set_attributes(result)
            self._maybe_end(tool)
            if tool.writer is None:
                return None
            return tool.writer, ToolMark(tool.call_id, opened=False)

    def tool_parent(self, run_id: UUID | None) -> Context | None:
        """The context of the running tool ``run_id``, for a model called inside a tool."""
        if run_id is None:
            return None
        tool = self._tools.get(run_id)
        return tool.context if tool is not None else None

    # ---- chats (callbacks) --------------------------------------------------------------------

    def chat_started(
        self,
        run_id: UUID,
        parent_run_id: UUID | None,
        metadata: dict[str, Any] | None,
        model: str,
        provider: str | None,
        messages: Any,
        *,
        start_ns: int | None = None,
    ) -> None:
        """A chat model call started (``on_chat_model_start``), now or at ``start_ns``."""
        if self._finished:
            return
        now = time.time_ns() if start_ns is None else start_ns
        attributes: dict[str, AttributeValue] = {
            names.GEN_AI_OPERATION_NAME: names.OP_CHAT,
            names.GEN_AI_REQUEST_MODEL: model,
        }
        if provider:
            attributes[names.GEN_AI_PROVIDER_NAME] = provider
        if messages is not None:  # a feed that never saw the prompt records none
            self._put_content(attributes, names.GEN_AI_INPUT_MESSAGES, messages)
        parent = self.tool_parent(parent_run_id) or self._parent_context(self.task_key(metadata))
        span = self._tracer.start_span(
            names.SPAN_CHAT.format(model=model),
            context=parent,
            kind=SpanKind.CLIENT,
            attributes=attributes,
            start_time=now,
        )
        chat = Chat(self, span, now, self._chunk_budget, self._options.capture_content)
        chat.attributes = {
            names.GEN_AI_OPERATION_NAME: names.OP_CHAT,
            names.GEN_AI_REQUEST_MODEL: model,
        }
        if provider:
            chat.attributes[names.GEN_AI_PROVIDER_NAME] = provider
        self.chats[run_id] = chat

    def chat_ended(self, run_id: UUID, message: Any, error: BaseException | None) -> None:
        """A chat call returned (``message`` is its final message, if any) or raised."""
        now = time.time_ns()
        chat = self.chats.pop(run_id, None)
        if chat is None:
            return
        self._end_chat(chat, now, message, error)

    def _end_chat(self, chat: Chat, now: int, message: Any, error: BaseException | None) -> None:
        span = chat.span
        # One set_attributes call: each SDK call takes the span's lock and checks its values.
        attributes: dict[str, AttributeValue] = {names.GEN_AI_REQUEST_STREAM: chat.count > 0}
        if chat.count:
            self._write_chunk_events(chat)
            attributes[names.OTELSTREAM_CHUNK_COUNT_TOTAL] = chat.count
            attributes[names.OTELSTREAM_CHUNK_GAP_MEAN] = chat.mean_gap_ns / 1e9
            attributes[names.OTELSTREAM_CHUNK_GAP_MAX] = chat.max_gap_ns / 1e9
        if chat.stall_onset_ns is not None:
            stalled_attributes(attributes, chat.stall_onset_ns, now)
        ttft = None
        if chat.content_ns is not None:
            ttft = (chat.content_ns - chat.start_ns) / 1e9
            attributes[names.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] = ttft
        usage = _response_attributes(attributes, message) if message is not None else {}
        if self._capture is not None and getattr(message, "content", None) is not None:
            # Only a real message has content to record (a stream-only feed may pass metadata).
            self._put_content(attributes, names.GEN_AI_OUTPUT_MESSAGES, [message])
        span.set_attributes(attributes)
        metric_attributes = chat.attributes
        duration_attributes = metric_attributes
        if error is not None and is_failure(error):
            error_type = error_attributes(span, error)
            duration_attributes = {**metric_attributes, names.ERROR_TYPE: error_type}
        span.end(end_time=now)
        context = trace.set_span_in_context(span)
        instruments = self._instruments
        if ttft is not None:
            instruments.time_to_first_chunk.record(ttft, metric_attributes, context=context)
        if chat.count > 1:
            instruments.time_per_output_chunk.record(
                chat.mean_gap_ns / 1e9, metric_attributes, context=context
            )
        for token_type, value in usage.items():
            instruments.token_usage.record(
                value, {**metric_attributes, names.GEN_AI_TOKEN_TYPE: token_type}, context=context
            )
        instruments.operation_duration.record(
            (now - chat.start_ns) / 1e9, duration_attributes, context=context
        )

    def _write_chunk_events(self, chat: Chat) -> None:
        texts = chat.texts
        add_event = chat.span.add_event
        for start, count, ts in chat.windows():
            attributes: dict[str, AttributeValue] = {
                names.OTELSTREAM_CHUNK_INDEX: start,
                names.OTELSTREAM_CHUNK_COUNT: count,
            }
            if texts is not None:
                self._put_content(
                    attributes,
                    names.OTELSTREAM_CHUNK_TEXT,
                    "".join(texts[start : start + count]),
                    raw=True,
                )
            add_event(names.EVENT_CHUNK, attributes, timestamp=ts)

    # ---- the stream's view (consumer) ---------------------------------------------------------

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

    def tool_mark(self, mark: ToolMark) -> None:
        """A ``ToolMark`` read from the stream: a tool call opened or closed, in stream order."""
        if mark.opened:
            self.tool_call_opened(mark.call_id)
        else:
            self.tool_call_closed(mark.call_id)

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
            tool.seen_stream_end = True
            self._maybe_end(tool)

    def custom(self, ns: tuple[str, ...], payload: Any) -> None:
        """A custom write, attributed to the span that certainly wrote it.

        The write came from one of the tasks open in ``ns`` (the writer drops the task's own
        segment). With exactly one open, it is that task, and within it the one open tool call if
        there is exactly one. Otherwise the event goes on the nearest certain ancestor: the task
        that runs the subgraph ``ns``, or the run.
        """
        now = time.time_ns()
        cached = self._custom_cache
        if cached is not None and cached[0] == ns and cached[1] == self._layout:
            target, exact = cached[2], cached[3]
        else:
            with self._lock:
                target, exact = self._attribute(ns)
                self._custom_cache = (ns, self._layout, target, exact)
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
        self._put_content(attributes, names.OTELSTREAM_CUSTOM_PAYLOAD, payload)
        span = target.span if target is not None else self.span
        span.add_event(names.EVENT_CUSTOM, attributes, timestamp=now)

    def _attribute(self, ns: tuple[str, ...]) -> tuple[Work | None, bool]:
        """The span a custom write from ``ns`` certainly came from, and whether it is exact.

        Holds the lock. The answer holds until ``_layout`` changes: writes in a burst reuse it.
        """
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
                # A tool call the stream does not mark may have written it.
                exact = (
                    target is not None
                    and not calls
                    and not getattr(target, "unmarked_tool_calls", 0)
                )
        if target is None or target.ended:
            exact = False
            target = self._tasks.get(NS_SEP.join(ns)) if ns else None
            if target is not None and target.ended:
                target = None
        return target, exact

    # ---- ending ---------------------------------------------------------------------------------

    def _maybe_end(self, work: Work) -> None:
        """End ``work``'s span once its work ended and the stream has caught up. Holds the lock."""
        if work.ended or work.end_ns is None:
            return
        if work.awaits_stream_end and not work.seen_stream_end and not self._finished:
            return
        self._end_work(work, work.end_ns)

    def _end_work(self, work: Work, end_ns: int) -> None:
        work.ended = True
        self._layout += 1
        span = work.span
        attributes = work.metric_attributes
        if work.error is not None:
            attributes = {**attributes, names.ERROR_TYPE: error_attributes(span, work.error)}
        late = _custom_attributes(work)
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
            self._instruments.operation_duration.record(seconds, attributes, context=context)

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
            for tool in list(self._tools_by_call.values()):
                if not tool.ended:
                    self._end_work(tool, tool.end_ns if tool.end_ns is not None else now)
            # Deepest tasks first, so no parent ends before its child.
            for task in sorted(self._tasks.values(), key=lambda t: -t.key.count(NS_SEP)):
                if not task.ended:
                    self._end_work(task, task.end_ns if task.end_ns is not None else now)
            self._tasks.clear()
            self._tools.clear()
            self._tools_by_call.clear()
            self._task_runs.clear()
            self._open_tasks.clear()
            self._open_calls.clear()
            self._custom_cache = None
        if outcome == names.OUTCOME_COMPLETED and self.interrupted:
            outcome = names.OUTCOME_INTERRUPTED
        span = self.span
        late = _custom_attributes(self._run_writes)
        late[names.OTELSTREAM_OUTCOME] = outcome
        if self.first_content_ns is not None:
            late[names.OTELSTREAM_TIME_TO_FIRST_TOKEN] = (
                self.first_content_ns - self.start_ns
            ) / 1e9
        span.set_attributes(late)
        metric_attributes: dict[str, AttributeValue] = {
            names.GEN_AI_OPERATION_NAME: names.OP_INVOKE_AGENT,
            names.GEN_AI_AGENT_NAME: self.agent_name,
        }
        if error is not None and outcome == names.OUTCOME_ERROR:
            metric_attributes[names.ERROR_TYPE] = error_attributes(span, error)
        span.end(end_time=now)
        self._instruments.operation_duration.record(
            (now - self.start_ns) / 1e9, metric_attributes, context=self._context
        )
