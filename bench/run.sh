#!/usr/bin/env bash
# Runs the HTTP benchmarks of BENCHMARKS.md against the release build, on this machine.
# Usage: bench/run.sh [seconds per run]   (needs wrk and python3; builds with cargo first)
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_RUN="${1:-20}"
PORT="${BENCH_PORT:-18090}"
BASE="http://127.0.0.1:$PORT"
DATA="$(mktemp -d)"
BIN=target/release/pregonero

cargo build --release --quiet
PREGONERO_DATA_DIR="$DATA" PREGONERO_LISTEN="127.0.0.1:$PORT" PREGONERO_LOG=warn \
    PREGONERO_ADMIN_USERNAME=admin PREGONERO_ADMIN_PASSWORD=bench-password-1 \
    "$BIN" serve > "$DATA/server.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null; rm -rf "$DATA"' EXIT
for _ in $(seq 1 100); do curl -sf "$BASE/health" > /dev/null && break; sleep 0.1; done

sleep 2
echo "== idle resident memory"
grep VmRSS "/proc/$SERVER/status"

TOKEN=$(curl -sf "$BASE/v1/auth/login" -H 'content-type: application/json' \
    -d '{"username":"admin","password":"bench-password-1"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
export PREGONERO_KEY=$(curl -sf "$BASE/v1/api-keys" -H "authorization: Bearer $TOKEN" \
    -H 'content-type: application/json' -d '{"name":"bench","scopes":["operators","reports"]}' \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["secret"])')

echo "== single POST /v1/messages, 16 connections"
wrk -t2 -c16 -d"${SECONDS_PER_RUN}s" --latency -s bench/post_message.lua "$BASE"

echo "== POST /v1/messages/batch with 1000 messages, 4 connections"
BATCH_SIZE=1000 wrk -t2 -c4 -d"${SECONDS_PER_RUN}s" --latency -s bench/post_batch.lua "$BASE"

COUNT=$(curl -sf "$BASE/metrics" -H "authorization: Bearer $TOKEN" | awk -F' ' '/^pregonero_messages\{status="pending"\}/ {print $2}')
echo "stored so far: $COUNT"
if [ "$COUNT" -lt 1000000 ]; then
    python3 bench/seed.py "$BASE" $((1000000 - COUNT))
fi

echo "== GET /v1/messages with filters over $(curl -sf "$BASE/metrics" -H "authorization: Bearer $TOKEN" | awk '/^pregonero_messages\{status="pending"\}/ {print $2}') messages, 16 connections"
wrk -t2 -c16 -d"${SECONDS_PER_RUN}s" --latency -s bench/list_messages.lua "$BASE"

sleep 5
echo "== resident memory after the runs"
grep -E 'VmRSS|VmHWM' "/proc/$SERVER/status"
echo "== database and write-ahead log on disk"
ls -l "$DATA"/pregonero.db*
