"""`opentelemetry-instrument python app.py` traces a LangGraph app with no change to its code."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

APP = '''
from langchain.agents import create_agent
from langchain_core.messages import AIMessage
from langchain_core.tools import tool
from langgraph.config import get_stream_writer
from langgraph.graph import START, MessagesState, StateGraph

from otelstream.testing import FakeStreamingChatModel, tool_call


@tool
def get_weather(city: str) -> str:
    """Get the weather for a city."""
    get_stream_writer()("Fetched 10/100 records")
    return f"sunny in {city}"


model = FakeStreamingChatModel(
    responses=[tool_call("get_weather", {"city": "SF"}, call_id="c1"), AIMessage("It is sunny.")]
)
agent = create_agent(model, tools=[get_weather], name="weather_agent")
question = {"messages": [("user", "weather?")]}
for mode, chunk in agent.stream(question, stream_mode=["updates", "custom"]):
    print("CHUNK", mode, flush=True)

# Any other graph is a workflow.
builder = StateGraph(MessagesState)
builder.add_node("echo", lambda state: {"messages": [AIMessage("echo")]})
builder.add_edge(START, "echo")
builder.compile(name="echo_workflow").invoke(question)
'''


def _spans(stdout: str) -> list[dict[str, Any]]:
    """The JSON objects the console span exporter printed, one per span."""
    decoder = json.JSONDecoder()
    spans, index = [], 0
    while (start := stdout.find("{", index)) != -1:
        try:
            value, end = decoder.raw_decode(stdout, start)
        except json.JSONDecodeError:
            index = start + 1
            continue
        if isinstance(value, dict) and "context" in value:
            spans.append(value)
        index = end
    return spans


def test_opentelemetry_instrument_traces_an_unchanged_app(tmp_path: Path) -> None:
    """The entry point loads the instrumentor: the agent's run is one invoke_agent trace with
    task, chat and tool spans; a plain graph's run is an invoke_workflow trace."""
    app = tmp_path / "app.py"
    app.write_text(APP)
    bin_dir = Path(sys.executable).parent
    env = {
        **os.environ,
        "OTEL_SERVICE_NAME": "auto-test",
        "OTEL_TRACES_EXPORTER": "console",
        "OTEL_METRICS_EXPORTER": "none",
        "OTEL_LOGS_EXPORTER": "none",
    }
    result = subprocess.run(
        [str(bin_dir / "opentelemetry-instrument"), sys.executable, str(app)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("CHUNK updates") == 3
    assert "CHUNK custom" in result.stdout
    spans = _spans(result.stdout)
    names = sorted(str(s["name"]) for s in spans)
    assert "invoke_agent weather_agent" in names
    assert names.count("chat fake-model") == 2
    assert "execute_tool get_weather" in names
    roots = {str(s["name"]): s for s in spans if s["parent_id"] is None}
    assert sorted(roots) == ["invoke_agent weather_agent", "invoke_workflow echo_workflow"]
    agent_root = roots["invoke_agent weather_agent"]
    workflow_root = roots["invoke_workflow echo_workflow"]
    assert agent_root["attributes"]["gen_ai.operation.name"] == "invoke_agent"
    assert agent_root["attributes"]["gen_ai.agent.name"] == "weather_agent"
    assert workflow_root["attributes"]["gen_ai.operation.name"] == "invoke_workflow"
    assert workflow_root["attributes"]["gen_ai.workflow.name"] == "echo_workflow"
    agent_trace = agent_root["context"]["trace_id"]
    workflow_trace = workflow_root["context"]["trace_id"]
    assert agent_trace != workflow_trace
    in_workflow = [s for s in spans if s["context"]["trace_id"] == workflow_trace]
    assert sorted(str(s["name"]) for s in in_workflow) == ["echo", "invoke_workflow echo_workflow"]
    assert all(s["context"]["trace_id"] == agent_trace for s in spans if s not in in_workflow)
    tool_span = next(s for s in spans if s["name"] == "execute_tool get_weather")
    assert [e["name"] for e in tool_span["events"]] == ["langgraph.custom"]
