"""Does memory stay flat while otelstream traces a very long stream?

    python -m benchmarks.memory [--chunks 1000000] [--every 100000]

Streams ``--chunks`` chunks through the bare graph and through otelstream (each in a fresh
process) and prints the resident set size every ``--every`` chunks. Two sources:

    model: one LLM call whose chat model yields the chunks lazily, consumed with
        ``stream_mode="messages"``. LangChain itself keeps every chunk of a streamed call until
        the call ends (to merge them into the final message), so the bare graph grows too; the
        growth otelstream adds is the difference between the two columns.
    custom: one node writing the chunks as custom events through ``get_stream_writer``, consumed
        with ``stream_mode="custom"``: nothing in LangGraph accumulates them, so any growth there
        would be otelstream's.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, HumanMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langgraph.config import get_stream_writer
from langgraph.graph import END, START, MessagesState, StateGraph
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import otelstream

if TYPE_CHECKING:
    from collections.abc import Iterator

ROOT = Path(__file__).resolve().parent.parent
_PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_mb() -> float:
    """The current resident set size, from /proc/self/statm."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * _PAGE / 2**20


class LazyChatModel(BaseChatModel):
    """Streams ``chunks`` one-word chunks, made one at a time (no scripted answer in memory)."""

    chunks: int = 1_000_000

    @property
    def _llm_type(self) -> str:
        return "otelstream-bench-lazy"

    def _generate(
        self, messages: list[BaseMessage], stop: list[str] | None = None, **kwargs: Any
    ) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content="w "))])

    def _stream(
        self, messages: list[BaseMessage], stop: list[str] | None = None, **kwargs: Any
    ) -> Iterator[ChatGenerationChunk]:
        for _ in range(self.chunks):
            yield ChatGenerationChunk(message=AIMessageChunk(content="w "))


class _CustomState(TypedDict):
    n: int


# Custom events written so far by the node (on LangGraph's pool thread), so the consumer can
# report how many are queued inside LangGraph, produced but not yet consumed.
_produced = [0]


def build(source: str, chunks: int) -> tuple[Any, Any, str]:
    """The graph, its input and the stream mode for one source."""
    if source == "model":
        model = LazyChatModel(chunks=chunks)

        def call_model(state: MessagesState) -> dict[str, Any]:
            return {"messages": [model.invoke(state["messages"])]}

        graph = StateGraph(MessagesState)
        graph.add_node("model", call_model)
        graph.add_edge(START, "model")
        graph.add_edge("model", END)
        return graph.compile(), {"messages": [HumanMessage(content="go")]}, "messages"

    def write(state: _CustomState) -> dict[str, Any]:
        writer = get_stream_writer()
        for index in range(state["n"]):
            writer({"i": index})
            _produced[0] += 1
        return {"n": 0}

    custom = StateGraph(_CustomState)
    custom.add_node("write", write)
    custom.add_edge(START, "write")
    custom.add_edge("write", END)
    return custom.compile(), {"n": chunks}, "custom"


def measure(contender: str, source: str, chunks: int, every: int) -> list[tuple[int, float, int]]:
    """Stream once, sampling (chunks consumed, RSS, chunks queued) every ``every`` chunks."""
    graph, inputs, mode = build(source, chunks)
    if contender == "otelstream":
        tracer_provider = TracerProvider()
        tracer_provider.add_span_processor(BatchSpanProcessor(InMemorySpanExporter()))
        meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
        graph = otelstream.instrument(
            graph, tracer_provider=tracer_provider, meter_provider=meter_provider
        )
    samples = [(0, rss_mb(), 0)]
    count = 0
    for _ in graph.stream(inputs, stream_mode=mode):
        count += 1
        if count % every == 0:
            samples.append((count, rss_mb(), _produced[0] - count))
    samples.append((count, rss_mb(), _produced[0] - count))
    return samples


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--chunks", type=int, default=1_000_000)
    parser.add_argument("--every", type=int, default=100_000)
    parser.add_argument("--sources", default="model,custom", help="comma-separated subset")
    parser.add_argument("--child", nargs=2, metavar=("CONTENDER", "SOURCE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        contender, source = args.child
        print(json.dumps(measure(contender, source, args.chunks, args.every)))
        return 0

    for source in args.sources.split(","):
        columns: dict[str, list[tuple[int, float, int]]] = {}
        for contender in ("bare", "otelstream"):
            completed = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "benchmarks.memory",
                    "--chunks",
                    str(args.chunks),
                    "--every",
                    str(args.every),
                    "--child",
                    contender,
                    source,
                ],
                cwd=ROOT,
                capture_output=True,
                text=True,
                check=True,
            )
            columns[contender] = json.loads(completed.stdout.strip().splitlines()[-1])
        queued = "; queued = custom events written, not yet consumed" if source == "custom" else ""
        print(f"\nsource={source}: RSS MB after N chunks, fresh process each{queued}")
        print(
            "| chunks | bare RSS MB | bare queued | otelstream RSS MB | otelstream queued | diff |"
        )
        print("|---:|---:|---:|---:|---:|---:|")
        for (count, bare, bare_q), (_, traced, traced_q) in zip(
            columns["bare"], columns["otelstream"], strict=True
        ):
            bare_queued = f"{bare_q:,}" if source == "custom" else "-"
            traced_queued = f"{traced_q:,}" if source == "custom" else "-"
            print(
                f"| {count:,} | {bare:.1f} | {bare_queued} | {traced:.1f} | {traced_queued} "
                f"| {traced - bare:+.1f} |"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
