"""instrument_remote(RemoteGraph) on a thread: the client run that resumes (or travels back on)
a thread links to the client run that wrote the checkpoint, found through the server's
checkpoint metadata, with no memory in the client and no extra request for a resume."""

from __future__ import annotations

import gc
import json
from typing import Any

import pytest
from langgraph.pregel.remote import RemoteGraph
from langgraph.types import Command

from otelstream import names
from otelstream.remote import instrument_remote

from .conftest import is_run

MODES = ["updates", "messages", "tasks"]


@pytest.fixture
def bare(server_url: str) -> Any:
    """A RemoteGraph whose sync HTTP client is closed after the test."""
    graph = RemoteGraph("agent", url=server_url)
    yield graph
    graph.sync_client.close()
    gc.collect()


class Requests:
    """Counts the HTTP requests one SDK client sends."""

    def __init__(self, http: Any) -> None:
        self.sent: list[str] = []
        http.event_hooks["request"].append(self._sent)

    def _sent(self, request: Any) -> None:
        self.sent.append(f"{request.method} {request.url.path}")


def _config(thread_id: str, checkpoint_id: str | None = None) -> dict[str, Any]:
    configurable = {"thread_id": thread_id}
    if checkpoint_id is not None:
        configurable["checkpoint_id"] = checkpoint_id
    return {"configurable": configurable}


def _user(text: str) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": text}]}


def _runs(span_exporter: Any) -> list[Any]:
    spans = [s for s in span_exporter.get_finished_spans() if is_run(s)]
    span_exporter.clear()
    return spans


def _new_thread(bare: Any) -> str:
    return str(bare.sync_client.threads.create()["thread_id"])


def _pause(remote: Any, bare: Any, thread_id: str) -> str:
    """Run ``ask`` until it interrupts; the checkpoint it paused at."""
    list(remote.stream(_user("ask"), _config(thread_id), stream_mode=MODES))
    return str(bare.get_state(_config(thread_id)).config["configurable"]["checkpoint_id"])


def test_resume_links_to_the_paused_client_run(
    bare: Any, tracer_provider: Any, span_exporter: Any
) -> None:
    """The resuming client run links to the paused one (reason, checkpoint) and says it resumed;
    the paused one says where it paused."""
    remote = instrument_remote(bare, tracer_provider=tracer_provider)
    thread_id = _new_thread(bare)
    paused_at = _pause(remote, bare, thread_id)
    (paused,) = _runs(span_exporter)
    list(remote.stream(Command(resume="yes"), _config(thread_id), stream_mode=MODES))
    (resumed,) = _runs(span_exporter)
    assert paused.attributes[names.OTELSTREAM_OUTCOME] == names.OUTCOME_INTERRUPTED
    (pause,) = [e for e in paused.events if e.name == names.EVENT_PAUSED]
    assert resumed.attributes[names.OTELSTREAM_OUTCOME] == names.OUTCOME_COMPLETED
    (link,) = resumed.links
    assert link.context.trace_id == paused.context.trace_id
    assert link.context.span_id == paused.context.span_id
    assert dict(link.attributes) == {
        names.OTELSTREAM_LINK_REASON: names.LINK_REASON_RESUME,
        names.LANGGRAPH_CHECKPOINT_ID: paused_at,
    }
    (event,) = [e for e in resumed.events if e.name == names.EVENT_RESUMED]
    assert event.attributes[names.LANGGRAPH_CHECKPOINT_ID] == paused_at
    assert pause.timestamp <= event.timestamp


def test_the_server_keeps_the_client_run_span_in_checkpoint_metadata(
    bare: Any, tracer_provider: Any, span_exporter: Any
) -> None:
    """Every checkpoint the paused run saved names the client's run span; nothing else does."""
    remote = instrument_remote(bare, tracer_provider=tracer_provider)
    thread_id = _new_thread(bare)
    _pause(remote, bare, thread_id)
    (paused,) = _runs(span_exporter)
    context = paused.context
    expected = f"00-{context.trace_id:032x}-{context.span_id:016x}-"
    saved = [
        s.metadata.get(names.OTELSTREAM_REMOTE_TRACEPARENT)
        for s in bare.get_state_history(_config(thread_id))
    ]
    assert saved
    assert all(str(s).startswith(expected) for s in saved)


