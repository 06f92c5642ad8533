"""Every metric a dashboard queries exists, under its Prometheus name, after a real traced run."""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Any

import pytest
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from otlp_testkit import (
    AGENT_INPUT,
    STREAM_MODES,
    make_failing_agent_graph,
    make_workflow_graph,
    promql_expressions,
)
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from test_prometheus_rules import _real_run_samples as stalled_run_samples

import otelstream
from otelstream import names

# Our metric names in PromQL are the only tokens with these prefixes and suffixes; label names
# share the prefixes but never end in a histogram suffix.
_METRIC = re.compile(r"\b((?:gen_ai|otelstream)_[a-zA-Z0-9_]*_(?:bucket|sum|count|total))\b")
_SELECTOR = re.compile(r"\b((?:gen_ai|otelstream)_[a-zA-Z0-9_]*)\{([^}]*)\}")
_EQUALS = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"([^"]*)"')
_LABEL = re.compile(r"\b((?:gen_ai|otelstream|langgraph|error)_[a-zA-Z0-9_]*)\b")


def _run_and_scrape(agent_graph: Any) -> tuple[set[str], dict[str, list[dict[str, str]]]]:
    """Run the traced agent and a workflow; return the OTel metric names and Prometheus samples."""
    memory = InMemoryMetricReader()
    registry = CollectorRegistry()
    prometheus = PrometheusMetricReader(disable_target_info=True, registry=registry)
    meter_provider = MeterProvider(metric_readers=[memory, prometheus])
    tracer_provider = TracerProvider()
    traced = otelstream.instrument(
        agent_graph, tracer_provider=tracer_provider, meter_provider=meter_provider
    )
    list(traced.stream(AGENT_INPUT, stream_mode=STREAM_MODES))
    # A plain graph is a workflow: its runs have a histogram (and name label) of their own.
    workflow = otelstream.instrument(
        make_workflow_graph(), tracer_provider=tracer_provider, meter_provider=meter_provider
    )
    list(workflow.stream(AGENT_INPUT, stream_mode=STREAM_MODES))
    # A failing run too, so that error.type labels exist for the error panels.
    failing = otelstream.instrument(
        make_failing_agent_graph(), tracer_provider=tracer_provider, meter_provider=meter_provider
    )
    with pytest.raises(ConnectionError):
        list(failing.stream(AGENT_INPUT, stream_mode=STREAM_MODES))

    data = memory.get_metrics_data()
    otel_names = {
        metric.name
        for rm in (data.resource_metrics if data else [])
        for sm in rm.scope_metrics
        for metric in sm.metrics
    }
    samples: dict[str, list[dict[str, str]]] = defaultdict(list)
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for sample in family.samples:
            samples[sample.name].append(dict(sample.labels))
    meter_provider.shutdown()
    return otel_names, samples


def test_every_dashboard_metric_and_label_exists_after_a_real_run(agent_graph: Any) -> None:
    """Dashboard metric names, label names and equality matchers all match a real run's metrics."""
    otel_names, samples = _run_and_scrape(agent_graph)
    # The stall panels read metrics that exist only while work hangs: add a stalled run's.
    for metric, rows in stalled_run_samples().items():
        samples.setdefault(metric, []).extend(rows)
    assert {
        names.METRIC_OPERATION_DURATION,
        names.METRIC_INVOKE_AGENT_DURATION,
        names.METRIC_WORKFLOW_DURATION,
        names.METRIC_EXECUTE_TOOL_DURATION,
        names.METRIC_TOKEN_USAGE,
        names.METRIC_TIME_TO_FIRST_CHUNK,
        names.METRIC_TIME_PER_OUTPUT_CHUNK,
        names.METRIC_TASK_DURATION,
    } <= otel_names
    label_names = {label for rows in samples.values() for row in rows for label in row}

    expressions = promql_expressions()
    used_metrics = set()
    for where, expr in expressions.items():
        # Gauges and up-down counters have no suffix: an exported family name is a metric too.
        exported = {m for m in _LABEL.findall(expr) if m in samples}
        for metric in {*_METRIC.findall(expr), *exported}:
            used_metrics.add(metric)
            assert metric in samples, f"{where}: {metric} is not exported"
        for metric, matchers in _SELECTOR.findall(expr):
            for label, value in _EQUALS.findall(matchers):
                assert any(row.get(label) == value for row in samples[metric]), (
                    f'{where}: no {metric} sample has {label}="{value}"'
                )
        without_metrics = _METRIC.sub("", expr)
        for label in set(_LABEL.findall(without_metrics)) - exported:
            assert label in label_names, f"{where}: label {label} is not exported"
    # Every metric otelstream emits appears on some dashboard.
    families = {re.sub(r"_(bucket|sum|count)$", "", m) for m in used_metrics}
    assert families == {
        "gen_ai_client_operation_duration_seconds",
        "gen_ai_invoke_agent_duration_seconds",
        "gen_ai_workflow_duration_seconds",
        "gen_ai_execute_tool_duration_seconds",
        "gen_ai_client_token_usage",
        "gen_ai_client_operation_time_to_first_chunk_seconds",
        "otelstream_chat_time_per_output_chunk_seconds",
        "otelstream_task_duration_seconds",
        "otelstream_inflight",
        "otelstream_inflight_oldest_age_seconds",
        "otelstream_inflight_idle_age_seconds",
        "otelstream_stalls_total",
    }
