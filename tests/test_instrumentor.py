"""OtelStreamInstrumentor: every compiled graph traced, nested graphs in one trace, undoable."""

from __future__ import annotations

import importlib.metadata
from typing import TYPE_CHECKING, Any

import pytest
from helpers import (
    USER,
    by_op,
    chat_graph,
    final,
    linear_graph,
    one,
    parent_of,
    roots,
    run_span,
    run_spans,
    task_spans,
)
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.pregel import Pregel

from otelstream import OtelStreamInstrumentor, names
from otelstream.testing import FakeStreamingChatModel

if TYPE_CHECKING:
    from collections.abc import Iterator

    from langchain_core.runnables import RunnableConfig


@pytest.fixture
def instrumented(tracer_provider, meter_provider) -> Iterator[OtelStreamInstrumentor]:
    instrumentor = OtelStreamInstrumentor()
    instrumentor.instrument(tracer_provider=tracer_provider, meter_provider=meter_provider)
    yield instrumentor
    if instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.uninstrument()


def test_stream_traced(instrumented, spans):
    """A plain compiled graph's stream is traced once the instrumentor is on."""
    graph = linear_graph("a", "b")
    assert list(graph.stream({"items": []}, stream_mode="updates")) == [
        {"a": {"items": ["a"]}},
        {"b": {"items": ["b"]}},
    ]
    got = spans()
    assert run_span(got).attributes[names.OTELSTREAM_OUTCOME] == "completed"
    assert [t.name for t in task_spans(got)] == ["a", "b"]


def test_invoke_traced(instrumented, spans):
    """invoke goes through the traced stream: one run with its chat span."""
    graph = chat_graph(FakeStreamingChatModel(responses=[final("hey")]))
    assert graph.invoke(USER)["messages"][-1].content == "hey"
    got = spans()
    assert len(roots(got)) == 1
    assert len(by_op(got, "chat")) == 1


async def test_astream_traced(instrumented, spans):
    """astream is traced once the instrumentor is on."""
    graph = linear_graph("a")
    chunks = [c async for c in graph.astream({"items": []}, stream_mode="updates")]
    assert chunks == [{"a": {"items": ["a"]}}]
    assert [t.name for t in task_spans(spans())] == ["a"]


async def test_ainvoke_traced(instrumented, spans):
    """ainvoke is traced once the instrumentor is on."""
    graph = chat_graph(FakeStreamingChatModel(responses=[final("hey")]))
    result = await graph.ainvoke(USER)
    assert result["messages"][-1].content == "hey"
    assert len(run_spans(spans())) == 1
    assert len(by_op(spans(), "chat")) == 1


def test_uninstrument_restores(tracer_provider, meter_provider, span_exporter):
    """After uninstrument() graphs run untraced and Pregel's own methods are back."""
    original = Pregel.stream
    instrumentor = OtelStreamInstrumentor()
    instrumentor.instrument(tracer_provider=tracer_provider, meter_provider=meter_provider)
    try:
        linear_graph("a").invoke({"items": []})
        assert span_exporter.get_finished_spans()
    finally:
        instrumentor.uninstrument()
    span_exporter.clear()
    assert Pregel.stream is original
    linear_graph("a").invoke({"items": []})
    assert span_exporter.get_finished_spans() == ()


def _subgraph_node_graph() -> Any:
    def leaf(state: MessagesState) -> dict[str, Any]:
        return {}

    inner = StateGraph(MessagesState)
    inner.add_node("leaf", leaf)
    inner.add_edge(START, "leaf")
    outer = StateGraph(MessagesState)
    outer.add_node("sub", inner.compile())
    outer.add_edge(START, "sub")
    return outer.compile()


def test_subgraph_node_nests_in_one_trace(instrumented, spans):
    """A subgraph node's tasks nest under the calling task: one trace, one root, no duplicates."""
    _subgraph_node_graph().invoke(USER)
    got = spans()
    assert len(roots(got)) == 1
    assert len({s.context.trace_id for s in got}) == 1
    assert len(run_spans(got)) == 1
    assert parent_of(got, one(got, "leaf")) is one(got, "sub")


def test_node_calling_other_graph_invoke_nests(instrumented, spans):
    """A node that calls other_graph.invoke nests the inner work under its task span."""
    model = FakeStreamingChatModel(responses=[final("inner answer")])
    other = chat_graph(model)

    def caller(state: MessagesState) -> dict[str, Any]:
        return {"messages": other.invoke(state)["messages"][-1:]}

    outer = StateGraph(MessagesState)
    outer.add_node("caller", caller)
    outer.add_edge(START, "caller")
    result = outer.compile().invoke(USER)
    assert result["messages"][-1].content == "inner answer"
    got = spans()
    assert len(roots(got)) == 1
    assert len({s.context.trace_id for s in got}) == 1
    assert len(run_spans(got)) == 1
    caller_span = one(got, "caller")
    agent = one(got, "agent")
    assert parent_of(got, agent) is caller_span
    chat = one(got, "chat fake-model")
    assert parent_of(got, chat) is agent


async def test_node_calling_other_graph_ainvoke_nests(instrumented, spans):
    """Async: a node awaiting other_graph.ainvoke nests the inner work under its task span."""
    other = chat_graph(FakeStreamingChatModel(responses=[final("inner")]))

    # The node passes its config on, as LangGraph asks before Python 3.11, where asyncio cannot
    # carry it to the inner call through the context.
    async def caller(state: MessagesState, config: RunnableConfig) -> dict[str, Any]:
        return {"messages": (await other.ainvoke(state, config))["messages"][-1:]}

    outer = StateGraph(MessagesState)
    outer.add_node("caller", caller)
    outer.add_edge(START, "caller")
    await outer.compile().ainvoke(USER)
    got = spans()
    assert len(roots(got)) == 1
    assert len(task_spans(got, "agent")) == 1
    assert parent_of(got, one(got, "agent")) is one(got, "caller")


def test_entry_point_resolves_to_the_instrumentor():
    """The opentelemetry_instrumentor entry point named langgraph loads OtelStreamInstrumentor."""
    (entry,) = importlib.metadata.entry_points(group="opentelemetry_instrumentor", name="langgraph")
    assert entry.load() is OtelStreamInstrumentor


def test_instrumentation_dependencies():
    """The instrumentor declares the LangGraph versions it supports."""
    assert OtelStreamInstrumentor().instrumentation_dependencies() == ("langgraph >= 1.2",)
