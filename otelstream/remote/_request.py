"""The normalize layer for a ``RemoteGraph``: what the caller asked for, what otelstream asks
the server for instead, and how each internal chunk becomes the caller's chunk again.

otelstream adds ``tasks``, ``messages`` (sent as ``messages-tuple``) and ``custom`` to the
caller's modes (``updates`` ``RemoteGraph`` always adds itself) and, where it cannot change what
the caller receives, ``subgraphs=True``. The caller's shape is re-applied with the rules of
``RemoteGraph.stream`` itself (``langgraph/pregel/remote.py``): a string mode yields bare data, a
list yields the SDK's ``StreamPart`` (``subgraphs`` adds the namespace, ``(ns, mode, data)``),
``version="v2"`` yields part dicts, unchanged.

A run on a thread also carries the client's run span (``otelstream.remote.traceparent``) in its
run metadata, so the checkpoints it saves name it; the server hands that key back in the callback
metadata of ``messages``, ``tasks``, ``events`` and ``debug`` chunks, and ``reshape`` takes it out
again. A resume (``None`` input or a ``Command``) also asks for ``checkpoints``: the server's first
one is the checkpoint the run resumes from, with its metadata (``_resume``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from langgraph.types import Command
from langgraph_sdk.schema import StreamPart

from otelstream import names
from otelstream.feeds.request import SKIP, bind_call
from otelstream.remote._resume import start_reason

__all__ = ["SKIP", "RemotePlan", "plan"]
"""``RemotePlan.reshape``'s answer for an internal chunk the caller did not ask for."""

_TRACED_MODES = ("tasks", "custom", "updates")


@dataclass(frozen=True, slots=True)
class RemotePlan:
    """One traced ``RemoteGraph.stream`` call: the caller's request and the internal one.

    Attributes:
        input: The graph input, passed through.
        config: The caller's config, passed through.
        kwargs: Every other keyword, with the internal ``stream_mode``/``subgraphs``.
        requested: The caller's modes as ``RemoteGraph`` filters them.
        single: Whether the caller asked for one mode as a string (bare data).
        user_subgraphs: The caller's ``subgraphs``.
        v2: Whether the caller asked for ``version="v2"``.
        sees_nested: Whether the server is asked for subgraph events.
        reason: For a run on a thread: why it starts from the thread's checkpoint (``resume``,
            ``time_travel``, ``continue``); ``None`` for a stateless run.
        checkpoint_id: The checkpoint the caller named, if any.
        marked: Whether the run's metadata carries the client's run span (set by ``marking``).
    """

    input: Any
    config: Any
    kwargs: dict[str, Any]
    requested: tuple[str, ...]
    single: bool
    user_subgraphs: bool
    v2: bool
    sees_nested: bool
    reason: str | None = None
    checkpoint_id: str | None = None
    marked: bool = False

    @property
    def conversation_id(self) -> str | None:
        """The run's ``thread_id``, if the config has one."""
        configurable = (self.config or {}).get("configurable") or {}
        thread_id = configurable.get("thread_id")
        return None if thread_id is None else str(thread_id)

    @property
    def agent_name(self) -> str:
        """``run_name`` from the config, if any."""
        name = (self.config or {}).get("run_name")
        return name if isinstance(name, str) else ""

    def marking(self, traceparent: str) -> RemotePlan:
        """This plan, with ``traceparent`` (the client's run span) in the run's metadata."""
        metadata = self.kwargs.get("metadata")
        merged = {**metadata} if isinstance(metadata, dict) else {}
        merged[names.OTELSTREAM_REMOTE_TRACEPARENT] = traceparent
        return replace(self, kwargs={**self.kwargs, "metadata": merged}, marked=True)

    def split(self, item: Any) -> tuple[tuple[str, ...], str, Any]:
        """An internal chunk as ``(namespace, mode, data)``."""
        if self.v2:
            return tuple(item["ns"]), item["type"], item["data"]
        if isinstance(item, StreamPart):
            return (), item.event, item.data
        ns, mode, data = item
        return tuple(ns), mode, data

    def reshape(self, item: Any, ns: tuple[str, ...], mode: str, data: Any) -> Any:
        """The chunk the bare ``RemoteGraph`` would have yielded for ``item``, or ``SKIP``."""
        if mode not in self.requested:
            return SKIP
        if ns and not self.user_subgraphs and mode != "messages":
            return SKIP
        if self.marked:
            clean = _unmarked(mode, data)
            if clean is not data:
                data = clean
                if self.v2:
                    item = {**item, "data": data}
                elif isinstance(item, StreamPart):
                    item = item._replace(data=data)
        if self.v2:
            return item
        if self.user_subgraphs:
            return (ns, data) if self.single else (ns, mode, data)
        if self.single:
            return data
        return item if isinstance(item, StreamPart) else StreamPart(mode, data)


