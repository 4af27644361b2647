// The trace query API (issue 5): every answer gyre gives is recorded, and
// GET /api/traces, /api/traces/{id} and /api/sessions/{id} read the records
// back with the client's metadata, each attempt's key id (never the key),
// and the tokens the provider reported.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import fs from 'node:fs';
import { startGyre, startMock, postJson, chatBody, sseData, tmpdir, SLOW } from '../lib/harness.mjs';

const SECRET = 'sk-mock-secret-7f3a9c';
const SESSION = 'sess-traces-1';
const META = { 'x-gyre-session': SESSION, 'x-gyre-agent': 'planner', 'x-gyre-user': 'user-42', 'x-gyre-tags': 'beta, alpha' };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

let mock, gyre, dir;
// Filled by the first tests, read by the later ones (node runs a file's tests in order).
const seen = {};

before(async () => {
  mock = await startMock();
  dir = tmpdir('gyre-traces-');
  gyre = await startGyre(`workers: 1
store: {sqlite: "${path.join(dir, 'gyre.db')}", traces: true}
providers:
  - {name: mock, kind: openai, base_url: "${mock.v1}", keys: [${SECRET}]}
routes:
  - name: chat
    targets: [{provider: mock, model: gpt-4o-mini}]
`);
});

after(async () => {
  assert.equal((await gyre.stop()).code, 0);
  assert.equal((await mock.stop()).code, 0);
  fs.rmSync(dir, { recursive: true, force: true });
});

async function getJson(p) {
  const r = await fetch(`${gyre.url}${p}`, { signal: AbortSignal.timeout(5000 * SLOW) });
  const text = await r.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { status: r.status, headers: r.headers, json, text };
}

// The writer thread stores a trace shortly after the answer; wait for it, bounded.
async function pollTrace(id) {
  const deadline = Date.now() + 3000 * SLOW;
  let last;
  while (Date.now() < deadline) {
    last = await getJson(`/api/traces/${id}`);
    if (last.status === 200) return last.json;
    assert.equal(last.status, 404, `GET /api/traces/${id}: ${last.text}`);
    await sleep(50);
  }
  assert.fail(`trace ${id} was not stored within ${3000 * SLOW} ms (last answer ${last.status}: ${last.text})`);
}

function assertCommon(t, id) {
  assert.equal(t.trace_id, id);
  assert.match(t.span_id, /^[0-9a-f]{16}$/);
  assert.equal(t.endpoint, '/v1/chat/completions');
  assert.equal(t.route, 'chat');
  assert.equal(t.provider, 'mock');
  assert.equal(t.model, 'gpt-4o-mini');
  assert.equal(t.session, SESSION);
  assert.equal(t.agent, 'planner');
  assert.equal(t.user, 'user-42');
  assert.deepEqual(t.tags, ['alpha', 'beta']);
  assert.equal(t.cache_hit, false);
  assert.ok(t.ended_us >= t.started_us, `ended_us ${t.ended_us} < started_us ${t.started_us}`);
  assert.equal(t.latency_us, t.ended_us - t.started_us);
  assert.equal(t.attempts.length, 1);
  assert.equal(t.attempts[0].provider, 'mock');
  assert.equal(t.attempts[0].model, 'gpt-4o-mini');
  assert.equal(t.attempts[0].key_id, 'mock#0');
}

test('a chat answer is stored with its route, target, metadata, key id and the usage the provider reported', async () => {
  const res = await postJson(`${gyre.url}/v1/chat/completions`, chatBody(), META);
  assert.equal(res.status, 200);
  const id = res.headers.get('x-gyre-trace-id');
  assert.match(id, /^[0-9a-f]{32}$/);
  const t = await pollTrace(id);
  assertCommon(t, id);
  assert.equal(t.status, 200);
  assert.equal(t.stream, false);
  assert.equal(t.ttft_us, null);
  assert.equal(t.request_id, res.headers.get('x-request-id'));
  assert.equal(t.finish_reason, res.json.choices[0].finish_reason);
  assert.equal(t.prompt_tokens, res.json.usage.prompt_tokens);
  assert.equal(t.completion_tokens, res.json.usage.completion_tokens);
  assert.equal(t.prompt_tokens, 6); // the mock counts "Say hello." as 2 words plus 4 per message
  // The mock reports no cached or reasoning counts: unknown, not 0.
  assert.equal(t.cached_tokens, null);
  assert.equal(t.reasoning_tokens, null);
  assert.equal(t.attempts[0].status, 200);
  assert.equal(t.attempts[0].error, '');
  assert.doesNotMatch(JSON.stringify(t), new RegExp(SECRET));
  seen.chat = t;
});

