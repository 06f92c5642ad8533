"""Helpers for the export tests: a fake streaming model, a small agent, OTLP JSON parsing, tools."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import socket
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import json_format
from google.protobuf.message import Message
from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.tools import tool
from langgraph.config import get_stream_writer

REPO = Path(__file__).resolve().parents[2]

try:  # the core's fake model, once it exists
    from otelstream.testing import FakeStreamingChatModel  # type: ignore[import-not-found]
except ImportError:

    class FakeStreamingChatModel(BaseChatModel):  # type: ignore[no-redef]
        """Streams scripted AIMessages word by word; tool calls arrive on the last chunk.

        A stand-in for ``otelstream.testing.FakeStreamingChatModel`` with the same constructor.
        """

        responses: list[AIMessage]
        model_name: str = "fake-model"
        index: int = 0

        @property
        def _llm_type(self) -> str:
            return "fake-streaming"

        def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> Any:
            params = super()._get_ls_params(stop=stop, **kwargs)
            params["ls_provider"] = "fake"
            params["ls_model_name"] = self.model_name
            return params

        def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> Any:
            return self

        def _next(self) -> AIMessage:
            message = self.responses[self.index % len(self.responses)]
            self.index += 1
            return message

        def _generate(
            self,
            messages: list[BaseMessage],
            stop: list[str] | None = None,
            run_manager: CallbackManagerForLLMRun | None = None,
            **kwargs: Any,
        ) -> ChatResult:
            return ChatResult(generations=[ChatGeneration(message=self._next())])

        def _stream(
            self,
            messages: list[BaseMessage],
            stop: list[str] | None = None,
            run_manager: CallbackManagerForLLMRun | None = None,
            **kwargs: Any,
        ) -> Iterator[ChatGenerationChunk]:
            message = self._next()
            words = re.split(r"(\s)", str(message.content)) if message.content else []
            for word in words:
                chunk = ChatGenerationChunk(message=AIMessageChunk(content=word))
                if run_manager:
                    run_manager.on_llm_new_token(word, chunk=chunk)
                yield chunk
            last = AIMessageChunk(
                content="",
                tool_call_chunks=[
                    {
                        "name": call["name"],
                        "args": json.dumps(call["args"]),
                        "id": call["id"],
                        "index": i,
                        "type": "tool_call_chunk",
                    }
                    for i, call in enumerate(message.tool_calls)
                ],
                usage_metadata={
                    "input_tokens": 7,
                    "output_tokens": len(words),
                    "total_tokens": 7 + len(words),
                },
                chunk_position="last",
            )
            yield ChatGenerationChunk(message=last)


@tool
def get_weather(city: str) -> str:
    """Return the weather for a city."""
    writer = get_stream_writer()
    writer({"progress": f"looking up {city}"})
    return f"It is sunny in {city}."


def make_agent_graph() -> Any:
    """A ``create_agent`` graph: the model calls one tool, then answers in several words."""
    from langchain.agents import create_agent

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


def require_tool(name: str, install_hint: str) -> str:
    """The path of an external tool; fail under CI when it is missing, skip locally."""
    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed ({install_hint})"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


def promtool_check_expressions(
    promtool: str, expressions: dict[str, str], tmp_path: Path
) -> subprocess.CompletedProcess[str]:
    """Run ``promtool check rules`` on a rules file holding each expression as a recording rule."""
    import yaml

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
