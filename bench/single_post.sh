#!/usr/bin/env bash
# Three back-to-back runs of the single-POST benchmark against one fresh release server, to see
# how steady the figure is as the table and its write-ahead log grow.
# Usage: bench/single_post.sh [seconds per run]   (needs wrk and python3; build with cargo first)
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_RUN="${1:-15}"
PORT="${BENCH_PORT:-18095}"
BASE="http://127.0.0.1:$PORT"
DATA="$(mktemp -d)"

PREGONERO_DATA_DIR="$DATA" PREGONERO_LISTEN="127.0.0.1:$PORT" PREGONERO_LOG=warn \
    PREGONERO_ADMIN_USERNAME=admin PREGONERO_ADMIN_PASSWORD=bench-password-1 \
    target/release/pregonero serve > "$DATA/server.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null; rm -rf "$DATA"' EXIT
for _ in $(seq 1 100); do curl -sf "$BASE/health" > /dev/null && break; sleep 0.1; done

TOKEN=$(curl -sf "$BASE/v1/auth/login" -H 'content-type: application/json' \
    -d '{"username":"admin","password":"bench-password-1"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
export PREGONERO_KEY=$(curl -sf "$BASE/v1/api-keys" -H "authorization: Bearer $TOKEN" \
    -H 'content-type: application/json' -d '{"name":"bench","scopes":["operators"]}' \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["secret"])')

for run in 1 2 3; do
    echo "== run $run"
    wrk -t2 -c16 -d"${SECONDS_PER_RUN}s" --latency -s bench/post_message.lua "$BASE" \
        | grep -E 'Requests/sec|percentiles'
    ls -l "$DATA/pregonero.db-wal" | awk '{print "write-ahead log bytes:", $5}'
done
