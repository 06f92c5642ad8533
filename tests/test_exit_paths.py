"""Every way out of a traced stream ends every span exactly once and leaks no context."""

from __future__ import annotations

import asyncio
import gc
from typing import TYPE_CHECKING, Any

import pytest
from helpers import (
    USER,
    CountingProcessor,
    FailingStartProcessor,
    by_op,
    chat_graph,
    final,
    run_span,
    run_spans,
)
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import otelstream
from otelstream import _internal, names
from otelstream.testing import FakeStreamingChatModel

if TYPE_CHECKING:
    from collections.abc import Iterator

ANSWER = "one two three four five six seven eight"


@pytest.fixture
def counter(tracer_provider: TracerProvider) -> CountingProcessor:
    processor = CountingProcessor()
    tracer_provider.add_span_processor(processor)
    return processor


def _slow_model(**kwargs: Any) -> FakeStreamingChatModel:
    return FakeStreamingChatModel(responses=[final(ANSWER)], chunk_delay=0.01, **kwargs)


def _traced(tracer_provider: TracerProvider, **kwargs: Any) -> Any:
    return otelstream.instrument(chat_graph(_slow_model(**kwargs)), tracer_provider=tracer_provider)


def _assert_all_ended(counter: CountingProcessor, spans: Any, outcome: str) -> None:
    assert counter.open == 0, (counter.started, counter.ended)
    assert counter.started
    run = run_span(spans())
    assert run.attributes[names.OTELSTREAM_OUTCOME] == outcome
    if outcome == "cancelled":
        errored = [
            (s.name, (s.attributes or {}).get(names.ERROR_TYPE))
            for s in spans()
            if not s.status.is_ok
        ]
        assert errored == []


def _not_ours(span: trace.Span, own: trace.Span = trace.INVALID_SPAN) -> None:
    assert span is own


def test_exhausted(tracer_provider, counter, spans):
    """A stream read to the end ends every span with outcome completed."""
    traced = _traced(tracer_provider)
    for _ in traced.stream(USER, stream_mode="messages"):
        _not_ours(trace.get_current_span())
    _assert_all_ended(counter, spans, "completed")


async def test_exhausted_async(tracer_provider, counter, spans):
    """Async: a stream read to the end ends every span with outcome completed."""
    traced = _traced(tracer_provider)
    async for _ in traced.astream(USER, stream_mode="messages"):
        _not_ours(trace.get_current_span())
    _assert_all_ended(counter, spans, "completed")


def test_raised(tracer_provider, counter, spans):
    """A model error propagates unchanged and every span ends, the run with outcome error."""
    boom = RuntimeError("model down")
    traced = _traced(tracer_provider, error=boom)
    with pytest.raises(RuntimeError) as info:
        list(traced.stream(USER, stream_mode="messages"))
    assert info.value is boom
    _assert_all_ended(counter, spans, "error")


async def test_raised_async(tracer_provider, counter, spans):
    """Async: a model error propagates unchanged and every span ends with outcome error."""
    boom = RuntimeError("model down")
    traced = _traced(tracer_provider, error=boom)
    with pytest.raises(RuntimeError) as info:
        async for _ in traced.astream(USER, stream_mode="messages"):
            pass
    assert info.value is boom
    _assert_all_ended(counter, spans, "error")


def test_break_then_del(tracer_provider, counter, spans):
    """Breaking out of the loop and dropping the generator ends every span as cancelled."""
    traced = _traced(tracer_provider)
    stream = traced.stream(USER, stream_mode="messages")
    for _ in stream:
        _not_ours(trace.get_current_span())
        break
    del stream
    gc.collect()
    _assert_all_ended(counter, spans, "cancelled")


async def test_break_then_del_async(tracer_provider, counter, spans):
    """Async: breaking out and dropping the generator ends every span once it is finalized."""
    traced = _traced(tracer_provider)
    stream = traced.astream(USER, stream_mode="messages")
    async for _ in stream:
        break
    del stream
    gc.collect()
    for _ in range(50):
        if counter.open == 0 and counter.started:
            break
        await asyncio.sleep(0.02)
    _assert_all_ended(counter, spans, "cancelled")


def test_close_twice(tracer_provider, counter, spans):
    """close() mid-stream ends the run as cancelled; a second close() changes nothing."""
    traced = _traced(tracer_provider)
    stream = traced.stream(USER, stream_mode="messages")
    next(stream)
    stream.close()
    _assert_all_ended(counter, spans, "cancelled")
    count = len(spans())
    stream.close()
    assert len(spans()) == count
    with pytest.raises(StopIteration):
        next(stream)


def test_close_before_start(tracer_provider, counter, spans):
    """A stream closed before its first chunk records nothing and leaves nothing open."""
    traced = _traced(tracer_provider)
    stream = traced.stream(USER, stream_mode="messages")
    stream.close()
    assert counter.open == 0
    assert not run_spans(spans())


