"""``otelstream.transformer()``: LangGraph's v3 streaming protocol traced by a StreamTransformer.

Real graphs (``tests/graphs.py``), ``FakeStreamingChatModel`` streaming through LangChain's v2
message-event protocol, the real OTel SDK with in-memory exporters. The transformer is registered
the three ways LangGraph offers: at compile time, through ``graph.copy`` and per call.
"""

from __future__ import annotations

import asyncio
import gc
import re
from collections import Counter
from typing import TYPE_CHECKING, Any

import graphs
import pytest
from helpers import (
    CountingProcessor,
    attr,
    by_name,
    by_op,
    children,
    events,
    final,
    metric_points,
    one,
    parent_of,
    roots,
    task_spans,
    toolnode_graph,
)
from langchain_core.messages import AIMessage, AIMessageChunk
from langchain_core.outputs import ChatGenerationChunk
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.config import get_stream_writer
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.pregel import Pregel
from langgraph.stream._mux import StreamMux
from langgraph.stream.run_stream import AsyncGraphRunStream, GraphRunStream
from langgraph.stream.transformers import CustomTransformer
from langgraph.types import Command, interrupt
from opentelemetry.sdk.trace import TracerProvider
from test_passthrough import Normaliser, canonical

import otelstream
from otelstream import _internal, names
from otelstream.feeds import transformer as feed
from otelstream.feeds.transformer import suppress
from otelstream.testing import FakeStreamingChatModel, tool_call

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.trace import ReadableSpan

pytestmark = pytest.mark.filterwarnings(
    "ignore::langchain_core._api.beta_decorator.LangChainBetaWarning"
)

REGISTRATIONS = ("compile", "copy", "call")


@pytest.fixture
def factory(tracer_provider: TracerProvider, meter_provider: MeterProvider) -> Any:
    return otelstream.transformer(tracer_provider=tracer_provider, meter_provider=meter_provider)


@pytest.fixture
def counter(tracer_provider: TracerProvider) -> CountingProcessor:
    processor = CountingProcessor()
    tracer_provider.add_span_processor(processor)
    return processor


# ---- graphs and runs -----------------------------------------------------------------------------


def _chat_builder(model: FakeStreamingChatModel) -> StateGraph:
    """``START -> agent -> END``, the node streaming one model answer between two writes."""

    def agent(state: MessagesState) -> dict[str, Any]:
        writer = get_stream_writer()
        writer({"phase": "before"})
        answer = model.invoke(state["messages"])
        writer({"phase": "after"})
        return {"messages": [answer]}

    builder = StateGraph(MessagesState)
    builder.add_node("agent", agent)
    builder.add_edge(START, "agent")
    builder.add_edge("agent", END)
    return builder


def _registered(builder: StateGraph, how: str, factory: Any) -> tuple[Any, dict[str, Any]]:
    """The graph compiled with ``factory`` registered ``how``, and the call's extra kwargs."""
    if how == "compile":
        return builder.compile(name="chat", transformers=[factory]), {}
    graph = builder.compile(name="chat")
    if how == "copy":
        return graph.copy(update={"stream_transformers": [factory]}), {}
    return graph, {"transformers": [factory]}


def _drain(graph: Any, inputs: Any, **kwargs: Any) -> tuple[list[Any], Any, bool]:
    """Every event the caller iterates, then ``run.output`` and ``run.interrupted``."""
    run = graph.stream_events(inputs, version="v3", **kwargs)
    seen = list(run)
    return seen, run.output, run.interrupted


async def _adrain(graph: Any, inputs: Any, **kwargs: Any) -> tuple[list[Any], Any, bool]:
    run = await graph.astream_events(inputs, version="v3", **kwargs)
    seen = [event async for event in run]
    return seen, await run.output(), await run.interrupted()


def _root(spans: list[ReadableSpan]) -> ReadableSpan:
    (root,) = roots(spans)
    return root


def _customs(span: ReadableSpan) -> list[str]:
    """The attribution of each custom write on ``span``."""
    return [e.attributes[names.OTELSTREAM_ATTRIBUTION] for e in events(span, names.EVENT_CUSTOM)]


