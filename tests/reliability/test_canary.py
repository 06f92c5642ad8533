"""Content safety: with capture off nothing the app said is exported; with it on, it is bounded."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Annotated, Any

from langchain_core.messages import AIMessage, AnyMessage, HumanMessage
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.config import get_stream_writer
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.prebuilt import ToolNode, tools_condition
from langgraph.types import interrupt
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from typing_extensions import TypedDict

import otelstream
from otelstream import Options, names
from otelstream.testing import FakeStreamingChatModel

if TYPE_CHECKING:
    from pathlib import Path

    import pytest

CANARY = "CANARY-7f3a9c"
SECRET = "SECRET-2b8e41"


class State(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]
    note: str


@tool
def probe(query: str, api_key: str) -> str:
    """Probe a source; slow enough to stall, writes a custom payload."""
    get_stream_writer()({"found": f"{CANARY}-custom", "api_key": SECRET})
    time.sleep(0.3)
    return f"{CANARY}-tool-result"


def canary_graph() -> Any:
    """``prepare -> agent -> tools -> agent -> ask``: the canary in every kind of content."""
    model = FakeStreamingChatModel(
        responses=[
            AIMessage(
                content=f"calling {CANARY}-answer",
                tool_calls=[
                    {
                        "name": "probe",
                        "args": {"query": f"{CANARY}-argument", "api_key": SECRET},
                        "id": "call-1",
                    }
                ],
            ),
            AIMessage(content=f"final {CANARY}-answer words"),
        ]
    )

    def prepare(state: State) -> dict[str, Any]:
        return {"note": f"{state['note']} {CANARY}-state-out"}

    def agent(state: State) -> dict[str, Any]:
        return {"messages": [model.invoke(state["messages"])]}

    def ask(state: State) -> dict[str, Any]:
        answer = interrupt({"question": f"{CANARY}-interrupt", "password": SECRET})
        return {"note": str(answer)}

    builder = StateGraph(State)
    builder.add_node("prepare", prepare)
    builder.add_node("agent", agent)
    builder.add_node("tools", ToolNode([probe]))
    builder.add_node("ask", ask)
    builder.add_edge(START, "prepare")
    builder.add_edge("prepare", "agent")
    builder.add_conditional_edges("agent", tools_condition, {"tools": "tools", END: "ask"})
    builder.add_edge("tools", "agent")
    builder.add_edge("ask", END)
    return builder.compile(checkpointer=InMemorySaver(), name="canary")


INPUT = {
    "messages": [HumanMessage(content=f"prompt {CANARY}-prompt")],
    "note": f"{CANARY}-state-in",
}
CONFIG = {"configurable": {"thread_id": "t-1"}}
MODES = ["updates", "messages", "custom", "values"]


def _run(tracer_provider: Any, meter_provider: Any, options: Options) -> list[Any]:
    traced = otelstream.instrument(
        canary_graph(),
        tracer_provider=tracer_provider,
        meter_provider=meter_provider,
        options=options,
    )
    chunks = list(traced.stream(INPUT, CONFIG, stream_mode=MODES))
    assert CANARY in repr(chunks)  # the app does see its content
    return chunks


def _everything(exporter: InMemorySpanExporter, reader: InMemoryMetricReader) -> str:
    spans = exporter.get_finished_spans()
    assert spans
    text = "\n".join(span.to_json() for span in spans)
    data = reader.get_metrics_data()
    assert data is not None
    return text + "\n" + data.to_json()


OFF = Options(capture_content=False, tool_stall_threshold=0.05)


def test_capture_off_exports_no_content_anywhere(caplog: pytest.LogCaptureFixture) -> None:
    """With capture off, no span name, attribute, event, link, resource, metric point, exemplar or
    otelstream log line holds the prompt, answer, tool argument or result, custom payload,
    interrupt value or node state, even when a tool stalls."""
    caplog.set_level(logging.DEBUG, logger="otelstream")
    exporter, reader = InMemorySpanExporter(), InMemoryMetricReader()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    _run(tracer_provider, MeterProvider(metric_readers=[reader]), OFF)
    exported = _everything(exporter, reader)
    assert names.SPAN_STALLED.format(span="execute_tool probe") in exported  # it did stall
    assert CANARY not in exported
    assert SECRET not in exported
    logs = "\n".join(r.getMessage() for r in caplog.records)
    assert "tool_call_stalled" in logs
    assert CANARY not in logs
    assert SECRET not in logs


def test_capture_off_files_written_by_configure_hold_no_content(
    clean_env: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """With capture off, the OTLP JSON Lines trace and metrics files configure() writes hold none
    of the app's content."""
    caplog.set_level(logging.DEBUG, logger="otelstream")
    telemetry = otelstream.configure(service_name="canary")
    _run(telemetry.tracer_provider, telemetry.meter_provider, OFF)
    assert telemetry.shutdown(timeout=5.0) is True
    assert telemetry.trace_file is not None
    assert telemetry.metrics_file is not None
    traces = telemetry.trace_file.read_text(encoding="utf-8")
    metrics = telemetry.metrics_file.read_text(encoding="utf-8")
    assert "execute_tool probe" in traces
    assert "gen_ai.client.operation.duration" in metrics
    for text in (traces, metrics, "\n".join(r.getMessage() for r in caplog.records)):
        assert CANARY not in text
        assert SECRET not in text


