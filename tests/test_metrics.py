"""Metrics: GenAI client histograms and task durations, with small id-free attribute sets."""

from __future__ import annotations

from typing import Any

import pytest
from helpers import (
    USER,
    by_op,
    chat_graph,
    final,
    get_weather,
    linear_graph,
    metric_points,
    metric_units,
    run_span,
)
from langchain.agents import create_agent

import otelstream
from otelstream import names
from otelstream.record.instruments import CHUNK_GAP_BUCKETS, DURATION_BUCKETS, TOKEN_BUCKETS
from otelstream.testing import FakeStreamingChatModel, tool_calls

ID_KEYS = {
    names.GEN_AI_TOOL_CALL_ID,
    names.LANGGRAPH_TASK_ID,
    names.GEN_AI_CONVERSATION_ID,
    names.GEN_AI_RESPONSE_ID,
    names.LANGGRAPH_CHECKPOINT_NS,
}


def _agent_run(tracer_provider: Any, meter_provider: Any, *, is_async: bool = False) -> Any:
    model = FakeStreamingChatModel(
        responses=[
            tool_calls(
                ("get_weather", {"city": "SF"}, "c1"), ("get_weather", {"city": "NY"}, "c2")
            ),
            final("It is sunny in both."),
        ],
        chunk_delay=0.002,
    )
    return otelstream.instrument(
        create_agent(model, tools=[get_weather], name="weather"),
        tracer_provider=tracer_provider,
        meter_provider=meter_provider,
    )


def _by_op(points: list[Any]) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for p in points:
        out.setdefault(p.attributes[names.GEN_AI_OPERATION_NAME], []).append(p)
    return out


def _check_agent_metrics(reader: Any, spans: list[Any]) -> None:
    points = metric_points(reader)
    duration = _by_op(points[names.METRIC_OPERATION_DURATION])
    assert set(duration) == {"chat"}  # runs and tools have histograms of their own
    assert sum(p.count for p in duration["chat"]) == 2
    assert names.METRIC_WORKFLOW_DURATION not in points
    (agent_point,) = points[names.METRIC_INVOKE_AGENT_DURATION]
    assert agent_point.count == 1
    assert dict(agent_point.attributes) == {
        names.GEN_AI_OPERATION_NAME: "invoke_agent",
        names.GEN_AI_AGENT_NAME: "weather",
        names.OTELSTREAM_OUTCOME: names.OUTCOME_COMPLETED,
    }
    (tool_point,) = points[names.METRIC_EXECUTE_TOOL_DURATION]
    assert tool_point.count == 2
    assert dict(tool_point.attributes) == {
        names.GEN_AI_OPERATION_NAME: "execute_tool",
        names.GEN_AI_TOOL_NAME: "get_weather",
    }
    run = run_span(spans)
    assert agent_point.sum == pytest.approx((run.end_time - run.start_time) / 1e9, abs=1e-6)

    tokens = {p.attributes[names.GEN_AI_TOKEN_TYPE]: p for p in points[names.METRIC_TOKEN_USAGE]}
    assert tokens["input"].count == 2
    assert tokens["input"].sum == 20
    chats = by_op(spans, "chat")
    assert tokens["output"].sum == sum(
        c.attributes[names.GEN_AI_USAGE_OUTPUT_TOKENS] for c in chats
    )

    (ttfc,) = points[names.METRIC_TIME_TO_FIRST_CHUNK]
    assert ttfc.count == 2
    assert ttfc.attributes[names.GEN_AI_REQUEST_MODEL] == "fake-model"
    (tpoc,) = points[names.METRIC_TIME_PER_OUTPUT_CHUNK]
    assert tpoc.count == 2
    assert tpoc.sum >= 2 * 0.002

    tasks = {p.attributes[names.LANGGRAPH_NODE]: p for p in points[names.METRIC_TASK_DURATION]}
    assert tasks["model"].count == 2
    assert tasks["tools"].count == 2

    for name, pts in points.items():
        for p in pts:
            assert not (set(p.attributes) & ID_KEYS), (name, dict(p.attributes))
            for value in p.attributes.values():
                assert value not in {"c1", "c2"}


def test_agent_run_metrics(tracer_provider, meter_provider, metric_reader, spans):
    """An agent run records durations by operation, tokens by type, chunk and task timings."""
    traced = _agent_run(tracer_provider, meter_provider)
    list(traced.stream(USER, {"configurable": {"thread_id": "thread-xyz"}}, stream_mode="updates"))
    _check_agent_metrics(metric_reader, spans())


