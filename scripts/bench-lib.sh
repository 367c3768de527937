# Helpers of the bench scripts (sse-bench.sh, herd-bench.sh), sourced by them.

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
