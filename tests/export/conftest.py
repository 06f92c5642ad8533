"""Fixtures for the export tests: a clean OTel environment and a small tool-calling agent."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import pytest
from otlp_testkit import make_agent_graph

if TYPE_CHECKING:
    from pathlib import Path


@pytest.fixture
def agent_graph() -> Any:
    """A ``create_agent`` graph: the model calls one tool, then answers in several words."""
    return make_agent_graph()


@pytest.fixture(autouse=True)
def clean_otel_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No ``OTEL_*``/``OTELSTREAM_*`` variable leaks in, and the working directory is a temp dir."""
    for name in list(os.environ):
        if name.startswith(("OTEL_", "OTELSTREAM_")):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return tmp_path
