"""configure(): providers from the OTEL_* environment, the JSON Lines default, bounded shutdown."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from concurrent import futures
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
import pytest
from opentelemetry import metrics, trace
from opentelemetry._logs import LogRecord
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.logs.v1 import logs_pb2
from opentelemetry.proto.metrics.v1 import metrics_pb2
from opentelemetry.proto.trace.v1 import trace_pb2
from otlp_testkit import AGENT_INPUT, STREAM_MODES, all_spans, free_port, read_otlp_jsonl

import otelstream
from otelstream import names
from otelstream.export import Telemetry, configure

if TYPE_CHECKING:
    from collections.abc import Iterator


def _emit(telemetry: Telemetry) -> None:
    """Make a parent and a child span, an error span and one histogram point."""
    tracer = telemetry.tracer_provider.get_tracer("test")
    with tracer.start_as_current_span("invoke_agent test") as parent:
        parent.set_attribute("gen_ai.operation.name", "invoke_agent")
        with tracer.start_as_current_span("chat fake") as child:
            child.add_event("otelstream.chunk", {"otelstream.chunk.index": 0})
        try:
            with tracer.start_as_current_span("execute_tool boom"):
                raise RuntimeError("boom")
        except RuntimeError:
            pass
    meter = telemetry.meter_provider.get_meter("test")
    meter.create_histogram("otelstream.task.duration", unit="s").record(
        0.25, {"langgraph.node": "model"}
    )


@pytest.fixture
def telemetry_handles() -> Iterator[list[Telemetry]]:
    """Handles made by a test; shut down (bounded) afterwards whatever happened."""
    handles: list[Telemetry] = []
    yield handles
    for handle in handles:
        handle.shutdown(timeout=2.0)


def test_default_writes_strict_otlp_json_lines_in_working_directory(clean_otel_env: Path) -> None:
    """With nothing configured, spans land in ./otelstream-traces.jsonl in strict OTLP JSON."""
    telemetry = configure(service_name="svc")
    _emit(telemetry)
    assert telemetry.shutdown() is True

    assert telemetry.trace_file == clean_otel_env / "otelstream-traces.jsonl"
    lines = read_otlp_jsonl(telemetry.trace_file, trace_pb2.TracesData)
    spans = {span["name"]: span for span in all_spans(lines)}
    assert set(spans) == {"invoke_agent test", "chat fake", "execute_tool boom"}
    parent = spans["invoke_agent test"]
    assert spans["chat fake"]["parentSpanId"] == parent["spanId"]
    assert spans["chat fake"]["traceId"] == parent["traceId"]
    assert "parentSpanId" not in parent
    assert spans["execute_tool boom"]["status"]["code"] == 2  # integer enum: ERROR
    assert isinstance(parent["startTimeUnixNano"], str)  # 64-bit ints as strings
    assert isinstance(parent["kind"], int)
    assert spans["chat fake"]["events"][0]["name"] == "otelstream.chunk"
    resource = {
        a["key"]: a["value"] for a in lines[0]["resourceSpans"][0]["resource"]["attributes"]
    }
    assert resource["service.name"] == {"stringValue": "svc"}


def test_default_metrics_file_is_strict_otlp_metrics_data(clean_otel_env: Path) -> None:
    """Metrics land in a separate OTLP JSON Lines file of MetricsData objects."""
    telemetry = configure()
    _emit(telemetry)
    assert telemetry.shutdown() is True

    assert telemetry.metrics_file == clean_otel_env / "otelstream-metrics.jsonl"
    lines = read_otlp_jsonl(telemetry.metrics_file, metrics_pb2.MetricsData)
    names = {
        metric["name"]
        for line in lines
        for rm in line["resourceMetrics"]
        for sm in rm["scopeMetrics"]
        for metric in sm["metrics"]
    }
    assert names == {"otelstream.task.duration"}


def test_jsonl_path_argument_and_env_choose_the_file(
    clean_otel_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The jsonl_path argument wins over OTELSTREAM_TRACE_FILE, which wins over the default."""
    monkeypatch.setenv("OTELSTREAM_TRACE_FILE", str(clean_otel_env / "env" / "traces.jsonl"))
    from_env = configure()
    from_arg = configure(jsonl_path=clean_otel_env / "arg.jsonl")
    for handle in (from_env, from_arg):
        _emit(handle)
        assert handle.shutdown() is True
    assert from_env.trace_file == clean_otel_env / "env" / "traces.jsonl"
    assert from_env.metrics_file == clean_otel_env / "env" / "metrics.jsonl"
    assert from_arg.trace_file == clean_otel_env / "arg.jsonl"
    for handle in (from_env, from_arg):
        assert handle.trace_file is not None
        assert len(all_spans(read_otlp_jsonl(handle.trace_file, trace_pb2.TracesData))) == 3


