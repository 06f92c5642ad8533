"""Small real LangGraph graphs for tests, each built fresh on every call.

Every builder returns a newly compiled graph with its own ``FakeStreamingChatModel`` (whose call
counter is per instance), so two calls give two graphs that behave identically: build one for
the bare run and one for the traced run. Each graph has a matching ``*_input()`` function.
Pass ``checkpointer=InMemorySaver()`` (and a ``thread_id`` in the config) to persist state.

Nodes take LangGraph's injected ``config`` and ``writer`` and hand the config to the model: before
Python 3.11 asyncio cannot carry the config through the context into a node run by ``astream``,
so ``get_stream_writer()`` and a config-less ``model.invoke`` would fail or lose their callbacks
there (LangGraph documents the same for its own users).
"""

from __future__ import annotations

import operator
from typing import TYPE_CHECKING, Annotated, Any

from langchain.agents import create_agent
from langchain_core.messages import AIMessage, AnyMessage, HumanMessage
from langchain_core.tools import tool
from langgraph.config import get_stream_writer
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.graph.message import add_messages
from langgraph.prebuilt import ToolNode, tools_condition
from langgraph.types import Send, StreamWriter
from typing_extensions import TypedDict

from otelstream.testing import FakeStreamingChatModel, tool_call, tool_calls

if TYPE_CHECKING:
    from langchain_core.runnables import RunnableConfig
    from langgraph.checkpoint.base import BaseCheckpointSaver
    from langgraph.graph.state import CompiledStateGraph


class ChatState(TypedDict):
    """Messages plus a counter that plain nodes bump."""

    messages: Annotated[list[AnyMessage], add_messages]
    count: int


def chat_input() -> dict[str, Any]:
    """The input for every graph here but ``fan_out_graph``: one human message, count 0."""
    return {"messages": [HumanMessage(content="hi")], "count": 0}


def linear_graph(checkpointer: BaseCheckpointSaver | None = None) -> CompiledStateGraph:
    """``prepare -> chat -> finish``; ``chat`` streams a model answer and writes custom events."""
    model = FakeStreamingChatModel(responses=[AIMessage(content="hello there world")])

    def prepare(state: ChatState) -> dict[str, Any]:
        return {"count": state["count"] + 1}

    def chat(state: ChatState, config: RunnableConfig, writer: StreamWriter) -> dict[str, Any]:
        writer({"phase": "before-model"})
        answer = model.invoke(state["messages"], config)
        writer({"phase": "after-model", "chars": len(str(answer.content))})
        return {"messages": [answer], "count": state["count"] + 1}

    def finish(state: ChatState) -> dict[str, Any]:
        return {"count": state["count"] * 10}

    builder = StateGraph(ChatState)
    builder.add_node("prepare", prepare)
    builder.add_node("chat", chat)
    builder.add_node("finish", finish)
    builder.add_edge(START, "prepare")
    builder.add_edge("prepare", "chat")
    builder.add_edge("chat", "finish")
    builder.add_edge("finish", END)
    return builder.compile(checkpointer=checkpointer, name="linear")


class FanOutState(TypedDict):
    """Items to fan out and the results gathered from the parallel ``work`` tasks."""

    items: list[str]
    results: Annotated[list[str], operator.add]


class WorkItem(TypedDict):
    """What each ``Send`` gives one ``work`` task."""

    item: str


def fan_out_input() -> dict[str, Any]:
    """The input for ``fan_out_graph``: three items, so three parallel ``work`` tasks."""
    return {"items": ["a", "b", "c"], "results": []}


