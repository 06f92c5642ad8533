"""End to end with a real Prometheus: the shipped stall alert fires while a tool still hangs."""

from __future__ import annotations

import json
import socket
import subprocess
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml
from helpers import USER
from langchain.agents import create_agent
from langchain_core.messages import AIMessage
from langchain_core.tools import tool
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import CollectorRegistry, start_http_server

import otelstream
from otelstream.options import Options
from otelstream.testing import FakeStreamingChatModel, tool_call

if TYPE_CHECKING:
    from collections.abc import Iterator

PROMETHEUS = Path("/usr/bin/prometheus")
RULES = Path(__file__).resolve().parents[1] / "prometheus" / "otelstream-rules.yaml"
ALERT = "OtelstreamToolCallStalled"

pytestmark = pytest.mark.prometheus


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - loopback only
        return json.load(response)


@pytest.fixture
def prometheus_binary() -> Path:
    """Debian's prometheus server; the test fails, with what to run, when it is missing."""
    if not PROMETHEUS.exists():
        pytest.fail(
            f"{PROMETHEUS} is missing: run scripts/provision.sh (make test does)", pytrace=False
        )
    return PROMETHEUS


@pytest.fixture
def app_metrics() -> Iterator[tuple[MeterProvider, int]]:
    """The app side: OTel's Prometheus exporter served on a loopback port; shut down after."""
    registry = CollectorRegistry()
    provider = MeterProvider(
        metric_readers=[PrometheusMetricReader(disable_target_info=True, registry=registry)]
    )
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    yield provider, port
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)
    provider.shutdown()


@pytest.fixture
def prometheus(
    prometheus_binary: Path, app_metrics: tuple[MeterProvider, int], tmp_path: Path
) -> Iterator[str]:
    """A Prometheus server scraping the app every second with the shipped rules; its base URL."""
    _, app_port = app_metrics
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(RULES)],
        "scrape_configs": [
            {
                "job_name": "otelstream-app",
                "static_configs": [{"targets": [f"127.0.0.1:{app_port}"]}],
            }
        ],
    }
    config_path = tmp_path / "prometheus.yml"
    config_path.write_text(yaml.safe_dump(config), encoding="utf-8")
    port = free_port()
    log = (tmp_path / "prometheus.log").open("w")
    process = subprocess.Popen(  # noqa: S603 - a fixed binary and arguments
        [
            str(prometheus_binary),
            f"--config.file={config_path}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(f"{url}/-/ready", timeout=1) as response:  # noqa: S310
                    if response.status == 200:
                        break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(
                    f"Prometheus did not start:\n{(tmp_path / 'prometheus.log').read_text()}"
                )
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        log.close()


def alert_state(url: str, name: str) -> str | None:
    """The state of alert ``name`` (``pending``/``firing``), or ``None`` when it is inactive."""
    alerts = get_json(f"{url}/api/v1/alerts")["data"]["alerts"]
    states = [a["state"] for a in alerts if a["labels"].get("alertname") == name]
    return "firing" if "firing" in states else (states[0] if states else None)


def test_tool_stall_alert_fires_in_prometheus_before_the_tool_returns(
    prometheus: str, app_metrics: tuple[MeterProvider, int]
) -> None:
    """Prometheus scraping a traced app fires OtelstreamToolCallStalled while the tool hangs."""
    meter_provider, _ = app_metrics
    release = threading.Event()

    @tool
    def slow_search(query: str) -> str:
        """Search slowly."""
        release.wait(60)
        return "results"

    model = FakeStreamingChatModel(
        responses=[tool_call("slow_search", {"query": "q"}, call_id="call_1"), AIMessage("Done.")]
    )
    tracer_provider = TracerProvider()
    graph = otelstream.instrument(
        create_agent(model, tools=[slow_search], name="searcher"),
        tracer_provider=tracer_provider,
        meter_provider=meter_provider,
        # The app's threshold (1 s) is far below the rule's fixed 30 s: the shipped rule, unchanged,
        # fires on the app's own stall report.
        options=Options(tool_stall_threshold=1.0),
    )
    with ThreadPoolExecutor(1) as pool:
        try:
            run = pool.submit(lambda: list(graph.stream(USER, stream_mode=["updates", "messages"])))
            deadline = time.monotonic() + 40
            while alert_state(prometheus, ALERT) != "firing":
                assert not run.done(), "the run ended before the alert fired"
                if time.monotonic() > deadline:
                    pytest.fail(f"{ALERT} not firing: {get_json(f'{prometheus}/api/v1/alerts')}")
                time.sleep(0.5)
            assert not run.done()
            [alert] = [
                a
                for a in get_json(f"{prometheus}/api/v1/alerts")["data"]["alerts"]
                if a["labels"]["alertname"] == ALERT
            ]
            assert alert["labels"]["gen_ai_tool_name"] == "slow_search"
            assert alert["labels"]["job"] == "otelstream-app"
        finally:
            release.set()
        chunks = run.result(timeout=20)
    assert chunks
    tracer_provider.shutdown()
