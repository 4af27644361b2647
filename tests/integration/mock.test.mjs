// gyre-mock, the fake provider every other test leans on: its answers are
// exact functions of the request (docs/mock.md states the rules, and the
// helpers below restate them), and it stages every fault on request.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import https from 'node:https';
import net from 'node:net';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';
import { startMock, postJson, sseData, rawHttp, tmpdir, bin, SLOW } from '../lib/harness.mjs';
import { utf8, fnv1a, hex8, chatId, callId } from '../lib/mock-rules.mjs';

let mock;
before(async () => { mock = await startMock(); });
after(async () => { assert.equal((await mock.stop()).code, 0); });

// ---- the documented rules, restated ----

function embedding(text, dims = 8) {
  const v = [];
  for (let k = 0; k < dims; k++) {
    const h = fnv1a(utf8(text), (0x811c9dc5 ^ Math.imul(k, 2654435761)) >>> 0);
    v.push(((h % 20001) - 10000) / 10000);
  }
  const norm = Math.hypot(...v) || 1;
  // C's round() goes half away from zero; -0 prints as 0.
  return v.map((x) => { const y = (x / norm) * 1e6; return (Math.sign(y) * Math.round(Math.abs(y))) / 1e6 + 0; });
}

const chat = (extra = {}) => ({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Say hello to the world' }], ...extra });
const WEATHER = [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' }, unit: { type: 'string', enum: ['f', 'c'] }, days: { type: 'integer' }, hourly: { type: 'boolean' } }, required: ['city', 'unit', 'days'] } } }];
const WEATHER_ARGS = '{"city":"mock","unit":"f","days":1}';
const chunkOf = (id, model, delta, finish = null) => ({ id, object: 'chat.completion.chunk', created: 1700000000, model, choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }] });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Reads a raw HTTP/1.1 response: {status, headers, body, chunks} (chunks only for chunked bodies). */
function parseRaw(raw) {
  const end = raw.indexOf('\r\n\r\n');
  const [statusLine, ...lines] = raw.slice(0, end).split('\r\n');
  const headers = Object.fromEntries(lines.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]));
  let body = raw.slice(end + 4);
  let chunks = null;
  if (headers['transfer-encoding'] === 'chunked') {
    chunks = [];
    for (;;) {
      const eol = body.indexOf('\r\n');
      const size = parseInt(body.slice(0, eol), 16);
      if (Number.isNaN(size) || size === 0) break;
      chunks.push(body.slice(eol + 2, eol + 2 + size));
      assert.equal(body.slice(eol + 2 + size, eol + 4 + size), '\r\n');
      body = body.slice(eol + 4 + size);
    }
  }
  return { status: Number(statusLine.split(' ')[1]), statusLine, headers, body, chunks };
}

// ---- chat completions ----

test('a chat completion is a fixed function of the request: id, content, usage', async () => {
  const a = await postJson(`${mock.v1}/chat/completions`, chat());
  const b = await postJson(`${mock.v1}/chat/completions`, chat());
  assert.equal(a.status, 200);
  assert.equal(a.headers.get('content-type'), 'application/json');
  assert.equal(a.text, b.text);
  assert.deepEqual(a.json, {
    id: chatId(chat()), object: 'chat.completion', created: 1700000000, model: 'gpt-4o-mini',
    choices: [{ index: 0, message: { role: 'assistant', content: 'Mock reply to: Say hello to the world', refusal: null }, logprobs: null, finish_reason: 'stop' }],
    // prompt: 5 words + 4 for the one message; completion: 8 words.
    usage: { prompt_tokens: 9, completion_tokens: 8, total_tokens: 17 },
  });
});

test('the reply repeats the last message, cut to 64 characters (not bytes), and counts every message', async () => {
  const long = 'é'.repeat(70);
  const body = { model: 'm', messages: [{ role: 'system', content: 'be brief' }, { role: 'user', content: [{ type: 'text', text: 'first part' }, { type: 'text', text: long }] }] };
  const r = await postJson(`${mock.v1}/chat/completions`, body);
  assert.equal(r.json.choices[0].message.content, `Mock reply to: first part ${'é'.repeat(53)}`);
  assert.deepEqual(r.json.usage, { prompt_tokens: (2 + 4) + (3 + 4), completion_tokens: 6, total_tokens: 19 });
});

test('max_tokens cuts the reply after that many words, with finish_reason length', async () => {
  const r = await postJson(`${mock.v1}/chat/completions`, chat({ max_tokens: 3 }));
  assert.equal(r.json.choices[0].message.content, 'Mock reply to:');
  assert.equal(r.json.choices[0].finish_reason, 'length');
  assert.deepEqual(r.json.usage, { prompt_tokens: 9, completion_tokens: 3, total_tokens: 12 });
  const exact = await postJson(`${mock.v1}/chat/completions`, chat({ max_tokens: 8 }));
  assert.equal(exact.json.choices[0].finish_reason, 'stop');
});

