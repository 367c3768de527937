#!/usr/bin/env bash
# Checks that the committed sqlx offline data (`examples/tracker/.sqlx/`) matches the
# queries in the source: applies `migrations/` to a scratch database, re-expands the
# query macros against it into a temporary directory and compares.
#
#   examples/tracker/check-offline.sh            # check (CI runs this)
#   examples/tracker/check-offline.sh --update   # regenerate .sqlx/ after changing a query
#
# The server is the one TEST_POSTGRES_URL names (default postgres://postgres@127.0.0.1:5432/test);
# the scratch database `tracker_sqlx_check` is dropped and recreated on it.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
url=${TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}
url=${url%%\?*}          # no query string
server=${url%/*}         # postgres://user@host:port
scratch=tracker_sqlx_check
update=false
[ "${1:-}" = "--update" ] && update=true

PGOPTIONS="-c client_min_messages=warning" psql -q -v ON_ERROR_STOP=1 "$server/postgres" -c "DROP DATABASE IF EXISTS $scratch WITH (FORCE)" -c "CREATE DATABASE $scratch"
for f in "$here"/migrations/*.sql; do
  psql -q -v ON_ERROR_STOP=1 "$server/$scratch" -f "$f" >/dev/null
done

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
# Query macros run again only when the crate recompiles: touch the sources.
touch "$here"/src/*.rs
(cd "$root" && DATABASE_URL="$server/$scratch" SQLX_OFFLINE=false SQLX_OFFLINE_DIR="$out" \
  cargo check -q -p tracker --lib)
PGOPTIONS="-c client_min_messages=warning" psql -q "$server/postgres" -c "DROP DATABASE IF EXISTS $scratch WITH (FORCE)" || true

if $update; then
  rm -rf "$here/.sqlx"
  mkdir -p "$here/.sqlx"
  cp "$out"/query-*.json "$here/.sqlx/"
  echo "tracker: wrote $(ls "$here/.sqlx" | wc -l) files to examples/tracker/.sqlx"
  exit 0
fi

if ! diff -r "$out" "$here/.sqlx" >&2; then
  echo "tracker: examples/tracker/.sqlx/ is out of date with the queries in src/ (diff above: < fresh, > committed)." >&2
  echo "tracker: regenerate it with \`examples/tracker/check-offline.sh --update\` and commit it." >&2
  exit 1
fi
echo "tracker: .sqlx/ offline data is up to date ($(ls "$out" | wc -l) queries)"
