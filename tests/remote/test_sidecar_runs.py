"""The sidecar with default settings on a real server: every kind of run, every run exactly once.

Runs are created the README's way (``create_run_kwargs()``), with the server's default modes on a
thread (``runs.wait(thread_id, ...)``: crons, webhooks, backends), and stateless
(``runs.wait(None, ...)``: the server deletes the thread at the end).
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import TYPE_CHECKING, Any

import httpx
from helpers import metric_points
from langgraph_sdk import get_client, get_sync_client

from otelstream import names
from otelstream.remote.sidecar import Sidecar, create_run_kwargs

from .conftest import span_tree

if TYPE_CHECKING:
    from pathlib import Path

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"


def _ask(text: str) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": text}]}


def _start(sidecar: Sidecar) -> threading.Thread:
    thread = threading.Thread(target=asyncio.run, args=(sidecar.run(),), daemon=True)
    thread.start()
    # The first look anchors the sidecar at the server's latest update; runs come after it.
    _wait(lambda: sidecar.last_poll is not None)
    return thread


def _stop(sidecar: Sidecar, thread: threading.Thread) -> None:
    sidecar.stop()
    thread.join(timeout=20)
    assert not thread.is_alive()


def _wait(predicate: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _run_spans(exporter: Any) -> dict[str, list[Any]]:
    """Run spans by remote run id (a list, so a run traced twice shows)."""
    out: dict[str, list[Any]] = {}
    for span in exporter.get_finished_spans():
        run_id = (span.attributes or {}).get(names.OTELSTREAM_REMOTE_RUN_ID)
        if run_id is not None:
            out.setdefault(str(run_id), []).append(span)
    return out


def _trace(exporter: Any, run: Any) -> list[Any]:
    return [s for s in exporter.get_finished_spans() if s.context.trace_id == run.context.trace_id]


def _names(spans: Any) -> list[str]:
    return [name for _, name, _ in span_tree(spans)]


def test_three_kinds_of_run_are_traced_whole_and_named_for_their_graph(
    server_url, tracer_provider, span_exporter
) -> None:
    """The README's way gives the full tree; default modes give rebuilt task spans; a stateless
    run that completed is ``completed``, named for its graph, and says which modes it saw."""
    client = get_sync_client(url=server_url)
    sidecar = Sidecar(server_url, tracer_provider=tracer_provider)
    thread = _start(sidecar)
    try:
        readme_thread = client.threads.create()["thread_id"]
        readme = client.runs.create(
            readme_thread,
            "agent",
            input=_ask("fast"),
            metadata={"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01"},
            **create_run_kwargs(),
        )["run_id"]
        client.runs.join(readme_thread, readme)
        default_thread = client.threads.create()["thread_id"]
        client.runs.wait(default_thread, "agent", input=_ask("fast"))
        (default,) = client.runs.list(default_thread)
        _wait(lambda: len(_run_spans(span_exporter)) == 2)
        stateless_before = set(_run_spans(span_exporter))
        client.runs.wait(None, "agent", input=_ask("slow:1"))
        _wait(lambda: len(_run_spans(span_exporter)) == 3)
    finally:
        _stop(sidecar, thread)
        client.close()
    runs = _run_spans(span_exporter)
    assert all(len(spans) == 1 for spans in runs.values())

    (run,) = runs[readme]
    assert f"{run.context.trace_id:032x}" == TRACE_ID
    assert _names(_trace(span_exporter, run)) == [
        "RUN",
        "agent",
        "chat remote-fake",
        "tools",
        "execute_tool fast_tool",
        "agent",
        "chat remote-fake",
    ]
    assert run.attributes[names.OTELSTREAM_OUTCOME] == "completed"

    (run,) = runs[default["run_id"]]
    spans = _trace(span_exporter, run)
    assert _names(spans) == ["RUN", "agent", "tools", "agent"]
    tasks = [s for s in spans if s is not run]
    assert all(s.attributes[names.OTELSTREAM_RECONSTRUCTED] is True for s in tasks)
    assert [s.attributes[names.LANGGRAPH_STEP] for s in tasks] == [0, 1, 2]
    assert all(run.start_time <= s.start_time <= s.end_time <= run.end_time for s in tasks)
    assert run.attributes[names.OTELSTREAM_REMOTE_STREAM_MODES] == ("values",)
    assert run.attributes[names.OTELSTREAM_OUTCOME] == "completed"

    (stateless,) = set(runs) - stateless_before
    (run,) = runs[stateless]
    assert run.name.partition(" ")[2] == "agent"  # the graph id, not the assistant's UUID
    assert run.attributes[names.OTELSTREAM_OUTCOME] == "completed"
    assert run.status.status_code.name == "UNSET"
    assert names.ERROR_TYPE not in run.attributes
    assert run.attributes[names.OTELSTREAM_REMOTE_OUTCOME_INFERRED] is True
    assert run.attributes[names.OTELSTREAM_REMOTE_STREAM_MODES] == ("values",)


def test_a_failed_default_mode_run_is_an_error_with_its_tasks_error(
    server_url, tracer_provider, span_exporter
) -> None:
    """A run that failed keeps the failing step's error type on its rebuilt task and on the run."""
    client = get_sync_client(url=server_url)
    sidecar = Sidecar(server_url, tracer_provider=tracer_provider)
    thread = _start(sidecar)
    try:
        thread_id = client.threads.create()["thread_id"]
        run_id = client.runs.create(thread_id, "agent", input=_ask("fail"))["run_id"]
        _wait(lambda: run_id in _run_spans(span_exporter))
    finally:
        _stop(sidecar, thread)
        client.close()
    (run,) = _run_spans(span_exporter)[run_id]
    assert run.attributes[names.OTELSTREAM_OUTCOME] == "error"
    assert run.attributes[names.ERROR_TYPE] == "ValueError"
    tools = [s for s in _trace(span_exporter, run) if s.name == "tools"]
    assert [s.attributes.get(names.ERROR_TYPE) for s in tools] == ["ValueError"]


