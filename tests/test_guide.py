"""LangChain's streaming guide, end to end: the caller's chunks as in the guide, plus the spans."""

from __future__ import annotations

import sys
from typing import Any

from helpers import by_op, events, one, parent_of, run_span
from langchain.agents import create_agent
from langchain_core.messages import AIMessage, AIMessageChunk, ToolMessage
from langchain_core.tools import tool
from langgraph.config import get_stream_writer

import otelstream
from otelstream import names
from otelstream.testing import FakeStreamingChatModel, tool_call

QUESTION = {"messages": [{"role": "user", "content": "What is the weather in SF?"}]}

# create_agent's async model node calls the model without its config. Before Python 3.11 asyncio
# cannot carry that config to the call through the context, so no callback sees the model run
# (LangGraph's "messages" mode yields no tokens there either) and there is no chat span to record.
ASYNC_AGENT_CHATS = 2 if sys.version_info >= (3, 11) else 0


@tool
def get_weather(city: str) -> str:
    """Get weather for a given city."""
    return f"It's always sunny in {city}!"


@tool
def get_weather_with_progress(city: str) -> str:
    """Get weather for a given city, reporting progress."""
    writer = get_stream_writer()
    writer(f"Looking up data for city: {city}")
    writer("Fetched 10/100 records")
    return f"It's always sunny in {city}!"


def _agent(tracer_provider: Any, tool_: Any) -> Any:
    model = FakeStreamingChatModel(
        responses=[
            tool_call(tool_.name, {"city": "San Francisco"}, call_id="call_1"),
            AIMessage(content="It's always sunny in San Francisco!"),
        ]
    )
    return otelstream.instrument(
        create_agent(model, tools=[tool_]), tracer_provider=tracer_provider
    )


def _check_agent_spans(got: list[Any], tool_name: str, chats: int = 2) -> None:
    run = run_span(got)
    assert run.attributes[names.OTELSTREAM_OUTCOME] == "completed"
    assert len(by_op(got, "chat")) == chats
    tool_span = one(got, f"execute_tool {tool_name}")
    assert tool_span.attributes[names.GEN_AI_TOOL_CALL_ID] == "call_1"
    assert parent_of(got, tool_span).attributes[names.LANGGRAPH_NODE] == "tools"


def test_agent_progress_updates(tracer_provider, spans):
    """stream_mode="updates": one update per step (model, tools, model) and matching spans."""
    agent = _agent(tracer_provider, get_weather)
    steps = []
    for chunk in agent.stream(QUESTION, stream_mode="updates"):
        for step, data in chunk.items():
            steps.append((step, type(data["messages"][-1]).__name__))
    assert steps == [("model", "AIMessage"), ("tools", "ToolMessage"), ("model", "AIMessage")]
    _check_agent_spans(spans(), "get_weather")


async def test_agent_progress_updates_async(tracer_provider, spans):
    """Async: stream_mode="updates" yields the guide's three steps and the same spans."""
    agent = _agent(tracer_provider, get_weather)
    steps = [
        step async for chunk in agent.astream(QUESTION, stream_mode="updates") for step in chunk
    ]
    assert steps == ["model", "tools", "model"]
    _check_agent_spans(spans(), "get_weather", chats=ASYNC_AGENT_CHATS)


def test_llm_tokens_messages(tracer_provider, spans):
    """stream_mode="messages": token chunks with node metadata, counted on the chat spans."""
    agent = _agent(tracer_provider, get_weather)
    tokens: list[str] = []
    per_node: dict[str, int] = {}
    for token, metadata in agent.stream(QUESTION, stream_mode="messages"):
        node = metadata["langgraph_node"]
        if isinstance(token, AIMessageChunk):
            per_node[node] = per_node.get(node, 0) + 1
            tokens.append(token.content)
        else:
            assert isinstance(token, ToolMessage)
    assert "".join(tokens) == "It's always sunny in San Francisco!"
    got = spans()
    _check_agent_spans(got, "get_weather")
    chats = by_op(got, "chat")
    assert sum(c.attributes[names.OTELSTREAM_CHUNK_COUNT_TOTAL] for c in chats) == per_node["model"]
    assert names.OTELSTREAM_TIME_TO_FIRST_TOKEN in run_span(got).attributes


def test_custom_updates(tracer_provider, spans):
    """stream_mode="custom": the tool's writes reach the caller and are events on the tool span."""
    agent = _agent(tracer_provider, get_weather_with_progress)
    chunks = list(agent.stream(QUESTION, stream_mode="custom"))
    assert chunks == ["Looking up data for city: San Francisco", "Fetched 10/100 records"]
    got = spans()
    _check_agent_spans(got, "get_weather_with_progress")
    tool_span = one(got, "execute_tool get_weather_with_progress")
    custom = events(tool_span, names.EVENT_CUSTOM)
    assert len(custom) == 2
    assert [e.attributes[names.OTELSTREAM_CUSTOM_SIZE] for e in custom] == [len(c) for c in chunks]
    assert tool_span.attributes[names.OTELSTREAM_CUSTOM_COUNT] == 2


def test_multiple_modes(tracer_provider, spans):
    """stream_mode=["updates", "custom"]: (mode, chunk) pairs as in the guide, and the spans."""
    agent = _agent(tracer_provider, get_weather_with_progress)
    modes = [mode for mode, _ in agent.stream(QUESTION, stream_mode=["updates", "custom"])]
    assert modes == ["updates", "custom", "custom", "updates", "updates"]
    got = spans()
    _check_agent_spans(got, "get_weather_with_progress")
    assert len(events(one(got, "execute_tool get_weather_with_progress"), names.EVENT_CUSTOM)) == 2


async def test_multiple_modes_async(tracer_provider, spans):
    """Async: stream_mode=["updates", "custom"] yields the guide's pairs and the same spans."""
    agent = _agent(tracer_provider, get_weather_with_progress)
    modes = [m async for m, _ in agent.astream(QUESTION, stream_mode=["updates", "custom"])]
    assert modes == ["updates", "custom", "custom", "updates", "updates"]
    _check_agent_spans(spans(), "get_weather_with_progress", chats=ASYNC_AGENT_CHATS)
