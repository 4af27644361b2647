// Access (issue 10 point 1): with `auth:` a gateway answers only the
// credentials it was given.  Each test replays an attack from the issue
// against real gyre and gyre-mock processes and checks, with gyre-mock's own
// request counter, that nothing a refused request asked for reached the
// provider.  The official OpenAI and Anthropic SDKs are refused and accepted
// the way they expect (AuthenticationError on 401).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { spawn } from 'node:child_process';
import path from 'node:path';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import { startGyre, startMock, runGyre, postJson, chatBody, freePort, tmpdir, bin, SLOW } from '../lib/harness.mjs';

const CLIENT_KEY = 'sk-gyre-client-7f3a9c1e5b2d4f60';
const ENV_KEY = 'sk-gyre-client-from-env-0123456789';
const READ_TOKEN = 'read-token-5e8b1f2a9c7d3e40';
const ADMIN_TOKEN = 'admin-token-2c9e7a1b4d6f8a03';
const WRONG_KEY = 'sk-gyre-client-wrong-0000000000';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

let mock, gyre, dead;

before(async () => {
  mock = await startMock();
  dead = await freePort(); // nothing listens here: the provider that is down
  const dir = tmpdir('gyre-access-');
  gyre = await startGyre(`workers: 1
store: {sqlite: "${path.join(dir, 'gyre.db')}", traces: true}
auth:
  keys: [${CLIENT_KEY}, env:GYRE_ACCESS_TEST_KEY]
  read_token: ${READ_TOKEN}
  admin_token: env:GYRE_ACCESS_TEST_ADMIN
providers:
  - {name: mock, kind: openai, base_url: "${mock.v1}", keys: [sk-provider-secret]}
  - {name: claude-mock, kind: anthropic, base_url: "${mock.v1}", keys: [sk-ant-provider-secret]}
  - {name: hidden, kind: openai, base_url: "${mock.v1}", keys: [sk-provider-secret], direct: false}
  - {name: down, kind: openai, base_url: "http://127.0.0.1:${dead}/v1", keys: [sk-provider-secret]}
routes:
  - name: chat
    targets: [{provider: mock, model: gpt-4o-mini}]
  - name: claude
    targets: [{provider: claude-mock, model: claude-mock}]
  - name: private
    targets: [{provider: hidden, model: gpt-4o-mini}]
  - name: broken
    targets: [{provider: down, model: gpt-4o-mini}]
`, { env: { GYRE_ACCESS_TEST_KEY: ENV_KEY, GYRE_ACCESS_TEST_ADMIN: ADMIN_TOKEN } });
});

after(async () => {
  assert.equal((await gyre.stop()).code, 0);
  assert.equal((await mock.stop()).code, 0);
});

const resetMock = async () => { await fetch(`${mock.url}/_mock/reset`, { method: 'POST' }); };
const mockRequests = async () => (await mock.stats()).requests;
const bearer = (k) => ({ authorization: `Bearer ${k}` });

async function get(p, headers = {}, method = 'GET') {
  const r = await fetch(`${gyre.url}${p}`, { method, headers, signal: AbortSignal.timeout(5000 * SLOW) });
  const text = await r.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { status: r.status, headers: r.headers, json, text };
}

test('a chat call without a key is a 401 in OpenAI\'s shape with WWW-Authenticate: Bearer, and reaches no provider', async () => {
  await resetMock();
  const res = await postJson(`${gyre.url}/v1/chat/completions`, chatBody());
  assert.equal(res.status, 401);
  assert.equal(res.headers.get('www-authenticate'), 'Bearer');
  assert.deepEqual(res.json, {
    error: {
      message: "no API key was sent: send a key of this gateway as 'Authorization: Bearer KEY' or 'x-api-key: KEY'",
      type: 'invalid_request_error', param: null, code: 'invalid_api_key',
    },
  });
  assert.equal(await mockRequests(), 0);
});

