"""The normalize layer: what the caller asked ``stream`` for, what otelstream asks instead, and how
each internal chunk becomes the chunk the caller would have received from the bare graph.

otelstream always asks LangGraph for a list of modes (the caller's plus, when the run streams
concurrently anyway, ``tasks`` and ``custom``), so every internal chunk carries its mode and
namespace. The caller's own shape is re-applied at the very end with the same rules as
LangGraph's ``_output``: a list ``stream_mode`` tags chunks with their mode, a string or a tuple
does not, ``subgraphs`` adds the namespace, ``version="v2"`` yields LangGraph's own part dicts
unchanged. otelstream's own ``ToolMark`` items in the ``custom`` stream never reach the caller.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from langchain_core.callbacks import BaseCallbackManager
from langchain_core.runnables.config import ensure_config

if TYPE_CHECKING:
    from collections.abc import Mapping

    from langchain_core.callbacks import BaseCallbackHandler

# What otelstream reads from the stream itself; the rest comes from callbacks.
_TASKS_MODE = "tasks"
_CUSTOM_MODE = "custom"
# Modes that switch LangGraph to concurrent streaming (a waiter on the thread pool every step).
_CONCURRENT_MODES = ("messages", "custom")
_TASK_ID_KEY = "__pregel_task_id"  # langgraph._internal._constants.CONFIG_KEY_TASK_ID
_VERSIONS = ("v1", "v2")

SKIP: Any = object()
"""``Plan.reshape``'s answer for an internal chunk the caller did not ask for."""


@dataclass(frozen=True, slots=True)
class Plan:
    """One traced stream call: the caller's request and the internal one.

    Attributes:
        input: The graph input, passed through unchanged.
        config: The caller's config with otelstream's callback handler added.
        kwargs: Every other keyword argument, with the internal ``stream_mode``/``subgraphs``.
        effective_config: The config LangGraph will see (context variable merged), read-only.
        user_mode: The caller's ``stream_mode`` after LangGraph's default was applied.
        user_subgraphs: The caller's ``subgraphs``, as a truth value.
        v2: Whether the caller asked for ``version="v2"`` parts.
        sees_nested: Whether otelstream asked for ``subgraphs=True`` internally.
        reads_tasks: Whether otelstream asked for the ``tasks`` mode internally.
        marks_tools: Whether tool calls are to mark themselves in the stream (``ToolMark``):
            the run reads ``custom`` and is not itself run inside another graph's task.
    """

    input: Any
    config: dict[str, Any]
    kwargs: dict[str, Any]
    effective_config: Mapping[str, Any]
    user_mode: str | list[str] | tuple[str, ...]
    user_subgraphs: bool
    v2: bool
    sees_nested: bool
    reads_tasks: bool
    marks_tools: bool

    @property
    def agent_name(self) -> str:
        """``run_name`` from the config, else the graph's name (filled in by the caller)."""
        name = self.effective_config.get("run_name")
        return name if isinstance(name, str) else ""

    @property
    def conversation_id(self) -> str | None:
        """The ``thread_id`` of the run, if the config has one."""
        configurable = self.effective_config.get("configurable") or {}
        thread_id = configurable.get("thread_id")
        return None if thread_id is None else str(thread_id)

    @property
    def tagged_pairs(self) -> bool:
        """Whether every internal chunk is a ``(mode, payload)`` pair that, when kept, is exactly
        the caller's chunk (a list ``stream_mode``, v1, no namespaces on either side)."""
        return not self.v2 and not self.sees_nested and isinstance(self.user_mode, list)

    def split(self, item: Any) -> tuple[tuple[str, ...], str, Any]:
        """An internal chunk as ``(namespace, mode, payload)``."""
        if self.v2:
            return item["ns"], item["type"], item["data"]
        if self.sees_nested:
            ns, mode, payload = item
            return ns, mode, payload
        mode, payload = item
        return (), mode, payload

    def reshape(self, item: Any, ns: tuple[str, ...], mode: str, payload: Any) -> Any:
        """The chunk the bare graph would have yielded for ``item``, or ``SKIP``."""
        if ns and not self.user_subgraphs:
            return SKIP
        # `in` on the caller's own object, as LangGraph does (a string mode is matched with
        # substring semantics there too).
        if mode not in self.user_mode:
            return SKIP
        if self.v2:
            return item
        if isinstance(self.user_mode, list):
            return (ns, mode, payload) if self.user_subgraphs else (mode, payload)
        return (ns, payload) if self.user_subgraphs else payload


def _handlers(callbacks: Any) -> list[Any]:
    if isinstance(callbacks, BaseCallbackManager):
        return list(callbacks.handlers)
    if isinstance(callbacks, list):
        return callbacks
    return []


def traced_by(effective_config: Mapping[str, Any], handler_type: type) -> bool:
    """Whether a traced run's handler is already in this config (a nested or doubled call)."""
    return any(isinstance(h, handler_type) for h in _handlers(effective_config.get("callbacks")))


