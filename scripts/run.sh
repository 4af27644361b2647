#!/usr/bin/env bash
# `make run`: gyre on its embedded default at http://127.0.0.1:8080.
# When no provider key is in the environment, gyre-mock (a fake provider)
# is started on 127.0.0.1:9101 and gyre routes to it, so that the gateway
# answers with no account anywhere.  Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${GYRE_BUILD:-build}
MOCK_PORT=${GYRE_MOCK_PORT:-9101}

# The provider key variables are the ones the embedded default reads: its
# table (known_providers in src/config/config.c) is the one list, read here
# so that a provider added there (ANTHROPIC_API_KEY, GEMINI_API_KEY, ...)
# stops the mock from starting without a second edit.
have_key=0
for v in $(sed -n '/^} known_providers\[\] = {/,/^};/p' src/config/config.c | grep -o '"[A-Z0-9_]*_API_KEY"' | tr -d '"'); do
  [ -n "${!v:-}" ] && have_key=1
done

mock_pid=""
cleanup() { if [ -n "$mock_pid" ]; then kill "$mock_pid" 2>/dev/null || true; fi; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM

if [ "$have_key" = 0 ] && [ -z "${GYRE_MOCK_URL:-}" ]; then
  "$BUILD/gyre-mock" --listen "127.0.0.1:$MOCK_PORT" &
  mock_pid=$!
  export GYRE_MOCK_URL="http://127.0.0.1:$MOCK_PORT/v1"
  for _ in $(seq 50); do
    curl -fs "http://127.0.0.1:$MOCK_PORT/_mock/stats" >/dev/null 2>&1 && break
    sleep 0.1
  done
fi

cat <<MSG
gyre is starting on http://127.0.0.1:8080. Try:
  curl -s http://127.0.0.1:8080/v1/chat/completions -H 'content-type: application/json' \\
       -d '{"model":"chat","messages":[{"role":"user","content":"Hello"}]}'
MSG
"$BUILD/gyre" serve "$@" &
gyre_pid=$!
# Ctrl-C or SIGTERM is passed on to gyre, which finishes what is in flight
# and exits 0; its status is the script's.
trap 'kill -TERM $gyre_pid 2>/dev/null' INT TERM
status=0
wait $gyre_pid || status=$?
if [ $status -gt 128 ]; then # the wait was cut short by the signal: wait for gyre itself
  status=0
  wait $gyre_pid || status=$?
fi
exit $status
