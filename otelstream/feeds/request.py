"""The normalize layer: what the caller asked ``stream`` for, and how to read its chunks.

otelstream passes the caller's request to LangGraph unchanged but for the config (its callback
handler among the inherited callbacks, and the write tap's runtime, see ``writer.py``), so the
caller receives exactly the chunks the bare graph yields and LangGraph schedules the run exactly
as it would bare. The only thing otelstream reads from the chunks themselves is an interrupt in
the caller's own ``updates`` or ``values`` chunks (a static ``interrupt_before``/``after`` shows
nowhere else); ``Plan.interrupt_check`` reads it in whatever shape the caller asked for, with
LangGraph's own ``_output`` rules.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from langchain_core.callbacks import BaseCallbackManager
from langchain_core.runnables.config import ensure_config

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from langchain_core.callbacks import BaseCallbackHandler

SKIP: Any = object()
"""A reshaping feed's answer for an internal chunk the caller did not ask for."""

_TASK_ID_KEY = "__pregel_task_id"  # langgraph._internal._constants.CONFIG_KEY_TASK_ID
_VERSIONS = ("v1", "v2")
_INTERRUPT = "__interrupt__"
_INTERRUPT_MODES = frozenset({"updates", "values"})
_AGENT_INTEGRATION = "langchain_create_agent"  # create_agent's graph metadata, ls_integration
_PREVIOUS = "__previous__"  # langgraph._internal._constants.PREVIOUS: entrypoints have it


@dataclass(frozen=True, slots=True)
class Plan:
    """One traced stream call: the caller's request, and what otelstream reads of it.

    Attributes:
        input: The graph input, passed through unchanged.
        config: The caller's config (a copy), to which otelstream adds its handler and tap.
        kwargs: Every other keyword argument, unchanged.
        effective_config: The config LangGraph will see (context variable merged), read-only.
        user_mode: The caller's ``stream_mode`` after LangGraph's default was applied.
        user_subgraphs: The caller's ``subgraphs``, as a truth value.
        v2: Whether the caller asked for ``version="v2"`` parts.
        name: The run's name: ``run_name`` from the config, else the graph's (an entrypoint's
            function name for a Functional API graph left with LangGraph's default name).
        agent: Whether the graph is an agent (built by ``create_agent``).
        taps_writes: Whether otelstream may put its write tap in the config. Not when the run
            has a checkpointer and no ``configurable`` at all: LangGraph rejects that call, and
            must reject it exactly as it does bare.
    """

    input: Any
    config: dict[str, Any]
    kwargs: dict[str, Any]
    effective_config: Mapping[str, Any]
    user_mode: str | list[str] | tuple[str, ...]
    user_subgraphs: bool
    v2: bool
    name: str
    agent: bool
    taps_writes: bool

    @property
    def conversation_id(self) -> str | None:
        """The ``thread_id`` of the run, if the config has one."""
        configurable = self.effective_config.get("configurable") or {}
        thread_id = configurable.get("thread_id")
        return None if thread_id is None else str(thread_id)

    def interrupt_check(self) -> Callable[[Any], bool] | None:
        """A test for "this chunk of the caller's says the run was interrupted", or ``None`` when
        the caller streams no ``updates`` or ``values`` (nothing to test, nothing to cost)."""
        modes = _modes(self.user_mode)
        if not _INTERRUPT_MODES.intersection(modes):
            return None
        if self.v2:
            return _v2_interrupt
        tagged = isinstance(self.user_mode, list)
        if tagged and not self.user_subgraphs:
            return _pair_interrupt
        if tagged:
            return _triple_interrupt
        if self.user_subgraphs:
            return _nested_interrupt
        return _payload_interrupt


def _is_interrupt(payload: Any) -> bool:
    return type(payload) is dict and _INTERRUPT in payload


def _pair_interrupt(item: Any) -> bool:
    return item[0] in _INTERRUPT_MODES and _is_interrupt(item[1])


def _triple_interrupt(item: Any) -> bool:
    return not item[0] and item[1] in _INTERRUPT_MODES and _is_interrupt(item[2])


def _nested_interrupt(item: Any) -> bool:
    return not item[0] and _is_interrupt(item[1])


def _payload_interrupt(item: Any) -> bool:
    return _is_interrupt(item)


def _v2_interrupt(item: Any) -> bool:
    return (
        not item.get("ns")
        and item.get("type") in _INTERRUPT_MODES
        and (_is_interrupt(item.get("data")) or bool(item.get("interrupts")))
    )


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


def run_name(graph: Any, effective_config: Mapping[str, Any]) -> tuple[str, bool]:
    """The run's name and whether the graph is an agent.

    ``run_name`` from the config wins; else the graph's name. An entrypoint (Functional API)
    left with LangGraph's default name is named after its function, its one node.
    """
    metadata = getattr(graph, "config", None) or {}
    metadata = metadata.get("metadata") or {}
    agent = metadata.get("ls_integration") == _AGENT_INTEGRATION
    name = effective_config.get("run_name")
    if isinstance(name, str) and name:
        return name, agent
    name = str(getattr(graph, "name", None) or "LangGraph")
    nodes = getattr(graph, "nodes", None)
    channels = getattr(graph, "channels", None) or {}
    if (
        name == "LangGraph"
        and _PREVIOUS in channels
        and isinstance(nodes, dict)
        and len(nodes) == 1
    ):
        name = next(iter(nodes))
    return name, agent


def plan(
    graph: Any,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    handler_type: type,
) -> Plan | None:
    """Read the request ``stream(*args, **kwargs)``.

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
    name, agent = run_name(graph, effective)
    graph_configurable = (getattr(graph, "config", None) or {}).get("configurable")
    configured = bool(effective.get("configurable")) or bool(graph_configurable)
    return Plan(
        input=graph_input,
        config=dict(config or {}),
        kwargs=rest,
        effective_config=effective,
        user_mode=mode,
        user_subgraphs=bool(rest.get("subgraphs", False)),
        v2=version == "v2",
        name=name,
        agent=agent,
        taps_writes=configured or getattr(graph, "checkpointer", None) in (None, False),
    )


def add_handler(plan_: Plan, handler: BaseCallbackHandler) -> dict[str, Any]:
    """The config to pass: the caller's, with ``handler`` among the inherited callbacks."""
    callbacks = plan_.effective_config.get("callbacks")
    return {**plan_.config, "callbacks": _with_handler(callbacks, handler)}
