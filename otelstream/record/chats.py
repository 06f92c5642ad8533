"""Chat spans of one run: one per LLM call, with its streamed chunks as timed windows, its
time to first chunk, its usage and, with content capture, its messages."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from opentelemetry import trace
from opentelemetry.trace import SpanKind

from otelstream import names
from otelstream.record.tasks import task_key
from otelstream.record.work import Chat, error_attributes, is_failure, stalled_attributes

if TYPE_CHECKING:
    from uuid import UUID

    from opentelemetry.context import Context
    from opentelemetry.trace import Tracer
    from opentelemetry.util.types import AttributeValue

    from otelstream.options import Options
    from otelstream.record.content import Capture
    from otelstream.record.instruments import Instruments
    from otelstream.record.work import Work


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


class ChatSpans:
    """The chat part of ``RunRecorder`` (a mixin: the state is the recorder's)."""

    _finished: bool
    _tracer: Tracer
    _instruments: Instruments
    _options: Options
    _capture: Capture | None
    _chunk_budget: int
    first_content_ns: int | None

    def _init_chats(self) -> None:
        self.chats: dict[UUID, Chat] = {}
        """Chat calls in flight by callback run id; the handler reads it on every chunk."""

    if TYPE_CHECKING:

        def _parent_context(self, key: str | None) -> Context: ...

        def tool_parent(self, run_id: UUID | None) -> Context | None: ...

        def _owner(self, run_id: UUID | None, key: str | None) -> Work | None: ...

        def _progressed(self, work: Work | None, now: int) -> None: ...

        def _put_content(
            self, attributes: dict[str, AttributeValue], key: str, value: Any, *, raw: bool = False
        ) -> None: ...

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
        key = task_key(metadata)
        parent = self.tool_parent(parent_run_id) or self._parent_context(key)
        # The tool call or task making the call: its start, chunks and end are their progress.
        owner = self._owner(parent_run_id, key)
        self._progressed(owner, now)
        span = self._tracer.start_span(
            names.SPAN_CHAT.format(model=model),
            context=parent,
            kind=SpanKind.CLIENT,
            attributes=attributes,
            start_time=now,
        )
        chat = Chat(self, span, now, self._chunk_budget, self._options.capture_content, owner)
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
        self._progressed(chat.owner, now)
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
