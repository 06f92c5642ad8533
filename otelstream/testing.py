"""A scripted chat model that streams through LangChain's real interfaces: for tests and the demo.

It needs no API key and no network. Each call answers with the next scripted ``AIMessage``:
its text streams word by word (whitespace kept, so chunks join back to the text), then its tool
calls stream as tool-call chunks, then a last chunk carries token usage and the finish reason.
``bind_tools`` accepts any tools, so ``langchain.agents.create_agent`` can drive it.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from typing import TYPE_CHECKING, Any, cast

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import ConfigDict, Field, PrivateAttr

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator, Sequence

    from langchain_core.callbacks import (
        AsyncCallbackManagerForLLMRun,
        CallbackManagerForLLMRun,
    )
    from langchain_core.language_models import LangSmithParams
    from langchain_core.language_models.base import LanguageModelInput
    from langchain_core.messages.ai import UsageMetadata
    from langchain_core.runnables import Runnable


class FakeStreamingChatModel(BaseChatModel):
    """Answers with scripted messages, streaming them chunk by chunk.

    Attributes:
        responses: The answers, in call order; the last one repeats once the script runs out.
        model_name: Reported as ``gen_ai.request.model``.
        first_chunk_delay: Seconds before the first chunk (the model's time to first token).
        chunk_delay: Seconds between chunks.
        error: Raised by every call instead of answering, when set.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    responses: list[AIMessage] = Field(default_factory=list)
    model_name: str = "fake-model"
    first_chunk_delay: float = 0.0
    chunk_delay: float = 0.0
    error: Exception | None = None
    _calls: int = PrivateAttr(default=0)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    @property
    def _llm_type(self) -> str:
        return "otelstream-fake"

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        return {
            "ls_provider": "otelstream-fake",
            "ls_model_name": self.model_name,
            "ls_model_type": "chat",
        }

    def bind_tools(
        self, tools: Sequence[Any], **kwargs: Any
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Accept any tools: the script decides which tools are called."""
        return self

    def _next(self) -> AIMessage:
        if self.error is not None:
            raise self.error
        if not self.responses:
            return AIMessage(content="")
        with self._lock:
            index = min(self._calls, len(self.responses) - 1)
            self._calls += 1
        return self.responses[index]

    def _chunks(self, message: AIMessage) -> list[AIMessageChunk]:
        text = message.content if isinstance(message.content, str) else ""
        chunks = [AIMessageChunk(content=piece) for piece in re.findall(r"\S+\s*|\s+", text)]
        for index, call in enumerate(message.tool_calls):
            chunks.append(
                AIMessageChunk(
                    content="",
                    tool_call_chunks=[
                        {
                            "name": call["name"],
                            "args": json.dumps(call["args"]),
                            "id": call["id"],
                            "index": index,
                            "type": "tool_call_chunk",
                        }
                    ],
                )
            )
        words = max(len(chunks), 1)
        chunks.append(
            AIMessageChunk(
                content="",
                # A cast, not a call: langchain-core 1.8 marks the optional keys with typing's
                # NotRequired, which a type check for Python 3.10 does not know.
                usage_metadata=cast(
                    "UsageMetadata",
                    {"input_tokens": 10, "output_tokens": words, "total_tokens": 10 + words},
                ),
                response_metadata={
                    "finish_reason": "tool_calls" if message.tool_calls else "stop",
                    "model_name": self.model_name,
                },
                chunk_position="last",
            )
        )
        return chunks

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        message = self._next()
        time.sleep(self.first_chunk_delay)
        merged = AIMessage(
            content=message.content,
            tool_calls=message.tool_calls,
            usage_metadata={"input_tokens": 10, "output_tokens": 1, "total_tokens": 11},
            response_metadata={"finish_reason": "stop", "model_name": self.model_name},
        )
        return ChatResult(generations=[ChatGeneration(message=merged)])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        chunks = self._chunks(self._next())
        for index, chunk in enumerate(chunks):
            delay = self.first_chunk_delay if index == 0 else self.chunk_delay
            if delay:
                time.sleep(delay)
            yield ChatGenerationChunk(message=chunk)

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        chunks = self._chunks(self._next())
        for index, chunk in enumerate(chunks):
            delay = self.first_chunk_delay if index == 0 else self.chunk_delay
            if delay:
                await asyncio.sleep(delay)
            yield ChatGenerationChunk(message=chunk)


def tool_call(name: str, args: dict[str, Any] | None = None, *, call_id: str) -> AIMessage:
    """A scripted answer that calls one tool."""
    return AIMessage(content="", tool_calls=[{"name": name, "args": args or {}, "id": call_id}])


def tool_calls(*calls: tuple[str, dict[str, Any], str]) -> AIMessage:
    """A scripted answer that calls several tools at once: ``(name, args, call id)`` each."""
    return AIMessage(
        content="",
        tool_calls=[{"name": name, "args": args, "id": call_id} for name, args, call_id in calls],
    )
