#!/usr/bin/env bash
# The curation benchmark (issue 14's targets), run by bench/run.sh (BENCH_SKIP_CURATE=1 leaves it out):
#
#   1. speed: build/curate-fill writes CURATE_N (1000000) agent traces of bench/agentgen's families into a store
#      (cached in CURATE_CACHE, default /tmp/gyre-bench-curate, keyed by the filler's version and the store's
#      schema, so a second run skips the fill), then `gyre curate --spec bench/curate/spec.yaml --json
#      --decisions FILE` over it runs under /usr/bin/time -v: wall time and peak RSS, and the time per phase
#      from its JSON.  Targets: < 60 s, < 2 GB.
#   2. quality: the filler with --seed 2 (traffic the tests did not tune against: they use seed 1) writes
#      CURATE_EVAL_N (50000) traces and its truth file; the curation's decisions are scored by
#      bench/curate/score.mjs (with eval-spec.yaml: spec.yaml without its filter): near-duplicate precision and recall >= 0.95, the clusters' adjusted Rand index
#      against the task families >= 0.8.
#
# Prints a report (with --json, one JSON document on stdout) and writes bench/results/curate-<UTC>.json.
# Exits 1 naming every figure that misses its target, or the step that failed.
# GYRE_BUILD picks the build (default build).  CURATE_ARGS adds arguments to every `gyre curate`.
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD="${GYRE_BUILD:-build}"
N="${CURATE_N:-1000000}"
EVAL_N="${CURATE_EVAL_N:-50000}"
CACHE="${CURATE_CACHE:-/tmp/gyre-bench-curate}"
SPEC=bench/curate/spec.yaml
EVAL_SPEC=bench/curate/eval-spec.yaml
MAX_S=60
MAX_RSS_KB=$((2 * 1024 * 1024))
json=0
for a in "$@"; do [ "$a" = --json ] && json=1; done
log() { echo "bench-curate: $*" >&2; }
fail() { log "FAILED: $*"; exit 1; }

make -s BUILD="$BUILD" "$BUILD/gyre" "$BUILD/curate-fill"
if "$BUILD/gyre" curate --help 2>&1 | grep -q "unknown command 'curate'"; then
  fail "$BUILD/gyre has no curate command (issue 14's gyre curate)"
fi
[ -x /usr/bin/time ] || fail "/usr/bin/time is missing (apt-get install time): it measures the peak memory"
version=$("$BUILD/curate-fill" --version)
mkdir -p "$CACHE"
work=$(mktemp -d /tmp/gyre-bench-curate-run.XXXXXX)
trap 'rm -rf "$work"' EXIT

# A store filled once per (filler version and schema, seed, N), with its truth file when a third argument asks
# for one: written under temporary names and renamed when complete, so an interrupted fill is never taken for a
# cached one.
filled() {
  local seed=$1 n=$2 db="$CACHE/$version-s$1-$2.db" truth=()
  [ -n "${3:-}" ] && truth=(--truth "$db.truth.tmp")
  if [ ! -f "$db" ] || { [ -n "${3:-}" ] && [ ! -f "$db.truth.jsonl" ]; }; then
    rm -f "$db" "$db"-wal "$db"-shm "$db".tmp* "$db.truth".*
    log "filling $db with $n traces (seed $seed): minutes on 2 cores, once"
    "$BUILD/curate-fill" --n "$n" --seed "$seed" --db "$db.tmp" ${truth[@]+"${truth[@]}"} >&2 ||
      fail "curate-fill --n $n --seed $seed"
    for side in "" -wal -shm; do if [ -e "$db.tmp$side" ]; then mv "$db.tmp$side" "$db$side"; fi; done
    if [ -n "${3:-}" ]; then mv "$db.truth.tmp" "$db.truth.jsonl"; fi
  fi
  echo "$db"
}

# gyre curate reads the store from a config: the smallest valid one (its provider is never called).
config() {
  cat >"$work/$2.yaml" <<EOF
store: {sqlite: "$1"}
datasets: "$work/$2.datasets"
providers:
  - {name: none, kind: openai, base_url: "http://127.0.0.1:9/v1", keys: [sk-unused]}
routes:
  - {name: chat, targets: [{provider: none, model: gpt-4o-mini}]}
EOF
  echo "$work/$2.yaml"
}

# Runs the curation under /usr/bin/time -v; its JSON in $work/NAME.json, decisions in $work/NAME.decisions.jsonl.
curate() {
  local db=$1 name=$2 spec=$3 cfg
  cfg=$(config "$db" "$name")
  if ! /usr/bin/time -v -o "$work/$name.time" "$BUILD/gyre" curate --config "$cfg" --spec "$spec" --json \
    --decisions "$work/$name.decisions.jsonl" ${CURATE_ARGS:-} >"$work/$name.json" 2>"$work/$name.err"; then
    cat "$work/$name.err" >&2
    fail "gyre curate over $db ($name) exited non-zero"
  fi
}