async def test_aclose_twice(tracer_provider, counter, spans):
    """aclose() mid-stream ends the run as cancelled; a second aclose() changes nothing."""
    traced = _traced(tracer_provider)
    stream = traced.astream(USER, stream_mode="messages")
    await anext(stream)
    await stream.aclose()
    _assert_all_ended(counter, spans, "cancelled")
    count = len(spans())
    await stream.aclose()
    assert len(spans()) == count


async def test_task_cancelled_while_model_streams(tracer_provider, counter, spans):
    """Cancelling the consuming task mid-answer ends every span, the run cancelled, none ERROR."""
    traced = otelstream.instrument(
        chat_graph(FakeStreamingChatModel(responses=[final(ANSWER)], chunk_delay=0.2)),
        tracer_provider=tracer_provider,
    )
    started = asyncio.Event()

    async def consume() -> None:
        async for _ in traced.astream(USER, stream_mode="messages"):
            started.set()

    task = asyncio.create_task(consume())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    _assert_all_ended(counter, spans, "cancelled")
    chat = by_op(spans(), "chat")[0]
    assert names.ERROR_TYPE not in chat.attributes


def test_callers_span_stays_current_between_chunks(tracer_provider, counter, spans):
    """Between chunks, the current span is the caller's own, never an otelstream span."""
    tracer = tracer_provider.get_tracer("app")
    traced = _traced(tracer_provider)
    with tracer.start_as_current_span("caller") as caller:
        for _ in traced.stream(USER, stream_mode=["messages", "updates"]):
            _not_ours(trace.get_current_span(), caller)
        _not_ours(trace.get_current_span(), caller)
    _not_ours(trace.get_current_span())


async def test_callers_span_stays_current_between_chunks_async(tracer_provider, counter, spans):
    """Async: between chunks, the current span is the caller's own."""
    tracer = tracer_provider.get_tracer("app")
    traced = _traced(tracer_provider)
    with tracer.start_as_current_span("caller") as caller:
        async for _ in traced.astream(USER, stream_mode=["messages", "updates"]):
            _not_ours(trace.get_current_span(), caller)


@pytest.fixture
def broken_provider() -> Iterator[TracerProvider]:
    provider = TracerProvider()
    provider.add_span_processor(FailingStartProcessor())
    yield provider
    provider.shutdown()


def _bare_chunks(stream: Any) -> list[Any]:
    return [
        (mode, getattr(p[0], "content", None)) if mode == "messages" else (mode, p)
        for mode, p in stream
    ]


def test_telemetry_failure_never_breaks_the_stream(broken_provider):
    """A tracer whose span processor raises still yields exactly the bare graph's chunks."""
    _internal.set_strict(False)
    graph = chat_graph(FakeStreamingChatModel(responses=[final(ANSWER)]))
    bare = _bare_chunks(graph.stream(USER, stream_mode=["messages", "custom"]))
    traced = otelstream.instrument(graph, tracer_provider=broken_provider)
    got = _bare_chunks(traced.stream(USER, stream_mode=["messages", "custom"]))
    assert got == bare
    assert traced.invoke(USER)["messages"][-1].content == ANSWER


async def test_telemetry_failure_never_breaks_the_stream_async(broken_provider):
    """Async: a tracer whose span processor raises still yields the bare graph's chunks."""
    _internal.set_strict(False)
    graph = chat_graph(FakeStreamingChatModel(responses=[final(ANSWER)]))
    bare = [c.content async for c, _ in graph.astream(USER, stream_mode="messages")]
    traced = otelstream.instrument(graph, tracer_provider=broken_provider)
    got = [c.content async for c, _ in traced.astream(USER, stream_mode="messages")]
    assert got == bare


def test_telemetry_failure_keeps_the_apps_exception(broken_provider):
    """With telemetry failing, the app's own exception still reaches the caller unchanged."""
    _internal.set_strict(False)
    boom = KeyError("app")
    traced = otelstream.instrument(
        chat_graph(FakeStreamingChatModel(error=boom)), tracer_provider=broken_provider
    )
    with pytest.raises(KeyError) as info:
        traced.invoke(USER)
    assert info.value is boom


def test_exporter_is_shared_by_exhausted_and_closed_runs(tracer_provider, counter, spans):
    """Two runs, one closed early and one exhausted, leave nothing open between them."""
    traced = _traced(tracer_provider)
    first = traced.stream(USER, stream_mode="messages")
    next(first)
    list(traced.stream(USER, stream_mode="messages"))
    first.close()
    assert counter.open == 0
    outcomes = sorted(r.attributes[names.OTELSTREAM_OUTCOME] for r in run_spans(spans()))
    assert outcomes == ["cancelled", "completed"]


_ = InMemorySpanExporter, SimpleSpanProcessor
