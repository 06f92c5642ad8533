"""A small graph for ``otelstream run`` tests: one node calls a scripted streaming model."""

from __future__ import annotations

from typing import Any

from langchain_core.messages import AIMessage
from langgraph.config import get_stream_writer
from langgraph.graph import START, MessagesState, StateGraph

from otelstream.testing import FakeStreamingChatModel

NOT_A_GRAPH = {"nodes": ["answer"]}


def _answer(state: MessagesState) -> dict[str, Any]:
    get_stream_writer()({"step": "thinking"})
    model = FakeStreamingChatModel(
        model_name="sample-model",
        first_chunk_delay=0.05,
        chunk_delay=0.01,
        responses=[AIMessage(content="The sample graph answers in a few streamed words.")],
    )
    return {"messages": [model.invoke(state["messages"])]}


def _fail(state: MessagesState) -> dict[str, Any]:
    msg = "the sample graph failed on purpose"
    raise RuntimeError(msg)


def build() -> Any:
    """Build the sample graph (a zero-argument factory, as ``run`` accepts)."""
    builder = StateGraph(MessagesState)
    builder.add_node("answer", _answer)
    builder.add_edge(START, "answer")
    return builder.compile(name="sample_graph")


def build_failing() -> Any:
    """Build a graph whose only node raises."""
    builder = StateGraph(MessagesState)
    builder.add_node("fail", _fail)
    builder.add_edge(START, "fail")
    return builder.compile(name="failing_graph")


graph = build()
