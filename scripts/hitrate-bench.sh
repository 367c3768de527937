#!/usr/bin/env bash
# The cache hit rate of a TeamHub-shaped workload (90% navigations, 10% writes, Zipf-skewed
# agents), push off then push on, on the real TeamHub server (examples/teamhub) driven by the
# hitrate tool (reactive-runtime/examples/hitrate/). A fresh server and database for each mode;
# the same seeded schedule of operations in both. Method and results: docs/benchmarks.md
# ("Cache hit rate").
#
#   scripts/hitrate-bench.sh
#   CLIENTS=1000 DURATION=60 RATE=60 scripts/hitrate-bench.sh
#
# Needs jq and curl. Environment: CARGO_TARGET_DIR (default /work/target-hitrate), OUT (results
# folder), REACTIVE_PORT (3100), DB_DIR (where the SQLite file lives; default /dev/shm, so
# that commits are not disk fsyncs), CLIENTS (400), DURATION (30 s), RATE (40 operations/s),
# AGENTS (40 per organization), ZIPF (1.0), WRITE_SHARE (0.1), SEED (1), MODES ("off on").
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/work/target-hitrate}
out=${OUT:-/tmp/hitrate-bench-$(date +%Y%m%d-%H%M%S)}
port=${REACTIVE_PORT:-3100}
db_dir=${DB_DIR:-/dev/shm}
modes=${MODES:-"off on"}
mkdir -p "$out"
# shellcheck source=scripts/bench-lib.sh
. "$root/scripts/bench-lib.sh"

echo "== building TeamHub and the hitrate tool (release, CARGO_TARGET_DIR=$CARGO_TARGET_DIR)"
(cd "$root" && TEAMHUB_SKIP_WEB_BUILD=1 cargo build --release --quiet -p teamhub)
(cd "$root" && cargo build --release --quiet -p reactive-runtime --example hitrate)
teamhub="$CARGO_TARGET_DIR/release/teamhub"
hitrate="$CARGO_TARGET_DIR/release/examples/hitrate"

# Each user holds two connections (its stream and its keep-alive one).
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

server_pid=""
stop_server() {
  stop_pid "$server_pid"
  server_pid=""
}
trap stop_server EXIT INT TERM

start_server() { # $1: push mode (on/off)
  stop_server
  rm -f "$db_dir"/hitrate-bench.db*
  TEAMHUB_PUSH=$1 TEAMHUB_SKIP_WEB_BUILD=1 DATABASE_URL="sqlite://$db_dir/hitrate-bench.db?mode=rwc" RUST_LOG=warn \
    "$teamhub" --port "$port" >"$out/server-$1.log" 2>&1 &
  server_pid=$!
  wait_for_url "http://127.0.0.1:$port/metrics" && return 0
  echo "TeamHub did not start; see $out/server-$1.log" >&2
  exit 1
}

results="$out/results.jsonl"
: >"$results"
for mode in $modes; do
  settle_ports
  start_server "$mode"
  load=$(cut -d' ' -f1-3 /proc/loadavg)
  echo "== push $mode (load before: $load)"
  "$hitrate" --addr "127.0.0.1:$port" --server-pid "$server_pid" --label "push $mode" \
    --clients "${CLIENTS:-400}" --seconds "${DURATION:-30}" --rate "${RATE:-40}" \
    --agents "${AGENTS:-40}" --zipf "${ZIPF:-1.0}" --write-share "${WRITE_SHARE:-0.1}" \
    --seed "${SEED:-1}" >"$out/push-$mode.txt" 2>"$out/push-$mode.err" || true
  record_result "$out/push-$mode" "$load" "$results" "push $mode"
done
stop_server
rm -f "$db_dir"/hitrate-bench.db*

echo
echo "== results ($out)"
jq -rs '
  ["run", "users", "navs", "writes", "hit rate", "hits", "misses", "coalesced", "HTTP requests",
   "refetches", "unnecessary", "pushed values", "push fallbacks", "srv CPU s", "errors", "load 1m"],
  (.[] | [ .label, .clients, .navigations, .writes, .hit_rate, .hits, .misses, .coalesced,
           .http_requests, .refetches, .unnecessary_refetches, .pushed_values, .push_fallbacks,
           .server_cpu_s, .errors, (.load | split(" ")[0]) ])
  | @tsv' "$results" | column -t -s $'\t'
echo
jq -r '"\(.label): refetches by function \(.refetches_by_function | tojson); unnecessary \(.unnecessary_by_function | tojson); cold reads \(.cold_reads) of \(.reads) navigation reads"' "$results"
