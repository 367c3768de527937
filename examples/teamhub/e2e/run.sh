#!/usr/bin/env bash
# TeamHub browser tests: builds the server and the page, starts the server on a free port with a
# fresh SQLite file, runs the browser scenarios (teamhub.test.mjs) and those of the Vue and TanStack
# pages (bindings.test.mjs) in Debian's Chromium (playwright-core, no
# browser download), saves examples/teamhub/web/screenshot.png, stops the server.
#
#   examples/teamhub/e2e/run.sh              # from anywhere
#   TEAMHUB_BIN=path/to/teamhub run.sh       # use a server binary built elsewhere (skips cargo build)
#   CHROMIUM=/path/to/chromium run.sh
#
# Without Chromium (or Node.js) it prints a skip message and exits 0, unless CI is set: then it fails.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
app="$(dirname "$here")"
root="$(cd "$app/../.." && pwd)"
web="$app/web"
export CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"

skip_or_fail() {
  if [ -n "${CI:-}" ]; then
    echo "teamhub e2e: FAILED: $1 (CI is set, so this is an error)" >&2
    exit 1
  fi
  echo "teamhub e2e: skipped: $1"
  exit 0
}
[ -x "$CHROMIUM" ] || skip_or_fail "no Chromium at $CHROMIUM (apt-get install -y chromium)"
command -v node >/dev/null && command -v npm >/dev/null || skip_or_fail "Node.js 20+ and npm are not installed"

# 1. The server binary.
if [ -z "${TEAMHUB_BIN:-}" ]; then
  echo "teamhub e2e: cargo build -p teamhub"
  (cd "$root" && cargo build -q -p teamhub)
  TEAMHUB_BIN="${CARGO_TARGET_DIR:-$root/target}/debug/teamhub"
fi
[ -x "$TEAMHUB_BIN" ] || { echo "teamhub e2e: no server binary at $TEAMHUB_BIN" >&2; exit 1; }

# 2. Node packages (from the committed lockfiles) and the page.
npm_ci() { # dir: runs `npm ci` unless node_modules matches the lockfile already
  if [ ! -f "$1/node_modules/.package-lock.json" ] || [ "$1/package-lock.json" -nt "$1/node_modules/.package-lock.json" ]; then
    (cd "$1" && npm ci --no-audit --no-fund --loglevel=error)
  fi
}
npm_ci "$web"
npm_ci "$here"
generated_sum() { find "$web/src/generated" -type f -name '*.ts' -print0 | sort -z | xargs -0 cat | cksum; }
before="$(generated_sum)"
(cd "$web" && npm run -s build)

# 3. The server: free port, fresh database, in-memory cache and bus.
tmp="$(mktemp -d)"
port="$(node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})")"
log="$tmp/server.log"
server_pid=""
cleanup() {
  status=$?
  if [ -n "$server_pid" ]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  if [ "$status" -ne 0 ] && [ -f "$log" ]; then
    echo "---- teamhub server log (last 60 lines) ----" >&2
    tail -n 60 "$log" >&2 || true
  fi
  rm -rf "$tmp"
  exit "$status"
}
trap cleanup EXIT INT TERM
echo "teamhub e2e: starting $TEAMHUB_BIN on port $port (database $tmp/teamhub.db)"
(
  cd "$tmp"
  unset REDIS_URL
  DATABASE_URL="sqlite://$tmp/teamhub.db?mode=rwc" PORT="$port" TEAMHUB_SKIP_WEB_BUILD=1 \
    RUST_LOG="${RUST_LOG:-info,sqlx=warn}" exec "$TEAMHUB_BIN"
) >"$log" 2>&1 &
server_pid=$!

url="http://127.0.0.1:$port"
ready=""
for _ in $(seq 1 240); do
  if ! kill -0 "$server_pid" 2>/dev/null; then
    echo "teamhub e2e: the server exited during start-up" >&2
    exit 1
  fi
  code="$(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'content-type: application/json' \
    -H 'authorization: Bearer token-org-1' --data '{"organizationId":"org-1"}' "$url/api/rpc/tools.available" || true)"
  if [ "$code" = "200" ]; then ready=1; break; fi
  sleep 0.25
done
[ -n "$ready" ] || { echo "teamhub e2e: the server did not answer on $url within 60 s" >&2; exit 1; }

# The server rewrote the generated client at start-up: rebuild the page if that changed anything.
if [ "$(generated_sum)" != "$before" ]; then
  echo "teamhub e2e: the generated client changed at start-up; rebuilding the page"
  (cd "$web" && npm run -s build)
fi
curl -sf "$url/" | grep -q 'id="root"' || { echo "teamhub e2e: $url/ does not serve the page" >&2; exit 1; }

# 4. The scenarios.
cd "$here"
TEAMHUB_URL="$url" node --test --test-concurrency=1 --test-reporter=spec teamhub.test.mjs bindings.test.mjs