test('max_completion_tokens takes precedence over max_tokens', async () => {
  const r = await postJson(`${mock.v1}/chat/completions`, chat({ max_tokens: 3, max_completion_tokens: 5 }));
  assert.equal(r.json.choices[0].message.content, 'Mock reply to: Say hello');
  assert.equal(r.json.choices[0].finish_reason, 'length');
});

test('a stream sends the role, a chunk per word, the finish, the usage when asked, and [DONE]', async () => {
  const body = chat({ stream: true, stream_options: { include_usage: true } });
  const r = await postJson(`${mock.v1}/chat/completions`, body);
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('content-type'), 'text/event-stream');
  const events = sseData(r.text);
  assert.equal(events.at(-1), '[DONE]');
  const id = chatId(body);
  const words = ['Mock ', 'reply ', 'to: ', 'Say ', 'hello ', 'to ', 'the ', 'world'];
  assert.deepEqual(events.slice(0, -1).map((e) => JSON.parse(e)), [
    chunkOf(id, 'gpt-4o-mini', { role: 'assistant', content: '' }),
    ...words.map((w) => chunkOf(id, 'gpt-4o-mini', { content: w })),
    chunkOf(id, 'gpt-4o-mini', {}, 'stop'),
    { id, object: 'chat.completion.chunk', created: 1700000000, model: 'gpt-4o-mini', choices: [], usage: { prompt_tokens: 9, completion_tokens: 8, total_tokens: 17 } },
  ]);
});

test('without include_usage a stream has no usage chunk', async () => {
  const r = await postJson(`${mock.v1}/chat/completions`, chat({ stream: true, max_tokens: 2 }));
  const events = sseData(r.text);
  assert.deepEqual(events.slice(0, -1).map((e) => JSON.parse(e).choices[0].delta), [{ role: 'assistant', content: '' }, { content: 'Mock ' }, { content: 'reply' }, {}]);
  assert.equal(JSON.parse(events.at(-2)).choices[0].finish_reason, 'length');
  assert.equal(events.at(-1), '[DONE]');
});

