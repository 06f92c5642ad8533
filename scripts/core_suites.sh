#!/usr/bin/env bash
# Run the core suites on every other CPython 3.10+ this machine has, each in its own cached venv.
#
# pyproject.toml promises Python >= 3.10 while `make test` runs the whole suite on one interpreter
# (the one that built .venv). This covers the rest: the pass-through, span model, exit path,
# streaming guide, instrumentor and durable-execution (retries, timeouts, resume links, idle
# stalls) suites on each other CPython minor version found under pyenv
# (~/.pyenv/versions/3.1x.*) or as python3.1x on PATH. Each gets .cache/pyX.Y-venv with
# `pip install -e .[dev]`, rebuilt when pyproject.toml or the interpreter changes (a stamp file).
# Every interpreter is run even when one fails; the exit status is 1 if any failed.
#
# Usage: scripts/core_suites.sh [DEFAULT_PYTHON]
#   DEFAULT_PYTHON  the interpreter the full suite already ran on, left out here
#                   (default: .venv/bin/python)
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"
default_python="${1:-.venv/bin/python}"
suites=(tests/test_passthrough.py tests/test_spans.py tests/test_exit_paths.py tests/test_guide.py
    tests/test_instrumentor.py tests/test_durable.py tests/test_resume_links.py tests/test_idle_stalls.py)

# "X.Y full-version executable" for a CPython >= 3.10; nothing for anything else or a dead shim.
describe='import platform, sys
if platform.python_implementation() == "CPython" and sys.version_info >= (3, 10):
    print("%d.%d" % sys.version_info[:2], platform.python_version(), sys.executable)'

default_minor="$("$default_python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
candidates=()
for python in "$HOME"/.pyenv/versions/3.1[0-9].*/bin/python; do
    [[ -x $python ]] && candidates+=("$python")
done
for minor in $(seq 10 19); do
    python="$(command -v "python3.$minor" 2>/dev/null)" && candidates+=("$python")
done

declare -A chosen=()
for python in "${candidates[@]}"; do
    read -r minor version executable < <("$python" -c "$describe" 2>/dev/null) || continue
    [[ -n ${minor:-} && $minor != "$default_minor" && -z ${chosen[$minor]:-} ]] || continue
    chosen[$minor]="$version $executable"
done

if [[ ${#chosen[@]} -eq 0 ]]; then
    echo "core suites: no CPython 3.10+ besides $default_minor on this machine"
    exit 0
fi

pyproject_hash="$(sha256sum pyproject.toml | cut -d' ' -f1)"
failed=()
for minor in $(printf '%s\n' "${!chosen[@]}" | sort -V); do
    read -r version executable <<<"${chosen[$minor]}"
    venv=".cache/py$minor-venv"
    stamp="$venv/.otelstream-installed"
    want="$pyproject_hash $version $executable"
    echo "==== core suites on Python $version ($executable)"
    if [[ ! -f $stamp || "$(cat "$stamp")" != "$want" ]]; then
        # A half-finished or outdated venv is thrown away rather than patched.
        rm -rf "$venv"
        log=".cache/py$minor-install.log"
        if ! { "$executable" -m venv "$venv" \
            && "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -e ".[dev]"; \
            } >"$log" 2>&1; then
            echo "make test: could not build $venv (log: $log); with network access run:" \
                "$executable -m venv $venv && $venv/bin/pip install -e '.[dev]'" >&2
            failed+=("$version")
            continue
        fi
        printf '%s' "$want" >"$stamp"
    fi
    if ! "$venv/bin/python" -m pytest -p no:cacheprovider "${suites[@]}"; then
        failed+=("$version")
    fi
done

if [[ ${#failed[@]} -gt 0 ]]; then
    echo "core suites failed on Python ${failed[*]}" >&2
    exit 1
fi
echo "core suites passed on Python $(printf '%s\n' "${chosen[@]}" | cut -d' ' -f1 | paste -sd' ')"
