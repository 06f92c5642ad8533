"""The remote record layer: a LangGraph server's stream events fed into a ``RunRecorder``.

A remote run offers no callbacks, only what the server streams. This module turns those events
into the recorder's callback calls, with the metadata dicts and run ids LangChain would have
passed, so the span model is the in-process one:

* ``tasks`` start/end events open and end task spans (``task_started``/``task_ended``, then the
  recorder's own ``stream_task``);
* ``messages`` chunks that carry a model's ``ls_*`` metadata are chat calls: a chat starts at the
  latest of its task's start and the end of the task's previous chat or tool call (the server
  reports no model-call start), every chunk is a chunk event, the chunk marked ``last`` (or the
  task's end) ends it;
* tool calls are read from the model's ``AIMessage``: a task of a tool node (``tools``, or a
  ``Send`` carrying one ``tool_call``) starts one tool span per pending call; a ``ToolMessage``
  with that call id ends it (``status="error"`` as an error), the task's end ends the rest (with
  the task's error or interrupt);
* ``custom`` writes and interrupts go to the recorder as they do in process.

Times are when this process received each event. Pure state machine: no I/O, no threads.
"""

from __future__ import annotations

import functools
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from langgraph.errors import GraphInterrupt

from otelstream.record.run import NS_SEP, RunRecorder

if TYPE_CHECKING:
    from collections.abc import Sequence

TOOL_NODES = frozenset({"tools"})
"""Nodes whose tasks run the pending tool calls of the last ``AIMessage`` in their input (the
name ``ToolNode`` and ``create_agent`` use)."""

_INTERRUPT = "__interrupt__"
_UUID_NS = uuid.UUID("5b6f1d0e-55f3-4d3c-9a44-2f8c1e6c0d7a")


class RemoteError(Exception):
    """An error the server reported; subclasses carry the remote exception's class name."""


@functools.lru_cache(maxsize=128)
def _error_class(type_name: str) -> type[RemoteError]:
    # Named after the remote class, so ``error.type`` reads the same as in process.
    safe = type_name if type_name.isidentifier() else "RemoteError"
    return type(safe, (RemoteError,), {"__module__": __name__, "__qualname__": safe})


def remote_error(payload: Any) -> RemoteError:
    """The exception for a server error payload (``{"error": type, "message": text}``)."""
    if isinstance(payload, dict):
        return _error_class(str(payload.get("error") or "RemoteError"))(
            str(payload.get("message", ""))
        )
    return RemoteError(str(payload))


def _id(*parts: str) -> uuid.UUID:
    return uuid.uuid5(_UUID_NS, "\x00".join(parts))


@dataclass
class _Message:
    """What ``RunRecorder`` reads from a chat's final message, gathered from its chunks."""

    id: str | None = None
    response_metadata: dict[str, Any] = field(default_factory=dict)
    usage_metadata: dict[str, Any] | None = None


@dataclass
class _ChunkView:
    """The ``chunk.message.tool_call_chunks`` shape a chat of ``RunRecorder.chats`` reads."""

    message: Any


@dataclass
class _ToolCallChunks:
    tool_call_chunks: Any


@dataclass
class _OpenChat:
    run_id: uuid.UUID
    task_key: str | None
    message: _Message


def _field(message: Any, key: str) -> Any:
    if isinstance(message, dict):
        return message.get(key)
    return getattr(message, key, None)


def _pending_calls(node: str, payload: Any) -> list[dict[str, Any]]:
    """The tool calls a task of node ``node`` with input ``payload`` runs."""
    if isinstance(payload, dict) and isinstance(payload.get("tool_call"), dict):
        return [payload["tool_call"]]  # create_agent: one Send per call
    if node not in TOOL_NODES:
        return []
    messages: Any = payload.get("messages") if isinstance(payload, dict) else payload
    if not isinstance(messages, list):
        return []
    answered = {_field(m, "tool_call_id") for m in messages if _field(m, "type") == "tool"}
    for message in reversed(messages):
        if _field(message, "type") in ("ai", "AIMessageChunk"):
            calls = _field(message, "tool_calls") or []
            return [c for c in calls if isinstance(c, dict) and c.get("id") not in answered]
    return []


