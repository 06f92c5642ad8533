"""The normalize layer for a ``RemoteGraph``: what the caller asked for, what otelstream asks
the server for instead, and how each internal chunk becomes the caller's chunk again.

otelstream adds ``tasks``, ``messages`` (sent as ``messages-tuple``) and ``custom`` to the
caller's modes (``updates`` ``RemoteGraph`` always adds itself) and, where it cannot change what
the caller receives, ``subgraphs=True``. The caller's shape is re-applied with the rules of
``RemoteGraph.stream`` itself (``langgraph/pregel/remote.py``): a string mode yields bare data, a
list yields the SDK's ``StreamPart`` (``subgraphs`` adds the namespace, ``(ns, mode, data)``),
``version="v2"`` yields part dicts, unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from langgraph_sdk.schema import StreamPart

from otelstream.feeds.request import SKIP, bind_call

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
    """

    input: Any
    config: Any
    kwargs: dict[str, Any]
    requested: tuple[str, ...]
    single: bool
    user_subgraphs: bool
    v2: bool
    sees_nested: bool

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
        if self.v2:
            return item
        if self.user_subgraphs:
            return (ns, data) if self.single else (ns, mode, data)
        if self.single:
            return data
        return item if isinstance(item, StreamPart) else StreamPart(mode, data)


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
    )
