// Issue 10, points 2, 3 and 10: nothing a client sends reaches an upstream
// request line or header, or one of gyre's answer headers, unchecked.
//   - a model name cannot split the upstream request in two (request
//     smuggling onto a pooled connection) or climb out of the deployment's path;
//   - a model name cannot add a header to gyre's answer or grow it without bound;
//   - pass-through paths with dot-segments or encoded slashes are refused, never
//     forwarded;
//   - the client's X-Forwarded-For and friends never reach a provider.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { startGyre, startMock, postJson, rawHttp, tmpdir } from '../lib/harness.mjs';

let mock, gyre, dir;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

before(async () => {
  mock = await startMock();
  dir = tmpdir('gyre-compose-');
  gyre = await startGyre(`workers: 1
store: {sqlite: "${path.join(dir, 'gyre.db')}", traces: true}
providers:
  - {name: cap, kind: openai, base_url: "${mock.v1}", keys: [sk-openai-gyre]}
  - {name: az, kind: azure, base_url: "${mock.url}", keys: [azure-key-gyre]}
  - {name: ant, kind: anthropic, base_url: "${mock.v1}", keys: [sk-ant-gyre]}
routes:
  - {name: chat, targets: [{provider: cap, model: gpt-4o-mini}]}
  - {name: az-chat, targets: [{provider: az, model: dep}]}
`);
});
after(async () => {
  const r = await gyre.stop();
  assert.equal(r.code, 0);
  await mock.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

async function reset() {
  await fetch(`${mock.url}/_mock/reset`, { method: 'POST' });
  await mock.configure({ latency_ms: 0 });
}

function chat(model, content = 'hello') {
  return { model, messages: [{ role: 'user', content }] };
}

/** Splits a raw HTTP/1 answer into its status, its header lines (lower-case names) and its head's size. */
function parseHead(raw) {
  const end = raw.indexOf('\r\n\r\n');
  assert.ok(end > 0, `no complete head in ${JSON.stringify(raw.slice(0, 200))}`);
  const lines = raw.slice(0, end).split('\r\n');
  const status = Number(lines[0].split(' ')[1]);
  const headers = lines.slice(1).map((l) => l.slice(0, l.indexOf(':')).toLowerCase());
  return { status, headers, headBytes: end + 4, body: raw.slice(end + 4) };
}

function rawPost(path, body, extra = '') {
  const b = Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
  return Buffer.concat([
    Buffer.from(`POST ${path} HTTP/1.1\r\nhost: gyre\r\ncontent-type: application/json\r\n${extra}content-length: ${b.length}\r\nconnection: close\r\n\r\n`),
    b,
  ]);
}

// ---- point 2: request splitting through the model name ----

test('a model that smuggles a second request through an azure deployment cannot hand its answer to another client', async () => {
  await reset();
  // The upstream answers slowly, so the smuggled request's answer is still on its way when the pooled
  // connection is taken by the next client: before the fix the victim read the attacker's answer.
  await mock.configure({ latency_ms: 300 });
  const smuggled = 'dep/chat/completions?api-version=2024-10-21 HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n' +
    'POST /openai/deployments/dep';
  // Raw bytes: before the fix the model came back inside x-gyre-model, CR LF and all, which fetch refuses to read.
  const attacker = await rawHttp(gyre.port, rawPost('/v1/chat/completions', chat(`az/${smuggled}`, 'ATTACKER')), 2000);
  const victim = await postJson(`${gyre.url}/v1/chat/completions`, chat('az-chat', 'I am the victim'));
  assert.equal(victim.status, 200);
  assert.equal(victim.json.choices[0].message.content, 'Mock reply to: I am the victim');
  const head = parseHead(attacker);
  assert.equal(head.status, 400);
  assert.equal(JSON.parse(head.body).error.param, 'model');
  await sleep(400);
  const s = await mock.stats();
  assert.equal(s.requests, 1, `the upstream saw ${s.requests} requests: ${JSON.stringify(s.paths)}`);
  assert.deepEqual(s.paths, { '/openai/deployments/dep/chat/completions': 1 });
});

test('a printable model that carries a query and a second request line stays inside one percent-encoded path segment', async () => {
  await reset();
  const model = 'az/dep/chat/completions?api-version=x%20HTTP/1.1';
  await postJson(`${gyre.url}/v1/chat/completions`, chat(model));
  const s = await mock.stats();
  assert.equal(s.requests, 1);
  assert.equal(s.last_request.path,
    '/openai/deployments/dep%2Fchat%2Fcompletions%3Fapi-version%3Dx%2520HTTP%2F1.1/chat/completions?api-version=2024-10-21');
  assert.equal(s.last_request.headers['api-key'], 'azure-key-gyre');
});

test('a deployment with dot-segments cannot reach another upstream path', async () => {
  for (const model of ['az/dep/../../../admin/x', 'az/..', 'az/.', 'az/dep/%2e%2e/%2e%2e/admin', 'az/x\\..\\..\\admin']) {
    await reset();
    const res = await postJson(`${gyre.url}/v1/chat/completions`, chat(model));
    assert.equal(res.status, 400, `${model}: ${res.text}`);
    assert.equal(res.json.error.param, 'model', model);
    assert.match(res.json.error.message, /dot-segment/, model);
    const s = await mock.stats();
    assert.equal(s.requests, 0, `${model} reached ${JSON.stringify(s.paths)}`);
  }
});

// ---- point 3: model names on input, and gyre's answer headers ----

test('a model with CR LF is a 400 naming model, and the answer carries no injected Set-Cookie (OpenAI, provider/model form)', async () => {
  await reset();
  const raw = await rawHttp(gyre.port, rawPost('/v1/chat/completions', chat('cap/x\r\nSet-Cookie: session=attacker')));
  const head = parseHead(raw);
  assert.equal(head.status, 400);
  assert.ok(!head.headers.includes('set-cookie'), raw);
  const err = JSON.parse(head.body).error;
  assert.equal(err.param, 'model');
  assert.equal(err.code, 'invalid_value');
  assert.equal(err.message, "'model' must be 1 to 256 bytes of printable ASCII (0x21-0x7E); it has a control byte (0x0D) at offset 5");
  assert.equal((await mock.stats()).requests, 0);
});

test('a model with CR LF is a 400 naming model in Anthropic\'s shape on /v1/messages', async () => {
  await reset();
  const body = { model: 'ant/x\r\nSet-Cookie: session=attacker', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] };
  const raw = await rawHttp(gyre.port, rawPost('/v1/messages', body));
  const head = parseHead(raw);
  assert.equal(head.status, 400);
  assert.ok(!head.headers.includes('set-cookie'), raw);
  const json = JSON.parse(head.body);
  assert.equal(json.type, 'error');
  assert.equal(json.error.type, 'invalid_request_error');
  assert.match(json.error.message, /^'model' must be 1 to 256 bytes of printable ASCII/);
  assert.equal((await mock.stats()).requests, 0);
});

test('a 70 KB model name is a 400 with a small answer that does not echo it (route form and provider/model form)', async () => {
  await reset();
  for (const [path, model, shape] of [
    ['/v1/chat/completions', 'c'.repeat(70 * 1024), 'openai'],
    ['/v1/chat/completions', `cap/${'m'.repeat(70 * 1024)}`, 'openai'],
    ['/v1/messages', `ant/${'m'.repeat(70 * 1024)}`, 'anthropic'],
  ]) {
    const body = shape === 'openai' ? chat(model) : { model, max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] };
    const raw = await rawHttp(gyre.port, rawPost(path, body));
    const head = parseHead(raw);
    assert.equal(head.status, 400);
    assert.ok(head.headBytes < 4096, `head of ${head.headBytes} bytes`);
    assert.ok(raw.length < 4096, `answer of ${raw.length} bytes`);
    const json = JSON.parse(head.body);
    assert.match(json.error.message, /^'model' must be 1 to 256 bytes of printable ASCII \(0x21-0x7E\); it is 7\d{4} bytes long$/);
    if (shape === 'openai') assert.equal(json.error.param, 'model');
  }
  assert.equal((await mock.stats()).requests, 0);
});

