#!/usr/bin/env bash
# SSE fan-out benchmark: our router (reactive-runtime/examples/sse_bench.rs) against the
# nchan peer (nginx + nchan, one worker), with the shared load tool `sseload`, on this
# machine, in the same session. Method and results: docs/benchmarks.md.
#
#   scripts/sse-bench.sh                 # all three scenarios, both servers
#   SCENARIOS="1k" scripts/sse-bench.sh  # a subset: 1k, 10k, 10k100, 2kdistinct
#   SERVERS="reactive" scripts/sse-bench.sh   # only ours (or "nchan", or "reactive-axum":
#                                             # the same router under axum::serve)
#
# Needs: nginx-light + libnginx-mod-nchan (apt-get install -y nginx-light libnginx-mod-nchan),
# jq, curl. Environment: CARGO_TARGET_DIR (default /work/target-sse), TOOLS (default
# ../shared/tools next to the repo), OUT (results folder), REACTIVE_PORT (8091),
# SSE_BENCH_THREADS (worker threads of our server; default one per core), NCHAN_DIR.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
tools=${TOOLS:-$(cd "$root/../shared/tools" 2>/dev/null && pwd || true)}
[ -n "$tools" ] && [ -d "$tools/sseload" ] || { echo "shared tools not found (set TOOLS=)" >&2; exit 1; }
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/work/target-sse}
out=${OUT:-/tmp/sse-bench-$(date +%Y%m%d-%H%M%S)}
port=${REACTIVE_PORT:-8091}
scenarios=${SCENARIOS:-"1k 10k 10k100"}
servers=${SERVERS:-"nchan reactive"}
mkdir -p "$out"
# shellcheck source=scripts/bench-lib.sh
. "$root/scripts/bench-lib.sh"

echo "== building sseload and the bench server (release, CARGO_TARGET_DIR=$CARGO_TARGET_DIR)"
cargo build --release --quiet --manifest-path "$tools/sseload/Cargo.toml" 2>/dev/null ||
  cargo build --release --manifest-path "$tools/sseload/Cargo.toml"
(cd "$root" && cargo build --release --quiet -p reactive-runtime --example sse_bench)
sseload="$CARGO_TARGET_DIR/release/sseload"
bench="$CARGO_TARGET_DIR/release/examples/sse_bench"

# 10,000 subscribers + their server-side sockets: raise the open-files limit to the hard limit.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
echo "open files limit: $(ulimit -n)"

reactive_pid=""
nchan_started=""

stop_reactive() {
  stop_pid "$reactive_pid"
  reactive_pid=""
}

stop_nchan() {
  if [ -n "$nchan_started" ]; then
    local pid
    pid=$("$tools/nchan/run.sh" pid 2>/dev/null || true)
    "$tools/nchan/run.sh" stop >/dev/null 2>&1 || true
    for _ in $(seq 100); do
      [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
  fi
  nchan_started=""
}

cleanup() { stop_reactive; stop_nchan; }
trap cleanup EXIT INT TERM

# Fresh server for every run, so RSS per connection is measured from a clean baseline.
start_reactive() { # [axum]
  stop_reactive
  # A database file, fresh per run: with `sqlite::memory:` every pooled connection has a
  # database of its own, so the catalog cannot see the bench table's columns and every
  # write changes the whole table (each event then reaches every subscriber).
  rm -f "$out"/bench.db*
  SSE_BENCH_DB="${SSE_BENCH_DB:-sqlite://$out/bench.db?mode=rwc}" \
    SSE_BENCH_SERVER="${1:-}" SSE_BENCH_ADDR="127.0.0.1:$port" "$bench" >"$out/reactive-server.log" 2>&1 &
  reactive_pid=$!
  wait_for_url "http://127.0.0.1:$port/stats" && return 0
  echo "the bench server did not start; see $out/reactive-server.log" >&2
  exit 1
}

start_nchan() {
  stop_nchan
  "$tools/nchan/run.sh" start >/dev/null
  nchan_started=1
  wait_for_url "http://127.0.0.1:8090/nchan_status" && return 0
  echo "nchan did not start" >&2
  exit 1
}

# scenario name -> "subs msgs interval_ms channels"
params() {
  case "$1" in
    1k) echo "1000 100 100 1" ;;
    10k) echo "10000 100 500 1" ;;
    10k100) echo "10000 500 20 100" ;;
    2kdistinct) echo "2000 20 100 2000" ;; # every connection on its own query key (memory)
    *) echo "unknown scenario $1" >&2; exit 1 ;;
  esac
}

