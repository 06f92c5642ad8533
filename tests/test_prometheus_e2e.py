"""End to end with a real Prometheus: the shipped stall alert fires while a tool still hangs, and
the overview dashboard's run and tool panels show agents and workflows from a traced app."""

from __future__ import annotations

import json
import socket
import subprocess
import threading
import time
import urllib.parse
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
from langgraph.graph import START, MessagesState, StateGraph
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
REPO = Path(__file__).resolve().parents[1]
RULES = REPO / "prometheus" / "otelstream-rules.yaml"
OVERVIEW = REPO / "grafana" / "dashboards" / "otelstream-overview.json"
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


# --- the overview dashboard's run and tool panels ---------------------------------------------


def query(url: str, expr: str) -> list[dict[str, Any]]:
    """Evaluate ``expr`` now; the result's series (``metric`` labels, ``value``)."""
    params = urllib.parse.urlencode({"query": expr})
    body = get_json(f"{url}/api/v1/query?{params}")
    assert body["status"] == "success", body
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def overview_exprs(title: str) -> list[str]:
    """The PromQL of one overview panel, with Grafana's macros replaced by fixed windows."""
    dashboard = json.loads(OVERVIEW.read_text(encoding="utf-8"))
    (panel,) = [p for p in dashboard["panels"] if p["title"] == title]
    return [
        t["expr"].replace("$__rate_interval", "1m").replace("$__range", "1h")
        for t in panel["targets"]
    ]


def _runs(meter_provider: MeterProvider) -> None:
    """One agent run and one workflow run that complete, and one of each that raises."""

    @tool
    def lookup(query: str) -> str:
        """Look something up."""
        return "found"

    @tool
    def broken_lookup(query: str) -> str:
        """Fail the way a broken tool does."""
        msg = f"lookup service down for {query}"
        raise ConnectionError(msg)

    def agent(tool_: Any) -> Any:
        model = FakeStreamingChatModel(
            responses=[tool_call(tool_.name, {"query": "q"}, call_id="call_1"), AIMessage("Done.")]
        )
        return create_agent(model, tools=[tool_], name="helper")

    def workflow(fail: bool) -> Any:
        def answer(state: MessagesState) -> dict[str, Any]:
            if fail:
                msg = "the workflow failed on purpose"
                raise RuntimeError(msg)
            return {"messages": [AIMessage("Done.")]}

        builder = StateGraph(MessagesState)
        builder.add_node("answer", answer)
        builder.add_edge(START, "answer")
        return builder.compile(name="pipeline")

    tracer_provider = TracerProvider()
    for graph, error in (
        (agent(lookup), None),
        (agent(broken_lookup), ConnectionError),
        (workflow(fail=False), None),
        (workflow(fail=True), RuntimeError),
    ):
        traced = otelstream.instrument(
            graph, tracer_provider=tracer_provider, meter_provider=meter_provider
        )
        if error is None:
            traced.invoke(USER)
        else:
            with pytest.raises(error):
                traced.invoke(USER)
    tracer_provider.shutdown()


def wait_for_count(url: str, expr: str, count: float) -> None:
    """Wait (bounded) until Prometheus has scraped ``expr`` at ``count`` for every series."""
    deadline = time.monotonic() + 20
    while True:
        values = [float(r["value"][1]) for r in query(url, expr)]
        if values and all(v == count for v in values):
            return
        if time.monotonic() > deadline:
            pytest.fail(f"{expr} is {values}, not {count}, after 20 s")
        time.sleep(0.3)


def test_overview_run_panels_show_agents_and_workflows(
    prometheus: str, app_metrics: tuple[MeterProvider, int]
) -> None:
    """A real Prometheus evaluates the overview's run and tool panels into agent and workflow
    series: rates, an error share of one half, durations, and the tool error ratio rule."""
    meter_provider, _ = app_metrics
    runs = (
        '{__name__=~"gen_ai_invoke_agent_duration_seconds_count'
        '|gen_ai_workflow_duration_seconds_count"}'
    )
    # Two rounds, each scraped, so every counter grows between samples and rates are not zero.
    for count in (1, 2):
        _runs(meter_provider)
        wait_for_count(prometheus, runs, count)

    (per_second,) = overview_exprs("Runs per second")
    series = {
        (
            r["metric"]["gen_ai_operation_name"],
            r["metric"].get("gen_ai_agent_name"),
            r["metric"].get("gen_ai_workflow_name"),
        ): float(r["value"][1])
        for r in query(prometheus, per_second)
    }
    assert set(series) == {("invoke_agent", "helper", None), ("invoke_workflow", None, "pipeline")}
    assert all(value > 0 for value in series.values()), series

    (error_rate,) = overview_exprs("Run error rate")
    shares = {
        r["metric"]["gen_ai_operation_name"]: float(r["value"][1])
        for r in query(prometheus, error_rate)
    }
    # Half the runs of each kind failed. Not exactly 0.5: rate() extrapolates each series from
    # its own first scrape, and a scrape can fall between a run that completed and one that failed.
    assert shares == pytest.approx({"invoke_agent": 0.5, "invoke_workflow": 0.5}, abs=0.1)

    (by_outcome,) = overview_exprs("Runs by outcome")
    outcomes = {
        r["metric"]["otelstream_outcome"]: float(r["value"][1])
        for r in query(prometheus, by_outcome)
    }
    assert set(outcomes) == {"completed", "error"}
    assert all(value > 0 for value in outcomes.values()), outcomes

    for expr in overview_exprs("Run duration p50 / p95"):
        operations = {r["metric"]["gen_ai_operation_name"] for r in query(prometheus, expr)}
        assert operations == {"invoke_agent", "invoke_workflow"}, expr

    (tool_latency,) = overview_exprs("Tool latency p95")
    tools = {r["metric"]["gen_ai_tool_name"] for r in query(prometheus, tool_latency)}
    assert tools == {"lookup", "broken_lookup"}
    (tool_errors,) = overview_exprs("Tool errors")
    failed = {
        (r["metric"]["gen_ai_tool_name"], r["metric"]["error_type"])
        for r in query(prometheus, tool_errors)
    }
    assert failed == {("broken_lookup", "ConnectionError")}
    # The shipped recording rule reads the same histogram (evaluated every second). A tool that
    # never failed has no error series to divide, so no ratio.
    deadline = time.monotonic() + 20
    ratio: dict[str, float] = {}
    while not ratio and time.monotonic() < deadline:
        time.sleep(0.3)
        ratio = {
            r["metric"]["gen_ai_tool_name"]: float(r["value"][1])
            for r in query(prometheus, "gen_ai_tool_name:gen_ai_execute_tool_errors:ratio_rate5m")
        }
    assert ratio == {"broken_lookup": 1.0}