test('a model name with a space or a byte over 0x7E is a 400 naming model', async () => {
  await reset();
  let res = await postJson(`${gyre.url}/v1/embeddings`, { model: 'cap/a b', input: 'x' });
  assert.equal(res.status, 400);
  assert.equal(res.json.error.param, 'model');
  assert.equal(res.json.error.message, "'model' must be 1 to 256 bytes of printable ASCII (0x21-0x7E); it has a space at offset 5");
  // A pass-through body's model follows the same rule.
  res = await postJson(`${gyre.url}/v1/moderations`, { model: 'cap/a\u0000b', input: 'x' });
  assert.equal(res.status, 400);
  assert.equal(res.json.error.message, "'model' must be 1 to 256 bytes of printable ASCII (0x21-0x7E); it has a control byte (0x00) at offset 5");
  res = await postJson(`${gyre.url}/v1/chat/completions`, chat('cap/modèle'));
  assert.equal(res.status, 400);
  assert.equal(res.json.error.message, "'model' must be 1 to 256 bytes of printable ASCII (0x21-0x7E); it has a byte over 0x7E (0xC3) at offset 7");
  assert.equal((await mock.stats()).requests, 0);
});

test('a valid provider/model form still answers with its x-gyre-model', async () => {
  await reset();
  const res = await postJson(`${gyre.url}/v1/chat/completions`, chat('cap/gpt-4o-mini'));
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('x-gyre-model'), 'gpt-4o-mini');
  assert.equal(res.headers.get('x-gyre-provider'), 'cap');
});

