"""Pass-through fidelity: a traced graph yields, returns and raises exactly what the bare one does.

Each case builds two fresh, identical graphs (``tests/graphs.py``), runs one bare and one through
``otelstream.instrument``, and compares the two runs after replacing what legitimately differs
between any two runs (uuids, timestamps, random channel-version suffixes, memory addresses) by
placeholders. Everything else is compared as is: chunk shapes (mode tags, namespaces, tuple vs
list vs dict), payloads, counts and order. Graphs with parallel branches (``Send`` fan-out,
``ToolNode`` with two calls) are compared as multisets, since their branches may interleave
differently from run to run.
"""

from __future__ import annotations

import dataclasses
import re
import sys
from collections import Counter
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import graphs
import pytest
from langchain_core.messages import BaseMessage
from langgraph.checkpoint.memory import InMemorySaver
from pydantic import BaseModel

import otelstream
from otelstream import Options

if TYPE_CHECKING:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.trace import ReadableSpan, TracerProvider

    Spans = Callable[[], list[ReadableSpan]]  # the ``spans`` fixture

# ---- normalising runs ---------------------------------------------------------------------------

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:[+-]\d\d:\d\d|Z)?")
# InMemorySaver channel versions: a zero-padded counter, then a random fraction.
_VERSION = re.compile(r"\b(\d{32})\.\d+\b")
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


class Normaliser:
    """Turns one run's chunks into plain comparable data with run-specific values replaced.

    With ``number_ids`` each distinct uuid becomes ``<id1>``, ``<id2>``… in order of first
    appearance, so which chunks share an id still counts; without it (for runs whose order may
    legitimately differ) every uuid becomes ``<id>``.
    """

    def __init__(self, *, number_ids: bool) -> None:
        self._ids: dict[str, str] | None = {} if number_ids else None

    def _uuid(self, match: re.Match[str]) -> str:
        if self._ids is None:
            return "<id>"
        return self._ids.setdefault(match.group(0), f"<id{len(self._ids) + 1}>")

    def text(self, value: str) -> str:
        value = _UUID.sub(self._uuid, value)
        value = _TIMESTAMP.sub("<timestamp>", value)
        value = _VERSION.sub(r"\1.<random>", value)
        return _ADDRESS.sub(" at <address>", value)

    def __call__(self, value: Any) -> Any:  # noqa: PLR0911 - one branch per kind of value
        if value is None or isinstance(value, (bool, int, float)):
            return value
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, BaseMessage):
            return ("message", type(value).__name__, self(value.model_dump()))
        if isinstance(value, BaseException):
            return ("exception", type(value).__qualname__, self.text(str(value)))
        if isinstance(value, Mapping):
            return {self(k): self(v) for k, v in value.items()}
        if isinstance(value, tuple) and hasattr(value, "_fields"):
            fields = {f: self(getattr(value, f)) for f in value._fields}
            return ("namedtuple", type(value).__name__, fields)
        if isinstance(value, tuple):
            return tuple(self(v) for v in value)
        if isinstance(value, list):
            return [self(v) for v in value]
        if isinstance(value, (set, frozenset)):
            return ("set", sorted(canonical(self(v)) for v in value))
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            fields = {f.name: self(getattr(value, f.name)) for f in dataclasses.fields(value)}
            return ("dataclass", type(value).__name__, fields)
        if isinstance(value, BaseModel):
            return ("model", type(value).__name__, self(value.model_dump()))
        return ("object", type(value).__qualname__, self.text(repr(value)))


def canonical(value: Any) -> str:
    """A string for a normalised value, the same whatever the order of its dicts' keys."""
    if isinstance(value, dict):
        items = sorted(f"{canonical(k)}: {canonical(v)}" for k, v in value.items())
        return "{" + ", ".join(items) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(canonical(v) for v in value) + "]"
    if isinstance(value, tuple):
        return "(" + ", ".join(canonical(v) for v in value) + ",)"
    return repr(value)


