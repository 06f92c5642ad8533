"""Long runs: many steps and very long streams keep otelstream's memory bounded."""

from __future__ import annotations

import gc
import tracemalloc
from typing import Any

import pytest
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessageChunk, HumanMessage
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from langgraph.graph import END, START, MessagesState, StateGraph
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import TracerProvider
from reliability_kit import CountOnly, live_recorders, wait_until, watchdog_threads
from typing_extensions import TypedDict

import otelstream


def _otelstream_bytes() -> int:
    gc.collect()
    snapshot = tracemalloc.take_snapshot()
    filtered = snapshot.filter_traces([tracemalloc.Filter(True, "*/otelstream/*")])
    return sum(stat.size for stat in filtered.statistics("filename"))


class LoopState(TypedDict):
    count: int


@pytest.mark.slow
def test_a_thousand_steps_keep_otelstream_memory_flat() -> None:
    """A 1000-step run holds no more otelstream memory at step 900 than at step 100, records
    every step's span, and leaves nothing behind."""
    samples: dict[int, int] = {}

    def step(state: LoopState) -> dict[str, Any]:
        count = state["count"] + 1
        if count in (100, 900):
            samples[count] = _otelstream_bytes()
        return {"count": count}

    builder = StateGraph(LoopState)
    builder.add_node("step", step)
    builder.add_edge(START, "step")
    builder.add_conditional_edges("step", lambda s: END if s["count"] >= 1000 else "step")
    counted = CountOnly()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(counted)
    traced = otelstream.instrument(
        builder.compile(), tracer_provider=tracer_provider, meter_provider=MeterProvider()
    )
    tracemalloc.start()
    try:
        final = traced.invoke({"count": 0}, {"recursion_limit": 2000})
    finally:
        tracemalloc.stop()
    assert final == {"count": 1000}
    assert samples[900] - samples[100] < 16 * 1024, samples
    assert counted.ended == 1001
    assert wait_until(lambda: not watchdog_threads(), 5.0)
    assert live_recorders() == []


class LazyChatModel(BaseChatModel):
    """Streams ``n`` one-character chunks, made one at a time; measures otelstream on the way."""

    n: int

    @property
    def _llm_type(self) -> str:
        return "lazy"

    def _generate(
        self, messages: Any, stop: Any = None, run_manager: Any = None, **kw: Any
    ) -> ChatResult:
        raise NotImplementedError

    def _stream(self, messages: Any, stop: Any = None, run_manager: Any = None, **kw: Any) -> Any:
        for index in range(self.n):
            chunk = ChatGenerationChunk(message=AIMessageChunk(content="x"))
            if run_manager is not None:
                run_manager.on_llm_new_token("x", chunk=chunk)
            yield chunk


@pytest.mark.slow
def test_a_200000_chunk_stream_keeps_otelstream_memory_and_events_bounded() -> None:
    """One LLM call streaming 200,000 chunks adds no otelstream memory per chunk, stays within the
    span event limit with nothing dropped, and leaves nothing behind."""
    n = 200_000
    model = LazyChatModel(n=n)
    grown: dict[str, int] = {}

    def agent(state: MessagesState) -> dict[str, Any]:
        # Trace otelstream's allocations from chunk 1000 on (see the model), not LangChain's.
        chunks = 0
        for _ in model.stream(state["messages"]):
            chunks += 1  # noqa: SIM113 - counts a lazy stream as it goes
            if chunks == 1_000:
                tracemalloc.start()
                grown["start"] = _otelstream_bytes()
            elif chunks == n - 1_000:
                grown["end"] = _otelstream_bytes()
                tracemalloc.stop()
        return {"messages": []}

    builder = StateGraph(MessagesState)
    builder.add_node("agent", agent)
    builder.add_edge(START, "agent")
    builder.add_edge("agent", END)
    model.n = n
    counted = CountOnly()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(counted)
    traced = otelstream.instrument(
        builder.compile(), tracer_provider=tracer_provider, meter_provider=MeterProvider()
    )
    try:
        for _ in traced.stream({"messages": [HumanMessage(content="go")]}, stream_mode="updates"):
            pass
    finally:
        if tracemalloc.is_tracing():
            tracemalloc.stop()
    assert grown["end"] - grown["start"] < 16 * 1024, grown
    assert counted.max_events <= 128
    assert counted.dropped_events == 0
    assert wait_until(lambda: not watchdog_threads(), 5.0)
    assert live_recorders() == []