test('a streamed answer is stored with its time to first token and the usage of its last chunk', async () => {
  const res = await postJson(`${gyre.url}/v1/chat/completions`,
    chatBody({ stream: true, stream_options: { include_usage: true } }), META);
  assert.equal(res.status, 200);
  const id = res.headers.get('x-gyre-trace-id');
  assert.match(id, /^[0-9a-f]{32}$/);
  const chunks = sseData(res.text).filter((d) => d !== '[DONE]').map((d) => JSON.parse(d));
  const usage = chunks.find((c) => c.usage)?.usage;
  assert.ok(usage, `no usage chunk in:\n${res.text}`);
  const finish = chunks.map((c) => c.choices?.[0]?.finish_reason).find((f) => f);
  const t = await pollTrace(id);
  assertCommon(t, id);
  assert.equal(t.status, 200);
  assert.equal(t.stream, true);
  assert.equal(typeof t.ttft_us, 'number');
  assert.ok(t.ttft_us >= 0 && t.ttft_us <= t.latency_us, `ttft_us ${t.ttft_us}, latency_us ${t.latency_us}`);
  assert.equal(t.finish_reason, finish);
  assert.equal(t.prompt_tokens, usage.prompt_tokens);
  assert.equal(t.completion_tokens, usage.completion_tokens);
  assert.doesNotMatch(JSON.stringify(t), new RegExp(SECRET));
  seen.stream = t;
});

test('GET /api/traces?session= lists the session\'s calls newest first, as summaries', async () => {
  assert.ok(seen.chat && seen.stream, 'needs the two traces of the tests above');
  const res = await getJson(`/api/traces?session=${SESSION}`);
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('content-type'), 'application/json');
  assert.deepEqual(res.json.data.map((t) => t.trace_id), [seen.stream.trace_id, seen.chat.trace_id]);
  assert.equal(res.json.next_cursor, null);
  assert.equal('request_body' in res.json.data[0], false);
  assert.equal(res.json.data[1].status, 200);
  assert.deepEqual(res.json.data[1].attempts, seen.chat.attempts);
  assert.doesNotMatch(res.text, new RegExp(SECRET));
});

test('a page of one carries a cursor that leads to the next page', async () => {
  const first = await getJson(`/api/traces?session=${SESSION}&limit=1`);
  assert.equal(first.status, 200);
  assert.deepEqual(first.json.data.map((t) => t.trace_id), [seen.stream.trace_id]);
  assert.equal(first.json.next_cursor, `${seen.stream.started_us}_${seen.stream.trace_id}`);
  const second = await getJson(`/api/traces?session=${SESSION}&limit=1&cursor=${encodeURIComponent(first.json.next_cursor)}`);
  assert.equal(second.status, 200);
  assert.deepEqual(second.json.data.map((t) => t.trace_id), [seen.chat.trace_id]);
});

test('filters combine, and their values are URL-decoded', async () => {
  let res = await getJson(`/api/traces?agent=planner&user=user%2D42&tag=alpha&provider=mock&model=gpt-4o-mini&route=chat&status=200`);
  assert.equal(res.status, 200);
  assert.deepEqual(res.json.data.map((t) => t.trace_id), [seen.stream.trace_id, seen.chat.trace_id]);
  res = await getJson(`/api/traces?session=${SESSION}&q=Say+hello`);
  assert.deepEqual(res.json.data.map((t) => t.trace_id), [seen.stream.trace_id, seen.chat.trace_id]);
  res = await getJson(`/api/traces?session=${SESSION}&user=someone+else`);
  assert.equal(res.status, 200);
  assert.deepEqual(res.json.data, []);
  // Times: from the first call's start (RFC 3339 in UTC, to the microsecond) to just after the second's.
  const iso = new Date(Math.floor(seen.chat.started_us / 1000)).toISOString().replace(/\.(\d{3})Z$/,
    (_, ms) => `.${ms}${String(seen.chat.started_us % 1000).padStart(3, '0')}Z`);
  res = await getJson(`/api/traces?session=${SESSION}&from=${iso}&to=${Math.floor(seen.stream.started_us / 1000) + 1}`);
  assert.equal(res.status, 200);
  assert.deepEqual(res.json.data.map((t) => t.trace_id), [seen.stream.trace_id, seen.chat.trace_id]);
  res = await getJson(`/api/traces?session=${SESSION}&to=${Math.floor(seen.chat.started_us / 1000)}`);
  assert.deepEqual(res.json.data, []);
});