def _assert_chat_graph(spans: list[ReadableSpan], delay: float) -> None:
    root = _root(spans)
    assert root.name == names.SPAN_INVOKE_WORKFLOW.format(workflow="chat")  # the graph's name
    assert attr(root, names.GEN_AI_WORKFLOW_NAME) == "chat"
    assert attr(root, names.OTELSTREAM_OUTCOME) == "completed"
    (task,) = task_spans(spans, "agent")
    assert parent_of(spans, task) is root
    (chat,) = by_op(spans, names.OP_CHAT)
    assert parent_of(spans, chat) is task
    assert attr(chat, names.OTELSTREAM_CHUNK_COUNT_TOTAL) == 3  # "one ", "two ", "three"
    assert events(chat, names.EVENT_CHUNK)
    # The chat starts no later than its task's start, so the first chunk's delay is in the TTFT.
    assert attr(chat, names.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK) >= delay
    assert attr(chat, names.GEN_AI_USAGE_OUTPUT_TOKENS) == 3
    assert attr(chat, names.GEN_AI_RESPONSE_FINISH_REASONS) == ("stop",)
    assert chat.start_time >= task.start_time  # type: ignore[operator]
    assert chat.end_time <= task.end_time  # type: ignore[operator]
    assert _customs(task) == ["exact", "exact"]


def _chat_model(**kwargs: Any) -> FakeStreamingChatModel:
    return FakeStreamingChatModel(
        responses=[AIMessage(content="one two three")], first_chunk_delay=0.02, **kwargs
    )


def test_bad_options_say_what_to_pass():
    """Options that are not an ``otelstream.Options`` raise ``TypeError`` at once."""
    with pytest.raises(TypeError, match="otelstream.Options"):
        otelstream.transformer(options={"capture_content": True})  # type: ignore[arg-type]


# ---- the span model ------------------------------------------------------------------------------


@pytest.mark.parametrize("how", REGISTRATIONS)
def test_chat_graph(how, factory, spans, counter, metric_reader):
    """A chat graph gives run, task and chat spans with chunk events, TTFT, usage and writes."""
    graph, kwargs = _registered(_chat_builder(_chat_model()), how, factory)
    _drain(graph, graphs.chat_input(), **kwargs)
    _assert_chat_graph(spans(), 0.02)
    assert counter.open == 0
    points = metric_points(metric_reader)
    assert len(points[names.METRIC_TIME_TO_FIRST_CHUNK]) == 1


@pytest.mark.parametrize("how", REGISTRATIONS)
async def test_chat_graph_async(how, factory, spans, counter):
    """Async: the same span model from ``astream_events(version="v3")``."""
    graph, kwargs = _registered(_chat_builder(_chat_model()), how, factory)
    await _adrain(graph, graphs.chat_input(), **kwargs)
    _assert_chat_graph(spans(), 0.02)
    assert counter.open == 0


class _SelfReporting(FakeStreamingChatModel):
    """A model whose ``_stream`` reports each token to its run manager itself."""

    def _stream(self, messages, stop=None, run_manager=None, **kwargs):  # type: ignore[no-untyped-def]
        for chunk in super()._stream(messages, stop, run_manager, **kwargs):
            if run_manager is not None:
                run_manager.on_llm_new_token(str(chunk.message.content), chunk=chunk)
            yield ChatGenerationChunk(message=AIMessageChunk(**chunk.message.model_dump()))


def test_model_that_reports_its_own_tokens(factory, spans):
    """A model that reports tokens itself gets the same chunks and TTFT as one that does not."""
    model = _SelfReporting(responses=[AIMessage(content="one two three")], first_chunk_delay=0.02)
    graph, kwargs = _registered(_chat_builder(model), "call", factory)
    _drain(graph, graphs.chat_input(), **kwargs)
    _assert_chat_graph(spans(), 0.02)


