// The eval gate (issue 15, point 4) against real processes: `gyre gate run` replays a dataset's held-out split
// through a running gyre (agent gyre-gate, with a client key) to a candidate and an incumbent, scores both
// answers with a judge (gyre-mock's deterministic one: it passes an answer that contains the reference, the
// line's own answer) and a regex heuristic, and decides with paired bootstrap intervals; `gyre gate verify`
// recomputes the verdict from the report alone.  gyre-mock answers every model alike, so the bad candidate
// is a provider whose key the mock faults (500 on every call): its answers are errors.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import fs from 'node:fs';
import { startGyre, startMock, runGyre, tmpdir, SLOW } from '../lib/harness.mjs';

const CLIENT_KEY = 'sk-client-gate-0123456789';
const READ_TOKEN = 'rt-gate-read-0123456789';
let mock, gyre, dir, dataset, passReport;

// Ten held-out lines in the shape src/loop/dataset.c writes, and a manifest whose provenance puts lines 1-5
// in cluster 0 and 6-10 in cluster 1.
function writeDataset(root) {
  const ds = path.join(root, '0123456789abcdef0123456789abcdef');
  fs.mkdirSync(ds, { recursive: true });
  const lines = [];
  const examples = [];
  for (let i = 1; i <= 10; i++) {
    const q = `Tell me about topic ${i}`;
    lines.push(JSON.stringify({ messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: q },
      { role: 'assistant', content: `Mock reply to: ${q}` }] }));
    examples.push({ file: 'heldout.jsonl', line: i, trace_id: `${i}`.padStart(32, '0'), session: null,
      cluster: i <= 5 ? 0 : 1, correction: false });
  }
  fs.writeFileSync(path.join(ds, 'heldout.jsonl'), lines.join('\n') + '\n');
  fs.writeFileSync(path.join(ds, 'train.jsonl'), '');
  fs.writeFileSync(path.join(ds, 'manifest.json'), JSON.stringify({ id: path.basename(ds), created: '2026-12-07T00:00:00Z',
    counts: { train: 0, heldout: 10, preference: 0, corrections: 0, skipped: 0 }, examples }) + '\n');
  return ds;
}

before(async () => {
  mock = await startMock();
  // Every call with the bad provider's key answers 500.
  await mock.configure({ fault: '500', fault_key: 'sk-bad' });
  gyre = await startGyre(`workers: 1
auth: {keys: [${CLIENT_KEY}], read_token: ${READ_TOKEN}}
providers:
  - {name: good, kind: openai, base_url: "${mock.v1}", keys: [sk-good]}
  - {name: bad, kind: openai, base_url: "${mock.v1}", keys: [sk-bad]}
routes:
  - name: judge
    targets: [{provider: good, model: judge-model}]
scorers:
  - {name: correct, type: judge, route: judge, rubric: correctness, sample: 0}
  - {name: replied, type: regex, must: ["^Mock reply to: "], sample: 0}
`);
  dir = tmpdir('gyre-gate-');
  dataset = writeDataset(dir);
});

after(async () => {
  if (gyre) assert.equal((await gyre.stop()).code, 0);
  if (mock) assert.equal((await mock.stop()).code, 0);
  fs.rmSync(dir, { recursive: true, force: true });
});

function gate(candidate, incumbent, rules, out) {
  const args = ['gate', 'run', '--config', path.join(gyre.dir, 'gyre.yaml'), '--url', gyre.url, '--key', CLIENT_KEY,
    '--dataset', dataset, '--candidate', candidate, '--incumbent', incumbent, '--scorer', 'correct',
    '--scorer', 'replied', '--resamples', '500', '--concurrency', '4', '--seed', '7', '--out', out, '--json'];
  for (const r of rules) args.push('--rule', r);
  return runGyre(args, { ms: 20000 * SLOW });
}

const metric = (report, name) => report.metrics.find((m) => m.metric === name);

