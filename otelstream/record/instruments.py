"""The metric instruments otelstream records, with the GenAI conventions' bucket advice."""

from __future__ import annotations

from typing import TYPE_CHECKING

from otelstream import names

if TYPE_CHECKING:
    from opentelemetry.metrics import Counter, Histogram, Meter

# GenAI semantic conventions: duration buckets double from 10 ms to 81.92 s.
DURATION_BUCKETS = [0.01 * 2**i for i in range(14)]
# Chunk gaps are far shorter than whole operations: 1 ms to about 8 s.
CHUNK_GAP_BUCKETS = [0.001 * 2**i for i in range(14)]
# GenAI semantic conventions: token buckets 1, 4, 16 … 67108864.
TOKEN_BUCKETS = [4**i for i in range(14)]


class Instruments:
    """Histograms created once per meter and shared by every traced run."""

    def __init__(self, meter: Meter) -> None:
        self.operation_duration: Histogram = meter.create_histogram(
            names.METRIC_OPERATION_DURATION,
            unit="s",
            description="GenAI operation duration.",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )
        self.invoke_agent_duration: Histogram = meter.create_histogram(
            names.METRIC_INVOKE_AGENT_DURATION,
            unit="s",
            description="Duration of one agent run (a create_agent graph).",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )
        self.workflow_duration: Histogram = meter.create_histogram(
            names.METRIC_WORKFLOW_DURATION,
            unit="s",
            description="Duration of one workflow run (any other graph or entrypoint).",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )
        self.execute_tool_duration: Histogram = meter.create_histogram(
            names.METRIC_EXECUTE_TOOL_DURATION,
            unit="s",
            description="Duration of one tool call.",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )
        self.token_usage: Histogram = meter.create_histogram(
            names.METRIC_TOKEN_USAGE,
            unit="{token}",
            description="Number of input and output tokens used.",
            explicit_bucket_boundaries_advisory=TOKEN_BUCKETS,
        )
        self.time_to_first_chunk: Histogram = meter.create_histogram(
            names.METRIC_TIME_TO_FIRST_CHUNK,
            unit="s",
            description="Time from the start of a streamed chat call to its first content chunk.",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )
        self.time_per_output_chunk: Histogram = meter.create_histogram(
            names.METRIC_TIME_PER_OUTPUT_CHUNK,
            unit="s",
            description="Mean time between output chunks of one streamed chat call.",
            explicit_bucket_boundaries_advisory=CHUNK_GAP_BUCKETS,
        )
        self.stalls: Counter = meter.create_counter(
            names.METRIC_STALLS,
            unit="{stall}",
            description="Work items (tool calls, LLM calls, tasks) that crossed their stall "
            "threshold, counted once each when it is crossed.",
        )
        self.task_duration: Histogram = meter.create_histogram(
            names.METRIC_TASK_DURATION,
            unit="s",
            description="Duration of one LangGraph task (one node execution).",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )
