"""The public API: instrument() input checks, Options validation and delegation to the graph."""

from __future__ import annotations

import math

import pytest
from helpers import USER, chat_graph, final, linear_graph
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.pregel.remote import RemoteGraph

import otelstream
from otelstream.cli import main as cli_main
from otelstream.remote import InstrumentedRemoteGraph
from otelstream.testing import FakeStreamingChatModel


def _builder() -> StateGraph:
    builder = StateGraph(MessagesState)
    builder.add_node("a", lambda s: {})
    builder.add_edge(START, "a")
    return builder


def test_uncompiled_graph_is_rejected():
    """An uncompiled StateGraph raises TypeError telling the caller to compile() it."""
    with pytest.raises(TypeError, match=r"compile\(\)"):
        otelstream.instrument(_builder())


@pytest.mark.parametrize("thing", [None, 42, "graph", object()])
def test_non_graph_is_rejected(thing):
    """Anything that is not a compiled graph raises TypeError naming what was passed."""
    with pytest.raises(TypeError, match="compiled LangGraph graph"):
        otelstream.instrument(thing)


def test_double_instrument_is_rejected():
    """Instrumenting an already traced graph raises TypeError pointing at the original."""
    traced = otelstream.instrument(_builder().compile())
    with pytest.raises(TypeError, match="already instrumented"):
        otelstream.instrument(traced)


def test_options_must_be_options():
    """options= takes an Options instance, not a dict."""
    with pytest.raises(TypeError, match="Options"):
        otelstream.instrument(_builder().compile(), options={"capture_content": True})


@pytest.mark.parametrize("threshold", [-1, -0.5, math.nan])
def test_negative_stall_threshold(threshold):
    """A negative or NaN tool_stall_threshold raises ValueError."""
    with pytest.raises(ValueError, match="tool_stall_threshold"):
        otelstream.Options(tool_stall_threshold=threshold)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"tool_stall_threshold": "30"},
        {"tool_stall_threshold": True},
        {"capture_content": "yes"},
        {"trace_chunks": 1},
        {"max_content_length": 1.5},
    ],
)
def test_wrongly_typed_options(kwargs):
    """Options of the wrong type raise TypeError."""
    with pytest.raises(TypeError):
        otelstream.Options(**kwargs)


def test_max_content_length_at_least_one():
    """A max_content_length below one raises ValueError."""
    with pytest.raises(ValueError, match="max_content_length"):
        otelstream.Options(max_content_length=0)


def test_valid_options():
    """Zero and infinite stall thresholds are valid."""
    assert otelstream.Options(tool_stall_threshold=0).tool_stall_threshold == 0
    assert otelstream.Options(tool_stall_threshold=math.inf).tool_stall_threshold == math.inf


def test_other_attributes_delegate_to_the_graph():
    """Attributes other than the traced methods are the graph's own."""
    graph = _builder().compile(name="my-graph")
    traced = otelstream.instrument(graph)
    assert traced.name == "my-graph"
    assert set(traced.get_graph().nodes) == set(graph.get_graph().nodes)
    assert traced.__wrapped__ is graph
    assert "my-graph" in repr(traced) or "otelstream.instrument" in repr(traced)


def test_instrument_leaves_the_graph_untouched(tracer_provider, span_exporter):
    """instrument() returns a traced view; the original graph stays untraced."""
    graph = linear_graph("a")
    traced = otelstream.instrument(graph, tracer_provider=tracer_provider)
    assert graph.invoke({"items": []}) == traced.invoke({"items": []})
    names_ = [s.name for s in span_exporter.get_finished_spans()]
    assert names_.count("a") == 1


def test_invoke_returns_the_graph_result(tracer_provider):
    """invoke returns exactly what the bare graph returns."""
    graph = chat_graph(FakeStreamingChatModel(responses=[final("same")]))
    traced = otelstream.instrument(graph, tracer_provider=tracer_provider)
    assert traced.invoke(USER)["messages"][-1].content == "same"


def test_default_providers_are_global():
    """Without providers, instrument() uses the global (no-op by default) ones and still runs."""
    traced = otelstream.instrument(linear_graph("a"))
    assert traced.invoke({"items": []}) == {"items": ["a"]}


def test_instrument_dispatches_a_remote_graph() -> None:
    """A RemoteGraph is traced from its stream, by the remote package, without any request."""
    traced = otelstream.instrument(RemoteGraph("agent", url="http://127.0.0.1:9"))
    assert isinstance(traced, InstrumentedRemoteGraph)


def test_cli_hands_sidecar_arguments_to_the_sidecar(capsys) -> None:
    """`otelstream sidecar --help` is the sidecar's own help, listed in the main help too."""
    with pytest.raises(SystemExit) as exit_info:
        cli_main(["sidecar", "--help"])
    assert exit_info.value.code == 0
    assert "otelstream sidecar" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        cli_main(["--help"])
    assert "sidecar" in capsys.readouterr().out
