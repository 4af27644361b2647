#!/usr/bin/env bash
# `make fuzz`: builds each fuzz/fuzz_*.c driver with clang's libFuzzer, ASan
# and UBSan (into GYRE_BUILD, default build-fuzz/), and runs it for
# FUZZ_SECONDS (default 30) from its seeds in fuzz/corpus/<driver>/, with
# fuzz/<driver>.dict when there is one.  New inputs go to a scratch corpus
# under GYRE_BUILD, so the committed seeds stay small and a later run starts
# from where this one stopped.  Exits non-zero when any driver crashes, leaks
# or breaks one of its checks; the input that did it is kept in
# GYRE_BUILD/crashes/<driver>/ (replay: GYRE_BUILD/<driver> FILE).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${GYRE_BUILD:-build-fuzz}
SECONDS_EACH=${FUZZ_SECONDS:-30}
CC=${FUZZ_CC:-clang}
# The Makefile passes its own list (GYRE_PKGS), so the two cannot drift apart.
PKGS=${GYRE_PKGS:-"libh2o-evloop yaml-0.1 libcjson openssl sqlite3 libzstd zlib libsodium"}
CFLAGS="-g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
CFLAGS="$CFLAGS -D_GNU_SOURCE -DH2O_USE_LIBUV=0 -Isrc $(pkg-config --cflags $PKGS)"
LIBS="$(pkg-config --libs $PKGS) -lssl -lcrypto -lpthread -lm"
LIB_SRCS=$(ls src/*/*.c)
mkdir -p "$OUT"

failed=0
for driver in fuzz/fuzz_*.c; do
  name=$(basename "$driver" .c)
  echo "== $name: building" >&2
  # shellcheck disable=SC2086
  "$CC" $CFLAGS "$driver" $LIB_SRCS -o "$OUT/$name" $LIBS
  work="$OUT/corpus/$name"
  mkdir -p "$work" "$OUT/crashes/$name"
  args=(-max_total_time="$SECONDS_EACH" -timeout=10 -print_final_stats=1 -artifact_prefix="$OUT/crashes/$name/")
  [ -f "fuzz/$name.dict" ] && args+=(-dict="fuzz/$name.dict")
  dirs=("$work")
  [ -d "fuzz/corpus/$name" ] && dirs+=("fuzz/corpus/$name")
  echo "== $name: running for ${SECONDS_EACH}s (log: $OUT/$name.log)" >&2
  # stdin is /dev/null: a config naming file:/dev/stdin must not wait for a terminal.
  if ! "$OUT/$name" "${args[@]}" "${dirs[@]}" > "$OUT/$name.log" 2>&1 < /dev/null; then
    echo "!! $name failed: see $OUT/$name.log and $OUT/crashes/$name/" >&2
    grep -E 'ERROR|runtime error|SUMMARY|Test unit written' "$OUT/$name.log" | head -20 >&2 || true
    failed=1
  else
    runs=$(awk '/^stat::number_of_executed_units/ {print $2}' "$OUT/$name.log")
    cov=$(grep -Eo 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+/[0-9]+[A-Za-z]*' "$OUT/$name.log" | tail -1)
    echo "   $name: ${runs:-?} inputs, ${cov:-no coverage line}, no crash" >&2
  fi
done
[ $failed -eq 0 ] && echo "fuzz: every driver ran clean" >&2
exit $failed
