"""A real ``langgraph dev`` traced from the inside, exporting OTLP/HTTP to a receiver in the test.

The server runs exactly the README's zero-code setup:
``opentelemetry-instrument langgraph dev --no-browser --no-reload --host 127.0.0.1 --port P``, from
a venv with langgraph-cli[inmem] and this checkout's ``otelstream[server]``
(``scripts/langgraph_server_traced.sh``, built here on first use and cached), configured only by
``OTEL_*`` variables. One receiver serves the session and one server each test module that asks
for it: it stops, its whole process group, when the module's tests are done.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.server.otlp_receiver import OtlpReceiver

if TYPE_CHECKING:
    from collections.abc import Iterator

REPO = Path(__file__).resolve().parents[2]
GRAPH_DIR = Path(__file__).resolve().parent / "graph"
VENV = Path(
    os.environ.get("LANGGRAPH_TRACED_SERVER_VENV")
    or REPO / ".cache" / "langgraph-server-traced-venv"
)
BUILD_TIMEOUT = 900.0
READY_TIMEOUT = 60.0
SERVICE_NAME = "otelstream-server-test"


@dataclass
class TracedServer:
    """One ``langgraph dev`` under ``opentelemetry-instrument``, logging to ``log``."""

    url: str
    process: subprocess.Popen[bytes]
    log: Path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/ok", timeout=1) as response:  # noqa: S310 - loopback
            return bool(response.status == 200)
    except OSError:
        return False


def _build_venv() -> Path:
    """The traced server venv, built (or found cached) by the repository's script."""
    result = subprocess.run(  # noqa: S603 - our own script
        ["bash", str(REPO / "scripts" / "langgraph_server_traced.sh"), str(VENV)],  # noqa: S607
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(f"scripts/langgraph_server_traced.sh failed:\n{result.stdout}{result.stderr}")
    return VENV


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the process group, then SIGKILL if it lingers; so the exporter flushes first."""
    if process.poll() is not None:
        return
    group = os.getpgid(process.pid)
    os.killpg(group, signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(group, signal.SIGKILL)
        process.wait(timeout=5)


def stop_traced_server(server: TracedServer) -> None:
    """Stop ``server``, its whole process group."""
    _stop(server.process)


def server_env(endpoint: str) -> dict[str, str]:
    """The server's environment: the caller's, minus its ``OTEL_*``, plus the test's ``OTEL_*``."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("OTEL_")}
    env.update(
        {
            "OTEL_SERVICE_NAME": SERVICE_NAME,
            "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            "OTEL_TRACES_EXPORTER": "otlp",
            "OTEL_METRICS_EXPORTER": "none",
            "OTEL_LOGS_EXPORTER": "none",
            # Spans reach the receiver within a tenth of a second, so tests wait little.
            "OTEL_BSP_SCHEDULE_DELAY": "100",
            # Custom write payloads on their events, so a test can tell which node wrote each.
            "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "true",
            # The cron scheduler looks every second instead of every 5 s.
            "CRON_SCHEDULER_SLEEP_TIME": "1",
            "LANGSMITH_TRACING": "false",
            "LANGCHAIN_TRACING_V2": "false",
            # This checkout's otelstream, whatever checkout the venv was built from.
            "PYTHONPATH": str(REPO),
        }
    )
    return env


def auto_instrumentation_dir(venv: Path) -> str:
    """Where ``opentelemetry-instrument`` finds its ``sitecustomize.py`` in ``venv``."""
    result = subprocess.run(  # noqa: S603 - our own venv's interpreter
        [
            str(venv / "bin" / "python"),
            "-c",
            "import opentelemetry.instrumentation.auto_instrumentation as m, os; "
            "print(os.path.dirname(m.__file__))",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stdout.strip()


def start_traced_server(
    venv: Path,
    workdir: Path,
    endpoint: str,
    *,
    via_pythonpath: bool = False,
    extra_env: dict[str, str] | None = None,
) -> TracedServer:
    """Start the README's command in ``workdir`` and wait until the server answers ``/ok``.

    By default the command is ``opentelemetry-instrument langgraph dev ...``. With
    ``via_pythonpath`` it is ``langgraph dev --config langgraph.json ...`` with ``PYTHONPATH``
    naming the auto-instrumentation directory first: what ``opentelemetry-instrument`` itself
    does, and what a container's environment can do where its entrypoint cannot be wrapped.
    ``extra_env`` is added to (and overrides) the server's environment.
    """
    for name in ("graph.py", "langgraph.json"):
        shutil.copy(GRAPH_DIR / name, workdir / name)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = workdir / "server.log"
    dev = ["dev", "--no-browser", "--no-reload", "--host", "127.0.0.1", "--port", str(port)]
    env = {**server_env(endpoint), **(extra_env or {})}
    if via_pythonpath:
        command = [str(venv / "bin" / "langgraph"), *dev, "--config", "langgraph.json"]
        env["PYTHONPATH"] = os.pathsep.join([auto_instrumentation_dir(venv), env["PYTHONPATH"]])
    else:
        command = [str(venv / "bin" / "opentelemetry-instrument"), str(venv / "bin" / "langgraph")]
        command += dev
    with log.open("ab") as out:
        process = subprocess.Popen(  # noqa: S603 - our own venv's binaries
            command,
            cwd=workdir,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + READY_TIMEOUT
    while not _ready(url):
        if process.poll() is not None or time.monotonic() > deadline:
            _stop(process)
            pytest.fail(f"langgraph dev did not start:\n{log.read_text(errors='replace')[-3000:]}")
        time.sleep(0.2)
    return TracedServer(url, process, log)


@pytest.fixture(scope="session")
def traced_venv() -> Path:
    """The traced server venv (built on first use, then cached)."""
    return _build_venv()


@pytest.fixture(scope="session")
def receiver() -> Iterator[OtlpReceiver]:
    """The OTLP/HTTP receiver the traced server exports to."""
    server = OtlpReceiver()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def traced_server(
    traced_venv: Path, receiver: OtlpReceiver, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TracedServer]:
    """``opentelemetry-instrument langgraph dev`` running ``tests/server/graph`` (``pipeline``)."""
    # Module scope: an idle server still polls its queue, so it does not outlive its tests.
    workdir = tmp_path_factory.mktemp("traced-server")
    server = start_traced_server(traced_venv, workdir, receiver.url)
    try:
        yield server
    finally:
        stop_traced_server(server)
