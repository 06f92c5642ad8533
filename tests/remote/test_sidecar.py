"""The sidecar: follows runs on a real server, one trace each, replay, stalls, trace context."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from typing import TYPE_CHECKING, Any

from helpers import metric_points
from langgraph_sdk import get_sync_client

from otelstream import Options, names
from otelstream.remote import sidecar as sidecar_module
from otelstream.remote.sidecar import SIDECAR_STREAM_MODES, Sidecar

from .conftest import span_tree

if TYPE_CHECKING:
    from pathlib import Path

    from .conftest import OwnServer

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
PARENT_ID = "b7ad6b7169203331"


def _start(sidecar: Sidecar) -> threading.Thread:
    thread = threading.Thread(target=asyncio.run, args=(sidecar.run(),), daemon=True)
    thread.start()
    return thread


def _create(url: str, text: str, assistant: str = "agent", **kwargs: Any) -> tuple[str, str]:
    client = get_sync_client(url=url)
    thread = client.threads.create()
    run = client.runs.create(
        thread["thread_id"],
        assistant,
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
    return [s for s in spans if names.OTELSTREAM_REMOTE_RUN_ID in (s.attributes or {})]


def _traced(exporter: Any) -> list[str]:
    """The remote run id of every exported run span, duplicates kept."""
    return [
        str(r.attributes[names.OTELSTREAM_REMOTE_RUN_ID])
        for r in _runs(exporter.get_finished_spans())
    ]


def _trace_of(exporter: Any, run_id: str) -> tuple[Any, list[Any]]:
    """The run span of ``run_id`` and every span of its trace."""
    spans = exporter.get_finished_spans()
    (run,) = [r for r in _runs(spans) if r.attributes[names.OTELSTREAM_REMOTE_RUN_ID] == run_id]
    return run, [s for s in spans if s.context.trace_id == run.context.trace_id]


def _wait_running(url: str, thread_id: str, run_id: str) -> None:
    """Wait until the server has taken the run off its queue (``langgraph dev`` polls it ~1/s)."""
    client = get_sync_client(url=url)
    try:
        _wait(lambda: client.runs.get(thread_id, run_id)["status"] == "running")
    finally:
        client.close()


def _stop(sidecar: Sidecar, thread: threading.Thread) -> None:
    sidecar.stop()
    thread.join(timeout=10)
    assert not thread.is_alive()


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
    assert "invoke_workflow agent" in trace_file.read_text()
    assert sidecar_module.main(["--status", "--state", str(state)]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"otelstream sidecar {server_url}: connected")
    assert "followed 1" in line


def test_assistant_filter_follows_only_those_runs(
    server_url, tracer_provider, span_exporter
) -> None:
    """``--assistant`` takes graph ids and assistant ids; other assistants' runs are not traced."""
    client = get_sync_client(url=server_url)
    custom = client.assistants.create("agent", name="filtered")["assistant_id"]
    sidecar = Sidecar(
        server_url, poll=0.1, assistants=["other", custom], tracer_provider=tracer_provider
    )
    thread = _start(sidecar)
    try:
        # All three are busy at once, so the sidecar sees the unwanted one while it runs.
        runs = {
            name: _create(server_url, "slow:0.5", assistant=name)
            for name in ("agent", "other", custom)
        }
        for thread_id, run_id in runs.values():
            client.runs.join(thread_id, run_id)
        wanted = {runs["other"][1], runs[custom][1]}
        _wait(lambda: wanted <= set(_traced(span_exporter)))
        time.sleep(0.3)  # a few more polls: the unwanted run is over, so none would take it now
    finally:
        _stop(sidecar, thread)
        client.assistants.delete(custom)
        client.close()
    traced = _traced(span_exporter)
    assert sorted(traced) == sorted(wanted)
    graphs = {
        r.attributes[names.GEN_AI_WORKFLOW_NAME] for r in _runs(span_exporter.get_finished_spans())
    }
    assert graphs == {"other", "agent"}  # the custom assistant runs the `agent` graph