def fan_out_graph(checkpointer: BaseCheckpointSaver | None = None) -> CompiledStateGraph:
    """``split`` sends each item to a parallel ``work`` task (custom event, then a model call)."""
    model = FakeStreamingChatModel(responses=[AIMessage(content="done with it")])

    def split(state: FanOutState) -> dict[str, Any]:
        return {}

    def fan_out(state: FanOutState) -> list[Send]:
        return [Send("work", {"item": item}) for item in state["items"]]

    def work(arg: WorkItem, config: RunnableConfig, writer: StreamWriter) -> dict[str, Any]:
        writer({"working_on": arg["item"]})
        answer = model.invoke([HumanMessage(content=arg["item"])], config)
        return {"results": [f"{arg['item']}:{answer.content}"]}

    builder = StateGraph(FanOutState)
    builder.add_node("split", split)
    builder.add_node("work", work)
    builder.add_edge(START, "split")
    builder.add_conditional_edges("split", fan_out, ["work"])
    builder.add_edge("work", END)
    return builder.compile(checkpointer=checkpointer, name="fan_out")


def subgraph_graph(checkpointer: BaseCheckpointSaver | None = None) -> CompiledStateGraph:
    """``before -> inner -> after``, ``inner`` a compiled subgraph whose node calls a model and
    writes custom events."""
    model = FakeStreamingChatModel(responses=[AIMessage(content="from the inside")])

    def inner_chat(
        state: ChatState, config: RunnableConfig, writer: StreamWriter
    ) -> dict[str, Any]:
        writer({"inner": "start"})
        answer = model.invoke(state["messages"], config)
        writer({"inner": "end"})
        return {"messages": [answer], "count": state["count"] + 1}

    inner_builder = StateGraph(ChatState)
    inner_builder.add_node("inner_chat", inner_chat)
    inner_builder.add_edge(START, "inner_chat")
    inner_builder.add_edge("inner_chat", END)
    inner = inner_builder.compile(name="inner")

    def before(state: ChatState) -> dict[str, Any]:
        return {"count": state["count"] + 1}

    def after(state: ChatState) -> dict[str, Any]:
        return {"count": state["count"] + 100}

    builder = StateGraph(ChatState)
    builder.add_node("before", before)
    builder.add_node("inner", inner)
    builder.add_node("after", after)
    builder.add_edge(START, "before")
    builder.add_edge("before", "inner")
    builder.add_edge("inner", "after")
    builder.add_edge("after", END)
    return builder.compile(checkpointer=checkpointer, name="outer")


@tool
def lookup(query: str) -> str:
    """Look something up; writes a custom event before and after."""
    writer = get_stream_writer()
    writer({"tool": "lookup", "query": query})
    result = f"found {query}"
    writer({"tool": "lookup", "result": result})
    return result


@tool
def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


@tool
def shout(text: str) -> str:
    """Upper-case a text; writes a custom event."""
    get_stream_writer()({"tool": "shout", "text": text})
    return text.upper()


def agent_graph(checkpointer: BaseCheckpointSaver | None = None) -> CompiledStateGraph:
    """A ``create_agent`` agent: one ``lookup`` tool call, then a final text answer."""
    model = FakeStreamingChatModel(
        responses=[
            tool_call("lookup", {"query": "weather"}, call_id="call_lookup"),
            AIMessage(content="it is sunny"),
        ]
    )
    return create_agent(model, tools=[lookup], checkpointer=checkpointer, name="agent")


def tool_node_graph(checkpointer: BaseCheckpointSaver | None = None) -> CompiledStateGraph:
    """A hand-written ``agent <-> ToolNode`` loop; the model calls ``add`` and ``shout`` at once."""
    model = FakeStreamingChatModel(
        responses=[
            tool_calls(
                ("add", {"a": 2, "b": 3}, "call_add"),
                ("shout", {"text": "hey"}, "call_shout"),
            ),
            AIMessage(content="5 and HEY"),
        ]
    )
    bound = model.bind_tools([add, shout])

    def agent(state: MessagesState) -> dict[str, Any]:
        return {"messages": [bound.invoke(state["messages"])]}

    builder = StateGraph(MessagesState)
    builder.add_node("agent", agent)
    builder.add_node("tools", ToolNode([add, shout]))
    builder.add_edge(START, "agent")
    builder.add_conditional_edges("agent", tools_condition)
    builder.add_edge("tools", "agent")
    return builder.compile(checkpointer=checkpointer, name="tool_node")
