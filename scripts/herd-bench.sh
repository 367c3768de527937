#!/usr/bin/env bash
# The herd: one write to a query held by N connected clients, invalidate + refetch
# (`bench.channel`) against pushed results (`bench.channelPushed`), on the SSE bench server
# (reactive-runtime/examples/sse_bench.rs) with the herd client (examples/herd/). A fresh
# server for every run. Method and results: docs/benchmarks.md ("Herd").
#
#   scripts/herd-bench.sh                          # N=1 (200 writes), 1,000 and 10,000
#   RUNS="push:1000:5 refetch:1000:5" scripts/herd-bench.sh   # mode:clients:writes[:interval ms]
#
# Needs jq and curl. Environment: CARGO_TARGET_DIR (default /work/target-herd), OUT (results
# folder), REACTIVE_PORT (8092), SSE_BENCH_THREADS (server worker threads; default one per core),
# DB_DIR (where the SQLite file lives; default /dev/shm, so that a write's commit is not a disk
# fsync: on this machine's disk that alone is about 8 ms of every write -> value).
#
# The server holds one socket per stream and, in refetch mode, one more per client (its
# keep-alive connection for refetches): a refetch run needs 2N connections, which the
# per-process file descriptor limit may not allow (the server caps connections 256 below
# it). Such a run is made with the largest N that fits, and its label says so.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/work/target-herd}
out=${OUT:-/tmp/herd-bench-$(date +%Y%m%d-%H%M%S)}
port=${REACTIVE_PORT:-8092}
runs=${RUNS:-"push:1:200:50 refetch:1:200:50 push:1000:5 refetch:1000:5 push:10000:5 refetch:10000:5"}
db_dir=${DB_DIR:-/dev/shm}
mkdir -p "$out"
# shellcheck source=scripts/bench-lib.sh
. "$root/scripts/bench-lib.sh"

echo "== building the bench server and the herd client (release, CARGO_TARGET_DIR=$CARGO_TARGET_DIR)"
(cd "$root" && cargo build --release --quiet -p reactive-runtime --example sse_bench --example herd)
bench="$CARGO_TARGET_DIR/release/examples/sse_bench"
herd="$CARGO_TARGET_DIR/release/examples/herd"

ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
fds=$(ulimit -n)
# The server's default connection cap (serve/config.rs): 256 below the descriptor limit.
server_cap=$((fds - 256))
echo "open files limit: $fds (server connection cap $server_cap)"

server_pid=""
stop_server() {
  stop_pid "$server_pid"
  server_pid=""
}
trap stop_server EXIT INT TERM

start_server() {
  stop_server
  rm -f "$db_dir"/herd-bench.db*
  SSE_BENCH_DB="sqlite://$db_dir/herd-bench.db?mode=rwc" SSE_BENCH_ADDR="127.0.0.1:$port" \
    "$bench" >"$out/server.log" 2>&1 &
  server_pid=$!
  wait_for_url "http://127.0.0.1:$port/stats" && return 0
  echo "the bench server did not start; see $out/server.log" >&2
  exit 1
}

results="$out/results.jsonl"
: >"$results"
i=0
for run in $runs; do
  i=$((i + 1))
  IFS=: read -r mode clients writes interval <<<"$run"
  interval=${interval:-500}
  label="$mode-$clients"
  # 2 connections per refetch client, plus the tool's own.
  if [ "$mode" = refetch ] && [ $((2 * clients + 2)) -gt "$server_cap" ]; then
    clients=$(((server_cap - 2) / 2 / 100 * 100))
    label="$label(ran $clients: fd limit)"
  fi
  settle_ports
  start_server
  load=$(cut -d' ' -f1-3 /proc/loadavg)
  echo "== $label: $clients clients, $writes writes every $interval ms (load before: $load)"
  "$herd" --addr "127.0.0.1:$port" --mode "$mode" --clients "$clients" --writes "$writes" \
    --interval-ms "$interval" --label "$label" >"$out/$i-$mode-$clients.txt" 2>"$out/$i-$mode-$clients.err" || true
  record_result "$out/$i-$mode-$clients" "$load" "$results" "$label"
done
stop_server
rm -f "$db_dir"/herd-bench.db*

echo
echo "== results ($out)"
jq -rs '
  ["run", "clients", "writes", "p50 ms", "p99 ms", "max ms", "last client p50 ms", "held/expected",
   "fallbacks", "query execs/write", "other requests/write", "srv CPU s/write", "client CPU s/write", "load 1m"],
  (.[] | [ .label, .connected, .writes, .p50_ms, .p99_ms, .max_ms, .last_p50_ms,
           "\(.holds)/\(.expected)", .fallbacks, .executions_per_write, .requests_per_write,
           .cpu_s_per_write, .client_cpu_s_per_write, (.load | split(" ")[0]) ])
  | @tsv' "$results" | column -t -s $'\t'