// ---- point 10: pass-through paths and forwarded headers ----

test('pass-through paths with dot-segments, encoded slashes or backslashes are a 400 and never forwarded', async () => {
  const paths = [
    '/v1/%2e%2e/%2e%2e/x', '/v1/%2E%2E/admin', '/v1/./x', '/v1/files/..;/x', '/v1/files/../organization/admin_api_keys',
    '/v1/files/%2e%2e%2forganization', '/v1/files/x%2fy', '/v1/files/x%2Fy', '/v1/files/x%5cy', '/v1/files/x\\..\\y',
    '/v1/files//x', '/v1/files/.%2e/x', '/v1/files/%252e%252e/x', '/v1/files/x%00y',
  ];
  for (const p of paths) {
    await reset();
    const raw = await rawHttp(gyre.port, `GET ${p} HTTP/1.1\r\nhost: gyre\r\nconnection: close\r\n\r\n`);
    const head = parseHead(raw);
    assert.equal(head.status, 400, `${p}: ${raw.slice(0, 300)}`);
    const err = JSON.parse(head.body).error;
    assert.equal(err.type, 'invalid_request_error', p);
    assert.equal(err.code, 'invalid_path', p);
    assert.match(err.message, /^the path /, p);
    const s = await mock.stats();
    assert.equal(s.requests, 0, `${p} reached the provider as ${JSON.stringify(s.paths)}`);
  }
});

test('a clean pass-through path is still forwarded as it came', async () => {
  await reset();
  const raw = await rawHttp(gyre.port, 'GET /v1/responses/resp_ft:gpt-4o-mini:org::abc?limit=2 HTTP/1.1\r\nhost: gyre\r\nconnection: close\r\n\r\n');
  assert.notEqual(parseHead(raw).status, 400);
  const s = await mock.stats();
  assert.equal(s.requests, 1);
  assert.equal(s.last_request.path, '/v1/responses/resp_ft:gpt-4o-mini:org::abc?limit=2');
});

test('the client\'s X-Forwarded-For, Forwarded, X-Real-IP and X-Forwarded-Host/Proto never reach the provider', async () => {
  await reset();
  const res = await postJson(`${gyre.url}/v1/chat/completions`, chat('chat'), {
    'x-forwarded-for': '10.0.0.1, 10.0.0.2', forwarded: 'for=10.0.0.1;proto=https', 'x-real-ip': '10.0.0.1',
    'x-forwarded-host': 'internal.example', 'x-forwarded-proto': 'https', 'x-forwarded-port': '443',
    'x-custom-kept': 'yes',
  });
  assert.equal(res.status, 200);
  const h = (await mock.stats()).last_request.headers;
  for (const name of ['x-forwarded-for', 'forwarded', 'x-real-ip', 'x-forwarded-host', 'x-forwarded-proto', 'x-forwarded-port'])
    assert.equal(h[name], undefined, `${name} was forwarded`);
  assert.equal(h['x-custom-kept'], 'yes');
});

async function pollTrace(id) {
  const deadline = Date.now() + 3000;
  let last = '';
  while (Date.now() < deadline) {
    const r = await fetch(`${gyre.url}/api/traces/${id}`);
    last = await r.text();
    if (r.status === 200) return JSON.parse(last);
    await sleep(50);
  }
  assert.fail(`trace ${id} was not stored: ${last}`);
}

test('an invalid traceparent is ignored as if absent: the call gets a fresh trace and no parent', async () => {
  const TID = '4bf92f3577b34da6a3ce929d0e0e4736', PID = '00f067aa0ba902b7';
  for (const tp of [
    `ff-${TID}-${PID}-01`, // version ff is forbidden
    `00-${TID}-${PID}-zz`, // flags are not hex
    `00-${TID}-${PID}-01-junk`, // version 00 is exactly 55 bytes
    `00-${TID}-${PID}-01x`,
    `00-${TID.toUpperCase()}-${PID}-01`, // lower-case hex only
  ]) {
    const res = await postJson(`${gyre.url}/v1/chat/completions`, chat('chat'), { traceparent: tp });
    assert.equal(res.status, 200);
    const t = await pollTrace(res.headers.get('x-gyre-trace-id'));
    assert.equal(t.otel_trace_id, t.trace_id, tp);
    assert.ok(!t.parent_span_id, `${tp}: parent ${t.parent_span_id}`);
  }
  const res = await postJson(`${gyre.url}/v1/chat/completions`, chat('chat'), { traceparent: `00-${TID}-${PID}-01` });
  const t = await pollTrace(res.headers.get('x-gyre-trace-id'));
  assert.equal(t.otel_trace_id, TID);
  assert.equal(t.parent_span_id, PID);
});
