"""Every custom write lands on the span of the task or tool call that wrote it, on every call path.

otelstream taps the run's stream writer (``feeds/writer.py``): a write reaches the recorder while
it is written, so neither the caller's stream modes nor parallel writers change where it lands,
and LangGraph schedules the run exactly as it does bare.
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from typing import TYPE_CHECKING, Any

import pytest
from helpers import USER, by_name, events, final, one, parent_of, run_span, task_spans
from langchain.agents import create_agent
from langchain_core.tools import tool
from langgraph.config import get_stream_writer
from langgraph.func import entrypoint, task
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition
from langgraph.pregel import main as pregel_main
from langgraph.runtime import Runtime

import otelstream
from otelstream import names
from otelstream.feeds.writer import TapRuntime, WriteTap
from otelstream.testing import FakeStreamingChatModel, tool_calls

if TYPE_CHECKING:
    from langchain_core.messages import AIMessage

CAPTURE = otelstream.Options(capture_content=True)
ITEMS = ("a", "b", "c")


@tool
def report(item: str) -> str:
    """Report two steps of progress on an item."""
    writer = get_stream_writer()
    writer({"item": item, "step": 1})
    writer({"item": item, "step": 2})
    return item


def _calls() -> AIMessage:
    return tool_calls(*((("report", {"item": i}, f"call_{i}")) for i in ITEMS))


def create_agent_fan_out() -> Any:
    """``create_agent``: one ``Send`` task per tool call, run in parallel."""
    model = FakeStreamingChatModel(responses=[_calls(), final()])
    return create_agent(model, tools=[report], name="fan")


def tool_node_fan_out() -> Any:
    """A hand-written ``ToolNode``: one task running every call at once."""
    bound = FakeStreamingChatModel(responses=[_calls(), final()]).bind_tools([report])

    def agent(state: MessagesState) -> dict[str, Any]:
        return {"messages": [bound.invoke(state["messages"])]}

    async def aagent(state: MessagesState) -> dict[str, Any]:
        return {"messages": [await bound.ainvoke(state["messages"])]}

    builder = StateGraph(MessagesState)
    from langchain_core.runnables import RunnableLambda  # noqa: PLC0415

    builder.add_node("agent", RunnableLambda(agent, afunc=aagent))
    builder.add_node("tools", ToolNode([report]))
    builder.add_edge(START, "agent")
    builder.add_conditional_edges("agent", tools_condition)
    builder.add_edge("tools", "agent")
    return builder.compile(name="toolnode")


def writer_graph() -> Any:
    """Two nodes that write, one after the other, and a subgraph node whose inner node writes."""

    def first(state: MessagesState) -> dict[str, Any]:
        get_stream_writer()({"node": "first"})
        return {}

    def inner(state: MessagesState) -> dict[str, Any]:
        get_stream_writer()({"node": "inner"})
        return {}

    sub = StateGraph(MessagesState)
    sub.add_node("inner", inner)
    sub.add_edge(START, "inner")
    builder = StateGraph(MessagesState)
    builder.add_node("first", first)
    builder.add_node("sub", sub.compile())
    builder.add_edge(START, "first")
    builder.add_edge("first", "sub")
    return builder.compile(name="writers")


def _payloads(span: Any) -> list[str]:
    return [e.attributes[names.OTELSTREAM_CUSTOM_PAYLOAD] for e in events(span, names.EVENT_CUSTOM)]


def _assert_each_tool_has_its_own_writes(spans: list[Any]) -> None:
    tools = by_name(spans, "execute_tool report")
    assert len(tools) == len(ITEMS)
    for span in tools:
        item = span.attributes[names.GEN_AI_TOOL_CALL_ID].removeprefix("call_")
        got = events(span, names.EVENT_CUSTOM)
        assert [e.attributes[names.OTELSTREAM_ATTRIBUTION] for e in got] == ["exact", "exact"]
        assert _payloads(span) == [
            f'{{"item": "{item}", "step": 1}}',
            f'{{"item": "{item}", "step": 2}}',
        ]
    others = [s for s in spans if not s.name.startswith("execute_tool")]
    assert all(not events(s, names.EVENT_CUSTOM) for s in others)


CALLS = {
    "invoke": lambda g: g.invoke(USER),
    "stream-updates": lambda g: list(g.stream(USER, stream_mode="updates")),
    "stream-values": lambda g: list(g.stream(USER, stream_mode="values")),
    "stream-messages": lambda g: list(g.stream(USER, stream_mode="messages")),
    "stream-custom": lambda g: list(g.stream(USER, stream_mode="custom")),
    "stream-list-subgraphs": lambda g: list(
        g.stream(USER, stream_mode=["updates", "custom"], subgraphs=True)
    ),
    "stream-v2": lambda g: list(g.stream(USER, stream_mode=["custom"], version="v2")),
    "stream-events-v3": lambda g: list(g.stream_events(USER, version="v3")),
}

ACALLS = {
    "ainvoke": lambda g: g.ainvoke(USER),
    "astream-updates": lambda g: _drain(g.astream(USER, stream_mode="updates")),
    "astream-custom": lambda g: _drain(g.astream(USER, stream_mode="custom")),
    "astream-events-v2": lambda g: _drain(g.astream_events(USER, version="v2")),
    "astream-events-v3": lambda g: _drain_v3(g),  # noqa: PLW0108 - defined below
}


async def _drain(stream: Any) -> list[Any]:
    return [c async for c in stream]


async def _drain_v3(graph: Any) -> list[Any]:
    run = await graph.astream_events(USER, version="v3")
    return [e async for e in run]


@pytest.mark.parametrize("build", [create_agent_fan_out, tool_node_fan_out])
@pytest.mark.parametrize("call", CALLS.values(), ids=CALLS.keys())
def test_parallel_tool_writes_land_on_their_own_tool_span(build, call, tracer_provider, spans):
    """Parallel tool calls' writes are each on the call that wrote them, whatever the caller
    streams: create_agent's Send fan-out and a ToolNode running every call at once."""
    traced = otelstream.instrument(build(), tracer_provider=tracer_provider, options=CAPTURE)
    call(traced)
    _assert_each_tool_has_its_own_writes(spans())


