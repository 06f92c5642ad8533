"""Static checks of the stack: collector config, compose file, Grafana provisioning, PromQL."""

from __future__ import annotations

import json
import re
import subprocess
from typing import TYPE_CHECKING, Any

from otlp_testkit import (
    COLLECTOR,
    COMPOSE,
    DASHBOARDS,
    DATASOURCES,
    GRAFANA,
    REPO,
    _panels,
    _yaml,
    as_plain_promql,
    promql_expressions,
    promtool_check_expressions,
    require_tool,
)

from otelstream import names

if TYPE_CHECKING:
    from pathlib import Path

# --- collector -----------------------------------------------------------------------------


def test_every_declared_collector_component_is_used_in_a_pipeline() -> None:
    """Every receiver, processor, exporter, connector and extension declared is in use."""
    config = _yaml(COLLECTOR)
    pipelines = config["service"]["pipelines"]
    used = {
        kind: {name for pipeline in pipelines.values() for name in pipeline.get(kind, [])}
        for kind in ("receivers", "processors", "exporters")
    }
    assert set(config["receivers"]) == used["receivers"] - set(config["connectors"])
    assert set(config["processors"]) == used["processors"]
    assert set(config["exporters"]) == used["exporters"] - set(config["connectors"])
    for connector in config["connectors"]:
        # A connector is an exporter of one pipeline and a receiver of another.
        assert connector in used["exporters"], connector
        assert connector in used["receivers"], connector
    assert set(config["extensions"]) == set(config["service"]["extensions"])
    for name in used["receivers"] | used["processors"] | used["exporters"]:
        declared = {**config["receivers"], **config["processors"], **config["exporters"]}
        assert name in declared or name in config["connectors"], f"{name} used but not declared"


def test_collector_pipelines_put_memory_limiter_first_and_batch_last() -> None:
    """memory_limiter leads every pipeline that has it; batch ends every pipeline that has it."""
    for name, pipeline in _yaml(COLLECTOR)["service"]["pipelines"].items():
        processors = pipeline.get("processors", [])
        if "memory_limiter" in processors:
            assert processors[0] == "memory_limiter", name
        if "batch" in processors:
            assert processors[-1] == "batch", name


def test_tail_sampling_keeps_errors_stalls_slow_runs_and_a_baseline() -> None:
    """The tail sampler keeps ERROR traces, stalled spans, slow runs, and a 5 % baseline."""
    policies = {p["type"]: p for p in _yaml(COLLECTOR)["processors"]["tail_sampling"]["policies"]}
    assert policies["status_code"]["status_code"]["status_codes"] == ["ERROR"]
    assert policies["boolean_attribute"]["boolean_attribute"] == {
        "key": "otelstream.stalled",
        "value": True,
    }
    assert 'IsMatch(name, "^stalled ")' in policies["ottl_condition"]["ottl_condition"]["span"]
    assert policies["latency"]["latency"]["threshold_ms"] > 0
    assert 0 < policies["probabilistic"]["probabilistic"]["sampling_percentage"] < 100


def test_spanmetrics_sees_all_spans_and_sampling_feeds_both_trace_backends() -> None:
    """spanmetrics is fed before sampling; sampled traces go to Jaeger and Tempo over OTLP gRPC."""
    config = _yaml(COLLECTOR)
    pipelines = config["service"]["pipelines"]
    assert "tail_sampling" not in pipelines["traces"]["processors"]
    assert "spanmetrics" in pipelines["traces"]["exporters"]
    sampled = [p for p in pipelines.values() if "tail_sampling" in p.get("processors", [])]
    assert len(sampled) == 1
    assert set(sampled[0]["exporters"]) == {"otlp/jaeger", "otlp/tempo"}
    assert config["exporters"]["otlp/jaeger"]["endpoint"] == "jaeger:4317"
    assert config["exporters"]["otlp/tempo"]["endpoint"] == "tempo:4317"
    dimensions = {d["name"] for d in config["connectors"]["spanmetrics"]["dimensions"]}
    assert dimensions <= {
        names.GEN_AI_OPERATION_NAME,
        names.GEN_AI_REQUEST_MODEL,
        names.LANGGRAPH_NODE,
    }


