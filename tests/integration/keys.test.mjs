// Managed gateway keys (issue 13 point 4): made through the admin API and
// `gyre keys` against a real gyre and gyre-mock; used by the real OpenAI and
// Anthropic SDKs; revoked, expired and out-of-list calls refused the way the
// SDKs expect; every trace names the key's id, team and agent, and `gyre
// stats --by team` sums each team's cost exactly.  The state database never
// holds a key in clear.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import { startGyre, startMock, runGyre, postJson, chatBody, SLOW } from '../lib/harness.mjs';

const ADMIN = 'admin-token-2c9e7a1b4d6f8a03';
const CONFIG_KEY = 'sk-config-client-key-5e8b1f2a';
const PLAIN_KEY = 'sk-plain-client-key-9c7d3e40';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
// The watcher looks at the state database once a second (GYRE_KEYS_WATCH_US): a change `gyre keys` writes is
// seen within that, plus the time a loaded machine takes to schedule it.
const WATCH_MS = 1000;
const SEEN_MS = WATCH_MS + 500 * SLOW;

let mock, gyre, config;
const made = []; // every key this file was shown, for the final grep

before(async () => {
  mock = await startMock();
  gyre = await startGyre(`workers: 2
auth:
  keys:
    - {key: ${CONFIG_KEY}, id: svc-a, team: ads, agent: crawler}
    - ${PLAIN_KEY}
  admin_token: ${ADMIN}
providers:
  - {name: mock, kind: openai, base_url: "${mock.v1}", keys: [sk-provider-secret]}
  - {name: claude-mock, kind: anthropic, base_url: "${mock.v1}", keys: [sk-ant-provider-secret]}
routes:
  - name: chat
    targets: [{provider: mock, model: gpt-4o-mini}]
  - name: other
    targets: [{provider: mock, model: gpt-4o}]
  - name: claude
    targets: [{provider: claude-mock, model: claude-mock}]
`);
  config = path.join(gyre.dir, 'gyre.yaml');
});

after(async () => {
  assert.equal((await gyre.stop()).code, 0);
  assert.equal((await mock.stop()).code, 0);
});

const admin = { authorization: `Bearer ${ADMIN}` };

async function api(method, p, body) {
  const r = await fetch(`${gyre.url}${p}`, {
    method,
    headers: { ...admin, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    body: body !== undefined ? JSON.stringify(body) : undefined,
    signal: AbortSignal.timeout(5000 * SLOW),
  });
  const text = await r.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { status: r.status, json, text };
}

async function createKey(body) {
  const res = await api('POST', '/api/admin/keys', body);
  assert.equal(res.status, 201, res.text);
  made.push(res.json.key);
  return res.json;
}

async function cliCreate(args) {
  const res = await runGyre(['keys', 'create', '--config', config, '--json', ...args]);
  assert.equal(res.code, 0, res.stderr);
  assert.equal(res.stderr, 'gyre keys: this key is shown once and never again (gyre stores only a hash of it): give it '
    + 'to its user now\n');
  const out = JSON.parse(res.stdout);
  made.push(out.key);
  return out;
}

const chat = (key, model = 'chat', headers = {}) =>
  postJson(`${gyre.url}/v1/chat/completions`, chatBody({ model }), { authorization: `Bearer ${key}`, ...headers });

// Polls `fn` until it answers `status`; returns how long that took (bounded by `ms`).
async function untilStatus(fn, status, ms) {
  const t0 = Date.now();
  for (;;) {
    const res = await fn();
    if (res.status === status) return { ms: Date.now() - t0, res };
    if (Date.now() - t0 > ms) assert.fail(`still ${res.status} after ${ms} ms: ${res.text}`);
    await sleep(20);
  }
}

async function pollTrace(id) {
  const deadline = Date.now() + 3000 * SLOW;
  while (Date.now() < deadline) {
    const r = await api('GET', `/api/traces/${id}`);
    if (r.status === 200) return r.json;
    await sleep(50);
  }
  assert.fail(`trace ${id} was not stored within ${3000 * SLOW} ms`);
}

test('a key made through the admin API is shown once, works with the OpenAI SDK, and is listed without its secret', async () => {
  const created = await createKey({ name: 'sdk bot', team: 'search', agent: 'planner', rpm: 60, tpm: 5000,
    budget_usd: 10, budget_period: 'day' });
  assert.match(created.key, /^gyre-gk_[a-z2-7]{12}_[A-Za-z0-9_-]{43}$/);
  const id = created.data.id;
  assert.equal(created.key.slice(5, 20), id);
  assert.deepEqual({ ...created.data, created: null }, {
    id, name: 'sdk bot', team: 'search', agent: 'planner', routes: [], models: [], rpm: 60, tpm: 5000,
    budget_usd: 10, budget_period: 'day', expires: null, created: null, revoked: null, rotated: null,
    previous_valid_until: null, status: 'active',
  });
  const client = new OpenAI({ baseURL: `${gyre.url}/v1`, apiKey: created.key, maxRetries: 0, timeout: 10000 * SLOW });
  const done = await client.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'hi' }] });
  assert.equal(done.choices[0].message.content, 'Mock reply to: hi');
  const shown = await api('GET', `/api/admin/keys/${id}`);
  assert.equal(shown.status, 200);
  assert.deepEqual(shown.json, created.data);
  const list = await api('GET', '/api/admin/keys');
  assert.equal(list.status, 200);
  assert.ok(list.json.data.some((k) => k.id === id));
  assert.ok(!list.text.includes(created.key.slice(21)), 'the list holds no secret');
});

