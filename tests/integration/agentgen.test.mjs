// Issue 14, point 7: the traffic generator (bench/agentgen) sends its sessions through a real gyre to a real
// gyre-mock, and its ground truth (truth.jsonl) is exact: every trace it names is stored with its session,
// agent and step, each session's calls carry their tool calls in order, and the planted failures,
// near-duplicates and family counts are what the seed's plan says.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { startGyre, startMock, tmpdir, ROOT, SLOW } from '../lib/harness.mjs';
import { gyreConfig, FEEDBACK_CONFIG } from '../../bench/agentgen/agentgen.mjs';
import { loadVocab, planSessions, taskText } from '../../bench/agentgen/vocab.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
let mock, gyre, out, truth, summary, plan, stored;
const vocab = loadVocab();

function runAgentgen(args) {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [path.join(ROOT, 'bench/agentgen/agentgen.mjs'), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '', stderr = '';
    p.stdout.on('data', (d) => { stdout += d; });
    p.stderr.on('data', (d) => { stderr += d; });
    const t = setTimeout(() => { p.kill('SIGKILL'); reject(new Error(`agentgen timed out:\n${stderr}`)); }, 20000 * SLOW);
    p.on('exit', (code) => { clearTimeout(t); resolve({ code, stdout, stderr }); });
  });
}

async function getJson(url) {
  const r = await fetch(url, { signal: AbortSignal.timeout(5000 * SLOW) });
  assert.equal(r.status, 200, `${url}: ${r.status}`);
  return r.json();
}

