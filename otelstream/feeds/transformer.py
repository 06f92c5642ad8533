"""The v3 feed: a LangGraph ``StreamTransformer`` that records ``stream_events(version="v3")``.

``otelstream.transformer()`` returns a factory LangGraph accepts wherever it takes stream
transformers: ``StateGraph.compile(transformers=[...])``,
``graph.copy(update={"stream_transformers": [...]})`` and
``stream_events(..., version="v3", transformers=[...])`` (or ``astream_events``).

A transformer cannot touch the run's config (LangGraph calls ``factory(scope)`` before the run
starts), so this feed builds the run from protocol events only, the way the remote feed does from
a server's stream (``remote._feed.RemoteFeed``, which ``TransformerFeed`` extends):

* ``tasks`` events open and end task spans; a subgraph's tasks nest under the task running it.
* ``messages`` events are the v2 message-event protocol (``message-start``, ``content-block-*``,
  ``message-finish`` with usage). A chat span starts at the latest of its task's start and the end
  of the task's previous chat or tool call (the protocol reports no model-call start; the first
  event comes with the first chunk), every content-block delta (and the start of a tool-call
  block) is a chunk, the first text or tool-call chunk gives the TTFT, ``message-finish`` ends it.
* ``tools`` events (``tool-started`` / ``tool-finished`` / ``tool-error``, keyed by
  ``tool_call_id``) give each tool call exact start and end times and tell the recorder which
  calls are open, in stream order.
* ``custom`` writes go on the task or tool call that certainly made them: the only task open in
  their namespace, and within it the only tool call open. With several candidates (parallel
  writers) the write goes on the nearest certain ancestor with ``otelstream.attribution =
  ancestor``. Only the proxy and the instrumentor, which see each write's config at write time,
  attribute parallel writers exactly; a transformer sees nothing but the stream.

Every event is timed when ``process()`` sees it (``params.timestamp`` is wall milliseconds only).
The events the caller iterates stay the bare graph's: this transformer never changes an event,
and it hides from the main log only the events of modes that it alone asked for (``custom``,
``tools`` and ``updates`` when no other transformer wants them), which the bare run would not
have had.

Only the transformer of the run's root mux records. ``SubgraphTransformer`` builds a mini-mux per
subgraph, calling every factory again with the subgraph's scope, and forwards that subgraph's
events into it after the root mux's transformers have seen them: those instances stay passive, so
each event is recorded once. A run otelstream already traces (``instrument(graph)`` or the
instrumentor wraps the ``stream_events`` call in ``suppress()``) is not traced twice.

The run ends exactly once: ``finalize()`` (``completed``, or ``interrupted``), ``fail(err)``
(``error``; ``cancelled`` for cancellation), ``abort()`` / leaving ``with run:`` early
(``cancelled``), or, for a run stream the caller stops iterating and drops, when it is garbage
collected (``cancelled``). Telling an abort from a normal finish, and finding the graph's name,
reads two LangGraph internals (``GraphRunStream._graph_iter``, the ``self`` of
``Pregel._pregel_stream_v3``); ``tests/test_v3_transformer.py`` fails loudly if they change.
"""

from __future__ import annotations

import sys
import threading
import time
import uuid
import weakref
from typing import TYPE_CHECKING, Any

from langchain_core.messages import AIMessage, BaseMessage
from langgraph.errors import GraphInterrupt
from langgraph.stream._types import StreamTransformer
from opentelemetry import context as otel_context

