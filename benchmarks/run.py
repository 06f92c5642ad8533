"""Benchmark otelstream against the bare graph (and, optionally, its peers).

    python -m benchmarks.run [--quick] [--out FILE] [--peers-python PATH]

Each contender runs in its own process per workload and mode (``benchmarks.worker``), so imports,
monkey-patching instrumentors and peak RSS never mix. After warm-up runs, rounds are interleaved:
every round runs each contender once, bare first; a contender's ratio is computed within each
round (contender / bare) and the table shows the median of those ratios, which cancels slow drift
of a shared machine better than a ratio of medians. The same goes for the process CPU time of a
run and for the differences to bare (in ms of wall clock and of CPU), which matter most on W4,
where the model's latency dominates the wall clock.

Peers (OpenInference, OpenLLMetry, the OpenTelemetry project's genai-langchain) run only with
``--peers-python`` (or ``OTELSTREAM_BENCH_PEERS_PYTHON``): the interpreter of a separate virtual
environment that has them installed, so they never enter otelstream's own environment.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from benchmarks import workloads

ROOT = Path(__file__).resolve().parent.parent
MODES = ("sync", "async")
LOCAL = (
    "bare",
    "bare-again",
    "otelstream",
    "otelstream-nochunks",
    "otelstream-noop",
    "sdk-floor",
)
"""Contenders from otelstream's own environment (``benchmarks.worker`` says what each is)."""
PEERS = ("openinference", "openllmetry", "otel-genai")
PEERS_ENV = "OTELSTREAM_BENCH_PEERS_PYTHON"


@dataclass(frozen=True)
class Plan:
    """How much to run."""

    sizes: workloads.Sizes
    warmup: dict[str, int]
    rounds: dict[str, int]


QUICK = Plan(
    workloads.QUICK,
    warmup={"W1": 1, "W2": 1, "W3": 1, "W4": 1},
    rounds={"W1": 1, "W2": 1, "W3": 1, "W4": 1},
)
# Rounds enough for the median ratio to settle on a shared 2-core machine (bare-again shows how
# far it still drifts). A W4 run lasts about 5 s, almost all of it sleeping, so its ratios are
# close to 1 in every round and a few rounds suffice; its CPU differences are what it measures.
FULL = Plan(
    workloads.FULL,
    warmup={"W1": 2, "W2": 2, "W3": 2, "W4": 1},
    rounds={"W1": 16, "W2": 40, "W3": 40, "W4": 5},
)


class WorkerError(RuntimeError):
    """A worker process failed; its stderr is in the message."""


def worker_command(
    python: str, contender: str, workload: str, mode: str, sizes: workloads.Sizes
) -> list[str]:
    """The command line of one ``benchmarks.worker`` process."""
    return [
        python,
        "-m",
        "benchmarks.worker",
        "--contender",
        contender,
        "--workload",
        workload,
        "--mode",
        mode,
        "--sizes",
        json.dumps(sizes.to_dict()),
    ]