def test_short_runs_one_after_another_are_each_traced_once(
    server_url, tracer_provider, span_exporter
) -> None:
    """Ten runs of about 0.8 s, each created when the last ended, give ten traces."""
    client = get_sync_client(url=server_url)
    sidecar = Sidecar(server_url, tracer_provider=tracer_provider)
    thread = _start(sidecar)
    created = []
    try:
        for index in range(10):
            thread_id = client.threads.create()["thread_id"]
            kwargs = create_run_kwargs() if index % 2 else {}
            run = client.runs.create(thread_id, "agent", input=_ask("slow:0.7"), **kwargs)
            client.runs.join(thread_id, run["run_id"])
            created.append(run["run_id"])
        _wait(lambda: set(created) <= set(_run_spans(span_exporter)))
        time.sleep(1.0)  # two more looks: nothing is traced twice
    finally:
        _stop(sidecar, thread)
        client.close()
    runs = _run_spans(span_exporter)
    assert sorted(runs) == sorted(created)
    assert all(len(spans) == 1 for spans in runs.values())
    outcomes = {spans[0].attributes[names.OTELSTREAM_OUTCOME] for spans in runs.values()}
    assert outcomes == {"completed"}


def test_two_hundred_runs_at_once_are_each_traced_once(
    server_url, tracer_provider, span_exporter, meter_provider, metric_reader
) -> None:
    """200 thread runs created at once, half the README's way and half with the server's default
    modes, give 200 completed traces and none twice, with default settings."""
    sidecar = Sidecar(server_url, tracer_provider=tracer_provider, meter_provider=meter_provider)
    thread = _start(sidecar)

    async def create_all() -> list[str]:
        # The SDK's pool holds 100 connections and waits 5 s for one: let the 200 wait longer.
        client = get_client(url=server_url, timeout=httpx.Timeout(60.0, pool=None))
        try:

            async def one(index: int) -> str:
                thread_id = (await client.threads.create())["thread_id"]
                kwargs = create_run_kwargs() if index % 2 else {}
                run = await client.runs.create(thread_id, "agent", input=_ask("hi"), **kwargs)
                await client.runs.join(thread_id, run["run_id"])
                return str(run["run_id"])

            return list(await asyncio.gather(*(one(i) for i in range(200))))
        finally:
            await client.aclose()

    try:
        created = asyncio.run(create_all())
        _wait(lambda: set(created) <= set(_run_spans(span_exporter)), timeout=90)
        time.sleep(1.0)  # two more looks: nothing is traced twice
    finally:
        _stop(sidecar, thread)
    runs = _run_spans(span_exporter)
    assert set(created) <= set(runs)
    assert all(len(spans) == 1 for spans in runs.values())
    outcomes = [runs[run_id][0].attributes[names.OTELSTREAM_OUTCOME] for run_id in created]
    assert outcomes.count("completed") == 200
    assert sidecar.runs_untraced == 0
    assert names.METRIC_SIDECAR_UNTRACED not in metric_points(metric_reader)


