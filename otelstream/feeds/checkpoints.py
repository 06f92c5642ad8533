"""Resumed runs linked across processes: the run span's ``traceparent`` in checkpoint metadata.

A run that resumes a thread (``Command(resume=...)`` after an ``interrupt()``, ``None`` input
after a static interrupt), travels back to an older checkpoint, or continues a thread, may run in
another process hours later: a LangGraph server worker, the sidecar, a human approving. The one
thing every such process shares is the thread's checkpoints, so that is where the span context
travels. No tracing state is kept per thread in memory.

* **Write.** The traced call's ``configurable`` gets ``__pregel_checkpointer`` = a
  ``TracedSaver`` around the checkpointer LangGraph would use (the one the config lends, else the
  graph's own). LangGraph takes that key before the graph's own saver (``Pregel.
  _resolve_checkpointer``) and lends it to every subgraph (``pregel/_algo.py``), and keys that
  start with ``__`` are copied neither into checkpoint metadata nor into callback metadata. Its
  ``put``/``aput`` add ``otelstream.traceparent`` (the run span's W3C ``traceparent``) to a copy
  of the metadata of every checkpoint the run saves; the loop's own metadata dict, which the
  ``checkpoints`` and ``debug`` stream modes show the caller, is left as it is.
* **Read.** LangGraph itself reads the checkpoint a run starts from (``get_tuple``/
  ``aget_tuple`` in the loop's ``__enter__``), with its metadata. The saver's first read is that
  one: if its metadata names a run span, the run span links to it. Reading costs no I/O of our
  own; the link is added right after the span started (``Span.add_link``), so a sampler does not
  see it. What the saver reads inside a run (``get_tuple``, ``list``) reaches LangGraph without
  the key: LangGraph shows the caller the starting checkpoint's metadata again on a resume.
* **Why.** ``time_travel`` when the caller names a ``checkpoint_id`` (a ``Command(resume=...)``
  at a named checkpoint is still a resume), ``resume`` when the input is ``None`` or a
  ``Command`` (LangGraph's own rule for resuming, ``pregel/_loop.py``), else ``continue`` (a new
  input on a thread that has history). A resume also gets ``gen_ai.agent.resumed`` on its run
  span; an interrupted run gets ``gen_ai.agent.paused`` naming the checkpoint it saved last.

Every other method of the saver is the wrapped saver's own bound method, so LangGraph's hot
paths (``put_writes``, ``get_next_version``) call the wrapped saver directly; so is a clone
LangGraph makes in strict msgpack mode (``with_allowlist``). A graph without a
checkpointer (or with ``checkpointer=False``) is not touched, nor is a call LangGraph will reject
for want of a ``configurable``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.types import Command
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from otelstream import _internal, names

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Collection, Iterator, Mapping

    from langchain_core.runnables import RunnableConfig
    from langgraph.checkpoint.base import (
        ChannelVersions,
        Checkpoint,
        CheckpointMetadata,
        CheckpointTuple,
    )
    from opentelemetry.trace import SpanContext

    from otelstream.record.run import RunRecorder

__all__ = [
    "TracedSaver",
    "parse_traceparent",
    "start_reason",
    "trace_checkpoints",
    "traceparent",
]

# langgraph._internal._constants.CONFIG_KEY_CHECKPOINTER
_CHECKPOINTER_KEY = "__pregel_checkpointer"
_CHECKPOINT_ID = "checkpoint_id"
_CHECKPOINT_NS = "checkpoint_ns"
_TRACEPARENT_KEY = "traceparent"
_W3C = TraceContextTextMapPropagator()
_OWN = frozenset(
    {
        "put",
        "aput",
        "get_tuple",
        "aget_tuple",
        "list",
        "alist",
        "with_allowlist",
        "config_specs",
    }
)
_DELEGATED = tuple(
    name
    for name in dir(BaseCheckpointSaver)
    if not name.startswith("_") and name not in _OWN and name != "serde"
)
"""The saver methods a ``TracedSaver`` hands straight to the wrapped saver (bound per instance,
so a call costs no extra frame)."""


def traceparent(context: SpanContext) -> str:
    """The W3C ``traceparent`` of a span context, as OpenTelemetry's propagator writes it."""
    carrier: dict[str, str] = {}
    _W3C.inject(carrier, trace.set_span_in_context(NonRecordingSpan(context)))
    return carrier.get(_TRACEPARENT_KEY, "")