test('a key made with gyre keys create works within a second, and the Anthropic SDK may use it too', async () => {
  const out = await cliCreate(['--name', 'cli bot', '--team', 'search']);
  const { ms } = await untilStatus(() => chat(out.key), 200, SEEN_MS);
  assert.ok(ms <= SEEN_MS, `${ms} ms`);
  const client = new Anthropic({ baseURL: gyre.url, apiKey: out.key, maxRetries: 0, timeout: 10000 * SLOW });
  const msg = await client.messages.create({ model: 'claude', max_tokens: 16, messages: [{ role: 'user', content: 'hi' }] });
  assert.equal(msg.type, 'message');
});

test('revoked with gyre keys revoke, a key is refused with a 401 that names its id within a second', async () => {
  const out = await cliCreate(['--name', 'to revoke']);
  await untilStatus(() => chat(out.key), 200, SEEN_MS);
  const rev = await runGyre(['keys', 'revoke', out.data.id, '--config', config]);
  assert.equal(rev.code, 0, rev.stderr);
  assert.equal(rev.stdout, `revoked ${out.data.id}: a running gyre refuses it within a second\n`);
  const { ms, res } = await untilStatus(() => chat(out.key), 401, SEEN_MS);
  assert.ok(ms <= SEEN_MS, `${ms} ms`);
  assert.equal(res.headers.get('www-authenticate'), 'Bearer');
  assert.deepEqual(res.json, { error: {
    message: `the API key ${out.data.id} has been revoked; ask for a new key`,
    type: 'invalid_request_error', param: null, code: 'key_revoked',
  } });
  const client = new OpenAI({ baseURL: `${gyre.url}/v1`, apiKey: out.key, maxRetries: 0, timeout: 10000 * SLOW });
  await assert.rejects(client.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'x' }] }),
    (e) => e instanceof OpenAI.AuthenticationError);
  const again = await runGyre(['keys', 'revoke', out.data.id, '--config', config]);
  assert.equal(again.code, 1);
  assert.equal(again.stderr, `gyre keys revoke: key ${out.data.id} was revoked already\n`);
});

test('revoked with DELETE /api/admin/keys/ID, a key is refused by the very next request', async () => {
  const created = await createKey({ name: 'admin revoke' });
  assert.equal((await chat(created.key)).status, 200);
  const del = await api('DELETE', `/api/admin/keys/${created.data.id}`);
  assert.equal(del.status, 200);
  assert.equal(del.json.status, 'revoked');
  const res = await chat(created.key);
  assert.equal(res.status, 401);
  assert.equal(res.json.error.code, 'key_revoked');
  assert.equal((await api('DELETE', `/api/admin/keys/${created.data.id}`)).status, 409);
  assert.equal((await api('DELETE', '/api/admin/keys/gk_aaaaaaaaaaaa')).status, 404);
});