test('/v1/messages without a key is a 401 in Anthropic\'s shape', async () => {
  await resetMock();
  const res = await postJson(`${gyre.url}/v1/messages`, { model: 'claude', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] });
  assert.equal(res.status, 401);
  assert.equal(res.headers.get('www-authenticate'), 'Bearer');
  assert.deepEqual(res.json, {
    type: 'error',
    error: { type: 'authentication_error', message: "no API key was sent: send a key of this gateway as 'Authorization: Bearer KEY' or 'x-api-key: KEY'" },
  });
  assert.equal(await mockRequests(), 0);
});

test('a wrong key is a 401 that says it is not recognised and never echoes it, as Bearer and as x-api-key', async () => {
  await resetMock();
  for (const headers of [bearer(WRONG_KEY), { 'x-api-key': WRONG_KEY }, { authorization: `Basic ${Buffer.from(`u:${WRONG_KEY}`).toString('base64')}` }]) {
    const res = await postJson(`${gyre.url}/v1/chat/completions`, chatBody(), headers);
    assert.equal(res.status, 401, JSON.stringify(headers));
    assert.equal(res.json.error.code, 'invalid_api_key');
    assert.equal(res.json.error.message, 'the API key sent is not recognised by this gateway');
    assert.ok(!res.text.includes('wrong-0000'), res.text);
  }
  // The read token is a credential of this gateway, but not one that calls models.
  const res = await postJson(`${gyre.url}/v1/chat/completions`, chatBody(), bearer(READ_TOKEN));
  assert.equal(res.status, 403);
  assert.equal(res.json.error.message, 'the read_token does not allow model calls: use a client key');
  assert.equal(await mockRequests(), 0);
});

test('the right key is accepted as Authorization: Bearer and as x-api-key, from the config and from the environment', async () => {
  await resetMock();
  for (const headers of [bearer(CLIENT_KEY), { 'x-api-key': CLIENT_KEY }, bearer(ENV_KEY), bearer(ADMIN_TOKEN)]) {
    const res = await postJson(`${gyre.url}/v1/chat/completions`, chatBody(), headers);
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json.object, 'chat.completion');
  }
  const msg = await postJson(`${gyre.url}/v1/messages`, { model: 'claude', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] }, { 'x-api-key': CLIENT_KEY, 'anthropic-version': '2023-06-01' });
  assert.equal(msg.status, 200, msg.text);
  assert.equal(msg.json.type, 'message');
  // The provider got gyre's key, never the client's.
  const stats = await mock.stats();
  assert.equal(stats.requests, 5);
  assert.deepEqual(Object.keys(stats.keys).sort(), ['sk-ant-provider-secret', 'sk-provider-secret']);
});

test('DELETE /v1/files/abc and GET /v1/organization/admin_api_keys with a valid client key never reach the provider', async () => {
  await resetMock();
  const del = await get('/v1/files/abc', bearer(CLIENT_KEY), 'DELETE');
  assert.equal(del.status, 403);
  assert.deepEqual(del.json, {
    error: {
      message: 'DELETE /v1/files/abc is not allowed: this gateway passes only the paths its passthrough: list names',
      type: 'invalid_request_error', param: null, code: 'path_not_allowed',
    },
  });
  for (const p of ['/v1/organization/admin_api_keys', '/v1/%6Frganization/admin_api_keys', '/v1/audio/../organization/admin_api_keys', '/v1/images/admin']) {
    const res = await get(p, bearer(ADMIN_TOKEN));
    assert.equal(res.status, 403, p);
    assert.equal(res.json.error.code, 'path_not_allowed');
    assert.match(res.json.error.message, /this gateway never passes admin or organization paths to a provider$/);
  }
  assert.equal(await mockRequests(), 0);
  // A path on the default list passes.
  const mod = await postJson(`${gyre.url}/v1/moderations`, { model: 'chat', input: 'hi' }, bearer(CLIENT_KEY));
  assert.equal(mod.status, 200, mod.text);
  assert.equal(await mockRequests(), 1);
});