def worker_env() -> dict[str, str]:
    """The environment of a worker: this checkout importable, whichever venv runs it."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


class Worker:
    """One ``benchmarks.worker`` process, driven line by line."""

    def __init__(self, python: str, contender: str, workload: str, mode: str, plan: Plan) -> None:
        self.contender = contender
        # Lives as long as the worker; closed in quit() or kill().
        self._stderr: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115
        self._process = subprocess.Popen(
            worker_command(python, contender, workload, mode, plan.sizes),
            cwd=ROOT,
            env=worker_env(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
        )

    def _read(self) -> dict[str, Any]:
        assert self._process.stdout is not None
        for line in self._process.stdout:
            if line.startswith("@@"):
                result: dict[str, Any] = json.loads(line[2:])
                return result
        self._process.wait()
        self._stderr.seek(0)
        tail = self._stderr.read().decode(errors="replace")[-2000:]
        msg = f"{self.contender} worker exited with {self._process.returncode}:\n{tail}"
        raise WorkerError(msg)

    def _send(self, command: str) -> None:
        assert self._process.stdin is not None
        self._process.stdin.write(command + "\n")
        self._process.stdin.flush()

    def ready(self) -> dict[str, Any]:
        return self._read()

    def run(self) -> dict[str, Any]:
        self._send("run")
        return self._read()

    def quit(self) -> float:
        self._send("quit")
        rss = float(self._read()["rss_mb"])
        self._process.wait(timeout=30)
        self._stderr.close()
        return rss

    def kill(self) -> None:
        if self._process.poll() is None:
            self._process.kill()
            self._process.wait()
        self._stderr.close()


@dataclass
class Result:
    """One contender on one workload and mode."""

    workload: str
    mode: str
    contender: str
    runs: list[dict[str, Any]] = field(default_factory=list)
    ratios: list[float] = field(default_factory=list)
    cpu_ratios: list[float] = field(default_factory=list)
    extra_ms: list[float] = field(default_factory=list)
    extra_cpu_ms: list[float] = field(default_factory=list)
    rss_mb: float = 0.0

    def median_ms(self) -> float:
        return statistics.median(run["ms"] for run in self.runs)

    def median_cpu_ms(self) -> float:
        return statistics.median(run["cpu_ms"] for run in self.runs)

    def spread(self) -> str:
        """The 25th to 75th percentile of the per-round ratios."""
        if len(self.ratios) < 2:
            return "-"
        low, _, high = statistics.quantiles(self.ratios, n=4)
        return f"{low:.2f} to {high:.2f}"

    def per_run(self, key: str) -> int:
        # Every run of a contender records the same; the last one is representative.
        return int(self.runs[-1][key])


def bench_group(
    workload: str, mode: str, contenders: dict[str, str], plan: Plan
) -> tuple[list[Result], dict[str, dict[str, str]], list[str]]:
    """Run every contender on one workload and mode; returns results, versions and skip notes."""
    workers: dict[str, Worker] = {}
    versions: dict[str, dict[str, str]] = {}
    notes: list[str] = []
    started: dict[str, Worker] = {}
    try:
        # Started together (imports dominate start-up), measured one at a time.
        for name, python in contenders.items():
            started[name] = Worker(python, name, workload, mode, plan)
        for name, worker in started.items():
            try:
                versions[name] = worker.ready()["versions"]
                workers[name] = worker
            except WorkerError as error:
                if name in LOCAL:
                    raise
                notes.append(f"{name} skipped on {workload}/{mode}: {error}")
                worker.kill()
        results = {name: Result(workload, mode, name) for name in workers}
        for _ in range(plan.warmup[workload]):
            for worker in workers.values():
                worker.run()
        for _ in range(plan.rounds[workload]):
            round_runs: dict[str, dict[str, Any]] = {}
            for name, worker in workers.items():
                run = worker.run()
                results[name].runs.append(run)
                round_runs[name] = run
            bare = round_runs["bare"]
            for name, run in round_runs.items():
                result = results[name]
                result.ratios.append(run["ms"] / bare["ms"])
                result.cpu_ratios.append(run["cpu_ms"] / bare["cpu_ms"])
                result.extra_ms.append(run["ms"] - bare["ms"])
                result.extra_cpu_ms.append(run["cpu_ms"] - bare["cpu_ms"])
        for name, worker in workers.items():
            results[name].rss_mb = worker.quit()
    finally:
        for worker in started.values():
            worker.kill()
    return list(results.values()), versions, notes


def machine() -> dict[str, str]:
    """What the numbers were measured on."""
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "nproc": str(os.cpu_count()),
        "cpu": cpu,
        "os": f"{platform.system()} {platform.release()}",
    }


def render(
    results: list[Result],
    versions: dict[str, dict[str, str]],
    notes: list[str],
    plan: Plan,
    quick: bool,
) -> str:
    """The Markdown report."""
    lines = ["# otelstream benchmarks", ""]
    host = machine()
    base = versions.get("otelstream") or versions.get("bare") or {}
    lines.append(f"- Machine: {host['nproc']} CPUs, {host['cpu']}, {host['os']}")
    lines.append(
        "- Python {python}, langgraph {langgraph}, langchain {langchain}, "
        "langchain-core {langchain-core}, opentelemetry-sdk {opentelemetry-sdk}".format(**base)
    )
    for name, found in versions.items():
        extra = {k: v for k, v in found.items() if k not in base or base[k] != v}
        if extra:
            lines.append(f"- {name}: " + ", ".join(f"{k} {v}" for k, v in extra.items()))
    sizes = plan.sizes
    lines.append(
        f"- Sizes{' (--quick)' if quick else ''}: W1 = one LLM call streaming "
        f"{sizes.w1_chunks} chunks; W2 = create_agent tool loop of {sizes.w2_rounds} rounds "
        f"(2 custom events per tool) then a {sizes.w2_answer_chunks}-chunk answer, "
        f'stream_mode=["updates","messages","custom"]; W3 = W2 with stream_mode="updates"; '
        f"W4 = W2's shape at a hosted model's pace: {sizes.w4_rounds} tool round(s) of "
        f"{sizes.w4_tool_s * 1000:g} ms, every model call {sizes.w4_first_token_s * 1000:g} ms "
        f"to its first chunk and {sizes.w4_token_gap_s * 1000:g} ms between chunks, then a "
        f"{sizes.w4_answer_tokens}-token answer, consumed like W2"
    )
    lines.append(
        f"- Method: one process per contender x workload x mode; warm-up runs "
        f"{'/'.join(map(str, plan.warmup.values()))}; "
        f"rounds {'/'.join(plan.rounds)} = {'/'.join(map(str, plan.rounds.values()))}, "
        "each round runs every contender once (bare first); ratio = median over rounds of "
        "(contender ms / bare ms in the same round); spread = the 25th to 75th percentile of "
        "those ratios; bare-again is a second bare process, so its distance from 1.00 is the "
        "noise floor of every ratio"
    )
    lines.append(
        "- Traced contenders export to an InMemorySpanExporter through a BatchSpanProcessor "
        "and record metrics into an SDK MeterProvider with an InMemoryMetricReader; "
        "otelstream uses default Options"
    )
    lines.append(
        "- CPU = the worker process's CPU time (every thread) from the start of a run until its "
        "spans are flushed and its metrics collected; +ms and +CPU ms = median over rounds of "
        "(contender - bare in the same round)"
    )
    lines.append(
        "- Peak RSS = the worker process's ru_maxrss (includes imports and warm-up); "
        "chunks = chunks the consumer received per run; spans / events = exported per run; "
        "points = metric measurements per run (histogram recordings plus counter increments)"
    )
    lines.append("")
    lines.append(
        "| workload | mode | contender | chunks/run | median ms | ratio to bare | spread "
        "| +ms | CPU ms | CPU ratio | +CPU ms "
        "| peak RSS MB | spans/run | span events/run | metric points/run |"
    )
    lines.append("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for result in results:
        stream_mode = "updates" if result.workload == "W3" else "updates+messages+custom"
        lines.append(
            f"| {result.workload} | {result.mode} ({stream_mode}) | {result.contender} "
            f"| {result.per_run('chunks')} | {result.median_ms():.1f} "
            f"| {statistics.median(result.ratios):.2f} | {result.spread()} "
            f"| {statistics.median(result.extra_ms):+.1f} | {result.median_cpu_ms():.1f} "
            f"| {statistics.median(result.cpu_ratios):.2f} "
            f"| {statistics.median(result.extra_cpu_ms):+.1f} | {result.rss_mb:.1f} "
            f"| {result.per_run('spans')} | {result.per_run('events')} "
            f"| {result.per_run('points')} |"
        )
    if notes:
        lines.append("")
        lines.extend(f"- Note: {note}" for note in notes)
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes, one round (smoke test)")
    parser.add_argument("--out", type=Path, help="also write the Markdown report here")
    parser.add_argument(
        "--peers-python",
        default=os.environ.get(PEERS_ENV),
        help=f"python of a separate venv with the peers installed (default: ${PEERS_ENV})",
    )
    parser.add_argument(
        "--workloads", default=",".join(workloads.WORKLOADS), help="comma-separated subset"
    )
    parser.add_argument(
        "--modes", default=",".join(MODES), help="comma-separated subset of sync,async"
    )
    parser.add_argument(
        "--rounds",
        type=int,
        help="rounds per workload and mode (default: "
        + ", ".join(f"{w} {n}" for w, n in FULL.rounds.items())
        + ")",
    )
    parser.add_argument(
        "--contenders",
        help="comma-separated subset of the contenders (bare always runs: ratios need it)",
    )
    args = parser.parse_args(argv)

    plan = QUICK if args.quick else FULL
    if args.rounds:
        plan = Plan(plan.sizes, plan.warmup, dict.fromkeys(plan.rounds, args.rounds))
    contenders = dict.fromkeys(LOCAL, sys.executable)
    if args.peers_python:
        contenders.update(dict.fromkeys(PEERS, args.peers_python))
    if args.contenders:
        chosen = {"bare", *args.contenders.split(",")}
        unknown = chosen - set(contenders)
        if unknown:
            msg = f"unknown or unavailable contenders: {', '.join(sorted(unknown))}"
            parser.error(msg)
        contenders = {name: python for name, python in contenders.items() if name in chosen}

    started = time.monotonic()
    results: list[Result] = []
    versions: dict[str, dict[str, str]] = {}
    notes: list[str] = []
    for workload in args.workloads.split(","):
        for mode in args.modes.split(","):
            group, found, skipped = bench_group(workload, mode, contenders, plan)
            results.extend(group)
            versions.update(found)
            notes.extend(skipped)
            print(f"[{time.monotonic() - started:.0f}s] {workload} {mode} done", file=sys.stderr)

    report = render(results, versions, notes, plan, args.quick)
    print(report)
    if args.out:
        args.out.write_text(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
