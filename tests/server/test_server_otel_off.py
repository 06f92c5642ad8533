"""With the server's own OpenTelemetry off (``OTEL_ENABLED=false``), ``traceparent`` in the run's
metadata still joins the caller's trace; a header alone does not, as the README says."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from langgraph_sdk import get_sync_client

from tests.server.conftest import start_traced_server, stop_traced_server
from tests.server.graph.graph import MODEL_NAME
from tests.server.test_in_server import GRAPH, INPUT, SERVER_SCOPE, Caller, Created

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from tests.server.conftest import TracedServer
    from tests.server.otlp_receiver import OtlpReceiver, Span


@pytest.fixture(scope="module")
def otel_off_server(
    traced_venv: Path, receiver: OtlpReceiver, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TracedServer]:
    workdir = tmp_path_factory.mktemp("otel-off-server")
    server = start_traced_server(
        traced_venv, workdir, receiver.url, extra_env={"OTEL_ENABLED": "false"}
    )
    try:
        yield server
    finally:
        stop_traced_server(server)


def _run(receiver: OtlpReceiver, run_id: str) -> tuple[Span, list[Span]]:
    """The run span of ``run_id`` and every span of its trace, once its chat span is in."""

    def run_span(spans: list[Span]) -> Span | None:
        return next((s for s in spans if s.attributes.get("langgraph.run.id") == run_id), None)

    def complete(spans: list[Span]) -> bool:
        run = run_span(spans)
        return run is not None and any(
            s.trace_id == run.trace_id and s.name == f"chat {MODEL_NAME}" for s in spans
        )

    spans = receiver.wait_for(complete)
    run = run_span(spans)
    assert run is not None
    return run, [s for s in spans if s.trace_id == run.trace_id]


def test_metadata_joins_without_the_servers_spans(
    otel_off_server: TracedServer, receiver: OtlpReceiver
) -> None:
    """The run span is a child of the metadata's span, and the server made no
    ``worker.stream_run`` span for it."""
    caller, created = Caller.new(), Created()
    with get_sync_client(url=otel_off_server.url) as client:
        client.runs.wait(
            None,
            GRAPH,
            input=INPUT,
            metadata={"traceparent": caller.traceparent},
            on_run_created=created,
        )
    assert created.run_id is not None
    run, trace = _run(receiver, created.run_id)
    assert (run.trace_id, run.parent_id) == (caller.trace_id, caller.span_id)
    assert [s for s in trace if s.scope == SERVER_SCOPE] == []


def test_a_header_alone_does_not_join(
    otel_off_server: TracedServer, receiver: OtlpReceiver
) -> None:
    """Without the server's own spans, a ``traceparent`` header never reaches the worker: the
    run is a trace of its own (the README tells users to leave ``OTEL_ENABLED`` on)."""
    caller, created = Caller.new(), Created()
    with get_sync_client(url=otel_off_server.url) as client:
        client.runs.wait(
            None,
            GRAPH,
            input=INPUT,
            headers={"traceparent": caller.traceparent},
            on_run_created=created,
        )
    assert created.run_id is not None
    run, _ = _run(receiver, created.run_id)
    assert run.trace_id != caller.trace_id
    assert run.parent_id is None