class RemoteFeed:
    """Feeds one run's server events, in stream order, to a ``RunRecorder``."""

    def __init__(self, recorder: RunRecorder) -> None:
        self.recorder = recorder
        # Open work only: entries leave when it ends, so these stay as small as the work in flight.
        self._last_ns: dict[str, int] = {}  # task key -> start, or end of its last chat/tool
        self._chats: dict[str, _OpenChat] = {}  # message id -> open chat
        self._task_chat: dict[str | None, str] = {}  # task key -> open chat's message id
        self._tools: dict[str, tuple[uuid.UUID, str]] = {}  # call id -> (run id, task key)
        self._task_tools: dict[str, list[str]] = {}  # task key -> open call ids

    # ---- dispatch --------------------------------------------------------------------------

    def event(self, ns: Sequence[str], mode: str, data: Any) -> None:
        """One stream event: ``mode`` as the server names it, ``ns`` its namespace."""
        ns = tuple(ns)
        if mode == "tasks":
            self._task(ns, data)
        elif mode == "messages":
            self._message(data)
        elif mode == "custom":
            self.recorder.custom(ns, data)
        elif mode in ("updates", "values") and isinstance(data, dict):
            if not ns and data.get(_INTERRUPT):
                self.recorder.interrupted = True
            if mode == "updates":
                self._updates(data)

    # ---- tasks -----------------------------------------------------------------------------

    def _task(self, ns: tuple[str, ...], payload: Any) -> None:
        if not isinstance(payload, dict):
            return
        name = str(payload.get("name"))
        key = NS_SEP.join((*ns, f"{name}:{payload.get('id')}"))
        recorder = self.recorder
        if "triggers" in payload:
            recorder.stream_task(ns, payload)
            triggers = payload.get("triggers")
            metadata: dict[str, Any] = {
                "langgraph_checkpoint_ns": key,
                "langgraph_node": name,
                "langgraph_triggers": list(triggers) if isinstance(triggers, list) else [],
            }
            recorder.task_started(_id("task", key), metadata)
            self._last_ns[key] = time.time_ns()
            for call in _pending_calls(name, payload.get("input")):
                call_id = str(call.get("id") or "")
                if not call_id or call_id in self._tools:
                    continue
                run_id = _id("tool", key, call_id)
                recorder.tool_started(
                    run_id,
                    {"langgraph_checkpoint_ns": key},
                    str(call.get("name") or "unknown"),
                    call_id,
                    call.get("args"),
                )
                # What a ToolMark says in process: the call is open, so a custom write from its
                # task lands on it.
                recorder.tool_call_opened(call_id)
                self._tools[call_id] = (run_id, key)
                self._task_tools.setdefault(key, []).append(call_id)
            return
        error: BaseException | None = None
        if payload.get("error"):
            error = remote_error(payload["error"])
        elif payload.get("interrupts"):
            error = GraphInterrupt(payload["interrupts"])
        self._end_chat_of(key)
        for call_id in self._task_tools.pop(key, []):
            entry = self._tools.pop(call_id, None)
            if entry is not None:
                recorder.tool_call_closed(call_id)
                recorder.tool_ended(entry[0], None, error)
        recorder.task_ended(_id("task", key), error)
        recorder.stream_task(ns, payload)
        self._last_ns.pop(key, None)

    # ---- chat calls and tool messages ------------------------------------------------------

    def _message(self, data: Any) -> None:
        if not isinstance(data, (list, tuple)) or len(data) != 2:
            return
        message, metadata = data
        if not isinstance(metadata, dict):
            return
        kind = _field(message, "type")
        if kind == "tool":
            self._tool_message(message)
            return
        model = metadata.get("ls_model_name")
        if kind not in ("ai", "AIMessageChunk") or not isinstance(model, str):
            return  # a node's own output, not a model call
        message_id = str(_field(message, "id") or "")
        task_key = RunRecorder.task_key(metadata)
        chat = self._chats.get(message_id)
        recorder = self.recorder
        if chat is None:
            if task_key is not None:
                self._end_chat_of(task_key)  # a task's calls run one after another
            now = time.time_ns()
            start = self._last_ns.get(task_key, now) if task_key is not None else now
            run_id = _id("chat", message_id or str(uuid.uuid4()))
            provider = metadata.get("ls_provider")
            recorder.chat_started(
                run_id,
                None,
                metadata,
                model,
                provider if isinstance(provider, str) else None,
                None,  # the server reports no model input
                start_ns=start,
            )
            chat = _OpenChat(run_id, task_key, _Message(id=message_id or None))
            self._chats[message_id] = chat
            self._task_chat[task_key] = message_id
        live = recorder.chats.get(chat.run_id)
        if live is not None:
            content = _field(message, "content")
            calls = _field(message, "tool_call_chunks") or _field(message, "tool_calls")
            live.receive(
                content if isinstance(content, str) else str(content or ""),
                _ChunkView(_ToolCallChunks(calls)),
            )
        response_metadata = _field(message, "response_metadata")
        if isinstance(response_metadata, dict):
            chat.message.response_metadata.update(response_metadata)
        usage = _field(message, "usage_metadata")
        if isinstance(usage, dict):
            chat.message.usage_metadata = usage
        if kind == "ai" or _field(message, "chunk_position") == "last":
            self._end_chat(message_id)

    def _end_chat_of(self, task_key: str | None) -> None:
        message_id = self._task_chat.get(task_key)
        if message_id is not None:
            self._end_chat(message_id)

    def _end_chat(self, message_id: str) -> None:
        chat = self._chats.pop(message_id, None)
        if chat is None:
            return
        if self._task_chat.get(chat.task_key) == message_id:
            del self._task_chat[chat.task_key]
        self.recorder.chat_ended(chat.run_id, chat.message, None)
        if chat.task_key is not None and chat.task_key in self._last_ns:
            self._last_ns[chat.task_key] = time.time_ns()

    def _tool_message(self, message: Any) -> None:
        call_id = _field(message, "tool_call_id")
        entry = self._tools.pop(call_id, None) if isinstance(call_id, str) else None
        if entry is None:
            return
        run_id, task_key = entry
        calls = self._task_tools.get(task_key)
        if calls is not None and call_id in calls:
            calls.remove(call_id)
        error = None
        if _field(message, "status") == "error":
            error = remote_error({"error": "ToolError", "message": _field(message, "content")})
        self.recorder.tool_call_closed(call_id)
        self.recorder.tool_ended(run_id, message, error)
        if task_key in self._last_ns:
            self._last_ns[task_key] = time.time_ns()

    def _updates(self, data: dict[str, Any]) -> None:
        # Without `messages`, a tool node's update is where its ToolMessages show.
        for update in data.values():
            messages = update.get("messages") if isinstance(update, dict) else None
            if isinstance(messages, list):
                for message in messages:
                    if _field(message, "type") == "tool":
                        self._tool_message(message)

    # ---- the end ---------------------------------------------------------------------------

    def finish(
        self, outcome: str, error: BaseException | None, *, end_ns: int | None = None
    ) -> None:
        """End the run (now, or at ``end_ns``); chats still open end with it (the recorder ends
        the rest)."""
        for message_id in list(self._chats):
            self._end_chat(message_id)
        self.recorder.finish(outcome, error, end_ns=end_ns)