def test_resource_comes_from_otel_environment(
    clean_otel_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES make the resource; service_name overrides."""
    monkeypatch.setenv("OTEL_SERVICE_NAME", "from-env")
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment.name=test,team=ai")
    plain = configure()
    overridden = configure(service_name="from-arg", jsonl_path=clean_otel_env / "x.jsonl")
    assert plain.tracer_provider.resource.attributes["service.name"] == "from-env"
    assert plain.tracer_provider.resource.attributes["team"] == "ai"
    assert overridden.tracer_provider.resource.attributes["service.name"] == "from-arg"
    assert overridden.meter_provider._sdk_config.resource.attributes["team"] == "ai"
    assert plain.shutdown() is True
    assert overridden.shutdown() is True


def test_sampler_comes_from_otel_traces_sampler(
    clean_otel_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """OTEL_TRACES_SAMPLER=always_off is honoured through the SDK: no span is written."""
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "always_off")
    telemetry = configure()
    _emit(telemetry)
    assert telemetry.shutdown() is True
    assert telemetry.trace_file is not None
    assert not telemetry.trace_file.exists()


def test_globals_are_untouched_by_default() -> None:
    """configure() leaves the global tracer and meter providers alone unless set_global=True."""
    telemetry = configure()
    assert trace.get_tracer_provider() is not telemetry.tracer_provider
    assert metrics.get_meter_provider() is not telemetry.meter_provider
    assert telemetry.shutdown() is True


def test_set_global_installs_the_providers(clean_otel_env: Path) -> None:
    """set_global=True makes the providers the OpenTelemetry globals (in a fresh process)."""
    code = (
        "from opentelemetry import metrics, trace\n"
        "from otelstream.export import configure\n"
        "t = configure(set_global=True)\n"
        "assert trace.get_tracer_provider() is t.tracer_provider\n"
        "assert metrics.get_meter_provider() is t.meter_provider\n"
        "assert t.shutdown()\n"
    )
    root = Path(__file__).resolve().parents[2]
    subprocess.run(
        [sys.executable, "-c", code],
        check=True,
        cwd=clean_otel_env,
        env=_env_with_path(root),
        timeout=120,
    )


def _env_with_path(root: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "OTELSTREAM_"))}
    env["PYTHONPATH"] = str(root)
    return env


def test_unknown_protocol_is_a_value_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """An unsupported OTEL_EXPORTER_OTLP_PROTOCOL fails at configure() with a helpful message."""
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")
    with pytest.raises(ValueError, match="grpc"):
        configure()


def test_traces_exporter_none_disables_traces_but_not_metrics(
    clean_otel_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """OTEL_TRACES_EXPORTER=none is read as the SDK reads it: no trace exporter, no trace file."""
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "none")
    telemetry = configure()
    _emit(telemetry)
    assert telemetry.shutdown() is True
    assert telemetry.trace_file is None
    assert not (clean_otel_env / "otelstream-traces.jsonl").exists()
    assert telemetry.metrics_file is not None
    assert telemetry.metrics_file.exists()


# --- real OTLP receivers on loopback -------------------------------------------------------


class _HttpReceiver(BaseHTTPRequestHandler):
    received: list[tuple[str, dict[str, str], bytes]]

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append((self.path, dict(self.headers), body))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def http_receiver() -> Iterator[tuple[str, list[tuple[str, dict[str, str], bytes]]]]:
    """A minimal OTLP/HTTP protobuf receiver on loopback; yields its URL and what it received."""
    received: list[tuple[str, dict[str, str], bytes]] = []
    handler = type("Handler", (_HttpReceiver,), {"received": received})
    server = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", received
    server.shutdown()
    server.server_close()


def test_http_protobuf_endpoint_and_headers_from_env(
    clean_otel_env: Path, monkeypatch: pytest.MonkeyPatch, http_receiver: Any
) -> None:
    """Protocol http/protobuf sends spans and metrics to the endpoint, with the headers."""
    url, received = http_receiver
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", url)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-tenant=acme")
    telemetry = configure(service_name="http-svc")
    _emit(telemetry)
    assert telemetry.shutdown() is True

    assert telemetry.trace_file is None
    assert not (clean_otel_env / "otelstream-traces.jsonl").exists()
    paths = {path for path, _, _ in received}
    assert paths == {"/v1/traces", "/v1/metrics"}
    trace_bodies = [body for path, _, body in received if path == "/v1/traces"]
    request = trace_service_pb2.ExportTraceServiceRequest()
    names = set()
    for body in trace_bodies:
        request.ParseFromString(body)
        names |= {
            s.name for rs in request.resource_spans for ss in rs.scope_spans for s in ss.spans
        }
    assert names == {"invoke_agent test", "chat fake", "execute_tool boom"}
    assert all(headers.get("x-tenant") == "acme" for _, headers, _ in received)
    assert telemetry.export_failures == {"traces": 0, "metrics": 0, "logs": 0}


class _TraceService(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self) -> None:
        self.requests: list[trace_service_pb2.ExportTraceServiceRequest] = []
        self.metadata: list[dict[str, str]] = []

    def Export(self, request: Any, context: Any) -> Any:  # noqa: N802 - gRPC's naming
        self.requests.append(request)
        self.metadata.append(dict(context.invocation_metadata()))
        return trace_service_pb2.ExportTraceServiceResponse()


class _MetricsService(metrics_service_pb2_grpc.MetricsServiceServicer):
    def __init__(self) -> None:
        self.requests: list[metrics_service_pb2.ExportMetricsServiceRequest] = []

    def Export(self, request: Any, context: Any) -> Any:  # noqa: N802 - gRPC's naming
        self.requests.append(request)
        return metrics_service_pb2.ExportMetricsServiceResponse()


def test_grpc_is_used_for_grpc_protocol_with_signal_specific_endpoint(
    clean_otel_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """OTEL_EXPORTER_OTLP_TRACES_ENDPOINT with protocol grpc sends spans over gRPC; metrics too."""
    traces, metrics_ = _TraceService(), _MetricsService()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(traces, server)
    metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(metrics_, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", f"http://127.0.0.1:{port}")
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", f"http://127.0.0.1:{port}")
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-tenant=acme")
        telemetry = configure()
        _emit(telemetry)
        assert telemetry.shutdown() is True
    finally:
        server.stop(grace=None)
    names = {
        s.name
        for r in traces.requests
        for rs in r.resource_spans
        for ss in rs.scope_spans
        for s in ss.spans
    }
    assert names == {"invoke_agent test", "chat fake", "execute_tool boom"}
    assert traces.metadata[0]["x-tenant"] == "acme"
    assert metrics_.requests
    assert telemetry.trace_file is None


# --- failure paths -------------------------------------------------------------------------


@pytest.fixture
def blackhole() -> Iterator[int]:
    """A loopback port that accepts connections and never answers (a hung collector)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join()
    for conn in accepted:
        conn.close()
    listener.close()


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_shutdown_is_bounded_against_a_blackhole_endpoint(
    monkeypatch: pytest.MonkeyPatch, blackhole: int, protocol: str
) -> None:
    """shutdown(timeout) returns False instead of blocking while the collector never answers."""
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{blackhole}")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", protocol)
    telemetry = configure()
    _emit(telemetry)
    assert telemetry.shutdown(timeout=0.5) is False
    assert telemetry.shutdown(timeout=0.5) is True  # a second call is a no-op


