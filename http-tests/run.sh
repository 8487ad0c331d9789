#!/usr/bin/env bash
# Runs every .http file in this folder against a fresh Pregonero and exits with httpyac's status.
#
#   http-tests/run.sh target/debug/pregonero
#
# The service gets a new data folder in a temporary directory, a port the kernel picks, and an
# admin whose password is made up for the run. httpyac is installed once, with npm, into
# $HTTPYAC_PREFIX (default /tmp/pregonero-httpyac). Extra arguments for `httpyac send` can be
# given in $HTTPYAC_ARGS, e.g. HTTPYAC_ARGS="--bail" or HTTPYAC_ARGS="-o exchange".
#
# Exit status: httpyac's (0 all assertions held, 20 an assertion failed, 1 or 10 a request or
# script failed), or 2 when the service could not be started.

set -euo pipefail

if [[ $# -ne 1 ]]; then
    echo "usage: $0 PATH/TO/pregonero" >&2
    exit 2
fi
if [[ ! -x $1 ]]; then
    echo "$0: $1 is not an executable file" >&2
    exit 2
fi
binary="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
tests_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
prefix="${HTTPYAC_PREFIX:-/tmp/pregonero-httpyac}"
httpyac="$prefix/node_modules/.bin/httpyac"

# 1. httpyac, installed on first use.
if [[ ! -x $httpyac ]]; then
    echo "installing httpyac 6 into $prefix" >&2
    npm install --prefix "$prefix" --no-audit --no-fund --loglevel=error "httpyac@6" >&2
fi

# 2. A fresh service. Settings a developer's shell may hold (a PostgreSQL URL, another data
# folder) must not reach it, so every PREGONERO_* variable is dropped first; and it runs inside
# the work folder so that no ./pregonero.toml is picked up either.
work="$(mktemp -d "${TMPDIR:-/tmp}/pregonero-http-tests.XXXXXX")"
server_log="$work/server.log"
password="http-tests-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
for name in $(compgen -e | grep '^PREGONERO_' || true); do
    unset "$name"
done

(
    cd "$work"
    exec env NO_COLOR=1 \
        PREGONERO_DATA_DIR="$work/data" \
        PREGONERO_LISTEN=127.0.0.1:0 \
        PREGONERO_ADMIN_USERNAME=admin \
        PREGONERO_ADMIN_PASSWORD="$password" \
        PREGONERO_LOG=info \
        PREGONERO_AUTO_START=false \
        PREGONERO_SIM_SEGMENT_MS=10 \
        "$binary" serve
) >"$server_log" 2>&1 &
server_pid=$!

stop_server() {
    if kill -0 "$server_pid" 2>/dev/null; then
        kill -TERM "$server_pid"
        wait "$server_pid" 2>/dev/null || true
    fi
}

finish() {
    local status=$?
    stop_server
    if [[ $status -ne 0 ]]; then
        echo "--- last lines of the service's log ---" >&2
        tail -n 40 "$server_log" >&2 || true
    fi
    rm -rf "$work"
    exit "$status"
}
trap finish EXIT
trap 'exit 130' INT TERM

# 3. Wait for the port it announces, then for /health to answer.
port=""
for _ in $(seq 1 150); do
    if ! kill -0 "$server_pid" 2>/dev/null; then
        echo "$0: the service stopped during start-up" >&2
        exit 2
    fi
    port="$(sed 's/\x1b\[[0-9;]*m//g' "$server_log" | grep -o 'pregonero listening.* port=[0-9]*' |
        grep -o '[0-9]*$' | head -n 1 || true)"
    [[ -n $port ]] && break
    sleep 0.2
done
if [[ -z $port ]]; then
    echo "$0: the service did not report its port within 30 s" >&2
    exit 2
fi

base_url="http://127.0.0.1:$port"
# node is there anyway for httpyac, and its fetch spares a dependency on curl.
probe='fetch(process.argv[1]).then(r => process.exit(r.ok ? 0 : 1), () => process.exit(1))'
healthy=""
for _ in $(seq 1 50); do
    if node -e "$probe" "$base_url/health"; then
        healthy=yes
        break
    fi
    sleep 0.2
done
if [[ -z $healthy ]]; then
    echo "$0: $base_url/health did not answer 200 within 10 s" >&2
    exit 2
fi
echo "pregonero is up at $base_url (data in $work/data)" >&2

# 4. Every .http file. httpyac wants the files under its working directory.
cd "$tests_dir"
set +e
# shellcheck disable=SC2086 # HTTPYAC_ARGS is split into arguments on purpose.
PREGONERO_BASE_URL="$base_url" \
    PREGONERO_ADMIN_USERNAME=admin \
    PREGONERO_ADMIN_PASSWORD="$password" \
    "$httpyac" send ./*.http --all -o short --output-failed exchange ${HTTPYAC_ARGS:-}
status=$?
set -e
exit "$status"