def parse_traceparent(value: Any) -> SpanContext | None:
    """The remote span context a ``traceparent`` names; ``None`` for anything else."""
    if not isinstance(value, str):
        return None
    context = trace.get_current_span(_W3C.extract({_TRACEPARENT_KEY: value})).get_span_context()
    return context if context.is_valid else None


class RunCheckpoints:
    """One traced run's side of its checkpoints: what it writes, and what it starts from."""

    __slots__ = ("reason", "recorder", "started", "traceparent")

    def __init__(self, recorder: RunRecorder, reason: str) -> None:
        self.recorder = recorder
        self.reason = reason
        self.traceparent = traceparent(recorder.span.get_span_context())
        self.started = False

    def read(self, saved: CheckpointTuple | None) -> None:
        """LangGraph read a checkpoint; its first read is the one the run starts from."""
        if self.started:
            return
        self.started = True
        if saved is None:  # a new thread
            return
        try:
            writer = parse_traceparent((saved.metadata or {}).get(names.OTELSTREAM_TRACEPARENT))
            if writer is None and self.reason != names.LINK_REASON_RESUME:
                return
            checkpoint_id = saved.config.get("configurable", {}).get(_CHECKPOINT_ID)
            if not isinstance(checkpoint_id, str):
                checkpoint_id = saved.checkpoint.get("id")
            self.recorder.resumed_from(writer, self.reason, checkpoint_id)
        except Exception:
            _internal.internal_error("checkpoints.read")

    def metadata(self, config: RunnableConfig, checkpoint: Checkpoint, metadata: Any) -> Any:
        """The metadata to save with ``checkpoint``: a copy with the run span's traceparent."""
        try:
            if not (config.get("configurable") or {}).get(_CHECKPOINT_NS):
                # The run's own checkpoint (not a subgraph's): the last one is where it paused.
                self.recorder.saved_checkpoint_id = checkpoint["id"]
            return {**metadata, names.OTELSTREAM_TRACEPARENT: self.traceparent}
        except Exception:
            _internal.internal_error("checkpoints.metadata")
            return metadata


class TracedSaver(BaseCheckpointSaver):  # type: ignore[type-arg]
    """The checkpointer of one traced run: the wrapped saver, with ``otelstream.traceparent`` in
    the metadata it saves, reporting the checkpoint the run starts from.

    Lives as long as the run's config; holds one run's state, never a thread's.
    """

    def __init__(self, inner: BaseCheckpointSaver, run: RunCheckpoints) -> None:  # type: ignore[type-arg]
        # BaseCheckpointSaver.__init__ is not called: the serializer is the wrapped saver's.
        self.inner = inner
        self.run = run
        self.serde = inner.serde
        for name in _DELEGATED:
            setattr(self, name, getattr(inner, name))

    def __getattr__(self, name: str) -> Any:
        # Attributes of the saver itself (``conn``, ``storage``...): the wrapped saver's. Never
        # ``inner`` itself or a special name: ``copy.copy`` probes those on a bare instance.
        if name == "inner" or name.startswith("__"):
            raise AttributeError(name)
        return getattr(self.inner, name)

    @property
    def config_specs(self) -> list[Any]:
        """The wrapped saver's."""
        specs: list[Any] = self.inner.config_specs
        return specs

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """The wrapped saver's; the run's first read is the checkpoint it starts from."""
        saved = self.inner.get_tuple(config)
        self.run.read(saved)
        unmarked: CheckpointTuple | None = _unmarked(saved)
        return unmarked

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """The wrapped saver's; the run's first read is the checkpoint it starts from."""
        saved = await self.inner.aget_tuple(config)
        self.run.read(saved)
        unmarked: CheckpointTuple | None = _unmarked(saved)
        return unmarked

    def list(self, config: RunnableConfig | None, **kwargs: Any) -> Iterator[CheckpointTuple]:
        """The wrapped saver's (LangGraph lists checkpoints to replay a subgraph)."""
        for saved in self.inner.list(config, **kwargs):
            yield _unmarked(saved)

    async def alist(
        self, config: RunnableConfig | None, **kwargs: Any
    ) -> AsyncIterator[CheckpointTuple]:
        """The wrapped saver's (LangGraph lists checkpoints to replay a subgraph)."""
        async for saved in self.inner.alist(config, **kwargs):
            yield _unmarked(saved)

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """The wrapped saver's, with the run span's traceparent in the saved metadata."""
        saved = self.run.metadata(config, checkpoint, metadata)
        return self.inner.put(config, checkpoint, saved, new_versions)

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """The wrapped saver's, with the run span's traceparent in the saved metadata."""
        saved = self.run.metadata(config, checkpoint, metadata)
        return await self.inner.aput(config, checkpoint, saved, new_versions)

    def with_allowlist(self, extra_allowlist: Collection[tuple[str, ...]]) -> BaseCheckpointSaver:  # type: ignore[type-arg]
        """The wrapped saver's clone (LangGraph's strict msgpack mode), traced the same way."""
        inner = self.inner.with_allowlist(extra_allowlist)
        return self if inner is self.inner else TracedSaver(inner, self.run)