def test_unreachable_endpoint_failure_is_counted_not_raised(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A refused connection makes exports fail quietly; the handle counts them."""
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "1")
    telemetry = configure()
    _emit(telemetry)
    telemetry.shutdown(timeout=30.0)
    assert telemetry.export_failures["traces"] >= 1


def test_unwritable_trace_file_is_counted_not_raised(clean_otel_env: Path) -> None:
    """A trace file that cannot be created makes exports fail quietly; the handle counts them."""
    blocker = clean_otel_env / "a-file"
    blocker.write_text("not a directory")
    telemetry = configure(jsonl_path=blocker / "traces.jsonl")
    _emit(telemetry)
    assert telemetry.shutdown() is True
    assert telemetry.export_failures["traces"] == 1
    assert telemetry.export_failures["metrics"] >= 1


def test_logs_go_to_a_logs_file_when_asked(clean_otel_env: Path) -> None:
    """logs=True adds a LoggerProvider whose records land in otelstream-logs.jsonl as LogsData."""
    telemetry = configure(logs=True)
    assert telemetry.logger_provider is not None
    logger = telemetry.logger_provider.get_logger("test")
    tracer = telemetry.tracer_provider.get_tracer("test")
    with tracer.start_as_current_span("with log"):
        logger.emit(LogRecord(body="hello", severity_text="INFO"))
    assert telemetry.shutdown() is True
    lines = read_otlp_jsonl(clean_otel_env / "otelstream-logs.jsonl", logs_pb2.LogsData)
    record = lines[0]["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0]
    assert record["body"] == {"stringValue": "hello"}
    assert len(record["traceId"]) == 32


def test_traced_agent_run_lands_in_the_default_file(clean_otel_env: Path, agent_graph: Any) -> None:
    """A real traced agent run goes through configure() into a strictly valid trace file."""
    telemetry = configure(service_name="agent")
    traced = otelstream.instrument(
        agent_graph,
        tracer_provider=telemetry.tracer_provider,
        meter_provider=telemetry.meter_provider,
    )
    list(traced.stream(AGENT_INPUT, stream_mode=STREAM_MODES))
    assert telemetry.shutdown() is True

    assert telemetry.trace_file is not None
    spans = all_spans(read_otlp_jsonl(telemetry.trace_file, trace_pb2.TracesData))
    by_name = {span["name"]: span for span in spans}
    root = by_name[names.SPAN_INVOKE_AGENT.format(agent="weather_agent")]
    assert "parentSpanId" not in root
    assert _attributes(root) == {
        names.GEN_AI_OPERATION_NAME: names.OP_INVOKE_AGENT,
        names.GEN_AI_AGENT_NAME: "weather_agent",
    }
    assert {span["traceId"] for span in spans} == {root["traceId"]}
    tool = by_name[names.SPAN_EXECUTE_TOOL.format(tool="get_weather")]
    assert names.EVENT_CUSTOM in {event["name"] for event in tool.get("events", [])}
    chat_events = [
        event["name"]
        for span in spans
        if span["name"].startswith("chat ")
        for event in span.get("events", [])
    ]
    assert names.EVENT_CHUNK in chat_events
    assert telemetry.metrics_file is not None
    metric_lines = read_otlp_jsonl(telemetry.metrics_file, metrics_pb2.MetricsData)
    points = {
        metric["name"]: [_attributes(point) for point in metric["histogram"]["dataPoints"]]
        for line in metric_lines
        for rm in line["resourceMetrics"]
        for sm in rm["scopeMetrics"]
        for metric in sm["metrics"]
        if "histogram" in metric
    }
    # The run, its tool call and its chat calls each land in their operation's histogram.
    assert points[names.METRIC_INVOKE_AGENT_DURATION] == [
        {
            names.GEN_AI_OPERATION_NAME: names.OP_INVOKE_AGENT,
            names.GEN_AI_AGENT_NAME: "weather_agent",
        }
    ]
    assert points[names.METRIC_EXECUTE_TOOL_DURATION] == [
        {names.GEN_AI_OPERATION_NAME: names.OP_EXECUTE_TOOL, names.GEN_AI_TOOL_NAME: "get_weather"}
    ]
    assert {p[names.GEN_AI_OPERATION_NAME] for p in points[names.METRIC_OPERATION_DURATION]} == {
        names.OP_CHAT
    }
    assert names.METRIC_WORKFLOW_DURATION not in points


_NAME_KEYS = {
    names.GEN_AI_OPERATION_NAME,
    names.GEN_AI_AGENT_NAME,
    names.GEN_AI_WORKFLOW_NAME,
    names.GEN_AI_TOOL_NAME,
}


def _attributes(item: dict[str, Any]) -> dict[str, Any]:
    """The operation and agent/workflow/tool name attributes of an OTLP JSON span or point."""
    return {
        attribute["key"]: next(iter(attribute["value"].values()))
        for attribute in item.get("attributes", [])
        if attribute["key"] in _NAME_KEYS
    }
