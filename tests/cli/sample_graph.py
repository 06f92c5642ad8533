"""A small graph for ``otelstream run`` tests: one node calls a scripted streaming model."""

from __future__ import annotations

from typing import Any

from langchain_core.messages import AIMessage
from langgraph.config import get_stream_writer
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.types import RetryPolicy

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


class _Flaky(Exception):
    """A transient failure."""


def build_retried() -> Any:
    """Build a graph whose node fails on its first attempt and succeeds when LangGraph retries."""
    attempts: list[int] = []

    def flaky(state: MessagesState) -> dict[str, Any]:
        attempts.append(1)
        if len(attempts) == 1:
            msg = "the first attempt failed on purpose"
            raise _Flaky(msg)
        return {}

    builder = StateGraph(MessagesState)
    builder.add_node(
        "flaky",
        flaky,
        retry_policy=RetryPolicy(
            max_attempts=2, initial_interval=0.01, jitter=False, retry_on=_Flaky
        ),
    )
    builder.add_edge(START, "flaky")
    return builder.compile(name="retried_graph")


graph = build()