def test_content_capture(tracer_provider, spans):
    """With capture on, the chat's answer, chunk texts and custom payloads are recorded."""
    factory = otelstream.transformer(
        tracer_provider=tracer_provider, options=otelstream.Options(capture_content=True)
    )
    graph, kwargs = _registered(_chat_builder(_chat_model()), "call", factory)
    _drain(graph, graphs.chat_input(), **kwargs)
    done = spans()
    (chat,) = by_op(done, names.OP_CHAT)
    assert "one two three" in attr(chat, names.GEN_AI_OUTPUT_MESSAGES)
    texts = [e.attributes[names.OTELSTREAM_CHUNK_TEXT] for e in events(chat, names.EVENT_CHUNK)]
    assert "".join(texts) == "one two three"
    (task,) = task_spans(done, "agent")
    payloads = [
        e.attributes[names.OTELSTREAM_CUSTOM_PAYLOAD] for e in events(task, "langgraph.custom")
    ]
    assert "before" in payloads[0]


def test_content_capture_of_tool_calls(tracer_provider, spans):
    """With capture on, a tool call's arguments and result, and the model's call, are recorded."""
    factory = otelstream.transformer(
        tracer_provider=tracer_provider, options=otelstream.Options(capture_content=True)
    )
    _drain(graphs.agent_graph(), graphs.chat_input(), transformers=[factory])
    done = spans()
    (tool,) = by_op(done, names.OP_EXECUTE_TOOL)
    assert "weather" in attr(tool, names.GEN_AI_TOOL_CALL_ARGUMENTS)
    assert "found weather" in attr(tool, names.GEN_AI_TOOL_CALL_RESULT)
    first = by_op(done, names.OP_CHAT)[0]
    assert "call_lookup" in attr(first, names.GEN_AI_OUTPUT_MESSAGES)


def _assert_agent(spans: list[ReadableSpan]) -> None:
    root = _root(spans)
    assert root.name == names.SPAN_INVOKE_AGENT.format(agent="agent")  # create_agent: an agent
    assert attr(root, names.GEN_AI_AGENT_NAME) == "agent"
    chats = by_op(spans, names.OP_CHAT)
    assert [parent_of(spans, c).name for c in chats] == ["model", "model"]  # type: ignore[union-attr]
    (tool,) = by_op(spans, names.OP_EXECUTE_TOOL)
    assert tool.name == "execute_tool lookup"
    assert attr(tool, names.GEN_AI_TOOL_CALL_ID) == "call_lookup"
    (tools_task,) = task_spans(spans, "tools")
    assert parent_of(spans, tool) is tools_task
    assert chats[0].end_time <= tool.start_time  # type: ignore[operator]
    assert tool.end_time <= chats[1].start_time  # type: ignore[operator]
    assert _customs(tool) == ["exact", "exact"]  # the tool's own writes, on its span
    assert _customs(tools_task) == []
    first = chats[0]
    assert attr(first, names.GEN_AI_RESPONSE_FINISH_REASONS) == ("tool_calls",)
    assert names.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK in first.attributes  # a tool-call chunk


def test_create_agent_with_a_tool_call(factory, spans, counter):
    """A ``create_agent`` run: a chat span per model call and an ``execute_tool`` span."""
    graph = graphs.agent_graph().copy(update={"stream_transformers": [factory]})
    _drain(graph, graphs.chat_input())
    _assert_agent(spans())
    assert counter.open == 0


async def test_create_agent_with_a_tool_call_async(factory, spans, counter):
    """Async: the same ``create_agent`` spans."""
    await _adrain(graphs.agent_graph(), graphs.chat_input(), transformers=[factory])
    _assert_agent(spans())
    assert counter.open == 0


@pytest.mark.parametrize("run_async", [False, True])
async def test_tool_node_with_two_calls(run_async, factory, spans):
    """A ``ToolNode`` running two calls: two tool spans, and ``shout``'s write is never
    attributed to ``add``."""
    graph = graphs.tool_node_graph()
    if run_async:
        await _adrain(graph, graphs.chat_input(), transformers=[factory])
    else:
        _drain(graph, graphs.chat_input(), transformers=[factory])
    done = spans()
    add = one(done, "execute_tool add")
    shout = one(done, "execute_tool shout")
    (tools_task,) = task_spans(done, "tools")
    assert parent_of(done, add) is tools_task
    assert parent_of(done, shout) is tools_task
    assert _customs(add) == []
    # Exact on shout when it ran alone; on the task as "ancestor" when both calls were open.
    assert _customs(shout) + _customs(tools_task) in (["exact"], ["ancestor"])


class ToolFailure(Exception):
    """A tool's own exception type."""