test('an expired key is refused with a 401 saying it expired', async () => {
  const created = await createKey({ name: 'short lived', expires: '2s' });
  assert.equal((await chat(created.key)).status, 200);
  const { res } = await untilStatus(() => chat(created.key), 401, 4000 * SLOW);
  assert.deepEqual(res.json, { error: {
    message: `the API key ${created.data.id} has expired; ask for a new key`,
    type: 'invalid_request_error', param: null, code: 'key_expired',
  } });
});

test('a model outside the key\'s --models is a 403 naming it, in the client\'s dialect, and reaches no provider', async () => {
  const out = await cliCreate(['--name', 'chat only', '--models', 'chat']);
  await untilStatus(() => chat(out.key), 200, SEEN_MS);
  await fetch(`${mock.url}/_mock/reset`, { method: 'POST' });
  const res = await chat(out.key, 'other');
  assert.equal(res.status, 403);
  assert.deepEqual(res.json, { error: {
    message: `the API key ${out.data.id} may not use the model 'other': it is not in the key's models`,
    type: 'invalid_request_error', param: 'model', code: 'model_not_allowed',
  } });
  const msg = await postJson(`${gyre.url}/v1/messages`,
    { model: 'claude', max_tokens: 16, messages: [{ role: 'user', content: 'hi' }] },
    { 'x-api-key': out.key, 'anthropic-version': '2023-06-01' });
  assert.equal(msg.status, 403);
  assert.equal(msg.json.type, 'error');
  assert.equal(msg.json.error.message,
    `the API key ${out.data.id} may not use the model 'claude': it is not in the key's models`);
  assert.equal((await mock.stats()).requests, 0);
  const client = new OpenAI({ baseURL: `${gyre.url}/v1`, apiKey: out.key, maxRetries: 0, timeout: 10000 * SLOW });
  await assert.rejects(client.chat.completions.create({ model: 'other', messages: [{ role: 'user', content: 'x' }] }),
    (e) => e instanceof OpenAI.PermissionDeniedError && /'other'/.test(e.message));
});

test('rotation gives the same id a new key: without --grace the old one stops, with it both work', async () => {
  const out = await cliCreate(['--name', 'rotating', '--team', 'ops']);
  await untilStatus(() => chat(out.key), 200, SEEN_MS);
  const rot = await api('POST', `/api/admin/keys/${out.data.id}/rotate`);
  assert.equal(rot.status, 200, rot.text);
  made.push(rot.json.key);
  assert.equal(rot.json.data.id, out.data.id);
  assert.equal(rot.json.key.slice(0, 21), out.key.slice(0, 21));
  assert.equal((await chat(rot.json.key)).status, 200);
  assert.equal((await chat(out.key)).status, 401);
  const graced = await api('POST', `/api/admin/keys/${out.data.id}/rotate`, { grace: '1h' });
  assert.equal(graced.status, 200, graced.text);
  made.push(graced.json.key);
  assert.equal((await chat(graced.json.key)).status, 200);
  assert.equal((await chat(rot.json.key)).status, 200, 'the replaced key works through its grace period');
  const bad = await api('POST', `/api/admin/keys/${out.data.id}/rotate`, { grace: '9d' });
  assert.equal(bad.status, 400);
  assert.equal(bad.json.error.param, 'grace');
});

