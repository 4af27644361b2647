#!/usr/bin/env bash
# `make bench`: the proxy benchmark (bench/proxy/bench.mjs), after making sure
# wrk, nginx and the Portkey gateway are installed.  Flags and env knobs are
# described at the top of bench/proxy/bench.mjs and in docs/bench.md.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
if [ "${BENCH_SKIP_PORTKEY:-0}" != 1 ]; then
  if [ ! -f bench/node_modules/.package-lock.json ] || [ bench/package-lock.json -nt bench/node_modules/.package-lock.json ]; then
    echo "bench: installing the Portkey gateway (npm ci --prefix bench)" >&2
    npm ci --prefix bench --no-audit --no-fund --loglevel=error
  fi
fi
if [ ! -x build/gyre ]; then
  echo "bench: build/gyre is missing (run make first): measuring the peers only" >&2
fi
exec node bench/proxy/bench.mjs "$@"
