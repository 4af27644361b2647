// Canary deployments (issue 15, points 2, 5 and 6; src/loop/deploy.h): a candidate becomes a target of a
// route with a ramp, each step decided by a sequential test over the route's stored traces; a failing
// candidate is rolled back within its first step, the route as it was, every change in the audit log;
// `gyre deploy` promotes and rolls back by hand; a vLLM adapter is loaded at begin and unloaded at
// rollback; a restart keeps the step.  Real gyre, real gyre-mock, small and fast ramps.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { startGyre, startMock, runGyre, tmpdir, SLOW } from '../lib/harness.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const ADMIN = 'admin-token-0123456789abcdef';
const READ = 'read-token-0123456789abcdef';
const CLIENT = 'client-key-0123456789abcdef';

function config(dir, base, extra = '') {
  return `workers: 2
store: {sqlite: "${path.join(dir, 'gyre.db')}"}
state: "${path.join(dir, 'state.db')}"
auth: {keys: [${CLIENT}], admin_token: ${ADMIN}, read_token: ${READ}}
providers:
  - {name: primary, kind: openai, base_url: "${base}", keys: [sk-inc]}
  - {name: cand, kind: openai, base_url: "${base}", keys: [sk-cand], breaker: off}
  - {name: vllm, kind: openai, base_url: "${base}", keys: [sk-vllm]}
routes:
  - name: chat
    targets: [{provider: primary, model: gpt-4o-mini}]
${extra}`;
}

