#!/usr/bin/env bash
# A LangGraph dev server venv with otelstream inside it, for in-server tracing and its tests
# (tests/server/): `opentelemetry-instrument langgraph dev` with this repository's otelstream.
#
# It is the venv of scripts/langgraph_server.sh (langgraph-cli[inmem], which pins its own
# langgraph) plus `pip install -e ".[server]"` from this repository, so the server runs the
# otelstream of this checkout. A separate venv from the sidecar's on purpose: the sidecar is
# tested against a server that has no otelstream, as a server you cannot touch has none.
# The venv is cached: it is rebuilt only when the server requirement changes, and otelstream is
# reinstalled only when pyproject.toml or the checkout's path changes.
#
# Usage: scripts/langgraph_server_traced.sh [VENV_DIR]
#   VENV_DIR  default: $LANGGRAPH_TRACED_SERVER_VENV, else .cache/langgraph-server-traced-venv
# Env: as scripts/langgraph_server.sh (LANGGRAPH_SERVER_SPEC, PYTHON).
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${1:-${LANGGRAPH_TRACED_SERVER_VENV:-$repo_root/.cache/langgraph-server-traced-venv}}"
stamp="$venv/.otelstream-installed"

bash "$repo_root/scripts/langgraph_server.sh" "$venv"

want="$repo_root $(sha256sum "$repo_root/pyproject.toml" | cut -d' ' -f1)"
if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" && -x "$venv/bin/opentelemetry-instrument" ]]; then
    echo "langgraph-server-traced: otelstream[server] already installed in $venv"
    exit 0
fi

# One resolve for both: installed alone, otelstream[server] would move the SDK under the
# server's own OpenTelemetry pins (opentelemetry-exporter-prometheus) and leave them broken.
spec="${LANGGRAPH_SERVER_SPEC:-langgraph-cli[inmem]==0.4.40}"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$spec" -e "$repo_root[server]"
# The server's own pins (langgraph-api's) and otelstream's must both hold in this one venv.
"$venv/bin/python" -m pip check
"$venv/bin/opentelemetry-instrument" --help >/dev/null
printf '%s' "$want" >"$stamp"
echo "langgraph-server-traced: installed otelstream[server] from $repo_root in $venv"
