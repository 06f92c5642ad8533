"""LangChain callback handlers that feed a ``RunRecorder`` from inside the running graph.

Placed in the config of each traced stream call, they are inherited by every node, model and
tool the run executes, subgraphs and nested graphs included, and run inline (never on a thread
pool) so a chunk costs one method call. Each callback is guarded: a failure in otelstream is
logged and swallowed, or re-raised in strict mode (the test suite).

A chat model's chunks arrive one of two ways: ``on_llm_new_token`` (v1 streaming, and models
that report their tokens themselves) or ``on_stream_event`` (the v2 message-event protocol that
LangGraph's v3 streaming drives models through). A call is timed from whichever reports first,
never from both.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.tracers._streaming import _StreamingCallbackHandler

from otelstream import _internal

_time_ns = time.time_ns  # one lookup fewer per chunk

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator
    from uuid import UUID

    from langchain_core.outputs import ChatGenerationChunk, GenerationChunk, LLMResult

    from otelstream.record.run import RunRecorder
    from otelstream.record.work import Chat


def _model_name(serialized: dict[str, Any] | None, metadata: dict[str, Any], kwargs: Any) -> str:
    name = metadata.get("ls_model_name")
    if isinstance(name, str) and name:
        return name
    params = kwargs.get("invocation_params") or {}
    for key in ("model", "model_name", "model_id"):
        value = params.get(key)
        if isinstance(value, str) and value:
            return value
    return str((serialized or {}).get("name") or "unknown")


class SpanCallbackHandler(BaseCallbackHandler):
    """Feeds a run's recorder: node runs, chat calls and their chunks, tool calls."""

    run_inline = True
    # Plain class attributes instead of BaseCallbackHandler's properties: LangChain reads one for
    # every event it dispatches to every handler, each streamed chunk included. Retriever, retry
    # and custom events are nothing otelstream records, so it is not called for them at all.
    ignore_llm = False
    ignore_chain = False
    ignore_chat_model = False
    ignore_agent = False  # LangChain dispatches tool events under this one
    ignore_retriever = True
    ignore_retry = True
    ignore_custom_event = True

    def __init__(self, recorder: RunRecorder) -> None:
        self.recorder = recorder
        self._chats = recorder.chats
        # The chat that got the last chunk: chunks of one call come one after another, and an
        # identity test is cheaper than hashing its UUID for every chunk.
        self._last: tuple[UUID | None, Chat | None] = (None, None)

    @property
    def raise_error(self) -> bool:  # type: ignore[override]
        """In strict mode LangChain must not swallow our re-raised internal errors."""
        return _internal.is_strict()

    # ---- nodes --------------------------------------------------------------------------------

    def on_chain_start(
        self,
        serialized: dict[str, Any] | None,
        inputs: Any,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        # LangGraph runs each node as a chain named after the node (what its own messages mode
        # keys on); every other chain is internal plumbing.
        if metadata is None or kwargs.get("name") != metadata.get("langgraph_node"):
            return
        try:
            self.recorder.task_started(run_id, metadata)
            # A node starting inside another node's subgraph is that node's progress.
            self.recorder.node_progress(run_id)
        except Exception:
            _internal.internal_error("on_chain_start")

    def on_chain_end(self, outputs: Any, *, run_id: UUID, **kwargs: Any) -> None:
        if not self.recorder.is_task_run(run_id):
            return
        try:
            self.recorder.node_progress(run_id)
            self.recorder.task_ended(run_id, None)
        except Exception:
            _internal.internal_error("on_chain_end")

    def on_chain_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        if not self.recorder.is_task_run(run_id):
            return
        try:
            self.recorder.node_progress(run_id)
            self.recorder.task_ended(run_id, error)
        except Exception:
            _internal.internal_error("on_chain_error")

    # ---- chat models --------------------------------------------------------------------------

    def on_chat_model_start(
        self,
        serialized: dict[str, Any],
        messages: list[list[Any]],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        try:
            meta = metadata or {}
            provider = meta.get("ls_provider")
            self.recorder.chat_started(
                run_id,
                parent_run_id,
                meta,
                _model_name(serialized, meta, kwargs),
                provider if isinstance(provider, str) else None,
                messages[0] if len(messages) == 1 else messages,
            )
        except Exception:
            _internal.internal_error("on_chat_model_start")

    def on_llm_new_token(
        self,
        token: str | list[str | dict[str, Any]],
        *,
        chunk: GenerationChunk | ChatGenerationChunk | None = None,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        # Every streamed chunk passes here. What follows is Chat.receive with ChunkWindows.add
        # written out: two calls fewer per chunk.
        last_run, chat = self._last
        if last_run is not run_id:
            chat = self._chats.get(run_id)
            self._last = (run_id, chat)
        if chat is None or chat.via_events:
            return
        try:
            now = _time_ns()
            n = chat.count
            chat.count = n + 1
            if n:
                gap = now - chat.last_ns
                if gap > chat.max_gap_ns:  # noqa: PLR1730 - cheaper than max() here
                    chat.max_gap_ns = gap
                chat.last_ns = now
                if n >= chat.next_window:
                    chat.open_window(n, now)
            else:
                chat.first_ns = chat.last_ns = now
                chat.open_window(0, now)
            if chat.watch:
                chat.note(token, chunk, now)
        except Exception:
            _internal.internal_error("on_llm_new_token")

    def on_stream_event(
        self,
        event: Any,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        # v3 streaming: each content-block delta is a chunk, unless the model already reported
        # this call's chunks through on_llm_new_token (which it does before its events).
        if type(event) is not dict or event.get("event") != "content-block-delta":
            return
        chat = self._chats.get(run_id)
        if chat is None or (chat.count and not chat.via_events):
            return
        try:
            chat.via_events = True
            delta = event.get("delta") or {}
            kind = delta.get("type")
            text = delta.get("text") if kind == "text-delta" else None
            chat.receive(text or "", _TOOL_CALL if kind == "tool-call-delta" else None)
        except Exception:
            _internal.internal_error("on_stream_event")

    def on_llm_end(self, response: LLMResult, *, run_id: UUID, **kwargs: Any) -> None:
        try:
            generations = response.generations
            message = None
            if generations and generations[0]:
                message = getattr(generations[0][0], "message", None)
            self.recorder.chat_ended(run_id, message, None)
        except Exception:
            _internal.internal_error("on_llm_end")

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        try:
            self.recorder.chat_ended(run_id, None, error)
        except Exception:
            _internal.internal_error("on_llm_error")

    # ---- tools --------------------------------------------------------------------------------

    def on_tool_start(
        self,
        serialized: dict[str, Any] | None,
        input_str: str,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        inputs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        try:
            # The same id LangGraph's `tools` stream mode reports for this call.
            call_id = str(kwargs.get("tool_call_id") or run_id)
            name = (serialized or {}).get("name") or kwargs.get("name") or "unknown"
            arguments = inputs if inputs is not None else input_str
            self.recorder.tool_started(run_id, metadata, str(name), call_id, arguments)
        except Exception:
            _internal.internal_error("on_tool_start")

    def on_tool_end(self, output: Any, *, run_id: UUID, **kwargs: Any) -> None:
        try:
            self.recorder.tool_ended(run_id, output, None)
        except Exception:
            _internal.internal_error("on_tool_end")

    def on_tool_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        try:
            self.recorder.tool_ended(run_id, None, error)
        except Exception:
            _internal.internal_error("on_tool_error")


class _ToolCallChunk:
    """What ``Chat.note`` reads from a chunk that carries a tool call (a ``tool-call-delta``)."""

    __slots__ = ()

    class message:
        tool_call_chunks = (True,)


_TOOL_CALL = _ToolCallChunk()


class StreamingSpanCallbackHandler(SpanCallbackHandler, _StreamingCallbackHandler[Any]):
    """The handler when chunks are traced: like LangGraph's ``messages`` mode, its presence makes
    chat models stream, so that every chunk reaches ``on_llm_new_token``."""

    def tap_output_aiter(self, run_id: UUID, output: AsyncIterator[Any]) -> AsyncIterator[Any]:
        return output

    def tap_output_iter(self, run_id: UUID, output: Iterator[Any]) -> Iterator[Any]:
        return output
