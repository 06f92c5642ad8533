"""A traced agent run with no API key and no server: the span tree, printed.

A ``create_agent`` agent with a fake streaming chat model calls a weather tool and a tool that
reports progress through ``get_stream_writer``, then streams its answer. otelstream records the
run into an in-memory exporter and this script prints the trace as a tree.
"""

from __future__ import annotations

from langchain.agents import create_agent
from langchain_core.messages import AIMessage
from langchain_core.tools import tool
from langgraph.config import get_stream_writer
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import otelstream
from otelstream.testing import FakeStreamingChatModel, tool_calls


@tool
def get_weather(city: str) -> str:
    """Get the weather for a city."""
    return f"It's always sunny in {city}!"


@tool
def fetch_records(table: str) -> str:
    """Fetch the records of a table, reporting progress."""
    writer = get_stream_writer()
    for done in (10, 50, 100):
        writer(f"Fetched {done}/100 records")
    return f"100 records from {table}"


def build_agent() -> object:
    model = FakeStreamingChatModel(
        model_name="demo-model",
        first_chunk_delay=0.12,
        chunk_delay=0.01,
        responses=[
            tool_calls(
                ("get_weather", {"city": "Lisbon"}, "call_weather"),
                ("fetch_records", {"table": "bookings"}, "call_records"),
            ),
            AIMessage(
                content="Lisbon is sunny today, and all 100 bookings are loaded. "
                "Pack sunglasses and enjoy the trip!"
            ),
        ],
    )
    return create_agent(model, tools=[get_weather, fetch_records], name="travel_agent")


def print_tree(spans: list[ReadableSpan]) -> None:
    by_parent: dict[int | None, list[ReadableSpan]] = {}
    ids = {s.context.span_id for s in spans}
    for span in sorted(spans, key=lambda s: s.start_time or 0):
        parent = span.parent.span_id if span.parent and span.parent.span_id in ids else None
        by_parent.setdefault(parent, []).append(span)
    origin = min(s.start_time or 0 for s in spans)

    def show(span: ReadableSpan, depth: int) -> None:
        start = ((span.start_time or 0) - origin) / 1e6
        took = ((span.end_time or 0) - (span.start_time or 0)) / 1e6
        attrs = span.attributes or {}
        notes = []
        for key, label in (
            ("otelstream.time_to_first_token", "run TTFT"),
            ("gen_ai.response.time_to_first_chunk", "TTFT"),
        ):
            if key in attrs:
                notes.append(f"{label} {float(attrs[key]) * 1000:.0f} ms")  # type: ignore[arg-type]
        if "otelstream.chunks" in attrs:
            notes.append(f"{attrs['otelstream.chunks']} chunks")
        if "otelstream.outcome" in attrs:
            notes.append(str(attrs["otelstream.outcome"]))
        customs = [e for e in span.events if e.name == "langgraph.custom"]
        if customs:
            notes.append(f"{len(customs)} custom writes")
        line = f"{'  ' * depth}{span.name:<{40 - 2 * depth}} +{start:7.1f} ms {took:7.1f} ms"
        print(f"{line}  {', '.join(notes)}")
        for child in by_parent.get(span.context.span_id, []):
            show(child, depth + 1)

    for root in by_parent.get(None, []):
        show(root, 0)


def main() -> None:
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    agent = otelstream.instrument(
        build_agent(), tracer_provider=tracer_provider, meter_provider=meter_provider
    )
    question = {"messages": [{"role": "user", "content": "Weather in Lisbon, and my bookings?"}]}
    print("Streaming the agent (stream_mode=['updates', 'custom']):")
    for mode, chunk in agent.stream(question, stream_mode=["updates", "custom"]):
        if mode == "custom":
            print(f"  custom  {chunk}")
        else:
            print(f"  updates {', '.join(chunk)}")
    print("\nThe trace otelstream recorded:")
    print_tree(list(exporter.get_finished_spans()))


if __name__ == "__main__":
    main()
