#!/usr/bin/env node
// Scores a curation's decisions against a generator's ground truth (issue 14's targets): near-duplicate
// precision and recall over pairs, and the adjusted Rand index of the clusters against the task families.
//
//   node bench/curate/score.mjs --truth truth.jsonl --decisions decisions.jsonl [--json] [--check]
//
// truth.jsonl: bench/agentgen's or build/curate-fill's (one line per trace: trace_id, session, family, step,
// dup_of: the original session of a near-duplicate, else null).  decisions.jsonl: `gyre curate --decisions`
// (one line per scanned trace: trace_id, cluster, dup_of: the trace it was dropped for as a near-duplicate,
// else null, selected, split).  Only traces in both are scored, so a curation by session (`unit: session`,
// one example per session) is scored over sessions.
//
// Near-duplicates, as pairs: two scored traces are planted duplicates when they are the same step of
// sessions in one group (an original and its edited copies); the curation pairs two traces when dup_of
// links join them (union-find).  Precision = true pairs / pairs found, recall = true pairs / planted pairs.
// Clusters: the adjusted Rand index (Hubert and Arabie, 1985) of the curation's clusters against the
// families.  --check exits 1 naming each figure under its target (P and R >= 0.95, ARI >= 0.8).
import fs from 'node:fs';

export const TARGETS = { precision: 0.95, recall: 0.95, ari: 0.8 };

function readJsonl(file, what) {
  const out = [];
  const lines = fs.readFileSync(file, 'utf8').split('\n');
  for (let i = 0; i < lines.length; i++) {
    if (lines[i].trim() === '') continue;
    try { out.push(JSON.parse(lines[i])); } catch (e) { throw new Error(`${file}:${i + 1}: ${what} line is not JSON (${e.message})`); }
  }
  return out;
}

const pairs = (n) => (n * (n - 1)) / 2;

/** Adjusted Rand index of two labelings (arrays of the same length). */
export function adjustedRand(a, b) {
  const n = a.length;
  if (n < 2) return 1;
  const cell = new Map(), ra = new Map(), rb = new Map();
  for (let i = 0; i < n; i++) {
    const k = `${a[i]}\u0000${b[i]}`;
    cell.set(k, (cell.get(k) || 0) + 1);
    ra.set(a[i], (ra.get(a[i]) || 0) + 1);
    rb.set(b[i], (rb.get(b[i]) || 0) + 1);
  }
  let index = 0, sa = 0, sb = 0;
  for (const v of cell.values()) index += pairs(v);
  for (const v of ra.values()) sa += pairs(v);
  for (const v of rb.values()) sb += pairs(v);
  const expected = (sa * sb) / pairs(n);
  const max = (sa + sb) / 2;
  return max === expected ? 1 : (index - expected) / (max - expected);
}

/** The figures for truth and decision lines (arrays of objects). */
export function score(truth, decisions) {
  const byId = new Map(truth.map((t) => [t.trace_id, t]));
  const scored = decisions.filter((d) => byId.has(d.trace_id));
  const inScope = new Set(scored.map((d) => d.trace_id));
  // Union-find over the curation's dup_of links between scored traces.
  const parent = new Map(scored.map((d) => [d.trace_id, d.trace_id]));
  const find = (x) => { while (parent.get(x) !== x) { parent.set(x, parent.get(parent.get(x))); x = parent.get(x); } return x; };
  let links = 0;
  for (const d of scored) {
    if (d.dup_of && inScope.has(d.dup_of)) { parent.set(find(d.trace_id), find(d.dup_of)); links++; }
  }
  const truthGroup = (t) => `${t.dup_of ?? t.session}#${t.step}`;
  const tCount = new Map(), pCount = new Map(), both = new Map();
  for (const d of scored) {
    const tg = truthGroup(byId.get(d.trace_id)), pg = find(d.trace_id);
    tCount.set(tg, (tCount.get(tg) || 0) + 1);
    pCount.set(pg, (pCount.get(pg) || 0) + 1);
    both.set(`${tg}\u0000${pg}`, (both.get(`${tg}\u0000${pg}`) || 0) + 1);
  }
  let planted = 0, found = 0, right = 0;
  for (const v of tCount.values()) planted += pairs(v);
  for (const v of pCount.values()) found += pairs(v);
  for (const v of both.values()) right += pairs(v);
  const clustered = scored.filter((d) => d.cluster !== null && d.cluster !== undefined);
  const families = clustered.map((d) => byId.get(d.trace_id).family);
  const clusters = clustered.map((d) => String(d.cluster));
  return {
    truth_traces: truth.length,
    decisions: decisions.length,
    scored: scored.length,
    dedup: {
      planted_pairs: planted, found_pairs: found, true_pairs: right, links,
      precision: found === 0 ? (planted === 0 ? 1 : 0) : right / found,
      recall: planted === 0 ? 1 : right / planted,
    },
    clusters: {
      clustered: clustered.length,
      k: new Set(clusters).size,
      families: new Set(families).size,
      ari: adjustedRand(families, clusters),
    },
  };
}

/** The figures under their targets, each as a sentence naming it. */
export function misses(s, targets = TARGETS) {
  const out = [];
  if (s.scored === 0) out.push('no trace of the truth file is in the decisions file');
  if (!(s.dedup.precision >= targets.precision)) out.push(`dedup precision ${s.dedup.precision.toFixed(4)} < ${targets.precision}`);
  if (!(s.dedup.recall >= targets.recall)) out.push(`dedup recall ${s.dedup.recall.toFixed(4)} < ${targets.recall}`);
  if (!(s.clusters.ari >= targets.ari)) out.push(`cluster ARI ${s.clusters.ari.toFixed(4)} < ${targets.ari}`);
  return out;
}

if (process.argv[1]?.endsWith('score.mjs')) {
  const args = process.argv.slice(2);
  const opt = (name) => { const i = args.indexOf(name); return i >= 0 ? args[i + 1] : null; };
  const truthFile = opt('--truth'), decisionsFile = opt('--decisions');
  if (!truthFile || !decisionsFile) {
    process.stderr.write('usage: score.mjs --truth FILE --decisions FILE [--json] [--check]\n');
    process.exit(2);
  }
  let s;
  try {
    s = score(readJsonl(truthFile, 'a truth'), readJsonl(decisionsFile, 'a decisions'));
  } catch (e) {
    process.stderr.write(`score: ${e.message}\n`);
    process.exit(1);
  }
  if (args.includes('--json')) process.stdout.write(JSON.stringify(s) + '\n');
  else {
    process.stdout.write(`scored ${s.scored} of ${s.decisions} decisions (${s.truth_traces} traces in truth)\n`
      + `dedup: precision ${s.dedup.precision.toFixed(4)}, recall ${s.dedup.recall.toFixed(4)} `
      + `(${s.dedup.true_pairs} of ${s.dedup.found_pairs} pairs found are planted; ${s.dedup.planted_pairs} planted)\n`
      + `clusters: ARI ${s.clusters.ari.toFixed(4)} (${s.clusters.k} clusters for ${s.clusters.families} families over ${s.clusters.clustered} traces)\n`);
  }
  const m = misses(s);
  if (args.includes('--check') && m.length > 0) {
    process.stderr.write(`score: targets missed: ${m.join('; ')}\n`);
    process.exit(1);
  }
}