def _without_mark(metadata: Any) -> Any:
    if isinstance(metadata, dict) and names.OTELSTREAM_REMOTE_TRACEPARENT in metadata:
        return {k: v for k, v in metadata.items() if k != names.OTELSTREAM_REMOTE_TRACEPARENT}
    return metadata


def _unmarked(mode: str, data: Any) -> Any:
    """``data`` without the client's run span key, which the caller did not send; ``data``
    itself when it has none."""
    if mode == "messages" and isinstance(data, (list, tuple)) and len(data) == 2:
        metadata = _without_mark(data[1])
        if metadata is data[1]:
            return data
        return (data[0], metadata) if isinstance(data, tuple) else [data[0], metadata]
    if not isinstance(data, dict):
        return data
    if mode == "debug" and isinstance(data.get("payload"), dict):
        payload = _unmarked("tasks", data["payload"])
        return data if payload is data["payload"] else {**data, "payload": payload}
    metadata = _without_mark(data.get("metadata"))
    return data if metadata is data.get("metadata") else {**data, "metadata": metadata}


def _thread_run(graph_input: Any, config: Any) -> tuple[str | None, str | None]:
    """``(reason, checkpoint_id)`` of a run on a thread; ``(None, None)`` for a stateless one."""
    configurable = (config or {}).get("configurable") or {}
    if configurable.get("thread_id") is None:
        return None, None
    checkpoint_id = configurable.get("checkpoint_id")
    checkpoint_id = checkpoint_id if isinstance(checkpoint_id, str) and checkpoint_id else None
    command = graph_input if isinstance(graph_input, Command) else None
    reason = start_reason(
        has_input=graph_input is not None,
        command=None if command is None else {"resume": command.resume},
        checkpoint_id=checkpoint_id,
    )
    return reason, checkpoint_id


def _modes(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)) and all(isinstance(m, str) for m in value):
        return list(value)
    return []


def plan(args: tuple[Any, ...], kwargs: dict[str, Any], *, trace_chunks: bool) -> RemotePlan | None:
    """The internal request for ``RemoteGraph.stream(*args, **kwargs)``.

    Returns ``None`` when the call is to go to ``RemoteGraph`` exactly as given (arguments it
    would reject, or a mode or version otelstream does not know).
    """
    bound = bind_call(args, kwargs)
    if bound is None:
        return None
    graph_input, config, rest = bound
    version = rest.pop("version", "v1")
    if version not in ("v1", "v2"):
        return None
    mode = rest.pop("stream_mode", None)
    if mode and not _modes(mode):
        return None
    single = not mode or isinstance(mode, str)
    user_modes = _modes(mode) if mode else ["updates"]
    requested = tuple("messages" if m == "messages-tuple" else m for m in user_modes)
    user_subgraphs = bool(rest.pop("subgraphs", False))
    extra = list(_TRACED_MODES)
    if trace_chunks and "messages" not in requested:
        extra.append("messages")
    reason, checkpoint_id = _thread_run(graph_input, config)
    if reason == names.LINK_REASON_RESUME:
        extra.append("checkpoints")  # the first names the checkpoint the run resumes from
    internal = list(dict.fromkeys([*user_modes, *extra]))
    # Subgraph events change what the caller receives in two cases, so otelstream asks for them
    # only outside those: `messages` without subgraphs (the server deduplicates a subgraph
    # node's messages against the inner ones), and a v1 list of modes without subgraphs
    # (``RemoteGraph`` yields the SDK's own StreamPart, event id included, only then).
    sees_nested = user_subgraphs or ("messages" not in requested and (single or version == "v2"))
    rest["stream_mode"] = internal
    rest["subgraphs"] = sees_nested
    rest["version"] = version
    return RemotePlan(
        input=graph_input,
        config=config,
        kwargs=rest,
        requested=requested,
        single=single,
        user_subgraphs=user_subgraphs,
        v2=version == "v2",
        sees_nested=sees_nested,
        reason=reason,
        checkpoint_id=checkpoint_id,
    )
