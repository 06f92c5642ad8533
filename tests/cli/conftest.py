"""Run the ``otelstream`` command as a person would: in a pseudo-terminal, or through a pipe."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent
PYTHON = sys.executable
CLI = [PYTHON, "-m", "otelstream.cli"]


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without OTEL_*/OTELSTREAM_* settings, so traces go to the file we name."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("OTEL_", "OTELSTREAM_", "FORCE_COLOR", "COLUMNS"))
    }
    env["PYTHONPATH"] = os.pathsep.join([str(HERE), *sys.path])
    env.update(extra)
    return env


def run_cli(*args: str, cwd: Path = HERE, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run the CLI through pipes (no terminal) and return what it printed."""
    return subprocess.run(
        [*CLI, *args],
        capture_output=True,
        text=True,
        encoding="utf-8",
        cwd=cwd,
        env=clean_env(),
        timeout=timeout,
        check=False,
    )


@pytest.fixture(scope="session")
def demo_trace(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """One non-interactive demo run, shared: its trace file and its output."""
    path = tmp_path_factory.mktemp("demo") / "demo-traces.jsonl"
    result = run_cli("demo", "--trace-file", str(path))
    return path, result
