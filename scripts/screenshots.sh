#!/usr/bin/env bash
# `make screenshots`: the churn example after its pr and merge tiers, a pending
# production request, `sluice ui` on it, and screenshots of its pages written to
# docs/images/ (for docs/ui.md). Outside the test suite; needs Debian's Chromium.
set -euo pipefail
BIN=$(cd "$1" && pwd)
export PATH="$BIN:$PATH"
root=$(pwd)
out="$root/docs/images"
work=$(mktemp -d "${TMPDIR:-/tmp}/sluice-screens.XXXXXX")
project="$work/churn"
server=""
cleanup() { if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; fi; rm -rf "$work"; }
trap cleanup EXIT
export GITHUB_ACTOR="" SLUICE_UI_TOKENS="$work/tokens.json"

sluice init --example churn "$project" >/dev/null
cd "$project"
git init -q -b main .
git add -A
git -c user.email=demo@example.com -c user.name=demo commit -q -m "churn example"
sluice run --tier pr >/dev/null
# Estimates scale the pr tier's 2 % training up: on a busy machine they can exceed the
# merge budget, which is not what the pictures are about.
sluice run --tier merge --allow-over-budget >/dev/null
sluice promote churn --to production --actor alice --reason "Q4 retrain" >/dev/null
token=$(sluice ui token add bob 2>/dev/null)
port=$("$BIN/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
sluice ui --port "$port" >"$work/ui.log" 2>&1 &
server=$!
for _ in $(seq 1 100); do
    "$BIN/python" -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/api/models')" \
        2>/dev/null && break
    sleep 0.3
done
"$BIN/python" "$root/scripts/screenshots.py" "http://127.0.0.1:$port" "$token" "$out"
