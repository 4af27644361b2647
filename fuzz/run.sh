#!/usr/bin/env bash
# `make fuzz`: builds each fuzz/fuzz_*.c driver with clang's libFuzzer, ASan
# and UBSan, and runs it for FUZZ_SECONDS from its seed corpus.  New inputs
# go to a scratch corpus under build-fuzz/, so the committed seeds stay small.
# Exits non-zero when any driver finds a crash (the input is kept there).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${GYRE_BUILD:-build-fuzz}
SECONDS_EACH=${FUZZ_SECONDS:-30}
PKGS="libh2o-evloop yaml-0.1 libcjson openssl"
CFLAGS="-g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -D_GNU_SOURCE -DH2O_USE_LIBUV=0 -Isrc $(pkg-config --cflags $PKGS)"
LIBS="$(pkg-config --libs $PKGS) -lssl -lcrypto -lpthread -lm"
LIB_SRCS=$(ls src/*/*.c | grep -v '^src/main.c$')
mkdir -p "$OUT"

failed=0
for driver in fuzz/fuzz_*.c; do
  name=$(basename "$driver" .c)
  echo "== $name: building" >&2
  # shellcheck disable=SC2086
  clang $CFLAGS "$driver" $LIB_SRCS -o "$OUT/$name" $LIBS
  work="$OUT/corpus/$name"
  mkdir -p "$work" "$OUT/crashes/$name"
  seeds="fuzz/corpus/$name"
  [ -d "$seeds" ] || seeds=""
  echo "== $name: running for ${SECONDS_EACH}s" >&2
  if ! "$OUT/$name" -max_total_time="$SECONDS_EACH" -print_final_stats=1 \
       -artifact_prefix="$OUT/crashes/$name/" "$work" $seeds > "$OUT/$name.log" 2>&1; then
    echo "!! $name found a crash: see $OUT/$name.log and $OUT/crashes/$name/" >&2
    tail -30 "$OUT/$name.log" >&2
    failed=1
  else
    runs=$(grep -E '^stat::number_of_executed_units' "$OUT/$name.log" | awk '{print $2}')
    echo "   $name: ${runs:-?} inputs, no crash" >&2
  fi
done
exit $failed
