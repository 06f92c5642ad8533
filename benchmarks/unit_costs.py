"""otelstream's cost per unit of telemetry: per chunk, per custom write, per node span and per
metric point, in CPU microseconds and in instructions.

    python -m benchmarks.unit_costs [--quick] [--cases chunks,custom,nodes] [--rounds 15]
        [--callgrind] [--out FILE]

Each case is one graph run twice as often in one dimension and the same otherwise, so the slope
isolates one unit:

- ``chunks``: ``create_agent`` with no tools whose model streams N or 2N chunks;
- ``custom``: a chain of 20 nodes writing N or 2N custom events in all (at most 100 per node,
  under the SDK's default limit of 128 events per span, so none is dropped);
- ``nodes``: a chain of N or 2N trivial nodes (a span and a task-duration point each).

All are consumed with ``stream_mode=["updates", "messages", "custom"]``. A contender's cost per
unit is its slope ``(cost(2N) - cost(N)) / N`` minus bare LangGraph's slope on the same case,
so LangGraph's own per-unit work cancels and what is left is everything tracing adds for that
unit: otelstream's callbacks and bookkeeping, the SDK's span, event and metric work, the batch
processor's export. Contenders:

- ``otelstream``: default ``Options``, SDK tracer and meter (``BatchSpanProcessor`` into an
  in-memory exporter, ``InMemoryMetricReader``), as in ``benchmarks.run``;
- ``otelstream-nometer``: the same with OpenTelemetry's no-op meter provider, so that
  ``otelstream - otelstream-nometer`` on ``nodes``, divided by the points per node, is the cost
  of one metric point;
- ``otelstream-noop``: no-op tracer and meter providers: otelstream's own logic alone.

Cost is measured two ways. By default, the process CPU time (every thread, until the run's spans
are flushed and its metrics collected) of each run, median over ``--rounds`` interleaved rounds.
With ``--callgrind``, each case's process runs under valgrind's callgrind and the instructions of
each run are counted (``benchmarks.instructions`` explains how): far steadier on a shared machine,
but instructions are not time. All contenders of a case run in one process, interleaved.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

from langchain.agents import create_agent
from langchain_core.messages import AIMessage, HumanMessage
from langgraph.config import get_stream_writer
from langgraph.graph import END, START, StateGraph
from opentelemetry.metrics import NoOpMeterProvider
from opentelemetry.trace import NoOpTracerProvider

import otelstream
from benchmarks import workloads
from benchmarks.run import ROOT, machine, worker_env
from benchmarks.worker import Telemetry
from otelstream.testing import FakeStreamingChatModel

if TYPE_CHECKING:
    from collections.abc import Callable

CASES = ("chunks", "custom", "nodes")
CONTENDERS = ("bare", "otelstream", "otelstream-nometer", "otelstream-noop")
UNITS = {"chunks": "chunk", "custom": "custom write", "nodes": "node (span + its points)"}
CUSTOM_NODES = 20


@dataclass(frozen=True)
class Plan:
    """The N of each case (2N is run too), warm-up runs and measured rounds."""

    n: dict[str, int]
    warmup: int
    rounds: int


# Large enough that the N-chunk difference dwarfs the run-to-run noise of CPU time; under
# callgrind a run costs about 50 times more, and its counts need no such margin.
CPU = Plan({"chunks": 4000, "custom": 1000, "nodes": 100}, warmup=3, rounds=15)
CALLGRIND = Plan({"chunks": 1000, "custom": 1000, "nodes": 50}, warmup=1, rounds=2)
QUICK = Plan({"chunks": 40, "custom": 40, "nodes": 4}, warmup=1, rounds=1)


class _Count(TypedDict):
    count: int


def _chunks_graph(n: int) -> Any:
    # One chunk per word, plus one last usage chunk whatever n is (it cancels in the slope).
    model = FakeStreamingChatModel(
        responses=[AIMessage(content=" ".join(f"w{i}" for i in range(n)))]
    )
    return create_agent(model, tools=[])


def _custom_graph(n: int) -> Any:
    per_node = n // CUSTOM_NODES

    def write(state: _Count) -> _Count:
        writer = get_stream_writer()
        for index in range(per_node):
            writer({"index": index})
        return {"count": state["count"] + 1}

    return _chain(CUSTOM_NODES, write)


def _nodes_graph(n: int) -> Any:
    def step(state: _Count) -> _Count:
        return {"count": state["count"] + 1}

    return _chain(n, step)


def _chain(length: int, node: Callable[[_Count], _Count]) -> Any:
    builder = StateGraph(_Count)
    previous = START
    for index in range(length):
        builder.add_node(f"n{index}", node)
        builder.add_edge(previous, f"n{index}")
        previous = f"n{index}"
    builder.add_edge(previous, END)
    return builder.compile()


_BUILD: dict[str, Callable[[int], Any]] = {
    "chunks": _chunks_graph,
    "custom": _custom_graph,
    "nodes": _nodes_graph,
}


def _inputs(case: str) -> Any:
    if case == "chunks":
        return {"messages": [HumanMessage(content="go")]}
    return {"count": 0}


def _wrap(contender: str, telemetry: Any) -> Callable[[Any], Any]:
    if contender == "bare":
        return lambda graph: graph
    tracer_provider: Any = NoOpTracerProvider()
    meter_provider: Any = NoOpMeterProvider()
    if contender in ("otelstream", "otelstream-nometer"):
        tracer_provider = telemetry.tracer_provider
    if contender == "otelstream":
        meter_provider = telemetry.meter_provider
    return lambda graph: otelstream.instrument(
        graph, tracer_provider=tracer_provider, meter_provider=meter_provider
    )


def work(case: str, plan: Plan, shim_path: str | None) -> None:
    """Run every contender at N and 2N on ``case``; one ``@@`` JSON line per run on stdout."""
    shim = ctypes.CDLL(shim_path) if shim_path else None
    telemetries = {name: Telemetry() for name in CONTENDERS}
    wraps = {name: _wrap(name, telemetries[name]) for name in CONTENDERS}
    config = {"recursion_limit": 4 * plan.n[case] + 10}
    mode = list(workloads.RICH_MODES)
    sizes = (plan.n[case], 2 * plan.n[case])

    def run_once(contender: str, n: int, measured: bool) -> None:
        graph = wraps[contender](_BUILD[case](n))
        telemetry = telemetries[contender]
        gc.collect()
        if shim is not None:
            shim.otelstream_bench_zero()
        start = time.process_time_ns()
        chunks = sum(1 for _ in graph.stream(_inputs(case), config, stream_mode=mode))
        spans, events, points, dropped = telemetry.drain()
        cpu = time.process_time_ns() - start
        if shim is not None:
            shim.otelstream_bench_dump()
        record = {
            "contender": contender,
            "n": n,
            "measured": measured,
            "cpu_us": cpu / 1e3,
            "chunks": chunks,
            "spans": spans,
            "events": events,
            "points": points,
            "dropped_events": dropped,
        }
        sys.stdout.write("@@" + json.dumps(record) + "\n")
        sys.stdout.flush()

    for _ in range(plan.warmup):
        for contender in CONTENDERS:
            for n in sizes:
                run_once(contender, n, measured=False)
    for _ in range(plan.rounds):
        for contender in CONTENDERS:
            for n in sizes:
                run_once(contender, n, measured=True)


def measure(case: str, plan: Plan, shim: Path | None, out: Path) -> list[dict[str, Any]]:
    """One process for ``case`` (under callgrind when a shim is given); its runs, in order."""
    command = [
        sys.executable,
        "-m",
        "benchmarks.unit_costs",
        "--worker",
        case,
        "--plan",
        json.dumps({"n": plan.n, "warmup": plan.warmup, "rounds": plan.rounds}),
    ]
    env = worker_env()
    prefix = out / f"unit-{case}"
    if shim is not None:
        command = [
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={prefix}.%p",
            *command,
            "--shim",
            str(shim),
        ]
        env["PYTHONHASHSEED"] = "0"
    done = subprocess.run(
        command, capture_output=True, text=True, cwd=ROOT, env=env, check=False, timeout=3600
    )
    if done.returncode != 0:
        msg = f"unit-cost case {case} failed:\n{done.stderr[-3000:]}"
        raise RuntimeError(msg)
    runs = [json.loads(line[2:]) for line in done.stdout.splitlines() if line.startswith("@@")]
    if shim is not None:
        dumps = sorted(out.glob(f"{prefix.name}.*.*"), key=lambda p: int(p.name.rsplit(".", 1)[1]))
        if len(dumps) != len(runs):
            msg = f"{case}: {len(dumps)} callgrind dumps for {len(runs)} runs"
            raise RuntimeError(msg)
        for run, dump in zip(runs, dumps, strict=True):
            for line in dump.read_text().splitlines():
                if line.startswith("totals:"):
                    run["instructions"] = int(line.split()[1])
    return runs


@dataclass(frozen=True)
class Slope:
    """What one contender adds per unit of one case, beyond bare LangGraph's own slope."""

    case: str
    contender: str
    cost: float
    spans: float
    events: float
    points: float
    dropped: int


