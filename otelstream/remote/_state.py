"""The sidecar's state file: finished run ids, where discovery stopped, and the status line.

One JSON file, replaced atomically on each save, so a restarted sidecar traces no run twice and
picks up the runs created while it was down (from its cursor on).
"""

from __future__ import annotations

import json
import os
import time
from typing import TYPE_CHECKING, Any

from otelstream.remote._discover import parse_time

if TYPE_CHECKING:
    from datetime import datetime
    from pathlib import Path

KEEP_FINISHED = 10_000
"""Finished run ids kept (oldest dropped): more than any server keeps in flight."""


class State:
    """Finished run ids (bounded, insertion-ordered), the discovery cursor and the status line."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.finished: dict[str, None] = {}  # insertion-ordered set
        self.cursor: datetime | None = None
        if path is not None and path.exists():
            try:
                data = json.loads(path.read_text())
                self.finished = dict.fromkeys(str(r) for r in data.get("finished", []))
                self.cursor = parse_time(data.get("cursor"))
            except (OSError, ValueError, AttributeError):
                self.finished = {}

    def done(self, run_id: str) -> None:
        """Remember ``run_id`` as traced."""
        self.finished[run_id] = None
        while len(self.finished) > KEEP_FINISHED:
            del self.finished[next(iter(self.finished))]

    def save(self, status: dict[str, Any], cursor: datetime | None) -> None:
        """Write the file (no-op without a path)."""
        if self.path is None:
            return
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(
            json.dumps(
                {
                    "version": 2,
                    "finished": list(self.finished),
                    "cursor": None if cursor is None else cursor.isoformat(),
                    "status": status,
                }
            )
        )
        os.replace(tmp, self.path)


def print_status(path: Path) -> int:
    """Print the status line a running sidecar keeps in ``path``; 1 if there is none."""
    try:
        status = json.loads(path.read_text()).get("status") or {}
    except (OSError, ValueError):
        print(f"otelstream sidecar: no state at {path}")
        return 1
    age = time.time() - float(status.get("updated") or 0)
    print(
        f"otelstream sidecar {status.get('url')}: "
        f"{'connected' if status.get('connected') else 'DISCONNECTED'}, "
        f"following {status.get('following', 0)}, followed {status.get('runs_followed', 0)}, "
        f"untraced {status.get('runs_untraced', 0)}, "
        f"reconnects {status.get('reconnects', 0)}, lag {status.get('last_lag_s')} s, "
        f"updated {age:.1f} s ago"
    )
    return 0
