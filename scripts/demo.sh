#!/usr/bin/env bash
# The demo behind `make demo`: copy the example project to a temporary folder,
# run it, run it again (everything is reused), then delete an output and show
# it restored from the cache instead of retrained.
set -euo pipefail
BIN=$(cd "$1" && pwd)
export PATH="$BIN:$PATH"
work=$(mktemp -d "${TMPDIR:-/tmp}/sluice-demo.XXXXXX")
project="$work/churn"
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "sluice init --example churn $project"
sluice init --example churn "$project"
cd "$project"
git init -q -b main .
git add -A
git -c user.email=demo@example.com -c user.name=demo commit -q -m "churn example"

say "sluice plan"
sluice plan

say "sluice run   (first run: every stage runs)"
sluice run

say "sluice run   (second run: nothing changed, nothing runs)"
sluice run

say "rm -rf models && sluice run   (outputs come back from the cache, no retraining)"
rm -rf models
sluice run

say "sluice status"
sluice status

echo
echo "The project is in $project; try editing params.yaml and running 'sluice status'."
