"""Discovery: every run created on a LangGraph server since the sidecar's last look.

A LangGraph server has no search across all runs, so one look pages through the threads by
``updated_at``, newest first (``threads.search``), down to the cursor less an overlap, and lists
the runs of each thread that changed since it was last read (``runs.list``). Creating a run and
ending it both bump its thread's ``updated_at``, so every run shows in some look, whatever its
status by then: pending, running or long over. The overlap covers a thread whose update becomes
visible after a later one's (a slow transaction on a database-backed server); the ``updated_at``
each thread was last read at keeps the overlap from costing a ``runs.list`` per look.

The first look has no cursor: it takes the runs in flight (busy threads) and anchors the cursor at
the server's latest update, so runs that ended before the sidecar started are not its business
(unless its state file says where it stopped). A run that ended is taken only if it was created
after that anchor.

One run no look can see: a stateless run (``thread_id=None``) whose thread the server creates and
deletes between two looks. A thread seen busy whose runs are gone when listed is counted by the
caller as an untraced run.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

_THREAD_FIELDS = ["thread_id", "status", "updated_at", "metadata"]
_ACTIVE = frozenset({"pending", "running"})
_RUN_PAGE = 20
_MAX_RUN_PAGES = 50
_KEEP_THREADS = 10_000
_RECHECK_FOR = 30.0
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def parse_time(value: Any) -> datetime | None:
    """A server timestamp (ISO 8601, ``Z`` or an offset) as an aware datetime, else ``None``."""
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


@dataclass(frozen=True)
class Found:
    """A run discovery found and no one follows yet."""

    thread_id: str
    run: dict[str, Any]
    thread_metadata: dict[str, Any]
    """The thread's metadata: its ``graph_id`` names the graph where the run's does not."""


@dataclass(frozen=True)
class Look:
    """What one look found: the new runs (already handed to ``on_found``), and the busy threads
    deleted before their runs could be read."""

    found: list[Found]
    vanished: list[str]


class Discovery:
    """Finds the runs created since the last look.

    Args:
        client: A ``langgraph_sdk`` async client.
        known: Whether a run id is followed, finished or ignored already.
        on_found: Called with each new run as soon as its thread is read (it must make the run
            known).
        requests: Bounds the short requests in flight at once.
        since: Where a previous sidecar stopped (its cursor), or ``None`` for a first look.
        overlap: Seconds each look reaches back before the cursor.
        page: Threads per ``threads.search`` page.
    """

    def __init__(
        self,
        client: Any,
        *,
        known: Callable[[str], bool],
        on_found: Callable[[Found], None],
        requests: asyncio.Semaphore,
        since: datetime | None = None,
        overlap: float = 10.0,
        page: int = 500,
    ) -> None:
        self._client = client
        self._known = known
        self._on_found = on_found
        self._requests = requests
        self._overlap = timedelta(seconds=overlap)
        self._page = page
        self._select: list[str] | None = list(_THREAD_FIELDS)
        self.cursor = since
        """The latest ``updated_at`` every thread up to which has been read."""
        self.origin = since - self._overlap if since is not None else None
        """Runs that ended and were created before this are not the sidecar's business."""
        self._marks: dict[str, datetime] = {}  # thread id -> updated_at when its runs were read
        self._with_runs: dict[str, None] = {}  # threads some run of which was found (bounded)
        # Busy threads with no run in flight listed yet: thread id -> (first seen, thread).
        self._recheck: dict[str, tuple[float, dict[str, Any]]] = {}

    async def look(self) -> Look:
        """One look: the runs created (or still running) since the last one."""
        anchor = None
        if self.cursor is None:
            threads, anchor = await self._first_threads()
            # No thread at all: every run from now on is new.
            self.origin = anchor if anchor is not None else _EPOCH
        else:
            threads = await self._changed_threads(self.cursor - self._overlap)
        fresh = {str(t["thread_id"]) for t in threads}
        threads += [t for k, (_, t) in self._recheck.items() if k not in fresh]
        # Busy threads first (the request bound is first come, first served): a stateless run
        # exists only while it runs, and each run is handed over as soon as its thread is read.
        threads.sort(key=lambda t: t.get("status") != "busy")
        found: dict[str, Found] = {}

        async def read(thread: dict[str, Any]) -> tuple[list[dict[str, Any]] | None, int, int]:
            result = await self._runs_of(thread)
            for run in result[0] or ():
                run_id = str(run["run_id"])
                if run_id not in found and not self._known(run_id):
                    found[run_id] = Found(str(thread["thread_id"]), run, _metadata(thread))
                    self._on_found(found[run_id])
            return result

        results = await asyncio.gather(*(read(t) for t in threads))
        empty: list[str] = []
        failed: list[datetime] = []
        for thread, (result, listed, active) in zip(threads, results, strict=True):
            updated = parse_time(thread.get("updated_at"))
            if result is None:
                if updated is not None:
                    failed.append(updated)
                continue
            thread_id = str(thread["thread_id"])
            if result:
                self._with_runs[thread_id] = None
            if thread.get("status") == "busy" and not active:
                # The server marks a thread busy (or creates it, for a stateless run) before it
                # stores the run: list it again next look, whatever its updated_at.
                since, _ = self._recheck.setdefault(thread_id, (time.monotonic(), thread))
                if not listed and thread_id not in self._with_runs and thread_id not in fresh:
                    empty.append(thread_id)
                elif time.monotonic() - since > _RECHECK_FOR:
                    del self._recheck[thread_id]
                continue
            self._recheck.pop(thread_id, None)
            if updated is not None:
                self._marks[thread_id] = updated
        while len(self._with_runs) > _KEEP_THREADS:
            del self._with_runs[next(iter(self._with_runs))]
        vanished = [t for t, gone in zip(empty, await self._gone(empty), strict=True) if gone]
        for thread_id in vanished:
            self._recheck.pop(thread_id, None)
        self._advance(threads, anchor, failed)
        return Look(list(found.values()), vanished)

    async def _gone(self, thread_ids: list[str]) -> list[bool]:
        """Whether each thread is deleted (the server answers 404 for it)."""

        async def one(thread_id: str) -> bool:
            try:
                async with self._requests:
                    await self._client.threads.get(thread_id)
            except Exception as exc:
                return getattr(getattr(exc, "response", None), "status_code", None) == 404
            return False

        return list(await asyncio.gather(*(one(t) for t in thread_ids)))

    def _advance(
        self, threads: list[dict[str, Any]], anchor: datetime | None, failed: list[datetime]
    ) -> None:
        latest = [t for t in (parse_time(t.get("updated_at")) for t in threads) if t is not None]
        if anchor is not None:
            latest.append(anchor)
        if self.cursor is not None:
            latest.append(self.cursor)
        if latest:
            # A thread whose runs could not be listed holds the cursor back, so the next look
            # reads it again.
            self.cursor = min([max(latest), *failed])
        if self.cursor is not None:
            floor = self.cursor - self._overlap
            self._marks = {k: v for k, v in self._marks.items() if v >= floor}

    async def _search(self, *, limit: int | None = None, **kwargs: Any) -> list[dict[str, Any]]:
        """One ``threads.search`` page, only the fields discovery reads where the server can.

        A server older than ``select`` refuses it (422): it is dropped for good then.
        """
        limit = self._page if limit is None else limit
        async with self._requests:
            try:
                threads: list[dict[str, Any]] = await self._client.threads.search(
                    limit=limit, select=self._select, **kwargs
                )
            except Exception as exc:
                status = getattr(getattr(exc, "response", None), "status_code", None)
                if self._select is None or status != 422:
                    raise
                self._select = None
                threads = await self._client.threads.search(limit=limit, **kwargs)
        return threads

    async def _first_threads(self) -> tuple[list[dict[str, Any]], datetime | None]:
        newest = await self._search(limit=1, sort_by="updated_at", sort_order="desc")
        anchor = parse_time(newest[0].get("updated_at")) if newest else None
        busy = await self._pages(status="busy", sort_by="updated_at", sort_order="desc")
        return busy, anchor

    async def _changed_threads(self, floor: datetime) -> list[dict[str, Any]]:
        changed: dict[str, dict[str, Any]] = {}
        for thread in await self._pages(sort_by="updated_at", sort_order="desc", floor=floor):
            updated = parse_time(thread.get("updated_at"))
            thread_id = str(thread.get("thread_id"))
            if updated is None or updated < floor or self._marks.get(thread_id) == updated:
                continue
            changed[thread_id] = thread
        return list(changed.values())

    async def _pages(self, *, floor: datetime | None = None, **kwargs: Any) -> list[dict[str, Any]]:
        """Every thread of a search, newest first, down to ``floor``.

        Pages overlap by a tenth: a thread deleted between two pages shifts the later ones up, and
        the overlap keeps that from skipping the thread at a page's edge.
        """
        step = max(self._page - self._page // 10, 1)
        offset = 0
        out: list[dict[str, Any]] = []
        while True:
            page = await self._search(offset=offset, **kwargs)
            out.extend(page)
            oldest = parse_time(page[-1].get("updated_at")) if page else None
            if len(page) < self._page or (
                floor is not None and oldest is not None and oldest < floor
            ):
                return out
            offset += step

    async def _runs_of(
        self, thread: dict[str, Any]
    ) -> tuple[list[dict[str, Any]] | None, int, int]:
        """The thread's runs new to the sidecar (``None`` if they could not be listed), and how
        many runs, and how many pending or running ones, the server listed."""
        thread_id = str(thread["thread_id"])
        new: list[dict[str, Any]] = []
        listed = active = 0
        for page in range(_MAX_RUN_PAGES):
            try:
                async with self._requests:
                    runs = await self._client.runs.list(
                        thread_id, limit=_RUN_PAGE, offset=page * _RUN_PAGE
                    )
            except Exception as exc:
                if getattr(getattr(exc, "response", None), "status_code", None) == 404:
                    break  # the thread is gone, and its runs with it
                return None, listed, active
            listed += len(runs)
            active += sum(1 for r in runs if r.get("status") in _ACTIVE)
            fresh = [r for r in runs if self._wanted(r)]
            new.extend(fresh)
            # Runs come newest first: a page with an old run in it is the last one to read.
            if len(runs) < _RUN_PAGE or len(fresh) < len(runs):
                break
        return new, listed, active

    def _wanted(self, run: dict[str, Any]) -> bool:
        if self._known(str(run["run_id"])):
            return False
        if run.get("status") in _ACTIVE:
            return True
        created = parse_time(run.get("created_at"))
        return created is not None and self.origin is not None and created >= self.origin


def _metadata(thread: dict[str, Any]) -> dict[str, Any]:
    metadata = thread.get("metadata")
    return metadata if isinstance(metadata, dict) else {}