@pytest.mark.parametrize("build", [create_agent_fan_out, tool_node_fan_out])
@pytest.mark.parametrize("call", ACALLS.values(), ids=ACALLS.keys())
async def test_parallel_tool_writes_land_on_their_own_tool_span_async(
    build, call, tracer_provider, spans
):
    """The same in async runs: Send fan-out tasks and a ToolNode gathering its calls."""
    traced = otelstream.instrument(build(), tracer_provider=tracer_provider, options=CAPTURE)
    await call(traced)
    _assert_each_tool_has_its_own_writes(spans())


@pytest.mark.parametrize("call", CALLS.values(), ids=CALLS.keys())
def test_node_and_subgraph_writes_land_on_their_task(call, tracer_provider, spans):
    """A node's write is on its task span, a subgraph node's inner write on the inner task,
    even when the caller asks for neither custom nor subgraphs."""
    traced = otelstream.instrument(writer_graph(), tracer_provider=tracer_provider, options=CAPTURE)
    call(traced)
    got = spans()
    assert _payloads(one(got, "first")) == ['{"node": "first"}']
    inner = one(got, "inner")
    assert _payloads(inner) == ['{"node": "inner"}']
    assert parent_of(got, inner) is one(got, "sub")
    assert not events(one(got, "sub"), names.EVENT_CUSTOM)
    assert not events(run_span(got), names.EVENT_CUSTOM)


def test_the_caller_receives_exactly_the_bare_custom_chunks(tracer_provider):
    """The tap hands every write on: the caller's custom chunks are the bare graph's."""
    kwargs: dict[str, Any] = {"stream_mode": ["custom", "updates"], "subgraphs": True}
    bare = [c for c in writer_graph().stream(USER, **kwargs) if c[1] == "custom"]
    traced = otelstream.instrument(writer_graph(), tracer_provider=tracer_provider)
    got = [c for c in traced.stream(USER, **kwargs) if c[1] == "custom"]
    assert [(c[0][0].split(":")[0] if c[0] else "", c[2]) for c in got] == [
        (c[0][0].split(":")[0] if c[0] else "", c[2]) for c in bare
    ]
    assert [c[2] for c in got] == [{"node": "first"}, {"node": "inner"}]


