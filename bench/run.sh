#!/usr/bin/env bash
# `make bench`: the proxy benchmark (bench/proxy/bench.mjs, gyre with and
# without full trace capture), the routing benchmark (bench/routing/bench.mjs:
# failover, circuit breakers, cache), then the trace store's (bench/store:
# writer traces/s, /api/traces and /api/stats latency at 1M traces), after
# making sure wrk, nginx and the Portkey gateway are installed.  Flags and env
# knobs are described at the top of each script and in docs/bench.md;
# BENCH_SKIP_PROXY=1, BENCH_SKIP_ROUTING=1 or BENCH_SKIP_STORE=1 leaves one out.  Last, build/stream-cpu
# (bench/stream_cpu.c: a translated stream's CPU against a pass-through's; BENCH_SKIP_STREAM=1 leaves it out), and
# build/access-cpu (bench/access/access_cpu.c: the access stage's p50/p99 per request; BENCH_SKIP_ACCESS=1 leaves
# it out; its line joins latest.md when the proxy run just wrote it), build/limits-cpu
# (bench/access/limits_cpu.c: the access and limits stages together, p50/p99 per request; BENCH_SKIP_LIMITS=1),
# build/guard-cpu (bench/guard/guard_cpu.c: an in-line guardrail on a 2 KB answer, p50/p99; BENCH_SKIP_GUARD=1),
# and the alerts' two (bench/alerts/; BENCH_SKIP_ALERTS=1 leaves them out), and the curation's (bench/curate/run.sh:
# `gyre curate` over 1M agent traces, time and peak memory, and dedup and cluster quality against planted truth;
# BENCH_SKIP_CURATE=1 leaves it out).  With --json each
# prints its JSON document on stdout, the proxy's first.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
if [ "${BENCH_SKIP_PROXY:-0}" != 1 ] && [ "${BENCH_SKIP_PORTKEY:-0}" != 1 ]; then
  if [ ! -f bench/node_modules/.package-lock.json ] || [ bench/package-lock.json -nt bench/node_modules/.package-lock.json ]; then
    echo "bench: installing the Portkey gateway (npm ci --prefix bench)" >&2
    npm ci --prefix bench --no-audit --no-fund --loglevel=error
  fi
fi
if [ ! -x build/gyre ]; then
  echo "bench: build/gyre is missing (run make first): measuring the peers only" >&2
fi
status=0
latest=bench/results/latest.md
before=$(stat -c %Y.%s "$latest" 2>/dev/null || echo none)
if [ "${BENCH_SKIP_PROXY:-0}" != 1 ]; then
  node bench/proxy/bench.mjs "$@" || status=$?
fi
if [ "${BENCH_SKIP_ROUTING:-0}" != 1 ]; then
  if [ -x build/gyre ] && [ -x build/gyre-mock ]; then
    # The routing table joins latest.md only when the proxy run just wrote it,
    # so that the file always describes one run.
    append=()
    after=$(stat -c %Y.%s "$latest" 2>/dev/null || echo none)
    [ "$after" != none ] && [ "$after" != "$before" ] && append=(--append-latest)
    BENCH_VIA=make node bench/routing/bench.mjs ${append[@]+"${append[@]}"} "$@" || status=$?
  else
    echo "bench: build/gyre or build/gyre-mock is missing: routing benchmark skipped" >&2
  fi
fi
if [ "${BENCH_SKIP_STORE:-0}" != 1 ]; then
  if [ -x build/gyre ]; then
    GYRE_BUILD=build bash bench/store/run.sh "$@" || status=$?
  else
    echo "bench: build/gyre is missing: store benchmark skipped" >&2
  fi
fi
if [ "${BENCH_SKIP_STREAM:-0}" != 1 ]; then
  if [ -x build/stream-cpu ]; then
    json=()
    for a in "$@"; do [ "$a" = --json ] && json=(--json); done
    build/stream-cpu ${json[@]+"${json[@]}"} || status=$?
  else
    echo "bench: build/stream-cpu is missing (make bench builds it): stream CPU benchmark skipped" >&2
  fi
