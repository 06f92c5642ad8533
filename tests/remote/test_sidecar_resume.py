"""The sidecar on a real server with no otelstream inside: a run that resumes a thread, or travels
back on it, links to the sidecar's span of the run that wrote the checkpoint it started from,
with nothing kept per thread (the run span ids are derived from the server's run ids)."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

from langgraph_sdk import get_client, get_sync_client

from otelstream import names
from otelstream.feeds.stream import Tracing
from otelstream.remote._discover import Found
from otelstream.remote._follow import Follower
from otelstream.remote._resume import run_span_ids
from otelstream.remote.sidecar import Sidecar, create_run_kwargs

ASK = {"messages": [{"role": "user", "content": "ask"}]}


def _wait(predicate: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _run_span(exporter: Any, run_id: str) -> Any:
    spans = [
        s
        for s in exporter.get_finished_spans()
        if (s.attributes or {}).get(names.OTELSTREAM_REMOTE_RUN_ID) == run_id
    ]
    return spans[0] if len(spans) == 1 else None


def _traced(exporter: Any, run_id: str) -> Any:
    _wait(lambda: _run_span(exporter, run_id) is not None)
    return _run_span(exporter, run_id)


def test_sidecar_links_resume_and_time_travel(
    server_url: str, tracer_provider: Any, span_exporter: Any
) -> None:
    """Resume (README modes) and time travel (server default modes) each link to the sidecar's
    span of the paused run, which ends ``interrupted`` with ``gen_ai.agent.paused``."""
    client = get_sync_client(url=server_url)
    sidecar = Sidecar(server_url, poll=0.2, tracer_provider=tracer_provider)
    thread = threading.Thread(target=asyncio.run, args=(sidecar.run(),), daemon=True)
    thread.start()
    try:
        _wait(lambda: sidecar.last_poll is not None)
        thread_id = str(client.threads.create()["thread_id"])
        paused_run = client.runs.create(thread_id, "agent", input=ASK, **create_run_kwargs())
        paused = _traced(span_exporter, paused_run["run_id"])
        history = client.threads.get_history(thread_id, limit=10)
        paused_at = history[0]["checkpoint"]["checkpoint_id"]
        (older,) = [h for h in history if h["next"] == ["agent"]]
        resume_run = client.runs.create(
            thread_id, "agent", command={"resume": "yes"}, **create_run_kwargs()
        )
        resumed = _traced(span_exporter, resume_run["run_id"])
        older_id = older["checkpoint"]["checkpoint_id"]
        travel_run = client.runs.create(thread_id, "agent", input=None, checkpoint_id=older_id)
        travelled = _traced(span_exporter, travel_run["run_id"])
    finally:
        sidecar.stop()
        thread.join(timeout=20)
        client.http.client.close()
    assert paused.attributes[names.OTELSTREAM_OUTCOME] == names.OUTCOME_INTERRUPTED
    (pause,) = [e for e in paused.events if e.name == names.EVENT_PAUSED]
    assert pause.attributes[names.LANGGRAPH_CHECKPOINT_ID] == paused_at
    # The paused run's span ids are the ones its run id gives, so any process can name them.
    assert (paused.context.trace_id, paused.context.span_id) == run_span_ids(
        paused_run["run_id"], None
    )
    (link,) = resumed.links
    assert (link.context.trace_id, link.context.span_id) == (
        paused.context.trace_id,
        paused.context.span_id,
    )
    assert dict(link.attributes) == {
        names.OTELSTREAM_LINK_REASON: names.LINK_REASON_RESUME,
        names.LANGGRAPH_CHECKPOINT_ID: paused_at,
    }
    (event,) = [e for e in resumed.events if e.name == names.EVENT_RESUMED]
    assert event.timestamp == resumed.start_time  # at the run's start, though found at its end
    assert event.attributes[names.LANGGRAPH_CHECKPOINT_ID] == paused_at
    (link,) = travelled.links
    assert link.context.span_id == paused.context.span_id
    assert dict(link.attributes) == {
        names.OTELSTREAM_LINK_REASON: names.LINK_REASON_TIME_TRAVEL,
        names.LANGGRAPH_CHECKPOINT_ID: older_id,
    }
    assert not [e for e in travelled.events if e.name == names.EVENT_RESUMED]


def test_a_run_with_a_caller_keeps_its_trace_and_is_still_found(
    server_url: str, tracer_provider: Any, span_exporter: Any
) -> None:
    """A paused run that joined its caller's trace (``traceparent`` in its metadata) is linked
    in that trace: the checkpoint's metadata carries the caller's ``traceparent`` too."""
    trace_id, parent_id = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    client = get_sync_client(url=server_url)
    sidecar = Sidecar(server_url, poll=0.2, tracer_provider=tracer_provider)
    thread = threading.Thread(target=asyncio.run, args=(sidecar.run(),), daemon=True)
    thread.start()
    try:
        _wait(lambda: sidecar.last_poll is not None)
        thread_id = str(client.threads.create()["thread_id"])
        paused_run = client.runs.create(
            thread_id,
            "agent",
            input=ASK,
            metadata={"traceparent": f"00-{trace_id}-{parent_id}-01"},
            **create_run_kwargs(),
        )
        paused = _traced(span_exporter, paused_run["run_id"])
        resume_run = client.runs.create(
            thread_id, "agent", command={"resume": "no"}, **create_run_kwargs()
        )
        resumed = _traced(span_exporter, resume_run["run_id"])
    finally:
        sidecar.stop()
        thread.join(timeout=20)
        client.http.client.close()
    assert f"{paused.context.trace_id:032x}" == trace_id
    (link,) = resumed.links
    assert (link.context.trace_id, link.context.span_id) == (
        paused.context.trace_id,
        paused.context.span_id,
    )
    assert resumed.context.trace_id != paused.context.trace_id


async def _follow(server_url: str, tracer_provider: Any, thread_id: str, run: Any) -> list[str]:
    """Follow one run with a ``Follower`` of its own; the requests it sent."""
    sent: list[str] = []

    async def hook(request: Any) -> None:
        sent.append(f"{request.method} {request.url.path}")

    client = get_client(url=server_url)
    client.http.client.event_hooks["request"].append(hook)
    try:
        follower = Follower(
            client,
            Tracing(tracer_provider, None, None),
            streams=asyncio.Semaphore(4),
            requests=asyncio.Semaphore(4),
            rejoin_delay=0.1,
            on_event=lambda mode, event_id: None,
            on_reconnect=lambda: None,
        )
        await follower.trace(Found(thread_id, run, {}), "agent")
    finally:
        await client.aclose()
    return sent


async def test_extra_requests_per_run(
    server_url: str, tracer_provider: Any, span_exporter: Any
) -> None:
    """``threads.get_history`` requests per run: linking adds two to a resume with the README's
    modes (the run's first checkpoint, then the one before it), one to a resume with the
    server's default modes (its history is read for the task spans anyway), one to a time
    travel, one to a run that paused (where it paused) unless its history is read anyway, and
    none to any other run."""
    client = get_client(url=server_url)
    try:
        sent: dict[str, list[str]] = {}
        for label, kwargs in (("readme", create_run_kwargs()), ("default", {})):
            thread_id = str((await client.threads.create())["thread_id"])
            first = await client.runs.create(thread_id, "agent", input=ASK, **kwargs)
            await client.runs.join(thread_id, first["run_id"])
            first = await client.runs.get(thread_id, first["run_id"])
            sent[f"{label} new"] = await _follow(server_url, tracer_provider, thread_id, first)
            history = await client.threads.get_history(thread_id, limit=10)
            (older,) = [h for h in history if h["next"] == ["agent"]]
            resume = await client.runs.create(
                thread_id, "agent", command={"resume": "yes"}, **kwargs
            )
            await client.runs.join(thread_id, resume["run_id"])
            resume = await client.runs.get(thread_id, resume["run_id"])
            sent[f"{label} resume"] = await _follow(server_url, tracer_provider, thread_id, resume)
            travel = await client.runs.create(
                thread_id,
                "agent",
                input=None,
                checkpoint_id=older["checkpoint"]["checkpoint_id"],
                **kwargs,
            )
            await client.runs.join(thread_id, travel["run_id"])
            travel = await client.runs.get(thread_id, travel["run_id"])
            sent[f"{label} travel"] = await _follow(server_url, tracer_provider, thread_id, travel)
    finally:
        await client.aclose()
    counts = {label: sum("/history" in r for r in reqs) for label, reqs in sent.items()}
    assert counts == {
        "readme new": 1,  # replayed with tasks, no history needed; it paused: where
        "readme resume": 2,
        "readme travel": 2,  # the checkpoint it started from; it asks again, so paused: where
        "default new": 1,  # the task spans are rebuilt from the history
        "default resume": 2,  # the rebuild's history, and the checkpoint before
        "default travel": 2,
    }
