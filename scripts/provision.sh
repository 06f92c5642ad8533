#!/usr/bin/env bash
# Install everything the test suite needs beyond the project venv, so that `make test` runs every
# test and skips none:
#   - Debian's prometheus (promtool and the server: the PromQL checks and the alert end-to-end),
#     valgrind and gcc (the instruction-count benchmark's smoke test), with apt-get when root;
#   - Arize Phoenix (scripts/phoenix.sh), the LangGraph dev server (scripts/langgraph_server.sh) and
#     that server with otelstream inside (scripts/langgraph_server_traced.sh),
#     each in its own venv under .cache/, reused while its pinned requirement is unchanged.
# The two venvs and the apt install run side by side: they are mostly downloads.
#
# When something cannot be installed (no root for apt, no network) it exits 1 after one line per
# missing piece, saying what to run; the full output of a failed install is in .cache/*.log.
#
# Usage: scripts/provision.sh
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"
mkdir -p .cache

# ---- Debian packages ------------------------------------------------------------------------
packages=()
if ! command -v promtool >/dev/null 2>&1 || [[ ! -x /usr/bin/prometheus ]]; then
    packages+=(prometheus)
fi
command -v valgrind >/dev/null 2>&1 || packages+=(valgrind)
# The smoke test compiles and links a small C library, so a bare gcc without libc headers fails.
if ! printf 'int main(void) { return 0; }\n' | gcc -x c - -o /dev/null >/dev/null 2>&1; then
    packages+=(gcc libc6-dev)
fi

apt_install() {
    export DEBIAN_FRONTEND=noninteractive
    # Retry once: mirrors can be slow to answer.
    for attempt in 1 2; do
        if apt-get update -qq && apt-get install -y -qq --no-install-recommends "$@"; then
            return 0
        fi
        [[ $attempt == 1 ]] && sleep 5
    done
    return 1
}

# ---- run the installs side by side ----------------------------------------------------------
declare -A pids=() hints=()
start() {  # start NAME HINT COMMAND...: run COMMAND in the background, logging to .cache/NAME.log
    local name=$1 hint=$2
    shift 2
    "$@" >".cache/$name.log" 2>&1 &
    pids[$name]=$!
    hints[$name]=$hint
}

apt_line="apt-get install -y --no-install-recommends ${packages[*]}"
if [[ ${#packages[@]} -gt 0 ]]; then
    if [[ $(id -u) != 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
        echo "make test: ${packages[*]} missing and not root: run sudo $apt_line" >&2
        exit 1
    fi
    start apt "with network access run: $apt_line" apt_install "${packages[@]}"
fi
start phoenix "with network access run: bash scripts/phoenix.sh" bash scripts/phoenix.sh
start langgraph-server "with network access run: bash scripts/langgraph_server.sh" \
    bash scripts/langgraph_server.sh
# The same server with this checkout's otelstream[server] inside it, for tests/server/.
start langgraph-server-traced "with network access run: bash scripts/langgraph_server_traced.sh" \
    bash scripts/langgraph_server_traced.sh

failed=0
for name in "${!pids[@]}"; do
    if wait "${pids[$name]}"; then
        tail -n 1 ".cache/$name.log"
    else
        echo "make test: could not install $name (log: .cache/$name.log); ${hints[$name]}" >&2
        failed=1
    fi
done
exit $failed
