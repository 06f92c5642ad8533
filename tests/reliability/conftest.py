"""Fixtures for the reliability proofs: a clean ``OTEL_*`` environment and the export test kit."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

# The loopback OTLP helpers live next to the export tests; make them importable from here too.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "export"))

if TYPE_CHECKING:
    from collections.abc import Iterator


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: a reliability proof that takes seconds, not millis")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """No ``OTEL_*``/``OTELSTREAM_*`` variable leaks in, and the working directory is a temp dir."""
    for name in list(os.environ):
        if name.startswith(("OTEL_", "OTELSTREAM_")):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return tmp_path