def _with_handler(callbacks: Any, handler: BaseCallbackHandler) -> Any:
    if isinstance(callbacks, BaseCallbackManager):
        manager = callbacks.copy()
        manager.add_handler(handler, inherit=True)
        return manager
    if isinstance(callbacks, list):
        return [*callbacks, handler]
    return [handler]


def _valid_mode(mode: Any) -> bool:
    if isinstance(mode, str):
        return True
    return isinstance(mode, (list, tuple)) and all(isinstance(m, str) for m in mode)


def _modes(value: Any) -> list[Any]:
    if isinstance(value, str):
        return [value]
    return list(value) if isinstance(value, (list, tuple)) else []


def bind_call(
    args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[Any, dict[str, Any] | None, dict[str, Any]] | None:
    """``stream(input, config=None, **rest)``'s arguments as ``(input, config, rest)``.

    ``None`` for arguments the graph itself would reject (missing or doubled input or config, a
    config that is not a dict): such a call goes to the bare graph, so it fails the same way.
    """
    if len(args) > 2 or ("input" in kwargs) == bool(args):
        return None
    rest = dict(kwargs)
    graph_input = args[0] if args else rest.pop("input")
    if len(args) == 2:
        if "config" in rest:
            return None
        config = args[1]
    else:
        config = rest.pop("config", None)
    if config is not None and not isinstance(config, dict):
        return None
    return graph_input, config, rest


def plan(
    graph: Any,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    handler_type: type,
) -> Plan | None:
    """Work out the internal request for ``stream(*args, **kwargs)``.

    Returns ``None`` when the call is not to be traced and must go to the bare graph exactly as
    given: arguments LangGraph itself would reject (so it fails the same way), a ``version`` or
    ``stream_mode`` otelstream does not know, or a call made inside a run already traced.
    """
    bound = bind_call(args, kwargs)
    if bound is None:
        return None
    graph_input, config, rest = bound
    version = rest.get("version", "v1")
    if version not in _VERSIONS:
        return None
    effective = ensure_config(config)  # type: ignore[arg-type]
    if traced_by(effective, handler_type):
        return None
    mode = rest.get("stream_mode")
    if mode is None:
        # LangGraph's own default: "values" when called as a node in another graph.
        configurable = (config or {}).get("configurable") or {}
        default_mode = getattr(graph, "stream_mode", "values")
        mode = "values" if config is not None and _TASK_ID_KEY in configurable else default_mode
    if not _valid_mode(mode):
        return None
    user_modes = _modes(mode)
    user_subgraphs = bool(rest.get("subgraphs", False))
    # `custom` and `subgraphs` switch LangGraph to concurrent streaming, which costs every step
    # a waiter on the thread pool (about a third of a short `updates`-only run). otelstream asks
    # for them only when the bare run streams concurrently anyway, so it never changes how
    # LangGraph schedules the run; otherwise custom writes are not observed.
    printed = _modes(rest.get("print_mode", ()))
    if rest.get("debug") or getattr(graph, "debug", False):
        printed = ["updates", "values"]
    concurrent = (
        bool(getattr(graph, "stream_eager", False))
        or user_subgraphs
        or any(m in _CONCURRENT_MODES for m in (*user_modes, *printed))
    )
    # What the stream tells otelstream (stream order: which tasks and tool calls were open when a
    # custom write was made) matters only for custom writes, so nothing is added without them.
    extra = [_TASKS_MODE, _CUSTOM_MODE] if concurrent else []
    internal_modes = list(dict.fromkeys([*user_modes, *extra]))
    # Asking for subgraphs changes what `messages` yields for a subgraph node (its final
    # messages are deduplicated against the inner ones), so otelstream sees inside subgraphs
    # through the stream only when that cannot change the caller's chunks. Callbacks see there
    # either way; only custom writes inside subgraphs depend on it.
    sees_nested = concurrent and (user_subgraphs or "messages" not in user_modes)
    rest["stream_mode"] = internal_modes
    rest["subgraphs"] = sees_nested
    return Plan(
        input=graph_input,
        config=dict(config or {}),
        kwargs=rest,
        effective_config=effective,
        user_mode=mode,
        user_subgraphs=user_subgraphs,
        v2=version == "v2",
        sees_nested=sees_nested,
        reads_tasks=concurrent,
        # Inside another graph's task the writer may feed that graph's stream, not this one.
        marks_tools=concurrent and _TASK_ID_KEY not in (effective.get("configurable") or {}),
    )


def add_handler(plan_: Plan, handler: BaseCallbackHandler) -> dict[str, Any]:
    """The config to pass: the caller's, with ``handler`` among the inherited callbacks."""
    callbacks = plan_.effective_config.get("callbacks")
    return {**plan_.config, "callbacks": _with_handler(callbacks, handler)}