def test_a_restarted_sidecar_traces_the_runs_created_while_it_was_down(
    server_url, tracer_provider, span_exporter, tmp_path: Path
) -> None:
    """Runs that started and ended while no sidecar ran are traced by the next one, once each."""
    state = tmp_path / "state.json"
    client = get_sync_client(url=server_url)
    first = Sidecar(server_url, state_path=state, tracer_provider=tracer_provider)
    thread = _start(first)
    try:
        thread_id = client.threads.create()["thread_id"]
        before = client.runs.create(thread_id, "agent", input=_ask("hi"))["run_id"]
        _wait(lambda: before in _run_spans(span_exporter))
    finally:
        _stop(first, thread)
    down = []
    for kwargs in ({}, create_run_kwargs()):
        thread_id = client.threads.create()["thread_id"]
        run = client.runs.create(thread_id, "agent", input=_ask("fast"), **kwargs)
        client.runs.join(thread_id, run["run_id"])
        down.append(run["run_id"])
    second = Sidecar(server_url, state_path=state, tracer_provider=tracer_provider)
    thread = _start(second)
    try:
        _wait(lambda: set(down) <= set(_run_spans(span_exporter)))
    finally:
        _stop(second, thread)
        client.close()
    runs = _run_spans(span_exporter)
    assert {before, *down} <= set(runs)
    assert all(len(spans) == 1 for spans in runs.values())
    rebuilt, replayed = (runs[run_id][0] for run_id in down)
    assert _names(_trace(span_exporter, rebuilt)) == ["RUN", "agent", "tools", "agent"]
    assert replayed.attributes[names.OTELSTREAM_REMOTE_REPLAYED] is True
    assert "execute_tool fast_tool" in _names(_trace(span_exporter, replayed))
    for run in (rebuilt, replayed):
        assert run.attributes[names.OTELSTREAM_OUTCOME] == "completed"


def test_subgraph_runs_and_parallel_custom_writes(
    server_url, tracer_provider, span_exporter
) -> None:
    """With ``create_run_kwargs()`` the subgraph's node, its model call and its custom write are
    traced; the parallel branches' writes sit on the run span as ``ancestor``."""
    client = get_sync_client(url=server_url)
    sidecar = Sidecar(server_url, tracer_provider=tracer_provider)
    thread = _start(sidecar)
    try:
        thread_id = client.threads.create()["thread_id"]
        run_id = client.runs.create(
            thread_id, "workflow", input={"topic": "hello"}, **create_run_kwargs()
        )["run_id"]
        client.runs.join(thread_id, run_id)
        _wait(lambda: run_id in _run_spans(span_exporter))
    finally:
        _stop(sidecar, thread)
        client.close()
    (run,) = _run_spans(span_exporter)[run_id]
    spans = _trace(span_exporter, run)
    assert sorted(span_tree(spans)) == sorted(
        [
            (0, "RUN", "UNSET"),
            (1, "branch_a", "UNSET"),
            (1, "branch_b", "UNSET"),
            (1, "writer", "UNSET"),
            (2, "write", "UNSET"),
            (3, "chat remote-fake", "UNSET"),
        ]
    )
    custom = [e for e in run.events if e.name == names.EVENT_CUSTOM]
    assert [e.attributes[names.OTELSTREAM_ATTRIBUTION] for e in custom] == ["ancestor"] * 2
    (write,) = [s for s in spans if s.name == "write"]
    assert [e.attributes[names.OTELSTREAM_ATTRIBUTION] for e in write.events] == ["exact"]


def test_a_run_gone_before_it_could_be_read_is_counted_and_logged(
    server_url, tracer_provider, meter_provider, metric_reader, caplog
) -> None:
    """A thread seen busy whose runs are gone, then the thread deleted, is one untraced run."""
    client = get_sync_client(url=server_url)
    thread_id = client.threads.create()["thread_id"]
    # A run that waits a minute before it starts, deleted at once: its thread stays busy.
    run_id = client.runs.create(thread_id, "agent", input=_ask("hi"), after_seconds=60)["run_id"]
    client.runs.delete(thread_id, run_id)
    assert client.threads.get(thread_id)["status"] == "busy"
    sidecar = Sidecar(server_url, tracer_provider=tracer_provider, meter_provider=meter_provider)
    thread = _start(sidecar)
    try:
        client.threads.delete(thread_id)
        _wait(lambda: sidecar.runs_untraced == 1)
    finally:
        _stop(sidecar, thread)
        client.close()
    (point,) = metric_points(metric_reader)[names.METRIC_SIDECAR_UNTRACED]
    assert point.value == 1
    assert point.attributes == {names.OTELSTREAM_SIDECAR_REASON: "deleted"}
    assert any(names.LOG_SIDECAR_RUN_UNTRACED in r.getMessage() for r in caplog.records)


def test_an_interrupted_default_mode_run_is_interrupted_with_the_interrupt_on_its_task(
    server_url, tracer_provider, span_exporter
) -> None:
    """A run that stopped at ``interrupt()`` is ``interrupted``; the rebuilt task has the event."""
    client = get_sync_client(url=server_url)
    sidecar = Sidecar(server_url, tracer_provider=tracer_provider)
    thread = _start(sidecar)
    try:
        thread_id = client.threads.create()["thread_id"]
        run_id = client.runs.create(thread_id, "agent", input=_ask("ask"))["run_id"]
        _wait(lambda: run_id in _run_spans(span_exporter))
    finally:
        _stop(sidecar, thread)
        client.close()
    (run,) = _run_spans(span_exporter)[run_id]
    assert run.attributes[names.OTELSTREAM_OUTCOME] == "interrupted"
    spans = _trace(span_exporter, run)
    assert _names(spans) == ["RUN", "agent", "tools"]
    (tools,) = [s for s in spans if s.name == "tools"]
    assert [e.name for e in tools.events] == [names.EVENT_INTERRUPT]