# ---- running a graph ----------------------------------------------------------------------------


@dataclasses.dataclass
class Run:
    """What one call produced: its chunks (or result), and where and how it failed, if it did."""

    chunks: list[Any]
    error: tuple[str, str, str] | None = None  # (stage, exception type, message)

    def normalised(self, *, ordered: bool) -> Any:
        normalise = Normaliser(number_ids=ordered)
        chunks = normalise(self.chunks)
        if not ordered:
            chunks = Counter(canonical(c) for c in chunks)
        return chunks, self.error


def _failure(stage: str, exc: BaseException) -> tuple[str, str, str]:
    return stage, type(exc).__qualname__, str(exc)


def run_stream(graph: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Run:
    """``graph.stream(*args, **kwargs)`` drained; notes where it failed."""
    try:
        iterator = graph.stream(*args, **kwargs)
    except Exception as exc:
        return Run([], _failure("call", exc))
    run = Run([])
    try:
        for chunk in iterator:
            run.chunks.append(chunk)
    except Exception as exc:
        run.error = _failure("iterate", exc)
    return run


async def run_astream(graph: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Run:
    """``graph.astream(*args, **kwargs)`` drained; notes where it failed."""
    try:
        iterator = graph.astream(*args, **kwargs)
    except Exception as exc:
        return Run([], _failure("call", exc))
    run = Run([])
    try:
        async for chunk in iterator:
            run.chunks.append(chunk)
    except Exception as exc:
        run.error = _failure("iterate", exc)
    return run


def run_invoke(graph: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Run:
    """``graph.invoke(*args, **kwargs)``: its result as the only chunk, or its failure."""
    try:
        return Run([graph.invoke(*args, **kwargs)])
    except Exception as exc:
        return Run([], _failure("call", exc))


async def run_ainvoke(graph: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Run:
    """``await graph.ainvoke(*args, **kwargs)``: its result as the only chunk, or its failure."""
    try:
        return Run([await graph.ainvoke(*args, **kwargs)])
    except Exception as exc:
        return Run([], _failure("call", exc))


# ---- the graphs ---------------------------------------------------------------------------------

# name -> (builder, input factory, whether chunk order is deterministic)
GRAPHS: dict[str, tuple[Callable[..., Any], Callable[[], Any], bool]] = {
    "linear": (graphs.linear_graph, graphs.chat_input, True),
    "fan_out": (graphs.fan_out_graph, graphs.fan_out_input, False),
    "subgraph": (graphs.subgraph_graph, graphs.chat_input, True),
    "agent": (graphs.agent_graph, graphs.chat_input, True),
    "tool_node": (graphs.tool_node_graph, graphs.chat_input, False),
}

UNTOUCHED_MODEL = Options(trace_chunks=False)
"""Leaves chat models generating when the caller does not stream messages (see
``test_default_options_make_models_stream_with_the_same_answer`` for the default)."""


class Case:
    """One comparison: which graph, which options, and how a run is called."""

    def __init__(
        self,
        graph: str,
        *,
        options: Options | None = UNTOUCHED_MODEL,
        checkpointer: bool = False,
    ) -> None:
        self.builder, self.input, self.ordered = GRAPHS[graph]
        self.options = options
        self.checkpointer = checkpointer

    def config(self) -> dict[str, Any] | None:
        return {"configurable": {"thread_id": "thread-1"}} if self.checkpointer else None

    def bare(self) -> Any:
        return self.builder(checkpointer=InMemorySaver() if self.checkpointer else None)

    def traced(self, tracer_provider: TracerProvider, meter_provider: MeterProvider) -> Any:
        return otelstream.instrument(
            self.bare(),
            tracer_provider=tracer_provider,
            meter_provider=meter_provider,
            options=self.options,
        )


def assert_same(bare: Run, traced: Run, *, ordered: bool) -> None:
    """The two runs are equal once run-specific values are replaced."""
    assert traced.normalised(ordered=ordered) == bare.normalised(ordered=ordered)


# Before Python 3.11 asyncio cannot run a task in a given context, so LangGraph's async runner
# leaves a node without its config context, and astream's "custom" writer looks the node's
# namespace up with get_config(): a node's custom write raises there, through get_stream_writer()
# or the injected writer alike (LangGraph issue 5927). Tools are unaffected: langchain-core runs
# them in their context on every Python.
ASYNC_NODE_WRITES_FAIL = sys.version_info < (3, 11)
NO_CONFIG_CONTEXT = ("RuntimeError", "Called get_config outside of a runnable context")


def assert_async_same(bare: Run, traced: Run, *, ordered: bool) -> None:
    """``assert_same`` for an async call, which the bare graph must survive but for LangGraph's
    Python 3.10 custom-write failure; the traced call must then fail in the same way."""
    if bare.error is not None:
        assert ASYNC_NODE_WRITES_FAIL, bare.error
        assert bare.error[1:] == NO_CONFIG_CONTEXT, bare.error
    assert_same(bare, traced, ordered=ordered)


def assert_traced(spans: Spans) -> None:
    """The traced run really was traced: a run span was exported."""
    names = [s.name for s in spans()]
    assert any(name.startswith(("invoke_workflow", "invoke_agent")) for name in names), names


# ---- stream and astream: every form of stream_mode ----------------------------------------------

MODE_FORMS: dict[str, dict[str, Any]] = {
    "values": {"stream_mode": "values"},
    "updates": {"stream_mode": "updates"},
    "messages": {"stream_mode": "messages"},
    "custom": {"stream_mode": "custom"},
    "tasks": {"stream_mode": "tasks"},
    "debug": {"stream_mode": "debug"},
    "checkpoints": {"stream_mode": "checkpoints"},
    "tools": {"stream_mode": "tools"},
    "list": {"stream_mode": ["updates", "messages", "custom"]},
    "list-observed-modes": {"stream_mode": ["values", "tasks", "tools", "custom", "debug"]},
    "tuple": {"stream_mode": ("updates", "custom")},
    "tuple-messages": {"stream_mode": ("messages", "values")},
    "default": {},
    "none": {"stream_mode": None},
    "custom-subgraphs": {"stream_mode": "custom", "subgraphs": True},
    "messages-subgraphs": {"stream_mode": "messages", "subgraphs": True},
    "messages-no-subgraphs": {"stream_mode": "messages", "subgraphs": False},
    "list-subgraphs": {"stream_mode": ["updates", "messages", "custom"], "subgraphs": True},
    "tuple-subgraphs": {"stream_mode": ("values", "custom"), "subgraphs": True},
    "default-subgraphs": {"subgraphs": True},
    "v1": {"stream_mode": ["values", "custom"], "version": "v1"},
    "v2": {"stream_mode": ["values", "updates", "messages", "custom"], "version": "v2"},
    "v2-string": {"stream_mode": "tasks", "version": "v2"},
    "v2-subgraphs": {
        "stream_mode": ["updates", "custom", "tools"],
        "subgraphs": True,
        "version": "v2",
    },
    "v2-messages-subgraphs": {"stream_mode": "messages", "subgraphs": True, "version": "v2"},
}

# The async matrix covers each shape once rather than every mode again.
ASYNC_FORMS = [
    "values",
    "messages",
    "custom",
    "tools",
    "list",
    "tuple",
    "default",
    "messages-no-subgraphs",
    "list-subgraphs",
    "v2",
    "v2-subgraphs",
]


@pytest.mark.parametrize("form", list(MODE_FORMS))
@pytest.mark.parametrize("graph", list(GRAPHS))
def test_stream_matches_bare(
    graph: str,
    form: str,
    tracer_provider: TracerProvider,
    meter_provider: MeterProvider,
    spans: Spans,
) -> None:
    """``stream`` yields the same chunks as the bare graph for every graph shape and mode form."""
    case = Case(graph)
    kwargs = MODE_FORMS[form]
    bare = run_stream(case.bare(), (case.input(),), kwargs)
    traced = run_stream(case.traced(tracer_provider, meter_provider), (case.input(),), kwargs)
    assert bare.error is None
    assert_same(bare, traced, ordered=case.ordered)
    assert_traced(spans)


@pytest.mark.parametrize("form", ASYNC_FORMS)
@pytest.mark.parametrize("graph", list(GRAPHS))
async def test_astream_matches_bare(
    graph: str,
    form: str,
    tracer_provider: TracerProvider,
    meter_provider: MeterProvider,
    spans: Spans,
) -> None:
    """``astream`` yields the same chunks as the bare graph for every graph shape and mode shape."""
    case = Case(graph)
    kwargs = MODE_FORMS[form]
    bare = await run_astream(case.bare(), (case.input(),), kwargs)
    traced = await run_astream(
        case.traced(tracer_provider, meter_provider), (case.input(),), kwargs
    )
    assert_async_same(bare, traced, ordered=case.ordered)
    assert_traced(spans)


# ---- v3 run streams and LangChain's astream_events ------------------------------------------


def _v3_event(event: dict[str, Any]) -> Any:
    """A v3 protocol event, less its wall-clock timestamp (which differs between any two runs)."""
    params = {k: v for k, v in event["params"].items() if k != "timestamp"}
    return {**event, "params": params}


def run_v3(graph: Any, graph_input: Any) -> Run:
    """``graph.stream_events(input, version="v3")`` drained; its output and interrupts last."""
    try:
        run = graph.stream_events(graph_input, version="v3")
        events = [_v3_event(e) for e in run]
        return Run([*events, ("output", run.output, run.interrupted)])
    except Exception as exc:
        return Run([], _failure("iterate", exc))


async def run_av3(graph: Any, graph_input: Any) -> Run:
    """``await graph.astream_events(input, version="v3")`` drained, likewise."""
    try:
        run = await graph.astream_events(graph_input, version="v3")
        events = [_v3_event(e) async for e in run]
        return Run([*events, ("output", run.output, run.interrupted)])
    except Exception as exc:
        return Run([], _failure("iterate", exc))


def _unordered_v3(run: Run) -> Run:
    # Parallel branches interleave differently from run to run, so do their sequence numbers.
    return Run([{**c, "seq": None} if isinstance(c, dict) else c for c in run.chunks], run.error)


@pytest.mark.parametrize("graph", list(GRAPHS))
def test_v3_run_stream_matches_bare(
    graph: str, tracer_provider: TracerProvider, meter_provider: MeterProvider, spans: Spans
) -> None:
    """``stream_events(version="v3")``: the same protocol events, output and interrupts."""
    case = Case(graph)
    bare = run_v3(case.bare(), case.input())
    traced = run_v3(case.traced(tracer_provider, meter_provider), case.input())
    assert bare.error is None
    if not case.ordered:
        bare, traced = _unordered_v3(bare), _unordered_v3(traced)
    assert_same(bare, traced, ordered=case.ordered)
    assert_traced(spans)


@pytest.mark.parametrize("graph", list(GRAPHS))
async def test_async_v3_run_stream_matches_bare(
    graph: str, tracer_provider: TracerProvider, meter_provider: MeterProvider, spans: Spans
) -> None:
    """``await astream_events(version="v3")``: the same protocol events, output and interrupts."""
    case = Case(graph)
    bare = await run_av3(case.bare(), case.input())
    traced = await run_av3(case.traced(tracer_provider, meter_provider), case.input())
    assert bare.error is None
    if not case.ordered:
        bare, traced = _unordered_v3(bare), _unordered_v3(traced)
    assert_same(bare, traced, ordered=case.ordered)
    assert_traced(spans)


async def run_astream_events(graph: Any, graph_input: Any) -> Run:
    """LangChain's ``astream_events(version="v2")`` drained."""
    try:
        return Run([e async for e in graph.astream_events(graph_input, version="v2")])
    except Exception as exc:
        return Run([], _failure("iterate", exc))


@pytest.mark.parametrize("graph", list(GRAPHS))
async def test_astream_events_v2_matches_bare(
    graph: str, tracer_provider: TracerProvider, meter_provider: MeterProvider, spans: Spans
) -> None:
    """``astream_events(version="v2")`` yields the bare graph's events (run ids aside)."""
    case = Case(graph)
    bare = await run_astream_events(case.bare(), case.input())
    traced = await run_astream_events(case.traced(tracer_provider, meter_provider), case.input())
    assert bare.error is None
    assert_same(bare, traced, ordered=False)
    assert_traced(spans)


STREAMING_FORMS = ["messages", "list", "messages-no-subgraphs", "list-subgraphs", "v2"]


@pytest.mark.parametrize("form", STREAMING_FORMS)
@pytest.mark.parametrize("graph", list(GRAPHS))
def test_stream_with_default_options_matches_bare_when_messages_stream(
    graph: str,
    form: str,
    tracer_provider: TracerProvider,
    meter_provider: MeterProvider,
    spans: Spans,
) -> None:
    """With default options (chunks traced, ``tools`` mode asked for), a stream that asks for
    ``messages`` yields the same chunks as the bare graph."""
    case = Case(graph, options=None)
    kwargs = MODE_FORMS[form]
    bare = run_stream(case.bare(), (case.input(),), kwargs)
    traced = run_stream(case.traced(tracer_provider, meter_provider), (case.input(),), kwargs)
    assert_same(bare, traced, ordered=case.ordered)
    assert_traced(spans)


@pytest.mark.parametrize("form", ["list", "v2-messages-subgraphs"])
@pytest.mark.parametrize("graph", ["subgraph", "tool_node"])
async def test_astream_with_default_options_matches_bare_when_messages_stream(
    graph: str, form: str, tracer_provider: TracerProvider, meter_provider: MeterProvider
) -> None:
    """With default options, an ``astream`` with ``messages`` yields the bare graph's chunks."""
    case = Case(graph, options=None)
    kwargs = MODE_FORMS[form]
    bare = await run_astream(case.bare(), (case.input(),), kwargs)
    traced = await run_astream(
        case.traced(tracer_provider, meter_provider), (case.input(),), kwargs
    )
    assert_async_same(bare, traced, ordered=case.ordered)


def _last_message(run: Run) -> Any:
    assert run.error is None, run.error
    return run.chunks[-1]["messages"][-1]


@pytest.mark.parametrize("mode", ["values", "updates"])
def test_default_options_make_models_stream_with_the_same_answer(
    mode: str, tracer_provider: TracerProvider, meter_provider: MeterProvider
) -> None:
    """With default options a model streams even when the caller does not ask for ``messages``
    (the README's conscious choice, so TTFT is known): the answer's text is the bare graph's,
    only the message id takes its streaming form."""
    case = Case("linear", options=None)
    bare = run_invoke(case.bare(), (case.input(),), {})
    traced = run_invoke(case.traced(tracer_provider, meter_provider), (case.input(),), {})
    bare_message, traced_message = _last_message(bare), _last_message(traced)
    assert traced_message.content == bare_message.content
    assert bare_message.id.endswith("-0")
    assert not traced_message.id.endswith("-0")
    assert traced_message.id.startswith("lc_run--")


async def test_trace_chunks_off_leaves_the_model_untouched_async(
    tracer_provider: TracerProvider, meter_provider: MeterProvider
) -> None:
    """With ``trace_chunks=False``, ``ainvoke`` returns the very state the bare graph returns."""
    case = Case("agent", options=UNTOUCHED_MODEL)
    bare = await run_ainvoke(case.bare(), (case.input(),), {})
    traced = await run_ainvoke(case.traced(tracer_provider, meter_provider), (case.input(),), {})
    assert_same(bare, traced, ordered=True)


# ---- the subgraph messages trap -----------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"stream_mode": "messages"},
        {"stream_mode": ["messages", "custom", "updates"]},
        {"stream_mode": "messages", "version": "v2"},
    ],
    ids=["string", "list", "v2"],
)
@pytest.mark.parametrize(
    "options", [None, UNTOUCHED_MODEL], ids=["default-options", "untouched-model"]
)
def test_messages_from_subgraph_node_without_subgraphs_match_bare(
    kwargs: dict[str, Any],
    options: Options | None,
    tracer_provider: TracerProvider,
    meter_provider: MeterProvider,
    spans: Spans,
) -> None:
    """Without ``subgraphs``, ``messages`` yields what the bare graph yields for a subgraph node
    (its final messages only), although otelstream sees inside the subgraph through callbacks."""
    case = Case("subgraph", options=options)
    bare = run_stream(case.bare(), (case.input(),), kwargs)
    traced = run_stream(case.traced(tracer_provider, meter_provider), (case.input(),), kwargs)
    assert bare.chunks, "the bare graph yields the subgraph node's messages"
    assert_same(bare, traced, ordered=True)
    assert_traced(spans)


# ---- with a checkpointer ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"stream_mode": "checkpoints"},
        {"stream_mode": "debug"},
        {"stream_mode": ["values", "checkpoints", "tasks"]},
        {"stream_mode": ["debug", "custom"], "subgraphs": True},
        {"stream_mode": "checkpoints", "version": "v2", "subgraphs": True},
    ],
    ids=["checkpoints", "debug", "list", "debug-subgraphs", "v2-subgraphs"],
)
@pytest.mark.parametrize("graph", ["linear", "subgraph", "agent"])
def test_stream_with_checkpointer_matches_bare(
    graph: str,
    kwargs: dict[str, Any],
    tracer_provider: TracerProvider,
    meter_provider: MeterProvider,
    spans: Spans,
) -> None:
    """With a checkpointer and a thread, checkpoint and debug payloads match the bare graph's."""
    case = Case(graph, checkpointer=True)
    bare = run_stream(case.bare(), (case.input(), case.config()), kwargs)
    traced = run_stream(
        case.traced(tracer_provider, meter_provider), (case.input(), case.config()), kwargs
    )
    assert bare.error is None
    assert bare.chunks
    assert_same(bare, traced, ordered=case.ordered)
    assert_traced(spans)