test('/api/traces and /metrics: 401 without a token, 200 with the read or admin token, 403 with a client key', async () => {
  for (const p of ['/api/traces', '/api/stats', '/metrics']) {
    const none = await get(p);
    assert.equal(none.status, 401, p);
    assert.equal(none.headers.get('www-authenticate'), 'Bearer');
    assert.equal(none.json.error.message, "no token was sent: this path needs the read_token or the admin_token of this gateway, as 'Authorization: Bearer TOKEN'");
    assert.equal((await get(p, bearer(WRONG_KEY))).status, 401, p);
    const client = await get(p, bearer(CLIENT_KEY));
    assert.equal(client.status, 403, p);
    assert.equal(client.json.error.code, 'insufficient_permissions');
    assert.equal((await get(p, bearer(READ_TOKEN))).status, 200, p);
    assert.equal((await get(p, bearer(ADMIN_TOKEN))).status, 200, p);
  }
  // /healthz stays open.
  assert.equal((await get('/healthz')).status, 200);
});

/** An OTLP/JSON span of one model call, now, claiming `cost` USD. */
function span(spanId, cost) {
  const now = BigInt(Date.now()) * 1000000n;
  return {
    resourceSpans: [{
      resource: { attributes: [{ key: 'service.name', value: { stringValue: 'attacker' } }] },
      scopeSpans: [{
        scope: { name: 'x' },
        spans: [{
          traceId: '5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a', spanId, name: 'chat gpt-4o', kind: 3,
          startTimeUnixNano: String(now - 1000000n), endTimeUnixNano: String(now),
          attributes: [
            { key: 'gen_ai.operation.name', value: { stringValue: 'chat' } },
            { key: 'gen_ai.request.model', value: { stringValue: 'gpt-4o' } },
            { key: 'llm.cost.total', value: { doubleValue: cost } },
            { key: 'gyre.cost_usd', value: { doubleValue: cost } },
          ],
        }],
      }],
    }],
  };
}

test('POST /v1/traces without a credential is a 401 and its claimed cost never reaches the stats', async () => {
  const forged = await postJson(`${gyre.url}/v1/traces`, span('00000000000000a1', 12345.67));
  assert.equal(forged.status, 401);
  assert.equal(forged.json.error.code, 'invalid_api_key');
  // The read token may not write either.
  assert.equal((await postJson(`${gyre.url}/v1/traces`, span('00000000000000a2', 12345.67), bearer(READ_TOKEN))).status, 403);
  // A client key may: a span of 1.5 USD, stored after the refused ones were sent.
  const ok = await postJson(`${gyre.url}/v1/traces`, span('00000000000000a3', 1.5), bearer(CLIENT_KEY));
  assert.equal(ok.status, 200, ok.text);
  const deadline = Date.now() + 5000 * SLOW;
  let s;
  while (Date.now() < deadline) {
    s = await get('/api/stats?agent=attacker', bearer(READ_TOKEN));
    if (s.json?.total?.requests >= 1) break;
    await sleep(50);
  }
  assert.equal(s.json.total.requests, 1, s.text);
  assert.equal(s.json.total.cost_usd, 1.5);
});

test('a gyre exporting spans to a gyre with auth: sends its key as an otlp header, and the spans are stored', async () => {
  const dir = tmpdir('gyre-access-otlp-');
  const b = await startGyre(`workers: 1
store: {sqlite: "${path.join(dir, 'b.db')}", traces: true}
auth: {keys: [${CLIENT_KEY}], read_token: ${READ_TOKEN}}
providers:
  - {name: mock, kind: openai, base_url: "${mock.v1}", keys: [sk-provider-secret]}
`);
  const a = await startGyre(`workers: 1
store: {sqlite: "${path.join(dir, 'a.db')}", traces: true}
otlp: {endpoint: "${b.url}/v1/traces", interval_ms: 50, headers: {authorization: env:GYRE_ACCESS_COLLECTOR_AUTH}}
providers:
  - {name: mock, kind: openai, base_url: "${mock.v1}", keys: [sk-provider-secret]}
routes:
  - name: chat
    targets: [{provider: mock, model: gpt-4o-mini}]
`, { env: { GYRE_ACCESS_COLLECTOR_AUTH: `Bearer ${CLIENT_KEY}` } });
  try {
    assert.equal((await postJson(`${a.url}/v1/chat/completions`, chatBody())).status, 200);
    const deadline = Date.now() + 5000 * SLOW;
    let page;
    while (Date.now() < deadline) {
      const r = await fetch(`${b.url}/api/traces`, { headers: bearer(READ_TOKEN) });
      page = await r.json();
      if (page.data?.length >= 1) break;
      await sleep(50);
    }
    assert.equal(page.data.length, 1, JSON.stringify(page));
    assert.equal(page.data[0].route, 'chat');
  } finally {
    assert.equal((await a.stop()).code, 0);
    assert.equal((await b.stop()).code, 0);
  }
});