test('each SSE event is its own HTTP chunk, then the terminating chunk', async () => {
  const body = JSON.stringify(chat({ stream: true, max_tokens: 2 }));
  const raw = await rawHttp(mock.port, `POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
  const res = parseRaw(raw);
  assert.equal(res.headers['transfer-encoding'], 'chunked');
  assert.equal(res.headers['cache-control'], 'no-cache');
  assert.equal(res.chunks.length, 5); // role, two words, finish, [DONE]
  for (const c of res.chunks) assert.match(c, /^data: [^\n]+\n\n$/);
  assert.equal(res.chunks[4], 'data: [DONE]\n\n');
  assert.ok(raw.endsWith('\r\n0\r\n\r\n'));
});

test('tokens_per_sec paces the streamed words', async () => {
  await mock.configure({ tokens_per_sec: 20 });
  try {
    const t0 = Date.now();
    const r = await postJson(`${mock.v1}/chat/completions`, chat({ stream: true }));
    const ms = Date.now() - t0;
    assert.equal(sseData(r.text).length, 11);
    assert.ok(ms >= 8 * 50 - 20, `${ms} ms for 8 words at 20/s`);
    assert.ok(ms < 400 + 2000 * SLOW, `${ms} ms`);
  } finally {
    await mock.configure({ tokens_per_sec: 0 });
  }
});

// ---- tools ----

test('with tools it calls the first tool with arguments that fit its schema', async () => {
  const body = chat({ tools: WEATHER });
  const r = await postJson(`${mock.v1}/chat/completions`, body);
  assert.deepEqual(r.json.choices, [{
    index: 0,
    message: { role: 'assistant', content: null, tool_calls: [{ id: callId(body), type: 'function', function: { name: 'get_weather', arguments: WEATHER_ARGS } }], refusal: null },
    logprobs: null, finish_reason: 'tool_calls',
  }]);
  // completion: the arguments' one word + 4.
  assert.deepEqual(r.json.usage, { prompt_tokens: 9, completion_tokens: 5, total_tokens: 14 });
});

test('tool arguments follow nested schemas: objects, arrays, bounds, enums, const, anyOf, nullable types', async () => {
  const parameters = {
    type: 'object',
    properties: {
      name: { type: 'string', minLength: 6 },
      code: { type: 'string', maxLength: 2 },
      count: { type: 'integer', minimum: 3 },
      ratio: { type: 'number', maximum: 1 },
      flag: { type: 'boolean' },
      mode: { enum: ['fast', 'slow'] },
      fixed: { const: 42 },
      either: { anyOf: [{ type: 'integer', exclusiveMinimum: 5 }, { type: 'string' }] },
      maybe: { type: ['null', 'string'] },
      tags: { type: 'array', items: { type: 'string' }, minItems: 2 },
      rows: { type: 'array', items: { type: 'object', properties: { x: { type: 'number' }, y: { type: 'integer' } }, required: ['y'] } },
      where: { type: 'object', properties: { lat: { type: 'number' }, lon: { type: 'number' } } },
    },
  };
  const r = await postJson(`${mock.v1}/chat/completions`, chat({ tools: [{ type: 'function', function: { name: 'f', parameters } }] }));
  assert.deepEqual(JSON.parse(r.json.choices[0].message.tool_calls[0].function.arguments), {
    name: 'mockmo', code: 'mo', count: 3, ratio: 1, flag: true, mode: 'fast', fixed: 42, either: 6, maybe: 'mock',
    tags: ['mock', 'mock'], rows: [{ y: 1 }], where: { lat: 1.5, lon: 1.5 },
  });
});

test('tool_choice picks the named tool; "none" answers in text', async () => {
  const tools = [...WEATHER, { type: 'function', function: { name: 'get_time', parameters: { type: 'object', properties: { zone: { type: 'string' } }, required: ['zone'] } } }];
  const named = await postJson(`${mock.v1}/chat/completions`, chat({ tools, tool_choice: { type: 'function', function: { name: 'get_time' } } }));
  assert.deepEqual(named.json.choices[0].message.tool_calls[0].function, { name: 'get_time', arguments: '{"zone":"mock"}' });
  const none = await postJson(`${mock.v1}/chat/completions`, chat({ tools, tool_choice: 'none' }));
  assert.equal(none.json.choices[0].message.content, 'Mock reply to: Say hello to the world');
  assert.equal(none.json.choices[0].finish_reason, 'stop');
});

test('a streamed tool call sends its head, then the arguments in three pieces', async () => {
  const body = chat({ tools: WEATHER, stream: true });
  const r = await postJson(`${mock.v1}/chat/completions`, body);
  const events = sseData(r.text);
  const id = chatId(body);
  const third = Math.ceil(WEATHER_ARGS.length / 3);
  const pieces = [0, 1, 2].map((i) => WEATHER_ARGS.slice(i * third, (i + 1) * third));
  assert.deepEqual(events.slice(0, -1).map((e) => JSON.parse(e)), [
    chunkOf(id, 'gpt-4o-mini', { role: 'assistant', content: null }),
    chunkOf(id, 'gpt-4o-mini', { tool_calls: [{ index: 0, id: callId(body), type: 'function', function: { name: 'get_weather', arguments: '' } }] }),
    ...pieces.map((p) => chunkOf(id, 'gpt-4o-mini', { tool_calls: [{ index: 0, function: { arguments: p } }] })),
    chunkOf(id, 'gpt-4o-mini', {}, 'tool_calls'),
  ]);
  assert.equal(events.at(-1), '[DONE]');
});

test('after a tool result it answers in text about that result', async () => {
  const r = await postJson(`${mock.v1}/chat/completions`, {
    model: 'gpt-4o-mini', tools: WEATHER,
    messages: [{ role: 'user', content: 'weather?' }, { role: 'assistant', content: null, tool_calls: [{ id: 'c1', type: 'function', function: { name: 'get_weather', arguments: '{}' } }] }, { role: 'tool', tool_call_id: 'c1', content: '21 degrees' }],
  });
  assert.equal(r.json.choices[0].message.content, 'Mock reply to tool result: 21 degrees');
  assert.equal(r.json.choices[0].finish_reason, 'stop');
  assert.deepEqual(r.json.usage, { prompt_tokens: 5 + 4 + 6, completion_tokens: 7, total_tokens: 22 });
});

test('a malformed chat request gets a 400 in OpenAI\'s error shape naming the field', async () => {
  const cases = [
    ['{"model":', { message: 'The body of the request is not a JSON object.', type: 'invalid_request_error', param: null, code: 'invalid_json' }],
    [{ messages: [] }, { message: "Missing required parameter: 'model'.", type: 'invalid_request_error', param: 'model', code: 'missing_required_parameter' }],
    [{ model: 'm' }, { message: "Missing required parameter: 'messages'.", type: 'invalid_request_error', param: 'messages', code: 'missing_required_parameter' }],
    [{ model: 'm', messages: 'hi' }, { message: "Invalid type for 'messages': expected an array.", type: 'invalid_request_error', param: 'messages', code: 'invalid_type' }],
    [{ model: 'm', messages: [] }, { message: "Invalid 'messages': empty array. Expected at least one message.", type: 'invalid_request_error', param: 'messages', code: 'empty_array' }],
  ];
  for (const [body, error] of cases) {
    const r = await postJson(`${mock.v1}/chat/completions`, body);
    assert.equal(r.status, 400);
    assert.deepEqual(r.json, { error });
  }
});

// ---- embeddings, models, echo ----

test('embeddings are the documented hash vectors: unit length, 8 dimensions unless asked', async () => {
  const r = await postJson(`${mock.v1}/embeddings`, { model: 'text-embedding-3-small', input: ['alpha', 'beta gamma'] });
  assert.deepEqual(r.json, {
    object: 'list',
    data: [{ object: 'embedding', index: 0, embedding: embedding('alpha') }, { object: 'embedding', index: 1, embedding: embedding('beta gamma') }],
    model: 'text-embedding-3-small',
    usage: { prompt_tokens: 3, total_tokens: 3 },
  });
  assert.ok(Math.abs(Math.hypot(...r.json.data[0].embedding) - 1) < 1e-5);
  const one = await postJson(`${mock.v1}/embeddings`, { model: 'e', input: 'alpha', dimensions: 3 });
  assert.deepEqual(one.json.data[0].embedding, embedding('alpha', 3));
});

test('a token array is one input, its length the token count', async () => {
  const r = await postJson(`${mock.v1}/embeddings`, { model: 'e', input: [5, 6, 7] });
  assert.deepEqual(r.json.data.map((d) => d.embedding), [embedding('[5,6,7]')]);
  assert.deepEqual(r.json.usage, { prompt_tokens: 3, total_tokens: 3 });
  const two = await postJson(`${mock.v1}/embeddings`, { model: 'e', input: [[1, 2], [3]] });
  assert.deepEqual(two.json.data.map((d) => d.embedding), [embedding('[1,2]'), embedding('[3]')]);
});

test('encoding_format base64 carries the same values as little-endian float32s', async () => {
  const r = await postJson(`${mock.v1}/embeddings`, { model: 'e', input: 'alpha', dimensions: 4, encoding_format: 'base64' });
  const buf = Buffer.from(r.json.data[0].embedding, 'base64');
  assert.equal(buf.length, 16);
  assert.deepEqual([0, 1, 2, 3].map((i) => buf.readFloatLE(4 * i)), embedding('alpha', 4).map(Math.fround));
});

test('bad embeddings requests name the field', async () => {
  for (const [body, param] of [[{ input: 'x' }, 'model'], [{ model: 'e' }, 'input'], [{ model: 'e', input: [] }, 'input'], [{ model: 'e', input: 'x', dimensions: 0 }, 'dimensions'], [{ model: 'e', input: 'x', encoding_format: 'hex' }, 'encoding_format']]) {
    const r = await postJson(`${mock.v1}/embeddings`, body);
    assert.equal(r.status, 400, JSON.stringify(body));
    assert.equal(r.json.error.param, param);
  }
});

test('/v1/models lists the mock models', async () => {
  const r = await fetch(`${mock.v1}/models`);
  const model = (id) => ({ id, object: 'model', created: 1700000000, owned_by: 'gyre-mock' });
  assert.deepEqual(await r.json(), { object: 'list', data: ['gpt-4o-mini', 'gpt-4o', 'text-embedding-3-small', 'mock-1'].map(model) });
});

test('other /v1 paths echo the method, path and body size; others are 404', async () => {
  const post = await postJson(`${mock.v1}/completions`, { model: 'x', input: 'y' });
  assert.deepEqual(post.json, { object: 'mock.echo', method: 'POST', path: '/v1/completions', body_bytes: 25 });
  const get = await (await fetch(`${mock.v1}/files?limit=2`)).json();
  assert.deepEqual(get, { object: 'mock.echo', method: 'GET', path: '/v1/files?limit=2', body_bytes: 0 });
  const other = await fetch(`${mock.url}/v2/x`);
  assert.equal(other.status, 404);
  assert.equal((await other.json()).error.code, 'unknown_url');
});

// ---- HTTP ----

test('x-request-id is echoed on answers and on streams', async () => {
  const r = await postJson(`${mock.v1}/chat/completions`, chat(), { 'x-request-id': 'req-123' });
  assert.equal(r.headers.get('x-request-id'), 'req-123');
  const s = await postJson(`${mock.v1}/chat/completions`, chat({ stream: true }), { 'x-request-id': 'req-456' });
  assert.equal(s.headers.get('x-request-id'), 'req-456');
});

test('keep-alive: pipelined requests on one connection, chunked body and 100-continue included', async () => {
  const body = '{"model":"m","messages":[{"role":"user","content":"chunked body"}]}';
  const raw = await rawHttp(mock.port,
    'GET /v1/a HTTP/1.1\r\nHost: x\r\n\r\n' +
    `POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n${body.slice(0, 16)}\r\n${(body.length - 16).toString(16)};ext=1\r\n${body.slice(16)}\r\n0\r\nTrailer: t\r\n\r\n` +
    'POST /v1/b HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc');
  const parts = raw.split(/(?=HTTP\/1\.1 )/);
  assert.deepEqual(parts.map((p) => p.split('\r\n')[0]), ['HTTP/1.1 200 OK', 'HTTP/1.1 200 OK', 'HTTP/1.1 100 Continue', 'HTTP/1.1 200 OK']);
  assert.equal(JSON.parse(parseRaw(parts[1]).body).choices[0].message.content, 'Mock reply to: chunked body');
  const last = parseRaw(parts[3]);
  assert.equal(last.headers.connection, 'close');
  assert.deepEqual(JSON.parse(last.body), { object: 'mock.echo', method: 'POST', path: '/v1/b', body_bytes: 3 });
});

test('requests past the bounds or the syntax get 413, 431, 414 or 400 and the connection closes', async () => {
  const ask = async (bytes) => parseRaw(await rawHttp(mock.port, bytes, 3000 * SLOW));
  const big = await ask('POST /v1/x HTTP/1.1\r\nHost: x\r\nContent-Length: 16777217\r\n\r\n');
  assert.equal(big.statusLine, 'HTTP/1.1 413 Content Too Large');
  assert.equal(big.headers.connection, 'close');
  assert.equal(JSON.parse(big.body).error.type, 'invalid_request_error');
  assert.equal((await ask(`GET /v1/x HTTP/1.1\r\nX-Big: ${'a'.repeat(70000)}\r\n\r\n`)).status, 431);
  assert.equal((await ask(`GET /v1/${'a'.repeat(3000)} HTTP/1.1\r\n\r\n`)).status, 414);
  assert.equal((await ask('GET /v1/x\r\n\r\n')).status, 400);
  assert.equal((await ask('POST /v1/x HTTP/1.1\r\nContent-Length: 1x\r\n\r\n')).status, 400);
  assert.equal((await ask('POST /v1/x HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab')).status, 400);
  assert.equal((await ask('POST /v1/x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n')).status, 400);
  assert.equal((await ask('GET /v1/x HTTP/1.1\r\nBad Name: v\r\n\r\n')).status, 400);
  // And it still serves.
  assert.equal((await fetch(`${mock.v1}/models`)).status, 200);
});

// ---- statistics and configuration ----

test('stats count requests per path, model and key, and keep the last request as sent', async () => {
  // The earlier tests' connections (a 413 that lingers, a closed keep-alive) finish first: on a loaded machine
  // their last bytes could otherwise be counted after the reset.
  for (let i = 0; i < 500 && (await mock.stats()).active !== 0; i++) await new Promise((r) => setTimeout(r, 10));
  await new Promise((r) => setTimeout(r, 50));
  await fetch(`${mock.url}/_mock/reset`, { method: 'POST' });
  await postJson(`${mock.v1}/chat/completions`, chat(), { authorization: 'Bearer sk-one' });
  await postJson(`${mock.v1}/chat/completions`, chat({ model: 'gpt-4o' }), { authorization: 'Bearer sk-two' });
  await postJson(`${mock.v1}/embeddings`, { model: 'e', input: 'x' }, { 'api-key': 'sk-one' });
  await fetch(`${mock.v1}/models?x=1`, { headers: { 'x-api-key': 'sk-three' } });
  await mock.configure({}); // /_mock requests are not counted
  const body = '{"model":"gpt-4o","input":"z"}';
  await rawHttp(mock.port, `POST /v1/embeddings HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer sk-two\r\nX-Dup: a\r\nx-dup: b\r\nConnection: close\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
  assert.deepEqual(await mock.stats(), {
    requests: 5,
    paths: { '/v1/chat/completions': 2, '/v1/embeddings': 2, '/v1/models': 1 },
    models: { 'gpt-4o-mini': 1, 'gpt-4o': 2, e: 1 },
    keys: { 'sk-one': 2, 'sk-two': 2, 'sk-three': 1 },
    last_request: {
      method: 'POST', path: '/v1/embeddings',
      headers: { host: 'h', authorization: 'Bearer sk-two', 'x-dup': 'a, b', connection: 'close', 'content-length': String(body.length) },
      body,
    },
    // The five answers, heads included: the mock's answers are the same bytes on every run.
    bytes_sent: 1802,
    active: 0,
  });
  const reset = await (await fetch(`${mock.url}/_mock/reset`, { method: 'POST' })).json();
  assert.deepEqual(reset, { requests: 0, paths: {}, models: {}, keys: {}, last_request: null, bytes_sent: 0, active: 0 });
});

test('/_mock/config changes the options at run time and refuses bad ones whole', async () => {
  assert.deepEqual(await (await fetch(`${mock.url}/_mock/config`)).json(), { latency_ms: 0, tokens_per_sec: 0, fault: null, fault_rate: 1, fault_key: null });
  try {
    assert.deepEqual(await mock.configure({ latency_ms: 300, fault_rate: 0.25 }), { latency_ms: 300, tokens_per_sec: 0, fault: null, fault_rate: 0.25, fault_key: null });
    const t0 = Date.now();
    assert.equal((await postJson(`${mock.v1}/chat/completions`, chat())).status, 200);
    assert.ok(Date.now() - t0 >= 290, `${Date.now() - t0} ms`);
    const bad = [
      [{ fault: 'explode' }, 'fault', 'fault must be null or one of 429, 500, 503, 529, reset, hang, truncate, slow-first-byte, echo_headers, endless-error, endless-line, endless-head'],
      [{ latency_ms: 0, fault_rate: 2 }, 'fault_rate', 'fault_rate must be a number from 0 to 1'],
      [{ latency_ms: -1 }, 'latency_ms', 'latency_ms must be a whole number of milliseconds from 0 to 600000'],
      [{ tokens_per_sec: '5' }, 'tokens_per_sec', 'tokens_per_sec must be a number from 0 to 1000000'],
      [{ latencyMs: 5 }, 'latencyMs', 'unknown option: the options are latency_ms, tokens_per_sec, fault, fault_rate and fault_key'],
    ];
    for (const [body, param, message] of bad) {
      const r = await postJson(`${mock.url}/_mock/config`, body);
      assert.equal(r.status, 400);
      assert.deepEqual(r.json, { error: { message, type: 'invalid_request_error', param, code: 'invalid_value' } });
    }
    assert.deepEqual(await (await fetch(`${mock.url}/_mock/config`)).json(), { latency_ms: 300, tokens_per_sec: 0, fault: null, fault_rate: 0.25, fault_key: null });
  } finally {
    await mock.configure({ latency_ms: 0, fault_rate: 1 });
  }
});

// ---- faults ----

async function withFault(fault, fn, extra = {}) {
  await mock.configure({ fault, fault_rate: 1, ...extra });
  try { await fn(); } finally { await mock.configure({ fault: null, fault_rate: 1, latency_ms: 0 }); }
}

test('fault 429 answers with Retry-After and OpenAI\'s rate-limit error', () => withFault('429', async () => {
  const r = await postJson(`${mock.v1}/chat/completions`, chat());
  assert.equal(r.status, 429);
  assert.equal(r.headers.get('retry-after'), '1');
  assert.deepEqual(r.json, { error: { message: 'Rate limit reached for requests (gyre-mock fault 429).', type: 'requests', param: null, code: 'rate_limit_exceeded' } });
}));

test('faults 500 and 503 answer with that status and a server_error', async () => {
  const messages = {
    500: 'The server had an error while processing your request (gyre-mock fault 500).',
    503: 'The server is overloaded (gyre-mock fault 503).',
  };
  for (const f of ['500', '503']) await withFault(f, async () => {
    const r = await postJson(`${mock.v1}/embeddings`, { model: 'e', input: 'x' });
    assert.equal(r.status, Number(f));
    assert.deepEqual(r.json, { error: { message: messages[f], type: 'server_error', param: null, code: null } });
  });
});

test('fault echo_headers answers 400 whose message repeats the request line and every header, credentials included', () => withFault('echo_headers', async () => {
  const r = await postJson(`${mock.v1}/chat/completions`, chat(), { authorization: 'Bearer sk-echo-me' });
  assert.equal(r.status, 400);
  assert.equal(r.json.error.type, 'invalid_request_error');
  assert.match(r.json.error.message, /^bad request \(gyre-mock fault echo_headers\): POST \/v1\/chat\/completions; host: 127\.0\.0\.1:\d+; /);
  assert.ok(r.json.error.message.includes('; authorization: Bearer sk-echo-me'), r.json.error.message);
}));

test('faults never touch /_mock paths', () => withFault('500', async () => {
  const r = await fetch(`${mock.url}/_mock/config`);
  assert.equal(r.status, 200);
  assert.deepEqual(await r.json(), { latency_ms: 0, tokens_per_sec: 0, fault: '500', fault_rate: 1, fault_key: null });
}));

test('fault reset resets the connection before any byte of an answer', () => withFault('reset', async () => {
  await assert.rejects(postJson(`${mock.v1}/chat/completions`, chat()), (e) => e.cause?.code === 'ECONNRESET' || /other side closed|ECONNRESET/.test(String(e.cause)));
  const seen = await new Promise((resolve) => {
    let bytes = 0;
    const s = net.connect(mock.port, '127.0.0.1', () => s.write('GET /v1/models HTTP/1.1\r\nHost: x\r\n\r\n'));
    s.on('data', (d) => { bytes += d.length; });
    s.on('error', (e) => resolve({ code: e.code, bytes }));
    s.on('close', () => resolve({ code: 'closed', bytes }));
  });
  assert.deepEqual(seen, { code: 'ECONNRESET', bytes: 0 });
}));

test('fault hang reads the request and never answers', () => withFault('hang', async () => {
  await assert.rejects(fetch(`${mock.v1}/chat/completions`, { method: 'POST', body: JSON.stringify(chat()), signal: AbortSignal.timeout(500) }), { name: 'TimeoutError' });
  assert.equal((await mock.stats()).last_request.body, JSON.stringify(chat()));
}));

test('fault truncate cuts a stream after two words, before the finish and [DONE]', () => withFault('truncate', async () => {
  const r = await fetch(`${mock.v1}/chat/completions`, { method: 'POST', body: JSON.stringify(chat({ stream: true })), signal: AbortSignal.timeout(5000 * SLOW) });
  assert.equal(r.status, 200);
  let text = '';
  await assert.rejects((async () => { for await (const c of r.body) text += new TextDecoder().decode(c); })(), /terminated/);
  assert.deepEqual(sseData(text).map((e) => JSON.parse(e).choices[0].delta), [{ role: 'assistant', content: '' }, { content: 'Mock ' }, { content: 'reply ' }]);
}));

test('fault truncate sends half of a promised body, on every /v1 answer', () => withFault('truncate', async () => {
  const body = JSON.stringify({ model: 'e', input: 'x' });
  const raw = await rawHttp(mock.port, `POST /v1/embeddings HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.length}\r\n\r\n${body}`, 3000 * SLOW);
  const res = parseRaw(raw);
  assert.equal(res.status, 200);
  assert.equal(res.body.length, Math.floor(Number(res.headers['content-length']) / 2));
  await assert.rejects(postJson(`${mock.v1}/chat/completions`, chat()));
}));

/** Reads a raw answer until `enough` bytes came, then closes; resolves with what came. */
function readThenClose(port, request, enough) {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => s.write(request));
    let got = Buffer.alloc(0);
    s.on('data', (d) => {
      got = Buffer.concat([got, d]);
      if (got.length >= enough) { s.destroy(); resolve(got.toString('latin1')); }
    });
    s.on('error', () => {});
  });
}