@tool
def exploding(query: str) -> str:
    """Raises the tool's error."""
    raise ToolFailure("broken on purpose")


expert = FakeStreamingChatModel(responses=[AIMessage(content="ask the expert")])


@tool
def ask_expert(question: str) -> str:
    """Asks another model: a model call inside a tool."""
    return str(expert.invoke(question).content)


def test_tool_error(factory, spans):
    """A raising tool: its tool span is an error (``ToolError``: the ``tools`` event carries
    only the message), its task and the run carry the exception's own type."""
    model = FakeStreamingChatModel(responses=[tool_call("exploding", {"query": "q"}, call_id="x1")])
    graph = toolnode_graph(model, [exploding])
    graph.nodes["tools"].bound.handle_tool_errors = False
    with pytest.raises(ToolFailure):
        _drain(graph, graphs.chat_input(), transformers=[factory])
    done = spans()
    tool_span = one(done, "execute_tool exploding")
    assert attr(tool_span, names.ERROR_TYPE) == "ToolError"
    assert not tool_span.status.is_ok
    (task,) = task_spans(done, "tools")
    assert parent_of(done, tool_span) is task
    assert attr(task, names.ERROR_TYPE) == "ToolFailure"
    assert attr(_root(done), names.ERROR_TYPE) == "ToolFailure"


def test_model_inside_a_tool(factory, spans):
    """A model called by a tool: its chat span nests under the tool span."""
    model = FakeStreamingChatModel(
        responses=[tool_call("ask_expert", {"question": "q"}, call_id="e1"), final("thanks")]
    )
    _drain(toolnode_graph(model, [ask_expert]), graphs.chat_input(), transformers=[factory])
    done = spans()
    tool_span = one(done, "execute_tool ask_expert")
    inner = [c for c in by_op(done, names.OP_CHAT) if parent_of(done, c) is tool_span]
    assert len(inner) == 1
    assert inner[0].start_time >= tool_span.start_time  # type: ignore[operator]
    assert inner[0].end_time <= tool_span.end_time  # type: ignore[operator]


@pytest.mark.parametrize("run_async", [False, True])
async def test_fan_out(run_async, factory, spans, counter):
    """``Send`` fan-out: three parallel ``work`` tasks, each with its chat; a write is exact only
    when its task was the one open, else it goes on the run as ``ancestor``."""
    graph = graphs.fan_out_graph()
    if run_async:
        await _adrain(graph, graphs.fan_out_input(), transformers=[factory])
    else:
        _drain(graph, graphs.fan_out_input(), transformers=[factory])
    done = spans()
    root = _root(done)
    work = task_spans(done, "work")
    assert len(work) == 3
    assert all(parent_of(done, w) is root for w in work)
    for w in work:
        (chat,) = children(done, w)
        assert chat.name == "chat fake-model"
    writes = _customs(root) + [a for w in work for a in _customs(w)]
    assert len(writes) == 3
    assert set(_customs(root)) <= {"ancestor"}
    assert all(_customs(w) in ([], ["exact"]) for w in work)
    assert counter.open == 0


@pytest.mark.parametrize("run_async", [False, True])
async def test_subgraph(run_async, factory, spans):
    """A subgraph's task spans nest under the task running it; its writes and chat sit under its
    own task. Each event is recorded once though LangGraph forwards it to a subgraph mini-mux."""
    graph = graphs.subgraph_graph()
    if run_async:
        await _adrain(graph, graphs.chat_input(), transformers=[factory])
    else:
        _drain(graph, graphs.chat_input(), transformers=[factory])
    done = spans()
    assert len(roots(done)) == 1
    (inner,) = task_spans(done, "inner")
    (inner_chat,) = task_spans(done, "inner_chat")
    assert parent_of(done, inner_chat) is inner
    (chat,) = by_op(done, names.OP_CHAT)
    assert parent_of(done, chat) is inner_chat
    assert _customs(inner_chat) == ["exact", "exact"]
    assert attr(chat, names.OTELSTREAM_CHUNK_COUNT_TOTAL) == 3