def test_the_caller_sees_none_of_it(bare: Any, tracer_provider: Any, span_exporter: Any) -> None:
    """The traced calls yield the caller's modes only, and no chunk shows the client's key."""
    remote = instrument_remote(bare, tracer_provider=tracer_provider)
    thread_id = _new_thread(bare)
    first = list(remote.stream(_user("ask"), _config(thread_id), stream_mode=MODES))
    second = list(remote.stream(Command(resume="yes"), _config(thread_id), stream_mode=MODES))
    assert {c.event for c in first + second} <= set(MODES)
    assert {c.event for c in second} == set(MODES)  # all three modes, and no `checkpoints`
    for chunk in first + second:
        assert names.OTELSTREAM_REMOTE_TRACEPARENT not in json.dumps(chunk.data, default=str)
    # The same metadata keys as the bare RemoteGraph's chunks of the same kind.
    bare_thread = _new_thread(bare)
    plain = list(bare.stream(_user("ask"), _config(bare_thread), stream_mode=MODES))
    keys = {c.event: sorted(c.data[1] if c.event == "messages" else c.data) for c in plain}
    traced = {c.event: sorted(c.data[1] if c.event == "messages" else c.data) for c in first}
    assert traced == keys


def test_resume_costs_no_extra_request(bare: Any, tracer_provider: Any, span_exporter: Any) -> None:
    """A traced resume sends exactly the requests the bare RemoteGraph's resume sends."""
    remote = instrument_remote(bare, tracer_provider=tracer_provider)
    sent: dict[str, list[str]] = {}
    for label, graph in (("bare", bare), ("traced", remote)):
        thread_id = _new_thread(bare)
        list(graph.stream(_user("ask"), _config(thread_id), stream_mode=MODES))
        requests = Requests(bare.sync_client.http.client)
        list(graph.stream(Command(resume="yes"), _config(thread_id), stream_mode=MODES))
        bare.sync_client.http.client.event_hooks["request"].remove(requests._sent)
        sent[label] = [_shape(r, thread_id) for r in requests.sent]
    assert sent["traced"] == sent["bare"]
    assert sent["bare"][0] == "POST /threads/T/runs/stream"


def _shape(request: str, thread_id: str) -> str:
    """A request with the thread id, and any run id after it, replaced."""
    shaped = request.replace(thread_id, "T")
    head, _, tail = shaped.partition("/runs/")
    return f"{head}/runs/{'stream' if tail == 'stream' else 'R'}" if tail else shaped


def test_time_travel_links_to_the_run_that_wrote_the_checkpoint(
    bare: Any, tracer_provider: Any, span_exporter: Any
) -> None:
    """A run from an older checkpoint links to the client run that saved it, with one lookup."""
    remote = instrument_remote(bare, tracer_provider=tracer_provider)
    thread_id = _new_thread(bare)
    _pause(remote, bare, thread_id)
    (paused,) = _runs(span_exporter)
    history = list(bare.get_state_history(_config(thread_id)))
    (older,) = [s for s in history if s.next == ("agent",)]
    older_id = older.config["configurable"]["checkpoint_id"]
    requests = Requests(bare.sync_client.http.client)
    list(remote.stream(None, _config(thread_id, older_id), stream_mode=MODES))
    (travelled,) = _runs(span_exporter)
    (link,) = travelled.links
    assert link.context.span_id == paused.context.span_id
    assert dict(link.attributes) == {
        names.OTELSTREAM_LINK_REASON: names.LINK_REASON_TIME_TRAVEL,
        names.LANGGRAPH_CHECKPOINT_ID: older_id,
    }
    assert not [e for e in travelled.events if e.name == names.EVENT_RESUMED]
    # One lookup of the named checkpoint, beside what the bare RemoteGraph sends.
    lookups = [r for r in requests.sent if r == f"POST /threads/{thread_id}/history"]
    assert len(lookups) == 1
    assert f"POST /threads/{thread_id}/runs/stream" in requests.sent


def test_a_new_input_on_a_thread_is_not_linked(
    bare: Any, tracer_provider: Any, span_exporter: Any
) -> None:
    """A new input on a thread with history (``continue``) gets no link from the client."""
    remote = instrument_remote(bare, tracer_provider=tracer_provider)
    thread_id = _new_thread(bare)
    list(remote.stream(_user("hello"), _config(thread_id), stream_mode=MODES))
    list(remote.stream(_user("again"), _config(thread_id), stream_mode=MODES))
    first, second = sorted(_runs(span_exporter), key=lambda s: s.start_time)
    assert not first.links
    assert not second.links