for (const [fault, start] of [
  ['endless-error', 'HTTP/1.1 500 Internal Server Error\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n'],
  ['endless-line', 'HTTP/1.1 200 '],
  ['endless-head', 'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nx-mock-fill: xxxx'],
]) {
  test(`fault ${fault} sends until the client closes, counted in bytes_sent, and the request is active until then`, () => withFault(fault, async () => {
    await fetch(`${mock.url}/_mock/reset`, { method: 'POST' });
    const body = JSON.stringify(chat({ stream: true }));
    const raw = await readThenClose(mock.port, `POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.length}\r\n\r\n${body}`, 200000);
    assert.ok(raw.startsWith(start), raw.slice(0, 200));
    const opening = raw.slice(0, 400);
    if (fault === 'endless-line') assert.match(opening, /\r\n\r\n84\r\ndata: \{"id":"chatcmpl-mock-endless","object":"chat.completion.chunk","created":1700000000,"choices":\[\{"index":0,"delta":\{"content":"\r\n4000\r\nxxxx/);
    if (fault === 'endless-error') assert.match(opening, /\r\n\r\n81\r\n\{"error":\{"type":"server_error","message":"The server had an error while processing your request \(gyre-mock fault endless-error\) \r\n4000\r\nxxxx/);
    if (fault !== 'endless-head') assert.doesNotMatch(raw.slice(400), /[^x0-9a-f\r\n]/); // nothing but x in chunks
    let stats;
    const deadline = Date.now() + 3000 * SLOW;
    do stats = await mock.stats(); while (stats.active !== 0 && Date.now() < deadline);
    assert.equal(stats.active, 0);
    assert.ok(stats.bytes_sent >= 200000, `bytes_sent ${stats.bytes_sent}`);
    assert.equal((await mock.stats()).bytes_sent, stats.bytes_sent);
  }));
}

test('fault slow-first-byte holds the answer for 2 s', () => withFault('slow-first-byte', async () => {
  const t0 = Date.now();
  const r = await postJson(`${mock.v1}/chat/completions`, chat());
  const ms = Date.now() - t0;
  assert.equal(r.status, 200);
  assert.equal(r.json.choices[0].message.content, 'Mock reply to: Say hello to the world');
  assert.ok(ms >= 1900 && ms < 2000 + 1500 * SLOW, `${ms} ms`);
}));

test('a fault rate of 0.5 faults exactly every other request, counted from the setting', () => withFault('503', async () => {
  const statuses = [];
  for (let i = 0; i < 6; i++) statuses.push((await postJson(`${mock.v1}/chat/completions`, chat())).status);
  assert.deepEqual(statuses, [200, 503, 200, 503, 200, 503]);
}, { fault_rate: 0.5 }));

// ---- the process ----

test('command-line options apply from the start', async () => {
  const m = await startMock(['--fault', '429', '--fault-rate', '0.5', '--latency-ms', '100', '--tokens-per-sec', '1000']);
  try {
    assert.deepEqual(await (await fetch(`${m.url}/_mock/config`)).json(), { latency_ms: 100, tokens_per_sec: 1000, fault: '429', fault_rate: 0.5, fault_key: null });
    const t0 = Date.now();
    const statuses = [];
    for (let i = 0; i < 2; i++) statuses.push((await postJson(`${m.v1}/chat/completions`, chat())).status);
    assert.deepEqual(statuses, [200, 429]);
    assert.ok(Date.now() - t0 >= 190);
  } finally {
    assert.equal((await m.stop()).code, 0);
  }
});

test('bad command lines exit 2 with a message; --help exits 0', () => {
  const run = (args) => spawnSync(bin('gyre-mock'), args, { encoding: 'utf8', timeout: 5000 * SLOW });
  const cases = [
    [[], 'gyre-mock: --listen HOST:PORT is required'],
    [['--listen', '127.0.0.1'], "gyre-mock: --listen must be HOST:PORT (a port from 0 to 65535), got '127.0.0.1'"],
    [['--listen', '127.0.0.1:0', '--fault', 'boom'], 'gyre-mock: --fault: fault must be one of 429, 500, 503, 529, reset, hang, truncate, slow-first-byte, echo_headers, endless-error, endless-line, endless-head'],
    [['--listen', '127.0.0.1:0', '--fault-rate', '1.5'], 'gyre-mock: --fault-rate: fault_rate must be a number from 0 to 1'],
    [['--listen', '127.0.0.1:0', '--latency-ms', 'soon'], 'gyre-mock: --latency-ms: latency_ms must be a whole number of milliseconds from 0 to 600000'],
    [['--listen', '127.0.0.1:0', '--tls-cert', 'c.pem'], 'gyre-mock: --tls-cert and --tls-key go together'],
    [['--listen', '127.0.0.1:0', '--bogus', '1'], "gyre-mock: unknown option '--bogus'"],
  ];
  for (const [args, message] of cases) {
    const r = run(args);
    assert.equal(r.status, 2, args.join(' '));
    assert.equal(r.stderr.split('\n')[0], message);
  }
  const help = run(['--help']);
  assert.equal(help.status, 0);
  assert.match(help.stdout, /^usage: gyre-mock --listen HOST:PORT/);
});

test('SIGTERM ends a hung request and a long wait at once, and the mock exits 0', async () => {
  const m = await startMock(['--latency-ms', '60000']);
  await m.configure({ fault: 'hang' });
  const hung = fetch(`${m.v1}/models`).catch((e) => e);
  await sleep(200 * SLOW); // the request has met the fault before it is cleared
  await m.configure({ fault: null });
  const waiting = fetch(`${m.v1}/models`).catch((e) => e);
  await sleep(200);
  const t0 = Date.now();
  const res = await m.stop();
  assert.equal(res.code, 0);
  assert.ok(Date.now() - t0 < 1500 * SLOW, `${Date.now() - t0} ms to stop`);
  assert.ok((await hung) instanceof Error);
  assert.ok((await waiting) instanceof Error);
  assert.match(res.output, /^gyre-mock listening on http:\/\/127\.0\.0\.1:\d+\n/);
});

test('with --tls-cert and --tls-key it serves https', async () => {
  const dir = tmpdir('gyre-mock-tls-');
  try {
    const key = path.join(dir, 'k.pem'), crt = path.join(dir, 'c.pem');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', crt, '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-days', '1'], { stdio: 'ignore' });
    const m = await startMock(['--tls-cert', crt, '--tls-key', key], { tls: true });
    try {
      const ca = fs.readFileSync(crt);
      const request = (p, body) => new Promise((resolve, reject) => {
        const req = https.request(`${m.url}${p}`, { ca, method: body ? 'POST' : 'GET', timeout: 5000 * SLOW }, (res) => {
          let b = ''; res.on('data', (d) => { b += d; }); res.on('end', () => resolve({ status: res.statusCode, body: b }));
        });
        req.on('error', reject);
        req.end(body);
      });
      const models = await request('/v1/models');
      assert.equal(models.status, 200);
      assert.deepEqual(JSON.parse(models.body).data.map((d) => d.id), ['gpt-4o-mini', 'gpt-4o', 'text-embedding-3-small', 'mock-1']);
      const streamed = await request('/v1/chat/completions', JSON.stringify(chat({ stream: true })));
      assert.deepEqual(sseData(streamed.body).slice(1, -2).map((e) => JSON.parse(e).choices[0].delta.content).join(''), 'Mock reply to: Say hello to the world');
      assert.equal(sseData(streamed.body).at(-1), '[DONE]');
    } finally {
      const res = await m.stop();
      assert.equal(res.code, 0);
      assert.match(res.output, /^gyre-mock listening on https:\/\/127\.0\.0\.1:\d+\n/);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
