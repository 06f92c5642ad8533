"""Helpers for the export tests: a small agent and workflow, OTLP JSON parsing, tools."""

from __future__ import annotations

import base64
import json
import re
import shutil
import socket
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml
from google.protobuf import json_format
from langchain.agents import create_agent
from langchain_core.messages import AIMessage
from langchain_core.tools import tool
from langgraph.config import get_stream_writer
from langgraph.graph import START, MessagesState, StateGraph

from otelstream.testing import FakeStreamingChatModel

REPO = Path(__file__).resolve().parents[2]

if TYPE_CHECKING:
    from google.protobuf.message import Message


@tool
def get_weather(city: str) -> str:
    """Return the weather for a city."""
    writer = get_stream_writer()
    writer({"progress": f"looking up {city}"})
    return f"It is sunny in {city}."


def make_agent_graph() -> Any:
    """A ``create_agent`` graph: the model calls one tool, then answers in several words."""
    model = FakeStreamingChatModel(
        responses=[
            AIMessage(
                content="Let me check.",
                tool_calls=[{"name": "get_weather", "args": {"city": "Paris"}, "id": "call_1"}],
            ),
            AIMessage(content="It is sunny in Paris today."),
        ]
    )
    return create_agent(model, tools=[get_weather], name="weather_agent")


@tool
def get_forecast(city: str) -> str:
    """Fail the way a broken tool does."""
    msg = f"forecast service down for {city}"
    raise ConnectionError(msg)


def make_failing_agent_graph() -> Any:
    """A ``create_agent`` graph whose only tool call raises ``ConnectionError``."""
    model = FakeStreamingChatModel(
        responses=[
            AIMessage(
                content="Checking the forecast.",
                tool_calls=[{"name": "get_forecast", "args": {"city": "Oslo"}, "id": "call_2"}],
            ),
            AIMessage(content="Sorry."),
        ]
    )
    return create_agent(model, tools=[get_forecast], name="forecast_agent")


def make_workflow_graph() -> Any:
    """A plain ``StateGraph`` (a workflow, not an agent): one node asks the model and streams."""
    model = FakeStreamingChatModel(responses=[AIMessage(content="Paris is sunny today.")])

    def answer(state: MessagesState) -> dict[str, Any]:
        return {"messages": [model.invoke(state["messages"])]}

    builder = StateGraph(MessagesState)
    builder.add_node("answer", answer)
    builder.add_edge(START, "answer")
    return builder.compile(name="weather_workflow")


AGENT_INPUT = {"messages": [{"role": "user", "content": "Weather in Paris?"}]}
STREAM_MODES = ["updates", "messages", "custom"]


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def read_otlp_jsonl(path: Path, message_type: type[Message]) -> list[dict[str, Any]]:
    """Parse an OTLP JSON Lines file strictly; return the lines as dicts.

    Each line must be an object that ``json_format.Parse`` accepts as ``message_type`` with no
    unknown field once the hex ids are turned back into protobuf's base64.
    """
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    result = []
    for line in lines:
        as_dict = json.loads(line)
        json_format.Parse(
            json.dumps(_hex_ids_to_base64(json.loads(line))),
            message_type(),
            ignore_unknown_fields=False,
        )
        result.append(as_dict)
    return result


def _hex_ids_to_base64(node: Any) -> Any:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("traceId", "spanId", "parentSpanId"):
                expected = 32 if key == "traceId" else 16
                assert re.fullmatch(f"[0-9a-f]{{{expected}}}", value), (key, value)
                node[key] = base64.b64encode(bytes.fromhex(value)).decode()
            else:
                _hex_ids_to_base64(value)
    elif isinstance(node, list):
        for item in node:
            _hex_ids_to_base64(item)
    return node


def all_spans(traces_lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every span in parsed ``TracesData`` lines."""
    return [
        span
        for line in traces_lines
        for resource_spans in line.get("resourceSpans", [])
        for scope_spans in resource_spans.get("scopeSpans", [])
        for span in scope_spans.get("spans", [])
    ]


def require_tool(name: str) -> str:
    """The path of an external tool; the test fails, with what to run, when it is missing."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(
            f"{name} is not installed: run scripts/provision.sh (make test does)", pytrace=False
        )
    return path


def promtool_check_expressions(
    promtool: str, expressions: dict[str, str], tmp_path: Path
) -> subprocess.CompletedProcess[str]:
    """Run ``promtool check rules`` on a rules file holding each expression as a recording rule."""
    rules = [
        {"record": f"check:expr_{i}", "expr": expr, "labels": {"source": name[:60]}}
        for i, (name, expr) in enumerate(expressions.items())
    ]
    path = tmp_path / "rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    return subprocess.run(
        [promtool, "check", "rules", str(path)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


COLLECTOR = REPO / "collector-config.yaml"
COMPOSE = REPO / "deploy" / "docker-compose.yaml"
GRAFANA = REPO / "grafana"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))
DATASOURCES = GRAFANA / "provisioning" / "datasources" / "otelstream.yaml"


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    panels = []
    for panel in dashboard["panels"]:
        panels.append(panel)
        panels += panel.get("panels", [])
    return panels


def promql_expressions() -> dict[str, str]:
    """Every PromQL expression in the dashboards and the datasource provisioning, by where."""
    found: dict[str, str] = {}
    for path in DASHBOARDS:
        for panel in _panels(json.loads(path.read_text(encoding="utf-8"))):
            for target in panel.get("targets", []):
                if target.get("datasource", {}).get("type") == "prometheus":
                    found[f"{path.name}: {panel['title']} {target['refId']}"] = target["expr"]
    for source in _yaml(DATASOURCES)["datasources"]:
        for query in source.get("jsonData", {}).get("tracesToMetrics", {}).get("queries", []):
            found[f"{source['name']}: {query['name']}"] = query["query"]
    return found


def as_plain_promql(expr: str) -> str:
    """Replace Grafana's macros with values so the expression is plain PromQL."""
    return (
        expr.replace("$$__tags", 'job="x"')
        .replace("$__tags", 'job="x"')
        .replace("$__rate_interval", "5m")
        .replace("$__range", "1h")
    )
