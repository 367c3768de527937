# Helpers of the bench scripts (sse-bench.sh, herd-bench.sh, hitrate-bench.sh), sourced by them.

# Stops process $1 (a child of this shell) if it runs, and reaps it.
stop_pid() {
  if [ -n "$1" ] && kill -0 "$1" 2>/dev/null; then
    kill "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
  fi
}

# Waits up to 10 s for URL $1 to answer; fails if it does not.
wait_for_url() {
  for _ in $(seq 100); do
    curl -fsS "$1" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  return 1
}

# Waits (up to 60 s) until TIME_WAIT sockets from the previous run drop below a bound, so
# runs do not starve each other of local ports.
settle_ports() {
  for _ in $(seq 60); do
    [ "$(ss -tan state time-wait 2>/dev/null | wc -l)" -lt 12000 ] && return 0
    sleep 1
  done
}

# Shows what a bench tool wrote to $1.err and $1.txt and appends the `JSON ` line of $1.txt to the
# file $3, with the load averages before the run ($2) and now; says so when there is none ($4:
# the run's name).
record_result() {
  local base=$1 load=$2 results=$3 name=$4 load_after json
  load_after=$(cut -d' ' -f1-3 /proc/loadavg)
  cat "$base.err"
  grep -v '^JSON' "$base.txt" || true
  json=$(grep '^JSON ' "$base.txt" | sed 's/^JSON //' || true)
  if [ -n "$json" ]; then
    jq -c --arg load "$load" --arg load_after "$load_after" \
      '. + {load: $load, load_after: $load_after}' <<<"$json" >>"$results"
  else
    echo "   (no result for $name)"
  fi
}
