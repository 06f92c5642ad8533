"""Every span name, attribute key, event name and metric name otelstream emits.

Names that are GenAI semantic conventions (``gen_ai.*``, ``error.type``) carry no docstring of
their own: their meaning is the convention's. ``langgraph.*`` names are facts LangGraph reports;
``otelstream.*`` names are what otelstream derives. The README's table is generated from the same
list (``tests/test_names.py`` keeps the two in step).
"""

from __future__ import annotations

from typing import Final

# --- span names (formats) ------------------------------------------------------------------
SPAN_INVOKE_AGENT: Final = "invoke_agent {agent}"
SPAN_INVOKE_WORKFLOW: Final = "invoke_workflow {workflow}"
SPAN_CHAT: Final = "chat {model}"
SPAN_EXECUTE_TOOL: Final = "execute_tool {tool}"
SPAN_TASK: Final = "{node}"
"""A LangGraph task (one node execution) is named after its node; there is no GenAI convention."""

# --- GenAI semantic conventions ------------------------------------------------------------
GEN_AI_OPERATION_NAME: Final = "gen_ai.operation.name"
GEN_AI_PROVIDER_NAME: Final = "gen_ai.provider.name"
GEN_AI_AGENT_NAME: Final = "gen_ai.agent.name"
GEN_AI_WORKFLOW_NAME: Final = "gen_ai.workflow.name"
GEN_AI_CONVERSATION_ID: Final = "gen_ai.conversation.id"
GEN_AI_REQUEST_MODEL: Final = "gen_ai.request.model"
GEN_AI_REQUEST_STREAM: Final = "gen_ai.request.stream"
GEN_AI_RESPONSE_MODEL: Final = "gen_ai.response.model"
GEN_AI_RESPONSE_ID: Final = "gen_ai.response.id"
GEN_AI_RESPONSE_FINISH_REASONS: Final = "gen_ai.response.finish_reasons"
GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK: Final = "gen_ai.response.time_to_first_chunk"
GEN_AI_USAGE_INPUT_TOKENS: Final = "gen_ai.usage.input_tokens"
GEN_AI_USAGE_OUTPUT_TOKENS: Final = "gen_ai.usage.output_tokens"
GEN_AI_TOOL_NAME: Final = "gen_ai.tool.name"
GEN_AI_TOOL_CALL_ID: Final = "gen_ai.tool.call.id"
GEN_AI_TOOL_CALL_ARGUMENTS: Final = "gen_ai.tool.call.arguments"
GEN_AI_TOOL_CALL_RESULT: Final = "gen_ai.tool.call.result"
GEN_AI_TOKEN_TYPE: Final = "gen_ai.token.type"
GEN_AI_INPUT_MESSAGES: Final = "gen_ai.input.messages"
GEN_AI_OUTPUT_MESSAGES: Final = "gen_ai.output.messages"
ERROR_TYPE: Final = "error.type"

OP_INVOKE_AGENT: Final = "invoke_agent"
OP_INVOKE_WORKFLOW: Final = "invoke_workflow"
OP_CHAT: Final = "chat"
OP_EXECUTE_TOOL: Final = "execute_tool"
TOKEN_TYPE_INPUT: Final = "input"
TOKEN_TYPE_OUTPUT: Final = "output"

# --- facts from LangGraph ------------------------------------------------------------------
LANGGRAPH_NODE: Final = "langgraph.node"
"""Name of the graph node a task executes."""
LANGGRAPH_TASK_ID: Final = "langgraph.task.id"
"""LangGraph's id of one task (one execution of one node)."""
LANGGRAPH_STEP: Final = "langgraph.step"
"""The superstep the task ran in."""
LANGGRAPH_TRIGGERS: Final = "langgraph.triggers"
"""Channels (or ``branch:…``/``__pregel_push``) that triggered the task."""
LANGGRAPH_CHECKPOINT_NS: Final = "langgraph.checkpoint_ns"
"""The task's checkpoint namespace, ``node:<task id>`` with ``|`` segments inside subgraphs."""
LANGGRAPH_RUN_ID: Final = "langgraph.run.id"
"""Run span: the LangGraph server's id of the run (``configurable.run_id``/``metadata.run_id`` of
the run's config), else the config's own ``run_id``."""
EVENT_CUSTOM: Final = "langgraph.custom"
"""One ``get_stream_writer`` write, on the span of the tool call or task that wrote it, stamped
when it was written."""
EVENT_INTERRUPT: Final = "langgraph.interrupt"
"""The task called ``interrupt()``; the run ends with outcome ``interrupted``."""

