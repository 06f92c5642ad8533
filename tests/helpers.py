"""Helpers shared by the span tests: span-tree queries, a counting processor and small graphs."""

from __future__ import annotations

import asyncio
import operator
import sys
import time
from typing import TYPE_CHECKING, Annotated, Any

import pytest
from langchain_core.messages import AIMessage
from langchain_core.runnables import RunnableLambda
from langchain_core.tools import tool
from langgraph.config import get_stream_writer
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from typing_extensions import TypedDict

from otelstream import names

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace import Span

    from otelstream.testing import FakeStreamingChatModel

USER = {"messages": [{"role": "user", "content": "hello"}]}


NO_ASYNC_CONFIG_BEFORE_311 = pytest.mark.xfail(
    sys.version_info < (3, 11),
    reason=(
        "Python 3.10: asyncio cannot run a task in a given context, so LangGraph leaves an async "
        "node, @task or interrupt() without its config (RuntimeError: Called get_config outside "
        "of a runnable context), bare too; see README, Known limits"
    ),
    strict=True,
)
"""Marks a test of async nodes that LangGraph itself cannot run on Python 3.10."""


# ---- span-tree queries --------------------------------------------------------------------------


def by_name(spans: Sequence[ReadableSpan], name: str) -> list[ReadableSpan]:
    """Every span called ``name``, in the given order."""
    return [s for s in spans if s.name == name]


def one(spans: Sequence[ReadableSpan], name: str) -> ReadableSpan:
    """The only span called ``name``."""
    found = by_name(spans, name)
    assert len(found) == 1, f"expected one {name!r}, got {[s.name for s in spans]}"
    return found[0]


def by_op(spans: Sequence[ReadableSpan], operation: str) -> list[ReadableSpan]:
    """Every span whose ``gen_ai.operation.name`` is ``operation``."""
    return [s for s in spans if (s.attributes or {}).get(names.GEN_AI_OPERATION_NAME) == operation]


def run_spans(spans: Sequence[ReadableSpan]) -> list[ReadableSpan]:
    """The run (``invoke_agent`` or ``invoke_workflow``) spans."""
    return by_op(spans, names.OP_INVOKE_AGENT) + by_op(spans, names.OP_INVOKE_WORKFLOW)


def run_span(spans: Sequence[ReadableSpan]) -> ReadableSpan:
    """The only run span."""
    runs = run_spans(spans)
    assert len(runs) == 1, [s.name for s in spans]
    return runs[0]


def task_spans(spans: Sequence[ReadableSpan], node: str | None = None) -> list[ReadableSpan]:
    """Task spans (they carry ``langgraph.node``), optionally of one node."""
    return [
        s
        for s in spans
        if names.LANGGRAPH_NODE in (s.attributes or {})
        and (node is None or s.attributes[names.LANGGRAPH_NODE] == node)  # type: ignore[index]
    ]


def children(spans: Sequence[ReadableSpan], parent: ReadableSpan) -> list[ReadableSpan]:
    """The direct children of ``parent``."""
    pid = parent.context.span_id  # type: ignore[union-attr]
    return [s for s in spans if s.parent is not None and s.parent.span_id == pid]


def parent_of(spans: Sequence[ReadableSpan], span: ReadableSpan) -> ReadableSpan | None:
    """The exported parent of ``span``, if any."""
    if span.parent is None:
        return None
    for s in spans:
        if s.context.span_id == span.parent.span_id:  # type: ignore[union-attr]
            return s
    return None


def roots(spans: Sequence[ReadableSpan]) -> list[ReadableSpan]:
    """Spans without a parent."""
    return [s for s in spans if s.parent is None]


def events(span: ReadableSpan, name: str) -> list[Any]:
    """The span's events called ``name``."""
    return [e for e in span.events if e.name == name]


def attr(span: ReadableSpan, key: str) -> Any:
    """One attribute of the span (KeyError when missing)."""
    return (span.attributes or {})[key]


def overlap(a: ReadableSpan, b: ReadableSpan) -> bool:
    """Whether two spans' time ranges overlap."""
    return a.start_time < b.end_time and b.start_time < a.end_time  # type: ignore[operator]


# ---- a real SDK span processor that counts ----------------------------------------------------


class CountingProcessor(SpanProcessor):
    """Counts spans started and ended: a span left open shows as a difference."""

    def __init__(self) -> None:
        self.started: list[str] = []
        self.ended: list[str] = []

    def on_start(self, span: Span, parent_context: Any = None) -> None:
        self.started.append(span.name)  # type: ignore[attr-defined]

    def on_end(self, span: ReadableSpan) -> None:
        self.ended.append(span.name)

    @property
    def open(self) -> int:
        return len(self.started) - len(self.ended)


