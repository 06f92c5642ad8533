"""Hostile input to the pass-through layer: random graph shapes, stream modes and payloads.

Each example builds two identical graphs from one description, runs one bare and one traced,
and compares chunks (``test_passthrough.Normaliser``) and errors (type and message). Strict mode
is on, so an internal otelstream error would surface as a different error.
"""

from __future__ import annotations

import operator
from typing import Annotated, Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from langgraph.config import get_stream_writer
from langgraph.graph import END, START, StateGraph
from langgraph.types import Send
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import TracerProvider
from test_passthrough import Run, assert_same, run_astream, run_stream
from typing_extensions import TypedDict

import otelstream
from otelstream import Options


class _BadRepr:
    def __repr__(self) -> str:
        raise RuntimeError("no repr")

    def __len__(self) -> int:
        raise RuntimeError("no len")

    def __reduce__(self) -> Any:
        raise TypeError("cannot serialize")


def _deep(depth: int) -> dict[str, Any]:
    node: dict[str, Any] = {"leaf": 1}
    for _ in range(depth):
        node = {"d": node}
    return node


_cyclic: dict[str, Any] = {"name": "cycle"}
_cyclic["self"] = _cyclic
PAYLOADS: dict[str, Any] = {
    "small": {"ok": 1},
    "huge": "x" * 1_000_000,
    "deep": _deep(1000),
    "cyclic": _cyclic,
    "bytes": b"\x00\xff" * 1000,
    "bad": _BadRepr(),
    "none": None,
}
_PLACEHOLDER = {id(v): f"<payload:{k}>" for k, v in PAYLOADS.items() if v is not None}


def _swap(value: Any, depth: int = 0) -> Any:
    """Replace the hostile payload objects by name before normalising (by identity)."""
    if id(value) in _PLACEHOLDER:
        return _PLACEHOLDER[id(value)]
    if depth > 8:
        return value
    if isinstance(value, dict):
        return {k: _swap(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [_swap(v, depth + 1) for v in value]
    if isinstance(value, tuple) and not hasattr(value, "_fields"):
        return tuple(_swap(v, depth + 1) for v in value)
    return value


class S(TypedDict, total=False):
    items: Annotated[list[str], operator.add]
    blob: Any


def _build(nodes: int, fan_out: bool, subgraph: bool, payload: str, fail: bool) -> Any:
    blob = PAYLOADS[payload]

    def make(name: str, last: bool) -> Any:
        def fn(state: Any) -> dict[str, Any]:
            get_stream_writer()(blob)
            if last and fail:
                msg = f"node {name} failed"
                raise ValueError(msg)
            return {"items": [name], "blob": blob}

        return fn

    builder = StateGraph(S)
    names_ = [f"n{i}" for i in range(nodes)]
    for i, name in enumerate(names_):
        builder.add_node(name, make(name, i == nodes - 1))
    builder.add_edge(START, names_[0])
    for a, b in zip(names_, names_[1:]):
        builder.add_edge(a, b)
    tail = names_[-1]
    if subgraph:
        inner = StateGraph(S)
        inner.add_node("inner", make("inner", False))
        inner.add_edge(START, "inner")
        inner.add_edge("inner", END)
        builder.add_node("sub", inner.compile())
        builder.add_edge(tail, "sub")
        tail = "sub"
    if fan_out:

        def work(arg: dict[str, Any]) -> dict[str, Any]:
            get_stream_writer()({"work": arg["i"]})
            return {"items": [f"w{arg['i']}"]}

        builder.add_node("work", work)
        builder.add_conditional_edges(
            tail, lambda s: [Send("work", {"i": i}) for i in range(3)], ["work"]
        )
        builder.add_edge("work", END)
    else:
        builder.add_edge(tail, END)
    return builder.compile()


MODE_NAMES = ["values", "updates", "messages", "custom", "tasks", "debug", "checkpoints", "tools"]
mode_values = st.one_of(
    st.none(),
    st.sampled_from([*MODE_NAMES, "bogus", "", "UPDATES"]),
    st.lists(st.sampled_from([*MODE_NAMES, "nope"]), max_size=4),
    st.lists(st.sampled_from(MODE_NAMES), min_size=1, max_size=4).map(tuple),
    st.lists(st.one_of(st.sampled_from(MODE_NAMES), st.integers(), st.none()), max_size=3),
)
calls = st.fixed_dictionaries(
    {
        "nodes": st.integers(1, 4),
        "fan_out": st.booleans(),
        "subgraph": st.booleans(),
        "payload": st.sampled_from(list(PAYLOADS)),
        "fail": st.booleans(),
        "capture": st.booleans(),
    }
)
kwargs_st = st.fixed_dictionaries(
    {"stream_mode": mode_values},
    optional={
        "subgraphs": st.booleans(),
        "version": st.sampled_from(["v1", "v2", "v3", None]),
    },
)


def _traced(graph: Any, capture: bool) -> Any:
    return otelstream.instrument(
        graph,
        tracer_provider=TracerProvider(),
        meter_provider=MeterProvider(),
        options=Options(capture_content=capture, trace_chunks=False),
    )


def _compare(bare: Run, traced: Run, fan_out: bool) -> None:
    bare.chunks, traced.chunks = _swap(bare.chunks), _swap(traced.chunks)
    assert_same(bare, traced, ordered=not fan_out)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(call=calls, kwargs=kwargs_st)
def test_stream_matches_bare_for_any_shape_mode_and_payload(
    call: dict[str, Any], kwargs: dict[str, Any]
) -> None:
    """For any small graph shape, stream_mode (valid or not), subgraphs, version and hostile
    payload, ``stream`` yields the chunks and raises the error of the bare graph."""
    shape = {k: call[k] for k in ("nodes", "fan_out", "subgraph", "payload", "fail")}
    bare = run_stream(_build(**shape), ({"items": []},), dict(kwargs))
    traced = run_stream(_traced(_build(**shape), call["capture"]), ({"items": []},), dict(kwargs))
    _compare(bare, traced, call["fan_out"])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(call=calls, kwargs=kwargs_st)
async def test_astream_matches_bare_for_any_shape_mode_and_payload(
    call: dict[str, Any], kwargs: dict[str, Any]
) -> None:
    """For any small graph shape, stream_mode, subgraphs, version and hostile payload,
    ``astream`` yields the chunks and raises the error of the bare graph."""
    shape = {k: call[k] for k in ("nodes", "fan_out", "subgraph", "payload", "fail")}
    bare = await run_astream(_build(**shape), ({"items": []},), dict(kwargs))
    traced = await run_astream(
        _traced(_build(**shape), call["capture"]), ({"items": []},), dict(kwargs)
    )
    _compare(bare, traced, call["fan_out"])