def test_v3_run_inside_a_node(factory, spans):
    """A v3 run started inside another graph's node (its mux scoped to that node's namespace,
    not ``()``) is still recorded, once, by its root transformer."""
    inner = graphs.linear_graph()

    def outer_node(state: MessagesState) -> dict[str, Any]:
        list(inner.stream_events(graphs.chat_input(), version="v3", transformers=[factory]))
        return {}

    builder = StateGraph(MessagesState)
    builder.add_node("outer_node", outer_node)
    builder.add_edge(START, "outer_node")
    builder.compile(name="outer").invoke({"messages": []})
    done = spans()
    root = _root(done)
    assert root.name.endswith(" linear")
    assert [s.name for s in children(done, root)] == ["prepare", "chat", "finish"]
    (chat,) = by_op(done, names.OP_CHAT)
    assert parent_of(done, chat) is one(done, "chat")
    assert _customs(one(done, "chat")) == ["exact", "exact"]


def _approval_graph(factory: Any) -> Any:
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
    return builder.compile(checkpointer=InMemorySaver(), transformers=[factory])


def test_interrupt_then_resume(factory, spans):
    """``interrupt()`` ends the run as interrupted (not an error); resuming is a new run."""
    graph = _approval_graph(factory)
    config = {"configurable": {"thread_id": "t1"}}
    _, _, interrupted = _drain(graph, graphs.chat_input(), config=config)
    assert interrupted
    _drain(graph, Command(resume="yes"), config=config)
    runs = sorted(roots(spans()), key=lambda s: s.start_time or 0)
    assert [attr(r, names.OTELSTREAM_OUTCOME) for r in runs] == ["interrupted", "completed"]
    assert all(r.status.is_unset for r in runs)
    assert [attr(r, names.GEN_AI_CONVERSATION_ID) for r in runs] == ["t1", "t1"]
    first_ask = by_name(spans(), "ask")[0]
    assert events(first_ask, names.EVENT_INTERRUPT)


async def test_interrupt_async(factory, spans):
    """Async: an interrupted run has outcome interrupted."""
    graph = _approval_graph(factory)
    config = {"configurable": {"thread_id": "t2"}}
    _, _, interrupted = await _adrain(graph, graphs.chat_input(), config=config)
    assert interrupted
    assert attr(_root(spans()), names.OTELSTREAM_OUTCOME) == "interrupted"


class AppError(Exception):
    """The app's own exception type."""


def _failing_graph(error: BaseException, factory: Any) -> Any:
    def ok(state: MessagesState) -> dict[str, Any]:
        return {}

    def fails(state: MessagesState) -> dict[str, Any]:
        raise error

    builder = StateGraph(MessagesState)
    builder.add_node("ok", ok)
    builder.add_node("fails", fails)
    builder.add_edge(START, "ok")
    builder.add_edge("ok", "fails")
    return builder.compile(transformers=[factory])


def _assert_failed(spans: list[ReadableSpan]) -> None:
    root = _root(spans)
    assert attr(root, names.OTELSTREAM_OUTCOME) == "error"
    assert attr(root, names.ERROR_TYPE) == "AppError"
    (task,) = task_spans(spans, "fails")
    assert attr(task, names.ERROR_TYPE) == "AppError"
    assert not task.status.is_ok


def test_raising_node(factory, spans, counter):
    """A node's exception reaches the caller unchanged, from iteration and from ``run.output``;
    its task and the run are errors."""
    error = AppError("broken on purpose")
    run = _failing_graph(error, factory).stream_events(graphs.chat_input(), version="v3")
    with pytest.raises(AppError) as info:
        list(run)
    assert info.value is error
    with pytest.raises(AppError) as info:
        _ = run.output
    assert info.value is error
    _assert_failed(spans())
    assert counter.open == 0


async def test_raising_node_async(factory, spans, counter):
    """Async: the node's exception reaches the caller unchanged."""
    error = AppError("broken on purpose")
    run = await _failing_graph(error, factory).astream_events(graphs.chat_input(), version="v3")
    with pytest.raises(AppError) as info:
        async for _ in run:
            pass
    assert info.value is error
    _assert_failed(spans())
    assert counter.open == 0


