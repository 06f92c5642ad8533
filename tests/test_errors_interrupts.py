"""Errors reach the caller unchanged and mark their spans; interrupts are not errors."""

from __future__ import annotations

from typing import Any

import pytest
from helpers import (
    USER,
    by_op,
    events,
    one,
    parent_of,
    run_span,
    run_spans,
    task_spans,
    toolnode_graph,
)
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.types import Command, interrupt

import otelstream
from otelstream import names
from otelstream.testing import FakeStreamingChatModel, tool_call


class AppError(Exception):
    """The app's own exception type."""


def _failing_graph(error: BaseException) -> Any:
    def ok(state: MessagesState) -> dict[str, Any]:
        return {}

    def fails(state: MessagesState) -> dict[str, Any]:
        raise error

    builder = StateGraph(MessagesState)
    builder.add_node("ok", ok)
    builder.add_node("fails", fails)
    builder.add_edge(START, "ok")
    builder.add_edge("ok", "fails")
    return builder.compile()


def _assert_error(span: Any, type_name: str) -> None:
    assert not span.status.is_ok
    assert span.attributes[names.ERROR_TYPE] == type_name
    (exc,) = events(span, "exception")
    assert exc.attributes["exception.message"] == "broken on purpose"


def test_node_error_reaches_caller_unchanged(tracer_provider, spans):
    """A node's exception is the very object the caller catches; task and run spans are ERROR."""
    error = AppError("broken on purpose")
    traced = otelstream.instrument(_failing_graph(error), tracer_provider=tracer_provider)
    with pytest.raises(AppError) as info:
        list(traced.stream(USER, stream_mode="updates"))
    assert info.value is error
    got = spans()
    _assert_error(one(got, "fails"), "AppError")
    run = run_span(got)
    _assert_error(run, "AppError")
    assert run.attributes[names.OTELSTREAM_OUTCOME] == "error"
    assert one(got, "ok").status.is_ok


async def test_node_error_reaches_caller_unchanged_async(tracer_provider, spans):
    """Async: a node's exception reaches the caller unchanged; task and run spans are ERROR."""
    error = AppError("broken on purpose")
    traced = otelstream.instrument(_failing_graph(error), tracer_provider=tracer_provider)
    with pytest.raises(AppError) as info:
        await traced.ainvoke(USER)
    assert info.value is error
    got = spans()
    _assert_error(one(got, "fails"), "AppError")
    _assert_error(run_span(got), "AppError")


@tool
def exploding(query: str) -> str:
    """Raises the app's error."""
    raise AppError("broken on purpose")


def _tool_error_graph() -> Any:
    model = FakeStreamingChatModel(responses=[tool_call("exploding", {"query": "q"}, call_id="x1")])
    graph = toolnode_graph(model, [exploding])
    graph.nodes["tools"].bound.handle_tool_errors = False
    return graph


def test_tool_error_marks_tool_task_and_run(tracer_provider, spans):
    """A raising tool: its execute_tool span, its task and the run are ERROR with error.type."""
    traced = otelstream.instrument(_tool_error_graph(), tracer_provider=tracer_provider)
    with pytest.raises(AppError):
        list(traced.stream(USER, stream_mode=["updates", "messages"]))
    got = spans()
    tool_span = one(got, "execute_tool exploding")
    _assert_error(tool_span, "AppError")
    assert tool_span.attributes[names.GEN_AI_TOOL_CALL_ID] == "x1"
    task = one(got, "tools")
    assert parent_of(got, tool_span) is task
    _assert_error(task, "AppError")
    _assert_error(run_span(got), "AppError")


async def test_tool_error_marks_tool_task_and_run_async(tracer_provider, spans):
    """Async: a raising tool's span, its task and the run are ERROR."""
    traced = otelstream.instrument(_tool_error_graph(), tracer_provider=tracer_provider)
    with pytest.raises(AppError):
        async for _ in traced.astream(USER, stream_mode=["updates", "messages"]):
            pass
    got = spans()
    _assert_error(one(got, "execute_tool exploding"), "AppError")
    _assert_error(run_span(got), "AppError")


