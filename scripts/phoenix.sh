#!/usr/bin/env bash
# Install Arize Phoenix into its own virtualenv for the OTLP round-trip test
# (tests/export/test_phoenix_roundtrip.py).
#
# Phoenix is heavy (about 850 MB) and pins packages that would clash with otelstream's own
# OpenTelemetry pins, so it never goes into the project venv. The venv is cached: a run that
# finds a complete install of the same requirement (the stamp file) does nothing, so CI can
# call this on every run.
#
# Usage: scripts/phoenix.sh [VENV_DIR]
#   VENV_DIR       default: $PHOENIX_VENV, else .cache/phoenix-venv under the repo
# Env:
#   PHOENIX_SPEC   pip requirement to install (default: the version the test was written against)
#   PYTHON         interpreter to build the venv with (default: python3)
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${1:-${PHOENIX_VENV:-$repo_root/.cache/phoenix-venv}}"
spec="${PHOENIX_SPEC:-arize-phoenix==20.26.1}"
python="${PYTHON:-python3}"
stamp="$venv/.otelstream-phoenix-installed"

if [[ -x "$venv/bin/phoenix" && -f "$stamp" && "$(cat "$stamp")" == "$spec" ]]; then
    echo "phoenix: $spec already installed in $venv"
    exit 0
fi

# A half-finished or different install is thrown away rather than patched.
rm -rf "$venv"
mkdir -p "$(dirname "$venv")"
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$spec"
"$venv/bin/phoenix" --help >/dev/null
printf '%s' "$spec" >"$stamp"
echo "phoenix: installed $spec in $venv"