async def test_agent_run_metrics_async(tracer_provider, meter_provider, metric_reader, spans):
    """Async: an agent run records the same metric points."""
    traced = _agent_run(tracer_provider, meter_provider)
    await traced.ainvoke(USER, {"configurable": {"thread_id": "thread-xyz"}})
    _check_agent_metrics(metric_reader, spans())


def test_bucket_boundaries_follow_advice(tracer_provider, meter_provider, metric_reader):
    """Histograms use the advised buckets: doubling seconds, powers of four for tokens."""
    _agent_run(tracer_provider, meter_provider).invoke(USER)
    points = metric_points(metric_reader)
    assert DURATION_BUCKETS[0] == pytest.approx(0.01)
    assert DURATION_BUCKETS[-1] == pytest.approx(81.92)
    assert TOKEN_BUCKETS[:3] == [1, 4, 16]
    assert TOKEN_BUCKETS[-1] == 67108864
    for name, bounds in (
        (names.METRIC_OPERATION_DURATION, DURATION_BUCKETS),
        (names.METRIC_INVOKE_AGENT_DURATION, DURATION_BUCKETS),
        (names.METRIC_EXECUTE_TOOL_DURATION, DURATION_BUCKETS),
        (names.METRIC_TIME_TO_FIRST_CHUNK, DURATION_BUCKETS),
        (names.METRIC_TASK_DURATION, DURATION_BUCKETS),
        (names.METRIC_TIME_PER_OUTPUT_CHUNK, CHUNK_GAP_BUCKETS),
        (names.METRIC_TOKEN_USAGE, TOKEN_BUCKETS),
    ):
        for p in points[name]:
            assert list(p.explicit_bounds) == pytest.approx(bounds), name
    units = metric_units(metric_reader)
    assert units[names.METRIC_OPERATION_DURATION] == "s"
    assert units[names.METRIC_INVOKE_AGENT_DURATION] == "s"
    assert units[names.METRIC_EXECUTE_TOOL_DURATION] == "s"
    assert units[names.METRIC_TOKEN_USAGE] == "{token}"
    assert units[names.METRIC_TASK_DURATION] == "s"


def test_task_duration_by_node(tracer_provider, meter_provider, metric_reader):
    """otelstream.task.duration has one series per node, attributed by langgraph.node only."""
    traced = otelstream.instrument(
        linear_graph("a", "b", sleep=0.02),
        tracer_provider=tracer_provider,
        meter_provider=meter_provider,
    )
    traced.invoke({"items": []})
    traced.invoke({"items": []})
    points = metric_points(metric_reader)[names.METRIC_TASK_DURATION]
    assert sorted(dict(p.attributes)[names.LANGGRAPH_NODE] for p in points) == ["a", "b"]
    assert all(set(p.attributes) == {names.LANGGRAPH_NODE} for p in points)
    assert all(p.count == 2 and p.min >= 0.02 for p in points)


def test_error_adds_error_type_to_metrics(tracer_provider, meter_provider, metric_reader):
    """A failed chat call and run record their duration with error.type."""
    traced = otelstream.instrument(
        chat_graph(FakeStreamingChatModel(error=ConnectionError("down"))),
        tracer_provider=tracer_provider,
        meter_provider=meter_provider,
    )
    with pytest.raises(ConnectionError):
        traced.invoke(USER)
    points = metric_points(metric_reader)
    duration = _by_op(points[names.METRIC_OPERATION_DURATION])
    assert duration["chat"][0].attributes[names.ERROR_TYPE] == "ConnectionError"
    (run_point,) = points[names.METRIC_WORKFLOW_DURATION]
    assert dict(run_point.attributes) == {
        names.GEN_AI_OPERATION_NAME: "invoke_workflow",
        names.GEN_AI_WORKFLOW_NAME: "LangGraph",
        names.OTELSTREAM_OUTCOME: names.OUTCOME_ERROR,
        names.ERROR_TYPE: "ConnectionError",
    }


def test_metrics_link_to_spans(tracer_provider, meter_provider, metric_reader, spans):
    """Metric points are recorded in their span's context, so exemplars point at the trace."""
    traced = otelstream.instrument(
        chat_graph(FakeStreamingChatModel(responses=[final("a b")])),
        tracer_provider=tracer_provider,
        meter_provider=meter_provider,
    )
    traced.invoke(USER)
    trace_id = run_span(spans()).context.trace_id
    points = metric_points(metric_reader)[names.METRIC_OPERATION_DURATION]
    exemplars = [e for p in points for e in p.exemplars]
    assert exemplars
    assert all(e.trace_id == trace_id for e in exemplars)
