"""Coalescing a chat call's streamed chunks into a bounded number of timed windows.

The SDK keeps a fixed number of events per span and drops the oldest beyond it, so one event per
chunk would lose the start of a long answer. Windows are kept in memory while the call streams and
written as span events when it ends, each stamped at its first chunk. Window 0 is always the first
chunk alone (time-to-first-token stays exact); the rest start one chunk wide and, whenever there are
more windows than the budget, neighbours merge pairwise and the width doubles. Per chunk this costs
a few attribute updates and one comparison; memory stays within the budget however long the stream.
"""

from __future__ import annotations


class ChunkWindows:
    """Windows over one stream of chunks: chunk index and timestamp at each window's start."""

    __slots__ = (
        "_budget",
        "_width",
        "count",
        "first_ns",
        "last_ns",
        "max_gap_ns",
        "next_window",
        "starts",
        "times",
    )

    def __init__(self, budget: int) -> None:
        if budget < 2:
            msg = f"a chunk event budget needs room for at least 2 events, not {budget}"
            raise ValueError(msg)
        self._budget = budget
        self._width = 1
        self.next_window = 0
        """Index of the chunk that opens the next window: the last window's start plus the width."""
        self.count = 0
        self.first_ns = 0
        self.last_ns = 0
        self.max_gap_ns = 0
        self.starts: list[int] = []
        self.times: list[int] = []

    def add(self, now_ns: int) -> None:
        """Record one chunk received at ``now_ns``.

        The hot path, called for every chunk; ``SpanCallbackHandler.on_llm_new_token`` has these
        lines written out, to spare a call per chunk.
        """
        n = self.count
        self.count = n + 1
        if n:
            gap = now_ns - self.last_ns
            if gap > self.max_gap_ns:  # noqa: PLR1730 - cheaper than max() on the hot path
                self.max_gap_ns = gap
            self.last_ns = now_ns
            if n >= self.next_window:
                self.open_window(n, now_ns)
        else:
            self.first_ns = self.last_ns = now_ns
            self.open_window(0, now_ns)

    def open_window(self, n: int, now_ns: int) -> None:
        """Chunk ``n``, received at ``now_ns``, opens a window (``n >= next_window``)."""
        starts = self.starts
        starts.append(n)
        self.times.append(now_ns)
        if len(starts) > self._budget:
            # Keep window 0 (the first chunk) and every other window after it: each kept window
            # now also covers the one after it, so widths double and the counts still add up.
            self.starts = starts = [0, *starts[1::2]]
            self.times = [self.times[0], *self.times[1::2]]
            self._width *= 2
        # The first chunk is a window of its own whatever the width: chunk 1 opens the next one.
        self.next_window = starts[-1] + self._width if n else 1

    def windows(self) -> list[tuple[int, int, int]]:
        """``(first chunk index, chunk count, timestamp ns)`` for each window, in order."""
        starts, times = self.starts, self.times
        bounds = [*starts[1:], self.count]
        return [
            (start, end - start, ts) for start, end, ts in zip(starts, bounds, times, strict=False)
        ]

    @property
    def mean_gap_ns(self) -> float:
        """Mean gap between consecutive chunks, 0 with fewer than two."""
        if self.count < 2:
            return 0.0
        return (self.last_ns - self.first_ns) / (self.count - 1)
