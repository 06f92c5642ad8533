"""Capture the demo's screen for the README: ``docs/demo.txt`` and ``docs/demo.svg``.

Runs ``otelstream demo`` in-process on a recording ``rich`` console: one snapshot of the live
view taken while the hanging tool is stalled, then the answer and the waterfall as the command
prints them. The trace file goes to a temporary directory.

Usage: ``.venv/bin/python scripts/capture_demo.py [OUTPUT_DIR]`` (default: ``docs``).
"""

from __future__ import annotations

import sys
import tempfile
import threading
import time
from pathlib import Path

from rich.console import Console
from rich.rule import Rule

from otelstream.cli import traced_run
from otelstream.cli.demo import DEMO_INPUT, build_demo_agent, demo_options
from otelstream.cli.live import LiveView

WIDTH = 150
TITLE = "otelstream demo: travel_agent"


def _snapshot_when_stalled(view: LiveView, console: Console, done: threading.Event) -> None:
    """Render the live view once, a moment after the first stall shows (the tool still hangs)."""
    while not done.is_set():
        if view.stalls:
            time.sleep(0.3)
            console.print(Rule("live view, while check_availability hangs", style="dim"))
            console.print(view)
            console.print(Rule("after the run", style="dim"))
            return
        time.sleep(0.05)


def main(output_dir: Path) -> None:
    """Run the demo once and write the recorded screen as text and SVG."""
    console = Console(record=True, width=WIDTH, force_terminal=True, color_system="truecolor")
    view = LiveView(console, interactive=True, title=TITLE)
    done = threading.Event()
    snapshot = threading.Thread(target=_snapshot_when_stalled, args=(view, console, done))
    snapshot.start()
    with tempfile.TemporaryDirectory() as tmp:
        trace_file = Path(tmp) / "otelstream-traces.jsonl"
        console.print(f"$ otelstream demo --trace-file {trace_file.name}")
        code = traced_run(
            console,
            True,
            graph=build_demo_agent(),
            graph_input=DEMO_INPUT,
            title=TITLE,
            options=demo_options(),
            stream_modes=("updates", "messages", "custom"),
            config=None,
            trace_file=str(trace_file),
            service_name="otelstream-demo",
            view=view,
        )
    done.set()
    snapshot.join()
    if code:
        msg = f"the demo failed (exit code {code})"
        raise SystemExit(msg)
    text = console.export_text(clear=False).replace(str(trace_file.parent) + "/", "./")
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "demo.txt").write_text(text, encoding="utf-8")
    svg = console.export_svg(title="otelstream demo").replace(str(trace_file.parent) + "/", "./")
    (output_dir / "demo.svg").write_text(svg, encoding="utf-8")
    print(f"wrote {output_dir / 'demo.txt'} and {output_dir / 'demo.svg'}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("docs"))
