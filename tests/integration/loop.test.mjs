// Issue 15: the whole loop, offline, against real processes: agent traffic from the curation issue's
// generator (bench/agentgen) goes through gyre to gyre-mock; people correct the answers (feedback with a
// correction: the family's right answer); `gyre loop run --spec loop.yaml` curates a dataset, trains on
// gyre-mock's double of OpenAI's fine-tuning API, gates the candidate on the held-out split (replayed through
// gyre itself, judged against the corrections, paired bootstrap CIs), ramps it behind the route as a canary
// and watches it.  Then: a bad candidate is rejected by the gate; a candidate that passes the gate but
// regresses on live traffic is rolled back within the first ramp step; a gyre restarted mid-job resumes the
// same job and the run.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { startGyre, startMock, runGyre, tmpdir, ROOT, SLOW } from '../lib/harness.mjs';
import { gyreConfig } from '../../bench/agentgen/agentgen.mjs';
import { loadVocab, planSessions, taskText } from '../../bench/agentgen/vocab.mjs';

const CLIENT = 'sk-client-loop-1';
const READ = 'read-token-loop-0123456789';
const ADMIN = 'admin-token-loop-0123456789';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// The right answer of each task family: what the people who corrected the answers wrote.  gyre-mock's judge
// passes an answer that contains the reference; the base model's answers never do.
const CANON = {
  'refund-request': 'Refunds go back to the original payment method within 5 business days.',
  'password-reset': 'Use the reset link we emailed you; it expires in 30 minutes.',
  'python-bug-fix': 'Guard the None case before indexing and add a regression test.',
  'code-review': 'Split the function, name the magic numbers and cover the error path.',
  'flight-booking': 'I booked the earliest direct flight and emailed the itinerary.',
  'hotel-search': 'Three hotels match; the first is closest and has free cancellation.',
  'sales-report-sql': 'SELECT region, SUM(amount) FROM sales GROUP BY region ORDER BY 2 DESC;',
  'churn-analysis': 'Churn is highest in month two; onboarding calls cut it by a third.',
  'literature-review': 'Five studies agree; the two outliers used smaller samples.',
  'competitor-analysis': 'They win on price; we win on support and integrations.',
};

let mock, dir, gyre, config, truth;

function runAgentgen(args) {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [path.join(ROOT, 'bench/agentgen/agentgen.mjs'), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    p.stderr.on('data', (d) => { stderr += d; });
    p.stdout.resume();
    const t = setTimeout(() => { p.kill('SIGKILL'); reject(new Error(`agentgen timed out:\n${stderr}`)); }, 30000 * SLOW);
    p.on('exit', (code) => { clearTimeout(t); resolve({ code, stderr }); });
  });
}

async function api(p, { token = READ, method = 'GET', body } = {}) {
  const r = await fetch(`${gyre.url}${p}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
    signal: AbortSignal.timeout(10000 * SLOW),
  });
  const text = await r.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { status: r.status, json, text };
}

async function startOurGyre() {
  gyre = await startGyre(config);
}

// The spec files of a loop named `name` whose training job gets `suffix` (gyre-mock's faults key on it).
function writeSpecs(name, suffix, extra = '') {
  const curate = path.join(dir, `${name}-curate.yaml`);
  fs.writeFileSync(curate, `source: {routes: [agents], tags: [agentgen]}
unit: session
corrections: true
dedup: off
clusters: {k: 3}
heldout: 0.3
seed: 3
`);
  const loop = path.join(dir, `${name}.yaml`);
  fs.writeFileSync(loop, `name: ${name}
route: agents
curate: ${path.basename(curate)}
train: {backend: openai, provider: mock, base_model: gpt-4o-mini, suffix: ${suffix}, epochs: 2, poll: 200ms}
serve: {provider: mock}
gate:
  scorers: [correctness, no_refusal]
  rules:
    - {metric: correctness, max_drop: 0.01}
    - {metric: no_refusal, max_drop: 0.4}
  resamples: 1000
  concurrency: 4
deploy: {ramp: [50, 100], min_requests: 6, step_time: 4s, metrics: [no_refusal], max_drop: 0.1}
watch: {window: 2s}
${extra}`);
  return loop;
}

// Live traffic on the route while a canary runs: tasks of the training families (`inDistribution`), or
// questions no training line is near.
function liveTraffic(inDistribution) {
  let stop = false;
  const sent = { n: 0, statuses: {} };
  const vocab = loadVocab();
  const tasks = planSessions(vocab, 5, 12).map((sess) => taskText(vocab.families.find((f) => f.name === sess.family), sess, vocab));
  const done = (async () => {
    for (let i = 0; !stop; i++) {
      const content = inDistribution ? tasks[i % tasks.length] : `What is ${i} plus ${i + 1}, and why is the sky blue?`;
      const r = await fetch(`${gyre.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-gyre-agent': 'live', authorization: `Bearer ${CLIENT}` },
        body: JSON.stringify({ model: 'agents', messages: [{ role: 'user', content }] }),
        signal: AbortSignal.timeout(10000 * SLOW),
      });
      await r.text();
      sent.n++;
      sent.statuses[r.status] = (sent.statuses[r.status] ?? 0) + 1;
      await sleep(40);
    }
  })();
  return { sent, stop: async () => { stop = true; await done; } };
}

