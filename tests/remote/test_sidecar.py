"""The sidecar: follows runs on a real server, one trace each, replay, stalls, trace context."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from typing import TYPE_CHECKING, Any

from langgraph_sdk import get_sync_client

from otelstream import Options, names
from otelstream.remote import sidecar as sidecar_module
from otelstream.remote.sidecar import SIDECAR_STREAM_MODES, Sidecar

from .conftest import span_tree

if TYPE_CHECKING:
    from pathlib import Path

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
PARENT_ID = "b7ad6b7169203331"


def _start(sidecar: Sidecar) -> threading.Thread:
    thread = threading.Thread(target=asyncio.run, args=(sidecar.run(),), daemon=True)
    thread.start()
    return thread


def _create(url: str, text: str, **kwargs: Any) -> tuple[str, str]:
    client = get_sync_client(url=url)
    thread = client.threads.create()
    run = client.runs.create(
        thread["thread_id"],
        "agent",
        input={"messages": [{"role": "user", "content": text}]},
        stream_mode=SIDECAR_STREAM_MODES,
        stream_resumable=True,
        **kwargs,
    )
    client.close()
    return thread["thread_id"], run["run_id"]


def _wait(predicate: Any, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _runs(spans: Any) -> list[Any]:
    return [s for s in spans if s.name.startswith("invoke_agent")]


def test_one_trace_per_run(server_url, tracer_provider, span_exporter, tmp_path: Path) -> None:
    """Each run becomes one trace with the in-process tree; finished ids go to the state file."""
    state = tmp_path / "state.json"
    sidecar = Sidecar(
        server_url, poll=0.1, state_path=state, max_runs=2, tracer_provider=tracer_provider
    )
    thread = _start(sidecar)
    ids = [_create(server_url, "slow:0.5")[1], _create(server_url, "fast")[1]]
    thread.join(timeout=20)
    assert not thread.is_alive()
    spans = span_exporter.get_finished_spans()
    runs = _runs(spans)
    assert sorted(r.attributes["otelstream.remote.run_id"] for r in runs) == sorted(ids)
    assert len({r.context.trace_id for r in runs}) == 2
    for run in runs:
        tree = span_tree([s for s in spans if s.context.trace_id == run.context.trace_id])
        assert [n for _, n, _ in tree][:3] == ["RUN", "agent", "chat remote-fake"]
        assert tree[-1][1] == "chat remote-fake"
        assert run.attributes[names.OTELSTREAM_OUTCOME] == "completed"
    assert sorted(json.loads(state.read_text())["finished"]) == sorted(ids)


def test_a_run_started_before_the_sidecar_is_replayed_whole(
    server_url, tracer_provider, span_exporter
) -> None:
    """A resumable run already past its first steps is replayed from its first event."""
    thread_id, run_id = _create(server_url, "slow:1.5")
    client = get_sync_client(url=server_url)
    _wait(lambda: client.runs.get(thread_id, run_id)["status"] == "running")
    time.sleep(0.4)  # the first model call is over before the sidecar starts
    client.close()
    sidecar = Sidecar(server_url, poll=0.1, max_runs=1, tracer_provider=tracer_provider)
    thread = _start(sidecar)
    thread.join(timeout=20)
    spans = span_exporter.get_finished_spans()
    (run,) = _runs(spans)
    assert run.attributes["otelstream.remote.replayed"] is True
    assert [n for _, n, _ in span_tree(spans)] == [
        "RUN",
        "agent",
        "chat remote-fake",
        "tools",
        "execute_tool slow_tool",
        "agent",
        "chat remote-fake",
    ]


def test_a_hung_tool_is_reported_while_it_hangs(server_url, tracer_provider, span_exporter) -> None:
    """The watchdog exports a stall marker for a tool still running, before the run ends."""
    sidecar = Sidecar(
        server_url,
        poll=0.1,
        max_runs=1,
        tracer_provider=tracer_provider,
        options=Options(tool_stall_threshold=0.3),
    )
    thread = _start(sidecar)
    _create(server_url, "slow:2.5")
    _wait(
        lambda: any(
            s.name == "stalled execute_tool slow_tool" for s in span_exporter.get_finished_spans()
        )
    )
    assert _runs(span_exporter.get_finished_spans()) == []  # still hanging
    thread.join(timeout=20)
    (tool,) = [s for s in span_exporter.get_finished_spans() if s.name == "execute_tool slow_tool"]
    assert tool.attributes[names.OTELSTREAM_STALLED] is True


def test_traceparent_in_run_metadata_joins_the_callers_trace(
    server_url, tracer_provider, span_exporter
) -> None:
    """A run created with metadata traceparent is traced as a child of the caller's span."""
    sidecar = Sidecar(server_url, poll=0.1, max_runs=1, tracer_provider=tracer_provider)
    thread = _start(sidecar)
    _create(server_url, "hello", metadata={"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01"})
    thread.join(timeout=20)
    (run,) = _runs(span_exporter.get_finished_spans())
    assert f"{run.context.trace_id:032x}" == TRACE_ID
    assert run.parent is not None
    assert f"{run.parent.span_id:016x}" == PARENT_ID


def test_main_exports_to_a_file_and_prints_status(
    server_url, tmp_path: Path, monkeypatch, capsys
) -> None:
    """The CLI follows a run into the configured trace file; --status prints one line."""
    trace_file = tmp_path / "traces.jsonl"
    state = tmp_path / "state.json"
    monkeypatch.setenv("OTELSTREAM_TRACE_FILE", str(trace_file))
    monkeypatch.chdir(tmp_path)
    for key in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        monkeypatch.delenv(key, raising=False)
    result: list[int] = []
    thread = threading.Thread(
        target=lambda: result.append(
            sidecar_module.main(
                ["--url", server_url, "--poll", "0.1", "--state", str(state), "--max-runs", "1"]
            )
        ),
        daemon=True,
    )
    thread.start()
    _create(server_url, "fast")
    thread.join(timeout=20)
    assert result == [0]
    assert "invoke_agent agent" in trace_file.read_text()
    assert sidecar_module.main(["--status", "--state", str(state)]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"otelstream sidecar {server_url}: connected")
    assert "followed 1" in line
