"""How many runs created at once the sidecar traces, each exactly once, with default settings.

    python -m benchmarks.sidecar_load --url http://127.0.0.1:2024 [--runs 200] [--stateless 0]

Needs a LangGraph server running the test graph ``agent`` (``tests/remote/server``), e.g.::

    scripts/langgraph_server.sh
    cd tests/remote/server && ../../../.cache/langgraph-server-venv/bin/langgraph dev \\
        --no-browser --no-reload --allow-blocking --n-jobs-per-worker 10 --port 2024

Creates ``--runs`` runs at once: ``--stateless`` of them stateless (``runs.create(None, ...)``,
each running 1 s), the rest on threads of their own, half with ``create_run_kwargs()`` and half
with the server's default modes. A sidecar with default settings, in this process, exports to
memory. Prints when the server had finished every run, when the last trace was exported, how many
runs were traced (exactly once or not), their outcomes, and the sidecar's untraced count.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import threading
import time
from typing import Any

import httpx
from langgraph_sdk import get_client
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otelstream import names
from otelstream.remote.sidecar import Sidecar, create_run_kwargs


def _ask(text: str) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": text}]}


async def _create(url: str, runs: int, stateless: int) -> list[str]:
    client = get_client(url=url, timeout=httpx.Timeout(300.0, pool=None))

    async def one(index: int) -> str:
        if index < stateless:
            run = await client.runs.create(None, "agent", input=_ask("slow:1"))
        else:
            thread_id = (await client.threads.create())["thread_id"]
            kwargs = create_run_kwargs() if index % 2 else {}
            run = await client.runs.create(thread_id, "agent", input=_ask("hi"), **kwargs)
        await client.runs.join(run["thread_id"], run["run_id"])
        return str(run["run_id"])

    try:
        return list(await asyncio.gather(*(one(i) for i in range(runs))))
    finally:
        await client.aclose()


def main(argv: list[str] | None = None) -> int:
    """Run one measurement and print it."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.sidecar_load")
    parser.add_argument("--url", required=True)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--stateless", type=int, default=0)
    parser.add_argument("--wait", type=float, default=120.0, help="seconds to wait for traces")
    args = parser.parse_args(argv)
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    sidecar = Sidecar(args.url, tracer_provider=provider)
    thread = threading.Thread(target=asyncio.run, args=(sidecar.run(),), daemon=True)
    thread.start()
    while sidecar.last_poll is None:
        time.sleep(0.05)

    def traced() -> collections.Counter[str]:
        return collections.Counter(
            str(s.attributes[names.OTELSTREAM_REMOTE_RUN_ID])
            for s in exporter.get_finished_spans()
            if names.OTELSTREAM_REMOTE_RUN_ID in (s.attributes or {})
        )

    began = time.monotonic()
    created = asyncio.run(_create(args.url, args.runs, args.stateless))
    server_done = time.monotonic() - began
    deadline = time.monotonic() + args.wait
    last = time.monotonic()
    seen = 0
    while time.monotonic() < deadline:
        count = sum(traced()[r] > 0 for r in created) + sidecar.runs_untraced
        if count > seen:
            seen, last = count, time.monotonic()
        if count >= len(created):
            break
        time.sleep(0.1)
    sidecar.stop()
    thread.join(timeout=30)
    counts = traced()
    outcomes = collections.Counter(
        str(s.attributes[names.OTELSTREAM_OUTCOME])
        for s in exporter.get_finished_spans()
        if str((s.attributes or {}).get(names.OTELSTREAM_REMOTE_RUN_ID)) in set(created)
    )
    print(
        f"runs {len(created)} (stateless {args.stateless}): server done after {server_done:.1f} s, "
        f"last trace after {last - began:.1f} s; traced {sum(counts[r] > 0 for r in created)}, "
        f"twice or more {sum(counts[r] > 1 for r in created)}, untraced (counted) "
        f"{sidecar.runs_untraced}; outcomes {dict(outcomes)}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