async function api(url, method, p, body, token = ADMIN) {
  const r = await fetch(`${url}${p}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
    signal: AbortSignal.timeout(15000 * SLOW),
  });
  const text = await r.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { status: r.status, json, text };
}

async function call(url) {
  const r = await fetch(`${url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${CLIENT}` },
    body: JSON.stringify({ model: 'chat', messages: [{ role: 'user', content: 'Say hello.' }] }),
    signal: AbortSignal.timeout(15000 * SLOW),
  });
  const text = await r.text();
  return { status: r.status, text };
}

/** n clients calling until stop(); resolves the outcomes. */
function load(url, n) {
  let stopped = false;
  const outcomes = [];
  const workers = Array.from({ length: n }, async () => {
    while (!stopped) {
      try { outcomes.push(await call(url)); } catch (e) { outcomes.push({ status: 0, text: e.message }); }
    }
  });
  return { outcomes, stop: async () => { stopped = true; await Promise.all(workers); return outcomes; } };
}

async function status(url) {
  const r = await runGyre(['deploy', 'status', 'chat', '--json', '--url', url], { env: { GYRE_READ_TOKEN: READ, GYRE_ADMIN_TOKEN: '' } });
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout).deployments[0];
}

async function until(pred, what, ms = 20000 * SLOW) {
  const t0 = Date.now();
  for (;;) {
    const v = await pred();
    if (v) return v;
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

async function chatRoute(url) {
  const r = await api(url, 'GET', '/api/admin/routes');
  assert.equal(r.status, 200, r.text);
  const route = r.json.routes.find((x) => x.name === 'chat');
  return { targets: route.targets, fallbacks: route.fallbacks ?? [], overridden: route.overridden };
}

test('an equal candidate is ramped 5 -> 25 -> 100 % step by step under load with no request dropped, then watched and done', async () => {
  const mock = await startMock();
  const dir = tmpdir();
  const g = await startGyre(config(dir, mock.v1));
  try {
    const l = load(g.url, 2);
    await sleep(1000); // traffic before the deployment: the watch's "before" window
    const begin = await api(g.url, 'POST', '/api/deploy/chat/begin', {
      run_id: 'good-1', provider: 'cand', model: 'gpt-4o', ramp: [5, 25, 100], min_requests: 100000,
      step_time: '1500ms', watch_window: '1s',
    });
    assert.equal(begin.status, 201, begin.text);
    assert.equal(begin.json.deployments[0].state, 'canary');
    assert.equal(begin.json.deployments[0].percent, 5);
    const seen = [];
    const last = await until(async () => {
      const d = await status(g.url);
      const key = `${d.state} ${d.percent}`;
      if (seen[seen.length - 1] !== key) seen.push(key);
      return d.state === 'done' ? d : null;
    }, 'the deployment to be done');
    const outcomes = await l.stop();
    assert.deepEqual(seen, ['canary 5', 'canary 25', 'promoted 100', 'done 100']);
    assert.deepEqual(last.decisions.map((x) => `${x.action} ${x.percent}`),
      ['begin 5', 'promote 25', 'promote 100', 'done 100']);
    assert.match(last.decisions[1].why, /^the step ran its 1500 ms and nothing showed the candidate worse/);
    assert.equal(last.report.regressed, false);
    assert.deepEqual(last.report.clusters.map((c) => c.cluster), ['all']);
    assert.ok(last.report.clusters[0].before_n > 0 && last.report.clusters[0].after_n > 0, JSON.stringify(last.report));
    assert.equal(last.report.clusters[0].signals.error_rate.after, 0);
    assert.ok(outcomes.length > 50, `only ${outcomes.length} requests`);
    assert.deepEqual(outcomes.filter((o) => o.status !== 200).map((o) => `${o.status} ${o.text.slice(0, 200)}`), []);
    assert.ok((await mock.stats()).models['gpt-4o'] > 0);
    // At 100 % the candidate alone, the incumbent its fallback: an instant rollback stays possible.
    assert.deepEqual(await chatRoute(g.url), {
      targets: [{ provider: 'cand', model: 'gpt-4o', weight: 1 }],
      fallbacks: [{ provider: 'primary', model: 'gpt-4o-mini', weight: 1 }],
      overridden: true,
    });
  } finally {
    await g.stop();
    await mock.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a candidate that fails is rolled back within its first step: the route as it was, each change audited', async () => {
  const mock = await startMock();
  await mock.configure({ fault: '500', fault_key: 'sk-cand' });
  const dir = tmpdir();
  const g = await startGyre(config(dir, mock.v1));
  try {
    const begin = await api(g.url, 'POST', '/api/deploy/chat/begin', {
      run_id: 'bad-1', provider: 'cand', model: 'gpt-4o', ramp: [25, 50, 100], min_requests: 50, step_time: '60s',
    });
    assert.equal(begin.status, 201, begin.text);
    const l = load(g.url, 2);
    const d = await until(async () => {
      const s = await status(g.url);
      return s.state !== 'canary' ? s : null;
    }, 'a decision');
    await l.stop();
    assert.equal(d.state, 'rolled_back');
    const rb = d.decisions[d.decisions.length - 1];
    assert.equal(rb.action, 'rollback');
    assert.equal(rb.percent, 25);
    assert.equal(rb.actor, 'loop:bad-1');
    assert.match(rb.why, /^error: the candidate is worse: candidate - incumbent in \[/);
    assert.equal(rb.observations.error.candidate_mean, 0);
    assert.deepEqual(await chatRoute(g.url), {
      targets: [{ provider: 'primary', model: 'gpt-4o-mini', weight: 1 }], fallbacks: [], overridden: false,
    });
    const audit = await api(g.url, 'GET', '/api/audit?actor=loop:bad-1', null, READ);
    assert.equal(audit.status, 200, audit.text);
    assert.deepEqual(audit.json.data.map((e) => `${e.action} ${e.object}`), ['deploy.rollback route:chat', 'deploy.canary route:chat']);
    // Another deployment of the route may begin now; one in progress refuses a second.
    const again = await api(g.url, 'POST', '/api/deploy/chat/begin', { run_id: 'bad-2', provider: 'cand', model: 'gpt-4o' });
    assert.equal(again.status, 201, again.text);
    const second = await api(g.url, 'POST', '/api/deploy/chat/begin', { run_id: 'bad-3', provider: 'cand', model: 'gpt-4o' });
    assert.equal(second.status, 409);
    assert.equal(second.json.error.code, 'deployment_in_progress');
  } finally {
    await g.stop();
    await mock.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('gyre deploy promotes and rolls back by hand; a vLLM adapter is loaded at begin and unloaded at rollback', async () => {
  const mock = await startMock();
  const dir = tmpdir();
  const adapter = path.join(dir, 'adapter');
  fs.mkdirSync(adapter);
  fs.writeFileSync(path.join(adapter, 'train.jsonl'), `${JSON.stringify({ messages: [
    { role: 'user', content: 'What is the refund window?' }, { role: 'assistant', content: 'Thirty days.' }] })}\n`);
  const g = await startGyre(config(dir, mock.v1));
  const env = { GYRE_ADMIN_TOKEN: ADMIN };
  try {
    // A request that cannot be a deployment is refused naming its field; nothing changes.
    const order = await api(g.url, 'POST', '/api/deploy/chat/begin', { run_id: 'x', provider: 'cand', model: 'm', ramp: [50, 25, 100] });
    assert.equal(order.status, 400);
    assert.equal(order.json.error.message, 'ramp[1]: must be above the step before it, from 1 to 100');
    const unknown = await api(g.url, 'POST', '/api/deploy/chat/begin', { run_id: 'x', provider: 'cand', model: 'm', colour: 1 });
    assert.equal(unknown.status, 400);
    assert.equal(unknown.json.error.param, 'colour');
    const noRoute = await api(g.url, 'POST', '/api/deploy/nope/begin', { run_id: 'x', provider: 'cand', model: 'm' });
    assert.equal(noRoute.status, 404);
    assert.equal(noRoute.json.error.message, "route: no route is named 'nope'");
    const begin = await api(g.url, 'POST', '/api/deploy/chat/begin', {
      run_id: 'lora-1', provider: 'vllm', model: adapter, adapter: { kind: 'vllm', name: 'support-v2' },
      ramp: [5, 25, 100], step_time: '10m',
    });
    assert.equal(begin.status, 201, begin.text);
    assert.equal(begin.json.deployments[0].model, 'support-v2');
    assert.equal((await mock.stats()).paths['/v1/load_lora_adapter'], 1);
    // The read token reads, and changes nothing.
    const denied = await api(g.url, 'POST', '/api/deploy/chat/promote', {}, READ);
    assert.equal(denied.status, 403);

    const p = await runGyre(['deploy', 'promote', 'chat', '--url', g.url], { env });
    assert.equal(p.code, 0, p.stderr);
    assert.match(p.stdout, /^chat {2}run lora-1 {2}canary {2}vllm\/support-v2 at 25 %\n/);
    assert.deepEqual((await chatRoute(g.url)).targets, [
      { provider: 'primary', model: 'gpt-4o-mini', weight: 75 }, { provider: 'vllm', model: 'support-v2', weight: 25 }]);

    const r = await runGyre(['deploy', 'rollback', 'chat', '--reason', 'not today', '--url', g.url], { env });
    assert.equal(r.code, 0, r.stderr);
    const d = await status(g.url);
    assert.equal(d.state, 'rolled_back');
    assert.deepEqual(d.decisions.map((x) => `${x.action} ${x.percent} ${x.actor}`),
      ['begin 5 loop:lora-1', 'promote 25 admin_token', 'rollback 25 admin_token']);
    assert.equal(d.decisions[2].why, 'rolled back by hand: not today');
    assert.equal((await mock.stats()).paths['/v1/unload_lora_adapter'], 1);
    assert.deepEqual(await chatRoute(g.url), {
      targets: [{ provider: 'primary', model: 'gpt-4o-mini', weight: 1 }], fallbacks: [], overridden: false,
    });
    // Nothing left to roll back.
    const none = await runGyre(['deploy', 'rollback', 'chat', '--url', g.url], { env });
    assert.equal(none.code, 1);
    assert.match(none.stderr, /^gyre deploy: 404: route 'chat' has no deployment to roll back\n$/);
  } finally {
    await g.stop();
    await mock.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a gyre restarted mid-canary keeps the step, its start time and the route in force', async () => {
  const mock = await startMock();
  const dir = tmpdir();
  const text = config(dir, mock.v1);
  let g = await startGyre(text);
  try {
    const begin = await api(g.url, 'POST', '/api/deploy/chat/begin', {
      run_id: 'rs-1', provider: 'cand', model: 'gpt-4o', ramp: [5, 25, 100], min_requests: 100000, step_time: '10m',
    });
    assert.equal(begin.status, 201, begin.text);
    assert.equal((await api(g.url, 'POST', '/api/deploy/chat/promote', {})).status, 200);
    const before = await status(g.url);
    assert.equal(before.percent, 25);
    await g.stop();
    g = await startGyre(text);
    await sleep(1200); // a tick or more after the restart
    const after = await status(g.url);
    assert.equal(after.state, 'canary');
    assert.equal(after.step, 1);
    assert.equal(after.percent, 25);
    assert.equal(after.step_started_us, before.step_started_us);
    assert.deepEqual((await chatRoute(g.url)).targets, [
      { provider: 'primary', model: 'gpt-4o-mini', weight: 75 }, { provider: 'cand', model: 'gpt-4o', weight: 25 }]);
    for (let i = 0; i < 4; i++) assert.equal((await call(g.url)).status, 200);
  } finally {
    await g.stop();
    await mock.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a candidate that regresses after full promotion is caught by the watch: notified, rolled back, no client answered an error', async () => {
  const mock = await startMock();
  const dir = tmpdir();
  const g = await startGyre(config(dir, mock.v1, `notifiers:\n  - {name: ops, kind: webhook, url: "${mock.url}/_mock/hooks/ops"}\n`));
  try {
    const l = load(g.url, 2);
    await sleep(1000); // the window before the deployment
    const begin = await api(g.url, 'POST', '/api/deploy/chat/begin', {
      run_id: 'w-1', provider: 'cand', model: 'gpt-4o', ramp: [50, 100], min_requests: 100000, step_time: '800ms',
      watch_window: '1500ms',
    });
    assert.equal(begin.status, 201, begin.text);
    await until(async () => (await status(g.url)).state === 'promoted', 'full promotion');
    // Now the candidate fails every call: the incumbent, its fallback, answers each one.
    await mock.configure({ fault: '500', fault_key: 'sk-cand' });
    const d = await until(async () => {
      const s = await status(g.url);
      return s.state !== 'promoted' ? s : null;
    }, 'the watch to decide');
    const outcomes = await l.stop();
    assert.equal(d.state, 'rolled_back');
    const rb = d.decisions[d.decisions.length - 1];
    assert.equal(rb.action, 'rollback');
    assert.match(rb.why, /^cluster all: error_rate went from 0\.0000 to (0|1)\.\d{4} \(difference in \[/);
    assert.equal(d.report.regressed, true);
    assert.equal(d.report.clusters[0].signals.error_rate.regressed, true);
    assert.deepEqual(outcomes.filter((o) => o.status !== 200).map((o) => `${o.status} ${o.text.slice(0, 200)}`), []);
    assert.deepEqual(await chatRoute(g.url), {
      targets: [{ provider: 'primary', model: 'gpt-4o-mini', weight: 1 }], fallbacks: [], overridden: false,
    });
    const hooks = await until(async () => {
      const r = await (await fetch(`${mock.url}/_mock/hooks/ops`)).json();
      return r.length > 0 ? r : null;
    }, 'the notice');
    const text = JSON.stringify(hooks[0]);
    assert.ok(text.includes('gyre_deploy') && text.includes('gpt-4o regressed on route chat after its promotion'), text);
  } finally {
    await g.stop();
    await mock.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a llama.cpp adapter is found by its path and given scale 1 at begin, 0 at rollback', async () => {
  const dir = tmpdir();
  const paths = ['a', 'b'].map((n) => {
    const p = path.join(dir, n);
    fs.mkdirSync(p);
    fs.writeFileSync(path.join(p, 'train.jsonl'), `${JSON.stringify({ messages: [
      { role: 'user', content: `Question ${n}?` }, { role: 'assistant', content: `Answer ${n}.` }] })}\n`);
    return p;
  });
  const mock = await startMock(['--lora', paths[0], '--lora', paths[1]]);
  const g = await startGyre(config(dir, mock.v1, '').replace('- {name: vllm, kind: openai', '- {name: llama, kind: openai'));
  const scales = async () => (await (await fetch(`${mock.url}/lora-adapters`)).json()).map((a) => a.scale);
  try {
    const begin = await api(g.url, 'POST', '/api/deploy/chat/begin', {
      run_id: 'llama-1', provider: 'llama', model: paths[1], adapter: { kind: 'llamacpp', name: 'support-b' },
    });
    assert.equal(begin.status, 201, begin.text);
    assert.equal(begin.json.deployments[0].model, 'support-b');
    assert.deepEqual(await scales(), [0, 1]);
    const rb = await api(g.url, 'POST', '/api/deploy/chat/rollback', {});
    assert.equal(rb.status, 200, rb.text);
    assert.equal(rb.json.deployments[0].adapter_unloaded, true);
    assert.deepEqual(await scales(), [0, 0]);
    // An adapter the server was not started with is refused at begin, naming the path; nothing changes.
    const missing = await api(g.url, 'POST', '/api/deploy/chat/begin', {
      run_id: 'llama-2', provider: 'llama', model: path.join(dir, 'c'), adapter: { kind: 'llamacpp' },
    });
    assert.equal(missing.status, 404);
    assert.equal(missing.json.error.message,
      `provider 'llama': llama.cpp's server has no adapter loaded from '${path.join(dir, 'c')}' (start it with --lora PATH)`);
    assert.equal((await chatRoute(g.url)).overridden, false);
  } finally {
    await g.stop();
    await mock.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('an alert that fires on the route rolls the canary back', async () => {
  const mock = await startMock();
  const dir = tmpdir();
  const alerts = `alerts:
  - {name: chat_busy, condition: request_rate > 2, window: 2s, for: 0s, min_firing: 1s, by: [route]}
`;
  const g = await startGyre(config(dir, mock.v1, alerts));
  try {
    const begin = await api(g.url, 'POST', '/api/deploy/chat/begin', {
      run_id: 'al-1', provider: 'cand', model: 'gpt-4o', ramp: [25, 100], step_time: '10m',
    });
    assert.equal(begin.status, 201, begin.text);
    const l = load(g.url, 2);
    const d = await until(async () => {
      const s = await status(g.url);
      return s.state !== 'canary' ? s : null;
    }, 'the alert to roll it back');
    await l.stop();
    assert.equal(d.state, 'rolled_back');
    assert.equal(d.decisions[d.decisions.length - 1].why, "alert 'chat_busy' fires on the route");
    assert.equal((await chatRoute(g.url)).overridden, false);
  } finally {
    await g.stop();
    await mock.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