test('gate run: a cheaper candidate as good as the incumbent passes every rule, per metric and per cluster', async () => {
  const out = path.join(dir, 'pass');
  const before = await mock.stats();
  const r = await gate('good/gpt-4o-mini', 'good/gpt-4o', ['correct:0.01', 'replied:0.01', 'cost:0', 'error_rate:0',
    'cluster_max_drop:0.05'], out);
  assert.equal(r.code, 0, r.stderr);
  const report = JSON.parse(r.stdout);
  passReport = report;
  assert.deepEqual({ passed: report.passed, reasons: report.reasons, candidate: report.candidate,
    incumbent: report.incumbent, dataset: report.dataset, seed: report.conf.seed },
  { passed: true, reasons: [], candidate: 'good/gpt-4o-mini', incumbent: 'good/gpt-4o',
    dataset: '0123456789abcdef0123456789abcdef', seed: '7' });
  const correct = metric(report, 'scorer:correct');
  assert.deepEqual([correct.n, correct.incumbent, correct.candidate, correct.diff, correct.ci], [10, 1, 1, 0, [0, 0]]);
  assert.deepEqual(metric(report, 'scorer:replied').rules.map((x) => x.pass), [true]);
  // gpt-4o-mini is priced below gpt-4o (data/prices.json): the same tokens cost less.
  const cost = metric(report, 'cost');
  assert.equal(cost.n, 10);
  assert.ok(cost.candidate < cost.incumbent && cost.ci[1] < 0, JSON.stringify(cost));
  assert.deepEqual(metric(report, 'error_rate').ci, [0, 0]);
  assert.deepEqual(report.clusters.map((c) => [c.cluster, c.lines, c.held, c.scorers.map((s) => s.pass)]),
    [['0', 5, true, [true, true]], ['1', 5, true, [true, true]]]);
  assert.deepEqual(report.observations.map((o) => [o.line, o.cluster]),
    [1, 2, 3, 4, 5, 6, 7, 8, 9, 10].map((l) => [l, l <= 5 ? '0' : '1']));
  // Twenty replayed calls (ten per model) and twenty judge calls reached the provider.
  const after = await mock.stats();
  const calls = (m) => (after.models[m] || 0) - (before.models[m] || 0);
  assert.deepEqual([calls('gpt-4o-mini'), calls('gpt-4o'), calls('judge-model')], [10, 10, 20]);
  // The markdown report, written beside the JSON.
  const md = fs.readFileSync(path.join(out, 'gate.md'), 'utf8');
  assert.match(md, /^# Eval gate: PASS\n/);
  assert.match(md, /\n\| correct \| 1\.000 \| 1\.000 \| \+0\.000 \[\+0\.000, \+0\.000\] \| difference >= -0\.01 \| PASS \|\n/);
  assert.match(md, /\n\| 1 \| 5 \| replied \| 1\.000 \| 1\.000 \| \+0\.000 \[\+0\.000, \+0\.000\] \| PASS \|\n/);
  assert.match(md, /\n\*\*PASS\*\*: every rule holds\.\n$/);
  assert.equal(fs.readFileSync(path.join(out, 'gate.json'), 'utf8'), r.stdout);
});

test("the replayed calls went through gyre as agent gyre-gate with the client's key, costed as gyre costs them", async () => {
  // The trace writer indexes after the answer: wait for the twenty calls of the first run, bounded.
  const deadline = Date.now() + 8000 * SLOW;
  let data = [];
  while (Date.now() < deadline) {
    const r = await fetch(`${gyre.url}/api/traces?agent=gyre-gate&limit=100`, { headers: { authorization: `Bearer ${READ_TOKEN}` } });
    assert.equal(r.status, 200);
    data = (await r.json()).data;
    if (data.length >= 20) break;
    await new Promise((res) => setTimeout(res, 50));
  }
  const seen = data.map((t) => `${t.agent} ${t.client_key_id} ${t.provider}/${t.model} ${t.status}`).sort();
  assert.deepEqual(seen, [...Array(10).fill('gyre-gate auth.keys[0] good/gpt-4o 200'),
    ...Array(10).fill('gyre-gate auth.keys[0] good/gpt-4o-mini 200')]);
  // The gate priced each answer's usage as gyre prices the call: the same total per model as the traces say.
  const sum = (xs) => xs.reduce((a, b) => a + b, 0);
  for (const [side, model] of [['candidate', 'gpt-4o-mini'], ['incumbent', 'gpt-4o']]) {
    const gate = sum(passReport.observations.map((o) => o[side].cost_usd));
    const traced = sum(data.filter((t) => t.model === model).map((t) => t.cost_usd));
    assert.ok(traced > 0 && Math.abs(gate - traced) < 1e-12, `${model}: gate ${gate}, traces ${traced}`);
  }
});

test('gate run: a candidate whose calls fail is rejected, naming the scorers, the error rate and the clusters', async () => {
  const r = await gate('bad/gpt-4o-mini', 'good/gpt-4o-mini', ['correct:0.01', 'error_rate:0', 'cluster_max_drop:0.05'],
    path.join(dir, 'fail'));
  assert.equal(r.code, 1, r.stderr);
  const report = JSON.parse(r.stdout);
  assert.equal(report.passed, false);
  assert.deepEqual(report.reasons, [
    "correct: the 95 % interval's lower bound -1.0000 is below -0.01 (max_drop)",
    "error rate: the 95 % interval's upper bound +1.0000 is above 0 (max_increase)",
    'cluster 0, correct: the candidate is worse by 1.0000 (0.000 against 1.000), more than 0.05 (cluster_max_drop)',
    'cluster 0, replied: the candidate is worse by 1.0000 (0.000 against 1.000), more than 0.05 (cluster_max_drop)',
    'cluster 1, correct: the candidate is worse by 1.0000 (0.000 against 1.000), more than 0.05 (cluster_max_drop)',
    'cluster 1, replied: the candidate is worse by 1.0000 (0.000 against 1.000), more than 0.05 (cluster_max_drop)',
  ]);
  assert.ok(report.observations.every((o) => o.candidate.error && !o.incumbent.error && o.candidate.cost_usd === null));
  const md = fs.readFileSync(path.join(dir, 'fail', 'gate.md'), 'utf8');
  assert.match(md, /\n\| correct \| 1\.000 \| 0\.000 \| -1\.000 \[-1\.000, -1\.000\] \| difference >= -0\.01 \| \*\*FAIL\*\* \|\n/);
});

test('gate run: a dearer candidate fails a cost rule of no increase', async () => {
  const r = await gate('good/gpt-4o', 'good/gpt-4o-mini', ['cost:0'], path.join(dir, 'cost'));
  assert.equal(r.code, 1, r.stderr);
  const report = JSON.parse(r.stdout);
  assert.equal(report.reasons.length, 1);
  assert.match(report.reasons[0], /^cost per request \(USD\): the 95 % interval's upper bound \+\d+\.\d\d % is above \+0 % \(max_increase\)$/);
});

test('gate verify recomputes the stored verdict, and follows the observations of a tampered report', async () => {
  const file = path.join(dir, 'pass', 'gate.json');
  let r = await runGyre(['gate', 'verify', file]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, `${file}: PASS, recomputed from the report's observations\n`);
  r = await runGyre(['gate', 'verify', path.join(dir, 'fail', 'gate.json'), '--json']);
  assert.deepEqual([r.code, JSON.parse(r.stdout)], [1, { passed: false, consistent: true }]);
  // Every candidate call marked failed, the verdict left saying pass.
  const report = JSON.parse(fs.readFileSync(file, 'utf8'));
  for (const o of report.observations) o.candidate.error = true;
  const tampered = path.join(dir, 'tampered.json');
  fs.writeFileSync(tampered, JSON.stringify(report));
  r = await runGyre(['gate', 'verify', tampered]);
  assert.equal(r.code, 3);
  assert.equal(r.stdout, `${tampered}: FAIL, recomputed from the report's observations\n`);
  assert.match(r.stderr, /gate report: it says pass, its observations give fail\n$/);
  fs.writeFileSync(tampered, '{"conf":{}}');
  r = await runGyre(['gate', 'verify', tampered]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /gate report: conf\.scorers: not an array of at most 16 names\n$/);
});
