"""With content capture on: secrets masked, the user's redaction hook first, lengths bounded."""

from __future__ import annotations

from typing import Any

import pytest
from langchain.agents import create_agent
from langchain_core.messages import AIMessage
from langchain_core.tools import tool
from langgraph.config import get_stream_writer

import otelstream
from otelstream import names
from otelstream.record.content import MASK, is_secret_key, to_json
from otelstream.testing import FakeStreamingChatModel, tool_call


@tool
def call_api(url: str, api_key: str) -> str:
    """Call an API, reporting progress with the credentials it used."""
    get_stream_writer()({"url": url, "Authorization": "Bearer SECRET-B", "step": 1})
    return "ok"


def _run(tracer_provider: Any, options: otelstream.Options) -> None:
    model = FakeStreamingChatModel(
        responses=[
            tool_call("call_api", {"url": "https://x", "api_key": "SECRET-A"}, call_id="c1"),
            AIMessage(content="done with EMAIL bob@example.com"),
        ]
    )
    traced = otelstream.instrument(
        create_agent(model, tools=[call_api]), tracer_provider=tracer_provider, options=options
    )
    prompt = {"messages": [{"role": "user", "content": "use password=hunter2"}]}
    list(traced.stream(prompt, stream_mode=["updates", "custom"]))


def _recorded(spans: Any) -> str:
    return repr(
        [
            (s.name, dict(s.attributes or {}), [dict(e.attributes or {}) for e in s.events])
            for s in spans()
        ]
    )


@pytest.mark.parametrize(
    "key",
    ["api_key", "apiKey", "Authorization", "password", "client_secret", "x-api-key", "token"],
)
def test_secret_looking_keys_are_recognised(key: str) -> None:
    """Keys that name credentials are treated as secret."""
    assert is_secret_key(key)


@pytest.mark.parametrize("key", ["input_tokens", "max_tokens", "city", "author", "tokenizer"])
def test_ordinary_keys_are_not_secret(key: str) -> None:
    """Keys that merely contain a secret-like word are left alone."""
    assert not is_secret_key(key)


def test_values_under_secret_keys_are_masked_at_any_depth() -> None:
    """Masking reaches nested mappings and lists, and leaves other values as they are."""
    text = to_json({"a": [{"password": "p"}], "headers": {"Authorization": "x"}, "city": "SF"})
    assert "p" not in text.replace("password", "")
    assert f'"Authorization": "{MASK}"' in text
    assert '"city": "SF"' in text


def test_hostile_values_encode_without_raising() -> None:
    """Cycles, bytes and objects whose repr raises still encode."""

    class Hostile:
        def __repr__(self) -> str:
            raise RuntimeError("no")

    cyclic: dict[str, Any] = {}
    cyclic["self"] = cyclic
    assert "<cycle>" in to_json(cyclic)
    assert "<3 bytes>" in to_json({"b": b"abc"})
    assert "unserializable" in to_json(Hostile())


def test_secrets_in_tool_arguments_and_custom_payloads_are_masked(tracer_provider, spans) -> None:
    """With capture on, api_key and Authorization values never reach the spans."""
    _run(tracer_provider, otelstream.Options(capture_content=True))
    recorded = _recorded(spans)
    assert "SECRET-A" not in recorded
    assert "SECRET-B" not in recorded
    assert MASK in recorded
    assert "https://x" in recorded


def test_redaction_hook_runs_before_anything_is_recorded(tracer_provider, spans) -> None:
    """The hook sees every captured value with its attribute key and its answer is recorded."""
    seen: list[str] = []

    def redact(key: str, text: str) -> str:
        seen.append(key)
        return text.replace("hunter2", "[redacted]").replace("bob@example.com", "[email]")

    _run(tracer_provider, otelstream.Options(capture_content=True, redact=redact))
    recorded = _recorded(spans)
    assert "hunter2" not in recorded
    assert "bob@example.com" not in recorded
    assert "[redacted]" in recorded
    assert names.GEN_AI_INPUT_MESSAGES in seen
    assert names.GEN_AI_TOOL_CALL_ARGUMENTS in seen
    assert names.OTELSTREAM_CUSTOM_PAYLOAD in seen


def test_a_failing_redaction_hook_records_nothing(tracer_provider, spans) -> None:
    """A hook that raises drops the value instead of recording it uncleaned."""

    def redact(key: str, text: str) -> str:
        raise ValueError("broken hook")

    _run(tracer_provider, otelstream.Options(capture_content=True, redact=redact))
    recorded = _recorded(spans)
    assert "hunter2" not in recorded
    assert names.GEN_AI_INPUT_MESSAGES not in recorded


def test_hook_returning_none_drops_the_value(tracer_provider, spans) -> None:
    """Returning None from the hook records nothing under that key."""
    _run(
        tracer_provider,
        otelstream.Options(capture_content=True, redact=lambda key, text: None),
    )
    assert names.GEN_AI_TOOL_CALL_ARGUMENTS not in _recorded(spans)


def test_redact_must_be_callable() -> None:
    """A redaction hook that is not a function is rejected with a clear message."""
    with pytest.raises(TypeError, match="redact must be a function"):
        otelstream.Options(redact="nope")  # type: ignore[arg-type]
