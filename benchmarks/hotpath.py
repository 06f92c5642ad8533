"""Where otelstream spends its time on W1 (one LLM call streaming 10,000 chunks).

    python -m benchmarks.hotpath [--mode sync|async] [--runs 10] [--rate 1000]

Needs py-spy (``pip install py-spy``) and the right to ptrace a child process. A sampling profiler
that sees every thread is required: LangGraph's sync ``stream`` runs the node (and so the chat
model and every callback) on a pool thread while the caller's thread waits, which a main-thread
profiler such as pyinstrument never sees.

A child process imports everything and warms up; py-spy then attaches and records only the
profiled runs. Each CPU sample (idle threads are not sampled) goes to its *owner*: the innermost
frame that belongs to otelstream or to LangGraph/LangChain. OpenTelemetry SDK and standard-library
frames have no owner of their own, so ``span.add_event`` counts for the otelstream function that
called it, while the graph's own work under otelstream's stream wrapper counts for LangGraph.
Samples with no owner at all are mostly the SDK's batch export thread.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import otelstream
from benchmarks import workloads
from benchmarks.worker import Telemetry

ROOT = Path(__file__).resolve().parent.parent
_FRAME = re.compile(r"^(?P<function>.*) \((?P<file>.*?)(?::\d+)?\)$")
_HOSTS = ("langgraph/", "langchain_core/", "langchain/", "otelstream/testing.py")


def _owner(frame: str) -> str | None:
    match = _FRAME.match(frame)
    if match is None:
        return None
    path, function = match["file"], match["function"]
    # otelstream/testing.py is the workload's scripted model, not the tracing hot path.
    if "otelstream/" in path and not path.endswith("otelstream/testing.py"):
        return f"{path.rsplit('otelstream/', 1)[1]}:{function}"
    if any(host in path for host in _HOSTS):
        return "host"
    return None


def attribute(raw: str) -> tuple[Counter[str], int]:
    """Samples owned by each otelstream function (plus ``host`` and ``none``), and the total."""
    owned: Counter[str] = Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        owner = "none"
        for frame in reversed(stack.split(";")):
            found = _owner(frame)
            if found is not None:
                owner = found
                break
        owned[owner] += int(count)
        total += int(count)
    return owned, total


def child(mode: str, runs: int, chunks: int) -> None:
    """Warm up, wait for the profiler, then stream ``runs`` times."""
    telemetry = Telemetry()
    stream_mode = workloads.stream_mode("W1")
    sizes = workloads.Sizes(w1_chunks=chunks)
    graphs = [
        otelstream.instrument(
            workloads.build("W1", sizes),
            tracer_provider=telemetry.tracer_provider,
            meter_provider=telemetry.meter_provider,
        )
        for _ in range(runs + 1)
    ]
    loop = asyncio.new_event_loop()

    async def consume_async(graph: Any) -> None:
        async for _ in graph.astream(workloads.inputs(), stream_mode=stream_mode):
            pass

    def run(graph: Any) -> None:
        if mode == "sync":
            for _ in graph.stream(workloads.inputs(), stream_mode=stream_mode):
                pass
        else:
            loop.run_until_complete(consume_async(graph))

    run(graphs[0])
    telemetry.drain()
    print("ready", flush=True)
    sys.stdin.readline()
    for graph in graphs[1:]:
        run(graph)
    telemetry.drain()
    loop.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--mode", choices=("sync", "async"), default="sync")
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--chunks", type=int, default=workloads.FULL.w1_chunks)
    parser.add_argument("--rate", type=int, default=1000, help="samples per second")
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        child(args.mode, args.runs, args.chunks)
        return 0

    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    command = [sys.executable, "-m", "benchmarks.hotpath", "--child"]
    command += ["--mode", args.mode, "--runs", str(args.runs), "--chunks", str(args.chunks)]
    with tempfile.TemporaryDirectory() as tmp:
        raw_path = Path(tmp) / "raw.txt"
        target = subprocess.Popen(
            command, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert target.stdin is not None
        assert target.stdout is not None
        if target.stdout.readline().strip() != "ready":
            target.kill()
            print("the profiled child failed to start", file=sys.stderr)
            return 1
        recorder = subprocess.Popen(
            [
                *(py_spy, "record", "--pid", str(target.pid), "--format", "raw"),
                *("--rate", str(args.rate), "--output", str(raw_path), "--nonblocking"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        time.sleep(1.0)  # let py-spy attach before the profiled runs start
        target.stdin.write("go\n")
        target.stdin.flush()
        target.wait()
        _, errors = recorder.communicate(timeout=60)
        if not raw_path.exists():
            print(f"py-spy wrote nothing:\n{errors}", file=sys.stderr)
            return 1
        owned, total = attribute(raw_path.read_text())

    ours = {name: count for name, count in owned.items() if name not in ("host", "none")}
    print(
        f"W1 {args.mode}: {args.runs} runs of {args.chunks} chunks, {total} CPU samples at "
        f"{args.rate}/s. Owners: otelstream {sum(ours.values()) / total:.1%}, "
        f"LangGraph/LangChain {owned['host'] / total:.1%}, "
        f"neither (SDK export thread, interpreter) {owned['none'] / total:.1%}"
    )
    print("| otelstream function (incl. the SDK calls it makes) | samples | share of CPU |")
    print("|---|---:|---:|")
    for name, count in sorted(ours.items(), key=lambda item: -item[1])[: args.top]:
        print(f"| {name} | {count} | {count / total:.1%} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