async def test_astream_with_checkpointer_second_turn_matches_bare(
    tracer_provider: TracerProvider, meter_provider: MeterProvider
) -> None:
    """A second turn on the same thread streams the same debug chunks as the bare graph's."""
    case = Case("linear", checkpointer=True)
    runs = []
    for graph in (case.bare(), case.traced(tracer_provider, meter_provider)):
        await run_ainvoke(graph, (case.input(), case.config()), {})
        runs.append(
            await run_astream(graph, (case.input(), case.config()), {"stream_mode": "debug"})
        )
    assert_same(runs[0], runs[1], ordered=True)


# ---- invoke and ainvoke -------------------------------------------------------------------------

INVOKE_FORMS: dict[str, dict[str, Any]] = {
    "default": {},
    "values": {"stream_mode": "values"},
    "updates": {"stream_mode": "updates"},
    "list": {"stream_mode": ["values", "custom"]},
    "v2": {"version": "v2"},
}


@pytest.mark.parametrize("form", list(INVOKE_FORMS))
@pytest.mark.parametrize("graph", list(GRAPHS))
def test_invoke_matches_bare(
    graph: str,
    form: str,
    tracer_provider: TracerProvider,
    meter_provider: MeterProvider,
    spans: Spans,
) -> None:
    """``invoke`` returns the same value as the bare graph."""
    case = Case(graph)
    kwargs = INVOKE_FORMS[form]
    bare = run_invoke(case.bare(), (case.input(),), kwargs)
    traced = run_invoke(case.traced(tracer_provider, meter_provider), (case.input(),), kwargs)
    assert bare.error is None
    if not case.ordered and isinstance(bare.chunks[0], list):
        # A list of stream chunks (stream_mode="updates"): parallel branches may interleave.
        bare.chunks, traced.chunks = bare.chunks[0], traced.chunks[0]
    assert_same(bare, traced, ordered=case.ordered)
    assert_traced(spans)


