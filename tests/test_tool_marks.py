"""Tool calls mark their start and end in the run's own stream, and nowhere else.

otelstream reads which tool calls were open when a custom write arrived from ``ToolMark`` items
that the callback handler writes through the run's stream writer. These tests pin down that the
marks never reach any consumer (the caller, or a node that streams a graph of its own) and that
they make a tool call's writes exact only where the writer is certainly the run's own.
"""

from __future__ import annotations

from typing import Any

from helpers import USER, events, final, one, parent_of
from langchain.agents import create_agent
from langchain_core.tools import tool
from langgraph.config import get_stream_writer
from langgraph.graph import START, MessagesState, StateGraph

import otelstream
from otelstream import names
from otelstream.record.work import ToolMark
from otelstream.testing import FakeStreamingChatModel, tool_call


@tool
def report(item: str) -> str:
    """Report progress on an item through the stream writer."""
    get_stream_writer()({"item": item})
    return item


def _agent(*, name: str | None = None) -> Any:
    model = FakeStreamingChatModel(
        responses=[tool_call("report", {"item": "a"}, call_id="r1"), final()]
    )
    return create_agent(model, tools=[report], name=name)


def _marks(chunks: list[Any]) -> list[Any]:
    found: list[Any] = []

    def walk(value: Any) -> None:
        if isinstance(value, ToolMark):
            found.append(value)
        elif isinstance(value, (list, tuple)):
            for v in value:
                walk(v)
        elif isinstance(value, dict):
            for v in value.values():
                walk(v)

    walk(chunks)
    return found


def _shape(chunk: Any) -> Any:
    """A chunk's mode, and its payload if it is a custom write (messages carry per-run ids)."""
    if isinstance(chunk, dict) and "type" in chunk:  # a v2 part
        mode, payload = chunk["type"], chunk["data"]
    elif isinstance(chunk, tuple):
        mode, payload = chunk[-2], chunk[-1]
    else:  # stream_mode="custom": the bare payload
        mode, payload = "custom", chunk
    return (mode, payload) if mode == "custom" else mode


def test_marks_never_reach_the_caller_in_any_shape(tracer_provider):
    """For list, string, v2 and subgraphs=True streams, the caller's chunks are the bare ones."""
    for kwargs in (
        {"stream_mode": ["custom", "updates"]},
        {"stream_mode": "custom"},
        {"stream_mode": ["custom"], "version": "v2"},
        {"stream_mode": ["custom", "messages"], "subgraphs": True},
    ):
        traced = otelstream.instrument(_agent(), tracer_provider=tracer_provider)
        chunks = list(traced.stream(USER, **kwargs))
        bare = list(_agent().stream(USER, **kwargs))
        assert _marks(chunks) == [], kwargs
        assert [_shape(c) for c in chunks] == [_shape(c) for c in bare], kwargs


async def test_marks_never_reach_the_caller_async(tracer_provider):
    """Async: the caller's custom chunks are exactly the tool's own writes."""
    traced = otelstream.instrument(_agent(), tracer_provider=tracer_provider)
    chunks = [c async for c in traced.astream(USER, stream_mode="custom")]
    assert chunks == [{"item": "a"}]


def test_a_graph_streamed_inside_a_node_sees_no_marks(tracer_provider, spans):
    """A node that streams another graph's custom writes itself gets exactly the bare writes."""
    seen: list[Any] = []

    def runs_an_agent(state: MessagesState) -> dict[str, Any]:
        seen.extend(_agent().stream(USER, stream_mode="custom"))
        return {}

    builder = StateGraph(MessagesState)
    builder.add_node("runs_an_agent", runs_an_agent)
    builder.add_edge(START, "runs_an_agent")
    traced = otelstream.instrument(builder.compile(), tracer_provider=tracer_provider)
    list(traced.stream(USER, stream_mode=["custom", "updates"], subgraphs=True))
    assert seen == [{"item": "a"}]
    # The inner agent's tool call is still traced, under the node that ran it.
    tool_span = one(spans(), "execute_tool report")
    assert tool_span.attributes[names.GEN_AI_TOOL_NAME] == "report"


def test_a_traced_graph_inside_an_untraced_one_writes_no_marks(tracer_provider):
    """A traced graph run as a node of an untraced graph leaves the outer stream as bare."""
    inner = otelstream.instrument(_agent(), tracer_provider=tracer_provider)

    def calls_the_traced_graph(state: MessagesState) -> dict[str, Any]:
        inner.invoke(USER)
        return {}

    def outer() -> Any:
        builder = StateGraph(MessagesState)
        builder.add_node("calls_the_traced_graph", calls_the_traced_graph)
        builder.add_edge(START, "calls_the_traced_graph")
        return builder.compile()

    chunks = list(outer().stream(USER, stream_mode=["custom", "updates"], subgraphs=True))
    assert _marks(chunks) == []
    assert [c for c in chunks if c[1] == "custom"] == [
        (c[0], "custom", {"item": "a"}) for c in chunks if c[1] == "custom"
    ]
    assert any(c[1] == "custom" for c in chunks)


def _supervisor(*, asks_model_first: bool) -> Any:
    """A root node (that may call a model itself), then a create_agent agent as a subgraph."""
    planner = FakeStreamingChatModel(responses=[final("plan")])

    def plan(state: MessagesState) -> dict[str, Any]:
        if asks_model_first:
            return {"messages": [planner.invoke(state["messages"])]}
        return {}

    builder = StateGraph(MessagesState)
    builder.add_node("plan", plan)
    builder.add_node("worker", _agent(name="worker"))
    builder.add_edge(START, "plan")
    builder.add_edge("plan", "worker")
    return builder.compile()


def test_subgraph_tool_write_is_exact_once_the_run_writer_is_known(tracer_provider, spans):
    """A model call at the root shows the run's writer, so a subgraph tool's write is exact."""
    traced = otelstream.instrument(
        _supervisor(asks_model_first=True), tracer_provider=tracer_provider
    )
    list(traced.stream(USER, stream_mode=["custom", "updates"], subgraphs=True))
    tool_span = one(spans(), "execute_tool report")
    (event,) = events(tool_span, names.EVENT_CUSTOM)
    assert event.attributes[names.OTELSTREAM_ATTRIBUTION] == "exact"


def test_subgraph_tool_write_before_the_writer_is_known_stays_on_a_certain_span(
    tracer_provider, spans
):
    """Without a root call first, the write goes on the task that ran the tool, as ancestor."""
    traced = otelstream.instrument(
        _supervisor(asks_model_first=False), tracer_provider=tracer_provider
    )
    list(traced.stream(USER, stream_mode=["custom", "updates"], subgraphs=True))
    got = spans()
    tool_span = one(got, "execute_tool report")
    assert events(tool_span, names.EVENT_CUSTOM) == []
    holder = parent_of(got, tool_span)
    assert holder is not None
    (event,) = events(holder, names.EVENT_CUSTOM)
    assert event.attributes[names.OTELSTREAM_ATTRIBUTION] == "ancestor"