# --- durable execution: retries, timeouts (facts from LangGraph) ---------------------------
LANGGRAPH_TASK_ATTEMPTS: Final = "langgraph.task.attempts"
"""Task span: how many times the node ran (LangGraph's ``RetryPolicy`` reruns a failed node);
``1`` unless it was retried. The span is an error only if its last attempt failed."""
LANGGRAPH_TASK_ATTEMPT: Final = "langgraph.task.attempt"
"""On a ``langgraph.retry`` event: the number (from 1) of the attempt that failed."""
EVENT_RETRY: Final = "langgraph.retry"
"""Task span: one attempt failed and LangGraph ran the node again; stamped when the attempt
failed, with ``error.type``, ``exception.message`` and ``langgraph.task.attempt``."""
EXCEPTION_MESSAGE: Final = "exception.message"
LANGGRAPH_TIMEOUT_KIND: Final = "langgraph.timeout.kind"
"""Task span cut off by its ``TimeoutPolicy`` (``NodeTimeoutError``): which limit fired, ``run``
(``run_timeout``) or ``idle`` (``idle_timeout``)."""
LANGGRAPH_TIMEOUT_SECONDS: Final = "langgraph.timeout.seconds"
"""Task span cut off by its ``TimeoutPolicy``: the limit that fired, in seconds."""

# --- durable execution: resumed runs linked (checkpoint metadata) --------------------------
OTELSTREAM_TRACEPARENT: Final = "otelstream.traceparent"
"""Checkpoint metadata key (not a span attribute): the W3C ``traceparent`` of the run span of
the traced run that wrote the checkpoint. A later run that starts from that checkpoint, in any
process, links its run span to it."""
OTELSTREAM_LINK_REASON: Final = "otelstream.link.reason"
"""Link attribute on a run span's link to the run that wrote the checkpoint it started from:
``resume`` (the caller continued the thread: ``Command(resume=...)`` or ``None`` input),
``time_travel`` (the caller named a ``checkpoint_id``) or ``continue`` (a new input on a thread
that has checkpoints)."""
LANGGRAPH_CHECKPOINT_ID: Final = "langgraph.checkpoint.id"
"""On a run span's link and on ``gen_ai.agent.resumed``: the checkpoint the run started from; on
``gen_ai.agent.paused``: the checkpoint the interrupted run saved last."""
EVENT_PAUSED: Final = "gen_ai.agent.paused"
"""Run span: the run ended interrupted and its thread waits for a resume (the name proposed in
semantic-conventions-genai #159 / PR #445, Development); stamped when the run ended."""
EVENT_RESUMED: Final = "gen_ai.agent.resumed"
"""Run span: the run resumes an interrupted thread from a persisted checkpoint (proposed name, as
``gen_ai.agent.paused``); stamped when LangGraph read that checkpoint."""
LINK_REASON_RESUME: Final = "resume"
LINK_REASON_TIME_TRAVEL: Final = "time_travel"
LINK_REASON_CONTINUE: Final = "continue"