@pytest.mark.parametrize("form", ["default", "updates", "list"])
@pytest.mark.parametrize("graph", list(GRAPHS))
async def test_ainvoke_matches_bare(
    graph: str,
    form: str,
    tracer_provider: TracerProvider,
    meter_provider: MeterProvider,
    spans: Spans,
) -> None:
    """``ainvoke`` returns the same value as the bare graph."""
    case = Case(graph)
    kwargs = INVOKE_FORMS[form]
    bare = await run_ainvoke(case.bare(), (case.input(),), kwargs)
    traced = await run_ainvoke(
        case.traced(tracer_provider, meter_provider), (case.input(),), kwargs
    )
    if not case.ordered and bare.chunks and isinstance(bare.chunks[0], list):
        bare.chunks, traced.chunks = bare.chunks[0], traced.chunks[0]
    assert_async_same(bare, traced, ordered=case.ordered)
    assert_traced(spans)


def _without_traceparent(metadata: Any) -> dict[str, Any]:
    """Checkpoint metadata without the one key otelstream adds to it."""
    metadata = dict(metadata or {})
    metadata.pop(otelstream.names.OTELSTREAM_TRACEPARENT, None)
    return metadata


def test_invoke_with_checkpointer_matches_bare(
    tracer_provider: TracerProvider, meter_provider: MeterProvider
) -> None:
    """``invoke`` on a thread returns and saves the same state and history as the bare graph,
    but for the traceparent otelstream adds to the metadata of each checkpoint."""
    case = Case("agent", checkpointer=True)
    results, marked = [], []
    for graph in (case.bare(), case.traced(tracer_provider, meter_provider)):
        run = run_invoke(graph, (case.input(), case.config()), {})
        state = graph.get_state(case.config())
        state = state._replace(metadata=_without_traceparent(state.metadata))
        # The history's metadata and next nodes; not the values of older checkpoints, which
        # race with add_messages assigning ids in place, in the bare graph too.
        history = list(graph.get_state_history(case.config()))
        steps = [(_without_traceparent(s.metadata), s.next) for s in history]
        marked.append(sum(otelstream.names.OTELSTREAM_TRACEPARENT in s.metadata for s in history))
        results.append(Run([*run.chunks, state, *steps], run.error))
    assert marked == [0, len(history)]  # bare: none; traced: every checkpoint the run saved
    assert_same(results[0], results[1], ordered=True)


