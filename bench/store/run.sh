#!/usr/bin/env bash
# The trace store's benchmarks (issue 5): bench-writer (write_batch and the
# whole writer, traces/s of 2 KB bodies) and bench-api.mjs (/api/traces and
# /api/stats latency over 1M traces).  GYRE_BUILD picks the build directory
# (default build); both are built into it first.  Then bench/store/overload.mjs
# (the trace log under a 60 s saturating wrk run; BENCH_SKIP_OVERLOAD=1 leaves it out).  Extra arguments go to
# bench-api.mjs (--json, --n, --db, --fill, --seconds); WRITER_N sets how many
# traces bench-writer writes (default 200000).
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD="${GYRE_BUILD:-build}"
make -s BUILD="$BUILD" "$BUILD/gyre" "$BUILD/libgyre.a"
make -s -C bench/store BUILD="$PWD/$BUILD"
"$BUILD/bench-writer" --n "${WRITER_N:-200000}" --db "${WRITER_DB:-/tmp/gyre-bench-writer.db}" --json
GYRE_BUILD="$BUILD" node bench/store/bench-api.mjs "$@"
# The trace log under sustained overload (issue 12): wrk flat out for BENCH_OVERLOAD_SECONDS (60) with full
# capture; every answered call logged, none dropped, and how long the index takes to catch up.
if [ "${BENCH_SKIP_OVERLOAD:-0}" != 1 ]; then
  GYRE_BUILD="$BUILD" node bench/store/overload.mjs "$@"
fi
