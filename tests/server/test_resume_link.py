"""Resumed runs on a real traced ``langgraph dev``, beyond ``test_resume_in_server.py``: what
the server's checkpoints carry, time travel, and a traced RemoteGraph and a sidecar watching the
same server, each linking to its own span of the paused run.

The server (``conftest.py``) traces its runs in process (``opentelemetry-instrument``); each run
below is a separate request, so a separate worker task: nothing but the checkpoints connects them.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import TYPE_CHECKING, Any

import pytest
from langgraph.pregel.remote import RemoteGraph
from langgraph.types import Command
from langgraph_sdk import get_sync_client

from otelstream import names
from otelstream.remote import instrument_remote
from otelstream.remote.sidecar import Sidecar

if TYPE_CHECKING:
    from tests.server.conftest import TracedServer
    from tests.server.otlp_receiver import OtlpReceiver, Span

GRAPH = "approval"


class Created:
    """The run id the SDK reports when the server creates a run."""

    def __init__(self) -> None:
        self.run_id = ""

    def __call__(self, meta: Any) -> None:
        self.run_id = str(meta["run_id"])


def _run(client: Any, thread_id: str, **kwargs: Any) -> str:
    created = Created()
    client.runs.wait(thread_id, GRAPH, on_run_created=created, **kwargs)
    return created.run_id


def _run_span(receiver: OtlpReceiver, run_id: str) -> Span:
    def found(spans: list[Span]) -> bool:
        return any(s.attributes.get(names.LANGGRAPH_RUN_ID) == run_id for s in spans)

    spans = receiver.wait_for(found)
    (span,) = [s for s in spans if s.attributes.get(names.LANGGRAPH_RUN_ID) == run_id]
    return span


def _ids(traceparent: Any) -> tuple[str, str]:
    """The trace and span id a ``traceparent`` names (its flags are the SDK's business)."""
    _, trace_id, span_id, _ = str(traceparent).split("-")
    return trace_id, span_id


@pytest.fixture(scope="module")
def runs(traced_server: TracedServer) -> dict[str, Any]:
    """One thread: a run that pauses, the run that resumes it, and a run that travels back to
    the checkpoint the first run saved before ``ask``."""
    with get_sync_client(url=traced_server.url) as client:
        thread_id = str(client.threads.create()["thread_id"])
        paused = _run(client, thread_id, input={"request": "refund"})
        history = client.threads.get_history(thread_id, limit=10)
        before_ask = next(h for h in history if h["next"] == ["ask"])
        resumed = _run(client, thread_id, command={"resume": "yes"})
        travelled = _run(
            client, thread_id, input=None, checkpoint_id=before_ask["checkpoint"]["checkpoint_id"]
        )
    return {
        "paused": paused,
        "resumed": resumed,
        "travelled": travelled,
        "before_ask": before_ask,
        "history": history,
    }


def test_checkpoints_name_the_run_span_that_wrote_them(
    runs: dict[str, Any], receiver: OtlpReceiver
) -> None:
    """Every checkpoint the paused run saved carries its run span's ``traceparent``."""
    paused = _run_span(receiver, runs["paused"])
    written = [
        h["metadata"].get(names.OTELSTREAM_TRACEPARENT)
        for h in runs["history"]
        if h["metadata"].get("run_id") == runs["paused"]
    ]
    assert written
    assert {_ids(w) for w in written} == {(paused.trace_id, paused.span_id)}


def test_time_travel_links_to_the_run_that_wrote_the_checkpoint(
    runs: dict[str, Any], receiver: OtlpReceiver
) -> None:
    """A run from an older checkpoint links to the run that saved it, as ``time_travel``."""
    paused = _run_span(receiver, runs["paused"])
    travelled = _run_span(receiver, runs["travelled"])
    (link,) = travelled.links
    assert (link.trace_id, link.span_id) == (paused.trace_id, paused.span_id)
    assert link.attributes == {
        names.OTELSTREAM_LINK_REASON: names.LINK_REASON_TIME_TRAVEL,
        names.LANGGRAPH_CHECKPOINT_ID: runs["before_ask"]["checkpoint"]["checkpoint_id"],
    }
    assert not [e for e in travelled.events if e.name == names.EVENT_RESUMED]


def test_every_observer_links_to_its_own_span_and_the_servers(
    traced_server: TracedServer, receiver: OtlpReceiver, tracer_provider: Any, span_exporter: Any
) -> None:
    """A traced RemoteGraph and a sidecar watching the same traced server: each one's resuming
    run links to its own span of the paused run first, and the sidecar also to the server's."""
    sidecar = Sidecar(traced_server.url, poll=0.2, tracer_provider=tracer_provider)
    watcher = threading.Thread(target=asyncio.run, args=(sidecar.run(),), daemon=True)
    watcher.start()
    graph = RemoteGraph(GRAPH, url=traced_server.url)
    remote = instrument_remote(graph, tracer_provider=tracer_provider)
    try:
        _wait(lambda: sidecar.last_poll is not None)
        thread_id = str(graph.sync_client.threads.create()["thread_id"])
        config = {"configurable": {"thread_id": thread_id}}
        list(remote.stream({"request": "refund"}, config, stream_mode="updates"))
        list(remote.stream(Command(resume="yes"), config, stream_mode="updates"))
        paused_id, resumed_id = sorted(
            (r["run_id"] for r in graph.sync_client.runs.list(thread_id)),
            key=lambda run_id: run_id,  # uuid7: creation order
        )
        _wait(lambda: len(_sidecar_runs(span_exporter)) == 2)
    finally:
        sidecar.stop()
        watcher.join(timeout=20)
        graph.sync_client.close()
    server_paused = _run_span(receiver, paused_id)
    client_paused, client_resumed = sorted(
        (s for s in span_exporter.get_finished_spans() if _is_client_run(s)),
        key=lambda s: s.start_time,
    )
    side = _sidecar_runs(span_exporter)
    sidecar_paused, sidecar_resumed = side[paused_id], side[resumed_id]

    def targets(span: Any) -> list[tuple[int, int]]:
        return [(link.context.trace_id, link.context.span_id) for link in span.links]

    def ids(span: Any) -> tuple[int, int]:
        return span.context.trace_id, span.context.span_id

    server = (int(server_paused.trace_id, 16), int(server_paused.span_id, 16))
    # The client reads the resumed checkpoint as the server's graph saw it, which the in-server
    # saver hands over without its own key: the client knows only its own span.
    assert targets(client_resumed) == [ids(client_paused)]
    assert targets(sidecar_resumed) == [ids(sidecar_paused), server]
    for span in (client_resumed, sidecar_resumed):
        assert {link.attributes[names.OTELSTREAM_LINK_REASON] for link in span.links} == {
            names.LINK_REASON_RESUME
        }


def _wait(predicate: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _sidecar_runs(exporter: Any) -> dict[str, Any]:
    return {
        str(s.attributes[names.OTELSTREAM_REMOTE_RUN_ID]): s
        for s in exporter.get_finished_spans()
        if names.OTELSTREAM_REMOTE_RUN_ID in (s.attributes or {})
    }


def _is_client_run(span: Any) -> bool:
    attributes = span.attributes or {}
    return (
        attributes.get(names.GEN_AI_OPERATION_NAME) == names.OP_INVOKE_WORKFLOW
        and names.OTELSTREAM_REMOTE_RUN_ID not in attributes
    )