def test_model_error_marks_chat_span(tracer_provider, spans):
    """A chat model that raises gives an ERROR chat span and the exception reaches the caller."""
    error = AppError("broken on purpose")
    model = FakeStreamingChatModel(error=error)
    graph = toolnode_graph(model, [exploding])
    traced = otelstream.instrument(graph, tracer_provider=tracer_provider)
    with pytest.raises(AppError) as info:
        traced.invoke(USER)
    assert info.value is error
    (chat,) = by_op(spans(), "chat")
    _assert_error(chat, "AppError")


def _approval_graph() -> Any:
    def ask(state: MessagesState) -> dict[str, Any]:
        answer = interrupt({"question": "approve?"})
        return {"messages": [{"role": "user", "content": str(answer)}]}

    def after(state: MessagesState) -> dict[str, Any]:
        return {}

    builder = StateGraph(MessagesState)
    builder.add_node("ask", ask)
    builder.add_node("after", after)
    builder.add_edge(START, "ask")
    builder.add_edge("ask", "after")
    return builder.compile(checkpointer=InMemorySaver())


def test_interrupt_is_not_an_error_and_resume_is_a_new_run(tracer_provider, spans):
    """interrupt() ends the run as interrupted; resuming is a new run in the same conversation."""
    traced = otelstream.instrument(_approval_graph(), tracer_provider=tracer_provider)
    config = {"configurable": {"thread_id": "conv-7"}}
    chunks = list(traced.stream(USER, config, stream_mode="updates"))
    assert "__interrupt__" in chunks[-1]
    got = spans()
    run = run_span(got)
    assert run.attributes[names.OTELSTREAM_OUTCOME] == "interrupted"
    assert run.status.is_ok
    ask = one(got, "ask")
    assert ask.status.is_ok
    assert names.ERROR_TYPE not in ask.attributes
    (event,) = events(ask, names.EVENT_INTERRUPT)
    assert names.OTELSTREAM_INTERRUPT_VALUE not in event.attributes

    list(traced.stream(Command(resume="yes"), config, stream_mode="updates"))
    runs = run_spans(spans())
    assert len(runs) == 2
    assert runs[0].context.trace_id != runs[1].context.trace_id
    assert [r.attributes[names.GEN_AI_CONVERSATION_ID] for r in runs] == ["conv-7", "conv-7"]
    assert runs[1].attributes[names.OTELSTREAM_OUTCOME] == "completed"
    second = [t for t in task_spans(spans()) if t.context.trace_id == runs[1].context.trace_id]
    assert sorted(t.name for t in second) == ["after", "ask"]


async def test_interrupt_and_resume_async(tracer_provider, spans):
    """Async: interrupt() gives outcome interrupted, resuming gives a completed second run."""
    traced = otelstream.instrument(_approval_graph(), tracer_provider=tracer_provider)
    config = {"configurable": {"thread_id": "conv-8"}}
    async for _ in traced.astream(USER, config, stream_mode="updates"):
        pass
    await traced.ainvoke(Command(resume="yes"), config)
    runs = run_spans(spans())
    assert [r.attributes[names.OTELSTREAM_OUTCOME] for r in runs] == ["interrupted", "completed"]
    assert all(r.status.is_ok for r in runs)


def test_interrupt_value_with_capture(tracer_provider, spans):
    """With capture on, the interrupt event carries the interrupt's value."""
    traced = otelstream.instrument(
        _approval_graph(),
        tracer_provider=tracer_provider,
        options=otelstream.Options(capture_content=True),
    )
    traced.invoke(USER, {"configurable": {"thread_id": "c"}})
    (event,) = events(one(spans(), "ask"), names.EVENT_INTERRUPT)
    assert event.attributes[names.OTELSTREAM_INTERRUPT_VALUE] == '[{"question": "approve?"}]'


def test_static_interrupt_before_is_interrupted(tracer_provider, spans):
    """A static interrupt_before ends the run as interrupted, not as an error."""
    builder = StateGraph(MessagesState)
    builder.add_node("first", lambda s: {})
    builder.add_node("second", lambda s: {})
    builder.add_edge(START, "first")
    builder.add_edge("first", "second")
    graph = builder.compile(checkpointer=InMemorySaver(), interrupt_before=["second"])
    traced = otelstream.instrument(graph, tracer_provider=tracer_provider)
    list(traced.stream(USER, {"configurable": {"thread_id": "s"}}, stream_mode="updates"))
    run = run_span(spans())
    assert run.attributes[names.OTELSTREAM_OUTCOME] == "interrupted"
    assert run.status.is_ok
