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
# --test-force-exit (node >= 20.10) ends a file's process once its tests are
# done even if a failed test left a server open; Debian 12's node 18 lacks it.
force_exit=""
node --test-force-exit -e 0 >/dev/null 2>&1 && force_exit="--test-force-exit"
node --test $force_exit --test-concurrency=1 --test-timeout=120000 \
  --test-reporter=spec --test-reporter-destination=stdout \
  --test-reporter=tap --test-reporter-destination="$tap" $files
node_rc=$?
# Counted from the TAP stream's top-level results: with --test-force-exit the
# runner may exit before it writes its own summary comments.  A file whose
# hooks failed shows up as a "not ok" of its own.
p=$(grep -E '^ok [0-9]+ ' "$tap" | grep -vc '# SKIP')
sk=$(grep -E '^ok [0-9]+ ' "$tap" | grep -c '# SKIP')
f=$(grep -cE '^not ok [0-9]+ ' "$tap")
rm -f "$tap"
pass=$((pass + p)); fail=$((fail + f))
if [ "$sk" -ne 0 ]; then echo "$sk skipped tests count as failures here"; fail=$((fail + sk)); fi
if [ $node_rc -ne 0 ] && [ "$f" = 0 ]; then fail=$((fail + 1)); echo "node test runner failed (rc=$node_rc)"; fi

echo
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