def test_raising_model(factory, spans, counter):
    """A model that raises: its chat span (open when its task failed) is an error too."""
    error = AppError("broken on purpose")
    graph = _chat_builder(FakeStreamingChatModel(error=error)).compile(transformers=[factory])
    with pytest.raises(AppError) as info:
        _drain(graph, graphs.chat_input())
    assert info.value is error
    done = spans()
    assert attr(_root(done), names.OTELSTREAM_OUTCOME) == "error"
    assert attr(one(done, "agent"), names.ERROR_TYPE) == "AppError"
    assert counter.open == 0


# ---- leaving early -------------------------------------------------------------------------------


def _slow_graph(factory: Any) -> Any:
    model = FakeStreamingChatModel(
        responses=[AIMessage(content="one two three four five six")], chunk_delay=0.01
    )
    return _chat_builder(model).compile(name="chat", transformers=[factory])


def _assert_cancelled(spans: list[ReadableSpan], counter: CountingProcessor) -> None:
    assert counter.started
    assert counter.open == 0, (counter.started, counter.ended)
    root = _root(spans)
    assert attr(root, names.OTELSTREAM_OUTCOME) == "cancelled"
    assert [s.name for s in spans if not s.status.is_unset] == []


def _first_chunk(run: Any) -> Iterator[Any]:
    for event in run:
        if event["method"] == "messages":
            yield event
            return


def test_break_inside_with(factory, spans, counter):
    """Leaving ``with run:`` early (LangGraph aborts the run) ends every span, as cancelled."""
    with _slow_graph(factory).stream_events(graphs.chat_input(), version="v3") as run:
        for event in run:
            if event["method"] == "messages":
                break
    _assert_cancelled(spans(), counter)


def test_break_then_drop(factory, spans, counter):
    """Breaking out and dropping the run stream ends every span once it is collected."""
    run = _slow_graph(factory).stream_events(graphs.chat_input(), version="v3")
    for event in run:
        if event["method"] == "messages":
            break
    assert counter.open > 0  # the run is still going: nothing has ended it yet
    del run, event
    gc.collect()
    _assert_cancelled(spans(), counter)


async def test_break_inside_async_with(factory, spans, counter):
    """Async: leaving ``async with run:`` early ends every span, as cancelled."""
    graph = _slow_graph(factory)
    async with await graph.astream_events(graphs.chat_input(), version="v3") as run:
        async for event in run:
            if event["method"] == "messages":
                break
    _assert_cancelled(spans(), counter)


async def test_task_cancelled(factory, spans, counter):
    """Cancelling the consuming task, then dropping the run, ends every span as cancelled."""
    graph = _slow_graph(factory)
    started = asyncio.Event()

    async def consume() -> None:
        run = await graph.astream_events(graphs.chat_input(), version="v3")
        async for event in run:
            if event["method"] == "messages":
                started.set()

    task = asyncio.create_task(consume())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    del task
    # LangGraph cancels its in-flight pull of the graph; once the loop has run that, nothing
    # holds the run stream any more.
    for _ in range(100):
        await asyncio.sleep(0)
        gc.collect()
        if counter.open == 0:
            break
    _assert_cancelled(spans(), counter)


def test_run_never_iterated_records_nothing(factory, spans):
    """A run stream built and dropped without being iterated ran nothing, so records nothing."""
    run = _slow_graph(factory).stream_events(graphs.chat_input(), version="v3")
    del run
    gc.collect()
    assert spans() == []


# ---- never twice ---------------------------------------------------------------------------------


def test_suppress_makes_the_transformer_passive(factory, spans):
    """A run whose mux is built inside ``suppress()`` (as otelstream's proxy and instrumentor do)
    is left to them: the transformer records nothing and changes nothing."""
    graph = _slow_graph(factory)
    with suppress():
        run = graph.stream_events(graphs.chat_input(), version="v3")
    seen = list(run)
    assert spans() == []
    assert seen
    assert [e for e in seen if e["method"] in ("custom", "tools", "updates")] == []


async def test_suppress_async(factory, spans):
    """Async: the mux is built when ``astream_events`` is awaited, so that is what to wrap."""
    graph = _slow_graph(factory)
    with suppress():
        run = await graph.astream_events(graphs.chat_input(), version="v3")
    async for _ in run:
        pass
    assert spans() == []


def test_registered_twice_records_once(factory, tracer_provider, spans):
    """At compile time and per call: one run, not two."""
    graph = _slow_graph(factory)
    other = otelstream.transformer(tracer_provider=tracer_provider)
    _drain(graph, graphs.chat_input(), transformers=[other])
    assert len(roots(spans())) == 1


