"""The SDK floor: what recording otelstream's telemetry of a run costs the OpenTelemetry SDK alone.

A traced run is recorded once, into memory. Its spans (names, parents, attributes, events, times)
and the metric points otelstream records for them become a script, which ``replay`` plays into a
fresh tracer and meter: ``start_span`` with every attribute at once, ``add_event`` for each event,
``end``, and one ``Histogram.record`` per point with its span's context, the least any tracer can
ask of the SDK to hand it exactly this telemetry. No LangGraph, no callbacks, no tracer logic.

The benchmark's ``sdk-floor`` row is (bare run + replay) / bare run: the ratio that a tracer with
zero cost of its own would reach while recording what otelstream records.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import otelstream
from otelstream import names
from otelstream.record.instruments import Instruments

if TYPE_CHECKING:
    from collections.abc import Callable

    from opentelemetry.metrics import Meter
    from opentelemetry.sdk.trace import ReadableSpan
    from opentelemetry.trace import Tracer


@dataclass
class SpanStep:
    """One span to replay: where it hangs, what it carries, and the metric points it yields."""

    span_id: int
    parent_id: int | None
    name: str
    kind: trace.SpanKind
    start: int
    end: int
    attributes: dict[str, Any]
    events: list[tuple[str, dict[str, Any], int]]
    points: list[tuple[str, float, dict[str, Any]]] = field(default_factory=list)


def _points(span: ReadableSpan) -> list[tuple[str, float, dict[str, Any]]]:
    """The metric points otelstream records for ``span``: (instrument attribute, value, attrs)."""
    attributes = dict(span.attributes or {})
    seconds = ((span.end_time or 0) - (span.start_time or 0)) / 1e9
    operation = attributes.get(names.GEN_AI_OPERATION_NAME)
    if operation == names.OP_CHAT:
        base = {
            key: attributes[key]
            for key in (
                names.GEN_AI_OPERATION_NAME,
                names.GEN_AI_REQUEST_MODEL,
                names.GEN_AI_PROVIDER_NAME,
            )
            if key in attributes
        }
        points = []
        ttft = attributes.get(names.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK)
        if isinstance(ttft, float):
            points.append(("time_to_first_chunk", ttft, base))
        gap = attributes.get(names.OTELSTREAM_CHUNK_GAP_MEAN)
        if (
            isinstance(gap, float)
            and int(attributes.get(names.OTELSTREAM_CHUNK_COUNT_TOTAL, 0)) > 1
        ):
            points.append(("time_per_output_chunk", gap, base))
        for key, token_type in (
            (names.GEN_AI_USAGE_INPUT_TOKENS, names.TOKEN_TYPE_INPUT),
            (names.GEN_AI_USAGE_OUTPUT_TOKENS, names.TOKEN_TYPE_OUTPUT),
        ):
            value = attributes.get(key)
            if isinstance(value, int):
                points.append(("token_usage", value, {**base, names.GEN_AI_TOKEN_TYPE: token_type}))
        points.append(("operation_duration", seconds, base))
        return points
    # Runs and tool calls each have their operation's own histogram.
    for op, instrument, name_key in (
        (names.OP_EXECUTE_TOOL, "execute_tool_duration", names.GEN_AI_TOOL_NAME),
        (names.OP_INVOKE_AGENT, "invoke_agent_duration", names.GEN_AI_AGENT_NAME),
        (names.OP_INVOKE_WORKFLOW, "workflow_duration", names.GEN_AI_WORKFLOW_NAME),
    ):
        if operation == op:
            # A run's outcome is an attribute of its duration histogram.
            keep = (names.GEN_AI_OPERATION_NAME, name_key, names.OTELSTREAM_OUTCOME)
            return [(instrument, seconds, {k: attributes[k] for k in keep if k in attributes})]
    if names.LANGGRAPH_NODE in attributes:
        node = attributes[names.LANGGRAPH_NODE]
        return [("task_duration", seconds, {names.LANGGRAPH_NODE: node})]
    return []


def record_script(run: Callable[[Any], None], graph: Any) -> list[SpanStep]:
    """Trace one run of ``graph`` with ``run(traced_graph)``; its telemetry as a replay script."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    run(otelstream.instrument(graph, tracer_provider=provider))
    provider.shutdown()
    steps = []
    for span in sorted(exporter.get_finished_spans(), key=lambda s: s.start_time or 0):
        context = span.get_span_context()
        steps.append(
            SpanStep(
                span_id=context.span_id if context is not None else 0,
                parent_id=span.parent.span_id if span.parent is not None else None,
                name=span.name,
                kind=span.kind,
                start=span.start_time or 0,
                end=span.end_time or 0,
                attributes=dict(span.attributes or {}),
                events=[(e.name, dict(e.attributes or {}), e.timestamp) for e in span.events],
                points=_points(span),
            )
        )
    return steps


class Replay:
    """Plays a script into a tracer and meter, as cheaply as the SDK allows."""

    def __init__(self, tracer: Tracer, meter: Meter) -> None:
        self._tracer = tracer
        self._instruments = Instruments(meter)

    def play(self, script: list[SpanStep]) -> None:
        contexts: dict[int, Any] = {}
        open_spans = []
        tracer = self._tracer
        for step in script:  # in start order: a parent starts before its children
            parent = contexts.get(step.parent_id) if step.parent_id is not None else None
            span = tracer.start_span(
                step.name,
                context=parent,
                kind=step.kind,
                attributes=step.attributes,
                start_time=step.start,
            )
            for name, attributes, timestamp in step.events:
                span.add_event(name, attributes, timestamp=timestamp)
            contexts[step.span_id] = trace.set_span_in_context(span)
            open_spans.append((step, span))
        for step, span in sorted(open_spans, key=lambda pair: pair[0].end):
            span.end(end_time=step.end)
            context = contexts[step.span_id]
            for instrument, value, attributes in step.points:
                getattr(self._instruments, instrument).record(value, attributes, context=context)
