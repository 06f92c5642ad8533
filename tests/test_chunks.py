"""Chunk events on chat spans, and the ChunkWindows that bound them."""

from __future__ import annotations

import pytest
from helpers import USER, by_op, chat_graph, events, final

import otelstream
from otelstream import names
from otelstream.record.chunks import ChunkWindows
from otelstream.testing import FakeStreamingChatModel

LONG = " ".join(f"word{i}" for i in range(1000))


def _llm_chunks(chunks: list[tuple[str, object]]) -> list[object]:
    return [
        msg
        for mode, (msg, meta) in ((m, p) for m, p in chunks if m == "messages")  # type: ignore[misc]
        if "ls_provider" in meta  # type: ignore[operator]
    ]


def _check_windows(chat: object, caller_count: int) -> None:
    evs = events(chat, names.EVENT_CHUNK)  # type: ignore[arg-type]
    assert chat.dropped_events == 0  # type: ignore[attr-defined]
    assert len(evs) < 128
    total = chat.attributes[names.OTELSTREAM_CHUNK_COUNT_TOTAL]  # type: ignore[attr-defined]
    assert total == caller_count
    assert sum(e.attributes[names.OTELSTREAM_CHUNK_COUNT] for e in evs) == total
    assert evs[0].attributes[names.OTELSTREAM_CHUNK_INDEX] == 0
    assert evs[0].attributes[names.OTELSTREAM_CHUNK_COUNT] == 1
    expected = 0
    for e in evs:
        assert e.attributes[names.OTELSTREAM_CHUNK_INDEX] == expected
        expected += e.attributes[names.OTELSTREAM_CHUNK_COUNT]
    stamps = [e.timestamp for e in evs]
    assert stamps == sorted(stamps)


def test_long_answer_chunk_events_stay_within_budget(tracer_provider, spans):
    """A 1,000-word answer keeps every chunk counted in fewer than 128 events, none dropped."""
    model = FakeStreamingChatModel(responses=[final(LONG)])
    traced = otelstream.instrument(chat_graph(model), tracer_provider=tracer_provider)
    chunks = list(traced.stream(USER, stream_mode=["messages", "updates"]))
    (chat,) = by_op(spans(), "chat")
    assert len(_llm_chunks(chunks)) > 1000
    _check_windows(chat, len(_llm_chunks(chunks)))


async def test_long_answer_chunk_events_stay_within_budget_async(tracer_provider, spans):
    """Async: a 1,000-word answer's chunk events count every chunk the caller received."""
    model = FakeStreamingChatModel(responses=[final(LONG)])
    traced = otelstream.instrument(chat_graph(model), tracer_provider=tracer_provider)
    chunks = [c async for c in traced.astream(USER, stream_mode=["messages", "updates"])]
    (chat,) = by_op(spans(), "chat")
    _check_windows(chat, len(_llm_chunks(chunks)))


@pytest.mark.parametrize(("requested", "expected_at_most"), [(8, 8), (32, 32), (500, 120)])
def test_chunk_events_option_bounds_the_events(tracer_provider, spans, requested, expected_at_most):
    """Options.chunk_events caps the chunk events of a call, never past the SDK's event limit."""
    model = FakeStreamingChatModel(responses=[final(LONG)])
    traced = otelstream.instrument(
        chat_graph(model),
        tracer_provider=tracer_provider,
        options=otelstream.Options(chunk_events=requested),
    )
    chunks = list(traced.stream(USER, stream_mode=["messages", "updates"]))
    (chat,) = by_op(spans(), "chat")
    _check_windows(chat, len(_llm_chunks(chunks)))
    count = len(events(chat, names.EVENT_CHUNK))
    assert expected_at_most // 2 <= count <= expected_at_most


@pytest.mark.parametrize("value", [1, 0, -3])
def test_chunk_events_option_needs_two_events(value):
    """Fewer than two chunk events cannot keep the first chunk apart: a clear ValueError."""
    with pytest.raises(ValueError, match="chunk_events must be at least 2"):
        otelstream.Options(chunk_events=value)