# ---- telemetry that fails ------------------------------------------------------------------------


class _FailingStart(CountingProcessor):
    def on_start(self, span: Any, parent_context: Any = None) -> None:
        msg = "telemetry backend exploded"
        raise RuntimeError(msg)


def test_telemetry_failure_never_changes_the_run():
    """A tracer that raises on every span start: the run's events and output are unchanged."""
    provider = TracerProvider()
    provider.add_span_processor(_FailingStart())
    _internal.set_strict(False)
    try:
        traced = graphs.linear_graph().copy(
            update={"stream_transformers": [otelstream.transformer(tracer_provider=provider)]}
        )
        seen, output, _ = _drain(traced, graphs.chat_input())
        bare_seen, bare_output, _ = _drain(graphs.linear_graph(), graphs.chat_input())
    finally:
        _internal.set_strict(True)
        provider.shutdown()
    assert _normalised(seen, output, ordered=True) == _normalised(
        bare_seen, bare_output, ordered=True
    )


# ---- pass-through --------------------------------------------------------------------------------

GRAPHS: dict[str, tuple[Callable[..., Any], Callable[[], Any], bool]] = {
    "linear": (graphs.linear_graph, graphs.chat_input, True),
    "subgraph": (graphs.subgraph_graph, graphs.chat_input, True),
    "agent": (graphs.agent_graph, graphs.chat_input, True),
    "fan_out": (graphs.fan_out_graph, graphs.fan_out_input, False),
    "tool_node": (graphs.tool_node_graph, graphs.chat_input, False),
}


_HASH = re.compile(r"\b[0-9a-f]{32}\b")


class _Normaliser(Normaliser):
    """``test_passthrough``'s normaliser, plus interrupt ids (a hash of the task's namespace)."""

    def text(self, value: str) -> str:
        return _HASH.sub("<hash>", super().text(value))


def _normalised(seen: list[Any], output: Any, *, ordered: bool) -> Any:
    """Events and output with what differs between any two runs replaced: uuids (task, run and
    message ids), interrupt ids, ``params.timestamp`` (wall milliseconds). ``seq`` is kept where
    the order is deterministic: it numbers only the events the caller sees, so an extra or a
    missing event shows in it. Parallel graphs are compared as multisets without ``seq``, their
    branches interleaving differently from run to run, and by their number of events."""
    normalise = _Normaliser(number_ids=ordered)
    rows = []
    for event in seen:
        row = dict(event)
        row["params"] = {**event["params"], "timestamp": "<timestamp>"}
        if not ordered:
            row.pop("seq", None)
        rows.append(normalise(row))
    if not ordered:
        return len(rows), Counter(canonical(r) for r in rows), normalise(output)
    return rows, normalise(output)


@pytest.mark.parametrize("name", GRAPHS)
async def test_events_and_output_are_the_bare_graphs(name, factory, spans):
    """Sync and async: the events the caller iterates, ``run.output`` and ``run.interrupted``
    equal the bare graph's."""
    build, inputs, ordered = GRAPHS[name]
    bare = _drain(build(), inputs())
    traced = _drain(build(), inputs(), transformers=[factory])
    abare = await _adrain(build(), inputs())
    atraced = await _adrain(build(), inputs(), transformers=[factory])
    for plain, with_otel in ((bare, traced), (abare, atraced)):
        assert _normalised(with_otel[0], with_otel[1], ordered=ordered) == _normalised(
            plain[0], plain[1], ordered=ordered
        )
        assert with_otel[2] == plain[2]
    assert len(roots(spans())) == 2  # the traced runs were traced


def test_custom_events_the_caller_asked_for_stay(factory, spans):
    """With LangGraph's ``CustomTransformer`` registered, the caller's ``custom`` events are
    there, traced or not, and the writes are recorded too."""
    bare = _drain(graphs.linear_graph(), graphs.chat_input(), transformers=[CustomTransformer])
    traced = _drain(
        graphs.linear_graph(), graphs.chat_input(), transformers=[CustomTransformer, factory]
    )
    assert [e["method"] for e in bare[0]].count("custom") == 2
    assert _normalised(traced[0], traced[1], ordered=True) == _normalised(
        bare[0], bare[1], ordered=True
    )
    assert _customs(one(spans(), "chat")) == ["exact", "exact"]