test('direct: false makes provider/model a 404 exactly like a provider that does not exist, in both dialects', async () => {
  await resetMock();
  const hidden = await postJson(`${gyre.url}/v1/chat/completions`, chatBody({ model: 'hidden/gpt-4o-mini' }), bearer(CLIENT_KEY));
  const nosuch = await postJson(`${gyre.url}/v1/chat/completions`, chatBody({ model: 'nosuch/gpt-4o-mini' }), bearer(CLIENT_KEY));
  assert.equal(hidden.status, 404);
  assert.equal(hidden.json.error.code, 'model_not_found');
  assert.equal(hidden.text.replace('hidden/', 'X/'), nosuch.text.replace('nosuch/', 'X/'));
  // The list of what exists names the routes and the providers that may be addressed, not the hidden one.
  assert.equal(hidden.json.error.message,
    "the model 'hidden/gpt-4o-mini' does not exist on this gateway; available: 'chat', 'claude', 'private', 'broken', 'mock/<model>', 'claude-mock/<model>', 'down/<model>'");
  const msg = await postJson(`${gyre.url}/v1/messages`, { model: 'hidden/gpt-4o-mini', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] }, { 'x-api-key': CLIENT_KEY });
  assert.equal(msg.status, 404);
  assert.equal(msg.json.error.type, 'not_found_error');
  assert.equal(await mockRequests(), 0);
  // Its route still works.
  assert.equal((await postJson(`${gyre.url}/v1/chat/completions`, chatBody({ model: 'private' }), bearer(CLIENT_KEY))).status, 200);
});

test('an unreachable provider\'s error names the provider, never its address', async () => {
  const res = await postJson(`${gyre.url}/v1/chat/completions`, chatBody({ model: 'broken' }), bearer(CLIENT_KEY));
  assert.equal(res.status, 502);
  assert.equal(res.json.error.code, 'upstream_unreachable');
  assert.match(res.json.error.message, /^provider 'down' is unreachable: /);
  assert.ok(!res.text.includes(`127.0.0.1:${dead}`) && !res.text.includes(String(dead)), res.text);
  // The log and the trace keep it, for the operator.
  assert.match(gyre.proc.output(), new RegExp(`provider 'down' at 127\\.0\\.0\\.1:${dead}: connect: `));
  const id = res.headers.get('x-gyre-trace-id');
  const deadline = Date.now() + 5000 * SLOW;
  let t;
  while (Date.now() < deadline) {
    t = await get(`/api/traces/${id}`, bearer(READ_TOKEN));
    if (t.status === 200) break;
    await sleep(50);
  }
  assert.equal(t.status, 200, t.text);
  assert.equal(t.json.attempts.length, 1);
  assert.match(t.json.attempts[0].error, new RegExp(`^provider 'down' is unreachable: .* \\(at 127\\.0\\.0\\.1:${dead}\\)$`));
});

test('/v1/models lists route names in OpenAI\'s shape, and no target, URL, address or hidden provider', async () => {
  const res = await get('/v1/models', bearer(CLIENT_KEY));
  assert.equal(res.status, 200);
  assert.deepEqual(res.json, {
    object: 'list',
    data: ['chat', 'claude', 'private', 'broken'].map((id) => ({ id, object: 'model', created: 0, owned_by: 'gyre' })),
  });
  assert.doesNotMatch(res.text, /http|127\.0\.0\.1|hidden|mock|down/);
  assert.equal((await get('/v1/models')).status, 401);
});

