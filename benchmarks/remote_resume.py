"""What linking a resumed run costs a traced ``RemoteGraph`` and the sidecar, on a real server.

    python -m benchmarks.remote_resume --url http://127.0.0.1:2024 [--threads 5]

Needs a LangGraph server running the test graph ``agent`` (``tests/remote/server``; see
``benchmarks/sidecar_load.py`` for the command). On each of ``--threads`` threads the graph asks a
human (``ask``, an interrupt), then the thread is resumed. Prints:

* the bytes of the resume's stream in the modes a traced ``RemoteGraph`` asks for, without and
  with ``checkpoints`` (what a resume adds so the client reads the checkpoint it resumes from,
  with no request of its own);
* the time of one ``threads.get_history(limit=1, checkpoint=...)`` lookup (what a time travel
  costs the client, and each lookup the sidecar makes).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from typing import Any

from langgraph_sdk import get_client

MODES = ["updates", "messages-tuple", "tasks", "custom"]
ASK = {"messages": [{"role": "user", "content": "ask"}]}


async def _bytes(client: Any, thread_id: str, modes: list[str]) -> int:
    size = 0
    async for part in client.runs.stream(
        thread_id, "agent", command={"resume": "yes"}, stream_mode=modes
    ):
        size += len(json.dumps(part.data, default=str))
    return size


async def main(url: str, threads: int) -> None:
    client = get_client(url=url)
    without, with_, lookups = [], [], []
    try:
        for _ in range(threads):
            for modes, sizes in ((MODES, without), ([*MODES, "checkpoints"], with_)):
                thread_id = str((await client.threads.create())["thread_id"])
                async for _part in client.runs.stream(thread_id, "agent", input=ASK):
                    pass
                history = await client.threads.get_history(thread_id, limit=1)
                checkpoint_id = history[0]["checkpoint"]["checkpoint_id"]
                sizes.append(await _bytes(client, thread_id, modes))
                for _ in range(5):
                    began = time.perf_counter()
                    await client.threads.get_history(
                        thread_id,
                        limit=1,
                        checkpoint={"checkpoint_id": checkpoint_id},
                        select=["checkpoint", "metadata"],
                    )
                    lookups.append(time.perf_counter() - began)
    finally:
        await client.aclose()
    plain, marked = statistics.median(without), statistics.median(with_)
    print(
        f"resume stream, traced modes: {plain} B; with checkpoints: {marked} B "
        f"(+{marked - plain} B, +{(marked - plain) / plain:.0%})"
    )
    print(
        f"checkpoint lookup: median {statistics.median(lookups) * 1000:.2f} ms, "
        f"max {max(lookups) * 1000:.2f} ms ({len(lookups)} lookups)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--threads", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(main(args.url, args.threads))
