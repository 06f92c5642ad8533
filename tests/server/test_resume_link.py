"""Resumed runs on a real traced ``langgraph dev``: the run that resumes a thread links to the
run that paused it, through the checkpoint metadata the server's own checkpointer keeps.

The server (``conftest.py``) traces its runs in process (``opentelemetry-instrument``); each run
below is a separate request, so a separate worker task: nothing but the checkpoints connects them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from langgraph_sdk import get_sync_client

from otelstream import names

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
    the checkpoint the first run saved after ``draft``."""
    with get_sync_client(url=traced_server.url) as client:
        thread_id = str(client.threads.create()["thread_id"])
        paused = _run(client, thread_id, input={})
        history = client.threads.get_history(thread_id, limit=10)
        interrupted_at = history[0]["checkpoint"]["checkpoint_id"]
        after_draft = next(h for h in history if h["next"] == ["review"])
        resumed = _run(client, thread_id, command={"resume": "yes"})
        travelled = _run(
            client, thread_id, input=None, checkpoint_id=after_draft["checkpoint"]["checkpoint_id"]
        )
    return {
        "paused": paused,
        "resumed": resumed,
        "travelled": travelled,
        "interrupted_at": interrupted_at,
        "after_draft": after_draft,
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


def test_paused_run_says_where_it_paused(runs: dict[str, Any], receiver: OtlpReceiver) -> None:
    """The interrupted run ends ``interrupted`` with ``gen_ai.agent.paused`` at its last
    checkpoint."""
    paused = _run_span(receiver, runs["paused"])
    assert paused.attributes[names.OTELSTREAM_OUTCOME] == names.OUTCOME_INTERRUPTED
    (event,) = [e for e in paused.events if e.name == names.EVENT_PAUSED]
    assert event.attributes[names.LANGGRAPH_CHECKPOINT_ID] == runs["interrupted_at"]


def test_resuming_run_links_to_the_paused_run(runs: dict[str, Any], receiver: OtlpReceiver) -> None:
    """The resuming run, another request on another worker task, links to the paused run's span
    with reason ``resume`` and the checkpoint it resumed from, and says it resumed."""
    paused = _run_span(receiver, runs["paused"])
    resumed = _run_span(receiver, runs["resumed"])
    assert resumed.trace_id != paused.trace_id  # two requests, two traces: only the link joins
    (link,) = resumed.links
    assert (link.trace_id, link.span_id) == (paused.trace_id, paused.span_id)
    assert link.attributes == {
        names.OTELSTREAM_LINK_REASON: names.LINK_REASON_RESUME,
        names.LANGGRAPH_CHECKPOINT_ID: runs["interrupted_at"],
    }
    (event,) = [e for e in resumed.events if e.name == names.EVENT_RESUMED]
    assert event.attributes[names.LANGGRAPH_CHECKPOINT_ID] == runs["interrupted_at"]
    assert resumed.attributes[names.OTELSTREAM_OUTCOME] == names.OUTCOME_COMPLETED


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
        names.LANGGRAPH_CHECKPOINT_ID: runs["after_draft"]["checkpoint"]["checkpoint_id"],
    }
    assert not [e for e in travelled.events if e.name == names.EVENT_RESUMED]
