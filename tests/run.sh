#!/usr/bin/env bash
# Runs every test: the C unit tests, then the integration and client tests
# (node's test runner, each file in its own process).  Prints each suite's
# outcome and ends with one line, "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
BUILD=${GYRE_BUILD:-build}
export GYRE_BUILD=$BUILD
pass=0 fail=0

echo "== unit tests ($BUILD/unit-tests)"
unit_out=$("$BUILD/unit-tests" 2>&1); unit_rc=$?
echo "$unit_out" | grep -v '^ok ' || true
line=$(echo "$unit_out" | grep -E '^unit: [0-9]+ passed, [0-9]+ failed' | tail -1)
if [ -n "$line" ]; then
  p=$(echo "$line" | sed -E 's/^unit: ([0-9]+) passed, ([0-9]+) failed.*/\1/')
  f=$(echo "$line" | sed -E 's/^unit: ([0-9]+) passed, ([0-9]+) failed.*/\2/')
  pass=$((pass + p)); fail=$((fail + f))
fi
if [ $unit_rc -ne 0 ] && [ -z "$line" ]; then fail=$((fail + 1)); echo "unit-tests crashed (rc=$unit_rc)"; fi

echo "== integration and client tests (node --test)"
tap=$(mktemp)
files=$(ls tests/integration/*.test.mjs tests/clients/*.test.mjs 2>/dev/null)
node --test --test-force-exit --test-concurrency=1 --test-timeout=120000 \
  --test-reporter=spec --test-reporter-destination=stdout \
  --test-reporter=tap --test-reporter-destination="$tap" $files
node_rc=$?
p=$(grep -E '^# pass [0-9]+' "$tap" | tail -1 | awk '{print $3}')
f=$(grep -E '^# fail [0-9]+' "$tap" | tail -1 | awk '{print $3}')
c=$(grep -E '^# cancelled [0-9]+' "$tap" | tail -1 | awk '{print $3}')
rm -f "$tap"
pass=$((pass + ${p:-0})); fail=$((fail + ${f:-0} + ${c:-0}))
if [ $node_rc -ne 0 ] && [ "${f:-0}" = 0 ] && [ "${c:-0}" = 0 ]; then fail=$((fail + 1)); echo "node test runner failed (rc=$node_rc)"; fi

echo
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