def test_writes_are_not_payloads_without_content_capture(tracer_provider, spans):
    """Without content capture a write records its type and size, never its payload."""
    traced = otelstream.instrument(create_agent_fan_out(), tracer_provider=tracer_provider)
    traced.invoke(USER)
    (event, _) = events(by_name(spans(), "execute_tool report")[0], names.EVENT_CUSTOM)
    assert event.attributes[names.OTELSTREAM_CUSTOM_TYPE] == "dict"
    assert event.attributes[names.OTELSTREAM_CUSTOM_SIZE] == 2
    assert names.OTELSTREAM_CUSTOM_PAYLOAD not in event.attributes


def _node_threads(graph_factory: Any, run: Any) -> list[str]:
    seen: list[str] = []

    def record(state: MessagesState) -> dict[str, Any]:
        seen.append(threading.current_thread().name)
        get_stream_writer()({"at": "node"})
        return {}

    run(graph_factory(record))
    return seen


def _one_node(node: Any) -> Any:
    builder = StateGraph(MessagesState)
    builder.add_node("only", node)
    builder.add_edge(START, "only")
    return builder.compile()


@pytest.mark.parametrize("mode", ["updates", "values", None])
def test_langgraph_schedules_the_run_as_bare(mode, tracer_provider, spans):
    """A one-task step runs on the caller's thread, as it does bare: no mode is added."""
    kwargs = {} if mode is None else {"stream_mode": mode}
    bare = _node_threads(_one_node, lambda g: list(g.stream(USER, **kwargs)))
    traced = _node_threads(
        _one_node,
        lambda g: list(
            otelstream.instrument(g, tracer_provider=tracer_provider).stream(USER, **kwargs)
        ),
    )
    assert bare == traced == [threading.current_thread().name]
    (event,) = events(one(spans(), "only"), names.EVENT_CUSTOM)
    assert event.attributes[names.OTELSTREAM_ATTRIBUTION] == "exact"


# ---- the Functional API ---------------------------------------------------------------------


@task
def step(item: str) -> str:
    get_stream_writer()({"step": item})
    return item.upper()


@entrypoint()
def pipeline(items: list[str]) -> list[str]:
    get_stream_writer()({"entry": len(items)})
    futures = [step(i) for i in items]
    return [f.result() for f in futures]


@task
async def astep(item: str) -> str:
    get_stream_writer()({"step": item})
    await asyncio.sleep(0)
    return item.upper()


@entrypoint()
async def apipeline(items: list[str]) -> list[str]:
    return list(await asyncio.gather(*(astep(i) for i in items)))


def _assert_functional(spans: list[Any], entry: str, task_name: str) -> None:
    run = run_span(spans)
    assert run.name == f"invoke_workflow {entry}"
    assert run.attributes[names.GEN_AI_WORKFLOW_NAME] == entry
    tasks = task_spans(spans, task_name)
    assert len(tasks) == 2
    for span in tasks:
        (event,) = events(span, names.EVENT_CUSTOM)
        assert event.attributes[names.OTELSTREAM_ATTRIBUTION] == "exact"
    assert sorted(_payloads(t)[0] for t in tasks) == ['{"step": "x"}', '{"step": "y"}']


def test_functional_api_run_named_after_the_entrypoint_with_task_spans(tracer_provider, spans):
    """An entrypoint's run is named after it; each @task call is a task span with its writes."""
    traced = otelstream.instrument(pipeline, tracer_provider=tracer_provider, options=CAPTURE)
    assert traced.invoke(["x", "y"]) == ["X", "Y"]
    got = spans()
    _assert_functional(got, "pipeline", "step")
    assert _payloads(one(got, "pipeline")) == ['{"entry": 2}']


async def test_functional_api_async(tracer_provider, spans):
    """Async entrypoint and tasks: the same span model."""
    traced = otelstream.instrument(apipeline, tracer_provider=tracer_provider, options=CAPTURE)
    assert await traced.ainvoke(["x", "y"]) == ["X", "Y"]
    _assert_functional(spans(), "apipeline", "astep")