def test_a_server_killed_mid_run_loses_no_trace_and_duplicates_none(
    own_server: OwnServer,
    tracer_provider,
    span_exporter,
    meter_provider,
    metric_reader,
    tmp_path: Path,
) -> None:
    """The run a killed in-memory server forgot is traced once as RunLost; the next run once."""
    state = tmp_path / "state.json"
    url = own_server.url
    sidecar = Sidecar(
        url,
        poll=0.1,
        state_path=state,
        tracer_provider=tracer_provider,
        meter_provider=meter_provider,
    )
    thread = _start(sidecar)
    try:
        lost_thread, lost = _create(url, "slow:30")
        _wait_running(url, lost_thread, lost)
        _wait(lambda: sidecar.status()["following"] == 1)
        time.sleep(0.5)  # the slow tool is running
        own_server.kill()
        _wait(lambda: not sidecar.connected)
        own_server.restart()
        # The SDK retries a dropped stream itself (1 s, 2 s, ... between attempts) first.
        _wait(lambda: lost in _traced(span_exporter), timeout=30)
        _, after = _create(url, "fast")
        _wait(lambda: after in _traced(span_exporter))
        _wait(lambda: sidecar.connected)
    finally:
        _stop(sidecar, thread)
    assert sorted(_traced(span_exporter)) == sorted([lost, after])
    run, spans = _trace_of(span_exporter, lost)
    assert run.attributes[names.OTELSTREAM_OUTCOME] == "error"
    assert run.attributes[names.ERROR_TYPE] == "RunLost"
    assert run.status.status_code.name == "ERROR"
    assert [n for _, n, _ in span_tree(spans)] == [
        "RUN",
        "agent",
        "chat remote-fake",
        "tools",
        "execute_tool slow_tool",
    ]
    run, spans = _trace_of(span_exporter, after)
    assert run.attributes[names.OTELSTREAM_OUTCOME] == "completed"
    assert [n for _, n, _ in span_tree(spans)][:3] == ["RUN", "agent", "chat remote-fake"]
    assert len({s.context.trace_id for s in _runs(span_exporter.get_finished_spans())}) == 2
    assert sidecar.reconnects >= 1
    (point,) = metric_points(metric_reader)[names.METRIC_SIDECAR_RECONNECTS]
    assert point.value == sidecar.reconnects
    assert sorted(json.loads(state.read_text())["finished"]) == sorted([lost, after])


def test_a_restarted_sidecar_traces_no_run_twice(
    server_url, tracer_provider, span_exporter, tmp_path: Path
) -> None:
    """A sidecar on a stopped one's state file skips its runs, even one still running."""
    state = tmp_path / "state.json"
    first = Sidecar(server_url, poll=0.1, state_path=state, tracer_provider=tracer_provider)
    thread = _start(first)
    try:
        _, done = _create(server_url, "fast")
        _wait(lambda: done in _traced(span_exporter))
        cut_thread, cut = _create(server_url, "slow:2.5")
        _wait_running(server_url, cut_thread, cut)
        _wait(lambda: first.status()["following"] >= 1)
        time.sleep(0.3)
    finally:
        _stop(first, thread)
    second = Sidecar(server_url, poll=0.1, state_path=state, tracer_provider=tracer_provider)
    thread = _start(second)
    client = get_sync_client(url=server_url)
    try:
        assert client.runs.get(cut_thread, cut)["status"] == "running"
        _, new = _create(server_url, "fast")
        _wait(lambda: new in _traced(span_exporter))
        client.runs.join(cut_thread, cut)  # polled all along while `cut` was still busy
    finally:
        _stop(second, thread)
        client.close()
    traced = _traced(span_exporter)
    assert len(traced) == len(set(traced))
    assert {done, cut, new} <= set(traced)
    run, _ = _trace_of(span_exporter, cut)
    assert run.attributes[names.OTELSTREAM_OUTCOME] == "cancelled"
