"""The span tree of one traced run: run, task, chat and tool spans and their attributes."""

from __future__ import annotations

import asyncio
import contextlib
import operator
import time
from typing import Annotated, Any

import pytest
from helpers import (
    USER,
    by_op,
    chat_graph,
    children,
    events,
    final,
    get_weather,
    linear_graph,
    one,
    overlap,
    parent_of,
    roots,
    run_span,
    task_spans,
    toolnode_graph,
)
from langchain.agents import create_agent
from langchain_core.messages import AIMessage
from langchain_core.runnables import RunnableLambda
from langchain_core.tools import tool
from langgraph.config import get_stream_writer
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.types import Send
from opentelemetry.trace import SpanKind
from typing_extensions import TypedDict

import otelstream
from otelstream import names
from otelstream.testing import FakeStreamingChatModel, tool_call, tool_calls


def _stream(traced: Any, graph_input: Any) -> None:
    list(traced.stream(graph_input))


def _invoke(traced: Any, graph_input: Any) -> None:
    traced.invoke(graph_input)


def _updates(traced: Any, graph_input: Any) -> None:
    list(traced.stream(graph_input, stream_mode="updates"))


def _v3(traced: Any, graph_input: Any) -> None:
    list(traced.stream_events(graph_input, version="v3"))


CALL_PATHS = {"stream": _stream, "invoke": _invoke, "updates": _updates, "v3": _v3}
"""The ways a run starts that the span-model tests run on (async ones are tests of their own)."""


@pytest.fixture(params=list(CALL_PATHS))
def call(request: pytest.FixtureRequest) -> Any:
    """Run a traced graph to the end one of the ways a run starts."""
    return CALL_PATHS[request.param]


def test_run_span_per_stream_call(tracer_provider, spans):
    """Each stream call is one trace with one invoke_workflow root span named after the graph."""
    graph = chat_graph(FakeStreamingChatModel(responses=[final("hi")]), name="helper")
    traced = otelstream.instrument(graph, tracer_provider=tracer_provider)
    list(traced.stream(USER, {"configurable": {"thread_id": "t-1"}}))
    list(traced.stream(USER))
    runs = [s for s in spans() if s.parent is None]
    assert len(runs) == 2
    assert runs[0].context.trace_id != runs[1].context.trace_id
    first = runs[0]
    assert first.name == "invoke_workflow helper"
    assert first.attributes[names.GEN_AI_OPERATION_NAME] == "invoke_workflow"
    assert first.attributes[names.GEN_AI_WORKFLOW_NAME] == "helper"
    assert names.GEN_AI_AGENT_NAME not in first.attributes
    assert first.attributes[names.GEN_AI_CONVERSATION_ID] == "t-1"
    assert first.attributes[names.OTELSTREAM_OUTCOME] == "completed"
    assert names.GEN_AI_CONVERSATION_ID not in runs[1].attributes
    assert {s.context.trace_id for s in spans()} == {r.context.trace_id for r in runs}


def test_run_name_in_config_names_the_workflow(tracer_provider, spans):
    """A run_name in the config names the run span and its workflow."""
    traced = otelstream.instrument(
        chat_graph(FakeStreamingChatModel(responses=[final()])), tracer_provider=tracer_provider
    )
    traced.invoke(USER, {"run_name": "support-bot"})
    run = run_span(spans())
    assert run.name == "invoke_workflow support-bot"
    assert run.attributes[names.GEN_AI_WORKFLOW_NAME] == "support-bot"


def test_task_span_per_node_execution(call, tracer_provider, spans):
    """Every node execution is a task span under the run with node, task id, step and triggers."""
    traced = otelstream.instrument(linear_graph("a", "b", "c"), tracer_provider=tracer_provider)
    call(traced, {"items": []})
    got = spans()
    run = run_span(got)
    tasks = task_spans(got)
    assert [t.name for t in tasks] == ["a", "b", "c"]
    assert [t.attributes[names.LANGGRAPH_STEP] for t in tasks] == [1, 2, 3]
    for task in tasks:
        assert parent_of(got, task) is run
        assert names.GEN_AI_OPERATION_NAME not in task.attributes
        assert task.attributes[names.LANGGRAPH_NODE] == task.name
        assert task.attributes[names.LANGGRAPH_TASK_ID]
        assert task.attributes[names.LANGGRAPH_TRIGGERS]
    assert tasks[1].attributes[names.LANGGRAPH_TRIGGERS] == ("branch:to:b",)
    assert len({t.attributes[names.LANGGRAPH_TASK_ID] for t in tasks}) == 3