class FailingStartProcessor(SpanProcessor):
    """A span processor whose ``on_start`` raises: the SDK does not swallow it."""

    def on_start(self, span: Span, parent_context: Any = None) -> None:
        msg = "telemetry backend exploded"
        raise RuntimeError(msg)


# ---- graphs -------------------------------------------------------------------------------------


def chat_graph(model: FakeStreamingChatModel, *, name: str | None = None) -> Any:
    """``START -> agent -> END``: one node calling ``model`` once."""

    def agent(state: MessagesState) -> dict[str, Any]:
        return {"messages": [model.invoke(state["messages"])]}

    async def aagent(state: MessagesState) -> dict[str, Any]:
        return {"messages": [await model.ainvoke(state["messages"])]}

    builder = StateGraph(MessagesState)
    builder.add_node("agent", RunnableLambda(agent, afunc=aagent, name="agent"))
    builder.add_edge(START, "agent")
    builder.add_edge("agent", END)
    return builder.compile(name=name) if name else builder.compile()


def toolnode_graph(model: FakeStreamingChatModel, tools: list[Any]) -> Any:
    """A hand-written agent: ``agent`` node + one ``ToolNode`` task running all calls."""

    def agent(state: MessagesState) -> dict[str, Any]:
        return {"messages": [model.invoke(state["messages"])]}

    async def aagent(state: MessagesState) -> dict[str, Any]:
        return {"messages": [await model.ainvoke(state["messages"])]}

    builder = StateGraph(MessagesState)
    builder.add_node("agent", RunnableLambda(agent, afunc=aagent, name="agent"))
    builder.add_node("tools", ToolNode(tools))
    builder.add_edge(START, "agent")
    builder.add_conditional_edges("agent", tools_condition)
    builder.add_edge("tools", "agent")
    return builder.compile()


class CountState(TypedDict):
    items: Annotated[list[str], operator.add]


def linear_graph(*nodes: str, sleep: float = 0.0) -> Any:
    """``START -> nodes[0] -> ... -> END``, each node appending its name."""
    builder = StateGraph(CountState)
    for node in nodes:

        def fn(state: CountState, _node: str = node) -> dict[str, Any]:
            if sleep:
                time.sleep(sleep)
            return {"items": [_node]}

        builder.add_node(node, fn)
    builder.add_edge(START, nodes[0])
    for a, b in zip(nodes, nodes[1:]):
        builder.add_edge(a, b)
    builder.add_edge(nodes[-1], END)
    return builder.compile()


@tool
def get_weather(city: str) -> str:
    """Get weather for a given city."""
    return f"It's always sunny in {city}!"


@tool
def fetch_records(source: str) -> str:
    """Fetch records from a source, reporting progress."""
    writer = get_stream_writer()
    writer("Fetched 10/100 records")
    return f"100 records from {source}"


def final(text: str = "Done.") -> AIMessage:
    """A scripted final answer with no tool calls."""
    return AIMessage(content=text)


# ---- metrics --------------------------------------------------------------------------------


def metric_points(reader: Any) -> dict[str, list[Any]]:
    """Every metric's data points from an InMemoryMetricReader, by metric name."""
    out: dict[str, list[Any]] = {}
    data = reader.get_metrics_data()
    if data is None:
        return out
    for rm in data.resource_metrics:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                out.setdefault(metric.name, []).extend(metric.data.data_points)
    return out


def metric_units(reader: Any) -> dict[str, str]:
    """Every metric's unit, by metric name."""
    out: dict[str, str] = {}
    data = reader.get_metrics_data()
    for rm in data.resource_metrics:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                out[metric.name] = metric.unit
    return out


# ---- waiting for work that is still running ---------------------------------------------------

WAIT_DEADLINE = 5.0
"""How long a test waits for something the traced run should show while it still runs."""


def wait_for(predicate: Callable[[], Any], what: str, deadline: float = WAIT_DEADLINE) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail after ``deadline`` seconds."""
    end = time.monotonic() + deadline
    while not (value := predicate()):
        if time.monotonic() > end:
            pytest.fail(f"not seen within {deadline} s: {what}")
        time.sleep(0.01)
    return value


async def await_for(
    predicate: Callable[[], Any], what: str, deadline: float = WAIT_DEADLINE
) -> Any:
    """``wait_for`` for a coroutine: sleeps on the event loop so the traced run keeps going."""
    end = time.monotonic() + deadline
    while not (value := predicate()):
        if time.monotonic() > end:
            pytest.fail(f"not seen within {deadline} s: {what}")
        await asyncio.sleep(0.01)
    return value


def markers(span_exporter: InMemorySpanExporter) -> list[ReadableSpan]:
    """The exported stall marker spans."""
    return [
        s
        for s in span_exporter.get_finished_spans()
        if (s.attributes or {}).get(names.OTELSTREAM_STALLED) and s.name.startswith("stalled ")
    ]