test('every trace names the gateway key\'s id, team and agent, and /api/traces filters by key and team', async () => {
  const created = await createKey({ name: 'traced', team: 'research', agent: 'summariser' });
  const a = await chat(created.key, 'chat', { 'x-gyre-agent': 'ignored-when-the-key-has-one' });
  const b = await chat(CONFIG_KEY);
  const c = await chat(PLAIN_KEY, 'chat', { 'x-gyre-agent': 'from-header' });
  const ta = await pollTrace(a.headers.get('x-gyre-trace-id'));
  const tb = await pollTrace(b.headers.get('x-gyre-trace-id'));
  const tc = await pollTrace(c.headers.get('x-gyre-trace-id'));
  assert.deepEqual([ta.client_key_id, ta.team, ta.agent], [created.data.id, 'research', 'summariser']);
  assert.deepEqual([tb.client_key_id, tb.team, tb.agent], ['svc-a', 'ads', 'crawler']);
  assert.deepEqual([tc.client_key_id, tc.team, tc.agent], ['auth.keys[1]', '', 'from-header']);
  const byKey = await api('GET', `/api/traces?key=${created.data.id}`);
  assert.deepEqual(byKey.json.data.map((t) => t.trace_id), [ta.trace_id]);
  const byTeam = await api('GET', '/api/traces?team=ads');
  assert.ok(byTeam.json.data.length >= 1);
  assert.ok(byTeam.json.data.every((t) => t.team === 'ads' && t.client_key_id === 'svc-a'));
  assert.ok(byTeam.json.data.some((t) => t.trace_id === tb.trace_id));
});

test('gyre stats --by team and /api/stats?group_by=key sum each team\'s and key\'s cost exactly', async () => {
  const x = await createKey({ name: 'team x one', team: 'team-x' });
  const y = await createKey({ name: 'team x two', team: 'team-x' });
  const z = await createKey({ name: 'team z', team: 'team-z' });
  const ids = [];
  for (const [key, model] of [[x.key, 'chat'], [x.key, 'other'], [y.key, 'other'], [z.key, 'chat'], [z.key, 'chat']]) {
    const res = await chat(key, model);
    assert.equal(res.status, 200);
    ids.push(res.headers.get('x-gyre-trace-id'));
  }
  const traces = [];
  for (const id of ids) traces.push(await pollTrace(id));
  for (const t of traces) assert.ok(t.cost_usd > 0, `a priced call: ${JSON.stringify(t.cost_usd)}`);
  const sum = (pred) => traces.filter(pred).reduce((s, t) => s + t.cost_usd, 0);
  const stats = await api('GET', '/api/stats?group_by=team');
  const group = (json, k, v) => json.groups.find((g) => g.key[k] === v);
  assert.equal(group(stats.json, 'team', 'team-x').requests, 3);
  assert.equal(group(stats.json, 'team', 'team-z').requests, 2);
  const close = (a, b) => Math.abs(a - b) <= 1e-12 * Math.max(1, Math.abs(b));
  assert.ok(close(group(stats.json, 'team', 'team-x').cost_usd, sum((t) => t.team === 'team-x')));
  assert.ok(close(group(stats.json, 'team', 'team-z').cost_usd, sum((t) => t.team === 'team-z')));
  const byKey = await api('GET', `/api/stats?group_by=key&team=team-x`);
  assert.deepEqual(byKey.json.groups.map((g) => [g.key.key, g.requests]).sort(),
    [[x.data.id, 2], [y.data.id, 1]].sort());
  assert.ok(close(group(byKey.json, 'key', x.data.id).cost_usd, sum((t) => t.client_key_id === x.data.id)));
  // The command line reads the same store: its table prints each team's cost to the micro-dollar.
  const cli = await runGyre(['stats', '--config', config, '--by', 'team', '--team', 'team-x']);
  assert.equal(cli.code, 0, cli.stderr);
  const row = cli.stdout.split('\n').find((l) => l.startsWith('team-x '));
  assert.ok(row, cli.stdout);
  const cells = row.trim().split(/\s+/);
  assert.equal(cells[1], '3');
  assert.equal(cells[cells.length - 1], sum((t) => t.team === 'team-x').toFixed(6));
});

test('the state database holds no key in clear', async () => {
  assert.ok(made.length >= 10, `${made.length} keys were made`);
  const files = fs.readdirSync(gyre.dir).filter((f) => f.startsWith('gyre.db.state'));
  assert.ok(files.includes('gyre.db.state'), files.join(','));
  for (const f of files) {
    const bytes = fs.readFileSync(path.join(gyre.dir, f));
    for (const key of made) {
      assert.equal(bytes.indexOf(key), -1, `${f} holds a key`);
      assert.equal(bytes.indexOf(key.slice(21)), -1, `${f} holds a key's secret part`);
    }
  }
});