# --- compose -------------------------------------------------------------------------------


def _port(endpoint: str) -> int:
    return int(endpoint.rsplit(":", 1)[1])


def _published(service: dict[str, Any]) -> dict[int, int]:
    """Container port -> host port of a compose service's short-syntax ports."""
    result = {}
    for entry in service.get("ports", []):
        host, container = str(entry).split(":")[-2:]
        result[int(container)] = int(host)
    return result


def test_compose_has_the_stack_with_pinned_images() -> None:
    """The compose file runs the collector, Jaeger, Tempo, Prometheus and Grafana, images pinned."""
    services = _yaml(COMPOSE)["services"]
    assert set(services) == {"otel-collector", "jaeger", "tempo", "prometheus", "grafana"}
    assert services["otel-collector"]["image"].startswith("otel/opentelemetry-collector-contrib:")
    for name, service in services.items():
        tag = service["image"].rsplit(":", 1)[1]
        assert re.fullmatch(r"v?\d+\.\d+\.\d+", tag), f"{name} image is not pinned: {tag}"


def test_every_host_path_mounted_exists_in_the_repo() -> None:
    """Each bind mount's host path exists, relative to the compose file as compose resolves it."""
    services = _yaml(COMPOSE)["services"]
    mounts = [str(v).split(":")[0] for s in services.values() for v in s.get("volumes", [])]
    assert mounts
    for host in mounts:
        assert (COMPOSE.parent / host).resolve().exists(), host
    collector_mount = services["otel-collector"]["volumes"][0]
    assert (COMPOSE.parent / collector_mount.split(":")[0]).resolve() == COLLECTOR
    config_in_container = collector_mount.split(":")[1]
    assert f"--config={config_in_container}" in services["otel-collector"]["command"]


def test_ports_agree_between_collector_compose_prometheus_and_grafana() -> None:
    """OTLP and Prometheus exporter ports are published; Prometheus scrapes the exporter's port."""
    config = _yaml(COLLECTOR)
    services = _yaml(COMPOSE)["services"]
    published = _published(services["otel-collector"])
    protocols = config["receivers"]["otlp"]["protocols"]
    assert _port(protocols["grpc"]["endpoint"]) in published
    assert _port(protocols["http"]["endpoint"]) in published
    exporter_port = _port(config["exporters"]["prometheus"]["endpoint"])
    assert exporter_port in published
    assert _port(config["extensions"]["health_check"]["endpoint"]) in published
    prometheus = _yaml(REPO / "deploy" / "prometheus.yml")
    targets = [
        t
        for job in prometheus["scrape_configs"]
        for sc in job["static_configs"]
        for t in sc["targets"]
    ]
    assert targets == [f"otel-collector:{exporter_port}"]
    tempo = _yaml(REPO / "deploy" / "tempo.yaml")
    assert _port(
        tempo["distributor"]["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"]
    ) == _port(config["exporters"]["otlp/tempo"]["endpoint"])
    urls = {s["uid"]: s["url"] for s in _yaml(DATASOURCES)["datasources"]}
    assert urls["prometheus"] == f"http://prometheus:{_published(services['prometheus'])[9090]}"
    assert urls["tempo"] == f"http://tempo:{tempo['server']['http_listen_port']}"
    assert urls["jaeger"] == "http://jaeger:16686"


