"""In-server tracing on a real ``langgraph dev``: every way of creating a run gets the full trace.

The server (``conftest.py``) runs ``opentelemetry-instrument langgraph dev`` with otelstream and
``otelstream[server]`` installed, and exports OTLP/HTTP protobuf to a receiver in this process.
The runs are created once for the module, each one way, each with a caller trace context of its
own (a ``traceparent`` header, or ``traceparent`` in the run's metadata), and every test checks
one property of each run's exported spans.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest
from langgraph_sdk import get_sync_client

from tests.server.graph.graph import ANSWER, FIRST_CHUNK_DELAY, MODEL_NAME, NODES

if TYPE_CHECKING:
    from tests.server.conftest import TracedServer
    from tests.server.otlp_receiver import OtlpReceiver, Span

GRAPH = "pipeline"
INPUT = {"topic": "tides"}
OTELSTREAM_SCOPE = "otelstream"
SERVER_SCOPE = "langsmith_agent_server"  # langgraph_api/otel_context.py, OTEL_TRACER_NAME
HTTP_SCOPE = "opentelemetry.instrumentation.starlette"
TTFT_TOLERANCE = 0.010
CRON_TIMEOUT = 15.0


@dataclass(frozen=True)
class Caller:
    """The caller's span, as a W3C ``traceparent`` would carry it."""

    trace_id: str
    span_id: str

    @classmethod
    def new(cls) -> Caller:
        return cls(secrets.token_hex(16), secrets.token_hex(8))

    @property
    def traceparent(self) -> str:
        return f"00-{self.trace_id}-{self.span_id}-01"


@dataclass(frozen=True)
class Made:
    """One run, as its creator knows it."""

    way: str
    run_id: str
    thread_id: str | None
    caller: Caller
    joined_by: str  # "header" or "metadata"
    output: Any


class Created:
    """Collects the run id the SDK reports when the server creates a run."""

    def __init__(self) -> None:
        self.run_id: str | None = None
        self.thread_id: str | None = None

    def __call__(self, meta: Any) -> None:
        self.run_id = str(meta["run_id"])
        self.thread_id = None if meta.get("thread_id") is None else str(meta["thread_id"])


def _stream(client: Any, stream_mode: list[str], subgraphs: bool) -> Made:
    thread = client.threads.create()
    caller, created = Caller.new(), Created()
    parts = list(
        client.runs.stream(
            thread["thread_id"],
            GRAPH,
            input=INPUT,
            stream_mode=stream_mode,
            stream_subgraphs=subgraphs,
            headers={"traceparent": caller.traceparent},
            on_run_created=created,
        )
    )
    assert created.run_id is not None
    way = f"stream {'+'.join(stream_mode)}" + (" subgraphs" if subgraphs else "")
    return Made(way, created.run_id, thread["thread_id"], caller, "header", parts)


def _wait_on_thread(client: Any) -> Made:
    thread = client.threads.create()
    caller, created = Caller.new(), Created()
    output = client.runs.wait(
        thread["thread_id"],
        GRAPH,
        input=INPUT,
        headers={"traceparent": caller.traceparent},
        on_run_created=created,
    )
    assert created.run_id is not None
    return Made("wait thread", created.run_id, thread["thread_id"], caller, "header", output)


def _wait_stateless(client: Any) -> Made:
    caller, created = Caller.new(), Created()
    output = client.runs.wait(
        None,
        GRAPH,
        input=INPUT,
        metadata={"traceparent": caller.traceparent},
        on_run_created=created,
    )
    assert created.run_id is not None
    # The server made a temporary thread and deleted it: the creator never knew its id.
    return Made("wait stateless", created.run_id, None, caller, "metadata", output)


def _cron(client: Any) -> Made:
    thread = client.threads.create()
    caller = Caller.new()
    # Every second (croniter's sixth field); deleted as soon as its first run exists.
    cron = client.crons.create_for_thread(
        thread["thread_id"],
        GRAPH,
        schedule="* * * * * *",
        input=INPUT,
        metadata={"traceparent": caller.traceparent},
    )
    deadline = time.monotonic() + CRON_TIMEOUT
    try:
        while not (runs := client.runs.list(thread["thread_id"])):
            assert time.monotonic() < deadline, "the cron never created a run"
            time.sleep(0.1)
    finally:
        client.crons.delete(cron["cron_id"])
    first = min(runs, key=lambda run: run["created_at"])
    output = client.runs.join(thread["thread_id"], first["run_id"])
    return Made("cron", str(first["run_id"]), thread["thread_id"], caller, "metadata", output)


def _make_runs(url: str) -> list[Made]:
    with get_sync_client(url=url) as client:
        return [
            _stream(client, ["updates", "custom"], subgraphs=False),
            _stream(client, ["messages-tuple", "values", "custom"], subgraphs=True),
            _wait_on_thread(client),
            _wait_stateless(client),
            _cron(client),
        ]


WAYS = [
    "stream updates+custom",
    "stream messages-tuple+values+custom subgraphs",
    "wait thread",
    "wait stateless",
    "cron",
]


@dataclass(frozen=True)
class Traced:
    """One run as created and as exported: its run span and every span of its trace."""

    made: Made
    run: Span
    trace: list[Span]

    def children(self, parent: Span) -> list[Span]:
        return [span for span in self.trace if span.parent_id == parent.span_id]

    def below_run(self) -> list[Span]:
        """The otelstream spans under the run span, depth first."""
        found, todo = [], [self.run]
        while todo:
            for child in self.children(todo.pop()):
                found.append(child)
                todo.append(child)
        return found

    def parent(self, span: Span) -> Span | None:
        return next((s for s in self.trace if s.span_id == span.parent_id), None)