def test_capture_on_never_exports_secrets_and_bounds_every_value() -> None:
    """With capture on, values under secret-looking keys never reach any export, and every
    captured value, the streamed text included, is at most max_content_length characters."""
    exporter, reader = InMemorySpanExporter(), InMemoryMetricReader()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    limit = 24
    options = Options(capture_content=True, max_content_length=limit)
    _run(tracer_provider, MeterProvider(metric_readers=[reader]), options)
    exported = _everything(exporter, reader)
    assert SECRET not in exported
    content_keys = {
        names.GEN_AI_INPUT_MESSAGES,
        names.GEN_AI_OUTPUT_MESSAGES,
        names.GEN_AI_TOOL_CALL_ARGUMENTS,
        names.GEN_AI_TOOL_CALL_RESULT,
        names.OTELSTREAM_CHUNK_TEXT,
        names.OTELSTREAM_CUSTOM_PAYLOAD,
        names.OTELSTREAM_INTERRUPT_VALUE,
    }
    seen: set[str] = set()
    for span in exporter.get_finished_spans():
        bags = [span.attributes or {}, *[e.attributes or {} for e in span.events]]
        for bag in bags:
            for key, value in bag.items():
                if key in content_keys:
                    seen.add(key)
                    assert isinstance(value, str), (key, value)
                    assert len(value) <= limit, (key, value)
    assert content_keys <= seen | {names.OTELSTREAM_CHUNK_TEXT}
    assert CANARY[:10] in exported  # capture really was on


def test_redaction_hook_sees_every_value_before_it_is_recorded() -> None:
    """A redaction hook that removes the canary leaves it in no export, for every kind of
    captured content, and runs before truncation (it sees the whole value)."""
    exporter, reader = InMemorySpanExporter(), InMemoryMetricReader()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    keys: set[str] = set()
    longest = 0

    def redact(key: str, text: str) -> str:
        nonlocal longest
        keys.add(key)
        longest = max(longest, len(text))
        return text.replace(CANARY, "[gone]")

    options = Options(capture_content=True, max_content_length=16, redact=redact)
    _run(tracer_provider, MeterProvider(metric_readers=[reader]), options)
    exported = _everything(exporter, reader)
    assert CANARY not in exported
    assert "[gone]" in exported
    assert longest > 16
    assert {
        names.GEN_AI_INPUT_MESSAGES,
        names.GEN_AI_TOOL_CALL_ARGUMENTS,
        names.GEN_AI_TOOL_CALL_RESULT,
        names.OTELSTREAM_CUSTOM_PAYLOAD,
        names.OTELSTREAM_INTERRUPT_VALUE,
    } <= keys
