"""A real OTLP round trip: a traced agent run exported by configure() and read back from Phoenix."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from otlp_testkit import AGENT_INPUT, REPO, STREAM_MODES, free_port

import otelstream
from otelstream import names
from otelstream.export import configure

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.phoenix

PHOENIX_VENV = Path(os.environ.get("PHOENIX_VENV", REPO / ".cache" / "phoenix-venv"))
STARTUP_SECONDS = 120
READ_BACK_SECONDS = 30


@dataclass
class Phoenix:
    """A running Phoenix server on loopback."""

    http_url: str
    grpc_port: int

    def spans(self, project: str) -> list[dict[str, Any]]:
        """All spans of ``project`` (following the pagination cursor)."""
        spans: list[dict[str, Any]] = []
        cursor = None
        while True:
            url = f"{self.http_url}/v1/projects/{project}/spans?limit=1000"
            if cursor:
                url += f"&cursor={cursor}"
            try:
                with urllib.request.urlopen(url, timeout=10) as response:
                    page = json.load(response)
            except urllib.error.HTTPError as exc:
                if exc.code == 404:  # the project does not exist until its first span arrives
                    return []
                raise
            spans += page["data"]
            cursor = page.get("next_cursor")
            if not cursor:
                return spans


@pytest.fixture(scope="module")
def phoenix(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Phoenix]:
    """Start ``phoenix serve`` from its own venv on free loopback ports; stop its process group."""
    executable = PHOENIX_VENV / "bin" / "phoenix"
    if not executable.exists():
        message = f"Phoenix is not installed in {PHOENIX_VENV}"
        pytest.fail(f"{message}: run scripts/provision.sh (make test does)", pytrace=False)
    http_port, grpc_port = free_port(), free_port()
    workdir = tmp_path_factory.mktemp("phoenix")
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(workdir),
        "PHOENIX_HOST": "127.0.0.1",
        "PHOENIX_PORT": str(http_port),
        "PHOENIX_GRPC_PORT": str(grpc_port),
        "PHOENIX_WORKING_DIR": str(workdir),
        "PHOENIX_TELEMETRY_ENABLED": "false",
    }
    log = (workdir / "phoenix.log").open("wb")
    process = subprocess.Popen(
        [str(executable), "serve"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group, so the finalizer stops all of it
    )
    url = f"http://127.0.0.1:{http_port}"
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            if process.poll() is not None:
                pytest.fail(f"phoenix exited: {(workdir / 'phoenix.log').read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{url}/healthz", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"phoenix did not start within {STARTUP_SECONDS} s")
            time.sleep(0.5)
        yield Phoenix(http_url=url, grpc_port=grpc_port)
    finally:
        _stop_group(process)
        log.close()


def _stop_group(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server's process group, then SIGKILL it if it lingers."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=15)
    except ProcessLookupError:
        pass


def _wait_for_spans(phoenix: Phoenix, project: str, at_least: int) -> list[dict[str, Any]]:
    """Poll Phoenix until the project holds ``at_least`` spans (ingestion is asynchronous)."""
    deadline = time.monotonic() + READ_BACK_SECONDS
    while True:
        spans = phoenix.spans(project)
        if len(spans) >= at_least or time.monotonic() > deadline:
            return spans
        time.sleep(0.5)


@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
def test_agent_run_round_trips_through_phoenix(
    phoenix: Phoenix,
    agent_graph: Any,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    protocol: str,
) -> None:
    """A traced create_agent run exported over OTLP comes back from Phoenix with its span tree."""
    project = "roundtrip-" + protocol.replace("/", "-")
    if protocol == "grpc":
        endpoint = f"http://127.0.0.1:{phoenix.grpc_port}"
    else:
        endpoint = f"{phoenix.http_url}/v1/traces"
    # Only traces go to Phoenix (it takes no OTLP metrics); metrics stay in the local file.
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", endpoint)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", protocol)
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", f"openinference.project.name={project}")
    telemetry = configure(service_name="roundtrip", metrics_jsonl_path=tmp_path / "m.jsonl")
    assert telemetry.trace_file is None
    traced = otelstream.instrument(
        agent_graph,
        tracer_provider=telemetry.tracer_provider,
        meter_provider=telemetry.meter_provider,
    )
    chunks = list(traced.stream(AGENT_INPUT, stream_mode=STREAM_MODES))
    assert chunks
    assert telemetry.shutdown(timeout=20.0) is True
    assert telemetry.export_failures["traces"] == 0

    spans = _wait_for_spans(phoenix, project, at_least=5)
    by_id = {span["context"]["span_id"]: span for span in spans}
    assert len({span["context"]["trace_id"] for span in spans}) == 1

    roots = [span for span in spans if span["parent_id"] is None]
    assert [root["name"] for root in roots] == [
        names.SPAN_INVOKE_AGENT.format(agent="weather_agent")
    ]
    for span in spans:
        if span["parent_id"] is not None:
            assert span["parent_id"] in by_id, f"{span['name']} has a dangling parent"

    chats = [s for s in spans if s["attributes"].get(names.GEN_AI_OPERATION_NAME) == names.OP_CHAT]
    assert len(chats) == 2
    for chat in chats:
        assert chat["name"].startswith("chat ")
        assert chat["attributes"][names.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] >= 0
        assert names.EVENT_CHUNK in {event["name"] for event in chat["events"]}

    tools = [s for s in spans if s["name"] == names.SPAN_EXECUTE_TOOL.format(tool="get_weather")]
    assert len(tools) == 1
    assert tools[0]["attributes"][names.GEN_AI_TOOL_NAME] == "get_weather"
    custom_events = [e for s in spans for e in s["events"] if e["name"] == names.EVENT_CUSTOM]
    assert custom_events

    # Every chat and tool span hangs (directly or not) under the one invoke_agent root.
    root_id = roots[0]["context"]["span_id"]
    for span in [*chats, *tools]:
        ancestor = span
        while ancestor["parent_id"] is not None:
            ancestor = by_id[ancestor["parent_id"]]
        assert ancestor["context"]["span_id"] == root_id