test('the OpenAI SDK gets 200 with a gyre client key and AuthenticationError (401) with a wrong one', async () => {
  const ok = new OpenAI({ baseURL: `${gyre.url}/v1`, apiKey: CLIENT_KEY, maxRetries: 0, timeout: 10000 * SLOW });
  const c = await ok.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'Say hello.' }] });
  assert.equal(c.object, 'chat.completion');
  const bad = new OpenAI({ baseURL: `${gyre.url}/v1`, apiKey: WRONG_KEY, maxRetries: 0, timeout: 10000 * SLOW });
  await assert.rejects(bad.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'hi' }] }), (e) => {
    assert.ok(e instanceof OpenAI.AuthenticationError, e.constructor.name);
    assert.equal(e.status, 401);
    assert.equal(e.code, 'invalid_api_key');
    return true;
  });
});

test('the Anthropic SDK gets 200 with a gyre client key and AuthenticationError (401) with a wrong one', async () => {
  const ok = new Anthropic({ baseURL: gyre.url, apiKey: CLIENT_KEY, maxRetries: 0, timeout: 10000 * SLOW });
  const m = await ok.messages.create({ model: 'claude', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] });
  assert.equal(m.type, 'message');
  const bad = new Anthropic({ baseURL: gyre.url, apiKey: WRONG_KEY, maxRetries: 0, timeout: 10000 * SLOW });
  await assert.rejects(bad.messages.create({ model: 'claude', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] }), (e) => {
    assert.ok(e instanceof Anthropic.AuthenticationError, e.constructor.name);
    assert.equal(e.status, 401);
    return true;
  });
});

// ---- start-up: where an open gateway may listen ----

function configFile(text) {
  const dir = tmpdir('gyre-access-cfg-');
  const file = path.join(dir, 'gyre.yaml');
  fs.writeFileSync(file, `store: {sqlite: "${path.join(dir, 'gyre.db')}"}\nproviders:\n  - {name: p, kind: openai, base_url: "http://127.0.0.1:9/v1"}\n${text}`);
  return file;
}

test('listen: 0.0.0.0 without auth: gyre serve exits 1 and says why and how to fix it; check-config says the same', async () => {
  const port = await freePort();
  const file = configFile(`listen: 0.0.0.0:${port}\n`);
  const r = await runGyre(['serve', '--config', file], { ms: 5000 * SLOW });
  assert.equal(r.code, 1);
  assert.match(r.stderr, new RegExp(`^gyre serve: 0\\.0\\.0\\.0:${port} is not a loopback address and the configuration has no auth: section, .*add auth: \\{keys: \\[env:GYRE_CLIENT_KEY\\]\\} .*or write auth: none to run open on purpose; nothing started$`, 'm'));
  const cc = await runGyre(['check-config', file]);
  assert.equal(cc.code, 1);
  assert.match(cc.stdout, new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:4: listen: 0\\.0\\.0\\.0:${port} is not a loopback address`, 'm'));
  // --listen decides where gyre listens, so it is what the check reads.
  const r2 = await runGyre(['serve', '--config', configFile(''), '--listen', `[::]:${port}`], { ms: 5000 * SLOW });
  assert.equal(r2.code, 1);
  assert.match(r2.stderr, /^gyre serve: \[::\]:\d+ is not a loopback address/m);
});

test('auth: none on 0.0.0.0 starts, with a one-line warning', async () => {
  const port = await freePort();
  const file = configFile(`listen: 0.0.0.0:${port}\nauth: none\n`);
  const proc = spawn(bin('gyre'), ['serve', '--config', file], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  proc.stdout.on('data', (d) => { output += d; });
  proc.stderr.on('data', (d) => { output += d; });
  const exited = new Promise((resolve) => proc.on('exit', (code) => resolve(code)));
  try {
    const deadline = Date.now() + 5000 * SLOW;
    let status = 0;
    while (Date.now() < deadline && status !== 200) {
      status = await fetch(`http://127.0.0.1:${port}/v1/models`).then((r) => r.status, () => 0);
      if (status !== 200) await sleep(25);
    }
    assert.equal(status, 200, output);
  } finally {
    proc.kill('SIGTERM');
  }
  assert.equal(await exited, 0);
  assert.match(output, new RegExp(`^gyre: warning: auth: none: the gateway is open: anyone who reaches 0\\.0\\.0\\.0:${port} may call every model with the provider keys and read /api and /metrics$`, 'm'));
  assert.equal(output.split('\n').filter((l) => l.includes('warning')).length, 1);
});
