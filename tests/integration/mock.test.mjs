// gyre-mock answers deterministically and stages every fault on request.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import https from 'node:https';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { startMock, postJson, sseData, tmpdir, SLOW } from '../lib/harness.mjs';

let mock;
before(async () => { mock = await startMock(); });
after(async () => { assert.equal((await mock.stop()).code, 0); });

const chat = (extra = {}) => ({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Say hello to the world' }], ...extra });
const WEATHER = [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' }, unit: { type: 'string', enum: ['f', 'c'] }, days: { type: 'integer' }, hourly: { type: 'boolean' } }, required: ['city', 'unit', 'days'] } } }];

test('a chat completion is the same every time, with exact content and usage', async () => {
  const a = await postJson(`${mock.v1}/chat/completions`, chat());
  const b = await postJson(`${mock.v1}/chat/completions`, chat());
  assert.equal(a.status, 200);
  assert.deepEqual(a.json, b.json);
  assert.match(a.json.id, /^chatcmpl-mock-[0-9a-f]{8}$/);
  assert.deepEqual({ ...a.json, id: 'x' }, {
    id: 'x', object: 'chat.completion', created: 1700000000, model: 'gpt-4o-mini',
    choices: [{ index: 0, message: { role: 'assistant', content: 'Mock reply to: Say hello to the world', refusal: null }, logprobs: null, finish_reason: 'stop' }],
    usage: { prompt_tokens: 9, completion_tokens: 8, total_tokens: 17 },
  });
});

test('max_tokens cuts the reply by words with finish_reason length', async () => {
  const r = await postJson(`${mock.v1}/chat/completions`, chat({ max_tokens: 3 }));
  assert.equal(r.json.choices[0].message.content, 'Mock reply to:');
  assert.equal(r.json.choices[0].finish_reason, 'length');
  assert.equal(r.json.usage.completion_tokens, 3);
});

test('a stream sends a role chunk, a chunk per word, the finish, usage when asked, and [DONE]', async () => {
  const r = await postJson(`${mock.v1}/chat/completions`, chat({ stream: true, stream_options: { include_usage: true } }));
  assert.equal(r.headers.get('content-type'), 'text/event-stream');
  const events = sseData(r.text);
  assert.equal(events.at(-1), '[DONE]');
  const chunks = events.slice(0, -1).map((e) => JSON.parse(e));
  assert.deepEqual(chunks[0].choices[0].delta, { role: 'assistant', content: '' });
  assert.deepEqual(chunks.slice(1, -2).map((c) => c.choices[0].delta.content), ['Mock ', 'reply ', 'to: ', 'Say ', 'hello ', 'to ', 'the ', 'world']);
  assert.equal(chunks.at(-2).choices[0].finish_reason, 'stop');
  assert.deepEqual(chunks.at(-1).choices, []);
  assert.deepEqual(chunks.at(-1).usage, { prompt_tokens: 9, completion_tokens: 8, total_tokens: 17 });
});

test('with tools it calls the first tool with arguments that fit its schema', async () => {
  const r = await postJson(`${mock.v1}/chat/completions`, chat({ tools: WEATHER }));
  const m = r.json.choices[0].message;
  assert.equal(r.json.choices[0].finish_reason, 'tool_calls');
  assert.equal(m.content, null);
  assert.equal(m.tool_calls.length, 1);
  assert.match(m.tool_calls[0].id, /^call_mock_[0-9a-f]{8}$/);
  assert.equal(m.tool_calls[0].type, 'function');
  assert.equal(m.tool_calls[0].function.name, 'get_weather');
  assert.deepEqual(JSON.parse(m.tool_calls[0].function.arguments), { city: 'mock', unit: 'f', days: 1 });
});

test('a streamed tool call arrives as deltas that assemble to the same call', async () => {
  const r = await postJson(`${mock.v1}/chat/completions`, chat({ tools: WEATHER, stream: true }));
  const chunks = sseData(r.text).slice(0, -1).map((e) => JSON.parse(e));
  let args = '', name = '', id = '';
  for (const c of chunks) for (const tc of c.choices[0]?.delta?.tool_calls ?? []) {
    assert.equal(tc.index, 0);
    if (tc.id) id = tc.id;
    if (tc.function?.name) name = tc.function.name;
    args += tc.function?.arguments ?? '';
  }
  assert.match(id, /^call_mock_/);
  assert.equal(name, 'get_weather');
  assert.deepEqual(JSON.parse(args), { city: 'mock', unit: 'f', days: 1 });
  assert.ok(chunks.filter((c) => c.choices[0]?.delta?.tool_calls).length >= 3);
  assert.equal(chunks.at(-1).choices[0].finish_reason, 'tool_calls');
});

test('after a tool result it answers in text', async () => {
  const r = await postJson(`${mock.v1}/chat/completions`, {
    model: 'gpt-4o-mini', tools: WEATHER,
    messages: [{ role: 'user', content: 'weather?' }, { role: 'assistant', content: null, tool_calls: [{ id: 'c1', type: 'function', function: { name: 'get_weather', arguments: '{}' } }] }, { role: 'tool', tool_call_id: 'c1', content: '21 degrees' }],
  });
  assert.equal(r.json.choices[0].message.content, 'Mock reply to tool result: 21 degrees');
  assert.equal(r.json.choices[0].finish_reason, 'stop');
});

test('embeddings are deterministic unit vectors of the asked dimension', async () => {
  const a = await postJson(`${mock.v1}/embeddings`, { model: 'text-embedding-3-small', input: ['a', 'b'], dimensions: 4 });
  const b = await postJson(`${mock.v1}/embeddings`, { model: 'text-embedding-3-small', input: 'a', dimensions: 4 });
  assert.equal(a.json.data.length, 2);
  assert.deepEqual(a.json.data[0].embedding, b.json.data[0].embedding);
  assert.notDeepEqual(a.json.data[0].embedding, a.json.data[1].embedding);
  assert.equal(a.json.data[0].embedding.length, 4);
  const norm = Math.hypot(...a.json.data[0].embedding);
  assert.ok(Math.abs(norm - 1) < 1e-5, String(norm));
  const d = await postJson(`${mock.v1}/embeddings`, { model: 'e', input: 'x' });
  assert.equal(d.json.data[0].embedding.length, 8);
});

test('encoding_format base64 gives the same vector as little-endian float32s', async () => {
  const f = await postJson(`${mock.v1}/embeddings`, { model: 'e', input: 'a', dimensions: 4 });
  const b = await postJson(`${mock.v1}/embeddings`, { model: 'e', input: 'a', dimensions: 4, encoding_format: 'base64' });
  const buf = Buffer.from(b.json.data[0].embedding, 'base64');
  assert.equal(buf.length, 16);
  const floats = [0, 1, 2, 3].map((i) => buf.readFloatLE(4 * i));
  f.json.data[0].embedding.forEach((x, i) => assert.ok(Math.abs(x - floats[i]) < 1e-6));
});

test('/v1/models lists the mock models; other /v1 paths echo', async () => {
  const m = await (await fetch(`${mock.v1}/models`)).json();
  assert.deepEqual(m.data.map((x) => x.id), ['gpt-4o-mini', 'gpt-4o', 'text-embedding-3-small', 'mock-1']);
  const e = await postJson(`${mock.v1}/responses`, { model: 'x', input: 'y' });
  assert.deepEqual(e.json, { object: 'mock.echo', method: 'POST', path: '/v1/responses', body_bytes: 25 });
});

test('stats count requests per path, model and key, and keep the last request', async () => {
  await fetch(`${mock.url}/_mock/reset`, { method: 'POST' });
  await postJson(`${mock.v1}/chat/completions`, chat(), { authorization: 'Bearer sk-one', 'x-custom': 'v' });
  await postJson(`${mock.v1}/chat/completions`, chat({ model: 'gpt-4o' }), { authorization: 'Bearer sk-two' });
  await postJson(`${mock.v1}/embeddings`, { model: 'e', input: 'x' }, { 'api-key': 'sk-one' });
  const s = await mock.stats();
  assert.equal(s.requests, 3);
  assert.deepEqual(s.paths, { '/v1/chat/completions': 2, '/v1/embeddings': 1 });
  assert.deepEqual(s.models, { 'gpt-4o-mini': 1, 'gpt-4o': 1, e: 1 });
  assert.deepEqual(s.keys, { 'sk-one': 2, 'sk-two': 1 });
  assert.equal(s.last_request.path, '/v1/embeddings');
  assert.equal(s.last_request.headers['api-key'], 'sk-one');
  assert.equal(s.last_request.body, '{"model":"e","input":"x"}');
});

async function withFault(fault, fn, extra = {}) {
  await mock.configure({ fault, fault_rate: 1, ...extra });
  try { await fn(); } finally { await mock.configure({ fault: null, latency_ms: 0 }); }
}

test('fault 429 answers with Retry-After and a rate-limit error', () => withFault('429', async () => {
  const r = await postJson(`${mock.v1}/chat/completions`, chat());
  assert.equal(r.status, 429);
  assert.equal(r.headers.get('retry-after'), '1');
  assert.equal(r.json.error.code, 'rate_limit_exceeded');
}));

test('faults 500 and 503 answer with that status', async () => {
  for (const f of ['500', '503']) await withFault(f, async () => {
    const r = await postJson(`${mock.v1}/chat/completions`, chat());
    assert.equal(r.status, Number(f));
    assert.equal(r.json.error.type, 'server_error');
  });
});

test('fault reset resets the connection before any answer', () => withFault('reset', async () => {
  await assert.rejects(postJson(`${mock.v1}/chat/completions`, chat()));
}));

test('fault hang never answers', () => withFault('hang', async () => {
  await assert.rejects(fetch(`${mock.v1}/chat/completions`, { method: 'POST', body: JSON.stringify(chat()), signal: AbortSignal.timeout(400) }), /TimeoutError|aborted/);
}));

test('fault truncate cuts a stream before [DONE] and a body before its length', () => withFault('truncate', async () => {
  const r = await fetch(`${mock.v1}/chat/completions`, { method: 'POST', body: JSON.stringify(chat({ stream: true })) });
  let text = '';
  await assert.rejects((async () => { for await (const c of r.body) text += new TextDecoder().decode(c); })());
  assert.equal(sseData(text).length, 3); // role + two words
  assert.ok(!text.includes('[DONE]'));
  await assert.rejects(postJson(`${mock.v1}/chat/completions`, chat()));
}));

test('fault slow-first-byte delays the answer by 2 s', () => withFault('slow-first-byte', async () => {
  const t0 = Date.now();
  const r = await postJson(`${mock.v1}/chat/completions`, chat());
  assert.equal(r.status, 200);
  assert.ok(Date.now() - t0 >= 1900, `${Date.now() - t0} ms`);
}));

test('a fault rate of 0.5 faults exactly every other request', async () => {
  await fetch(`${mock.url}/_mock/reset`, { method: 'POST' });
  await withFault('500', async () => {
    const statuses = [];
    for (let i = 0; i < 6; i++) statuses.push((await postJson(`${mock.v1}/chat/completions`, chat())).status);
    assert.deepEqual(statuses, [200, 500, 200, 500, 200, 500]);
  }, { fault_rate: 0.5 });
});

test('/_mock/config reports and validates the options', async () => {
  const cfg = await mock.configure({ latency_ms: 5, tokens_per_sec: 100, fault_rate: 1 });
  assert.deepEqual(cfg, { latency_ms: 5, tokens_per_sec: 100, fault: null, fault_rate: 1 });
  const bad = await postJson(`${mock.url}/_mock/config`, { fault: 'explode' });
  assert.equal(bad.status, 400);
  await mock.configure({ latency_ms: 0, tokens_per_sec: 0 });
});

test('command-line faults and latency apply from the start', async () => {
  const m = await startMock(['--fault', '503', '--latency-ms', '100']);
  const t0 = Date.now();
  const r = await postJson(`${m.v1}/chat/completions`, chat());
  assert.equal(r.status, 503);
  assert.ok(Date.now() - t0 >= 90);
  // /_mock paths are never faulted.
  assert.equal((await fetch(`${m.url}/_mock/stats`)).status, 200);
  assert.equal((await m.stop()).code, 0);
});

test('with --tls-cert and --tls-key it serves https', async () => {
  const dir = tmpdir('gyre-mock-tls-');
  const key = path.join(dir, 'k.pem'), crt = path.join(dir, 'c.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', crt, '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-days', '1'], { stdio: 'ignore' });
  const m = await startMock(['--tls-cert', crt, '--tls-key', key], { tls: true });
  const body = await new Promise((resolve, reject) => {
    const req = https.request(`${m.url}/v1/models`, { ca: fs.readFileSync(crt) }, (res) => {
      let b = ''; res.on('data', (d) => { b += d; }); res.on('end', () => resolve(b));
    });
    req.on('error', reject);
    req.end();
  });
  assert.equal(JSON.parse(body).data[0].id, 'gpt-4o-mini');
  assert.equal((await m.stop()).code, 0);
  fs.rmSync(dir, { recursive: true, force: true });
});