def _projections(graph: Any, **kwargs: Any) -> list[Any]:
    run = graph.stream_events(graphs.chat_input(), version="v3", **kwargs)
    seen: list[Any] = []
    for name, item in run.interleave("values", "messages", "lifecycle", "subgraphs"):
        if name == "messages":
            seen.append((name, "".join(item.text)))
        elif name == "subgraphs":
            seen.append((name, item.path[0].partition(":")[0], item.graph_name))
        else:
            seen.append((name, item))
    return seen


@pytest.mark.parametrize("name", ["linear", "subgraph", "agent"])
def test_projections_are_the_bare_graphs(name, factory):
    """What the caller reads from LangGraph's projections (``run.values``, ``run.messages``,
    ``run.lifecycle``, ``run.subgraphs``) equals the bare graph's."""
    build = GRAPHS[name][0]
    normalise = _Normaliser(number_ids=True)
    traced = _projections(build(), transformers=[factory])
    assert normalise(traced) == _Normaliser(number_ids=True)(_projections(build()))
    # Root messages only: a subgraph's chat is on its handle, not on ``run.messages``.
    assert any(n == ("subgraphs" if name == "subgraph" else "messages") for n, *_ in traced)


def test_interrupted_run_passes_through(factory):
    """An interrupted run's events, ``output`` and ``interrupted`` equal the bare graph's."""
    config = {"configurable": {"thread_id": "p"}}
    traced = _drain(_approval_graph(factory), graphs.chat_input(), config=config)
    with suppress():  # the same graph, its transformer passive: the bare run
        run = _approval_graph(factory).stream_events(
            graphs.chat_input(), version="v3", config=config
        )
    bare = (list(run), run.output, run.interrupted)
    assert _normalised(traced[0], traced[1], ordered=True) == _normalised(
        bare[0], bare[1], ordered=True
    )
    assert traced[2] is bare[2] is True


def test_static_interrupt(factory, spans):
    """A static ``interrupt_before`` ends the run as interrupted. LangGraph 1.2.24 shows it only
    in ``updates`` (``run.interrupted`` stays False), which the transformer reads for this."""
    builder = StateGraph(MessagesState)
    builder.add_node("first", lambda state: {})
    builder.add_node("second", lambda state: {})
    builder.add_edge(START, "first")
    builder.add_edge("first", "second")
    graph = builder.compile(
        checkpointer=InMemorySaver(), interrupt_before=["second"], transformers=[factory]
    )
    config = {"configurable": {"thread_id": "s"}}
    _drain(graph, graphs.chat_input(), config=config)
    assert attr(_root(spans()), names.OTELSTREAM_OUTCOME) == "interrupted"
    assert [s.name for s in task_spans(spans())] == ["first"]


async def test_langgraph_internals_this_feed_reads():
    """The LangGraph internals the transformer relies on are still there (if this fails, read
    the docstring of ``otelstream.feeds.transformer`` and update it)."""
    # The graph (and its name) is the ``self`` of the frame building the mux.
    assert set(feed._STREAM_ENTRY) <= set(vars(Pregel))
    # Root and mini-muxes differ by ``_assign_seq``; the registered transformers and the run
    # stream's pump are on the mux.
    root = StreamMux(factories=[], scope=())
    assert root._assign_seq is True
    child = root._make_child(("sub:1",))
    assert child._assign_seq is False
    assert root._transformers == []
    run = GraphRunStream(iter(()), root)
    assert root._pump_fn.__self__ is run  # type: ignore[union-attr]
    # abort() drops the graph iterator before it closes the mux; a finished run keeps it.
    assert run._graph_iter is not None
    run.abort()
    assert run._graph_iter is None

    async def nothing() -> Any:
        return
        yield

    amux = StreamMux(factories=[], scope=(), is_async=True)
    arun = AsyncGraphRunStream(nothing(), amux)
    assert amux._apump_fn.__self__ is arun  # type: ignore[union-attr]
    assert arun._graph_aiter is not None
    await arun.abort()
    assert arun._graph_aiter is None
