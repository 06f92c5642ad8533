"""The shipped Prometheus rules: valid, unit-tested, and written against a real run's names."""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers import USER
from langchain.agents import create_agent
from langchain_core.messages import AIMessage
from langchain_core.tools import tool
from langgraph.errors import NodeTimeoutError
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.types import TimeoutPolicy
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

import otelstream
from otelstream import names
from otelstream.options import Options
from otelstream.testing import FakeStreamingChatModel, tool_call

REPO = Path(__file__).resolve().parents[1]
RULES = REPO / "prometheus" / "otelstream-rules.yaml"
RULE_TESTS = REPO / "prometheus" / "tests" / "otelstream-rules.test.yaml"

# Recording rules' own names (level:metric:operation) are the only tokens with a colon.
_RECORDED = re.compile(r"\b[a-zA-Z_][a-zA-Z0-9_]*:[a-zA-Z0-9_:]+")
_METRIC = re.compile(
    r"\b((?:gen_ai|otelstream)_[a-zA-Z0-9_]*_(?:bucket|sum|count|total|seconds))\b"
)
_SELECTOR = re.compile(r"\b((?:gen_ai|otelstream)_[a-zA-Z0-9_]*)\{([^}]*)\}")
_MATCHER = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)\s*(=|!=)\s*"([^"]*)"')
_GROUPING = re.compile(r"\b(?:by|on)\s*\(([^)]*)\)")
# Labels Prometheus itself adds (target labels) or that histograms carry.
_SERVER_LABELS = {"job", "instance", "le"}
_OUTCOMES = {value for key, value in vars(names).items() if key.startswith("OUTCOME_")}


def promtool() -> str:
    """promtool's path; the test fails, with what to run, when it is missing."""
    path = shutil.which("promtool")
    if path is None:
        pytest.fail(
            "promtool is not installed: run scripts/provision.sh (make test does)", pytrace=False
        )
    return path


def rule_expressions() -> dict[str, str]:
    """Every rule's expression, by alert or record name."""
    groups = yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"]
    return {
        rule.get("alert") or rule["record"]: rule["expr"]
        for group in groups
        for rule in group["rules"]
    }