def test_a_stateless_run_sends_no_metadata(
    bare: Any, tracer_provider: Any, span_exporter: Any
) -> None:
    """A run without a thread keeps its checkpoints nowhere, so it carries no run span key."""
    remote = instrument_remote(bare, tracer_provider=tracer_provider)
    plan_runs: list[Any] = []
    bare.sync_client.http.client.event_hooks["request"].append(
        lambda request: plan_runs.append(json.loads(request.content or b"{}"))
    )
    list(remote.stream(_user("hello"), stream_mode=MODES))
    assert plan_runs
    assert names.OTELSTREAM_REMOTE_TRACEPARENT not in json.dumps(plan_runs)


# The SDK's async HTTP client (created by RemoteGraph, outside this loop) leaves a socket for
# the garbage collector even after aclose(); not otelstream's to fix.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
async def test_async_resume_and_time_travel_link(
    server_url: str, tracer_provider: Any, span_exporter: Any
) -> None:
    """``astream`` links a resume and a time travel as ``stream`` does."""
    graph = RemoteGraph("agent", url=server_url)
    remote = instrument_remote(graph, tracer_provider=tracer_provider)
    try:
        thread_id = str((await graph.client.threads.create())["thread_id"])
        config = _config(thread_id)
        _ = [c async for c in remote.astream(_user("ask"), config, stream_mode=MODES)]
        (paused,) = _runs(span_exporter)
        state = await graph.aget_state(config)
        paused_at = state.config["configurable"]["checkpoint_id"]
        _ = [c async for c in remote.astream(Command(resume="ok"), config, stream_mode=MODES)]
        (resumed,) = _runs(span_exporter)
        older = [s async for s in graph.aget_state_history(config) if s.next == ("agent",)]
        older_id = older[-1].config["configurable"]["checkpoint_id"]  # the paused run's
        _ = [c async for c in remote.astream(None, _config(thread_id, older_id), stream_mode=MODES)]
        (travelled,) = _runs(span_exporter)
    finally:
        await graph.client.aclose()
        graph.sync_client.close()
        gc.collect()
    (link,) = resumed.links
    assert link.context.span_id == paused.context.span_id
    assert link.attributes[names.LANGGRAPH_CHECKPOINT_ID] == paused_at
    (link,) = travelled.links
    assert link.context.span_id == paused.context.span_id
    assert link.attributes[names.OTELSTREAM_LINK_REASON] == names.LINK_REASON_TIME_TRAVEL
    assert link.attributes[names.LANGGRAPH_CHECKPOINT_ID] == older_id


def test_v2_parts_resume_linked_and_clean(
    bare: Any, tracer_provider: Any, span_exporter: Any
) -> None:
    """``version="v2"`` parts: the resume links, and no part shows the client's key."""
    remote = instrument_remote(bare, tracer_provider=tracer_provider)
    thread_id = _new_thread(bare)
    config = _config(thread_id)
    first = list(remote.stream(_user("ask"), config, stream_mode=MODES, version="v2"))
    (paused,) = _runs(span_exporter)
    second = list(remote.stream(Command(resume="yes"), config, stream_mode=MODES, version="v2"))
    (resumed,) = _runs(span_exporter)
    (link,) = resumed.links
    assert link.context.span_id == paused.context.span_id
    assert {p["type"] for p in second} == set(MODES)
    for part in first + second:
        assert names.OTELSTREAM_REMOTE_TRACEPARENT not in json.dumps(part["data"], default=str)


def test_an_abandoned_time_travel_ends_cancelled(
    bare: Any, tracer_provider: Any, span_exporter: Any
) -> None:
    """A caller that stops reading a time travel ends its run ``cancelled`` without waiting for
    the lookup; a link, if the answer was already there, names the paused run."""
    remote = instrument_remote(bare, tracer_provider=tracer_provider)
    thread_id = _new_thread(bare)
    _pause(remote, bare, thread_id)
    (paused,) = _runs(span_exporter)
    history = list(bare.get_state_history(_config(thread_id)))
    (older,) = [s for s in history if s.next == ("agent",)]
    stream = remote.stream(None, _config(thread_id, older.config["configurable"]["checkpoint_id"]))
    next(stream)
    stream.close()
    (travelled,) = _runs(span_exporter)
    assert travelled.attributes[names.OTELSTREAM_OUTCOME] == names.OUTCOME_CANCELLED
    assert [link.context.span_id for link in travelled.links] in ([], [paused.context.span_id])
