"""A plain graph for the sidecar tests (``langgraph.json``: ``workflow``): two parallel branches
that each write a custom event, joined into a subgraph whose node streams the scripted model and
writes a custom event of its own.

Self-contained like ``agent.py`` (the server's virtualenv has no otelstream); it borrows that
module's scripted chat model.
"""

from __future__ import annotations

import operator
from typing import Annotated, Any, TypedDict

from agent import ScriptedChatModel
from langchain_core.messages import HumanMessage
from langgraph.config import get_stream_writer
from langgraph.graph import START, StateGraph

model = ScriptedChatModel()


class State(TypedDict, total=False):
    topic: str
    notes: Annotated[list[str], operator.add]
    answer: str


def branch_a(state: State) -> dict[str, Any]:
    get_stream_writer()({"branch": "a"})
    return {"notes": ["a"]}


def branch_b(state: State) -> dict[str, Any]:
    get_stream_writer()({"branch": "b"})
    return {"notes": ["b"]}


def write(state: State) -> dict[str, Any]:
    get_stream_writer()({"writing": True})
    message = model.invoke([HumanMessage(content=state.get("topic", "hello"))])
    return {"answer": str(message.content)}


def _subgraph() -> Any:
    builder = StateGraph(State)
    builder.add_node("write", write)
    builder.add_edge(START, "write")
    return builder.compile()


def build() -> Any:
    builder = StateGraph(State)
    builder.add_node("branch_a", branch_a)
    builder.add_node("branch_b", branch_b)
    builder.add_node("writer", _subgraph())
    builder.add_edge(START, "branch_a")
    builder.add_edge(START, "branch_b")
    builder.add_edge(["branch_a", "branch_b"], "writer")
    return builder.compile(name="workflow")


graph = build()
