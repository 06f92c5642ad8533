"""The benchmark workloads: real LangGraph graphs driven by scripted, zero-latency chat models.

W1: one LLM call streaming ``w1_chunks`` chunks (``create_agent`` with no tools).
W2: a ``create_agent`` tool loop of ``w2_rounds`` rounds; each tool call writes two custom events
    through ``get_stream_writer``; then a ``w2_answer_chunks``-chunk answer.
W3: W2 consumed with ``stream_mode="updates"`` only.

This module imports only LangChain and LangGraph (and otelstream's test model), so the peers'
separate virtual environment can load it too.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from langchain.agents import create_agent
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.tools import tool
from langgraph.config import get_stream_writer

from otelstream.testing import FakeStreamingChatModel, tool_call

WORKLOADS = ("W1", "W2", "W3")
RICH_MODES = ["updates", "messages", "custom"]


@dataclass(frozen=True)
class Sizes:
    """How big each workload is."""

    w1_chunks: int = 10_000
    w2_rounds: int = 10
    w2_answer_chunks: int = 200

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


QUICK = Sizes(w1_chunks=200, w2_rounds=2, w2_answer_chunks=20)
FULL = Sizes()


@tool
def lookup(query: str) -> str:
    """Look something up, reporting progress as custom stream events."""
    writer = get_stream_writer()
    writer({"progress": "started", "query": query})
    writer({"progress": "done", "query": query})
    return f"result for {query}"


def _words(count: int) -> str:
    # FakeStreamingChatModel streams one chunk per word (plus one last usage chunk).
    return " ".join(f"w{i}" for i in range(count))


def _script(workload: str, sizes: Sizes) -> list[AIMessage]:
    if workload == "W1":
        return [AIMessage(content=_words(sizes.w1_chunks))]
    calls = [
        tool_call("lookup", {"query": f"q{i}"}, call_id=f"call-{i}") for i in range(sizes.w2_rounds)
    ]
    return [*calls, AIMessage(content=_words(sizes.w2_answer_chunks))]


def stream_mode(workload: str) -> Any:
    """The stream mode each workload is consumed with."""
    return "updates" if workload == "W3" else list(RICH_MODES)


def build(workload: str, sizes: Sizes) -> Any:
    """A fresh compiled graph for one run (the scripted model's answers are consumed by a run)."""
    if workload not in WORKLOADS:
        msg = f"unknown workload {workload!r}; use one of {', '.join(WORKLOADS)}"
        raise ValueError(msg)
    model = FakeStreamingChatModel(responses=_script(workload, sizes))
    tools = [] if workload == "W1" else [lookup]
    return create_agent(model, tools=tools)


def inputs() -> dict[str, Any]:
    """The input of every run."""
    return {"messages": [HumanMessage(content="go")]}