test('GET /api/sessions/{id} lists the session\'s calls oldest first, whole', async () => {
  const res = await getJson(`/api/sessions/${SESSION}`);
  assert.equal(res.status, 200);
  assert.equal(res.json.session, SESSION);
  assert.deepEqual(res.json.traces.map((t) => t.trace_id), [seen.chat.trace_id, seen.stream.trace_id]);
  // A session's traces leave out what /api/traces/{id} adds for the loop (feedback, scores, cluster).
  const { feedback: _f, scores: _s, cluster: _c, ...chat } = seen.chat;
  assert.deepEqual(res.json.traces[0], chat);
  assert.doesNotMatch(res.text, new RegExp(SECRET));
});

test('a failed request with no fallback is stored with the status the client got and the attempt\'s', async () => {
  await mock.configure({ fault: '500', fault_rate: 1 });
  let res;
  try {
    res = await postJson(`${gyre.url}/v1/chat/completions`, chatBody(), { 'x-gyre-session': 'sess-traces-fail' });
  } finally {
    await mock.configure({ fault: null, fault_rate: 1 });
  }
  assert.equal(res.status, 500, res.text); // the provider's 500, relayed: the route has nowhere else to go
  const id = res.headers.get('x-gyre-trace-id');
  assert.match(id, /^[0-9a-f]{32}$/);
  const t = await pollTrace(id);
  assert.equal(t.status, res.status);
  assert.equal(t.session, 'sess-traces-fail');
  assert.equal(t.route, 'chat');
  assert.ok(t.attempts.length >= 1);
  assert.equal(t.attempts[0].provider, 'mock');
  assert.equal(t.attempts[0].key_id, 'mock#0');
  assert.equal(t.attempts[0].status, 500);
  assert.match(t.attempts[0].error, /^provider 'mock' answered 500: /);
  assert.doesNotMatch(JSON.stringify(t), new RegExp(SECRET));
  // errors=1 finds it and only it among this file's calls.
  const page = await getJson('/api/traces?errors=1');
  assert.equal(page.status, 200);
  assert.deepEqual(page.json.data.map((x) => x.trace_id), [id]);
  const byStatus = await getJson(`/api/traces?status=${res.status}`);
  assert.deepEqual(byStatus.json.data.map((x) => x.trace_id), [id]);
});

function assertError(res, status, code, param) {
  assert.equal(res.status, status, res.text);
  assert.equal(res.headers.get('content-type'), 'application/json');
  assert.deepEqual(Object.keys(res.json.error), ['message', 'type', 'param', 'code']);
  assert.equal(res.json.error.code, code);
  assert.equal(res.json.error.param, param);
}

test('a bad parameter is a 400 naming it', async () => {
  let res = await getJson('/api/traces?limit=0');
  assertError(res, 400, 'invalid_value', 'limit');
  assert.equal(res.json.error.message, "'limit' must be a whole number from 1 to 1000, got '0'");
  res = await getJson('/api/traces?from=yesterday');
  assertError(res, 400, 'invalid_value', 'from');
  res = await getJson('/api/traces?sesion=x');
  assertError(res, 400, 'unknown_parameter', 'sesion');
  res = await getJson('/api/traces?cursor=nope');
  assertError(res, 400, 'invalid_value', 'cursor');
  assert.equal(res.json.error.message, 'cursor: "nope" is not one this API returned (expected <started_us>_<trace_id>)');
});

test('an unknown trace or session is a 404', async () => {
  let res = await getJson('/api/traces/0123456789abcdef0123456789abcdef');
  assertError(res, 404, 'trace_not_found', null);
  assert.equal(res.json.error.message, "no trace '0123456789abcdef0123456789abcdef'");
  res = await getJson('/api/traces/not-an-id');
  assertError(res, 404, 'trace_not_found', null);
  res = await getJson('/api/sessions/no-such-session');
  assertError(res, 404, 'session_not_found', null);
  assert.equal(res.json.error.message, "no session 'no-such-session'");
});

test('other methods are a 405 and other /api paths a 404', async () => {
  const r = await fetch(`${gyre.url}/api/traces`, { method: 'POST', body: '{}' });
  assert.equal(r.status, 405);
  assert.equal(r.headers.get('allow'), 'GET');
  assert.equal((await r.json()).error.code, 'method_not_allowed');
  const res = await getJson('/api/nope');
  assertError(res, 404, 'unknown_url', null);
  const res2 = await getJson(`/api/traces/${seen.chat.trace_id}/more`);
  assertError(res2, 404, 'unknown_url', null);
});
