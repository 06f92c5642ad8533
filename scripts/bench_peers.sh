#!/usr/bin/env bash
# Build the separate virtual environment the benchmark's peer contenders run in:
# OpenInference's and OpenLLMetry's LangChain instrumentations and the OpenTelemetry project's own
# (opentelemetry-instrumentation-genai-langchain), pinned to the same LangGraph, LangChain and
# OpenTelemetry SDK as otelstream's own environment, so that only the tracer differs.
# Usage: scripts/bench_peers.sh [VENV_DIR]  (default .cache/bench-peers-venv), then
#   .venv/bin/python -m benchmarks.run --peers-python .cache/bench-peers-venv/bin/python
# PROJECT_PYTHON names otelstream's interpreter whose versions are copied (default .venv/bin/python).
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${1:-$repo_root/.cache/bench-peers-venv}"
project_python="${PROJECT_PYTHON:-$repo_root/.venv/bin/python}"
version() { "$project_python" -c "import importlib.metadata as m; print(m.version('$1'))"; }

python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --upgrade pip
# One resolution for everything: pip fails rather than move a pinned version, so a peer that
# needs another LangGraph, LangChain or SDK is reported instead of silently measured on it.
"$venv/bin/pip" install --quiet \
    "langgraph==$(version langgraph)" \
    "langchain==$(version langchain)" \
    "langchain-core==$(version langchain-core)" \
    "opentelemetry-api==$(version opentelemetry-api)" \
    "opentelemetry-sdk==$(version opentelemetry-sdk)" \
    "opentelemetry-exporter-otlp==$(version opentelemetry-exporter-otlp)" \
    "opentelemetry-instrumentation==$(version opentelemetry-instrumentation)" \
    "opentelemetry-semantic-conventions==$(version opentelemetry-semantic-conventions)" \
    structlog rich wrapt \
    openinference-instrumentation-langchain \
    opentelemetry-instrumentation-langchain \
    "opentelemetry-instrumentation-genai-langchain==1.3b0"
"$venv/bin/pip" check
echo "peers venv ready: $venv/bin/python"
