"""Instructions per run under callgrind: a cost measure that a noisy shared machine cannot move.

    python -m benchmarks.instructions [--quick] [--workloads W1,W2] [--modes sync,async]
        [--contenders otelstream,openllmetry] [--peers-python PATH] [--runs 3] [--jobs 2]

Wall-clock ratios on a shared 2-core VM drift by several percent between two identical
processes (the main benchmark's ``bare-again`` row), which hides the difference between two
tracers that cost a few percent each. Valgrind's callgrind counts the instructions executed
instead: repeatable to a fraction of a percent for the same program and input, whatever else
the machine is doing. Each contender runs ``benchmarks.worker`` under callgrind; a tiny shared
library (built here with gcc from valgrind's ``callgrind.h``) zeroes the counters just before
each timed section and dumps them just after, so a dump holds exactly one run, every thread
included (LangGraph's pool threads, the SDK's export thread, otelstream's watchdog).

Instructions are not time: they leave out cache misses, lock hand-offs between threads and the
like, which the wall-clock benchmark does see. Read the two together. Needs valgrind (Debian's
``valgrind`` package, headers included) and gcc; slow (about a minute of start-up per process),
so W1 streams 2,000 chunks here: the cost per chunk is what it measures. W4 keeps its real
latencies: callgrind counts no instructions while a thread sleeps, so its counts are the CPU work
of a run whose wall clock is mostly waiting. ``--quick`` (the test
suite's smoke test) runs the tiny sizes with one warm-up and one measured run.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from benchmarks import workloads
from benchmarks.run import LOCAL, PEERS, PEERS_ENV, ROOT, machine, worker_command, worker_env

SIZES = workloads.Sizes(w1_chunks=2_000)
WARMUP = 2
_SHIM_SOURCE = """
#include <valgrind/callgrind.h>
void otelstream_bench_zero(void) { CALLGRIND_ZERO_STATS; }
void otelstream_bench_dump(void) { CALLGRIND_DUMP_STATS_AT("run"); }
"""


def build_shim(directory: Path) -> Path:
    """Compile the client-request shim; a clear error when gcc or valgrind's header is missing."""
    for tool in ("gcc", "valgrind"):
        if shutil.which(tool) is None:
            msg = f"{tool} is not installed: apt-get install valgrind gcc"
            raise SystemExit(msg)
    source = directory / "shim.c"
    source.write_text(_SHIM_SOURCE)
    library = directory / "libotelstream_bench_shim.so"
    built = subprocess.run(
        ["gcc", "-O2", "-shared", "-fPIC", "-o", str(library), str(source)],
        capture_output=True,
        text=True,
        check=False,
    )
    if built.returncode != 0:
        msg = f"cannot build the callgrind shim (is valgrind's callgrind.h there?):\n{built.stderr}"
        raise SystemExit(msg)
    return library


@dataclass(frozen=True)
class Plan:
    """Sizes and runs of every callgrind process."""

    sizes: workloads.Sizes
    warmup: int
    runs: int


def count(
    python: str, workload: str, mode: str, contender: str, plan: Plan, shim: Path, out: Path
) -> list[int]:
    """Instructions of each measured run of one contender (after its warm-up runs)."""
    prefix = out / f"{workload}-{mode}-{contender}"
    env = worker_env()
    env["PYTHONHASHSEED"] = "0"
    done = subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={prefix}.%p",
            *worker_command(python, contender, workload, mode, plan.sizes),
            "--callgrind-shim",
            str(shim),
        ],
        input="run\n" * (plan.warmup + plan.runs) + "quit\n",
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        check=False,
    )
    if done.returncode != 0:
        msg = f"{contender} {workload} {mode} failed under callgrind:\n{done.stderr[-2000:]}"
        raise RuntimeError(msg)
    dumps = sorted(
        (p for p in out.glob(f"{prefix.name}.*.*")),
        key=lambda p: int(p.name.rsplit(".", 1)[1]),
    )
    totals = []
    for dump in dumps[plan.warmup :]:
        for line in dump.read_text().splitlines():
            if line.startswith("totals:"):
                totals.append(int(line.split()[1]))
    return totals


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes, one run (smoke test)")
    parser.add_argument("--workloads", default=",".join(workloads.WORKLOADS))
    parser.add_argument("--modes", default="sync,async")
    parser.add_argument("--contenders", help="comma-separated (bare always runs)")
    parser.add_argument("--peers-python", default=os.environ.get(PEERS_ENV))
    parser.add_argument("--runs", type=int, default=3, help="measured runs per process")
    parser.add_argument("--jobs", type=int, default=2, help="callgrind processes at a time")
    parser.add_argument("--out", type=Path, help="also write the Markdown report here")
    args = parser.parse_args(argv)
    plan = (
        Plan(workloads.QUICK, warmup=1, runs=1)
        if args.quick
        else Plan(SIZES, warmup=WARMUP, runs=args.runs)
    )

    pythons = dict.fromkeys(LOCAL, sys.executable)
    if args.peers_python:
        pythons.update(dict.fromkeys(PEERS, args.peers_python))
    names = list(pythons)
    if args.contenders:
        names = ["bare", *(n for n in args.contenders.split(",") if n != "bare")]
        unknown = [n for n in names if n not in pythons]
        if unknown:
            parser.error(f"unknown or unavailable contenders: {', '.join(unknown)}")
    jobs = [
        (workload, mode, name)
        for workload in args.workloads.split(",")
        for mode in args.modes.split(",")
        for name in names
    ]
    with tempfile.TemporaryDirectory(prefix="otelstream-callgrind-") as tmp:
        directory = Path(tmp)
        shim = build_shim(directory)
        with ThreadPoolExecutor(max_workers=args.jobs) as pool:
            futures = {
                job: pool.submit(count, pythons[job[2]], *job, plan, shim, directory)
                for job in jobs
            }
            results = {job: future.result() for job, future in futures.items()}

    host = machine()
    lines = [
        "# otelstream benchmarks: instructions per run (callgrind)",
        "",
        f"- Machine: {host['nproc']} CPUs, {host['cpu']}, {host['os']}; Python "
        f"{sys.version.split()[0]}",
        f"- Sizes: W1 = {plan.sizes.w1_chunks} chunks, W2/W3 = {plan.sizes.w2_rounds} tool rounds "
        f"and a {plan.sizes.w2_answer_chunks}-chunk answer, W4 = {plan.sizes.w4_rounds} tool "
        f"rounds and a {plan.sizes.w4_answer_tokens}-token answer at a hosted model's pace; "
        f"{plan.runs} measured runs after "
        f"{plan.warmup} warm-up runs per process; every thread's instructions between the start "
        "and the end of each run",
        "",
        "| workload | mode | contender | million instructions/run | ratio to bare | "
        "spread of runs |",
        "|---|---|---|---:|---:|---:|",
    ]
    for workload, mode, name in jobs:
        totals = results[(workload, mode, name)]
        bare = statistics.median(results[(workload, mode, "bare")])
        median = statistics.median(totals)
        spread = (max(totals) - min(totals)) / median
        lines.append(
            f"| {workload} | {mode} | {name} | {median / 1e6:.1f} | {median / bare:.3f} "
            f"| {spread:.1%} |"
        )
    report = "\n".join(lines) + "\n"
    print(report)
    if args.out:
        args.out.write_text(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
