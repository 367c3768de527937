#!/usr/bin/env bash
# Runs every test of the project: the Rust workspace (unit, integration against the
# databases whose URLs are set, trybuild UI tests) and the TypeScript client's tests.
# Tests that need PostgreSQL / MariaDB / Redis read TEST_POSTGRES_URL / TEST_MYSQL_URL /
# TEST_REDIS_URL and say that they skip when one is unset (unless CI is set: then they fail).
set -euo pipefail
cd "$(dirname "$0")/.."

cargo test --workspace --all-features

ts=reactive-codegen/ts
if [ -f "$ts/package.json" ]; then
  if command -v npm >/dev/null 2>&1; then
    (cd "$ts" && npm ci --no-audit --no-fund --loglevel=error && npm test && npm run size)
  elif [ -n "${CI:-}" ]; then
    echo "test-all: npm not found; the TypeScript client tests need Node.js 20+" >&2; exit 1
  else
    echo "test-all: skipped TypeScript client tests: npm not found (install Node.js 20+)"
  fi
fi

# The example app in a real browser (headless Chromium; skips with a message when Chromium
# or Node.js is missing, unless CI is set).
examples/teamhub/e2e/run.sh