before(async () => {
  mock = await startMock();
  gyre = await startGyre(gyreConfig(mock.v1, `workers: 2\n${FEEDBACK_CONFIG}`));
  out = tmpdir('gyre-agentgen-');
  const r = await runAgentgen(['--gyre', gyre.url, '--mock', mock.url, '--seed', '1', '--sessions', '20', '--concurrency', '8', '--out', out]);
  assert.equal(r.code, 0, r.stderr);
  truth = fs.readFileSync(path.join(out, 'truth.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  summary = JSON.parse(fs.readFileSync(path.join(out, 'summary.json'), 'utf8'));
  plan = planSessions(vocab, 1, 20);
  // The index follows the trace log: wait (bounded) until every call is queryable.
  const deadline = Date.now() + 10000 * SLOW;
  for (;;) {
    stored = (await getJson(`${gyre.url}/api/traces?tag=agentgen&limit=1000`)).data;
    if (stored.length >= truth.length || Date.now() > deadline) break;
    await sleep(100);
  }
});

after(async () => {
  if (gyre) assert.equal((await gyre.stop()).code, 0);
  if (mock) assert.equal((await mock.stop()).code, 0);
  if (out) fs.rmSync(out, { recursive: true, force: true });
});

test('every trace in truth.jsonl is stored in gyre with its session, agent and user, and no other', () => {
  assert.equal(truth.length, 58);
  assert.deepEqual(stored.map((t) => t.trace_id).sort(), truth.map((l) => l.trace_id).sort());
  const byId = new Map(stored.map((t) => [t.trace_id, t]));
  for (const l of truth) {
    const t = byId.get(l.trace_id);
    assert.deepEqual([t.session, t.agent, t.user, t.status], [l.session, l.agent, l.user, l.status], l.trace_id);
  }
});

test('each session is its multi-step trajectory: tool calls in order, each result answering the call before it', async () => {
  for (const s of plan) {
    const fam = vocab.families.find((f) => f.name === s.family);
    const { traces } = await getJson(`${gyre.url}/api/sessions/${s.id}`);
    const lines = truth.filter((l) => l.session === s.id);
    assert.deepEqual(traces.map((t) => t.trace_id), lines.map((l) => l.trace_id), s.id);
    assert.equal(traces.length, s.steps, s.id);
    for (let i = 0; i < traces.length; i++) {
      const req = traces[i].request_body;
      const step = i + 1;
      assert.deepEqual(req.tools.map((t) => t.function.name), fam.tools.map((t) => t.name));
      // The conversation grows by two messages a step: the answer, then the tool's result or the follow-up.
      assert.equal(req.messages.length, 2 + 2 * i, `${s.id} step ${step}`);
      if (step % 2 === 1) {
        // An odd step asks; gyre-mock calls the first tool, then the one tool_choice names.
        const call = traces[i].response_body.choices[0].message.tool_calls[0];
        assert.equal(call.function.name, fam.tools[step === 1 ? 0 : 1].name, `${s.id} step ${step}`);
        const next = traces[i + 1].request_body.messages;
        assert.deepEqual(next.at(-1).role, 'tool');
        assert.equal(next.at(-1).tool_call_id, call.id, `${s.id} step ${step + 1} answers the call of step ${step}`);
      }
    }
    // The task as sent, with the addresses gyre's store redacts (a password reset names the account's).
    const task = taskText(fam, s, vocab) + (s.failure === 'invalid_json' ? ' ' + fam.json_ask : '');
    assert.equal(traces[0].request_body.messages[1].content, task.replace(/[a-z0-9._]+@[a-z]+\.[a-z]+/g, '[email]'), s.id);
  }
});

test('the planted failures are in the traces truth.jsonl names: refusal, invalid JSON, error and slow', async () => {
  const failed = truth.filter((l) => l.failure !== null);
  assert.deepEqual(failed.map((l) => l.failure).sort(), ['error', 'invalid_json', 'refusal', 'slow']);
  for (const l of failed) {
    const t = await getJson(`${gyre.url}/api/traces/${l.trace_id}`);
    assert.equal(l.step, l.steps, 'a failure is planted on the session\'s last call');
    if (l.failure === 'error') {
      assert.equal(t.status, 500);
      continue;
    }
    const answer = t.response_body.choices[0].message.content;
    if (l.failure === 'refusal') assert.match(answer, /^Mock reply to tool result: (I'm sorry|I cannot|I'm unable|Sorry, I can't)/);
    if (l.failure === 'invalid_json') {
      assert.deepEqual(t.request_body.response_format, { type: 'json_object' });
      assert.throws(() => JSON.parse(answer));
    }
    if (l.failure === 'slow') assert.ok(t.latency_us >= 2000000, `latency ${t.latency_us} us`);
  }
  // No other call is slow, refused or an error.
  for (const l of truth.filter((x) => x.failure === null)) assert.equal(l.status, 200, l.trace_id);
});

test('near-duplicates are planted in known groups: the same task with one small edit, step by step', async () => {
  const dups = plan.filter((s) => s.dupOf !== null);
  assert.equal(dups.length, summary.dup_sessions);
  assert.ok(dups.length >= 1);
  for (const d of dups) {
    const o = plan.find((s) => s.id === d.dupOf);
    assert.equal(d.family, o.family);
    const [a, b] = [truth.filter((l) => l.session === o.id), truth.filter((l) => l.session === d.id)];
    assert.equal(a.length, b.length);
    for (let i = 0; i < a.length; i++) assert.equal(a[i].dup_group, b[i].dup_group);
    const ta = (await getJson(`${gyre.url}/api/traces/${a[0].trace_id}`)).request_body.messages[1].content;
    const tb = (await getJson(`${gyre.url}/api/traces/${b[0].trace_id}`)).request_body.messages[1].content;
    assert.notEqual(ta, tb);
    if (d.edit === 'reorder') assert.deepEqual(ta.split('. ').sort(), tb.split('. ').sort());
  }
  // Truth marks exactly the traces of sessions in a group, each group's steps apart.
  const grouped = new Set(plan.filter((s) => s.dupGroup !== null).map((s) => s.id));
  for (const l of truth) assert.equal(l.dup_group !== null, grouped.has(l.session), l.trace_id);
});

test('summary.json counts exactly what truth.jsonl holds, per family, failure and duplicate group', () => {
  const count = (xs, f) => xs.reduce((m, x) => { const k = f(x); if (k !== null) m[k] = (m[k] || 0) + 1; return m; }, {});
  const firsts = truth.filter((l) => l.step === 1);
  assert.equal(summary.sessions, 20);
  assert.equal(summary.traces, truth.length);
  assert.deepEqual(summary.families, count(firsts, (l) => l.family));
  assert.deepEqual(summary.failures, count(truth, (l) => l.failure));
  assert.equal(summary.dup_groups, new Set(truth.filter((l) => l.dup_group).map((l) => l.dup_group.split('#')[0])).size);
  assert.deepEqual(summary.steps, count(firsts, (l) => String(l.steps)));
});

test('the planned feedback is on the traces: thumbs, a rating and the correction, on each session\'s last call', async () => {
  assert.equal(summary.feedback_supported, true);
  const planned = plan.filter((s) => s.feedback !== null);
  assert.equal(planned.length, 5);
  assert.equal(summary.feedback_traces, 5);
  for (const s of planned) {
    const last = truth.filter((l) => l.session === s.id).at(-1);
    assert.deepEqual(last.feedback, [
      { name: 'thumbs', value: s.feedback.thumbs, correction: s.feedback.correction },
      { name: 'rating', value: s.feedback.rating, correction: null },
    ]);
    const t = await getJson(`${gyre.url}/api/traces/${last.trace_id}`);
    assert.deepEqual(t.feedback.map((f) => [f.name, f.value, f.correction]),
      [['thumbs', s.feedback.thumbs ? 1 : 0, s.feedback.correction], ['rating', s.feedback.rating, null]], last.trace_id);
  }
  // A planted failure is never thumbed up.
  for (const s of planned) if (s.failure !== null) assert.equal(s.feedback.thumbs, false);
  assert.equal(truth.filter((l) => l.feedback !== null && l.step !== l.steps).length, 0);
});

test('seeds 1 and 2 plan different traffic of the same families', () => {
  const a = planSessions(vocab, 1, 400), b = planSessions(vocab, 2, 400);
  const fams = (p) => [...new Set(p.map((s) => s.family))].sort();
  assert.deepEqual(fams(a), vocab.families.map((f) => f.name).sort());
  assert.deepEqual(fams(b), fams(a));
  const text = (p) => new Set(p.map((s) => taskText(vocab.families.find((f) => f.name === s.family), s, vocab)));
  const ta = text(a);
  assert.equal([...text(b)].filter((t) => ta.has(t)).length, 0);
  assert.deepEqual(planSessions(vocab, 1, 400), a, 'a seed plans the same sessions every time');
});

test('the curation scorer counts near-duplicate pairs and the adjusted Rand index exactly', async () => {
  const { score, adjustedRand, misses } = await import('../../bench/curate/score.mjs');
  const t = (id, session, family, dup_of = null) => ({ trace_id: id, session, family, step: 2, dup_of });
  const truth = [t('a', 'A', 'refund'), t('b', 'B', 'refund', 'A'), t('c', 'C', 'sql'), t('d', 'D', 'sql'), t('e', 'E', 'sql')];
  const d = (id, cluster, dup_of = null) => ({ trace_id: id, cluster, dup_of, selected: dup_of === null, split: 'train' });
  // b is a planted copy of a and found; d is taken for a copy of c and is not one; x is not in the truth.
  const s = score(truth, [d('a', 0), d('b', 0, 'a'), d('c', 1), d('d', 1, 'c'), d('e', 2), d('x', 3)]);
  assert.deepEqual(s.dedup, { planted_pairs: 1, found_pairs: 2, true_pairs: 1, links: 2, precision: 0.5, recall: 1 });
  assert.equal(s.scored, 5);
  // families [r r s s s] against clusters [0 0 1 1 2]: index 2, expected 4 * 2 / 10 = 0.8, max 3.
  assert.equal(s.clusters.ari, (2 - 0.8) / (3 - 0.8));
  assert.equal(adjustedRand([0, 0, 1, 1], [5, 5, 7, 7]), 1);
  assert.deepEqual(misses(s), ['dedup precision 0.5000 < 0.95', `cluster ARI ${s.clusters.ari.toFixed(4)} < 0.8`]);
});
