"""Graphs that pause for approval, and the second process that resumes their threads.

Imported by ``tests/test_resume_links.py`` for the graphs. Run as a script, it is the *other*
process of the cross-process tests: a fresh interpreter with its own ``TracerProvider`` writing
OTLP JSON Lines through otelstream's own file exporter, which opens the test's SQLite checkpoint
database, continues one thread traced and exits. The test reads the file back.

    python tests/resume_process.py --db DB --thread T --spans OUT [--resume VALUE]
        [--checkpoint ID] [--async] [--graph approval|functional]

``--resume VALUE`` sends ``Command(resume=VALUE)``; without it the input is ``None``.
``--checkpoint ID`` names a checkpoint (time travel). It prints the run's final state as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import sys
from contextlib import closing
from pathlib import Path
from typing import TYPE_CHECKING, Any

from langchain_core.messages import AIMessage
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from langgraph.func import entrypoint, task
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command, interrupt
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from typing_extensions import TypedDict

import otelstream
from otelstream import _internal
from otelstream.export import JsonLinesSpanExporter
from otelstream.testing import FakeStreamingChatModel

if TYPE_CHECKING:
    from langchain_core.runnables import RunnableConfig
    from langgraph.checkpoint.base import BaseCheckpointSaver
    from langgraph.graph.state import CompiledStateGraph


class Draft(TypedDict):
    """A request, the drafted answer, and the reviewer's verdict."""

    request: str
    draft: str
    verdict: str


def approval_graph(
    checkpointer: BaseCheckpointSaver | bool | None = None, *, name: str = "approval"
) -> CompiledStateGraph:
    """``draft -> review -> publish``: a model drafts, ``review`` pauses on ``interrupt()``."""
    model = FakeStreamingChatModel(responses=[AIMessage(content="Refund approved for order 42.")])

    def draft(state: Draft, config: RunnableConfig) -> dict[str, Any]:
        answer = model.invoke(state["request"], config)
        return {"draft": str(answer.content)}

    def review(state: Draft) -> dict[str, Any]:
        verdict = interrupt({"draft": state["draft"]})
        return {"verdict": str(verdict)}

    def publish(state: Draft) -> dict[str, Any]:
        return {"draft": f"{state['draft']} [{state['verdict']}]"}

    builder = StateGraph(Draft)
    builder.add_node("draft", draft)
    builder.add_node("review", review)
    builder.add_node("publish", publish)
    builder.add_edge(START, "draft")
    builder.add_edge("draft", "review")
    builder.add_edge("review", "publish")
    builder.add_edge("publish", END)
    return builder.compile(checkpointer=checkpointer, name=name)


def functional_graph(checkpointer: BaseCheckpointSaver) -> Any:
    """The same approval as a Functional API entrypoint."""

    @task
    def shout(text: str) -> str:
        return text.upper()

    @entrypoint(checkpointer=checkpointer)
    def approve(request: str) -> str:
        loud = shout(request).result()
        verdict = interrupt({"draft": loud})
        return f"{loud} [{verdict}]"

    return approve


def request() -> Draft:
    """The input of ``approval_graph``."""
    return {"request": "refund order 42", "draft": "", "verdict": ""}


# ---- the second process -------------------------------------------------------------------------


def _call(args: argparse.Namespace) -> tuple[Any, dict[str, Any]]:
    graph_input: Any = Command(resume=args.resume) if args.resume is not None else None
    configurable: dict[str, Any] = {"thread_id": args.thread}
    if args.checkpoint:
        configurable["checkpoint_id"] = args.checkpoint
    return graph_input, {"configurable": configurable}


def _build(kind: str, saver: BaseCheckpointSaver) -> Any:
    return functional_graph(saver) if kind == "functional" else approval_graph(saver)


def main(argv: list[str]) -> int:
    """Resume one thread of the SQLite database, traced, in this process."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", required=True)
    parser.add_argument("--thread", required=True)
    parser.add_argument("--spans", required=True)
    parser.add_argument("--resume")
    parser.add_argument("--checkpoint")
    parser.add_argument("--graph", default="approval")
    parser.add_argument("--async", dest="use_async", action="store_true")
    args = parser.parse_args(argv)

    _internal.set_strict(True)  # an otelstream bug fails this process, and so the test
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(JsonLinesSpanExporter(Path(args.spans))))
    graph_input, config = _call(args)
    if args.use_async:

        async def run() -> Any:
            async with AsyncSqliteSaver.from_conn_string(args.db) as saver:
                graph = otelstream.instrument(_build(args.graph, saver), tracer_provider=provider)
                return await graph.ainvoke(graph_input, config)

        result = asyncio.run(run())
    else:
        with closing(sqlite3.connect(args.db, check_same_thread=False)) as conn:
            graph = otelstream.instrument(
                _build(args.graph, SqliteSaver(conn)), tracer_provider=provider
            )
            result = graph.invoke(graph_input, config)
    provider.shutdown()
    print(json.dumps(result, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
