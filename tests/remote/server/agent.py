"""The graph the test LangGraph server runs (``langgraph.json``, as ``agent`` and ``other``), and
the in-process twin.

Self-contained on purpose: the server's virtualenv has LangGraph but not otelstream, so the fake
chat model lives here. The model's script is chosen by the last human message:

* ``"fast"``: calls ``fast_tool`` (writes two custom events), then answers in a few chunks;
* ``"slow:<seconds>"``: calls ``slow_tool`` that sleeps that long, then answers;
* ``"fail"``: calls ``failing_tool``, which raises ``ValueError``;
* ``"ask"``: calls ``ask_tool``, which interrupts;
* anything else: answers without a tool.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    HumanMessage,
    ToolMessage,
)
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.tools import tool
from langgraph.config import get_stream_writer
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition
from langgraph.types import interrupt

FIRST_CHUNK_DELAY = 0.05
CHUNK_DELAY = 0.01


class ScriptedChatModel(BaseChatModel):
    """Streams a scripted answer chosen by the conversation so far."""

    model_name: str = "remote-fake"

    @property
    def _llm_type(self) -> str:
        return "remote-fake"

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> Any:
        return {
            "ls_provider": "remote-fake",
            "ls_model_name": self.model_name,
            "ls_model_type": "chat",
        }

    def bind_tools(self, tools: Any, **kwargs: Any) -> Any:
        return self

    def _answer(self, messages: list[BaseMessage]) -> AIMessage:
        if isinstance(messages[-1], ToolMessage):
            return AIMessage(content="All done, thanks for waiting.")
        ask = next((m for m in reversed(messages) if isinstance(m, HumanMessage)), None)
        text = str(ask.content) if ask is not None else ""
        if text == "fast":
            call = {"name": "fast_tool", "args": {"city": "Paris"}, "id": "call_fast"}
        elif text.startswith("slow:"):
            call = {"name": "slow_tool", "args": {"seconds": float(text[5:])}, "id": "call_slow"}
        elif text == "fail":
            call = {"name": "failing_tool", "args": {}, "id": "call_fail"}
        elif text == "ask":
            call = {"name": "ask_tool", "args": {}, "id": "call_ask"}
        else:
            return AIMessage(content="Hello there, no tools today.")
        return AIMessage(content="", tool_calls=[call])

    def _chunks(self, message: AIMessage) -> list[AIMessageChunk]:
        text = str(message.content)
        # Whitespace kept, so the chunks join back to the text `_generate` returns.
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
        chunks.append(
            AIMessageChunk(
                content="",
                usage_metadata={
                    "input_tokens": 10,
                    "output_tokens": len(chunks),
                    "total_tokens": 10 + len(chunks),
                },
                response_metadata={
                    "finish_reason": "tool_calls" if message.tool_calls else "stop",
                    "model_name": self.model_name,
                },
                chunk_position="last",
            )
        )
        return chunks

    def _generate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kwargs: Any
    ) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=self._answer(messages))])

    def _stream(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kwargs: Any
    ) -> Any:
        for index, chunk in enumerate(self._chunks(self._answer(messages))):
            time.sleep(FIRST_CHUNK_DELAY if index == 0 else CHUNK_DELAY)
            generation = ChatGenerationChunk(message=chunk)
            if run_manager is not None:
                run_manager.on_llm_new_token(str(chunk.content), chunk=generation)
            yield generation


@tool
def fast_tool(city: str) -> str:
    """Look up the weather quickly."""
    writer = get_stream_writer()
    writer({"progress": "looking up"})
    writer({"progress": "found"})
    return f"Sunny in {city}"


@tool
def slow_tool(seconds: float) -> str:
    """Take a while."""
    time.sleep(seconds)
    return "slow result"


@tool
def failing_tool() -> str:
    """Always fail."""
    msg = "the tool broke"
    raise ValueError(msg)


@tool
def ask_tool() -> str:
    """Ask a human."""
    answer = interrupt("approve?")
    return f"human said {answer}"


TOOLS = [fast_tool, slow_tool, failing_tool, ask_tool]
model = ScriptedChatModel()


def agent_node(state: MessagesState) -> dict[str, Any]:
    return {"messages": [model.invoke(state["messages"])]}


def build() -> Any:
    builder = StateGraph(MessagesState)
    builder.add_node("agent", agent_node)
    builder.add_node("tools", ToolNode(TOOLS))
    builder.add_edge(START, "agent")
    builder.add_conditional_edges("agent", tools_condition)
    builder.add_edge("tools", "agent")
    return builder.compile(name="remote_agent")


graph = build()
