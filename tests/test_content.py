"""Content safety: app text never reaches telemetry unless content capture is on."""

from __future__ import annotations

from typing import Any

import pytest
from helpers import metric_points
from langchain.agents import create_agent
from langchain_core.messages import AIMessage
from langchain_core.tools import tool
from langgraph.config import get_stream_writer

import otelstream
from otelstream.testing import FakeStreamingChatModel, tool_call

CANARY = "CANARY-7f3a9"


@tool
def lookup(query: str) -> str:
    """Look something up, reporting progress."""
    get_stream_writer()({"note": f"progress {CANARY}"})
    return f"result {CANARY}"


def _run(tracer_provider: Any, meter_provider: Any, capture: bool) -> None:

    model = FakeStreamingChatModel(
        responses=[
            tool_call("lookup", {"query": f"args {CANARY}"}, call_id="k1"),
            AIMessage(content=f"answer {CANARY}"),
        ]
    )
    traced = otelstream.instrument(
        create_agent(model, tools=[lookup]),
        tracer_provider=tracer_provider,
        meter_provider=meter_provider,
        options=otelstream.Options(capture_content=capture),
    )
    prompt = {"messages": [{"role": "user", "content": f"prompt {CANARY}"}]}
    chunks = list(traced.stream(prompt, stream_mode=["updates", "messages", "custom"]))
    assert CANARY in repr(chunks)


def _telemetry_text(spans: list[Any], reader: Any) -> list[str]:
    texts: list[str] = []
    for span in spans:
        texts.append(span.name)
        texts.extend(f"{k}={v!r}" for k, v in (span.attributes or {}).items())
        for event in span.events:
            texts.append(event.name)
            texts.extend(f"{k}={v!r}" for k, v in (event.attributes or {}).items())
    for name, points in metric_points(reader).items():
        texts.append(name)
        for p in points:
            texts.extend(f"{k}={v!r}" for k, v in p.attributes.items())
    return texts


def test_no_content_without_capture(tracer_provider, meter_provider, metric_reader, spans):
    """With capture off, prompt, answer, tool args and result and custom payload appear nowhere."""
    _run(tracer_provider, meter_provider, capture=False)
    texts = _telemetry_text(spans(), metric_reader)
    assert len(spans()) >= 5
    assert [t for t in texts if CANARY in t] == []


def test_content_with_capture(tracer_provider, meter_provider, metric_reader, spans):
    """With capture on, prompt, answer, tool args, tool result and custom payload are recorded."""
    _run(tracer_provider, meter_provider, capture=True)
    texts = _telemetry_text(spans(), metric_reader)
    hits = [t for t in texts if CANARY in t]
    for piece, key in (
        ("prompt", "gen_ai.input.messages"),
        ("answer", "gen_ai.output.messages"),
        ("args", "gen_ai.tool.call.arguments"),
        ("result", "gen_ai.tool.call.result"),
        ("progress", "otelstream.custom.payload"),
    ):
        assert any(t.startswith(key) and f"{piece} {CANARY}" in t for t in hits), (piece, key)
    # The answer streams word by word, so the canary is one chunk event's text on its own.
    assert any(t == f"otelstream.chunk.text={CANARY!r}" for t in hits)
    metric_texts = [
        repr(dict(p.attributes)) for pts in metric_points(metric_reader).values() for p in pts
    ]
    assert all(CANARY not in t for t in metric_texts)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("true", True), ("TRUE", True), ("1", True), ("false", False), ("", False), ("bogus", False)],
)
def test_capture_default_follows_env(monkeypatch, value, expected):
    """Options().capture_content follows OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT."""
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", value)
    assert otelstream.Options().capture_content is expected


def test_capture_off_when_env_unset(monkeypatch):
    """Without the environment variable, content capture is off."""
    monkeypatch.delenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", raising=False)
    assert otelstream.Options().capture_content is False


def test_env_capture_reaches_spans(monkeypatch, tracer_provider, meter_provider, spans):
    """With the environment variable true and no Options, tool arguments are captured."""
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "true")

    model = FakeStreamingChatModel(
        responses=[tool_call("lookup", {"query": CANARY}, call_id="k1"), AIMessage(content="ok")]
    )
    traced = otelstream.instrument(
        create_agent(model, tools=[lookup]), tracer_provider=tracer_provider
    )
    traced.invoke({"messages": [{"role": "user", "content": "hi"}]})
    (span,) = [s for s in spans() if s.name == "execute_tool lookup"]
    assert CANARY in span.attributes["gen_ai.tool.call.arguments"]


def test_captured_content_is_bounded(tracer_provider, spans):
    """Captured values longer than max_content_length are cut and end with an ellipsis."""

    model = FakeStreamingChatModel(
        responses=[tool_call("lookup", {"query": "x" * 500}, call_id="k1"), AIMessage(content="ok")]
    )
    traced = otelstream.instrument(
        create_agent(model, tools=[lookup]),
        tracer_provider=tracer_provider,
        options=otelstream.Options(capture_content=True, max_content_length=50),
    )
    traced.invoke({"messages": [{"role": "user", "content": "hi"}]})
    (span,) = [s for s in spans() if s.name == "execute_tool lookup"]
    value = span.attributes["gen_ai.tool.call.arguments"]
    assert len(value) == 50
    assert value.endswith("…")