class FanState(TypedDict):
    topics: list[str]
    results: Annotated[list[str], operator.add]


def _fan_out_graph(sleep: float) -> Any:
    def plan(state: FanState) -> dict[str, Any]:
        return {}

    def fan(state: FanState) -> list[Send]:
        return [Send("work", {"topics": [t], "results": []}) for t in state["topics"]]

    def work(state: FanState) -> dict[str, Any]:
        time.sleep(sleep)
        return {"results": state["topics"]}

    builder = StateGraph(FanState)
    builder.add_node("plan", plan)
    builder.add_node("work", work)
    builder.add_edge(START, "plan")
    builder.add_conditional_edges("plan", fan, ["work"])
    builder.add_edge("work", END)
    return builder.compile()


def test_send_fan_out_tasks_are_overlapping_siblings(call, tracer_provider, spans):
    """Tasks started by Send in one step are siblings under the run whose times overlap."""
    traced = otelstream.instrument(_fan_out_graph(0.1), tracer_provider=tracer_provider)
    call(traced, {"topics": ["x", "y", "z"], "results": []})
    got = spans()
    run = run_span(got)
    works = task_spans(got, "work")
    assert len(works) == 3
    assert all(parent_of(got, w) is run for w in works)
    assert all(w.attributes[names.LANGGRAPH_TRIGGERS] == ("__pregel_push",) for w in works)
    assert overlap(works[0], works[1])
    assert overlap(works[1], works[2])


def test_chat_span_attributes(call, tracer_provider, spans):
    """A model call is a CLIENT chat span under its task with model, provider, usage and finish."""
    model = FakeStreamingChatModel(responses=[final("one two three")], model_name="m-1")
    traced = otelstream.instrument(chat_graph(model), tracer_provider=tracer_provider)
    call(traced, USER)
    got = spans()
    chat = one(got, "chat m-1")
    assert parent_of(got, chat) is task_spans(got, "agent")[0]
    assert chat.kind is SpanKind.CLIENT
    a = chat.attributes
    assert a[names.GEN_AI_OPERATION_NAME] == "chat"
    assert a[names.GEN_AI_PROVIDER_NAME] == "otelstream-fake"
    assert a[names.GEN_AI_REQUEST_MODEL] == "m-1"
    assert a[names.GEN_AI_RESPONSE_MODEL] == "m-1"
    assert a[names.GEN_AI_REQUEST_STREAM] is True
    assert a[names.GEN_AI_USAGE_INPUT_TOKENS] == 10
    assert a[names.GEN_AI_USAGE_OUTPUT_TOKENS] == 3
    assert a[names.GEN_AI_RESPONSE_FINISH_REASONS] == ("stop",)
    assert a[names.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] >= 0


def _sleepy_graph(model: FakeStreamingChatModel, pause: float) -> Any:
    def agent(state: MessagesState) -> dict[str, Any]:
        time.sleep(pause)
        return {"messages": [model.invoke(state["messages"])]}

    async def aagent(state: MessagesState) -> dict[str, Any]:
        await asyncio.sleep(pause)
        return {"messages": [await model.ainvoke(state["messages"])]}

    builder = StateGraph(MessagesState)
    builder.add_node("agent", RunnableLambda(agent, afunc=aagent, name="agent"))
    builder.add_edge(START, "agent")
    builder.add_edge("agent", END)
    return builder.compile()


def _check_ttft(got: list[Any]) -> None:
    chat = by_op(got, "chat")[0]
    task = task_spans(got, "agent")[0]
    run = run_span(got)
    chat_ttft = chat.attributes[names.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK]
    run_ttft = run.attributes[names.OTELSTREAM_TIME_TO_FIRST_TOKEN]
    assert chat_ttft >= 0.1
    assert chat_ttft < run_ttft
    assert run_ttft >= 0.3
    assert chat.start_time - task.start_time >= 0.2e9


