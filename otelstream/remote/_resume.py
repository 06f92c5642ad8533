"""Resumed runs on a LangGraph server, seen from outside it: a traced ``RemoteGraph`` and the
sidecar link the run that resumes a thread to the run that paused it.

Where the span context of the run that wrote a checkpoint lives, per observer (every one of them
in the checkpoint's metadata or derived from it, so nothing is kept per thread in memory):

* **in the server** (``opentelemetry-instrument langgraph dev``): ``otelstream.traceparent``,
  written by the in-process checkpointer wrapper (``otelstream.feeds.checkpoints``);
* **a traced RemoteGraph**: ``otelstream.remote.traceparent``, the client's run span, which the
  client sends as run metadata; the server copies a run's metadata into the metadata of every
  checkpoint the run saves. It also reaches the run's callback metadata on the server, so the
  client removes it from the chunks it hands its caller;
* **the sidecar**: nothing written anywhere. The sidecar's run span ids are derived from the
  server's run id (``run_span_ids``), and a checkpoint's metadata names the run that wrote it
  (``run_id``) and that run's caller (``traceparent``, copied from the run's metadata), which is
  all it takes to know the span.

A run span links to every span of the writer it knows of: its own side's first (the reason and
``gen_ai.agent.resumed`` go with it), then the in-server one.
"""

from __future__ import annotations

import contextlib
import hashlib
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from opentelemetry import trace
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.trace import SpanContext, TraceFlags

from otelstream import names
from otelstream.feeds.checkpoints import parse_traceparent, start_reason

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

    from opentelemetry.context import Context
    from opentelemetry.util.types import AttributeValue

    from otelstream.record.run import RunRecorder

__all__ = [
    "RunSpanIds",
    "link_writers",
    "planned_run_span",
    "run_span_ids",
    "start_reason",
    "writers",
]

_SPAN_SALT = b"otelstream.run-span\x00"
_TRACE_SALT = b"otelstream.run-trace\x00"


def writers(
    metadata: Any, *, own: SpanContext | None = None, own_key: str | None = None
) -> list[SpanContext]:
    """The span contexts of the run that wrote a checkpoint with ``metadata``: this side's first
    (``own``, or the traceparent under ``own_key``), then the in-server run span's."""
    found: list[SpanContext] = []
    if not isinstance(metadata, dict):
        metadata = {}
    candidates = [own]
    if own_key is not None:
        candidates.append(parse_traceparent(metadata.get(own_key)))
    candidates.append(parse_traceparent(metadata.get(names.OTELSTREAM_TRACEPARENT)))
    for context in candidates:
        if context is not None and all(
            (c.trace_id, c.span_id) != (context.trace_id, context.span_id) for c in found
        ):
            found.append(context)
    return found


def link_writers(
    recorder: RunRecorder,
    found: list[SpanContext],
    reason: str,
    checkpoint_id: str | None,
    *,
    at_ns: int | None = None,
) -> None:
    """Link the run span to each span of the checkpoint's writer (``writers``); a resume also gets
    ``gen_ai.agent.resumed`` (at ``at_ns``, else now)."""
    recorder.resumed_from(found[0] if found else None, reason, checkpoint_id, at_ns=at_ns)
    attributes: dict[str, AttributeValue] = {names.OTELSTREAM_LINK_REASON: reason}
    if checkpoint_id is not None:
        attributes[names.LANGGRAPH_CHECKPOINT_ID] = checkpoint_id
    for other in found[1:]:
        recorder.span.add_link(other, attributes)


# ---- the sidecar's run span ids --------------------------------------------------------------


def _hash(salt: bytes, run_id: str, size: int) -> int:
    value = int.from_bytes(hashlib.sha256(salt + run_id.encode()).digest()[:size], "big")
    return value or 1  # zero is the invalid id


def run_span_ids(run_id: str, parent: Context | None) -> tuple[int, int]:
    """``(trace id, span id)`` of the sidecar's run span for server run ``run_id``.

    The span id is a hash of the run id; the trace id is the parent's (the run's metadata
    ``traceparent``), else a hash of the run id too.
    """
    parent_context = trace.get_current_span(parent).get_span_context() if parent else None
    if parent_context is not None and parent_context.is_valid:
        trace_id = parent_context.trace_id
    else:
        trace_id = _hash(_TRACE_SALT, run_id, 16)
    return trace_id, _hash(_SPAN_SALT, run_id, 8)


def derived_writer(metadata: Mapping[str, Any], parent: Context | None) -> SpanContext | None:
    """The sidecar's run span of the run that wrote a checkpoint with ``metadata``."""
    run_id = metadata.get("run_id")
    if not isinstance(run_id, str) or not run_id:
        return None
    trace_id, span_id = run_span_ids(run_id, parent)
    sampled = TraceFlags(TraceFlags.SAMPLED)
    return SpanContext(trace_id, span_id, is_remote=True, trace_flags=sampled)


_PLANNED: ContextVar[list[int] | None] = ContextVar("otelstream_planned_run_span", default=None)


class RunSpanIds(IdGenerator):
    """The tracer's id generator, except for a run span started inside ``planned_run_span``."""

    def __init__(self, inner: IdGenerator) -> None:
        self.inner = inner

    def generate_span_id(self) -> int:
        """The planned span id (once), else the wrapped generator's."""
        planned = _PLANNED.get()
        if planned:
            span_id = planned.pop()
            planned.clear()  # used: any later span in the block gets a random id
            return span_id
        return self.inner.generate_span_id()

    def generate_trace_id(self) -> int:
        """The planned trace id, else the wrapped generator's."""
        planned = _PLANNED.get()
        return planned[0] if planned else self.inner.generate_trace_id()

    def is_trace_id_random(self) -> bool:
        """A planned trace id is a hash, not random in W3C's sense."""
        return False if _PLANNED.get() else self.inner.is_trace_id_random()


def derive_run_span_ids(tracer: Any) -> bool:
    """Make ``tracer`` (the SDK's) able to give run spans planned ids; whether it can.

    The SDK shares one tracer per scope and provider, so others may use it too: outside a
    ``planned_run_span`` block the wrapper hands every call to the tracer's own generator. A
    tracer of another SDK (or a no-op) keeps its ids, and the sidecar's resumed runs then link to
    the in-server span only.
    """
    inner = getattr(tracer, "id_generator", None)
    if isinstance(inner, RunSpanIds):
        return True
    if not isinstance(inner, IdGenerator):
        return False
    tracer.id_generator = RunSpanIds(inner)
    return True


@contextlib.contextmanager
def planned_run_span(run_id: str, parent: Context | None) -> Iterator[None]:
    """The one span started in this block (the run span) gets ``run_span_ids(run_id, parent)``."""
    trace_id, span_id = run_span_ids(run_id, parent)
    token = _PLANNED.set([trace_id, span_id])
    try:
        yield
    finally:
        _PLANNED.reset(token)