big=$(filled 1 "$N")
log "curating $N traces"
curate "$big" big "$SPEC"
eval_db=$(filled 2 "$EVAL_N" truth)
log "curating the seed-2 set of $EVAL_N traces"
curate "$eval_db" eval "$EVAL_SPEC"
node bench/curate/score.mjs --truth "$eval_db.truth.jsonl" --decisions "$work/eval.decisions.jsonl" --json \
  >"$work/score.json" || fail "score.mjs"

# The report, and the figures against their targets.
node --input-type=module - "$work" "$N" "$EVAL_N" "$MAX_S" "$MAX_RSS_KB" "$json" "$version" <<'EOF'
import fs from 'node:fs';
import { misses } from './bench/curate/score.mjs';
const [work, n, evalN, maxS, maxRssKb, json, version] = process.argv.slice(2);
const time = (name) => {
  const t = fs.readFileSync(`${work}/${name}.time`, 'utf8');
  const wall = t.match(/Elapsed \(wall clock\) time.*: (?:(\d+):)?(\d+):([\d.]+)/);
  const rss = t.match(/Maximum resident set size \(kbytes\): (\d+)/);
  const user = t.match(/User time \(seconds\): ([\d.]+)/), sys = t.match(/System time \(seconds\): ([\d.]+)/);
  return {
    wall_s: wall ? Number(wall[1] || 0) * 3600 + Number(wall[2]) * 60 + Number(wall[3]) : NaN,
    // CPU seconds too: on a machine shared with other work, the figure its neighbours disturb least.
    cpu_s: user && sys ? Number(user[1]) + Number(sys[1]) : NaN,
    peak_rss_kb: rss ? Number(rss[1]) : NaN,
  };
};
const curation = JSON.parse(fs.readFileSync(`${work}/big.json`, 'utf8'));
// The phases' times, wherever the curation's JSON keeps them (phase_ms, phases or timings: name -> ms).
const phases = curation.timings_ms ?? curation.phase_ms ?? curation.phases ?? null;
const big = time('big');
const score = JSON.parse(fs.readFileSync(`${work}/score.json`, 'utf8'));
const doc = {
  date: new Date().toISOString(), filler: version, traces: Number(n), eval_traces: Number(evalN),
  curate: { ...big, phases_ms: phases, dataset: curation.id ?? curation.dataset_id ?? null, counts: curation.counts ?? null },
  eval_curate: time('eval'),
  quality: score,
};
const missed = misses(score);
if (!(big.wall_s < Number(maxS))) missed.push(`curate of ${n} traces took ${big.wall_s.toFixed(1)} s (target < ${maxS} s)`);
if (!(big.peak_rss_kb < Number(maxRssKb))) missed.push(`curate of ${n} traces peaked at ${(big.peak_rss_kb / 1024).toFixed(0)} MB (target < 2048 MB)`);
doc.missed = missed;
fs.mkdirSync('bench/results', { recursive: true });
const stamp = doc.date.replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
fs.writeFileSync(`bench/results/curate-${stamp}.json`, JSON.stringify(doc, null, 1) + '\n');
if (json === '1') process.stdout.write(JSON.stringify(doc) + '\n');
else {
  // loop/curate.h times featurise inside the scan: the scan's figure includes it.
  const ph = phases ? Object.entries(phases).map(([k, v]) => `${k}${k === 'featurise' ? ' (within scan)' : ''} ${(Number(v) / 1000).toFixed(1)} s`).join(', ') : 'not in the JSON';
  process.stdout.write(`curate ${n} traces: ${big.wall_s.toFixed(1)} s wall (target < ${maxS} s), ${big.cpu_s.toFixed(1)} s CPU, peak ${(big.peak_rss_kb / 1024).toFixed(0)} MB (target < 2048 MB); phases: ${ph}\n`
    + `seed-2 set (${evalN} traces, ${score.scored} scored): dedup precision ${score.dedup.precision.toFixed(4)}, recall ${score.dedup.recall.toFixed(4)} (targets >= 0.95); `
    + `cluster ARI ${score.clusters.ari.toFixed(4)} (target >= 0.8; ${score.clusters.k} clusters, ${score.clusters.families} families)\n`);
}
if (missed.length > 0) {
  process.stderr.write(`bench-curate: targets missed: ${missed.join('; ')}\n`);
  process.exit(1);
}
EOF