def test_chat_span_starts_with_the_model_call_not_the_node(call, tracer_provider, spans):
    """A node sleeps, then calls the model: chat TTFT counts from the call, run TTFT from stream."""
    model = FakeStreamingChatModel(responses=[final("hello there")], first_chunk_delay=0.1)
    traced = otelstream.instrument(_sleepy_graph(model, 0.2), tracer_provider=tracer_provider)
    call(traced, USER)
    _check_ttft(spans())


async def test_chat_span_starts_with_the_model_call_async(tracer_provider, spans):
    """Async: chat TTFT counts from the model call and run TTFT from the stream call."""
    model = FakeStreamingChatModel(responses=[final("hello there")], first_chunk_delay=0.1)
    traced = otelstream.instrument(_sleepy_graph(model, 0.2), tracer_provider=tracer_provider)
    async for _ in traced.astream(USER, stream_mode="updates"):
        pass
    _check_ttft(spans())


def test_two_model_calls_in_one_task_are_two_chat_spans(call, tracer_provider, spans):
    """A node calling the model twice has two chat spans under its one task span."""
    model = FakeStreamingChatModel(responses=[final("first"), final("second")])

    def agent(state: MessagesState) -> dict[str, Any]:
        a = model.invoke(state["messages"])
        b = model.invoke([*state["messages"], a])
        return {"messages": [a, b]}

    builder = StateGraph(MessagesState)
    builder.add_node("agent", agent)
    builder.add_edge(START, "agent")
    traced = otelstream.instrument(builder.compile(), tracer_provider=tracer_provider)
    call(traced, USER)
    got = spans()
    task = task_spans(got, "agent")[0]
    chats = by_op(got, "chat")
    assert len(chats) == 2
    assert all(parent_of(got, c) is task for c in chats)
    assert chats[0].end_time <= chats[1].start_time


@tool
def broken_tool(query: str) -> str:
    """Always fails."""
    raise ValueError("tool exploded")


def test_create_agent_tool_spans_one_task_per_call(call, tracer_provider, spans):
    """create_agent runs each tool call in its own task; each execute_tool span sits under it."""
    model = FakeStreamingChatModel(
        responses=[
            tool_calls(
                ("get_weather", {"city": "SF"}, "c1"), ("get_weather", {"city": "NY"}, "c2")
            ),
            final("sunny"),
        ]
    )
    traced = otelstream.instrument(
        create_agent(model, tools=[get_weather]), tracer_provider=tracer_provider
    )
    call(traced, USER)
    got = spans()
    tools = by_op(got, "execute_tool")
    assert sorted(t.attributes[names.GEN_AI_TOOL_CALL_ID] for t in tools) == ["c1", "c2"]
    parents = [parent_of(got, t) for t in tools]
    assert all(p is not None and p.attributes[names.LANGGRAPH_NODE] == "tools" for p in parents)
    assert parents[0] is not parents[1]
    for t in tools:
        assert t.name == "execute_tool get_weather"
        assert t.attributes[names.GEN_AI_TOOL_NAME] == "get_weather"
        assert t.status.is_ok


def test_toolnode_parallel_calls_share_one_task(call, tracer_provider, spans):
    """A hand-written ToolNode is one task; its parallel tool calls are sibling spans under it."""
    model = FakeStreamingChatModel(
        responses=[
            tool_calls(
                ("get_weather", {"city": "SF"}, "c1"), ("get_weather", {"city": "NY"}, "c2")
            ),
            final("sunny"),
        ]
    )
    traced = otelstream.instrument(
        toolnode_graph(model, [get_weather]), tracer_provider=tracer_provider
    )
    call(traced, USER)
    got = spans()
    task = one(got, "tools")
    tools = children(got, task)
    assert sorted(t.attributes[names.GEN_AI_TOOL_CALL_ID] for t in tools) == ["c1", "c2"]
    assert all(t.name == "execute_tool get_weather" for t in tools)