def test_prometheus_config_is_valid() -> None:
    """promtool accepts deploy/prometheus.yml."""
    promtool = require_tool("promtool")
    result = subprocess.run(
        [promtool, "check", "config", "--syntax-only", str(REPO / "deploy" / "prometheus.yml")],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


# --- grafana -------------------------------------------------------------------------------


def test_datasources_link_traces_and_metrics_both_ways() -> None:
    """Tempo links spans to metrics; Prometheus exemplars link to Tempo and Jaeger by trace_id."""
    sources = {s["uid"]: s for s in _yaml(DATASOURCES)["datasources"]}
    assert {s["type"] for s in sources.values()} == {"prometheus", "tempo", "jaeger"}
    assert sources["tempo"]["jsonData"]["tracesToMetrics"]["datasourceUid"] == "prometheus"
    destinations = sources["prometheus"]["jsonData"]["exemplarTraceIdDestinations"]
    assert {d["datasourceUid"] for d in destinations} == {"tempo", "jaeger"}
    assert {d["name"] for d in destinations} == {"trace_id"}


def test_dashboard_provider_points_at_the_mounted_dashboards() -> None:
    """The dashboards provider reads the directory compose mounts grafana/dashboards to."""
    provider = _yaml(GRAFANA / "provisioning" / "dashboards" / "otelstream.yaml")["providers"][0]
    grafana = _yaml(COMPOSE)["services"]["grafana"]
    mounts = dict(str(v).rsplit(":", 2)[:2] for v in grafana["volumes"])
    assert mounts["../grafana/dashboards"] == provider["options"]["path"]


def test_dashboards_are_valid_and_use_provisioned_datasources() -> None:
    """Each dashboard has a unique uid, unique panel ids, panels that do not overlap, and only
    provisioned datasource uids."""
    uids = {s["uid"] for s in _yaml(DATASOURCES)["datasources"]}
    assert {p.name for p in DASHBOARDS} == {"otelstream-overview.json", "otelstream-run.json"}
    seen = set()
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text(encoding="utf-8"))
        assert dashboard["uid"] not in seen
        seen.add(dashboard["uid"])
        panels = _panels(dashboard)
        assert len({p["id"] for p in panels}) == len(panels)
        boxes = [(p["title"], p["gridPos"]) for p in panels]
        for i, (title, a) in enumerate(boxes):
            for other, b in boxes[i + 1 :]:
                apart = (
                    a["x"] + a["w"] <= b["x"]
                    or b["x"] + b["w"] <= a["x"]
                    or a["y"] + a["h"] <= b["y"]
                    or b["y"] + b["h"] <= a["y"]
                )
                assert apart, f"{path.name}: panels {title!r} and {other!r} overlap"
        for panel in panels:
            for target in panel.get("targets", []):
                assert target["datasource"]["uid"] in uids, (path.name, panel["title"])


def test_traceql_attributes_are_otelstream_names() -> None:
    """Every span attribute a TraceQL query selects is a name from otelstream.names."""
    known = {v for k, v in vars(names).items() if k.isupper() and isinstance(v, str)}
    for path in DASHBOARDS:
        for panel in _panels(json.loads(path.read_text(encoding="utf-8"))):
            for target in panel.get("targets", []):
                if target.get("queryType") == "traceql":
                    for attribute in re.findall(r"\bspan\.([a-z_.]*[a-z_])", target["query"]):
                        assert attribute in known, (path.name, panel["title"], attribute)


def test_every_promql_expression_parses(tmp_path: Path) -> None:
    """promtool parses each dashboard and datasource PromQL expression (macros substituted)."""
    promtool = require_tool("promtool")
    expressions = {where: as_plain_promql(expr) for where, expr in promql_expressions().items()}
    assert len(expressions) >= 10
    result = promtool_check_expressions(promtool, expressions, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(expressions)} rules found" in result.stdout


def test_promtool_rejects_a_broken_expression(tmp_path: Path) -> None:
    """The PromQL check really parses: a broken expression fails it."""
    promtool = require_tool("promtool")
    result = promtool_check_expressions(promtool, {"broken": "sum(rate(foo[5m])"}, tmp_path)
    assert result.returncode != 0