def test_agent_run_is_invoke_agent(tracer_provider, spans):
    """A create_agent graph is an agent: invoke_agent {name} with gen_ai.agent.name."""
    traced = otelstream.instrument(create_agent_fan_out(), tracer_provider=tracer_provider)
    traced.invoke(USER)
    run = run_span(spans())
    assert run.name == "invoke_agent fan"
    assert run.attributes[names.GEN_AI_OPERATION_NAME] == "invoke_agent"
    assert run.attributes[names.GEN_AI_AGENT_NAME] == "fan"


# ---- what the tap relies on in LangGraph ----------------------------------------------------


def test_langgraph_internals_the_tap_relies_on():
    """Fails loudly if LangGraph changes what ``feeds/writer.py`` relies on."""
    # The config key the runtime lives under.
    from langgraph._internal._constants import CONFIG_KEY_RUNTIME  # noqa: PLC0415

    assert CONFIG_KEY_RUNTIME == "__pregel_runtime"
    # A Runtime in the config is taken as the parent runtime as it is.
    recorded: list[Any] = []

    class _Recorder:
        def custom_write(self, task_key: Any, run_id: Any, payload: Any) -> None:
            recorded.append((task_key, payload))

    tap = TapRuntime(stream_writer=WriteTap(lambda c: None, _Recorder(), None))  # type: ignore[arg-type]
    assert pregel_main._coerce_parent_runtime(tap) is tap
    # Runtime fields are what the tap copies, and override keeps the class.
    assert {f.name for f in dataclasses.fields(Runtime)} >= {"stream_writer", "execution_info"}
    task_runtime = tap.override(store=None)
    assert type(task_runtime) is TapRuntime
    # get_stream_writer reads the runtime's writer.
    import inspect  # noqa: PLC0415

    from langgraph import config as lg_config  # noqa: PLC0415

    assert "stream_writer" in inspect.getsource(lg_config.get_stream_writer)


def test_functional_api_chat_spans_sit_under_their_task(tracer_provider, spans):
    """A model called inside a @task is a chat span under that task's span."""
    model = FakeStreamingChatModel(responses=[final("x"), final("y")])

    @task
    def ask(question: str) -> str:
        return str(model.invoke(question).content)

    @entrypoint()
    def asker(questions: list[str]) -> list[str]:
        return [ask(q).result() for q in questions]

    traced = otelstream.instrument(asker, tracer_provider=tracer_provider)
    assert traced.invoke(["a", "b"]) == ["x", "y"]
    got = spans()
    asks = task_spans(got, "ask")
    chats = [s for s in got if s.name.startswith("chat ")]
    assert len(asks) == len(chats) == 2
    assert {parent_of(got, c).context.span_id for c in chats} == {  # type: ignore[union-attr]
        a.context.span_id for a in asks
    }
    assert run_span(got).name == "invoke_workflow asker"


async def test_a_graph_inside_a_timed_task_is_tapped_without_breaking_it(tracer_provider, spans):
    """A TimeoutPolicy attempt wraps the task's writer in LangGraph's own guard; a subgraph the
    task runs still works as bare and its write still lands on its own task."""
    from langchain_core.runnables import RunnableConfig  # noqa: PLC0415, TC002 - LangGraph reads it
    from langgraph.types import TimeoutPolicy  # noqa: PLC0415

    async def inner(state: MessagesState) -> dict[str, Any]:
        get_stream_writer()({"node": "inner"})
        return {}

    sub = StateGraph(MessagesState)
    sub.add_node("inner", inner)
    sub.add_edge(START, "inner")
    compiled_sub = sub.compile()

    async def outer(state: MessagesState, config: RunnableConfig) -> dict[str, Any]:
        await compiled_sub.ainvoke(state, config)
        return {}

    builder = StateGraph(MessagesState)
    builder.add_node("outer", outer, timeout=TimeoutPolicy(run_timeout=30))
    builder.add_edge(START, "outer")
    graph = builder.compile()
    traced = otelstream.instrument(graph, tracer_provider=tracer_provider, options=CAPTURE)
    traced_result, bare_result = await traced.ainvoke(USER), await graph.ainvoke(USER)
    assert [m.content for m in traced_result["messages"]] == [
        m.content for m in bare_result["messages"]
    ]
    got = spans()
    assert _payloads(one(got, "inner")) == ['{"node": "inner"}']
    assert not events(one(got, "outer"), names.EVENT_CUSTOM)