async def test_toolnode_parallel_calls_share_one_task_async(tracer_provider, spans):
    """Async: a ToolNode's gathered tool calls are sibling spans under its one task."""
    model = FakeStreamingChatModel(
        responses=[
            tool_calls(
                ("get_weather", {"city": "SF"}, "c1"), ("get_weather", {"city": "NY"}, "c2")
            ),
            final("sunny"),
        ]
    )
    traced = otelstream.instrument(
        toolnode_graph(model, [get_weather]), tracer_provider=tracer_provider
    )
    await traced.ainvoke(USER)
    got = spans()
    task = one(got, "tools")
    assert sorted(t.attributes[names.GEN_AI_TOOL_CALL_ID] for t in children(got, task)) == [
        "c1",
        "c2",
    ]


def test_failing_tool_span_is_error(call, tracer_provider, spans):
    """A tool that raises gets ERROR status, error.type and an exception event."""
    model = FakeStreamingChatModel(
        responses=[tool_call("broken_tool", {"query": "q"}, call_id="b1"), final()]
    )
    graph = toolnode_graph(model, [broken_tool])
    graph.nodes["tools"].bound.handle_tool_errors = False
    traced = otelstream.instrument(graph, tracer_provider=tracer_provider)
    with contextlib.suppress(ValueError):
        call(traced, USER)
    got = spans()
    span = one(got, "execute_tool broken_tool")
    assert not span.status.is_ok
    assert span.attributes[names.ERROR_TYPE] == "ValueError"
    (exc,) = events(span, "exception")
    assert exc.attributes["exception.type"].endswith("ValueError")
    assert parent_of(got, span) is one(got, "tools")


def _subgraph_parent() -> Any:
    def inner_node(state: MessagesState) -> dict[str, Any]:
        get_stream_writer()({"progress": "inner"})
        return {}

    inner = StateGraph(MessagesState)
    inner.add_node("inner_node", inner_node)
    inner.add_edge(START, "inner_node")
    sub = inner.compile()

    outer = StateGraph(MessagesState)
    outer.add_node("sub", sub)
    outer.add_edge(START, "sub")
    return outer.compile()


def test_subgraph_tasks_nest_under_the_enclosing_task(call, tracer_provider, spans):
    """A node inside a subgraph is a task span under the subgraph node's task span."""
    traced = otelstream.instrument(_subgraph_parent(), tracer_provider=tracer_provider)
    call(traced, USER)
    got = spans()
    outer = one(got, "sub")
    inner = one(got, "inner_node")
    assert parent_of(got, outer) is run_span(got)
    assert parent_of(got, inner) is outer
    assert len(roots(got)) == 1
    assert len(task_spans(got)) == 2


def test_custom_write_event_on_the_writing_task(call, tracer_provider, spans):
    """A custom write is a langgraph.custom event on the task that wrote it, without payload."""

    def writer_node(state: MessagesState) -> dict[str, Any]:
        get_stream_writer()({"step": 1, "note": "working"})
        return {}

    builder = StateGraph(MessagesState)
    builder.add_node("writer_node", writer_node)
    builder.add_edge(START, "writer_node")
    traced = otelstream.instrument(builder.compile(), tracer_provider=tracer_provider)
    call(traced, USER)
    task = one(spans(), "writer_node")
    (event,) = events(task, names.EVENT_CUSTOM)
    assert event.attributes[names.OTELSTREAM_CUSTOM_TYPE] == "dict"
    assert event.attributes[names.OTELSTREAM_CUSTOM_SIZE] == 2
    assert event.attributes[names.OTELSTREAM_ATTRIBUTION] == "exact"
    assert names.OTELSTREAM_CUSTOM_PAYLOAD not in event.attributes
    assert task.attributes[names.OTELSTREAM_CUSTOM_COUNT] == 1


def test_custom_write_payload_with_capture(call, tracer_provider, spans):
    """With capture on, a custom write's event carries its payload as JSON."""

    def writer_node(state: MessagesState) -> dict[str, Any]:
        get_stream_writer()({"step": 1})
        return {}

    builder = StateGraph(MessagesState)
    builder.add_node("writer_node", writer_node)
    builder.add_edge(START, "writer_node")
    traced = otelstream.instrument(
        builder.compile(),
        tracer_provider=tracer_provider,
        options=otelstream.Options(capture_content=True),
    )
    call(traced, USER)
    (event,) = events(one(spans(), "writer_node"), names.EVENT_CUSTOM)
    assert event.attributes[names.OTELSTREAM_CUSTOM_PAYLOAD] == '{"step": 1}'


