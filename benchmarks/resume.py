"""What linking resumed runs costs: runs with a checkpointer, with and without the traced saver.

    python -m benchmarks.resume [--rounds N] [--out FILE]

Workloads, each with a new thread per run:

* ``W2-mem``: W2 (a ``create_agent`` tool loop of 10 rounds, custom writes, a 200-chunk answer,
  streamed as ``updates``/``messages``/``custom``) with an ``InMemorySaver``: 23 checkpoints.
* ``W2-sqlite``: the same with a ``SqliteSaver`` on a file (real I/O on every checkpoint).
* ``pause-resume``: a three-node approval graph (``tests/resume_process.py``'s shape, one model
  call) paused by ``interrupt()`` then resumed with ``Command(resume=...)``: two runs, the
  second linked to the first.

Contenders, interleaved in every round (bare first): ``bare`` (the graph alone), ``otelstream``
(``instrument(graph)``: every checkpoint carries the run span's traceparent, a resume links), and
``otelstream-nolinks`` (the same with the traced saver left out) and ``otelstream-again`` (the
same as ``otelstream``, run again: ``again / otelstream`` is the noise floor of a ratio on this
machine). The table shows the medians of the per-round ratios; ``links / nolinks`` is what the
traced saver itself adds, to be read against the noise floor. Spans go through a
``BatchSpanProcessor`` to an in-memory exporter, as in ``benchmarks.worker``.

A second table times the traced saver's own work directly (best of 5 loops): what a run pays
once (building the saver, reading the start) and what each saved checkpoint pays (the metadata
copy), on an ``InMemorySaver``.
"""

from __future__ import annotations

import argparse
import gc
import platform
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from langchain_core.messages import AIMessage
from langgraph.checkpoint.base import empty_checkpoint
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command, interrupt
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from typing_extensions import TypedDict

import otelstream
from benchmarks import workloads
from otelstream.feeds import stream as stream_feed
from otelstream.feeds.checkpoints import RunCheckpoints, TracedSaver, trace_checkpoints
from otelstream.options import Options
from otelstream.record.instruments import Instruments
from otelstream.record.run import RunRecorder
from otelstream.testing import FakeStreamingChatModel

if TYPE_CHECKING:
    from collections.abc import Callable

    from langchain_core.runnables import RunnableConfig
    from langgraph.checkpoint.base import BaseCheckpointSaver

CONTENDERS = ("bare", "otelstream", "otelstream-nolinks", "otelstream-again")
WORKLOADS = ("W2-mem", "W2-sqlite", "pause-resume")


class _Draft(TypedDict):
    request: str
    draft: str
    verdict: str


def _approval(saver: BaseCheckpointSaver) -> Any:  # type: ignore[type-arg]
    model = FakeStreamingChatModel(responses=[AIMessage(content="Refund approved for order 42.")])

    def draft(state: _Draft, config: RunnableConfig) -> dict[str, Any]:
        return {"draft": str(model.invoke(state["request"], config).content)}

    def review(state: _Draft) -> dict[str, Any]:
        return {"verdict": str(interrupt({"draft": state["draft"]}))}

    def publish(state: _Draft) -> dict[str, Any]:
        return {"draft": f"{state['draft']} [{state['verdict']}]"}

    builder = StateGraph(_Draft)
    for name, node in (("draft", draft), ("review", review), ("publish", publish)):
        builder.add_node(name, node)
    builder.add_edge(START, "draft")
    builder.add_edge("draft", "review")
    builder.add_edge("review", "publish")
    builder.add_edge("publish", END)
    return builder.compile(checkpointer=saver)


class Bench:
    """One process's savers, providers and contenders."""

    def __init__(self, db: Path) -> None:
        self.exporter = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(BatchSpanProcessor(self.exporter))
        self.meter_provider = MeterProvider()
        self.memory = InMemorySaver()
        self.conn = sqlite3.connect(db, check_same_thread=False)
        self.sqlite = SqliteSaver(self.conn)

    def _wrap(self, graph: Any, contender: str) -> Any:
        if contender == "bare":
            return graph
        return otelstream.instrument(
            graph, tracer_provider=self.tracer_provider, meter_provider=self.meter_provider
        )

    def run(self, workload: str, contender: str) -> tuple[float, float]:
        """One run: (wall ms, process CPU ms)."""
        config = {"configurable": {"thread_id": uuid.uuid4().hex}}
        if workload == "pause-resume":
            graph = self._wrap(_approval(self.memory), contender)
            calls: list[Callable[[], Any]] = [
                lambda: graph.invoke({"request": "r", "draft": "", "verdict": ""}, config),
                lambda: graph.invoke(Command(resume="ok"), config),
            ]
        else:
            agent = workloads.build("W2", workloads.FULL)
            saver = self.memory if workload == "W2-mem" else self.sqlite
            graph = self._wrap(agent.copy(update={"checkpointer": saver}), contender)
            mode = workloads.stream_mode("W2")
            calls = [lambda: list(graph.stream(workloads.inputs(), config, stream_mode=mode))]
        gc.collect()
        links = stream_feed.trace_checkpoints
        if contender == "otelstream-nolinks":
            stream_feed.trace_checkpoints = _no_links  # type: ignore[assignment]
        try:
            wall, cpu = time.perf_counter(), time.process_time()
            for call in calls:
                call()
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        finally:
            stream_feed.trace_checkpoints = links
        self.tracer_provider.force_flush()
        self.exporter.clear()
        return wall * 1000, cpu * 1000

    def close(self) -> None:
        self.tracer_provider.shutdown()
        self.conn.close()