# ---- invalid calls ------------------------------------------------------------------------------


def _invalid_calls() -> dict[str, tuple[tuple[Any, ...], dict[str, Any]]]:
    good = graphs.chat_input()
    return {
        "mode-int": ((good,), {"stream_mode": 123}),
        "mode-list-with-int": ((good,), {"stream_mode": ["values", 5]}),
        "unknown-kwarg": ((good,), {"no_such_argument": 1}),
        "two-positional-configs": ((good, {}, {}), {}),
        "config-twice": ((good, {}), {"config": {}}),
        "input-twice": ((good,), {"input": good}),
        "version-v9": ((good,), {"version": "v9"}),
        "no-input": ((), {}),
        "config-not-dict": ((good, "not a config"), {}),
        "recursion-limit-0": ((good, {"recursion_limit": 0}), {}),
        "input-missing-key": (({"count": 0},), {}),
        "input-not-dict": (("just text",), {"stream_mode": "updates"}),
    }


INVALID = list(_invalid_calls())


@pytest.mark.parametrize("name", INVALID)
def test_invalid_stream_call_fails_like_bare(
    name: str, tracer_provider: TracerProvider, meter_provider: MeterProvider
) -> None:
    """A doubtful ``stream`` call raises the same exception, with the same message, at the same
    point (on call or while iterating) as on the bare graph, or succeeds alike where LangGraph
    accepts it (an unknown keyword, a partial input)."""
    case = Case("linear")
    args, kwargs = _invalid_calls()[name]
    bare = run_stream(case.bare(), args, kwargs)
    args, kwargs = _invalid_calls()[name]
    traced = run_stream(case.traced(tracer_provider, meter_provider), args, kwargs)
    assert_same(bare, traced, ordered=True)


