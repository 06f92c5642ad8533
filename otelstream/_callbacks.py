"""LangChain callback handlers that feed a ``RunRecorder`` from inside the running graph.

Placed in the config of each traced stream call, they are inherited by every node, model and
tool the run executes, subgraphs and nested graphs included, and run inline (never on a thread
pool) so a chunk costs one method call. Each callback is guarded: a failure in otelstream is
logged and swallowed, or re-raised in strict mode (the test suite).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.tracers._streaming import _StreamingCallbackHandler

from otelstream import _internal

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator
    from uuid import UUID

    from langchain_core.outputs import ChatGenerationChunk, GenerationChunk, LLMResult

    from otelstream._record import RunRecorder


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

    def __init__(self, recorder: RunRecorder) -> None:
        self.recorder = recorder
        self._chats = recorder.chats

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
        except Exception:
            _internal.internal_error("on_chain_start")

    def on_chain_end(self, outputs: Any, *, run_id: UUID, **kwargs: Any) -> None:
        if not self.recorder.is_task_run(run_id):
            return
        try:
            self.recorder.task_ended(run_id, None)
        except Exception:
            _internal.internal_error("on_chain_end")

    def on_chain_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        if not self.recorder.is_task_run(run_id):
            return
        try:
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
        # Every streamed chunk passes here: one dict lookup, then the chat's own bookkeeping.
        chat = self._chats.get(run_id)
        if chat is None:
            return
        try:
            chat.add(token, chunk)
        except Exception:
            _internal.internal_error("on_llm_new_token")

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
            call_id = kwargs.get("tool_call_id") or str(run_id)
            name = (serialized or {}).get("name") or kwargs.get("name") or "unknown"
            arguments = inputs if inputs is not None else input_str
            self.recorder.tool_started(run_id, metadata, str(name), str(call_id), arguments)
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


class StreamingSpanCallbackHandler(SpanCallbackHandler, _StreamingCallbackHandler[Any]):
    """The handler when chunks are traced: like LangGraph's ``messages`` mode, its presence makes
    chat models stream, so that every chunk reaches ``on_llm_new_token``."""

    def tap_output_aiter(self, run_id: UUID, output: AsyncIterator[Any]) -> AsyncIterator[Any]:
        return output

    def tap_output_iter(self, run_id: UUID, output: Iterator[Any]) -> Iterator[Any]:
        return output
