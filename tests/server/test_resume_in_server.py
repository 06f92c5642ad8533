"""A run resumed on a real ``langgraph dev`` links to the run it resumes, through the server's own
checkpoints.

The server (``conftest.py``) runs ``opentelemetry-instrument langgraph dev`` with otelstream; the
``approval`` graph stops at ``interrupt()``. One API call runs it until it pauses, a second one
resumes the thread with ``command={"resume": ...}``: the server's worker runs each, and the only
thing the second run can learn the first one's span from is the thread's checkpoint metadata.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from langgraph_sdk import get_sync_client

if TYPE_CHECKING:
    from tests.server.conftest import TracedServer
    from tests.server.otlp_receiver import OtlpReceiver, Span

RUN_NAME = "invoke_workflow approval"


def _run(spans: list[Span], run_id: str) -> Span | None:
    for span in spans:
        if span.name == RUN_NAME and span.attributes.get("langgraph.run.id") == run_id:
            return span
    return None


def test_a_resumed_server_run_links_to_the_interrupted_one(
    traced_server: TracedServer, receiver: OtlpReceiver
) -> None:
    """The resuming run's span links to the interrupted run's span (``resume``, from the
    checkpoint the first paused at), and the thread's history names the runs that saved it."""
    client = get_sync_client(url=traced_server.url)
    try:
        thread_id = client.threads.create()["thread_id"]
        first = client.runs.create(thread_id, "approval", input={"request": "refund"})
        client.runs.join(thread_id, first["run_id"])
        second = client.runs.create(thread_id, "approval", command={"resume": "approved"})
        output = client.runs.join(thread_id, second["run_id"])
        history = client.threads.get_history(thread_id, limit=20)
    finally:
        client.close()
    assert output["verdict"] == "approved!"
    spans = receiver.wait_for(lambda found: all(_run(found, r["run_id"]) for r in (first, second)))
    paused, resumed = (_run(spans, r["run_id"]) for r in (first, second))
    assert paused is not None
    assert resumed is not None
    assert paused.attributes["otelstream.outcome"] == "interrupted"
    (pause,) = [e for e in paused.events if e.name == "gen_ai.agent.paused"]
    checkpoint_id = pause.attributes["langgraph.checkpoint.id"]
    assert [(link.trace_id, link.span_id, link.attributes) for link in resumed.links] == [
        (
            paused.trace_id,
            paused.span_id,
            {"otelstream.link.reason": "resume", "langgraph.checkpoint.id": checkpoint_id},
        )
    ]
    assert [e.name for e in resumed.events] == ["gen_ai.agent.resumed"]
    assert resumed.trace_id != paused.trace_id
    # The trace flags (last field) are the SDK's; the ids are what a resumer needs.
    writers = {
        state["checkpoint"]["checkpoint_id"]: str(state["metadata"].get("otelstream.traceparent"))[
            :-3
        ]
        for state in history
    }
    assert writers[checkpoint_id] == f"00-{paused.trace_id}-{paused.span_id}"
    assert f"00-{resumed.trace_id}-{resumed.span_id}" in writers.values()
