"""A real LangGraph server (``langgraph dev``, in-memory) on loopback, for the remote tests.

The server runs from its own virtualenv (``scripts/langgraph_server.sh``), never the project's.
Without it the tests fail with the command that provisions it; they never skip.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import pytest

from otelstream import names

if TYPE_CHECKING:
    from collections.abc import Iterator

REPO = Path(__file__).resolve().parents[2]
SERVER_DIR = Path(__file__).resolve().parent / "server"
VENV = Path(os.environ.get("LANGGRAPH_SERVER_VENV") or REPO / ".cache" / "langgraph-server-venv")
READY_TIMEOUT = 30.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/ok", timeout=1) as response:  # noqa: S310 - loopback
            return bool(response.status == 200)
    except OSError:
        return False


def require_server_venv() -> Path:
    """The ``langgraph`` binary of the server venv; the test fails, with what to run, without it."""
    binary = VENV / "bin" / "langgraph"
    if not binary.exists():
        pytest.fail(
            f"no LangGraph server venv at {VENV}: run scripts/provision.sh (make test does)",
            pytrace=False,
        )
    return binary


def server_workdir(workdir: Path) -> Path:
    """``workdir`` with the test server's files copied in.

    The server resolves graph paths against its working directory and keeps its state
    (.langgraph_api) there: a scratch copy keeps the source tree clean.
    """
    for name in ("agent.py", "workflow.py", "langgraph.json"):
        shutil.copy(SERVER_DIR / name, workdir / name)
    return workdir


@dataclass
class Server:
    """One ``langgraph dev`` process, in its own process group, logging to ``server.log``."""

    url: str
    process: subprocess.Popen[bytes]
    log: IO[bytes]
    workdir: Path


def start_server(binary: Path, workdir: Path, port: int) -> Server:
    """Start ``langgraph dev`` in ``workdir`` on ``port`` and wait until it answers ``/ok``."""
    url = f"http://127.0.0.1:{port}"
    log = (workdir / "server.log").open("ab")
    env = {**os.environ, "LANGSMITH_TRACING": "false", "LANGCHAIN_TRACING_V2": "false"}
    process = subprocess.Popen(  # noqa: S603 - our own venv's binary
        [
            str(binary),
            "dev",
            "--no-browser",
            "--no-reload",
            "--allow-blocking",  # the test tools sleep in worker threads
            "--n-jobs-per-worker",
            "10",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--config",
            "langgraph.json",
        ],
        cwd=workdir,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    server = Server(url, process, log, workdir)
    deadline = time.monotonic() + READY_TIMEOUT
    while not _ready(url):
        if process.poll() is not None or time.monotonic() > deadline:
            stop_server(server, signal.SIGKILL)
            output = (workdir / "server.log").read_text(errors="replace")[-3000:]
            pytest.fail(f"LangGraph server did not start:\n{output}")
        time.sleep(0.2)
    return server


def stop_server(server: Server, sig: signal.Signals = signal.SIGTERM) -> None:
    """Send ``sig`` to the server's process group and wait for it; SIGKILL if it lingers."""
    process = server.process
    if process.poll() is None:
        group = os.getpgid(process.pid)
        os.killpg(group, sig)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(group, signal.SIGKILL)
            process.wait(timeout=5)
    server.log.close()


@pytest.fixture(scope="session")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The base URL of a LangGraph dev server running the graphs ``agent`` and ``other``."""
    binary = require_server_venv()
    workdir = server_workdir(tmp_path_factory.mktemp("langgraph-server"))
    server = start_server(binary, workdir, free_port())
    try:
        yield server.url
    finally:
        stop_server(server)


class OwnServer:
    """A server of one test's own, which the test may kill and restart on the same port."""

    def __init__(self, binary: Path, workdir: Path) -> None:
        self._binary = binary
        self._workdir = workdir
        self._port = free_port()
        self._server = start_server(binary, workdir, self._port)
        self.url = self._server.url

    def kill(self) -> None:
        """SIGKILL the whole process group, as a crash or an OOM kill would."""
        stop_server(self._server, signal.SIGKILL)

    def restart(self) -> None:
        """Start a fresh server on the same port and working directory."""
        self._server = start_server(self._binary, self._workdir, self._port)

    def stop(self) -> None:
        stop_server(self._server)


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[OwnServer]:
    """A dedicated LangGraph dev server, not the session's, for a test that kills it."""
    binary = require_server_venv()
    workdir = tmp_path / "langgraph-server"
    workdir.mkdir()
    server = OwnServer(binary, server_workdir(workdir))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def agent_module() -> Any:
    """The server's graph module, imported in this process (it is self-contained)."""
    spec = importlib.util.spec_from_file_location("remote_test_agent", SERVER_DIR / "agent.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def is_run(span: Any) -> bool:
    """The span is a run: ``invoke_agent`` or ``invoke_workflow`` (a remote graph is a workflow)."""
    operation = (span.attributes or {}).get(names.GEN_AI_OPERATION_NAME)
    return operation in (names.OP_INVOKE_AGENT, names.OP_INVOKE_WORKFLOW)


def span_tree(spans: Any) -> list[tuple[int, str, str]]:
    """``(depth, name, status)`` of every span except the run span's own name, in start order.

    Stall marker spans are left out; the run span is reported as ``RUN``.
    """
    by_id = {s.context.span_id: s for s in spans}

    def depth(span: Any) -> int:
        level = 0
        while span.parent is not None and span.parent.span_id in by_id:
            span = by_id[span.parent.span_id]
            level += 1
        return level

    rows = []
    for span in sorted(spans, key=lambda s: s.start_time):
        name = "RUN" if is_run(span) else span.name
        rows.append((depth(span), name, span.status.status_code.name))
    return rows
