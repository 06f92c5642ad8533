"""Task spans rebuilt from a thread's checkpoints, for runs whose stream did not carry them.

A run created with the server's default stream mode (``values``: ``runs.wait``, ``runs.create``,
crons, webhooks) streams no ``tasks`` events, and a run that ended before the sidecar joined it
streams nothing unless it was resumable. Its thread's history still holds one checkpoint per step
(``threads.get_history``), each with ``created_at``, ``metadata.step`` and the ``tasks`` that step
runs (name, id, error, interrupts). A step's tasks start with its checkpoint and end with the next
one, so each node execution becomes one task span with step-level times, marked
``otelstream.reconstructed = true``. Tasks the stream did show are left out, so no node execution
has two spans. Only the root graph's steps are read: a subgraph's own steps are not.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from opentelemetry import trace
from opentelemetry.trace import SpanKind

from otelstream import names
from otelstream.record.work import error_attributes
from otelstream.remote._discover import parse_time
from otelstream.remote._feed import remote_error

if TYPE_CHECKING:
    from collections.abc import Collection, Sequence

    from opentelemetry.util.types import AttributeValue

    from otelstream.feeds.stream import Tracing
    from otelstream.record.run import RunRecorder

HISTORY_LIMIT = 1000
"""Checkpoints read per run; a run of more steps keeps its first ones untraced."""

_REPR = re.compile(r"^([A-Za-z_][\w.]*)\((.*)\)$", re.DOTALL)


@dataclass(frozen=True)
class Step:
    """One node execution read from the history."""

    node: str
    task_id: str
    step: int | None
    start_ns: int
    end_ns: int | None
    """``None`` for the run's last step: it ended with the run."""
    error: str | None
    interrupted: bool


def _ns(value: Any) -> int | None:
    parsed = parse_time(value)
    return None if parsed is None else int(parsed.timestamp() * 1_000_000) * 1000


def own_checkpoints(checkpoints: Sequence[dict[str, Any]], run_id: str) -> list[dict[str, Any]]:
    """The run's own checkpoints, in step order (the first one's parent is where it started)."""
    own = [
        c
        for c in checkpoints
        if isinstance(c.get("metadata"), dict)
        and str(c["metadata"].get("run_id")) == run_id
        and _ns(c.get("created_at")) is not None
    ]
    own.sort(
        key=lambda c: (_step(c) if _step(c) is not None else -2, _ns(c.get("created_at")) or 0)
    )
    return own


def _nodes(checkpoint: dict[str, Any]) -> list[dict[str, Any]]:
    # __start__ writes the input; no node ran
    return [
        t
        for t in checkpoint.get("tasks") or ()
        if isinstance(t, dict) and t.get("name") and not str(t["name"]).startswith("__")
    ]


def silent_steps(checkpoints: Sequence[dict[str, Any]], run_id: str) -> list[int]:
    """Steps whose checkpoint lists no task although the run went on past them.

    Seen on ``langgraph-api`` 0.16.7: the step after a join (``add_edge(["a", "b"], "c")``)
    that runs a subgraph node lists no task. Which node ran there is not in the history.
    """
    own = own_checkpoints(checkpoints, run_id)
    return [
        step
        for checkpoint in own[:-1]
        if not _nodes(checkpoint) and (step := _step(checkpoint)) is not None and step >= 0
    ]


def steps(checkpoints: Sequence[dict[str, Any]], run_id: str) -> list[Step]:
    """The node executions of run ``run_id``, in step order, from its thread's history."""
    own = own_checkpoints(checkpoints, run_id)
    out: list[Step] = []
    for index, checkpoint in enumerate(own):
        start = _ns(checkpoint.get("created_at"))
        after = own[index + 1] if index + 1 < len(own) else None
        end = _ns(after.get("created_at")) if after is not None else None
        for task in _nodes(checkpoint):
            name = str(task["name"])
            error = task.get("error")
            out.append(
                Step(
                    node=name,
                    task_id=str(task.get("id") or ""),
                    step=_step(checkpoint),
                    start_ns=start or 0,
                    end_ns=end,
                    error=str(error) if error else None,
                    interrupted=bool(task.get("interrupts")),
                )
            )
    return out


def _step(checkpoint: dict[str, Any]) -> int | None:
    step = checkpoint["metadata"].get("step")
    return step if isinstance(step, int) else None


def _error(text: str) -> BaseException:
    """The exception for a history task's error, ``"ValueError('boom')"``, named by its class."""
    match = _REPR.match(text.strip())
    if match is None:
        return remote_error({"error": "RemoteError", "message": text})
    message = match.group(2).strip()
    if len(message) >= 2 and message[0] == message[-1] and message[0] in "'\"":
        message = message[1:-1]
    return remote_error({"error": match.group(1).rpartition(".")[2], "message": message})


def run_error(status: Any, text: str | None = None) -> BaseException | None:
    """The error of a run the server reports failed: its failed step's (``text``) where known,
    else one that says only the status (``RunError``, ``TimeoutError``)."""
    if text:
        return _error(text)
    if status == "error":
        return remote_error({"error": "RunError", "message": "the server reports the run failed"})
    if status == "timeout":
        return remote_error({"error": "TimeoutError", "message": "the run timed out on the server"})
    return None


def record_steps(
    tracing: Tracing,
    recorder: RunRecorder,
    found: Sequence[Step],
    *,
    seen: Collection[str],
    end_ns: int,
) -> int:
    """Open and end one reconstructed task span per step not in ``seen``; how many it made."""
    parent = trace.set_span_in_context(recorder.span)
    made = 0
    for step in found:
        if step.task_id in seen:
            continue
        start = max(step.start_ns, recorder.start_ns)
        end = max(step.end_ns if step.end_ns is not None else end_ns, start)
        attributes: dict[str, AttributeValue] = {
            names.LANGGRAPH_NODE: step.node,
            names.LANGGRAPH_TASK_ID: step.task_id,
            names.LANGGRAPH_CHECKPOINT_NS: f"{step.node}:{step.task_id}",
            names.OTELSTREAM_RECONSTRUCTED: True,
        }
        if step.step is not None:
            attributes[names.LANGGRAPH_STEP] = step.step
        span = tracing.tracer.start_span(
            names.SPAN_TASK.format(node=step.node),
            context=parent,
            kind=SpanKind.INTERNAL,
            attributes=attributes,
            start_time=start,
        )
        metric: dict[str, AttributeValue] = {
            names.LANGGRAPH_NODE: step.node,
            names.OTELSTREAM_RECONSTRUCTED: True,
        }
        if step.error is not None:
            metric[names.ERROR_TYPE] = error_attributes(span, _error(step.error))
        if step.interrupted:
            recorder.interrupted = True
            span.add_event(names.EVENT_INTERRUPT, {}, timestamp=start)
        span.end(end_time=end)
        tracing.instruments.task_duration.record(
            (end - start) / 1e9, metric, context=trace.set_span_in_context(span)
        )
        made += 1
    return made