# --- derived by otelstream -----------------------------------------------------------------
OTELSTREAM_OUTCOME: Final = "otelstream.outcome"
"""How the run ended: ``completed``, ``error``, ``timeout`` (a node's ``TimeoutPolicy`` cut it off:
``NodeTimeoutError``), ``interrupted``, ``drained`` (stopped between steps through LangGraph's
``RunControl.request_drain``: ``GraphDrained``), ``cancelled``, or ``unknown`` (a remote run the
server forgot before the sidecar could see how it ended). Also an attribute of the run duration
metrics, so dashboards and alerts count runs by outcome."""
OTELSTREAM_TIME_TO_FIRST_TOKEN: Final = "otelstream.time_to_first_token"
"""Seconds from the stream call to the first chunk of LLM text in the whole run (a tool-call-only
answer does not count: the end user sees nothing of it)."""
OTELSTREAM_CHUNK_COUNT_TOTAL: Final = "otelstream.chunks"
"""How many chunks the chat call streamed (all of them, whatever the event budget)."""
OTELSTREAM_CHUNK_GAP_MEAN: Final = "otelstream.chunk.gap.mean"
"""Mean seconds between consecutive chunks of a chat call."""
OTELSTREAM_CHUNK_GAP_MAX: Final = "otelstream.chunk.gap.max"
"""Longest seconds between consecutive chunks of a chat call."""
EVENT_CHUNK: Final = "otelstream.chunk"
"""One window of streamed chunks, stamped at its first chunk."""
OTELSTREAM_CHUNK_INDEX: Final = "otelstream.chunk.index"
"""Index of the first chunk the event covers."""
OTELSTREAM_CHUNK_COUNT: Final = "otelstream.chunk.count"
"""How many consecutive chunks the event covers."""
OTELSTREAM_CHUNK_TEXT: Final = "otelstream.chunk.text"
"""The text of the chunks the event covers; only with content capture."""
OTELSTREAM_CUSTOM_TYPE: Final = "otelstream.custom.type"
"""Python type name of a custom write's payload."""
OTELSTREAM_CUSTOM_SIZE: Final = "otelstream.custom.size"
"""``len()`` of a custom write's payload, where it has one."""
OTELSTREAM_CUSTOM_PAYLOAD: Final = "otelstream.custom.payload"
"""A custom write's payload as bounded JSON; only with content capture."""
OTELSTREAM_CUSTOM_COUNT: Final = "otelstream.custom.count"
"""How many custom writes were attributed to the span."""
OTELSTREAM_CUSTOM_DROPPED: Final = "otelstream.custom.dropped"
"""Custom writes not recorded as events because the span's event budget was spent."""
OTELSTREAM_ATTRIBUTION: Final = "otelstream.custom.attribution"
"""``exact`` when the writer is known; ``ancestor`` when the write sits on the nearest certain
ancestor because parallel tasks or tool calls could have written it."""
OTELSTREAM_INTERRUPT_VALUE: Final = "otelstream.interrupt.value"
"""The interrupt's value as bounded JSON; only with content capture."""

# --- stalled work (watchdog) ---------------------------------------------------------------
SPAN_STALLED: Final = "stalled {span}"
"""A zero-duration marker, child of work still running past its stall threshold, exported at
once so a trace backend shows the stall before the work ends."""
EVENT_STALL: Final = "otelstream.stall"
"""Added to a span whose work crossed its stall threshold, at the moment it was detected."""
OTELSTREAM_WORK_KIND: Final = "otelstream.work.kind"
"""What kind of work is in flight or stalled: ``tool``, ``llm`` or ``task``."""
OTELSTREAM_STALLED: Final = "otelstream.stalled"
"""The work crossed its stall threshold before it ended (``true``)."""
OTELSTREAM_STALL_DURATION: Final = "otelstream.stall.duration"
"""Seconds the work stayed stalled: from crossing its threshold to ending."""
OTELSTREAM_STALL_AGE: Final = "otelstream.stall.age"
"""Seconds since the work started (tool, task) or last streamed (LLM) when the stall was seen."""
OTELSTREAM_STALL_THRESHOLD: Final = "otelstream.stall.threshold"
"""The threshold in seconds that the work crossed."""
LOG_TOOL_CALL_STALLED: Final = "tool_call_stalled"
"""Log event: a tool call runs past ``tool_stall_threshold``."""
LOG_LLM_STREAM_STALLED: Final = "llm_stream_stalled"
"""Log event: an LLM call streamed nothing for ``llm_stall_threshold``."""
LOG_TASK_STALLED: Final = "task_stalled"
"""Log event: a task runs past ``task_stall_threshold``."""
WORK_TOOL: Final = "tool"
WORK_LLM: Final = "llm"
WORK_TASK: Final = "task"

# --- remote runs (LangGraph server) -----------------------------------------------------------
OTELSTREAM_REMOTE_RUN_ID: Final = "otelstream.remote.run_id"
"""Run span: the LangGraph server's run id."""

OTELSTREAM_REMOTE_REPLAYED: Final = "otelstream.remote.replayed"
"""Run span: the sidecar joined a run already under way and replayed its stored events, so the
span times of what happened before it joined are replay times, not the times of the work."""

METRIC_SIDECAR_RUNS: Final = "otelstream.sidecar.runs"
"""Counter: runs the sidecar followed to the end, by ``otelstream.outcome``."""

METRIC_SIDECAR_LAG: Final = "otelstream.sidecar.lag"
"""Histogram (s): from the server publishing a stream event (its event id's timestamp) to the
sidecar recording it."""

METRIC_SIDECAR_RECONNECTS: Final = "otelstream.sidecar.reconnects"
"""Counter: times the sidecar lost the server (or a run's stream) and connected again."""

