"""The benchmark harness runs end to end at tiny sizes; timings are never asserted here."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from helpers import USER, chat_graph, final
from langchain.agents import create_agent
from langchain_core.tools import tool
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import HistogramDataPoint, InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider

import otelstream
from benchmarks.floor import Replay, record_script
from benchmarks.run import LOCAL
from otelstream.testing import FakeStreamingChatModel, tool_call

ROOT = Path(__file__).resolve().parent.parent


def test_quick_benchmark_reports_every_workload_mode_and_contender(tmp_path: Path) -> None:
    """`python -m benchmarks.run --quick` exits 0 and has a row per workload, mode and contender."""
    out = tmp_path / "bench.md"
    env = {k: v for k, v in os.environ.items() if k != "OTELSTREAM_BENCH_PEERS_PYTHON"}
    completed = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--quick", "--out", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=420,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    report = out.read_text()
    assert report in completed.stdout
    table = [
        [cell.strip() for cell in line.strip("|").split("|")]
        for line in report.splitlines()
        if line.startswith("| W")
    ]
    rows = {tuple(row[:3]) for row in table}
    expected = {
        (workload, f"{mode} ({stream_mode})", contender)
        for workload, stream_mode in (
            ("W1", "updates+messages+custom"),
            ("W2", "updates+messages+custom"),
            ("W3", "updates"),
            ("W4", "updates+messages+custom"),
        )
        for mode in ("sync", "async")
        for contender in LOCAL
    }
    assert rows == expected
    # The SDK floor replays exactly what otelstream recorded (spans, events and metric points);
    # the no-op contender exports nothing.
    # trace_chunks=False records the same spans; it stops making the model stream, so only where
    # the caller does not stream messages itself (W3) do its chat spans lose their chunk events.
    spans_events = {(row[0], row[1], row[2]): (row[-3], row[-2]) for row in table}
    points = {(row[0], row[1], row[2]): row[-1] for row in table}
    for workload, mode, _ in expected:
        traced = spans_events[(workload, mode, "otelstream")]
        assert int(traced[0]) > 0
        assert spans_events[(workload, mode, "sdk-floor")] == traced
        assert int(points[(workload, mode, "otelstream")]) > 0
        assert points[(workload, mode, "sdk-floor")] == points[(workload, mode, "otelstream")]
        assert points[(workload, mode, "otelstream-noop")] == "0"
        assert spans_events[(workload, mode, "otelstream-noop")] == ("0", "0")
        untimed = spans_events[(workload, mode, "otelstream-nochunks")]
        assert untimed[0] == traced[0]
        if workload == "W3":
            assert int(untimed[1]) < int(traced[1])
        else:
            assert untimed[1] == traced[1]


def _table(report: str) -> dict[tuple[str, str, str], list[str]]:
    rows = (
        [cell.strip() for cell in line.strip("|").split("|")]
        for line in report.splitlines()
        if line.startswith("| W")
    )
    return {(row[0], row[1], row[2]): row[3:] for row in rows}


def test_quick_instruction_count_reports_each_run_under_callgrind(tmp_path: Path) -> None:
    """`python -m benchmarks.instructions --quick` exits 0 with a row per contender, and the shim
    really counted each run: bare is its own ratio, a traced run executes more instructions."""
    missing = [tool for tool in ("valgrind", "gcc") if shutil.which(tool) is None]
    if missing:
        pytest.fail(
            f"{', '.join(missing)} not installed: run scripts/provision.sh (make test does)",
            pytrace=False,
        )
    out = tmp_path / "instructions.md"
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.instructions",
            "--quick",
            "--workloads",
            "W2",
            "--modes",
            "sync",
            "--contenders",
            "otelstream",
            "--out",
            str(out),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    table = _table(out.read_text())
    assert set(table) == {("W2", "sync", "bare"), ("W2", "sync", "otelstream")}
    bare, traced = table[("W2", "sync", "bare")], table[("W2", "sync", "otelstream")]
    assert bare[1] == "1.000"
    assert float(traced[0]) > float(bare[0]) > 0


@tool
def lookup(query: str) -> str:
    """Look something up."""
    return "found"


def _histogram_points(reader: InMemoryMetricReader) -> Counter[tuple[str, frozenset[Any]]]:
    """How many values each histogram series holds, by metric name and attributes."""
    counts: Counter[tuple[str, frozenset[Any]]] = Counter()
    data = reader.get_metrics_data()
    for rm in data.resource_metrics if data else []:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                for point in metric.data.data_points:
                    if isinstance(point, HistogramDataPoint):
                        counts[(metric.name, frozenset(point.attributes.items()))] += point.count
    return counts


@pytest.mark.parametrize("kind", ["agent", "workflow"])
def test_sdk_floor_replays_the_histogram_points_otelstream_records(kind: str) -> None:
    """The floor's replay records each of otelstream's histogram points, in the same histogram
    with the same attributes: run durations by agent or workflow, tool, chat and task points."""

    def graph() -> Any:
        if kind == "agent":
            model = FakeStreamingChatModel(
                responses=[tool_call("lookup", {"query": "q"}, call_id="c1"), final("a b c")]
            )
            return create_agent(model, tools=[lookup], name="helper")
        return chat_graph(FakeStreamingChatModel(responses=[final("a b c")]), name="pipeline")

    def run(traced: Any) -> None:
        list(traced.stream(USER, stream_mode=["updates", "messages"]))

    traced_reader = InMemoryMetricReader()
    run(
        otelstream.instrument(
            graph(),
            tracer_provider=TracerProvider(),
            meter_provider=MeterProvider(metric_readers=[traced_reader]),
        )
    )
    replay_reader = InMemoryMetricReader()
    meter = MeterProvider(metric_readers=[replay_reader]).get_meter("floor")
    Replay(TracerProvider().get_tracer("floor"), meter).play(record_script(run, graph()))
    recorded = _histogram_points(traced_reader)
    run_metric = "gen_ai.invoke_agent.duration" if kind == "agent" else "gen_ai.workflow.duration"
    assert run_metric in {name for name, _ in recorded}
    assert _histogram_points(replay_reader) == recorded


def test_quick_unit_costs_report_one_span_and_one_point_per_node(tmp_path: Path) -> None:
    """`python -m benchmarks.unit_costs --quick` exits 0, and its slopes count what a node adds:
    one span and one task-duration point with the SDK, none on the no-op providers."""
    out = tmp_path / "units.md"
    completed = subprocess.run(
        [sys.executable, "-m", "benchmarks.unit_costs", "--quick", "--cases", "nodes"]
        + ["--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    table = {
        tuple(row[:3]): row[3:]
        for row in (
            [cell.strip() for cell in line.strip("|").split("|")]
            for line in out.read_text().splitlines()
            if line.startswith("| nodes | node")
        )
    }
    traced = table[("nodes", "node (span + its points)", "otelstream")]
    nometer = table[("nodes", "node (span + its points)", "otelstream-nometer")]
    noop = table[("nodes", "node (span + its points)", "otelstream-noop")]
    # After the unit column: cost, spans, events, points, dropped.
    assert traced[1:4] == ["1.000", "0.000", "1.000"]
    assert nometer[1:4] == ["1.000", "0.000", "0.000"]
    assert noop[1:4] == ["0.000", "0.000", "0.000"]