@tool
def progress_tool(city: str) -> str:
    """A tool that reports progress through the stream writer."""
    get_stream_writer()(f"progress {city}")
    time.sleep(0.05)
    return city


def test_custom_write_inside_a_tool_lands_on_the_tool_span(call, tracer_provider, spans):
    """A write from the only running tool call is an exact event on that execute_tool span."""
    model = FakeStreamingChatModel(
        responses=[tool_call("progress_tool", {"city": "SF"}, call_id="p1"), final()]
    )
    traced = otelstream.instrument(
        create_agent(model, tools=[progress_tool]), tracer_provider=tracer_provider
    )
    call(traced, USER)
    span = one(spans(), "execute_tool progress_tool")
    (event,) = events(span, names.EVENT_CUSTOM)
    assert event.attributes[names.OTELSTREAM_ATTRIBUTION] == "exact"


def test_parallel_custom_writes_land_on_their_own_tool_span(call, tracer_provider, spans):
    """With parallel writers, every write is an exact event on the tool call that wrote it."""
    model = FakeStreamingChatModel(
        responses=[
            tool_calls(
                ("progress_tool", {"city": "A"}, "pa"),
                ("progress_tool", {"city": "B"}, "pb"),
                ("progress_tool", {"city": "C"}, "pc"),
            ),
            final(),
        ]
    )
    traced = otelstream.instrument(
        create_agent(model, tools=[progress_tool]),
        tracer_provider=tracer_provider,
        options=otelstream.Options(capture_content=True),
    )
    call(traced, USER)
    got = spans()
    cities = {"pa": "A", "pb": "B", "pc": "C"}
    for span in by_op(got, "execute_tool"):
        (event,) = events(span, names.EVENT_CUSTOM)
        city = cities[span.attributes[names.GEN_AI_TOOL_CALL_ID]]
        assert event.attributes[names.OTELSTREAM_CUSTOM_PAYLOAD] == f'"progress {city}"'
        assert event.attributes[names.OTELSTREAM_ATTRIBUTION] == "exact"
    assert sum(len(events(s, names.EVENT_CUSTOM)) for s in got) == 3


def test_run_span_is_child_of_callers_span(tracer_provider, spans):
    """A stream call made inside the caller's span starts a run span under it."""
    tracer = tracer_provider.get_tracer("app")
    traced = otelstream.instrument(
        chat_graph(FakeStreamingChatModel(responses=[final()])), tracer_provider=tracer_provider
    )
    with tracer.start_as_current_span("request"):
        traced.invoke(USER)
    got = spans()
    assert parent_of(got, run_span(got)) is one(got, "request")


def test_non_streamed_model_spans_without_trace_chunks(tracer_provider, spans):
    """With trace_chunks off the model generates: a chat span without chunk events."""
    model = FakeStreamingChatModel(responses=[final("a b c")])
    traced = otelstream.instrument(
        chat_graph(model),
        tracer_provider=tracer_provider,
        options=otelstream.Options(trace_chunks=False),
    )
    result = traced.invoke(USER)
    assert result["messages"][-1].content == "a b c"
    chat = by_op(spans(), "chat")[0]
    assert chat.attributes[names.GEN_AI_REQUEST_STREAM] is False
    assert not events(chat, names.EVENT_CHUNK)
    assert names.OTELSTREAM_TIME_TO_FIRST_TOKEN not in run_span(spans()).attributes


def test_node_returning_ai_message_has_no_chat_span(tracer_provider, spans):
    """A node that writes an AIMessage without calling a model makes no chat span."""

    def agent(state: MessagesState) -> dict[str, Any]:
        return {"messages": [AIMessage(content="canned")]}

    builder = StateGraph(MessagesState)
    builder.add_node("agent", agent)
    builder.add_edge(START, "agent")
    traced = otelstream.instrument(builder.compile(), tracer_provider=tracer_provider)
    list(traced.stream(USER, stream_mode="messages"))
    got = spans()
    assert not by_op(got, "chat")
    assert names.OTELSTREAM_TIME_TO_FIRST_TOKEN not in run_span(got).attributes
