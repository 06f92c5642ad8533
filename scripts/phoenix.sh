#!/usr/bin/env bash
# Install Arize Phoenix into its own virtualenv for the OTLP round-trip test.
#
# Phoenix is heavy (about 850 MB) and pins packages that would clash with otelstream's own
# OpenTelemetry pins, so it never goes into the project venv. The venv is cached: a run
# that finds a complete install (the stamp file) does nothing.
#
# Usage: scripts/phoenix.sh [VENV_DIR]     (default: .cache/phoenix-venv under the repo)
# Env:   PHOENIX_SPEC   pip requirement to install (default: arize-phoenix)
#        PYTHON         interpreter to build the venv with (default: python3)
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${1:-${PHOENIX_VENV:-$repo_root/.cache/phoenix-venv}}"
spec="${PHOENIX_SPEC:-arize-phoenix}"
python="${PYTHON:-python3}"
stamp="$venv/.otelstream-phoenix-installed"

if [[ -f "$stamp" && -x "$venv/bin/phoenix" ]]; then
    echo "phoenix: already installed in $venv ($(cat "$stamp"))"
    exit 0
fi

# A half-finished install (interrupted earlier) is thrown away rather than patched.
rm -rf "$venv"
mkdir -p "$(dirname "$venv")"
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet "$spec"
"$venv/bin/phoenix" --help >/dev/null
"$venv/bin/python" -m pip show arize-phoenix | awk '/^Version:/ {print "arize-phoenix " $2}' >"$stamp"
echo "phoenix: installed in $venv ($(cat "$stamp"))"
