"""The container way: ``PYTHONPATH`` naming OpenTelemetry's auto-instrumentation directory, and
``langgraph dev --config langgraph.json`` unwrapped, traces runs exactly as
``opentelemetry-instrument`` does.

This is the mechanism the README's ``langgraph up`` settings rely on (an ``env`` entry in
``langgraph.json``), checked here with ``langgraph dev`` because this machine has no Docker
engine. The server is this module's own.
"""

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
    from tests.server.otlp_receiver import OtlpReceiver


@pytest.fixture(scope="module")
def pythonpath_server(
    traced_venv: Path, receiver: OtlpReceiver, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TracedServer]:
    workdir = tmp_path_factory.mktemp("pythonpath-server")
    server = start_traced_server(traced_venv, workdir, receiver.url, via_pythonpath=True)
    try:
        yield server
    finally:
        stop_traced_server(server)


def test_pythonpath_traces_a_run(pythonpath_server: TracedServer, receiver: OtlpReceiver) -> None:
    """A run created with a ``traceparent`` header gets its run span, node spans and chat span,
    under the server's ``worker.stream_run`` in the caller's trace."""
    caller, created = Caller.new(), Created()
    with get_sync_client(url=pythonpath_server.url) as client:
        thread = client.threads.create()
        client.runs.wait(
            thread["thread_id"],
            GRAPH,
            input=INPUT,
            headers={"traceparent": caller.traceparent},
            on_run_created=created,
        )
    spans = receiver.wait_for(
        lambda spans: (
            any(
                s.trace_id == caller.trace_id
                and s.attributes.get("langgraph.run.id") == created.run_id
                for s in spans
            )
            and any(s.trace_id == caller.trace_id and s.name == f"chat {MODEL_NAME}" for s in spans)
        )
    )
    trace = [s for s in spans if s.trace_id == caller.trace_id]
    (run,) = [s for s in trace if s.attributes.get("langgraph.run.id") == created.run_id]
    (worker,) = [s for s in trace if s.span_id == run.parent_id]
    assert (worker.scope, worker.name) == (SERVER_SCOPE, "worker.stream_run")
    assert run.attributes["gen_ai.conversation.id"] == thread["thread_id"]
    names = sorted(s.name for s in trace if s.scope == "otelstream" and s is not run)
    assert names == sorted(["left", "right", "research", "model", "finish", f"chat {MODEL_NAME}"])
