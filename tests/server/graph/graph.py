"""The graphs the in-server tests run on ``langgraph dev`` (``langgraph.json``: ``pipeline``,
and ``approval`` for resumed runs).

Two parallel branches (``left``, ``right``) join into ``research``, a subgraph whose ``model``
node streams a fake chat model (first chunk after ``FIRST_CHUNK_DELAY``), then ``finish``. Every
node, the subgraph's included, makes one custom write ``{"node": <name>}``, so a test can check
that each write sits on the span of the node that wrote it. The model comes from
``otelstream.testing``: the server's venv has otelstream installed (in-server tracing needs it).
"""

from __future__ import annotations

import operator
from typing import Annotated, Any, TypedDict

from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage
from langgraph.config import get_stream_writer
from langgraph.graph import END, START, StateGraph
from langgraph.types import interrupt

from otelstream.testing import FakeStreamingChatModel

FIRST_CHUNK_DELAY = 0.3
MODEL_NAME = "server-fake"
ANSWER = "Both branches agree on the answer."
NODES = ("left", "right", "research", "model", "finish")


class State(TypedDict, total=False):
    topic: str
    notes: Annotated[list[str], operator.add]
    answer: str


model = FakeStreamingChatModel(
    responses=[AIMessage(content=ANSWER)],
    model_name=MODEL_NAME,
    first_chunk_delay=FIRST_CHUNK_DELAY,
    chunk_delay=0.005,
)


async def left(state: State) -> dict[str, Any]:
    get_stream_writer()({"node": "left"})
    return {"notes": [f"left looked at {state.get('topic', '')}"]}


async def right(state: State) -> dict[str, Any]:
    get_stream_writer()({"node": "right"})
    return {"notes": [f"right looked at {state.get('topic', '')}"]}


async def model_node(state: State) -> dict[str, Any]:
    get_stream_writer()({"node": "model"})
    # The node streams the model itself, so the chat call streams whatever modes the run has.
    answer: AIMessageChunk | None = None
    async for chunk in model.astream([HumanMessage(content="; ".join(state.get("notes", [])))]):
        answer = chunk if answer is None else answer + chunk
    return {"answer": str(answer.content if answer is not None else "")}


def _research() -> Any:
    builder = StateGraph(State)
    builder.add_node("model", model_node)
    builder.add_edge(START, "model")
    builder.add_edge("model", END)
    return builder.compile(name="research")


research_graph = _research()


async def research(state: State) -> dict[str, Any]:
    get_stream_writer()({"node": "research"})
    result = await research_graph.ainvoke(state)
    return {"answer": result["answer"]}


async def finish(state: State) -> dict[str, Any]:
    get_stream_writer()({"node": "finish"})
    return {"answer": state.get("answer", "")}


def build() -> Any:
    builder = StateGraph(State)
    builder.add_node("left", left)
    builder.add_node("right", right)
    builder.add_node("research", research)
    builder.add_node("finish", finish)
    builder.add_edge(START, "left")
    builder.add_edge(START, "right")
    builder.add_edge(["left", "right"], "research")
    builder.add_edge("research", "finish")
    builder.add_edge("finish", END)
    return builder.compile(name="pipeline")


graph = build()


class Approval(TypedDict, total=False):
    request: str
    verdict: str


async def ask(state: Approval) -> dict[str, Any]:
    # Pauses the run; a later run resumes it with Command(resume=...).
    return {"verdict": str(interrupt({"request": state.get("request", "")}))}


async def done(state: Approval) -> dict[str, Any]:
    return {"verdict": f"{state.get('verdict', '')}!"}


def build_approval() -> Any:
    """``ask -> done``: ``ask`` waits for a human (``langgraph.json``: ``approval``)."""
    builder = StateGraph(Approval)
    builder.add_node("ask", ask)
    builder.add_node("done", done)
    builder.add_edge(START, "ask")
    builder.add_edge("ask", "done")
    builder.add_edge("done", END)
    return builder.compile(name="approval")


approval = build_approval()