results="$out/results.jsonl"
: >"$results"

run_one() {
  local server=$1 scen=$2
  read -r subs msgs interval channels <<<"$(params "$scen")"
  settle_ports
  local sub pub pids
  case "$server" in
    nchan)
      start_nchan
      local master worker
      master=$("$tools/nchan/run.sh" pid)
      worker=$(pgrep -P "$master" | head -1)
      pids="--pid $master --pid $worker"
      sub='http://127.0.0.1:8090/sub?id={ch}'
      pub='http://127.0.0.1:8090/pub?id={ch}'
      ;;
    reactive | reactive-axum)
      if [ "$server" = reactive-axum ]; then start_reactive axum; else start_reactive; fi
      pids="--pid $reactive_pid"
      # subscribe=bench.channel:{"channel":"<ch>"} (a query key), percent-encoded
      sub="http://127.0.0.1:$port/events?subscribe=bench.channel%3A%7B%22channel%22%3A%22{ch}%22%7D"
      pub="http://127.0.0.1:$port/pub?id={ch}"
      ;;
  esac
  local load
  load=$(cut -d' ' -f1-3 /proc/loadavg)
  echo "== $server / $scen: $subs subscribers on $channels channel(s), $msgs msgs every $interval ms (load before: $load)"
  # shellcheck disable=SC2086
  "$sseload" --subs "$subs" --msgs "$msgs" --interval-ms "$interval" --channels "$channels" \
    --sub-url "$sub" --pub-url "$pub" $pids --label "$server-$scen" \
    >"$out/$server-$scen.txt" 2>"$out/$server-$scen.err" || true
  local load_after
  load_after=$(cut -d' ' -f1-3 /proc/loadavg)
  cat "$out/$server-$scen.err" "$out/$server-$scen.txt" | grep -v '^JSON' || true
  local json
  json=$(grep '^JSON ' "$out/$server-$scen.txt" | sed 's/^JSON //' || true)
  if [ -n "$json" ]; then
    jq -c --arg server "$server" --arg scen "$scen" --arg load "$load" --arg load_after "$load_after" \
      '. + {server: $server, scen: $scen, load: $load, load_after: $load_after}' <<<"$json" >>"$results"
  else
    echo "   (no result for $server/$scen)"
  fi
}

for scen in $scenarios; do
  for server in $servers; do
    run_one "$server" "$scen"
  done
done
cleanup

echo
echo "== results ($out)"
jq -rs '
  def r(x): (x * 10 | round) / 10;
  def ratio(a; b): if b == 0 then "-" else ((a / b * 100 | round) / 100 | tostring) + "x" end;
  (map(select(.server == "nchan")) | map({key: .scen, value: .}) | from_entries) as $n
  | ["scenario", "server", "p50 ms", "p99 ms", "max ms", "last sub p50 ms", "delivered/expected",
     "kB/conn", "srv CPU s", "load 1m", "p99 vs nchan", "kB/conn vs nchan"],
    (.[] | [ .scen, .server, r(.p50_ms), r(.p99_ms), r(.max_ms), r(.fan_p50_ms),
             "\(.deliveries)/\(.expected)", r(.kb_per_conn), .srv_cpu_s, (.load | split(" ")[0]),
             (if .server == "nchan" or ($n[.scen] | not) then "" else ratio(.p99_ms; $n[.scen].p99_ms) end),
             (if .server == "nchan" or ($n[.scen] | not) then "" else ratio(.kb_per_conn; $n[.scen].kb_per_conn) end) ])
  | @tsv' "$results" | column -t -s $'\t'