def test_promtool_check_rules_accepts_the_rules_file() -> None:
    """``promtool check rules`` finds every rule valid."""
    result = subprocess.run(
        [promtool(), "check", "rules", str(RULES)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_promtool_unit_tests_of_the_rules_pass() -> None:
    """The rules' unit tests (``promtool test rules``) pass."""
    result = subprocess.run(
        [promtool(), "test", "rules", str(RULE_TESTS)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_the_docs_name_is_shipped() -> None:
    """The four alerts the README describes exist, each with a severity and a summary."""
    groups = yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"]
    alerts = {rule["alert"]: rule for group in groups for rule in group["rules"] if "alert" in rule}
    assert {
        "OtelstreamToolCallStalled",
        "OtelstreamLLMStreamStalled",
        "OtelstreamTaskStalled",
        "OtelstreamTimeToFirstChunkHigh",
        "OtelstreamToolErrorRateHigh",
        "OtelstreamRunsTimingOut",
        "OtelstreamRunFailureRateHigh",
    } == set(alerts)
    for name, rule in alerts.items():
        assert rule["labels"]["severity"], name
        assert rule["annotations"]["summary"], name


# ---- names from a real run -------------------------------------------------------------------


def _scrape(registry: CollectorRegistry, into: dict[str, list[dict[str, str]]]) -> None:
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for sample in family.samples:
            into[sample.name].append(dict(sample.labels))


def _has_stalls_of_every_kind(samples: dict[str, list[dict[str, str]]]) -> bool:
    kinds = {"tool", "llm", "task"}
    stalled = {row.get("otelstream_work_kind") for row in samples["otelstream_stalls_total"]}
    ages = {
        row.get("otelstream_work_kind") for row in samples["otelstream_inflight_oldest_age_seconds"]
    }
    return kinds <= stalled and kinds <= ages


def _hanging_graph() -> Any:
    async def hangs(state: MessagesState) -> dict[str, Any]:
        await asyncio.sleep(30)
        return {}

    builder = StateGraph(MessagesState)
    builder.add_node("hangs", hangs, timeout=TimeoutPolicy(run_timeout=0.05))
    builder.add_edge(START, "hangs")
    return builder.compile(name="hanging")


def _real_run_samples() -> dict[str, list[dict[str, str]]]:
    """Prometheus samples of real traced runs: a stalled tool, a silent LLM, a stalled task,
    a failing tool; scraped repeatedly while the stalled work still runs."""
    release = threading.Event()

    @tool
    def slow_search(query: str) -> str:
        """Search slowly."""
        release.wait(20)
        return "results"

    @tool
    def broken_lookup(query: str) -> str:
        """Fail the way a broken tool does."""
        msg = f"lookup service down for {query}"
        raise ConnectionError(msg)

    def agent(tool_: Any, name: str) -> Any:
        model = FakeStreamingChatModel(
            responses=[tool_call(tool_.name, {"query": "q"}, call_id="call_1"), AIMessage("Done.")]
        )
        return create_agent(model, tools=[tool_], name=name)

    silent = FakeStreamingChatModel(responses=[AIMessage("late answer")], first_chunk_delay=1.0)

    def chat(state: MessagesState) -> dict[str, Any]:
        return {"messages": [silent.invoke(state["messages"])]}

    # One graph with both stalls in parallel branches: one instrument() per meter provider
    # (see test_stalls' shared-provider test).
    builder = StateGraph(MessagesState)
    builder.add_node("research", agent(slow_search, "searcher"))
    builder.add_node("chat", chat)
    builder.add_edge(START, "research")
    builder.add_edge(START, "chat")
    builder.add_edge("research", END)
    builder.add_edge("chat", END)

    registry = CollectorRegistry()
    meter_provider = MeterProvider(
        metric_readers=[PrometheusMetricReader(disable_target_info=True, registry=registry)]
    )
    tracer_provider = TracerProvider()
    options = Options(tool_stall_threshold=0.2, llm_stall_threshold=0.2, task_stall_threshold=0.2)
    graph = otelstream.instrument(
        builder.compile(name="both"),
        tracer_provider=tracer_provider,
        meter_provider=meter_provider,
        options=options,
    )
    samples: dict[str, list[dict[str, str]]] = defaultdict(list)
    with ThreadPoolExecutor(1) as pool:
        try:
            run = pool.submit(lambda: list(graph.stream(USER, stream_mode=["updates", "messages"])))
            deadline = time.monotonic() + 5
            while not _has_stalls_of_every_kind(samples) and time.monotonic() < deadline:
                time.sleep(0.05)
                _scrape(registry, samples)
        finally:
            release.set()
        run.result(timeout=10)
    # Its tool raises, so that error_type labels exist (synchronous instruments may share a
    # meter provider).
    failing = otelstream.instrument(
        agent(broken_lookup, "breaker"),
        tracer_provider=tracer_provider,
        meter_provider=meter_provider,
    )
    with pytest.raises(ConnectionError):
        list(failing.stream(USER, stream_mode=["updates", "messages"]))
    # A node cut off by its TimeoutPolicy: a run with outcome `timeout`.
    timed_out = otelstream.instrument(
        _hanging_graph(), tracer_provider=tracer_provider, meter_provider=meter_provider
    )
    with pytest.raises(NodeTimeoutError):
        asyncio.run(timed_out.ainvoke({"messages": []}))
    _scrape(registry, samples)
    meter_provider.shutdown()
    tracer_provider.shutdown()
    return samples


def test_every_metric_and_label_in_the_rules_exists_after_a_real_run() -> None:
    """Metric names, label names and label matchers in the rules all match a real run's output."""
    samples = _real_run_samples()
    assert _has_stalls_of_every_kind(samples), "the run did not stall every kind of work"
    label_names = {label for rows in samples.values() for row in rows for label in row}
    used = set()
    for name, expr in rule_expressions().items():
        plain = _RECORDED.sub("", expr)
        for metric in _METRIC.findall(plain):
            used.add(metric)
            assert metric in samples, f"{name}: {metric} is not exported"
        for metric, matchers in _SELECTOR.findall(plain):
            for label, op, value in _MATCHER.findall(matchers):
                rows = samples[metric]
                if label == "otelstream_outcome":
                    # Not every metric has every outcome in one test run (no agent here times
                    # out): the label must exist, and the value be an outcome otelstream records.
                    assert value in _OUTCOMES, f"{name}: {value} is not an outcome"
                    assert any(label in row for row in rows), f"{name}: {metric} has no {label}"
                    continue
                if op == "=":
                    ok = any(row.get(label, "") == value for row in rows)
                else:
                    ok = any(row.get(label, "") != value for row in rows)
                assert ok, f'{name}: no {metric} sample has {label}{op}"{value}"'
        for grouping in _GROUPING.findall(plain):
            for label in (part.strip() for part in grouping.split(",")):
                assert label in label_names | _SERVER_LABELS, f"{name}: label {label} not exported"
    assert used == {
        "otelstream_inflight_oldest_age_seconds",
        "otelstream_stalls_total",
        "gen_ai_client_operation_time_to_first_chunk_seconds_bucket",
        "gen_ai_execute_tool_duration_seconds_count",
        "gen_ai_workflow_duration_seconds_count",
        "gen_ai_invoke_agent_duration_seconds_count",
    }