def _best_us(call: Callable[[], Any], loops: int = 20_000) -> float:
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(loops):
            call()
        best = min(best, (time.perf_counter() - start) / loops * 1e6)
    return best


def unit_costs() -> list[str]:
    """The traced saver's own work, timed directly, as Markdown lines."""
    provider = TracerProvider()
    recorder = RunRecorder(
        provider.get_tracer("bench"),
        Instruments(MeterProvider().get_meter("bench")),
        Options(),
        name="bench",
        conversation_id="t",
        parent=None,
    )
    inner = InMemorySaver()
    config: Any = {"configurable": {"thread_id": "t", "checkpoint_ns": ""}}
    metadata: Any = {"source": "loop", "step": 1, "parents": {}}
    checkpoint = empty_checkpoint()
    inner.put(config, checkpoint, metadata, {})

    class _Graph:
        checkpointer = inner

    run = RunCheckpoints(recorder, "continue")
    saver = TracedSaver(inner, run)
    lend = _Graph()
    per_run = _best_us(
        lambda: trace_checkpoints(dict(config["configurable"]), lend, None, config, recorder)
    )
    per_checkpoint = _best_us(lambda: run.metadata(config, checkpoint, metadata))
    read_bare = _best_us(lambda: inner.get_tuple(config), 5_000)
    read_traced = _best_us(lambda: saver.get_tuple(config), 5_000)
    provider.shutdown()
    return [
        "| the traced saver's own work | µs |",
        "|---|---:|",
        f"| per run: lend the saver (`trace_checkpoints`) | {per_run:.2f} |",
        f"| per checkpoint saved: metadata copy with the traceparent | {per_checkpoint:.2f} |",
        f"| per read through the saver, above the bare read ({read_bare:.2f} µs) "
        f"| {read_traced - read_bare:.2f} |",
    ]


def _no_links(configurable: dict[str, Any], *args: Any, **kwargs: Any) -> None:
    """``trace_checkpoints`` that lends nothing."""


def _median_ratio(a: list[float], b: list[float]) -> float:
    return statistics.median(x / y for x, y in zip(a, b, strict=True))


def main(argv: list[str] | None = None) -> int:
    """Run every workload, interleaving contenders round by round; print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    lines = [
        f"# Resumed-run links: cost ({time.strftime('%Y-%m-%d')})",
        "",
        f"`python -m benchmarks.resume --rounds {args.rounds}`; Python {platform.python_version()}"
        f", {platform.machine()}, {args.rounds} interleaved rounds after {args.warmup} warm-up.",
        "",
        "| workload | bare ms | otelstream / bare | nolinks / bare | links / nolinks "
        "| CPU links / nolinks | noise: again / otelstream |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        bench = Bench(Path(tmp) / "bench.sqlite")
        try:
            for workload in WORKLOADS:
                for _ in range(args.warmup):
                    for contender in CONTENDERS:
                        bench.run(workload, contender)
                wall: dict[str, list[float]] = {c: [] for c in CONTENDERS}
                cpu: dict[str, list[float]] = {c: [] for c in CONTENDERS}
                for _ in range(args.rounds):
                    for contender in CONTENDERS:
                        ms, cpu_ms = bench.run(workload, contender)
                        wall[contender].append(ms)
                        cpu[contender].append(cpu_ms)
                lines.append(
                    f"| {workload} | {statistics.median(wall['bare']):.1f} "
                    f"| {_median_ratio(wall['otelstream'], wall['bare']):.3f} "
                    f"| {_median_ratio(wall['otelstream-nolinks'], wall['bare']):.3f} "
                    f"| {_median_ratio(wall['otelstream'], wall['otelstream-nolinks']):.3f} "
                    f"| {_median_ratio(cpu['otelstream'], cpu['otelstream-nolinks']):.3f} "
                    f"| {_median_ratio(wall['otelstream-again'], wall['otelstream']):.3f} |"
                )
                print(lines[-1], file=sys.stderr, flush=True)
        finally:
            bench.close()
    lines += ["", *unit_costs()]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out is not None:
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
