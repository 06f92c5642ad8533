"""LangGraph's v3 streaming (``stream_events(version="v3")``) and LangChain's ``astream_events``
are traced in full through ``instrument()`` and the instrumentor, and pass through unchanged."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from helpers import USER, by_op, chat_graph, events, run_span
from langchain_core.messages import AIMessage

import otelstream
from otelstream import OtelStreamInstrumentor, names
from otelstream.testing import FakeStreamingChatModel

if TYPE_CHECKING:
    from collections.abc import Iterator

TEXT = "one two three four"


def _model() -> FakeStreamingChatModel:
    # A model that leaves token reporting to langchain-core: under v3 its chunks arrive only as
    # message events (on_stream_event).
    return FakeStreamingChatModel(responses=[AIMessage(content=TEXT)])


def _assert_chat_fully_traced(spans: list[Any]) -> None:
    (chat,) = by_op(spans, "chat")
    assert chat.attributes[names.OTELSTREAM_CHUNK_COUNT_TOTAL] >= 4
    assert chat.attributes[names.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] > 0
    assert events(chat, names.EVENT_CHUNK)
    run = run_span(spans)
    assert run.attributes[names.OTELSTREAM_OUTCOME] == "completed"
    assert run.attributes[names.OTELSTREAM_TIME_TO_FIRST_TOKEN] > 0


@pytest.fixture
def instrumented(tracer_provider) -> Iterator[None]:
    instrumentor = OtelStreamInstrumentor()
    instrumentor.instrument(tracer_provider=tracer_provider)
    try:
        yield
    finally:
        instrumentor.uninstrument()


def test_v3_through_instrument_has_chunks_and_ttft(tracer_provider, spans):
    """instrument(graph).stream_events(v3): one run, a chat span with chunk events and TTFT."""
    traced = otelstream.instrument(chat_graph(_model()), tracer_provider=tracer_provider)
    run = traced.stream_events(USER, version="v3")
    list(run)
    assert "one two three four" in str(run.output["messages"][-1].content)
    _assert_chat_fully_traced(spans())


async def test_v3_async_through_instrument(tracer_provider, spans):
    """The async v3 run stream is traced the same way."""
    traced = otelstream.instrument(chat_graph(_model()), tracer_provider=tracer_provider)
    run = await traced.astream_events(USER, version="v3")
    [e async for e in run]
    _assert_chat_fully_traced(spans())


def test_v3_under_the_instrumentor(instrumented, spans):
    """Under the instrumentor, a bare graph's v3 run is one traced run with chunks and TTFT."""
    run = chat_graph(_model()).stream_events(USER, version="v3")
    list(run)
    _assert_chat_fully_traced(spans())


async def test_v3_async_under_the_instrumentor(instrumented, spans):
    """The same for the async v3 run stream."""
    run = await chat_graph(_model()).astream_events(USER, version="v3")
    [e async for e in run]
    _assert_chat_fully_traced(spans())


def _strip(event: dict[str, Any]) -> Any:
    """A v3 protocol event without what differs between any two runs (seq is kept)."""
    params = dict(event["params"])
    params.pop("timestamp", None)
    return (event.get("seq"), event["method"], tuple(params["namespace"]), repr(params["data"]))


def _normalise(text: str) -> str:
    import re  # noqa: PLC0415

    # Run ids, message ids and task ids are fresh for every run.
    return re.sub(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "<id>", text)


def test_v3_events_and_output_are_the_bare_ones(tracer_provider):
    """The v3 events the caller iterates and the run's output equal the bare graph's."""
    bare = chat_graph(_model()).stream_events(USER, version="v3")
    bare_events = [_normalise(repr(_strip(e))) for e in bare]
    traced = otelstream.instrument(chat_graph(_model()), tracer_provider=tracer_provider)
    run = traced.stream_events(USER, version="v3")
    got = [_normalise(repr(_strip(e))) for e in run]
    assert got == bare_events
    assert _normalise(repr(run.output)) == _normalise(repr(bare.output))
    assert run.interrupted == bare.interrupted


async def test_astream_events_v2_are_the_bare_ones(tracer_provider, spans):
    """LangChain's astream_events(v2) yields the bare graph's events, and the run is traced."""

    def shape(e: dict[str, Any]) -> tuple[str, str]:
        return e["event"], e["name"]

    bare = [shape(e) async for e in chat_graph(_model()).astream_events(USER, version="v2")]
    traced = otelstream.instrument(chat_graph(_model()), tracer_provider=tracer_provider)
    got = [shape(e) async for e in traced.astream_events(USER, version="v2")]
    assert got == bare
    assert run_span(spans()).attributes[names.OTELSTREAM_OUTCOME] == "completed"


def _with_transformer(tracer_provider: Any) -> Any:
    graph = chat_graph(_model())
    return graph.copy(
        update={"stream_transformers": [otelstream.transformer(tracer_provider=tracer_provider)]}
    )


def test_v3_with_transformer_and_instrument_is_traced_once(tracer_provider, spans):
    """A graph carrying otelstream's transformer, traced through instrument(): one run span."""
    traced = otelstream.instrument(
        _with_transformer(tracer_provider), tracer_provider=tracer_provider
    )
    list(traced.stream_events(USER, version="v3"))
    _assert_chat_fully_traced(spans())


async def test_async_v3_with_transformer_and_instrument_is_traced_once(tracer_provider, spans):
    """The same for the async run stream (its transformers are built when it is awaited)."""
    traced = otelstream.instrument(
        _with_transformer(tracer_provider), tracer_provider=tracer_provider
    )
    run = await traced.astream_events(USER, version="v3")
    [e async for e in run]
    _assert_chat_fully_traced(spans())


def test_v3_with_transformer_under_the_instrumentor_is_traced_once(
    instrumented, tracer_provider, spans
):
    """Under the instrumentor, a graph carrying the transformer is still one run span."""
    list(_with_transformer(tracer_provider).stream_events(USER, version="v3"))
    _assert_chat_fully_traced(spans())


async def test_async_v3_with_transformer_under_the_instrumentor_is_traced_once(
    instrumented, tracer_provider, spans
):
    """The same for the async run stream under the instrumentor."""
    run = await _with_transformer(tracer_provider).astream_events(USER, version="v3")
    [e async for e in run]
    _assert_chat_fully_traced(spans())