@pytest.mark.parametrize("name", INVALID)
async def test_invalid_astream_call_fails_like_bare(
    name: str, tracer_provider: TracerProvider, meter_provider: MeterProvider
) -> None:
    """An invalid ``astream`` call raises the same exception, with the same message, at the same
    point as on the bare graph."""
    case = Case("linear")
    args, kwargs = _invalid_calls()[name]
    bare = await run_astream(case.bare(), args, kwargs)
    args, kwargs = _invalid_calls()[name]
    traced = await run_astream(case.traced(tracer_provider, meter_provider), args, kwargs)
    assert_same(bare, traced, ordered=True)


@pytest.mark.parametrize("name", ["mode-int", "two-positional-configs", "version-v9", "no-input"])
def test_invalid_invoke_call_fails_like_bare(
    name: str, tracer_provider: TracerProvider, meter_provider: MeterProvider
) -> None:
    """An invalid ``invoke`` call raises the same exception and message as on the bare graph."""
    case = Case("linear")
    args, kwargs = _invalid_calls()[name]
    bare = run_invoke(case.bare(), args, kwargs)
    args, kwargs = _invalid_calls()[name]
    traced = run_invoke(case.traced(tracer_provider, meter_provider), args, kwargs)
    assert_same(bare, traced, ordered=True)


