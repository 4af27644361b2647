#!/usr/bin/env bash
# Redaction's cost per 2 KB body (bench-redact.c): builds GYRE_BUILD's
# libgyre.a (default build), compiles bench-redact against it with cc -O2
# and runs it; arguments go to bench-redact (--rounds, --iters, --json).
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD="${GYRE_BUILD:-build}"
make -s BUILD="$BUILD" "$BUILD/libgyre.a"
"${CC:-cc}" -std=c11 -O2 -g -Wall -Wextra -Werror -D_GNU_SOURCE -Isrc -Itests/unit \
  bench/redact/bench-redact.c "$BUILD/libgyre.a" -o "$BUILD/bench-redact"
"$BUILD/bench-redact" "$@"