fi
if [ "${BENCH_SKIP_ACCESS:-0}" != 1 ]; then
  if [ -x build/access-cpu ]; then
    json=()
    for a in "$@"; do [ "$a" = --json ] && json=(--json); done
    line=$(build/access-cpu ${json[@]+"${json[@]}"}) || status=$?
    printf '%s\n' "$line"
    # Like the routing table, the line joins latest.md only when the proxy run just wrote it.
    after=$(stat -c %Y.%s "$latest" 2>/dev/null || echo none)
    if [ ${#json[@]} -eq 0 ] && [ -n "$line" ] && [ "$after" != none ] && [ "$after" != "$before" ]; then
      printf '%s\n' "$line" >>"$latest"
    fi
  else
    echo "bench: build/access-cpu is missing (make bench builds it): access benchmark skipped" >&2
  fi
fi
if [ "${BENCH_SKIP_LIMITS:-0}" != 1 ]; then
  if [ -x build/limits-cpu ]; then
    json=()
    for a in "$@"; do [ "$a" = --json ] && json=(--json); done
    line=$(build/limits-cpu ${json[@]+"${json[@]}"}) || status=$?
    printf '%s\n' "$line"
    after=$(stat -c %Y.%s "$latest" 2>/dev/null || echo none)
    if [ ${#json[@]} -eq 0 ] && [ -n "$line" ] && [ "$after" != none ] && [ "$after" != "$before" ]; then
      printf '%s\n' "$line" >>"$latest"
    fi
  else
    echo "bench: build/limits-cpu is missing (make bench builds it): limits benchmark skipped" >&2
  fi
fi
if [ "${BENCH_SKIP_GUARD:-0}" != 1 ]; then
  # Guardrails (bench/guard/guard_cpu.c): an in-line check's cost per request on a 2 KB answer.
  if [ -x build/guard-cpu ]; then
    json=()
    for a in "$@"; do [ "$a" = --json ] && json=(--json); done
    line=$(build/guard-cpu ${json[@]+"${json[@]}"}) || status=$?
    printf '%s\n' "$line"
    after=$(stat -c %Y.%s "$latest" 2>/dev/null || echo none)
    if [ ${#json[@]} -eq 0 ] && [ -n "$line" ] && [ "$after" != none ] && [ "$after" != "$before" ]; then
      printf '%s\n' "$line" >>"$latest"
    fi
  else
    echo "bench: build/guard-cpu is missing (make bench builds it): guardrail benchmark skipped" >&2
  fi
fi
if [ "${BENCH_SKIP_ALERTS:-0}" != 1 ]; then
  # Alerts (bench/alerts/): the evaluation's CPU at 20k req/s with 20 rules, and from the first 429 on a key to
  # traffic off it with `for: 0s`.  BENCH_SKIP_ALERTS=1 leaves them out.
  json=()
  for a in "$@"; do [ "$a" = --json ] && json=(--json); done
  if [ -x build/alerts-cpu ]; then
    build/alerts-cpu ${json[@]+"${json[@]}"} || status=$?
  else
    echo "bench: build/alerts-cpu is missing (make bench builds it): alert CPU benchmark skipped" >&2
  fi
  if [ -x build/gyre ] && [ -x build/gyre-mock ]; then
    GYRE_BUILD=build node bench/alerts/rotate.mjs ${json[@]+"${json[@]}"} || status=$?
  fi
fi
if [ "${BENCH_SKIP_CURATE:-0}" != 1 ]; then
  if [ -x build/gyre ] && [ -x build/curate-fill ]; then
    GYRE_BUILD=build bash bench/curate/run.sh "$@" || status=$?
  else
    echo "bench: build/gyre or build/curate-fill is missing (make bench builds it): curation benchmark skipped" >&2
  fi
fi
exit "$status"