async function loopRun(spec, args = []) {
  return runGyre(['loop', 'run', '--spec', spec, '--url', gyre.url, '--token', 'env:GYRE_ADMIN_TOKEN', '--json', ...args],
    { env: { GYRE_ADMIN_TOKEN: ADMIN }, ms: 120000 * SLOW });
}

before(async () => {
  mock = await startMock(['--ft-seconds', '2', '--ft-match', '0.15']);
  dir = tmpdir('gyre-loop-');
  config = `workers: 2
store: {sqlite: "${path.join(dir, 'gyre.db')}"}
state: "${path.join(dir, 'gyre.state')}"
datasets: "${path.join(dir, 'datasets')}"
auth:
  read_token: ${READ}
  admin_token: ${ADMIN}
  keys: [${CLIENT}]
${gyreConfig(mock.v1).replace('keys: [sk-agentgen]}', 'keys: [sk-agentgen], direct: true}')}
  - {name: judge, targets: [{provider: mock, model: gpt-4o}]}
scorers:
  - {name: correctness, type: judge, route: judge, rubric: correctness}
  - {name: no_refusal, type: refusal, sample: 1, routes: [agents]}
feedback:
  metrics:
    - {name: thumbs, type: boolean}
`;
  await startOurGyre();
  const out = path.join(dir, 'agentgen');
  const r = await runAgentgen(['--gyre', gyre.url, '--mock', mock.url, '--seed', '5', '--sessions', '40', '--concurrency', '8', '--out', out, '--no-feedback', '--key', CLIENT]);
  assert.equal(r.code, 0, r.stderr);
  truth = fs.readFileSync(path.join(out, 'truth.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  // People correct the final answer of every session: the family's right answer.
  const last = new Map();
  for (const l of truth) if (!last.has(l.session) || l.step > last.get(l.session).step) last.set(l.session, l);
  for (const l of last.values()) {
    if (l.failure === 'error' || l.failure === 'slow' || l.status !== 200) continue;
    for (let tries = 0; ; tries++) {
      const f = await api('/v1/feedback', { method: 'POST', body: { trace_id: l.trace_id, name: 'thumbs', value: false, correction: CANON[l.family] } });
      if (f.status === 201) break;
      assert.ok(tries < 50, `feedback on ${l.trace_id}: ${f.status} ${f.text}`);
      await sleep(100);
    }
  }
});

after(async () => {
  if (gyre) assert.equal((await gyre.stop()).code, 0);
  if (mock) assert.equal((await mock.stop()).code, 0);
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

test('the whole loop: curate, train, gate with a measured improvement, canary 50 -> 100, watch, done', async () => {
  const spec = writeSpecs('support', 'loop-good');
  const live = liveTraffic(true);
  const t0 = Date.now();
  const r = await loopRun(spec);
  await live.stop();
  assert.equal(r.code, 0, r.stderr + r.stdout);
  const run = JSON.parse(r.stdout);
  assert.equal(run.status, 'done');
  assert.equal(run.stage, 'finished');
  assert.equal(run.name, 'support');
  assert.match(run.dataset.id, /^[0-9a-f]{32}$/);
  assert.ok(run.dataset.train > 0 && run.dataset.heldout > 0, JSON.stringify(run.dataset));
  assert.equal(run.job.backend, 'openai');
  assert.equal(run.job.status, 'succeeded');
  assert.match(run.job.model, /^ft:gpt-4o-mini:[^:]+:loop-good:/);
  assert.equal(run.gate.passed, true);
  assert.equal(run.gate.incumbent, 'mock/gpt-4o-mini');
  assert.equal(run.gate.candidate, `mock/${run.job.model}`);
  // The measured improvement: correctness against the corrections, its CI above zero.
  const c = run.gate.metrics.find((m) => m.metric === 'scorer:correctness');
  assert.ok(c.candidate > c.incumbent, JSON.stringify(c));
  assert.ok(c.ci[0] > 0, `the improvement's CI must exclude 0: ${JSON.stringify(c)}`);
  assert.equal(c.rules[0].pass, true);
  assert.equal(run.deployment.state, 'done');
  // Every live request was answered while the route changed under it.
  assert.deepEqual(Object.keys(live.sent.statuses), ['200']);
  // The route serves the candidate now, the incumbent kept as the fallback for an instant rollback.
  const routes = await api('/api/admin/routes', { token: ADMIN });
  const agents = routes.json.routes.find((x) => x.name === 'agents');
  assert.deepEqual(agents.targets.map((t) => `${t.provider}/${t.model}`), [`mock/${run.job.model}`]);
  // The history links the run to its dataset, job, report and deployment.
  const h = await runGyre(['loop', 'history', '--url', gyre.url, '--json'], { env: { GYRE_READ_TOKEN: READ } });
  assert.equal(h.code, 0, h.stderr);
  const hist = JSON.parse(h.stdout).runs.find((x) => x.id === run.id);
  assert.deepEqual([hist.dataset.id, hist.job.id, hist.gate.passed, hist.deployment.state],
    [run.dataset.id, run.job.id, true, 'done']);
  const md = await api(`/api/loop/runs/${run.id}/report?format=md`);
  assert.equal(md.status, 200);
  assert.match(md.text, /correctness/);
  // The decision is reproducible from the stored report alone.
  const v = await runGyre(['gate', 'verify', path.join(`${path.join(dir, 'gyre.state')}.loop`, run.id, 'gate.json')]);
  assert.equal(v.code, 0, v.stderr + v.stdout);
  // Every route change is in the audit log, by the loop.
  const audit = await api('/api/audit?limit=100', { token: ADMIN });
  const changes = audit.json.data.filter((e) => e.object === 'route:agents' && e.actor.startsWith('loop:'));
  assert.ok(changes.length >= 2, JSON.stringify(audit.json).slice(0, 500));
  console.log(`loop: the whole run took ${((Date.now() - t0) / 1000).toFixed(1)} s; correctness ${c.incumbent.toFixed(3)} -> ${c.candidate.toFixed(3)}, difference [${c.ci[0].toFixed(3)}, ${c.ci[1].toFixed(3)}] at 95 %`);
  // Back to the incumbent for the tests that follow.
  assert.equal((await api('/api/admin/routes/agents/override', { token: ADMIN, method: 'DELETE' })).status, 200);
});

test('the loop with the command backend (a team\'s own trainer) and a LoRA adapter loaded into vLLM', async () => {
  // The "trainer": what a TRL or Axolotl script does, in one line: it writes the adapter to {out} (gyre-mock's
  // vLLM reads an adapter's train.jsonl as its weights) and says where.
  const spec = fs.readFileSync(writeSpecs('support-lora', 'unused'), 'utf8').replace(/^train: .*$/m,
    'train: {backend: command, command: "mkdir -p {out} && cp {train} {out}/train.jsonl && echo GYRE_ARTIFACT: {out}", timeout: 1m, poll: 200ms}')
    .replace(/^serve: .*$/m, 'serve: {provider: mock, adapter: vllm, name: agents-lora}');
  const file = path.join(dir, 'support-lora.yaml');
  fs.writeFileSync(file, spec);
  const live = liveTraffic(true);
  const r = await loopRun(file);
  await live.stop();
  assert.equal(r.code, 0, r.stderr + r.stdout);
  const run = JSON.parse(r.stdout);
  assert.equal(run.status, 'done');
  assert.equal(run.job.backend, 'command');
  assert.equal(run.job.status, 'succeeded');
  assert.equal(run.job.model, path.join(`${path.join(dir, 'gyre.state')}.loop`, run.id, 'out'));
  assert.equal(run.gate.candidate, 'mock/agents-lora');
  const c = run.gate.metrics.find((m) => m.metric === 'scorer:correctness');
  assert.ok(c.ci[0] > 0, JSON.stringify(c));
  assert.equal(run.deployment.adapter.kind, 'vllm');
  assert.deepEqual(Object.keys(live.sent.statuses), ['200']);
  const routes = await api('/api/admin/routes', { token: ADMIN });
  assert.deepEqual(routes.json.routes.find((x) => x.name === 'agents').targets.map((t) => `${t.provider}/${t.model}`),
    ['mock/agents-lora']);
  assert.equal((await api('/api/admin/routes/agents/override', { token: ADMIN, method: 'DELETE' })).status, 200);
});

test('a bad candidate is rejected by the gate, naming the metric, and never reaches the route', async () => {
  const spec = writeSpecs('support-bad', 'mock-bad');
  const before = await api('/api/admin/routes', { token: ADMIN });
  const r = await loopRun(spec);
  assert.equal(r.code, 1, r.stderr + r.stdout);
  const run = JSON.parse(r.stdout);
  assert.equal(run.status, 'rejected');
  assert.equal(run.stage, 'gate');
  assert.equal(run.gate.passed, false);
  const m = run.gate.metrics.find((x) => x.metric === 'scorer:no_refusal');
  assert.equal(m.rules[0].pass, false, JSON.stringify(m));
  assert.ok(m.candidate < m.incumbent, JSON.stringify(m));
  assert.equal(run.deployment, undefined);
  const md = await api(`/api/loop/runs/${run.id}/report?format=md`);
  assert.match(md.text, /FAIL/);
  assert.match(md.text, /no_refusal/);
  // The route is as it was.
  assert.deepEqual((await api('/api/admin/routes', { token: ADMIN })).json.routes, before.json.routes);
});

test('a candidate that passes the gate but regresses on live traffic is rolled back within the first step', async () => {
  const spec = writeSpecs('support-ood', 'mock-ood-refuse');
  const before = await api('/api/admin/routes', { token: ADMIN });
  // Live traffic the training set never saw: this candidate refuses all of it.
  const live = liveTraffic(false);
  const r = await loopRun(spec);
  await live.stop();
  assert.equal(r.code, 1, r.stderr + r.stdout);
  const run = JSON.parse(r.stdout);
  assert.equal(run.gate.passed, true, JSON.stringify(run.gate));
  assert.equal(run.status, 'rolled_back');
  assert.equal(run.deployment.state, 'rolled_back');
  // Within one ramp step: it never left the first (50 %).
  const steps = run.deployment.decisions.map((d) => d.action);
  assert.ok(!steps.includes('promote'), JSON.stringify(run.deployment.decisions));
  assert.match(run.reason, /no_refusal/);
  assert.deepEqual(Object.keys(live.sent.statuses), ['200']);
  assert.deepEqual((await api('/api/admin/routes', { token: ADMIN })).json.routes, before.json.routes);
});

test('a gyre restarted mid-job resumes the same job and the run', async () => {
  const spec = writeSpecs('support-restart', 'mock-bad-restart');
  const r = await runGyre(['loop', 'run', '--spec', spec, '--url', gyre.url, '--token', 'env:GYRE_ADMIN_TOKEN', '--no-wait'],
    { env: { GYRE_ADMIN_TOKEN: ADMIN } });
  assert.equal(r.code, 0, r.stderr);
  const id = r.stdout.trim();
  let run;
  for (let i = 0; ; i++) {
    run = (await api(`/api/loop/runs/${id}`)).json;
    if (run.job?.id) break;
    assert.ok(i < 300, JSON.stringify(run));
    await sleep(50);
  }
  const jobId = run.job.id;
  assert.equal(run.stage, 'train');
  // SIGTERM while the service trains; the same store and state after.
  assert.equal((await gyre.stop()).code, 0);
  await startOurGyre();
  for (let i = 0; ; i++) {
    run = (await api(`/api/loop/runs/${id}`)).json;
    if (run.status !== 'running') break;
    assert.ok(i < 1200, JSON.stringify(run));
    await sleep(50);
  }
  assert.equal(run.job.id, jobId);
  assert.equal(run.job.status, 'succeeded');
  assert.equal(run.status, 'rejected');
  // One job at the service: nothing was started twice.
  const jobs = await (await fetch(`${mock.url}/v1/fine_tuning/jobs?limit=100`, { headers: { authorization: 'Bearer sk-agentgen' } })).json();
  assert.equal(jobs.data.filter((j) => j.user_provided_suffix === 'mock-bad-restart').length, 1);
});

test('the runs API: the admin token starts a run, a spec error is a 400 naming its field, one run of a name at a time', async () => {
  const bad = await api('/api/loop/runs', { token: ADMIN, method: 'POST', body: { spec: 'route: agents\ndataset: x\ntrain: {backend: tinker}\n' } });
  assert.equal(bad.status, 400);
  assert.equal(bad.json.error.message, "(loop spec):3: train.backend: unknown value 'tinker' (known: openai, together, command)");
  const spec = 'name: api-check\nroute: agents\ndataset: 0123456789abcdef0123456789abcdef\ntrain: {backend: openai, provider: mock, base_model: gpt-4o-mini, poll: 200ms}\n';
  assert.equal((await api('/api/loop/runs', { token: READ, method: 'POST', body: { spec } })).status, 403);
  const first = await api('/api/loop/runs', { token: ADMIN, method: 'POST', body: { spec } });
  assert.equal(first.status, 201, first.text);
  // The document as submitted: the runner steps after.
  assert.equal(first.json.status, 'running');
  assert.equal(first.json.stage, 'train');
  assert.deepEqual(first.json.events.map((e) => e.message), ['submitted (api)']);
  assert.equal(first.json.trigger, 'api');
  const second = await api('/api/loop/runs', { token: ADMIN, method: 'POST', body: { spec } });
  // The first may have ended already (its dataset does not exist); while it runs, a second is refused.
  assert.ok(second.status === 409 || second.status === 201, second.text);
  if (second.status === 409) assert.match(second.json.error.message, /loop 'api-check' has a run going already/);
  let run;
  for (let i = 0; ; i++) {
    run = (await api(`/api/loop/runs/${first.json.id}`)).json;
    if (run.status !== 'running') break;
    assert.ok(i < 200, JSON.stringify(run));
    await sleep(50);
  }
  assert.equal(run.status, 'failed');
  assert.match(run.reason, /^starting the openai training job: /);
  assert.equal((await api('/api/loop/runs/run_0000000000000000')).status, 404);
  assert.equal((await api('/api/loop/runs/nope')).status, 404);
  const cancel = await api(`/api/loop/runs/${first.json.id}/cancel`, { token: ADMIN, method: 'POST', body: {} });
  assert.equal(cancel.status, 409);
  const show = await runGyre(['loop', 'show', first.json.id, '--url', gyre.url], { env: { GYRE_READ_TOKEN: READ } });
  assert.equal(show.code, 0, show.stderr);
  assert.match(show.stdout, /^run {9}run_[0-9a-f]{16} \(api-check\)$/m);
  assert.match(show.stdout, /^status {6}failed at stage train: starting the openai training job: /m);
});

test('scheduled mode: gyre serve starts a run of each `loops:` spec on its schedule, and not again while it is due later', async () => {
  const sdir = tmpdir('gyre-loop-sched-');
  const spec = path.join(sdir, 'nightly.yaml');
  fs.writeFileSync(spec, `name: nightly
route: agents
dataset: 0123456789abcdef0123456789abcdef
train: {backend: openai, provider: mock, base_model: gpt-4o-mini, poll: 200ms}
schedule: {every: 1h}
`);
  const g = await startGyre(`store: {sqlite: "${path.join(sdir, 'gyre.db')}"}
auth: {read_token: ${READ}, admin_token: ${ADMIN}}
loops: ["${spec}"]
providers:
  - {name: mock, kind: openai, base_url: "${mock.v1}", keys: [sk-x], direct: true}
routes:
  - {name: agents, targets: [{provider: mock, model: gpt-4o-mini}]}
`);
  try {
    let runs;
    for (let i = 0; ; i++) {
      runs = (await (await fetch(`${g.url}/api/loop/runs`, { headers: { authorization: `Bearer ${READ}` } })).json()).runs;
      if (runs.length > 0 && runs[0].status !== 'running') break;
      assert.ok(i < 200, JSON.stringify(runs));
      await sleep(50);
    }
    assert.equal(runs.length, 1);
    assert.deepEqual([runs[0].name, runs[0].trigger, runs[0].status], ['nightly', 'schedule:every', 'failed']);
    // The next check (every 5 s) finds the last run an hour from due: no second run.
    await sleep(5500);
    runs = (await (await fetch(`${g.url}/api/loop/runs`, { headers: { authorization: `Bearer ${READ}` } })).json()).runs;
    assert.equal(runs.length, 1);
  } finally {
    assert.equal((await g.stop()).code, 0);
    fs.rmSync(sdir, { recursive: true, force: true });
  }
});