METRIC_SIDECAR_ACTIVE: Final = "otelstream.sidecar.active_runs"
"""Up-down counter: runs the sidecar follows now."""

METRIC_SIDECAR_UNTRACED: Final = "otelstream.sidecar.runs.untraced"
"""Counter: runs the sidecar learned of but could not trace at all (each also logged), by
``otelstream.sidecar.reason``."""

LOG_SIDECAR_RUN_UNTRACED: Final = "sidecar_run_untraced"
"""Log event (warning): a run the sidecar learned of but could not trace, with its reason."""

OTELSTREAM_SIDECAR_REASON: Final = "otelstream.sidecar.reason"
"""Why the sidecar could not trace a run: ``deleted`` (the run's thread was deleted before the
sidecar could read its runs: a stateless run that ended between two looks)."""

OTELSTREAM_REMOTE_STREAM_MODES: Final = "otelstream.remote.stream_modes"
"""Run span: the stream modes of the events the sidecar received for the run (sorted); a run
created without ``tasks`` or ``messages`` has no live detail, and this says so."""

OTELSTREAM_REMOTE_OUTCOME_INFERRED: Final = "otelstream.remote.outcome_inferred"
"""Run span: the server deleted the run when it ended (a stateless run), so its outcome is read
from its stream, not from the server: it ended without an error event."""

OTELSTREAM_RECONSTRUCTED: Final = "otelstream.reconstructed"
"""Task span rebuilt from the thread's checkpoints after the run (its stream did not carry it):
it starts and ends at the checkpoints before and after its step, so its times are step-level."""

OTELSTREAM_RECONSTRUCTED_SILENT: Final = "otelstream.reconstructed.silent_steps"
"""Run span: steps whose checkpoint names no task although the run went on past them, so the
node that ran there has no reconstructed span (``langgraph-api`` lists none for the step after a
join into a subgraph node)."""

# --- resumed remote runs (RemoteGraph, sidecar) ------------------------------------------------
OTELSTREAM_REMOTE_TRACEPARENT: Final = "otelstream.remote.traceparent"
"""Run metadata key (not a span attribute) a traced ``RemoteGraph`` sends with each run on a
thread: the W3C ``traceparent`` of its run span. The server copies it into the metadata of every
checkpoint the run saves, so a later traced client run that starts from one links to it; the
caller's chunks never show it."""

# --- metrics -------------------------------------------------------------------------------
METRIC_OPERATION_DURATION: Final = "gen_ai.client.operation.duration"
METRIC_TOKEN_USAGE: Final = "gen_ai.client.token.usage"
METRIC_TIME_TO_FIRST_CHUNK: Final = "gen_ai.client.operation.time_to_first_chunk"
METRIC_INVOKE_AGENT_DURATION: Final = "gen_ai.invoke_agent.duration"
METRIC_WORKFLOW_DURATION: Final = "gen_ai.workflow.duration"
METRIC_EXECUTE_TOOL_DURATION: Final = "gen_ai.execute_tool.duration"
METRIC_TIME_PER_OUTPUT_CHUNK: Final = "otelstream.chat.time_per_output_chunk"
"""Seconds between consecutive chunks of one chat call, one point per call (their mean). The
convention's ``gen_ai.client.operation.time_per_output_chunk`` records a point per chunk; one per
call keeps metric calls off the chunk path, where they would cost more than the whole trace."""
METRIC_TASK_DURATION: Final = "otelstream.task.duration"
"""Seconds one LangGraph task (node execution) took, by ``langgraph.node``."""

METRIC_STALLS: Final = "otelstream.stalls"
"""Counter: work items that crossed their stall threshold, once each, by kind and name."""
METRIC_INFLIGHT: Final = "otelstream.inflight"
"""Up-down counter: tool calls, LLM calls and tasks running now, by ``otelstream.work.kind``."""
METRIC_INFLIGHT_OLDEST_AGE: Final = "otelstream.inflight.oldest_age"
"""Gauge: seconds the oldest running work item of each kind and name has run (LLM calls: since
their last chunk); the metric stalled-work alerts fire on."""

OUTCOME_COMPLETED: Final = "completed"
OUTCOME_ERROR: Final = "error"
OUTCOME_INTERRUPTED: Final = "interrupted"
OUTCOME_CANCELLED: Final = "cancelled"
OUTCOME_TIMEOUT: Final = "timeout"
OUTCOME_DRAINED: Final = "drained"
OUTCOME_UNKNOWN: Final = "unknown"
