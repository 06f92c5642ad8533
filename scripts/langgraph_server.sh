#!/usr/bin/env bash
# Install the LangGraph dev server (`langgraph dev`, from langgraph-cli[inmem]) into its own
# virtualenv for the remote/sidecar tests (tests/remote/).
#
# langgraph-api pins its own langgraph/langchain versions; installing it into the project venv
# could move the langgraph that otelstream is tested against, so it never goes there. The server
# venv does not need otelstream: the test graph (tests/remote/server/) is self-contained. The venv
# is cached: a run that finds a complete install of the same requirement (the stamp file) does
# nothing, so CI can call this on every run.
#
# Usage: scripts/langgraph_server.sh [VENV_DIR]
#   VENV_DIR            default: $LANGGRAPH_SERVER_VENV, else .cache/langgraph-server-venv
# Env:
#   LANGGRAPH_SERVER_SPEC  pip requirement (default: the version the tests were written against)
#   PYTHON                 interpreter to build the venv with (default: python3)
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${1:-${LANGGRAPH_SERVER_VENV:-$repo_root/.cache/langgraph-server-venv}}"
spec="${LANGGRAPH_SERVER_SPEC:-langgraph-cli[inmem]==0.4.40}"
python="${PYTHON:-python3}"
stamp="$venv/.otelstream-langgraph-server-installed"

if [[ -x "$venv/bin/langgraph" && -f "$stamp" && "$(cat "$stamp")" == "$spec" ]]; then
    echo "langgraph-server: $spec already installed in $venv"
    exit 0
fi

# A half-finished or different install is thrown away rather than patched.
rm -rf "$venv"
mkdir -p "$(dirname "$venv")"
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$spec"
"$venv/bin/langgraph" dev --help >/dev/null
printf '%s' "$spec" >"$stamp"
echo "langgraph-server: installed $spec in $venv"