def slopes(case: str, runs: list[dict[str, Any]], n: int, key: str) -> dict[str, Slope]:
    """Per-unit cost of each contender on ``case``: the median-based slope minus bare's."""
    measured = [run for run in runs if run["measured"]]

    def median(contender: str, size: int, field: str) -> float:
        return statistics.median(
            run[field] for run in measured if run["contender"] == contender and run["n"] == size
        )

    def slope(contender: str, field: str) -> float:
        return (median(contender, 2 * n, field) - median(contender, n, field)) / n

    bare = slope("bare", key)
    return {
        contender: Slope(
            case,
            contender,
            slope(contender, key) - bare,
            slope(contender, "spans"),
            slope(contender, "events"),
            slope(contender, "points"),
            max(run["dropped_events"] for run in measured if run["contender"] == contender),
        )
        for contender in CONTENDERS
        if contender != "bare"
    }


def render(
    results: dict[str, dict[str, Slope]], plan: Plan, key: str, raw: dict[str, list[Any]]
) -> str:
    """The Markdown report."""
    unit = "CPU µs" if key == "cpu_us" else "instructions"
    host = machine()
    lines = [
        f"# otelstream benchmarks: cost per unit of telemetry ({unit})",
        "",
        f"- Machine: {host['nproc']} CPUs, {host['cpu']}, {host['os']}; Python "
        f"{sys.version.split()[0]}",
        "- N per case: "
        + ", ".join(f"{case} {plan.n[case]} and {2 * plan.n[case]}" for case in results)
        + f"; {plan.warmup} warm-up and {plan.rounds} measured rounds, every contender at both "
        "sizes in each round, in one process per case",
        "- cost per unit = (median at 2N - median at N) / N, minus bare LangGraph's slope on the "
        "same case; spans, events and points per unit are slopes too",
        "",
        f"| case | unit | contender | {unit} per unit | spans per unit | span events per unit "
        "| metric points per unit | dropped events |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    digits = 2 if key == "cpu_us" else 0
    for case, by_contender in results.items():
        for slope in by_contender.values():
            lines.append(
                f"| {case} | {UNITS[case]} | {slope.contender} | {slope.cost:,.{digits}f} "
                f"| {slope.spans:.3f} | {slope.events:.3f} | {slope.points:.3f} "
                f"| {slope.dropped} |"
            )
    nodes = results.get("nodes")
    if nodes:
        traced, nometer, noop = (
            nodes["otelstream"],
            nodes["otelstream-nometer"],
            nodes["otelstream-noop"],
        )
        lines.append("")
        if traced.points > 0:
            per_point = (traced.cost - nometer.cost) / traced.points
            lines.append(
                f"- Per metric point (nodes: otelstream - otelstream-nometer, over "
                f"{traced.points:.2f} points per node): {per_point:,.{digits}f} {unit}"
            )
        lines.append(
            f"- Per node span, the SDK tracer's share (otelstream-nometer - otelstream-noop): "
            f"{nometer.cost - noop.cost:,.{digits}f} {unit}; otelstream's own logic per node "
            f"(otelstream-noop): {noop.cost:,.{digits}f} {unit}"
        )
    lines.append("")
    lines.append("Medians per contender and size (the raw numbers behind each slope):")
    lines.append("")
    lines.append(f"| case | contender | n | median {unit} per run |")
    lines.append("|---|---|---:|---:|")
    for case, rows in raw.items():
        for contender, n, value in rows:
            lines.append(f"| {case} | {contender} | {n} | {value:,.{digits}f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes, one round (smoke test)")
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--rounds", type=int, help="measured rounds (default 15, callgrind 2)")
    parser.add_argument("--callgrind", action="store_true", help="count instructions instead")
    parser.add_argument("--jobs", type=int, default=2, help="case processes at a time")
    parser.add_argument("--out", type=Path, help="also write the Markdown report here")
    parser.add_argument("--worker", choices=CASES, help=argparse.SUPPRESS)
    parser.add_argument("--plan", help=argparse.SUPPRESS)
    parser.add_argument("--shim", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        raw_plan = json.loads(args.plan)
        work(args.worker, Plan(raw_plan["n"], raw_plan["warmup"], raw_plan["rounds"]), args.shim)
        return 0

    plan = QUICK if args.quick else CALLGRIND if args.callgrind else CPU
    if args.rounds:
        plan = Plan(plan.n, plan.warmup, args.rounds)
    cases = args.cases.split(",")
    key = "instructions" if args.callgrind else "cpu_us"
    with tempfile.TemporaryDirectory(prefix="otelstream-unit-") as tmp:
        directory = Path(tmp)
        shim = None
        if args.callgrind:
            from benchmarks.instructions import build_shim  # noqa: PLC0415

            shim = build_shim(directory)
        with ThreadPoolExecutor(max_workers=args.jobs) as pool:
            futures = {case: pool.submit(measure, case, plan, shim, directory) for case in cases}
            runs = {case: future.result() for case, future in futures.items()}

    results = {case: slopes(case, runs[case], plan.n[case], key) for case in cases}
    raw: dict[str, list[Any]] = {
        case: [
            (
                contender,
                size,
                statistics.median(
                    run[key]
                    for run in runs[case]
                    if run["measured"] and run["contender"] == contender and run["n"] == size
                ),
            )
            for contender in CONTENDERS
            for size in (plan.n[case], 2 * plan.n[case])
        ]
        for case in cases
    }
    report = render(results, plan, key, raw)
    print(report)
    if args.out:
        args.out.write_text(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