def _unmarked(saved: CheckpointTuple | None) -> Any:
    """The checkpoint as LangGraph would have read it bare: without our metadata key.

    LangGraph shows the caller the metadata of the checkpoint a run starts from (the
    ``checkpoints`` and ``debug`` stream modes emit it again on a resume); read inside a traced
    run, it must be the bare graph's. ``get_state``/``get_state_history`` still show the key.
    """
    if saved is None or names.OTELSTREAM_TRACEPARENT not in (saved.metadata or {}):
        return saved
    metadata: Any = {k: v for k, v in saved.metadata.items() if k != names.OTELSTREAM_TRACEPARENT}
    return saved._replace(metadata=metadata)


def _saver(graph: Any, configurable: Mapping[str, Any]) -> BaseCheckpointSaver | None:  # type: ignore[type-arg]
    """The checkpointer LangGraph will use for the run (``Pregel._resolve_checkpointer``)."""
    own = getattr(graph, "checkpointer", None)
    if own is False:
        return None
    saver = configurable.get(_CHECKPOINTER_KEY, own)
    if not isinstance(saver, BaseCheckpointSaver) or isinstance(saver, TracedSaver):
        return None
    return saver


def start_reason(*, has_input: bool, command: Any, checkpoint_id: Any) -> str:
    """Why a run on a thread starts from an existing checkpoint, LangGraph's rule (the module
    docstring), for every observer of the run: ``time_travel`` when the caller named a checkpoint (a
    resume value at a named checkpoint is still a resume), ``resume`` for no input or a
    ``Command``, else ``continue``.

    Args:
        has_input: The run has an input (not ``None``).
        command: The run's command as the server keeps it (a dict), or ``None``.
        checkpoint_id: The checkpoint the caller named, if any.
    """
    resumes = isinstance(command, dict) and command.get("resume") is not None
    if checkpoint_id and not resumes:
        return names.LINK_REASON_TIME_TRAVEL
    if not has_input or command is not None:
        return names.LINK_REASON_RESUME
    return names.LINK_REASON_CONTINUE


def _reason(graph_input: Any, configurable: Mapping[str, Any]) -> str:
    """Why the run starts from an existing checkpoint, if it does."""
    command = graph_input if isinstance(graph_input, Command) else None
    return start_reason(
        has_input=graph_input is not None,
        command=None if command is None else {"resume": command.resume},
        checkpoint_id=configurable.get(_CHECKPOINT_ID),
    )


def trace_checkpoints(
    configurable: dict[str, Any],
    graph: Any,
    graph_input: Any,
    effective_config: Mapping[str, Any],
    recorder: RunRecorder,
) -> None:
    """Lend the run a ``TracedSaver`` in a traced call's ``configurable``; nothing when the run
    saves no checkpoints (or its span cannot be named: a no-op tracer).

    Call only when the run may carry a ``configurable`` (``Plan.taps_writes``).

    Args:
        configurable: The ``configurable`` otelstream passes to the graph (a copy it owns).
        graph: The graph being run.
        graph_input: The run's input (``None`` and ``Command`` continue the thread).
        effective_config: The config LangGraph will see (context variable merged), read-only.
        recorder: The run's recorder.
    """
    seen: Mapping[str, Any] = effective_config.get("configurable") or {}
    saver = _saver(graph, seen)
    if saver is None or not recorder.span.get_span_context().is_valid:
        return
    run = RunCheckpoints(recorder, _reason(graph_input, seen))
    configurable[_CHECKPOINTER_KEY] = TracedSaver(saver, run)