def test_checkpointer_without_thread_fails_like_bare(
    tracer_provider: TracerProvider, meter_provider: MeterProvider
) -> None:
    """A graph with a checkpointer called without a thread fails as the bare graph does."""
    case = Case("linear", checkpointer=True)
    bare = run_stream(case.bare(), (case.input(),), {"stream_mode": "updates"})
    traced = run_stream(
        case.traced(tracer_provider, meter_provider), (case.input(),), {"stream_mode": "updates"}
    )
    assert bare.error is not None
    assert_same(bare, traced, ordered=True)


# ---- the normaliser itself ----------------------------------------------------------------------


def test_normaliser_keeps_shape_mode_and_identity() -> None:
    """The normaliser replaces run ids but keeps mode tags, namespace shapes and which ids match."""
    normalise = Normaliser(number_ids=True)
    task_a, task_b = "1f0e8d6a-1111-6222-8333-444455556666", "2f0e8d6a-1111-6222-8333-444455556666"
    chunks = [
        ((f"inner:{task_a}",), "custom", {"x": 1}),
        ((f"inner:{task_b}",), "custom", {"x": 1}),
    ]
    assert normalise(chunks) == [
        (("inner:<id1>",), "custom", {"x": 1}),
        (("inner:<id2>",), "custom", {"x": 1}),
    ]
    assert Normaliser(number_ids=True)([("custom", 1)]) != Normaliser(number_ids=True)(
        [(("custom", 1),)]
    )
    assert Normaliser(number_ids=True)([["a"]]) != Normaliser(number_ids=True)([("a",)])
    assert Normaliser(number_ids=True)("lc_run--" + task_a) != Normaliser(number_ids=True)(
        f"lc_run--{task_a}-0"
    )
