#!/usr/bin/env bash
# Build the separate virtual environment the benchmark's peer contenders run in:
# OpenInference's and OpenLLMetry's LangChain instrumentations, pinned to the same LangGraph,
# LangChain and OpenTelemetry SDK as otelstream's own environment, so that only the tracer
# differs. Usage: scripts/bench_peers.sh [VENV_DIR]  (default .cache/bench-peers-venv), then
#   .venv/bin/python -m benchmarks.run --peers-python .cache/bench-peers-venv/bin/python
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${1:-$repo_root/.cache/bench-peers-venv}"
project_python="$repo_root/.venv/bin/python"
version() { "$project_python" -c "import importlib.metadata as m; print(m.version('$1'))"; }

python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --upgrade pip
"$venv/bin/pip" install --quiet \
    "langgraph==$(version langgraph)" \
    "langchain==$(version langchain)" \
    "langchain-core==$(version langchain-core)" \
    "opentelemetry-sdk==$(version opentelemetry-sdk)" \
    "opentelemetry-exporter-otlp==$(version opentelemetry-exporter-otlp)" \
    structlog rich wrapt \
    openinference-instrumentation-langchain \
    opentelemetry-instrumentation-langchain
echo "peers venv ready: $venv/bin/python"
