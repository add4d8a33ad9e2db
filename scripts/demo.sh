#!/usr/bin/env bash
# The demo behind `make demo`: copy the example project to a temporary folder,
# run it, run it again (everything is reused), then delete an output and show
# it restored from the cache instead of retrained.
set -euo pipefail
BIN=$(cd "$1" && pwd)
export PATH="$BIN:$PATH"
work=$(mktemp -d "${TMPDIR:-/tmp}/sluice-demo.XXXXXX")
project="$work/churn"
if [ -t 1 ]; then
    say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
else
    say() { printf '\n== %s\n' "$*"; }
fi

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

say "sluice data validate   (data/regions.csv against schemas/regions.yaml)"
sluice data validate

say "a pull request that breaks the data: sluice run --tier pr --base main"
git checkout -q -b broken-regions
sed -i.orig 's/^north,85.2/north,-85.2/' data/regions.csv && rm -f data/regions.csv.orig
git -c user.email=demo@example.com -c user.name=demo commit -q -am "a negative population density"
if sluice run --tier pr --base main; then
    echo "unexpected: the broken data passed" >&2
    exit 1
fi
echo "(exit code 1: the schema check failed, and no training started)"
git checkout -q main

say "sluice ci generate github   (the workflow that runs the tiers; also gitlab, jenkins, circleci)"
sluice ci generate github | sed -n '1,12p'
echo "..."
say "sluice ci check   (the committed CI files still match sluice.yaml)"
sluice ci check

echo
echo "The project is in $project; try editing params.yaml and running 'sluice status'."
echo "Open the example's dashboard (runs, budgets, models; http://127.0.0.1:8765/):"
echo "  cd $project && PATH=\"$BIN:\$PATH\" sluice ui"
