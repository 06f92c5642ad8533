"""The benchmark workloads: real LangGraph graphs driven by scripted chat models.

W1: one LLM call streaming ``w1_chunks`` chunks (``create_agent`` with no tools).
W2: a ``create_agent`` tool loop of ``w2_rounds`` rounds; each tool call writes two custom events
    through ``get_stream_writer``; then a ``w2_answer_chunks``-chunk answer.
W3: W2 consumed with ``stream_mode="updates"`` only.
W4: a realistic agent: W2's shape with the latencies of a hosted model and real tools, so that
    sleeps dominate: ``w4_rounds`` tool rounds, each model call waiting ``w4_first_token_s`` for
    its first chunk and ``w4_token_gap_s`` between chunks, each tool taking ``w4_tool_s`` (and
    writing two custom events), then a ``w4_answer_tokens``-token answer. Consumed like W2.

W1 to W3 use a zero-latency model, so they measure the tracer against LangGraph's own CPU work;
W4 shows what the tracer costs an application whose time goes to waiting on the model.

This module imports only LangChain and LangGraph (and otelstream's test model), so the peers'
separate virtual environment can load it too.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import asdict, dataclass
from typing import Any

from langchain.agents import create_agent
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.tools import BaseTool, StructuredTool, tool
from langgraph.config import get_stream_writer

from otelstream.testing import FakeStreamingChatModel, tool_call

WORKLOADS = ("W1", "W2", "W3", "W4")
RICH_MODES = ["updates", "messages", "custom"]


@dataclass(frozen=True)
class Sizes:
    """How big (and, for W4, how slow) each workload is."""

    w1_chunks: int = 10_000
    w2_rounds: int = 10
    w2_answer_chunks: int = 200
    w4_rounds: int = 2
    w4_answer_tokens: int = 200
    w4_first_token_s: float = 0.3
    w4_token_gap_s: float = 0.02
    w4_tool_s: float = 0.05

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


# W4's quick sizes keep its shape (rounds, custom writes, streamed answer) at 1 ms latencies.
QUICK = Sizes(
    w1_chunks=200,
    w2_rounds=2,
    w2_answer_chunks=20,
    w4_rounds=1,
    w4_answer_tokens=20,
    w4_first_token_s=0.001,
    w4_token_gap_s=0.001,
    w4_tool_s=0.001,
)
FULL = Sizes()


@tool
def lookup(query: str) -> str:
    """Look something up, reporting progress as custom stream events."""
    writer = get_stream_writer()
    writer({"progress": "started", "query": query})
    writer({"progress": "done", "query": query})
    return f"result for {query}"


def slow_lookup(seconds: float) -> BaseTool:
    """``lookup`` that takes ``seconds`` (a sleep, or ``asyncio.sleep`` when awaited)."""

    def run(query: str) -> str:
        writer = get_stream_writer()
        writer({"progress": "started", "query": query})
        time.sleep(seconds)
        writer({"progress": "done", "query": query})
        return f"result for {query}"

    async def arun(query: str) -> str:
        writer = get_stream_writer()
        writer({"progress": "started", "query": query})
        await asyncio.sleep(seconds)
        writer({"progress": "done", "query": query})
        return f"result for {query}"

    return StructuredTool.from_function(
        func=run,
        coroutine=arun,
        name="lookup",
        description="Look something up, reporting progress as custom stream events.",
    )


def _words(count: int) -> str:
    # FakeStreamingChatModel streams one chunk per word (plus one last usage chunk).
    return " ".join(f"w{i}" for i in range(count))


def _script(rounds: int, answer: int) -> list[AIMessage]:
    calls = [tool_call("lookup", {"query": f"q{i}"}, call_id=f"call-{i}") for i in range(rounds)]
    return [*calls, AIMessage(content=_words(answer))]


def stream_mode(workload: str) -> Any:
    """The stream mode each workload is consumed with."""
    return "updates" if workload == "W3" else list(RICH_MODES)


def build(workload: str, sizes: Sizes) -> Any:
    """A fresh compiled graph for one run (the scripted model's answers are consumed by a run)."""
    if workload not in WORKLOADS:
        msg = f"unknown workload {workload!r}; use one of {', '.join(WORKLOADS)}"
        raise ValueError(msg)
    if workload == "W1":
        model = FakeStreamingChatModel(responses=[AIMessage(content=_words(sizes.w1_chunks))])
        return create_agent(model, tools=[])
    if workload == "W4":
        model = FakeStreamingChatModel(
            responses=_script(sizes.w4_rounds, sizes.w4_answer_tokens),
            first_chunk_delay=sizes.w4_first_token_s,
            chunk_delay=sizes.w4_token_gap_s,
        )
        return create_agent(model, tools=[slow_lookup(sizes.w4_tool_s)])
    model = FakeStreamingChatModel(responses=_script(sizes.w2_rounds, sizes.w2_answer_chunks))
    return create_agent(model, tools=[lookup])


def inputs() -> dict[str, Any]:
    """The input of every run."""
    return {"messages": [HumanMessage(content="go")]}
