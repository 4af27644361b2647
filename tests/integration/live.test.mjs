// Live changes (docs/live.md): SIGHUP reads the config file again and
// the admin API changes routes, each put in force as a new generation while
// gyre serves; requests in flight finish on the configuration they began
// with, nothing is dropped, an invalid file is refused with its errors and
// the old configuration keeps serving, and what needs a restart is named.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { startGyre, startMock, tmpdir, SLOW } from '../lib/harness.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const ADMIN = 'admin-token-0123456789abcdef';
const CLIENT = 'client-key-0123456789abcdef';

function config(base, model, { provider = 'primary', extra = '', auth = true } = {}) {
  return `workers: 2
${auth ? `auth: {keys: [${CLIENT}], admin_token: ${ADMIN}}\n` : ''}providers:
  - {name: primary, kind: openai, base_url: "${base}", keys: [sk-live-a]}
routes:
  - name: chat
    targets: [{provider: ${provider}, model: ${model}}]
${extra}`;
}

/** Rewrites gyre's config file (keeping the listen line the harness added) and sends SIGHUP. */
function rewrite(g, text) {
  const file = path.join(g.dir, 'gyre.yaml');
  const old = fs.readFileSync(file, 'utf8');
  const keep = old.split('\n').filter((l) => /^(listen|store):/.test(l)).join('\n');
  fs.writeFileSync(file, `${keep}\n${text}`);
}

async function waitFor(pred, what, ms = 5000 * SLOW) {
  const t0 = Date.now();
  while (!pred()) {
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

async function hup(g, generation) {
  g.proc.kill('SIGHUP');
  await waitFor(() => g.proc.output().includes(`generation ${generation} in force`) ||
    g.proc.output().includes('config.reload by sighup refused'), `generation ${generation}`);
}

const auth = { authorization: `Bearer ${CLIENT}` };

/** One chat call, streamed or not; resolves {status, ok} where ok means the body is complete. */
async function call(url, stream) {
  const r = await fetch(`${url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...auth },
    body: JSON.stringify({ model: 'chat', stream, messages: [{ role: 'user', content: 'Say hello.' }] }),
  });
  const text = await r.text();
  let ok;
  if (stream) ok = text.trimEnd().endsWith('data: [DONE]') && !text.includes('"error"');
  else ok = typeof JSON.parse(text).choices?.[0]?.message?.content === 'string';
  return { status: r.status, ok, text };
}

/** n clients calling as fast as they can until stop() is called; returns the outcomes. */
function load(url, n) {
  let running = true;
  const outcomes = [];
  const clients = [];
  for (let i = 0; i < n; i++) {
    clients.push((async () => {
      let k = 0;
      while (running) {
        const stream = (i + k++) % 2 === 0;
        try {
          outcomes.push(await call(url, stream));
        } catch (e) {
          outcomes.push({ status: 0, ok: false, text: String(e) });
        }
      }
    })());
  }
  return { outcomes, stop: async () => { running = false; await Promise.all(clients); return outcomes; } };
}

async function metrics(url) {
  return (await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${ADMIN}` } })).text();
}

test('10 SIGHUPs under 8 clients for 3 s drop nothing, and requests after the last go to its model (A, then C/B, B last)', async () => {
  const mock = await startMock();
  const g = await startGyre(config(mock.v1, 'model-a'));
  try {
    const l = load(g.url, 8);
    await sleep(250); // model-a serves first
    const t0 = Date.now();
    for (let i = 0; i < 10; i++) {
      rewrite(g, config(mock.v1, i % 2 === 0 ? 'model-c' : 'model-b'));
      await hup(g, i + 2);
      await sleep(Math.max(0, (t0 + (i + 1) * 275) - Date.now()));
    }
    const outcomes = await l.stop();
    assert.ok(outcomes.length > 40 / SLOW, `only ${outcomes.length} requests in 3 s`);
    const bad = outcomes.filter((o) => o.status !== 200 || !o.ok);
    assert.deepEqual(bad.map((o) => `${o.status} ${o.text.slice(0, 200)}`), []);
    assert.doesNotMatch(g.proc.output(), /refused/);
    // Every model was served, and the last file (i = 9) says model-b: every request from now on goes there.
    assert.deepEqual(Object.keys((await mock.stats()).models).sort(), ['model-a', 'model-b', 'model-c']);
    await fetch(`${mock.url}/_mock/reset`, { method: 'POST' });
    for (let i = 0; i < 6; i++) assert.equal((await call(g.url, i % 2 === 0)).status, 200);
    assert.deepEqual((await mock.stats()).models, { 'model-b': 6 });
    const m = await metrics(g.url);
    assert.match(m, /^gyre_config_reloads_total\{result="ok"\} 10$/m);
    assert.match(m, /^gyre_config_reloads_total\{result="error"\} 0$/m);
    assert.match(m, /^gyre_config_generation 11$/m);
  } finally {
    await g.stop();
    await mock.stop();
  }
});