from otelstream import _internal, names
from otelstream.feeds.once import suppress, suppressed
from otelstream.feeds.request import run_name
from otelstream.feeds.stream import Tracing, failed_outcome
from otelstream.record.run import NS_SEP, RunRecorder
from otelstream.remote._feed import (
    RemoteFeed,
    _ChunkView,
    _id,
    _Message,
    _OpenChat,
    _pending_calls,
    _ToolCallChunks,
    remote_error,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from langgraph.stream._types import ProtocolEvent
    from opentelemetry.context import Context
    from opentelemetry.metrics import MeterProvider
    from opentelemetry.trace import TracerProvider

    from otelstream.options import Options

__all__ = ["OtelStreamTransformer", "TransformerFactory", "suppress", "transformer"]

_MODES = ("tasks", "messages", "custom", "tools", "updates")
"""What the feed reads. ``messages`` and ``tasks`` are on in every v3 run (LangGraph's own
transformers need them), so asking for more does not change how LangGraph schedules the run: a
v3 run already waits on its stream. ``updates`` is read for one thing: a static interrupt
(``interrupt_before``/``after``) shows only there, as a root ``__interrupt__`` update."""

_INTERRUPT = "__interrupt__"
_TOOL_CALL_BLOCKS = frozenset({"tool_call_chunk", "tool_call", "server_tool_call_chunk"})
_STREAM_ENTRY = frozenset({"_pregel_stream_v3", "_apregel_stream_v3"})
_FRAME_DEPTH = 8

# ---- the feed ----------------------------------------------------------------------------------


class TransformerFeed(RemoteFeed):
    """Feeds one v3 run's protocol events, in stream order, to a ``RunRecorder``."""

    def __init__(self, recorder: RunRecorder, *, capture: bool = False) -> None:
        super().__init__(recorder)
        # With content capture, each open chat's finished content blocks, to build the final
        # message the recorder captures as the chat's output.
        self._blocks: dict[str, list[dict[str, Any]]] | None = {} if capture else None
        # Open work only, as in RemoteFeed: entries leave when the work ends.
        self._open_by_ns: dict[tuple[str, ...], list[str]] = {}  # namespace -> open task keys
        self._pending: dict[str, str] = {}  # tool call id -> key of the task that will run it
        self._v3_chats: dict[str, _OpenChat] = {}  # chat run id -> open chat
        self._tool_starts: dict[str, int] = {}  # open tool call id -> its start

    def event(self, ns: Sequence[str], mode: str, data: Any) -> None:
        """One protocol event: ``mode`` is its ``method``, ``ns`` its namespace."""
        ns = tuple(ns)
        if mode == "tasks":
            self._v3_task(ns, data)
        elif mode == "messages":
            self._v3_message(data)
        elif mode == "tools":
            self._tool_event(ns, data)
        elif mode == "custom":
            self.recorder.custom(ns, data)
        elif mode == "updates" and not ns and isinstance(data, dict) and _INTERRUPT in data:
            self.recorder.interrupted = True

    # ---- tasks -----------------------------------------------------------------------------

    def _v3_task(self, ns: tuple[str, ...], payload: Any) -> None:
        if not isinstance(payload, dict):
            return
        name = str(payload.get("name"))
        key = NS_SEP.join((*ns, f"{name}:{payload.get('id')}"))
        if "triggers" in payload:
            self._open_by_ns.setdefault(ns, []).append(key)
            for call in _pending_calls(name, payload.get("input")):
                call_id = call.get("id")
                if isinstance(call_id, str) and call_id:
                    self._pending[call_id] = key
            # The tool spans open on their ``tools`` events, not at the task's start: the
            # input is left out so RemoteFeed does not open them itself.
            super()._task(ns, {k: v for k, v in payload.items() if k != "input"})
            return
        self._end_task(ns, key, payload)

    def _end_task(self, ns: tuple[str, ...], key: str, payload: dict[str, Any]) -> None:
        open_keys = self._open_by_ns.get(ns)
        if open_keys is not None and key in open_keys:
            open_keys.remove(key)
            if not open_keys:
                del self._open_by_ns[ns]
        for call_id in [c for c, k in self._pending.items() if k == key]:
            del self._pending[call_id]
        raw = payload.get("error")
        error: BaseException | None = None
        if isinstance(raw, BaseException):
            error = raw  # in process, the task's exception itself
        elif raw:
            error = remote_error(raw)
        elif payload.get("interrupts"):
            error = GraphInterrupt(payload["interrupts"])
        for run_id, chat in list(self._v3_chats.items()):
            if chat.task_key == key:  # a chat still open when its task raised failed with it
                self._end_v3_chat(run_id, error)
        recorder = self.recorder
        for call_id in self._task_tools.pop(key, []):
            self._tool_starts.pop(call_id, None)
            entry = self._tools.pop(call_id, None)
            if entry is not None:
                recorder.tool_call_closed(call_id)
                recorder.tool_ended(entry[0], None, error)
        self._end_chat_of(key)
        recorder.task_ended(_id("task", key), error)
        recorder.stream_task(ns, payload)
        self._last_ns.pop(key, None)

    # ---- tool calls ------------------------------------------------------------------------

    def _tool_event(self, ns: tuple[str, ...], data: Any) -> None:
        if not isinstance(data, dict):
            return
        kind = data.get("event")
        call_id = data.get("tool_call_id")
        if not isinstance(call_id, str):
            return
        if kind == "tool-started":
            self._start_tool(ns, call_id, data)
        elif kind == "tool-finished":
            output = data.get("output")
            error = None
            if isinstance(output, BaseMessage) and getattr(output, "status", None) == "error":
                error = remote_error({"error": "ToolError", "message": output.content})
            self._end_tool(call_id, output, error)
        elif kind == "tool-error":
            message = data.get("message", "")
            self._end_tool(call_id, None, remote_error({"error": "ToolError", "message": message}))
        elif kind == "tool-output-delta":  # the tool's progress, for idle stalls
            self.recorder.tool_output_delta(call_id)

    def _start_tool(self, ns: tuple[str, ...], call_id: str, data: dict[str, Any]) -> None:
        if call_id in self._tools:
            return
        key = self._pending.pop(call_id, None)
        if key is None:
            # Not a call the task's input named: the only task open in its namespace ran it,
            # else the task running that namespace (a subgraph), else the run.
            open_keys = self._open_by_ns.get(ns)
            if open_keys is not None and len(open_keys) == 1:
                key = open_keys[0]
            elif ns:
                key = NS_SEP.join(ns)
        metadata = {"langgraph_checkpoint_ns": key} if key is not None else None
        run_id = _id("tool", key or "", call_id)
        recorder = self.recorder
        recorder.tool_started(
            run_id,
            metadata,
            str(data.get("tool_name") or "unknown"),
            call_id,
            data.get("input"),
        )
        recorder.tool_call_opened(call_id)
        self._tool_starts[call_id] = time.time_ns()
        self._tools[call_id] = (run_id, key or "")
        self._task_tools.setdefault(key or "", []).append(call_id)

    def _end_tool(self, call_id: str, output: Any, error: BaseException | None) -> None:
        entry = self._tools.pop(call_id, None)
        self._tool_starts.pop(call_id, None)
        if entry is None:
            return
        run_id, key = entry
        calls = self._task_tools.get(key)
        if calls is not None and call_id in calls:
            calls.remove(call_id)
            if not calls:
                del self._task_tools[key]
        self.recorder.tool_call_closed(call_id)
        self.recorder.tool_ended(run_id, output, error)
        if key in self._last_ns:
            self._last_ns[key] = time.time_ns()

    # ---- chat calls ------------------------------------------------------------------------

    def _v3_message(self, data: Any) -> None:
        if not isinstance(data, (list, tuple)) or len(data) != 2:
            return
        payload, metadata = data
        if not isinstance(metadata, dict):
            return
        if not isinstance(payload, dict):
            # A whole message: a model that did not stream (RemoteFeed starts and ends its chat
            # at once), or a node's output, which carries no ``ls_*`` metadata and is ignored.
            self._message(data)
            return
        kind = payload.get("event")
        run_key = str(metadata.get("run_id") or "")
        if kind == "message-start":
            if payload.get("role") in (None, "ai"):
                self._start_v3_chat(run_key, payload, metadata)
            return
        chat = self._v3_chats.get(run_key)
        if chat is None:
            return
        if kind == "content-block-delta":
            delta = payload.get("delta")
            if isinstance(delta, dict):
                if delta.get("type") == "tool-call-delta":
                    self._chunk(chat, "", [delta])
                else:
                    text = delta.get("text") if delta.get("type") == "text-delta" else None
                    self._chunk(chat, text if isinstance(text, str) else "", None)
        elif kind == "content-block-finish":
            content = payload.get("content")
            if self._blocks is not None and isinstance(content, dict):
                self._blocks.setdefault(run_key, []).append(content)
        elif kind == "content-block-start":
            content = payload.get("content")
            if isinstance(content, dict) and content.get("type") in _TOOL_CALL_BLOCKS:
                self._chunk(chat, "", [content])  # the call's id and name: its first chunk
        elif kind == "message-finish":
            usage = payload.get("usage")
            if isinstance(usage, dict):
                chat.message.usage_metadata = usage
            response = payload.get("metadata")
            if isinstance(response, dict):
                chat.message.response_metadata.update(response)
            self._end_v3_chat(run_key, None)
        elif kind == "error":
            error = remote_error({"error": payload.get("code") or "ModelError", **payload})
            self._end_v3_chat(run_key, error)

    def _start_v3_chat(self, run_key: str, start: dict[str, Any], metadata: dict[str, Any]) -> None:
        if run_key in self._v3_chats:
            return
        hints: dict[str, Any] = start.get("metadata") or {}
        if not isinstance(hints, dict):
            hints = {}
        model = metadata.get("ls_model_name") or hints.get("model_name") or hints.get("model")
        provider = metadata.get("ls_provider") or hints.get("model_provider")
        task_key = RunRecorder.task_key(metadata)
        now = time.time_ns()
        started = self._last_ns.get(task_key, now) if task_key is not None else now
        # A model called while exactly one tool call of its task is open is that tool's (an
        # agent as a tool, say): the chat nests under it and starts no earlier.
        tool_run: uuid.UUID | None = None
        calls = self._task_tools.get(task_key or "")
        if calls is not None and len(calls) == 1:
            tool_run = self._tools[calls[0]][0]
            started = max(started, self._tool_starts.get(calls[0], started))
        run_id = _id("v3-chat", run_key) if run_key else uuid.uuid4()
        message_id = start.get("id")
        self.recorder.chat_started(
            run_id,
            tool_run,
            metadata,
            str(model or "unknown"),
            provider if isinstance(provider, str) else None,
            None,  # the protocol reports no model input
            start_ns=min(started, now),
        )
        self._v3_chats[run_key] = _OpenChat(
            run_id, task_key, _Message(id=message_id if isinstance(message_id, str) else None)
        )

    def _chunk(self, chat: _OpenChat, text: str, tool_calls: list[Any] | None) -> None:
        live = self.recorder.chats.get(chat.run_id)
        if live is not None:
            live.receive(text, _ChunkView(_ToolCallChunks(tool_calls)))

    def _end_v3_chat(self, run_key: str, error: BaseException | None) -> None:
        chat = self._v3_chats.pop(run_key, None)
        if chat is None:
            return
        message: Any = chat.message
        if self._blocks is not None:
            message = _final_message(message, self._blocks.pop(run_key, []))
        self.recorder.chat_ended(chat.run_id, message, error)
        if chat.task_key is not None and chat.task_key in self._last_ns:
            self._last_ns[chat.task_key] = time.time_ns()

    # ---- the end ---------------------------------------------------------------------------

    def finish(
        self, outcome: str, error: BaseException | None, *, end_ns: int | None = None
    ) -> None:
        """End the run; chats still open end with it (the recorder ends the rest)."""
        for run_key in list(self._v3_chats):
            self._end_v3_chat(run_key, None)
        super().finish(outcome, error, end_ns=end_ns)


def _final_message(message: _Message, blocks: list[dict[str, Any]]) -> Any:
    """The chat's answer as an ``AIMessage`` built from its finished blocks, for capture."""
    text = "".join(str(b.get("text", "")) for b in blocks if b.get("type") == "text")
    calls = [
        {"name": b.get("name") or "", "args": b.get("args") or {}, "id": b.get("id")}
        for b in blocks
        if b.get("type") == "tool_call"
    ]
    try:
        return AIMessage(
            content=text,
            tool_calls=calls,
            id=message.id,
            response_metadata=message.response_metadata,
            usage_metadata=message.usage_metadata,
        )
    except ValueError:  # pydantic's ValidationError: a provider's odd usage or call shape
        return message


# ---- one run -----------------------------------------------------------------------------------


class _Run:
    """One v3 run's recording, ended exactly once. Holds no reference to its transformer, so
    a run stream dropped mid-run can be collected and its run ended (``abandon``)."""

    def __init__(
        self,
        tracing: Tracing,
        name: tuple[str, bool],
        conversation_id: str | None,
        parent: Context,
    ) -> None:
        self._tracing = tracing
        self._name, self._agent = name
        self._conversation_id = conversation_id
        self._parent = parent
        self._lock = threading.Lock()
        self.feed: TransformerFeed | None = None
        self.ended = False

    def start(self) -> TransformerFeed:
        """The run's feed; the run span opens on the first call."""
        feed = self.feed
        if feed is None:
            tracing = self._tracing
            try:
                recorder = RunRecorder(
                    tracing.tracer,
                    tracing.instruments,
                    tracing.options,
                    name=self._name,
                    agent=self._agent,
                    conversation_id=self._conversation_id,
                    parent=self._parent,
                    sees_nested=True,
                    reads_tasks=True,
                )
            except Exception:
                # A tracer that cannot start the run span: give the run up, rather than fail
                # (and report the failure) again on every event.
                self.ended = True
                raise
            tracing.watchdog.watch(recorder)
            feed = self.feed = TransformerFeed(recorder, capture=tracing.options.capture_content)
        return feed

    def end(self, outcome: str, error: BaseException | None, *, start: bool = True) -> None:
        """End the run (once); ``start=False`` ends it only if it has begun."""
        with self._lock:
            if self.ended or (self.feed is None and not start):
                return
            self.ended = True
        feed = self.start()
        try:
            feed.finish(outcome, error)
        finally:
            self._tracing.watchdog.forget(feed.recorder)

    def abandon(self) -> None:
        """The run stream was collected before the run ended: the caller walked away."""
        try:
            self.end(names.OUTCOME_CANCELLED, None, start=False)
        except Exception:
            # Runs inside the garbage collector, where a raised error is only printed.
            if _internal.is_strict():
                _internal.record_thread_error()
            else:
                _internal.internal_error("abandon")


# ---- the transformer ---------------------------------------------------------------------------


class OtelStreamTransformer(StreamTransformer):
    """Records one v3 run as the otelstream span model; see the module docstring.

    Built by ``TransformerFactory``; an instance of a subgraph's mini-mux, or one created inside
    ``suppress()``, is passive: it records nothing and passes every event through.
    """

    required_stream_modes = _MODES

    def __init__(self, scope: tuple[str, ...], run: _Run | None) -> None:
        super().__init__(scope)
        self._run = run  # None: passive
        self._mux: Any = None
        self._root: bool | None = None
        self._own_modes: frozenset[str] | None = None
        self._scope_list = list(scope)
        self._abandoned: weakref.finalize[Any, Any] | None = None

    def init(self) -> dict[str, Any]:
        """No projection: this transformer only observes."""
        return {}

    def _on_register(self, mux: Any) -> None:
        self._mux = mux
        # The root mux numbers events; SubgraphTransformer's mini-muxes do not.
        self._root = bool(getattr(mux, "_assign_seq", not self.scope))
        others = getattr(mux, "_transformers", ())
        if any(
            isinstance(t, OtelStreamTransformer) and t is not self and t._run is not None
            for t in others
        ):
            self._run = None  # registered twice (compile time and per call): one records
        run = self._run
        if run is not None and self._root:
            self._watch(run)

    def _watch(self, run: _Run) -> None:
        # Ends the run if this transformer is collected first: the caller dropped a run stream
        # it had stopped iterating, and LangGraph calls neither finalize nor fail.
        self._abandoned = weakref.finalize(self, run.abandon)

    def _forget(self) -> None:
        abandoned = self._abandoned
        if abandoned is not None:
            abandoned.detach()

    def _recording(self) -> _Run | None:
        if self._root is None:  # never registered (a LangGraph change): trust the scope
            self._root = not self.scope
            if self._run is not None and self._root:
                self._watch(self._run)
        return self._run if self._root else None

    def _keep(self, method: str) -> bool:
        own = self._own_modes
        if own is None:
            others: set[str] = set()
            for t in getattr(self._mux, "_transformers", ()):
                if t is not self:
                    others.update(getattr(t, "required_stream_modes", ()))
            # Without a mux to ask, nothing is hidden.
            own = frozenset(_MODES) - others if self._mux is not None else frozenset()
            self._own_modes = own
        return method not in own

    def process(self, event: ProtocolEvent) -> bool:
        """Record the event (root instance only); keep it unless only otelstream asked for it."""
        method = event["method"]
        run = self._recording()
        if run is not None and not run.ended:
            try:
                params = event["params"]
                if method == "values":
                    if params.get("interrupts") and params["namespace"] == self._scope_list:
                        run.start().recorder.interrupted = True
                else:
                    run.start().event(params["namespace"], method, params["data"])
            except Exception:
                _internal.internal_error("transformer.process")
        return self._keep(method)

    def finalize(self) -> None:
        """The run ended normally, or was aborted (``abort()``, leaving ``with run:`` early)."""
        run = self._recording()
        if run is None:
            return
        try:
            outcome = names.OUTCOME_CANCELLED if self._aborted() else names.OUTCOME_COMPLETED
            run.end(outcome, None)
        except Exception:
            _internal.internal_error("transformer.finalize")
        self._forget()

    def fail(self, err: BaseException) -> None:
        """The run raised ``err``; the caller gets it from LangGraph unchanged."""
        run = self._recording()
        if run is None:
            return
        try:
            if isinstance(err, GeneratorExit):
                run.end(names.OUTCOME_CANCELLED, None)
            else:
                run.end(*failed_outcome(err))
        except Exception:
            _internal.internal_error("transformer.fail")
        self._forget()

    def _aborted(self) -> bool:
        # GraphRunStream.abort() drops its graph iterator before closing the mux; a run that
        # finished keeps it. The run stream is the owner of the pump bound on the mux.
        pump = getattr(self._mux, "_pump_fn", None) or getattr(self._mux, "_apump_fn", None)
        state = getattr(getattr(pump, "__self__", None), "__dict__", {})
        key = "_graph_iter" if "_graph_iter" in state else "_graph_aiter"
        return key in state and state[key] is None


class TransformerFactory:
    """What ``otelstream.transformer()`` returns: LangGraph calls it as ``factory(scope)``."""

    def __init__(
        self,
        tracer_provider: TracerProvider | None,
        meter_provider: MeterProvider | None,
        options: Options | None,
    ) -> None:
        self._tracing = Tracing(tracer_provider, meter_provider, options)

    def __call__(self, scope: tuple[str, ...]) -> OtelStreamTransformer:
        """A transformer for the mux of ``scope``; passive inside ``suppress()``."""
        if suppressed():
            return OtelStreamTransformer(scope, None)
        run: _Run | None = None
        try:
            graph, config = _stream_call(sys._getframe(1))
            config = {**(getattr(graph, "config", None) or {}), **(config or {})}
            configurable = config.get("configurable") or {}
            thread_id = configurable.get("thread_id") if isinstance(configurable, dict) else None
            run = _Run(
                self._tracing,
                run_name(graph, config),
                str(thread_id) if thread_id is not None else None,
                otel_context.get_current(),
            )
        except Exception:
            _internal.internal_error("transformer.create")
        return OtelStreamTransformer(scope, run)

    def __repr__(self) -> str:
        return "otelstream.transformer()"


def _stream_call(frame: Any) -> tuple[Any, Any]:
    """The graph and config of the ``stream_events(version="v3")`` call building this mux.

    The factory runs inside ``Pregel._pregel_stream_v3`` (a few frames up, through
    ``StreamMux.__init__``), whose ``self`` is the graph: the only place its name is known.
    """
    for _ in range(_FRAME_DEPTH):
        if frame is None:
            break
        if frame.f_code.co_name in _STREAM_ENTRY:
            local = frame.f_locals
            return local.get("self"), local.get("config")
        frame = frame.f_back
    return None, None


def transformer(
    *,
    tracer_provider: TracerProvider | None = None,
    meter_provider: MeterProvider | None = None,
    options: Options | None = None,
) -> TransformerFactory:
    """A stream-transformer factory that traces every ``stream_events(version="v3")`` run.

    >>> graph = builder.compile(transformers=[otelstream.transformer()])
    >>> run = graph.stream_events(inputs, version="v3")  # traced; events unchanged

    Args:
        tracer_provider: Where spans go (default: the global provider).
        meter_provider: Where metric points go (default: the global provider).
        options: What to record (default: ``Options()``).

    Returns:
        A factory for ``StateGraph.compile(transformers=[...])``,
        ``graph.copy(update={"stream_transformers": [...]})`` or
        ``stream_events(..., version="v3", transformers=[...])``.
    """
    return TransformerFactory(tracer_provider, meter_provider, options)
