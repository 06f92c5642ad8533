"""Capture a linked resume in ``otelstream view`` for the README: ``docs/resume.txt`` and ``.svg``.

Two separate Python processes share nothing but a SQLite checkpoint file and a trace file: the
first runs an approval graph until its ``interrupt()``, the second resumes the thread with
``Command(resume=...)``. Each has its own ``TracerProvider`` writing OTLP JSON Lines. Then the
trace file is shown the way ``otelstream view`` shows it.

Usage: ``.venv/bin/python scripts/capture_resume.py [OUTPUT_DIR]`` (default: ``docs``).
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from langchain_core.messages import AIMessage
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command, interrupt
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from rich.console import Console
from typing_extensions import TypedDict

import otelstream
from otelstream.cli.traces import read_trace_file
from otelstream.cli.waterfall import render_traces
from otelstream.export import JsonLinesSpanExporter
from otelstream.testing import FakeStreamingChatModel

if TYPE_CHECKING:
    from langchain_core.runnables import RunnableConfig

WIDTH = 150
THREAD = {"configurable": {"thread_id": "refund-42"}}


class Refund(TypedDict):
    """A refund request, the drafted reply, and the human's verdict."""

    request: str
    reply: str
    verdict: str


def refund_graph(saver: SqliteSaver) -> Any:
    """``draft -> approve -> send``: a model drafts, ``approve`` waits for a human."""
    model = FakeStreamingChatModel(
        responses=[AIMessage(content="Your refund of 42 EUR for order 1042 is approved.")],
        first_chunk_delay=0.25,
        chunk_delay=0.03,
    )

    def draft(state: Refund, config: RunnableConfig) -> dict[str, Any]:
        return {"reply": str(model.invoke(state["request"], config).content)}

    def approve(state: Refund) -> dict[str, Any]:
        return {"verdict": str(interrupt({"reply": state["reply"]}))}

    def send(state: Refund) -> dict[str, Any]:
        return {"reply": f"{state['reply']} ({state['verdict']})"}

    builder = StateGraph(Refund)
    builder.add_node("draft", draft)
    builder.add_node("approve", approve)
    builder.add_node("send", send)
    builder.add_edge(START, "draft")
    builder.add_edge("draft", "approve")
    builder.add_edge("approve", "send")
    builder.add_edge("send", END)
    return builder.compile(checkpointer=saver, name="refund_desk")


def one_process(step: str, db: str, trace_file: str) -> None:
    """``pause``: run until the interrupt; ``resume``: approve. Traced, in this process."""
    service = "refund-api" if step == "pause" else "approval-worker"
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(SimpleSpanProcessor(JsonLinesSpanExporter(trace_file)))
    with sqlite3.connect(db, check_same_thread=False) as conn:
        graph = otelstream.instrument(refund_graph(SqliteSaver(conn)), tracer_provider=provider)
        if step == "pause":
            graph.invoke({"request": "refund order 1042", "reply": "", "verdict": ""}, THREAD)
        else:
            graph.invoke(Command(resume="approved by dana"), THREAD)
    provider.shutdown()


def main(output_dir: Path) -> None:
    """Pause in one process, resume in another, and record ``otelstream view`` of the file."""
    with tempfile.TemporaryDirectory() as tmp:
        db, trace_file = Path(tmp) / "checkpoints.sqlite", Path(tmp) / "otelstream-traces.jsonl"
        for step in ("pause", "resume"):
            subprocess.run(
                [sys.executable, __file__, "--process", step, str(db), str(trace_file)],
                check=True,
            )
        console = Console(record=True, width=WIDTH, force_terminal=True, color_system="truecolor")
        console.print("$ otelstream view otelstream-traces.jsonl")
        traces = read_trace_file(trace_file)
        console.print(
            render_traces(traces, width=WIDTH, title="otelstream-traces.jsonl (2 traces)")
        )
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "resume.txt").write_text(console.export_text(clear=False), encoding="utf-8")
    svg = console.export_svg(title="otelstream view: a resumed run, linked")
    (output_dir / "resume.svg").write_text(svg, encoding="utf-8")
    print(f"wrote {output_dir / 'resume.txt'} and {output_dir / 'resume.svg'}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--process"]:
        one_process(*sys.argv[2:5])
    else:
        main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("docs"))