test('a stream that began before a reload finishes on its old provider; the next request goes to the new one', async () => {
  const oldp = await startMock(['--tokens-per-sec', '20']);
  const newp = await startMock();
  const two = (target) => `workers: 1
auth: {keys: [${CLIENT}], admin_token: ${ADMIN}}
providers:
  - {name: old, kind: openai, base_url: "${oldp.v1}", keys: [sk-live-a]}
  - {name: new, kind: openai, base_url: "${newp.v1}", keys: [sk-live-b]}
routes:
  - name: chat
    targets: [{provider: ${target}, model: gpt-4o-mini}]
`;
  const g = await startGyre(two('old'));
  try {
    const r = await fetch(`${g.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...auth },
      body: JSON.stringify({ model: 'chat', stream: true, messages: [{ role: 'user', content: 'Tell me a story.' }] }),
    });
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('x-gyre-provider'), 'old');
    const reader = r.body.getReader();
    let text = new TextDecoder().decode((await reader.read()).value);
    rewrite(g, two('new'));
    await hup(g, 2);
    // The reload is in force while the stream still runs on the old provider.
    const after = await call(g.url, false);
    assert.equal(after.status, 200);
    assert.equal(JSON.parse(after.text).choices.length, 1);
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      text += new TextDecoder().decode(value);
    }
    assert.ok(text.trimEnd().endsWith('data: [DONE]'), text);
    assert.doesNotMatch(text, /"error"/);
    assert.equal((await oldp.stats()).requests, 1);
    assert.equal((await newp.stats()).requests, 1);
  } finally {
    await g.stop();
    await oldp.stop();
    await newp.stop();
  }
});

test('an invalid file on SIGHUP is refused with file:line errors; the old configuration keeps serving', async () => {
  const mock = await startMock();
  const g = await startGyre(config(mock.v1, 'model-a'));
  try {
    rewrite(g, config(mock.v1, 'model-b', { provider: 'nope' }));
    await hup(g, 2);
    const out = g.proc.output();
    const file = path.join(g.dir, 'gyre.yaml');
    // The harness's store and listen lines come first: the route's target is on line 9.
    assert.ok(out.includes(`gyre: ${file}:9: routes[0].targets[0].provider: no provider is named 'nope'\n`), out);
    assert.match(out, /gyre: config\.reload by sighup refused; the configuration in force \(generation 1\) keeps serving\n/);
    assert.doesNotMatch(out, /generation 2 in force/);
    const r = await call(g.url, false);
    assert.equal(r.status, 200);
    assert.deepEqual((await mock.stats()).models, { 'model-a': 1 });
    const m = await metrics(g.url);
    assert.match(m, /^gyre_config_reloads_total\{result="error"\} 1$/m);
    assert.match(m, /^gyre_config_reloads_total\{result="ok"\} 0$/m);
    assert.match(m, /^gyre_config_generation 1$/m);
  } finally {
    await g.stop();
    await mock.stop();
  }
});

test('a SIGHUP that changes listen or workers is refused naming each field, and changes nothing else', async () => {
  const mock = await startMock();
  const g = await startGyre(config(mock.v1, 'model-a'));
  try {
    const file = path.join(g.dir, 'gyre.yaml');
    const text = fs.readFileSync(file, 'utf8')
      .replace(/^listen: 127\.0\.0\.1:(\d+)$/m, 'listen: 127.0.0.1:1')
      .replace('workers: 2', 'workers: 3')
      .replace('model: model-a', 'model: model-b');
    fs.writeFileSync(file, text);
    await hup(g, 2);
    const out = g.proc.output();
    assert.ok(out.includes(`gyre: ${file}: listen: changing it needs a restart (was 127.0.0.1:${g.port}, now 127.0.0.1:1)\n`), out);
    assert.ok(out.includes(`gyre: ${file}: workers: changing it needs a restart (was 2, now 3)\n`), out);
    assert.equal((await call(g.url, false)).status, 200);
    assert.deepEqual((await mock.stats()).models, { 'model-a': 1 });
  } finally {
    await g.stop();
    await mock.stop();
  }
});

async function admin(url, method, p, body) {
  const r = await fetch(`${url}${p}`, {
    method,
    headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: r.status, json: await r.json() };
}

test('POST /api/admin/reload reads the file again as SIGHUP does: an invalid one is a 400 listing its errors, a good one is in force at once', async () => {
  const mock = await startMock();
  const g = await startGyre(config(mock.v1, 'model-a'));
  try {
    const file = path.join(g.dir, 'gyre.yaml');
    rewrite(g, config(mock.v1, 'model-b', { provider: 'nope' }));
    const bad = await admin(g.url, 'POST', '/api/admin/reload');
    assert.equal(bad.status, 400);
    assert.equal(bad.json.error.code, 'invalid_config');
    assert.deepEqual(bad.json.error.errors, [`${file}:9: routes[0].targets[0].provider: no provider is named 'nope'`]);
    assert.equal((await call(g.url, false)).status, 200);
    assert.deepEqual((await mock.stats()).models, { 'model-a': 1 });
    const denied = await fetch(`${g.url}/api/admin/reload`, { method: 'POST', headers: { authorization: `Bearer ${CLIENT}` } });
    assert.equal(denied.status, 403);
    rewrite(g, config(mock.v1, 'model-b'));
    const ok = await admin(g.url, 'POST', '/api/admin/reload');
    assert.deepEqual([ok.status, ok.json], [200, { reloaded: true }]);
    assert.equal((await call(g.url, false)).status, 200);
    assert.deepEqual((await mock.stats()).models, { 'model-a': 1, 'model-b': 1 });
    assert.match(await metrics(g.url), /^gyre_config_generation 2$/m);
  } finally {
    await g.stop();
    await mock.stop();
  }
});

test('admin PUT and PATCH of a route under load drop nothing, persist across a restart, and DELETE restores the file\'s', async () => {
  const mock = await startMock();
  const dir = tmpdir();
  const text = `store: {sqlite: "${path.join(dir, 'gyre.db')}"}\n${config(mock.v1, 'model-a')}`;
  let g = await startGyre(text);
  try {
    const l = load(g.url, 8);
    await sleep(300);
    const put = await admin(g.url, 'PUT', '/api/admin/routes/chat',
      { targets: [{ provider: 'primary', model: 'model-b', weight: 3 }], retries: 1 });
    assert.equal(put.status, 200, JSON.stringify(put.json));
    assert.deepEqual(put.json.targets, [{ provider: 'primary', model: 'model-b', weight: 3 }]);
    assert.equal(put.json.retries, 1);
    await sleep(300);
    const patch = await admin(g.url, 'PATCH', '/api/admin/routes/chat',
      { targets: [{ provider: 'primary', model: 'model-b', weight: 1 }, { provider: 'primary', model: 'model-c', weight: 1 }] });
    assert.equal(patch.status, 200, JSON.stringify(patch.json));
    await sleep(300);
    const weights = await admin(g.url, 'PATCH', '/api/admin/routes/chat', { weights: { 'primary/model-b': 0 } });
    assert.equal(weights.status, 200, JSON.stringify(weights.json));
    assert.deepEqual(weights.json.targets, [{ provider: 'primary', model: 'model-b', weight: 0 },
      { provider: 'primary', model: 'model-c', weight: 1 }]);
    assert.equal(weights.json.retries, 1); // the PUT's other fields stay
    await sleep(300);
    const outcomes = await l.stop();
    assert.ok(outcomes.length > 20, `only ${outcomes.length} requests`);
    assert.deepEqual(outcomes.filter((o) => o.status !== 200 || !o.ok).map((o) => `${o.status} ${o.text.slice(0, 200)}`), []);

    // A refused change: every problem named after its overlay, nothing changed.
    const bad = await admin(g.url, 'PATCH', '/api/admin/routes/chat', { targets: [{ provider: 'nope', model: 'x' }] });
    assert.equal(bad.status, 400);
    assert.deepEqual(bad.json.error.errors, ["route overlay 'chat':1: routes[0].targets[0].provider: no provider is named 'nope'"]);
    const list = await admin(g.url, 'GET', '/api/admin/routes');
    assert.equal(list.status, 200);
    assert.equal(list.json.generation, 4);
    assert.equal(list.json.routes.length, 1);
    assert.equal(list.json.routes[0].overridden, true);
    assert.deepEqual(list.json.routes[0].targets.map((t) => t.model), ['model-b', 'model-c']);

    await g.stop();
    g = await startGyre(text);
    await fetch(`${mock.url}/_mock/reset`, { method: 'POST' });
    for (let i = 0; i < 4; i++) assert.equal((await call(g.url, false)).status, 200);
    assert.deepEqual((await mock.stats()).models, { 'model-c': 4 });

    const del = await admin(g.url, 'DELETE', '/api/admin/routes/chat/override');
    assert.equal(del.status, 200, JSON.stringify(del.json));
    assert.deepEqual(del.json.targets, [{ provider: 'primary', model: 'model-a', weight: 1 }]);
    assert.equal((await admin(g.url, 'DELETE', '/api/admin/routes/chat/override')).status, 404);
    await fetch(`${mock.url}/_mock/reset`, { method: 'POST' });
    assert.equal((await call(g.url, false)).status, 200);
    assert.deepEqual((await mock.stats()).models, { 'model-a': 1 });
  } finally {
    await g.stop();
    await mock.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a firing alert\'s failover stays in force across a SIGHUP (the new generation\'s overrides), and /readyz shows the target out', async () => {
  const KEY_A = 'sk-live-alert-A-0123456789';
  const KEY_B = 'sk-live-alert-B-0123456789';
  const mock = await startMock();
  const g = await startGyre(`workers: 1
providers:
  - {name: p1, kind: openai, base_url: "${mock.v1}", keys: [${KEY_A}], breaker: {failures: 0}}
  - {name: p2, kind: openai, base_url: "${mock.v1}", keys: [${KEY_B}], breaker: {failures: 0}}
routes:
  - name: chat
    targets: [{provider: p1, model: gpt-4o-mini}, {provider: p2, model: gpt-4o-mini}]
alerts:
  - name: provider_degradation
    condition: error_rate > 5%
    window: 3s
    resolve_for: 1s
    min_firing: 1s
    action: failover_to_secondary
`);
  const send = async (n) => {
    const out = [];
    for (let i = 0; i < n; i++) {
      const r = await fetch(`${g.url}/v1/chat/completions`, {
        method: 'POST', headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'chat', messages: [{ role: 'user', content: 'Say hello.' }] }),
      });
      await r.arrayBuffer();
      out.push(r.status);
    }
    return out;
  };
  const firing = async () => (await (await fetch(`${g.url}/api/alerts`)).json()).alerts.filter((a) => a.state === 'firing');
  try {
    await mock.configure({ fault: '500', fault_key: KEY_A });
    const deadline = Date.now() + 8000 * SLOW;
    while ((await firing()).length !== 1) {
      await send(2);
      assert.ok(Date.now() < deadline, 'the alert never fired');
    }
    g.proc.kill('SIGHUP');
    await waitFor(() => g.proc.output().includes('generation 2 in force'), 'generation 2');
    assert.equal((await firing()).length, 1);
    // Still out of rotation under generation 2: every call goes to p2, none to p1's failing key.
    const before = (await mock.stats()).keys;
    assert.deepEqual(await send(6), Array(6).fill(200));
    const after = (await mock.stats()).keys;
    assert.equal((after[KEY_A] ?? 0) - (before[KEY_A] ?? 0), 0);
    assert.equal(after[KEY_B] - before[KEY_B], 6);
    const r = await fetch(`${g.url}/readyz`);
    assert.equal(r.status, 200);
    assert.deepEqual(await r.json(), { routes: { chat: { usable: 1, targets: 2 } }, generation: 2, status: 'ready' });
  } finally {
    await g.stop();
    await mock.stop();
  }
});
