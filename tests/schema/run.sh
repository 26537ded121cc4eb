#!/usr/bin/env bash
# Schema conformance: schemathesis (PyPI, pinned in tests/schema/requirements.txt) generates
# requests from the running binary's /openapi.json, dialect by dialect with that dialect's
# auth, and fails on any 5xx, any response the document does not describe (status, content
# type, body), and any request the document calls valid that the server refuses.
#
#   tests/schema/run.sh [path/to/trunkline]     (default: target/debug/trunkline, built already)
#
# Settings (seed, examples per operation, fixed parameters) are in tests/schema/schemathesis.toml.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD

bin=$(realpath "${1:-target/debug/trunkline}")
[ -x "$bin" ] || { echo "no trunkline binary at $bin (cargo build -p trunkline)" >&2; exit 2; }

venv=.venv-schema
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r tests/schema/requirements.txt

work=$(mktemp -d)
server=
stop_server() {
  if [ -n "$server" ] && kill -0 "$server" 2>/dev/null; then
    kill "$server"
    wait "$server" 2>/dev/null || true
  fi
  server=
  rm -rf "$work"
}
trap stop_server EXIT

# A fresh server: temporary data, no SIP engine, SIP and HTTP on ephemeral loopback ports.
admin_token=$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')
TRUNKLINE_OUTBOUND_ENABLED=false \
  TRUNKLINE_SIP_LISTEN=127.0.0.1:0 \
  TRUNKLINE_ADMIN_TOKEN="$admin_token" \
  TRUNKLINE_LOG=warn \
  "$bin" --data-dir "$work/data" serve --listen 127.0.0.1:0 2>"$work/stderr" &
server=$!

# Wait for `listening on http://…` (the default tenant's key is printed before it).
url=
for _ in $(seq 1 600); do
  url=$(sed -n 's/^listening on \(http:\/\/[^ ]*\).*/\1/p' "$work/stderr")
  [ -n "$url" ] && break
  if ! kill -0 "$server" 2>/dev/null; then
    echo "trunkline exited before listening:" >&2
    cat "$work/stderr" >&2
    exit 1
  fi
  sleep 0.05
done
[ -n "$url" ] || { echo "trunkline did not start listening:" >&2; cat "$work/stderr" >&2; exit 1; }
tenant=$(grep -m1 '^default tenant: ' "$work/stderr")
account=$(sed 's/.*account_id=\([^ ]*\).*/\1/' <<<"$tenant")
key=$(sed 's/.*api_key=\([^ ]*\).*/\1/' <<<"$tenant")

# What the fixed parameters of schemathesis.toml name (see fixtures.py).
fixtures=$("$venv/bin/python" tests/schema/fixtures.py "$url" "$key" "$admin_token")
read -r trunk registration spare_key webhook watched_webhook <<<"$fixtures"
export TRUNKLINE_SCHEMA_ACCOUNT_ID="$account" TRUNKLINE_SCHEMA_TRUNK_ID="$trunk"
export TRUNKLINE_SCHEMA_REGISTRATION_ID="$registration" TRUNKLINE_SCHEMA_SPARE_KEY_PREFIX="$spare_key"
export TRUNKLINE_SCHEMA_WEBHOOK_ID="$webhook" TRUNKLINE_SCHEMA_WATCHED_WEBHOOK_ID="$watched_webhook"

# schemathesis runs in the temporary directory, so hypothesis's files stay out of the tree.
# Every check: no 5xx; status, content type, headers and body as documented; valid data
# accepted and invalid data refused; auth enforced; a deleted resource gone; a created one there.
checks=all

failed=()
run() {
  local name=$1 paths=$2
  shift 2
  printf '\n--- schemathesis: %s (%s)\n' "$name" "$paths" >&2
  if ! (cd "$work" && "$root/$venv/bin/st" --config-file "$root/tests/schema/schemathesis.toml" \
    --no-color run "$url/openapi.json" --include-path-regex "$paths" --checks "$checks" "$@"); then
    failed+=("$name")
  fi
}

# trunkline's own /v1/ takes any dialect's key; it runs first, while the registration it
# reads exists (the Ultravox run deletes what it lists).
run own '^/v1/(?!admin/)' -H "X-API-Key: $key"
run ultravox '^/api/sip/' -H "X-API-Key: $key"
run dasha '^/api/v1/sip-' -H "Authorization: Bearer $key"
run vobiz '^/api/v1/account/' -H "X-Auth-ID: $account" -H "X-Auth-Token: $key"
run admin '^/v1/admin/' -H "Authorization: Bearer $admin_token"

if [ "${#failed[@]}" -gt 0 ]; then
  echo "schema conformance failed: ${failed[*]}" >&2
  exit 1
fi
echo "schema conformance: every dialect passed" >&2