def test_short_answer_one_event_per_chunk(tracer_provider, spans):
    """A short answer has one chunk event per chunk and no chunk text without capture."""
    model = FakeStreamingChatModel(responses=[final("alpha beta gamma")])
    traced = otelstream.instrument(chat_graph(model), tracer_provider=tracer_provider)
    chunks = list(traced.stream(USER, stream_mode=["messages"]))
    (chat,) = by_op(spans(), "chat")
    evs = events(chat, names.EVENT_CHUNK)
    assert len(evs) == len(_llm_chunks(chunks)) == 4
    assert all(e.attributes[names.OTELSTREAM_CHUNK_COUNT] == 1 for e in evs)
    assert all(names.OTELSTREAM_CHUNK_TEXT not in e.attributes for e in evs)


def test_chunk_text_only_with_capture(tracer_provider, spans):
    """With capture on, chunk events carry their text and the texts join back to the answer."""
    model = FakeStreamingChatModel(responses=[final(LONG)])
    traced = otelstream.instrument(
        chat_graph(model),
        tracer_provider=tracer_provider,
        options=otelstream.Options(capture_content=True, max_content_length=100_000),
    )
    traced.invoke(USER)
    (chat,) = by_op(spans(), "chat")
    evs = events(chat, names.EVENT_CHUNK)
    assert evs[0].attributes[names.OTELSTREAM_CHUNK_TEXT] == "word0 "
    assert "".join(e.attributes[names.OTELSTREAM_CHUNK_TEXT] for e in evs) == LONG


def test_chunk_events_are_timed_by_the_model(tracer_provider, spans):
    """Chunk events are stamped when chunks arrive: gaps follow the model's chunk delay."""
    model = FakeStreamingChatModel(responses=[final("a b c")], chunk_delay=0.05)
    traced = otelstream.instrument(chat_graph(model), tracer_provider=tracer_provider)
    traced.invoke(USER)
    (chat,) = by_op(spans(), "chat")
    stamps = [e.timestamp for e in events(chat, names.EVENT_CHUNK)]
    assert all(b - a >= 0.04e9 for a, b in zip(stamps, stamps[1:]))
    assert chat.attributes[names.OTELSTREAM_CHUNK_GAP_MAX] >= 0.04
    assert chat.attributes[names.OTELSTREAM_CHUNK_GAP_MEAN] >= 0.04


# ---- ChunkWindows ---------------------------------------------------------------------------


def _fill(budget: int, n: int) -> ChunkWindows:
    windows = ChunkWindows(budget)
    for i in range(n):
        windows.add(1_000 + i * 10)
    return windows


@pytest.mark.parametrize("n", [0, 1, 2, 120, 121, 10_000, 1_000_000])
def test_windows_counts_add_up_within_budget(n):
    """However many chunks, window counts add up to all of them and never exceed the budget."""
    budget = 120
    windows = _fill(budget, n)
    got = windows.windows()
    assert windows.count == n
    assert sum(count for _, count, _ in got) == n
    assert len(got) <= budget
    expected = 0
    for start, count, ts in got:
        assert start == expected
        assert count >= 1
        assert ts == 1_000 + start * 10
        expected += count
    if n:
        assert got[0] == (0, 1, 1_000)
    else:
        assert got == []


def test_windows_one_per_chunk_up_to_budget():
    """Up to the budget, each chunk has its own window."""
    got = _fill(8, 8).windows()
    assert [(s, c) for s, c, _ in got] == [(i, 1) for i in range(8)]


def test_windows_gap_statistics():
    """Mean and max gaps come from the chunk times; a single chunk has no gap."""
    windows = ChunkWindows(4)
    assert windows.mean_gap_ns == 0.0
    for t in (0, 10, 40, 50):
        windows.add(t)
    assert windows.max_gap_ns == 30
    assert windows.mean_gap_ns == pytest.approx(50 / 3)


@pytest.mark.parametrize("budget", [0, 1])
def test_windows_budget_too_small(budget):
    """A budget below two windows is refused with a ValueError."""
    with pytest.raises(ValueError, match="at least 2"):
        ChunkWindows(budget)


def test_windows_smallest_budget_keeps_first_chunk_alone():
    """With a budget of two, the first chunk stays alone and the other window holds the rest."""
    got = _fill(2, 1000).windows()
    assert len(got) <= 2
    assert got[0][:2] == (0, 1)
    assert sum(c for _, c, _ in got) == 1000