def _run_span(spans: list[Span], run_id: str) -> Span | None:
    return next(
        (
            s
            for s in spans
            if s.scope == OTELSTREAM_SCOPE and s.attributes.get("langgraph.run.id") == run_id
        ),
        None,
    )


def _complete(spans: list[Span], made: Made) -> bool:
    """The run span and its chat span have arrived (the chat span ends before the run span)."""
    run = _run_span(spans, made.run_id)
    return run is not None and any(
        s.trace_id == run.trace_id and s.name == f"chat {MODEL_NAME}" for s in spans
    )


@pytest.fixture(scope="module")
def traced(traced_server: TracedServer, receiver: OtlpReceiver) -> dict[str, Traced]:
    """Every way's run, created on the traced server, with its exported spans."""
    made = _make_runs(traced_server.url)
    assert [m.way for m in made] == WAYS
    spans = receiver.wait_for(lambda spans: all(_complete(spans, m) for m in made))
    result = {}
    for m in made:
        run = _run_span(spans, m.run_id)
        assert run is not None
        result[m.way] = Traced(m, run, [s for s in spans if s.trace_id == run.trace_id])
    return result


@pytest.fixture(params=WAYS)
def one(request: pytest.FixtureRequest, traced: dict[str, Traced]) -> Traced:
    return traced[request.param]


def test_runs_complete(one: Traced) -> None:
    """Every run completes with the graph's answer, and its run span says so."""
    output = one.made.output
    if isinstance(output, list):  # a stream: the answer is in the last update or values part
        output = json.dumps([part.data for part in output])
        assert ANSWER in output
    else:
        assert output["answer"] == ANSWER
    assert one.run.attributes["otelstream.outcome"] == "completed"
    assert one.run.status_code != 2  # not ERROR


def test_span_tree(one: Traced) -> None:
    """Nodes under the run span, the subgraph's node under its parent node, the chat span under
    the subgraph's node: once each, whatever the run's stream modes."""
    edges = sorted(
        (
            "RUN" if (parent := one.parent(span)) is one.run else (parent.name if parent else "?"),
            span.name,
        )
        for span in one.below_run()
        if not span.name.startswith("stalled ")
    )
    assert edges == sorted(
        [
            ("RUN", "left"),
            ("RUN", "right"),
            ("RUN", "research"),
            ("RUN", "finish"),
            ("research", "model"),
            ("model", f"chat {MODEL_NAME}"),
        ]
    )
    assert {s.attributes.get("langgraph.node") for s in one.below_run()} >= set(NODES)


def test_time_to_first_chunk(one: Traced) -> None:
    """The chat span's TTFT is the fake model's first-chunk delay, within 10 ms."""
    (chat,) = [s for s in one.below_run() if s.name == f"chat {MODEL_NAME}"]
    ttft = chat.attributes["gen_ai.response.time_to_first_chunk"]
    assert abs(ttft - FIRST_CHUNK_DELAY) <= TTFT_TOLERANCE, ttft


def test_run_ids(one: Traced) -> None:
    """The run span carries the server's run id and the run's thread id."""
    assert one.run.attributes["langgraph.run.id"] == one.made.run_id
    conversation = one.run.attributes["gen_ai.conversation.id"]
    if one.made.thread_id is None:  # stateless: the server's temporary thread, still a thread id
        assert isinstance(conversation, str)
        assert conversation
    else:
        assert conversation == one.made.thread_id


def test_trace_joins_the_caller(one: Traced) -> None:
    """The run is in the caller's trace: under the server's own spans when the caller sent a
    ``traceparent`` header, directly under the caller's span when it sent one in metadata."""
    caller = one.made.caller
    assert one.run.trace_id == caller.trace_id
    if one.made.joined_by == "metadata":
        assert one.run.parent_id == caller.span_id
        return
    # header: caller -> HTTP server span -> ... -> worker.stream_run -> run span
    worker = one.parent(one.run)
    assert worker is not None
    assert (worker.scope, worker.name) == (SERVER_SCOPE, "worker.stream_run")
    assert worker.attributes["langsmith.run_id"] == one.made.run_id
    ancestors, span = [], worker
    while (span := one.parent(span)) is not None:
        ancestors.append(span)
    assert ancestors, "worker.stream_run has no parent in the caller's trace"
    top = ancestors[-1]
    assert top.scope == HTTP_SCOPE
    assert top.parent_id == caller.span_id


def test_server_resource(one: Traced) -> None:
    """The spans come from the server process, named by ``OTEL_SERVICE_NAME``."""
    assert one.run.resource["service.name"] == "otelstream-server-test"


def _custom_payloads(span: Span) -> list[Any]:
    return [
        json.loads(e.attributes["otelstream.custom.payload"])
        for e in span.events
        if e.name == "langgraph.custom"
    ]


def test_custom_writes_on_their_nodes(one: Traced) -> None:
    """Each node's custom write is one event on that node's span, parallel branches included,
    and none lands on the run span."""
    by_node = {
        s.attributes["langgraph.node"]: _custom_payloads(s)
        for s in one.below_run()
        if "langgraph.node" in s.attributes
    }
    assert by_node == {node: [{"node": node}] for node in NODES}
    assert _custom_payloads(one.run) == []
