"""The ``otelstream sidecar`` command line (``otelstream.remote.sidecar.main``)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
from pathlib import Path

from otelstream.remote._state import print_status

DEFAULT_POLL = 0.5
DEFAULT_CONCURRENCY = 256


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="otelstream sidecar",
        description="Follow every run on a LangGraph server and export each as one trace.",
    )
    parser.add_argument("--url", help="the LangGraph server, e.g. http://127.0.0.1:2024")
    parser.add_argument(
        "--assistant", action="append", default=[], help="follow only this assistant or graph id"
    )
    parser.add_argument(
        "--poll", type=float, default=DEFAULT_POLL, help="seconds between looks for new runs"
    )
    parser.add_argument(
        "--state",
        type=Path,
        default=Path("otelstream-sidecar.json"),
        help="JSON file of finished run ids, the discovery cursor and the status line",
    )
    parser.add_argument("--max-runs", type=int, default=None, help="exit after N runs")
    parser.add_argument(
        "--concurrency",
        type=int,
        default=DEFAULT_CONCURRENCY,
        help="runs streamed at once; more wait their turn and are replayed or rebuilt, not dropped",
    )
    parser.add_argument(
        "--status", action="store_true", help="print the running sidecar's status line and exit"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the sidecar until Ctrl-C, ``--max-runs`` or SIGTERM; ``--status`` prints one line."""
    args = _parser().parse_args(argv)
    if args.status:
        return print_status(args.state)
    if not args.url:
        print("otelstream sidecar: --url is required", file=sys.stderr)
        return 2
    from otelstream.export import configure  # noqa: PLC0415 - global-free until asked
    from otelstream.remote.sidecar import Sidecar  # noqa: PLC0415 - it imports this module

    telemetry = configure(service_name=os.environ.get("OTEL_SERVICE_NAME") or "otelstream-sidecar")
    try:
        sidecar = Sidecar(
            args.url,
            assistants=args.assistant,
            poll=args.poll,
            state_path=args.state,
            max_runs=args.max_runs,
            concurrency=args.concurrency,
            tracer_provider=telemetry.tracer_provider,
            meter_provider=telemetry.meter_provider,
        )
    except ValueError as exc:
        print(f"otelstream sidecar: {exc}", file=sys.stderr)
        telemetry.shutdown(timeout=1.0)
        return 2

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, sidecar.stop)
        await sidecar.run()

    try:
        asyncio.run(serve())
    except KeyboardInterrupt:
        pass
    finally:
        telemetry.shutdown(timeout=5.0)
    return 0
