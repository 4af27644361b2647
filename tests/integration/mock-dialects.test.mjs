// gyre-mock in every provider dialect gyre translates to: Anthropic's
// Messages API, Gemini's generateContent, Bedrock's Converse (SigV4-signed,
// with its binary event stream) and Azure OpenAI.  Each answers the same
// conversation with the same text and the same token counts as the OpenAI
// path (docs/mock.md), so gyre's translations can be checked against one
// another; each stages the same faults in its own error shape.
//
// The SigV4 signer and the event-stream reader here are written from AWS's
// documentation with node:crypto, apart from both the mock's verifier and
// gyre's own signer, so that a mistake in one is caught by another.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import net from 'node:net';
import { spawnSync } from 'node:child_process';
import { startMock, postJson, sseData, bin, SLOW } from '../lib/harness.mjs';
import { utf8, fnv1a, hex8, chatId } from '../lib/mock-rules.mjs';

let mock;
before(async () => { mock = await startMock(); });
after(async () => { assert.equal((await mock.stop()).code, 0); });

// ---- the documented rules, restated ----

const hashOf = (body) => fnv1a(utf8(typeof body === 'string' ? body : JSON.stringify(body)));
const callHashOf = (body) => fnv1a(utf8('call'), hashOf(body));
const msgId = (body) => `msg_mock_${hex8(hashOf(body))}`;
const tooluId = (body) => `toolu_mock_${hex8(callHashOf(body))}`;
const WEATHER_SCHEMA = { type: 'object', properties: { city: { type: 'string' }, unit: { type: 'string', enum: ['f', 'c'] }, days: { type: 'integer' }, hourly: { type: 'boolean' } }, required: ['city', 'unit', 'days'] };
const WEATHER_ARGS = { city: 'mock', unit: 'f', days: 1 };
const WEATHER_JSON = JSON.stringify(WEATHER_ARGS);
const thirds = (s) => { const n = Math.ceil(s.length / 3); return [0, 1, 2].map((i) => s.slice(i * n, (i + 1) * n)).filter((p) => p); };
const WORDS = ['Mock ', 'reply ', 'to: ', 'Say ', 'hello ', 'to ', 'the ', 'world'];
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function withFault(fault, fn, extra = {}) {
  await mock.configure({ fault, fault_rate: 1, ...extra });
  try { await fn(); } finally { await mock.configure({ fault: null, fault_rate: 1, latency_ms: 0 }); }
}

/** Parses Anthropic's stream into [{event, data}] (data parsed). */
function sseEvents(text) {
  return text.split('\n\n').filter((b) => b).map((b) => {
    const lines = b.split('\n');
    assert.ok(lines[0].startsWith('event: '), b);
    assert.ok(lines[1].startsWith('data: '), b);
    return { event: lines[0].slice(7), data: JSON.parse(lines[1].slice(6)) };
  });
}

// ---- Anthropic ----

const ANTHROPIC = { 'anthropic-version': '2023-06-01', 'x-api-key': 'sk-ant-test' };
const messages = (extra = {}) => ({ model: 'claude-mock', max_tokens: 100, messages: [{ role: 'user', content: 'Say hello to the world' }], ...extra });
const anthropicUsage = (input, output) => ({ input_tokens: input, output_tokens: output, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 });
const postMessages = (body, headers = ANTHROPIC) => postJson(`${mock.url}/v1/messages`, body, headers);

test('anthropic: a message answers the last user text, with Anthropic\'s message object and usage', async () => {
  const body = messages({ system: 'be brief' });
  const r = await postMessages(body);
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('content-type'), 'application/json');
  assert.deepEqual(r.json, {
    id: msgId(body), type: 'message', role: 'assistant', model: 'claude-mock',
    content: [{ type: 'text', text: 'Mock reply to: Say hello to the world' }],
    stop_reason: 'end_turn', stop_sequence: null,
    // input: the system prompt (2 words + 4) and the message (5 + 4), as OpenAI counts a system message.
    usage: anthropicUsage(15, 8),
  });
});

test('anthropic: system as blocks and content as blocks read their text joined by spaces', async () => {
  const r = await postMessages(messages({ system: [{ type: 'text', text: 'be' }, { type: 'text', text: 'brief' }], messages: [{ role: 'user', content: [{ type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'AAAA' } }, { type: 'text', text: 'first' }, { type: 'text', text: 'second' }] }] }));
  assert.equal(r.json.content[0].text, 'Mock reply to: first second');
  assert.deepEqual(r.json.usage, anthropicUsage(6 + 6, 5));
});

test('anthropic: the key is x-api-key and the model the body\'s, in the statistics', async () => {
  await fetch(`${mock.url}/_mock/reset`, { method: 'POST' });
  await postMessages(messages());
  const s = await mock.stats();
  assert.deepEqual([s.paths, s.models, s.keys], [{ '/v1/messages': 1 }, { 'claude-mock': 1 }, { 'sk-ant-test': 1 }]);
});

test('anthropic: a missing anthropic-version header or required field is a 400 invalid_request_error naming it', async () => {
  const err = (message) => ({ type: 'error', error: { type: 'invalid_request_error', message } });
  const noVersion = await postMessages(messages(), { 'x-api-key': 'k' });
  assert.equal(noVersion.status, 400);
  assert.deepEqual(noVersion.json, err('anthropic-version: header is required'));
  const cases = [
    [{ max_tokens: 5, messages: [] }, 'model: Field required'],
    [{ model: 'm', messages: [{ role: 'user', content: 'x' }] }, 'max_tokens: Field required'],
    [{ model: 'm', max_tokens: 5 }, 'messages: Field required'],
    [{ model: 'm', max_tokens: 5, messages: [] }, 'messages: at least one message is required'],
    [{ model: 'm', max_tokens: 5, messages: [{ role: 'system', content: 'x' }] }, "messages.0.role: Input should be 'user' or 'assistant'"],
    [messages({ messages: [{ role: 'user', content: 'x' }, { role: 'assistant', content: 'Mock ' }] }), 'messages: final assistant content cannot end with trailing whitespace'],
  ];
  for (const [body, message] of cases) {
    const r = await postMessages(body);
    assert.equal(r.status, 400, message);
    assert.deepEqual(r.json, err(message));
  }
});

test('anthropic: with tools it calls the first one with schema-fitting input, stop_reason tool_use', async () => {
  const body = messages({ tools: [{ name: 'get_weather', description: 'w', input_schema: WEATHER_SCHEMA }] });
  const r = await postMessages(body);
  assert.deepEqual(r.json.content, [{ type: 'tool_use', id: tooluId(body), name: 'get_weather', input: WEATHER_ARGS }]);
  assert.equal(r.json.stop_reason, 'tool_use');
  assert.deepEqual(r.json.usage, anthropicUsage(9, 5));
});

test('anthropic: tool_choice names a tool or none', async () => {
  const tools = [{ name: 'get_weather', input_schema: WEATHER_SCHEMA }, { name: 'get_time', input_schema: { type: 'object', properties: { zone: { type: 'string' } }, required: ['zone'] } }];
  const named = await postMessages(messages({ tools, tool_choice: { type: 'tool', name: 'get_time' } }));
  assert.deepEqual([named.json.content[0].name, named.json.content[0].input], ['get_time', { zone: 'mock' }]);
  const none = await postMessages(messages({ tools, tool_choice: { type: 'none' } }));
  assert.deepEqual(none.json.content, [{ type: 'text', text: 'Mock reply to: Say hello to the world' }]);
});

test('anthropic: after a tool_result it answers about the result, counted as OpenAI counts a tool message', async () => {
  const r = await postMessages(messages({
    tools: [{ name: 'get_weather', input_schema: WEATHER_SCHEMA }],
    messages: [
      { role: 'user', content: 'weather?' },
      { role: 'assistant', content: [{ type: 'tool_use', id: 't1', name: 'get_weather', input: {} }] },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: 't1', content: [{ type: 'text', text: '21 degrees' }] }] },
    ],
  }));
  assert.deepEqual(r.json.content, [{ type: 'text', text: 'Mock reply to tool result: 21 degrees' }]);
  assert.equal(r.json.stop_reason, 'end_turn');
  assert.deepEqual(r.json.usage, anthropicUsage(5 + 4 + 6, 7));
});

test('anthropic: max_tokens cuts the words (max_tokens), a stop sequence cuts before it (stop_sequence)', async () => {
  const cut = await postMessages(messages({ max_tokens: 3 }));
  assert.deepEqual([cut.json.content[0].text, cut.json.stop_reason, cut.json.usage.output_tokens], ['Mock reply to:', 'max_tokens', 3]);
  const stop = await postMessages(messages({ stop_sequences: ['world', 'hello'] }));
  assert.deepEqual([stop.json.content[0].text, stop.json.stop_reason, stop.json.stop_sequence, stop.json.usage.output_tokens], ['Mock reply to: Say ', 'stop_sequence', 'hello', 4]);
});

test('anthropic: a stream is exactly Anthropic\'s event sequence, a text_delta per word', async () => {
  const body = messages({ stream: true });
  const r = await postMessages(body);
  assert.equal(r.headers.get('content-type'), 'text/event-stream');
  const start = { id: msgId(body), type: 'message', role: 'assistant', model: 'claude-mock', content: [], stop_reason: null, stop_sequence: null, usage: anthropicUsage(9, 1) };
  assert.deepEqual(sseEvents(r.text), [
    { event: 'message_start', data: { type: 'message_start', message: start } },
    { event: 'content_block_start', data: { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } } },
    { event: 'ping', data: { type: 'ping' } },
    ...WORDS.map((w) => ({ event: 'content_block_delta', data: { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: w } } })),
    { event: 'content_block_stop', data: { type: 'content_block_stop', index: 0 } },
    { event: 'message_delta', data: { type: 'message_delta', delta: { stop_reason: 'end_turn', stop_sequence: null }, usage: { output_tokens: 8 } } },
    { event: 'message_stop', data: { type: 'message_stop' } },
  ]);
});

test('anthropic: a streamed tool_use sends its block, then input_json_delta in three pieces', async () => {
  const body = messages({ stream: true, tools: [{ name: 'get_weather', input_schema: WEATHER_SCHEMA }] });
  const ev = sseEvents((await postMessages(body)).text);
  assert.deepEqual(ev[1].data.content_block, { type: 'tool_use', id: tooluId(body), name: 'get_weather', input: {} });
  assert.deepEqual(ev.filter((e) => e.event === 'content_block_delta').map((e) => e.data.delta), thirds(WEATHER_JSON).map((p) => ({ type: 'input_json_delta', partial_json: p })));
  assert.deepEqual(ev.at(-2).data, { type: 'message_delta', delta: { stop_reason: 'tool_use', stop_sequence: null }, usage: { output_tokens: 5 } });
});

test('anthropic: a prefill is continued: the answer less the prefix, streamed from there, usage only the rest', async () => {
  const body = messages({ messages: [{ role: 'user', content: 'Say hello to the world' }, { role: 'assistant', content: 'Mock reply' }] });
  const r = await postMessages(body);
  assert.deepEqual(r.json.content, [{ type: 'text', text: ' to: Say hello to the world' }]);
  // input: both messages (9 + 6); output: the six words that follow the prefix.
  assert.deepEqual(r.json.usage, anthropicUsage(15, 6));
  const s = sseEvents((await postMessages({ ...body, stream: true })).text);
  assert.deepEqual(s.filter((e) => e.event === 'content_block_delta').map((e) => e.data.delta.text), [' to: ', 'Say ', 'hello ', 'to ', 'the ', 'world']);
  const other = await postMessages(messages({ messages: [{ role: 'user', content: 'Say hello' }, { role: 'assistant', content: 'Something else' }] }));
  assert.equal(other.json.content[0].text, 'Mock reply to: Say hello');
});

test('anthropic: faults answer in Anthropic\'s error shape: 429 rate_limit_error, 529 overloaded_error, 500 and 503 api_error', async () => {
  const cases = [
    ['429', 'rate_limit_error', 'Rate limit reached for requests (gyre-mock fault 429).'],
    ['529', 'overloaded_error', 'Overloaded (gyre-mock fault 529).'],
    ['500', 'api_error', 'The server had an error while processing your request (gyre-mock fault 500).'],
    ['503', 'api_error', 'The server is overloaded (gyre-mock fault 503).'],
  ];
  for (const [fault, type, message] of cases) await withFault(fault, async () => {
    const r = await postMessages(messages());
    assert.equal(r.status, Number(fault));
    assert.equal(r.headers.get('retry-after'), fault === '429' ? '1' : null);
    assert.deepEqual(r.json, { type: 'error', error: { type, message } });
  });
});

test('anthropic: fault truncate stops a stream after two text pieces, without message_stop', () => withFault('truncate', async () => {
  const r = await fetch(`${mock.url}/v1/messages`, { method: 'POST', headers: ANTHROPIC, body: JSON.stringify(messages({ stream: true })) });
  let text = '';
  await assert.rejects((async () => { for await (const c of r.body) text += new TextDecoder().decode(c); })(), /terminated/);
  assert.deepEqual(sseEvents(text).map((e) => e.event), ['message_start', 'content_block_start', 'ping', 'content_block_delta', 'content_block_delta']);
  assert.deepEqual(sseEvents(text).slice(3).map((e) => e.data.delta.text), ['Mock ', 'reply ']);
}));

// ---- Gemini ----

const gemini = (extra = {}) => ({ contents: [{ role: 'user', parts: [{ text: 'Say hello to the world' }] }], ...extra });
const geminiUrl = (model, method, query = '') => `${mock.url}/v1beta/models/${model}:${method}${query}`;
const GOOG = { 'x-goog-api-key': 'goog-key' };
const geminiUsage = (p, c) => ({ promptTokenCount: p, candidatesTokenCount: c, totalTokenCount: p + c });
const geminiId = (body) => `mock-${hex8(hashOf(body))}`;

test('gemini: generateContent answers with a candidate, usageMetadata, the path\'s model and a responseId', async () => {
  const body = gemini({ systemInstruction: { parts: [{ text: 'be brief' }] } });
  const r = await postJson(geminiUrl('gemini-mock', 'generateContent'), body, GOOG);
  assert.equal(r.status, 200);
  assert.deepEqual(r.json, {
    candidates: [{ content: { role: 'model', parts: [{ text: 'Mock reply to: Say hello to the world' }] }, finishReason: 'STOP', index: 0 }],
    usageMetadata: geminiUsage(15, 8),
    modelVersion: 'gemini-mock',
    responseId: geminiId(body),
  });
});

test('gemini: the key is x-goog-api-key or ?key=, the model the path\'s, in the statistics', async () => {
  await fetch(`${mock.url}/_mock/reset`, { method: 'POST' });
  await postJson(geminiUrl('gemini-mock', 'generateContent'), gemini(), GOOG);
  await postJson(geminiUrl('gemini-2', 'generateContent', '?key=query-key'), gemini());
  const s = await mock.stats();
  assert.deepEqual([s.paths, s.models, s.keys], [
    { '/v1beta/models/gemini-mock:generateContent': 1, '/v1beta/models/gemini-2:generateContent': 1 },
    { 'gemini-mock': 1, 'gemini-2': 1 },
    { 'goog-key': 1, 'query-key': 1 },
  ]);
});

test('gemini: with functionDeclarations it answers a functionCall; toolConfig ANY with allowedFunctionNames picks one, NONE answers text', async () => {
  const tools = [{ functionDeclarations: [{ name: 'get_weather', parameters: WEATHER_SCHEMA }, { name: 'get_time', parameters: { type: 'OBJECT', properties: { zone: { type: 'STRING' } }, required: ['zone'] } }] }];
  const first = await postJson(geminiUrl('g', 'generateContent'), gemini({ tools }), GOOG);
  assert.deepEqual(first.json.candidates[0], { content: { role: 'model', parts: [{ functionCall: { name: 'get_weather', args: WEATHER_ARGS } }] }, finishReason: 'STOP', index: 0 });
  assert.deepEqual(first.json.usageMetadata, geminiUsage(9, 5));
  const named = await postJson(geminiUrl('g', 'generateContent'), gemini({ tools, toolConfig: { functionCallingConfig: { mode: 'ANY', allowedFunctionNames: ['get_time'] } } }), GOOG);
  assert.deepEqual(named.json.candidates[0].content.parts, [{ functionCall: { name: 'get_time', args: { zone: 'mock' } } }]);
  const none = await postJson(geminiUrl('g', 'generateContent'), gemini({ tools, toolConfig: { functionCallingConfig: { mode: 'NONE' } } }), GOOG);
  assert.deepEqual(none.json.candidates[0].content.parts, [{ text: 'Mock reply to: Say hello to the world' }]);
});

test('gemini: after a functionResponse it answers about the result (response.output, else the response\'s JSON)', async () => {
  const convo = (response) => gemini({
    tools: [{ functionDeclarations: [{ name: 'get_weather', parameters: WEATHER_SCHEMA }] }],
    contents: [
      { role: 'user', parts: [{ text: 'weather?' }] },
      { role: 'model', parts: [{ functionCall: { name: 'get_weather', args: {} } }] },
      { role: 'user', parts: [{ functionResponse: { name: 'get_weather', response } }] },
    ],
  });
  const r = await postJson(geminiUrl('g', 'generateContent'), convo({ output: '21 degrees' }), GOOG);
  assert.deepEqual(r.json.candidates[0].content.parts, [{ text: 'Mock reply to tool result: 21 degrees' }]);
  assert.deepEqual(r.json.usageMetadata, geminiUsage(15, 7));
  const j = await postJson(geminiUrl('g', 'generateContent'), convo({ temp: 21 }), GOOG);
  assert.equal(j.json.candidates[0].content.parts[0].text, 'Mock reply to tool result: {"temp":21}');
});

test('gemini: maxOutputTokens cuts the words (MAX_TOKENS); stopSequences cut before the sequence (STOP)', async () => {
  const cut = await postJson(geminiUrl('g', 'generateContent'), gemini({ generationConfig: { maxOutputTokens: 3 } }), GOOG);
  assert.deepEqual([cut.json.candidates[0].content.parts[0].text, cut.json.candidates[0].finishReason, cut.json.usageMetadata], ['Mock reply to:', 'MAX_TOKENS', geminiUsage(9, 3)]);
  const stop = await postJson(geminiUrl('g', 'generateContent'), gemini({ generationConfig: { stopSequences: ['hello'] } }), GOOG);
  assert.deepEqual([stop.json.candidates[0].content.parts[0].text, stop.json.candidates[0].finishReason], ['Mock reply to: Say ', 'STOP']);
});

test('gemini: streamGenerateContent?alt=sse sends a response per word, CRLF-delimited, the last with finishReason and usage, no [DONE]', async () => {
  const body = gemini();
  const r = await postJson(geminiUrl('gemini-mock', 'streamGenerateContent', '?alt=sse'), body, GOOG);
  assert.equal(r.headers.get('content-type'), 'text/event-stream');
  const chunk = (text, final) => ({
    candidates: [{ content: { role: 'model', parts: [{ text }] }, ...(final ? { finishReason: 'STOP' } : {}), index: 0 }],
    ...(final ? { usageMetadata: geminiUsage(9, 8) } : {}),
    modelVersion: 'gemini-mock', responseId: geminiId(body),
  });
  assert.equal(r.text, WORDS.map((w, i) => `data: ${JSON.stringify(chunk(w, i === WORDS.length - 1))}\r\n\r\n`).join(''));
});

test('gemini: without alt=sse the stream is one JSON array of the same responses', async () => {
  const r = await postJson(geminiUrl('gemini-mock', 'streamGenerateContent'), gemini({ generationConfig: { maxOutputTokens: 2 } }), GOOG);
  assert.deepEqual(r.json.map((x) => [x.candidates[0].content.parts[0].text, x.candidates[0].finishReason]), [['Mock ', undefined], ['reply', 'MAX_TOKENS']]);
});

test('gemini: a trailing model content is continued', async () => {
  const r = await postJson(geminiUrl('g', 'generateContent'), gemini({ contents: [{ role: 'user', parts: [{ text: 'Say hello to the world' }] }, { role: 'model', parts: [{ text: 'Mock reply to:' }] }] }), GOOG);
  assert.deepEqual(r.json.candidates[0].content.parts, [{ text: ' Say hello to the world' }]);
  assert.deepEqual(r.json.usageMetadata, geminiUsage(9 + 7, 5));
});

test('gemini: bad requests and unknown methods answer in Google\'s error shape', async () => {
  const bad = await postJson(geminiUrl('g', 'generateContent'), { contents: [] }, GOOG);
  assert.equal(bad.status, 400);
  assert.deepEqual(bad.json, { error: { code: 400, message: '* GenerateContentRequest.contents: contents is not specified', status: 'INVALID_ARGUMENT' } });
  const role = await postJson(geminiUrl('g', 'generateContent'), { contents: [{ role: 'assistant', parts: [{ text: 'x' }] }] }, GOOG);
  assert.deepEqual(role.json.error, { code: 400, message: 'Please use a valid role: user, model.', status: 'INVALID_ARGUMENT' });
  const unknown = await postJson(geminiUrl('g', 'countTokens'), gemini(), GOOG);
  assert.equal(unknown.status, 404);
  assert.deepEqual(unknown.json, { error: { code: 404, message: 'Unknown path POST /v1beta/models/g:countTokens', status: 'NOT_FOUND' } });
});

test('gemini: faults answer {"error":{code,message,status}}: RESOURCE_EXHAUSTED, INTERNAL, UNAVAILABLE', async () => {
  const cases = [['429', 'RESOURCE_EXHAUSTED', 'Rate limit reached for requests (gyre-mock fault 429).'], ['500', 'INTERNAL', 'The server had an error while processing your request (gyre-mock fault 500).'], ['503', 'UNAVAILABLE', 'The server is overloaded (gyre-mock fault 503).'], ['529', 'UNAVAILABLE', 'Overloaded (gyre-mock fault 529).']];
  for (const [fault, status, message] of cases) await withFault(fault, async () => {
    const r = await postJson(geminiUrl('g', 'generateContent'), gemini(), GOOG);
    assert.equal(r.status, Number(fault));
    assert.deepEqual(r.json, { error: { code: Number(fault), message, status } });
  });
});

test('gemini: fault truncate cuts the stream after two pieces, before the one with finishReason', () => withFault('truncate', async () => {
  const r = await fetch(geminiUrl('g', 'streamGenerateContent', '?alt=sse'), { method: 'POST', headers: GOOG, body: JSON.stringify(gemini()) });
  let text = '';
  await assert.rejects((async () => { for await (const c of r.body) text += new TextDecoder().decode(c); })(), /terminated/);
  const events = sseData(text).map((e) => JSON.parse(e));
  assert.deepEqual(events.map((e) => [e.candidates[0].content.parts[0].text, e.candidates[0].finishReason, e.usageMetadata]), [['Mock ', undefined, undefined], ['reply ', undefined, undefined]]);
}));

// ---- Bedrock ----

const AKID = 'AKIDGYREMOCK', SECRET = 'gyre-mock-secret';
const MODEL_ID = 'anthropic.claude-3-haiku-20240307-v1:0';
const bedrockUrl = (op, model = MODEL_ID, query = '') => `${mock.url}/model/${encodeURIComponent(model)}/${op}${query}`;

// RFC 3986 as SigV4 wants it: everything but A-Z a-z 0-9 - . _ ~ is %XX.
const awsEncode = (s) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
const sha256 = (data) => crypto.createHash('sha256').update(data).digest('hex');
const hmac = (key, data) => crypto.createHmac('sha256', key).update(data).digest();

/** SigV4 headers for a request (AWS's "Create a signed AWS API request" steps). */
function sigv4({ method = 'POST', url, body, headers = {}, akid = AKID, secret = SECRET, region = 'us-east-1', service = 'bedrock', date = new Date(), signed = null, contentSha = false }) {
  const u = new URL(url);
  const amzDate = date.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
  const day = amzDate.slice(0, 8);
  const all = { ...headers, host: u.host, 'x-amz-date': amzDate };
  if (contentSha) all['x-amz-content-sha256'] = contentSha === true ? sha256(body) : contentSha;
  const names = signed ?? Object.keys(all).map((k) => k.toLowerCase()).sort();
  // The path as sent is already encoded once; each segment is encoded again.
  const canonicalUri = u.pathname.split('/').map(awsEncode).join('/');
  const query = [...u.searchParams].map(([k, v]) => `${awsEncode(k)}=${awsEncode(v)}`).sort().join('&');
  const lower = Object.fromEntries(Object.entries(all).map(([k, v]) => [k.toLowerCase(), String(v).trim().replace(/\s+/g, ' ')]));
  const canonical = [method, canonicalUri, query, names.map((n) => `${n}:${lower[n]}\n`).join(''), names.join(';'), sha256(body)].join('\n');
  const scope = `${day}/${region}/${service}/aws4_request`;
  const toSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha256(canonical)].join('\n');
  const key = hmac(hmac(hmac(hmac(`AWS4${secret}`, day), region), service), 'aws4_request');
  const signature = crypto.createHmac('sha256', key).update(toSign).digest('hex');
  const out = { ...all, authorization: `AWS4-HMAC-SHA256 Credential=${akid}/${scope}, SignedHeaders=${names.join(';')}, Signature=${signature}` };
  delete out.host; // fetch sends it itself, exactly as signed
  return out;
}

/** A signed Bedrock call: {status, headers, json, bytes}. */
async function bedrock(op, body, opts = {}) {
  const url = opts.url ?? bedrockUrl(op);
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  const headers = opts.raw ?? sigv4({ url, body: text, headers: { 'content-type': 'application/json' }, ...opts });
  const r = await fetch(url, { method: 'POST', headers, body: text, signal: AbortSignal.timeout(15000 * SLOW) });
  const bytes = Buffer.from(await r.arrayBuffer());
  let json = null;
  try { json = JSON.parse(bytes.toString()); } catch { /* a stream */ }
  return { status: r.status, headers: r.headers, json, bytes };
}

// CRC-32 (IEEE), bit by bit, as the event stream's prelude and message checksums use it.
function crc32(buf) {
  let c = 0xffffffff;
  for (const b of buf) { c ^= b; for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1; }
  return (c ^ 0xffffffff) >>> 0;
}

/** Decodes application/vnd.amazon.eventstream, checking both CRCs of every frame: [{headers, payload}]. */
function eventStream(buf) {
  const frames = [];
  for (let off = 0; off < buf.length;) {
    const total = buf.readUInt32BE(off), hlen = buf.readUInt32BE(off + 4);
    assert.equal(buf.readUInt32BE(off + 8), crc32(buf.subarray(off, off + 8)), 'prelude CRC');
    assert.equal(buf.readUInt32BE(off + total - 4), crc32(buf.subarray(off, off + total - 4)), 'message CRC');
    const headers = {};
    for (let h = off + 12; h < off + 12 + hlen;) {
      const nlen = buf[h];
      const name = buf.subarray(h + 1, h + 1 + nlen).toString();
      assert.equal(buf[h + 1 + nlen], 7, 'string header');
      const vlen = buf.readUInt16BE(h + 2 + nlen);
      headers[name] = buf.subarray(h + 4 + nlen, h + 4 + nlen + vlen).toString();
      h += 4 + nlen + vlen;
    }
    frames.push({ headers, payload: JSON.parse(buf.subarray(off + 12 + hlen, off + total - 4).toString()) });
    off += total;
  }
  return frames;
}
const ev = (type, payload) => ({ headers: { ':event-type': type, ':content-type': 'application/json', ':message-type': 'event' }, payload });

const converse = (extra = {}) => ({ messages: [{ role: 'user', content: [{ text: 'Say hello to the world' }] }], ...extra });
const bedrockUsage = (i, o) => ({ inputTokens: i, outputTokens: o, totalTokens: i + o });

test('bedrock: a SigV4-signed converse answers output.message, stopReason, usage and metrics', async () => {
  const r = await bedrock('converse', converse({ system: [{ text: 'be brief' }], inferenceConfig: { temperature: 0.5 } }));
  assert.equal(r.status, 200);
  assert.deepEqual(r.json, {
    output: { message: { role: 'assistant', content: [{ text: 'Mock reply to: Say hello to the world' }] } },
    stopReason: 'end_turn', usage: bedrockUsage(15, 8), metrics: { latencyMs: 0 },
  });
});

test('bedrock: the statistics count the access key id and the percent-decoded modelId', async () => {
  await fetch(`${mock.url}/_mock/reset`, { method: 'POST' });
  await bedrock('converse', converse());
  const s = await mock.stats();
  assert.deepEqual([s.paths, s.models, s.keys], [{ '/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse': 1 }, { [MODEL_ID]: 1 }, { [AKID]: 1 }]);
});

test('bedrock: the signature covers the query (sorted, encoded again), the signed headers and the body\'s hash', async () => {
  const url = bedrockUrl('converse', MODEL_ID, '?z=1&a=b%20c&a=a');
  assert.equal((await bedrock('converse', converse(), { url, headers: { 'content-type': 'application/json', 'x-custom': '  two   spaces ' } })).status, 200);
  assert.equal((await bedrock('converse', converse(), { contentSha: true })).status, 200);
});

test('bedrock: a wrong secret, a changed body or an unsigned host is 403; an unknown key 403; no auth 403', async () => {
  const mismatch = { message: 'The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.' };
  const wrong = await bedrock('converse', converse(), { secret: 'not-it' });
  assert.equal(wrong.status, 403);
  assert.equal(wrong.headers.get('x-amzn-errortype'), 'InvalidSignatureException');
  assert.deepEqual(wrong.json, mismatch);
  const text = JSON.stringify(converse());
  const url = bedrockUrl('converse');
  const signed = sigv4({ url, body: text, headers: { 'content-type': 'application/json' } });
  const changed = await bedrock('converse', text.replace('hello', 'HELLO'), { raw: signed });
  assert.deepEqual([changed.status, changed.json], [403, mismatch]);
  const noHost = await bedrock('converse', converse(), { signed: ['content-type', 'x-amz-date'] });
  assert.deepEqual([noHost.status, noHost.json], [403, { message: "'Host' must be a 'SignedHeader' in the AWS Authorization." }]);
  const unknown = await bedrock('converse', converse(), { akid: 'AKIDOTHER' });
  assert.deepEqual([unknown.status, unknown.headers.get('x-amzn-errortype'), unknown.json], [403, 'UnrecognizedClientException', { message: 'The security token included in the request is invalid.' }]);
  const none = await bedrock('converse', converse(), { raw: { 'content-type': 'application/json' } });
  assert.deepEqual([none.status, none.json], [403, { message: 'Missing Authentication Token' }]);
});

test('bedrock: x-amz-date more than 15 minutes off is 400; a wrong x-amz-content-sha256 is 400', async () => {
  for (const skew of [-16, 16]) {
    const r = await bedrock('converse', converse(), { date: new Date(Date.now() + skew * 60000) });
    assert.equal(r.status, 400);
    assert.equal(r.headers.get('x-amzn-errortype'), 'InvalidSignatureException');
    assert.match(r.json.message, /^Signature expired: \d{8}T\d{6}Z is more than 15 minutes from the server's time\.$/);
  }
  assert.equal((await bedrock('converse', converse(), { date: new Date(Date.now() - 14 * 60000) })).status, 200);
  const sha = await bedrock('converse', converse(), { contentSha: sha256('other') });
  assert.deepEqual([sha.status, sha.json], [400, { message: "The provided 'x-amz-content-sha256' header does not match what was computed." }]);
});

test('bedrock: a Bedrock API key (bearer bedrock-api-key-...) is accepted and counted; another bearer is 403', async () => {
  await fetch(`${mock.url}/_mock/reset`, { method: 'POST' });
  const ok = await bedrock('converse', converse(), { raw: { authorization: 'Bearer bedrock-api-key-abc', 'content-type': 'application/json' } });
  assert.equal(ok.status, 200);
  assert.deepEqual((await mock.stats()).keys, { 'bedrock-api-key-abc': 1 });
  const bad = await bedrock('converse', converse(), { raw: { authorization: 'Bearer sk-nope' } });
  assert.equal(bad.status, 403);
});

test('bedrock: toolConfig tools answer a toolUse with schema-fitting input; toolChoice.tool names one', async () => {
  const tools = [{ toolSpec: { name: 'get_weather', description: 'w', inputSchema: { json: WEATHER_SCHEMA } } }, { toolSpec: { name: 'get_time', inputSchema: { json: { type: 'object', properties: { zone: { type: 'string' } }, required: ['zone'] } } } }];
  const body = converse({ toolConfig: { tools, toolChoice: { auto: {} } } });
  const r = await bedrock('converse', body);
  assert.deepEqual(r.json.output.message.content, [{ toolUse: { toolUseId: `tooluse_mock_${hex8(callHashOf(body))}`, name: 'get_weather', input: WEATHER_ARGS } }]);
  assert.deepEqual([r.json.stopReason, r.json.usage], ['tool_use', bedrockUsage(9, 5)]);
  const named = await bedrock('converse', converse({ toolConfig: { tools, toolChoice: { tool: { name: 'get_time' } } } }));
  assert.deepEqual(named.json.output.message.content[0].toolUse.input, { zone: 'mock' });
});

test('bedrock: after a toolResult it answers about the result; maxTokens and stopSequences cut', async () => {
  const r = await bedrock('converse', converse({ messages: [
    { role: 'user', content: [{ text: 'weather?' }] },
    { role: 'assistant', content: [{ toolUse: { toolUseId: 't1', name: 'get_weather', input: {} } }] },
    { role: 'user', content: [{ toolResult: { toolUseId: 't1', content: [{ text: '21 degrees' }] } }] },
  ] }));
  assert.deepEqual([r.json.output.message.content, r.json.usage], [[{ text: 'Mock reply to tool result: 21 degrees' }], bedrockUsage(15, 7)]);
  const cut = await bedrock('converse', converse({ inferenceConfig: { maxTokens: 3 } }));
  assert.deepEqual([cut.json.output.message.content[0].text, cut.json.stopReason], ['Mock reply to:', 'max_tokens']);
  const stop = await bedrock('converse', converse({ inferenceConfig: { stopSequences: ['hello'] } }));
  assert.deepEqual([stop.json.output.message.content[0].text, stop.json.stopReason], ['Mock reply to: Say ', 'stop_sequence']);
});

test('bedrock: a trailing assistant message is continued', async () => {
  const r = await bedrock('converse', converse({ messages: [{ role: 'user', content: [{ text: 'Say hello to the world' }] }, { role: 'assistant', content: [{ text: 'Mock reply to: Say' }] }] }));
  assert.deepEqual([r.json.output.message.content, r.json.usage], [[{ text: ' hello to the world' }], bedrockUsage(9 + 8, 4)]);
});

test('bedrock: converse-stream answers binary event-stream frames with valid CRCs, a contentBlockDelta per word', async () => {
  const r = await bedrock('converse-stream', converse());
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('content-type'), 'application/vnd.amazon.eventstream');
  assert.deepEqual(eventStream(r.bytes), [
    ev('messageStart', { role: 'assistant' }),
    ...WORDS.map((w) => ev('contentBlockDelta', { contentBlockIndex: 0, delta: { text: w } })),
    ev('contentBlockStop', { contentBlockIndex: 0 }),
    ev('messageStop', { stopReason: 'end_turn' }),
    ev('metadata', { usage: bedrockUsage(9, 8), metrics: { latencyMs: 0 } }),
  ]);
});

test('bedrock: a streamed toolUse starts its block, then sends the input in three pieces', async () => {
  const body = converse({ toolConfig: { tools: [{ toolSpec: { name: 'get_weather', inputSchema: { json: WEATHER_SCHEMA } } }] } });
  const frames = eventStream((await bedrock('converse-stream', body)).bytes);
  assert.deepEqual(frames, [
    ev('messageStart', { role: 'assistant' }),
    ev('contentBlockStart', { contentBlockIndex: 0, start: { toolUse: { toolUseId: `tooluse_mock_${hex8(callHashOf(body))}`, name: 'get_weather' } } }),
    ...thirds(WEATHER_JSON).map((p) => ev('contentBlockDelta', { contentBlockIndex: 0, delta: { toolUse: { input: p } } })),
    ev('contentBlockStop', { contentBlockIndex: 0 }),
    ev('messageStop', { stopReason: 'tool_use' }),
    ev('metadata', { usage: bedrockUsage(9, 5), metrics: { latencyMs: 0 } }),
  ]);
});

test('bedrock: fault truncate fails the stream mid-way with a throttlingException frame', () => withFault('truncate', async () => {
  const frames = eventStream((await bedrock('converse-stream', converse())).bytes);
  assert.deepEqual(frames, [
    ev('messageStart', { role: 'assistant' }),
    ev('contentBlockDelta', { contentBlockIndex: 0, delta: { text: 'Mock ' } }),
    ev('contentBlockDelta', { contentBlockIndex: 0, delta: { text: 'reply ' } }),
    { headers: { ':exception-type': 'throttlingException', ':content-type': 'application/json', ':message-type': 'exception' }, payload: { message: 'Too many requests, please wait before trying again. (gyre-mock fault truncate)' } },
  ]);
}));

test('bedrock: faults answer JSON with x-amzn-errortype; a bad signature is refused before any fault', async () => {
  const cases = [['429', 'ThrottlingException', 'Rate limit reached for requests (gyre-mock fault 429).'], ['500', 'InternalServerException', 'The server had an error while processing your request (gyre-mock fault 500).'], ['503', 'ServiceUnavailableException', 'The server is overloaded (gyre-mock fault 503).'], ['529', 'ServiceUnavailableException', 'Overloaded (gyre-mock fault 529).']];
  for (const [fault, type, message] of cases) await withFault(fault, async () => {
    for (const op of ['converse', 'converse-stream']) {
      const r = await bedrock(op, converse());
      assert.deepEqual([r.status, r.headers.get('x-amzn-errortype'), r.json], [Number(fault), type, { message }]);
    }
    assert.equal((await bedrock('converse', converse(), { secret: 'x' })).status, 403);
  });
});

test('bedrock: a bad request is a 400 ValidationException; an unknown operation 404', async () => {
  const r = await bedrock('converse', { messages: [] });
  assert.deepEqual([r.status, r.headers.get('x-amzn-errortype')], [400, 'ValidationException']);
  assert.equal(r.json.message, '1 validation error detected: Value at \'messages\' failed to satisfy constraint: Member must not be null and must contain at least one message');
  const op = await bedrock('invoke', converse(), { url: bedrockUrl('invoke') });
  assert.deepEqual([op.status, op.headers.get('x-amzn-errortype')], [404, 'UnknownOperationException']);
});

test('bedrock: --aws-key sets the credentials; a malformed one exits 2', async () => {
  const m = await startMock(['--aws-key', 'AKIDOTHER:other-secret']);
  try {
    const text = JSON.stringify(converse());
    const url = `${m.url}/model/m/converse`;
    const send = (opts) => fetch(url, { method: 'POST', body: text, headers: sigv4({ url, body: text, ...opts }) });
    assert.equal((await send({ akid: 'AKIDOTHER', secret: 'other-secret' })).status, 200);
    assert.equal((await send({})).status, 403);
  } finally {
    assert.equal((await m.stop()).code, 0);
  }
  const bad = spawnSync(bin('gyre-mock'), ['--listen', '127.0.0.1:0', '--aws-key', 'nocolon'], { encoding: 'utf8', timeout: 5000 * SLOW });
  assert.equal(bad.status, 2);
  assert.equal(bad.stderr.split('\n')[0], "gyre-mock: --aws-key must be ACCESS_KEY_ID:SECRET_ACCESS_KEY, got 'nocolon'");
});

// ---- Azure OpenAI ----

const azureUrl = (dep, op, version = '?api-version=2024-10-21') => `${mock.url}/openai/deployments/${dep}/${op}${version}`;
const AZURE = { 'api-key': 'azure-key' };

test('azure: chat completions under a deployment answer OpenAI\'s shape with the deployment as the model', async () => {
  const body = { messages: [{ role: 'user', content: 'Say hello to the world' }] };
  await fetch(`${mock.url}/_mock/reset`, { method: 'POST' });
  const r = await postJson(azureUrl('my-gpt', 'chat/completions'), body, AZURE);
  assert.equal(r.status, 200);
  assert.deepEqual(r.json, {
    id: chatId(body), object: 'chat.completion', created: 1700000000, model: 'my-gpt',
    choices: [{ index: 0, message: { role: 'assistant', content: 'Mock reply to: Say hello to the world', refusal: null }, logprobs: null, finish_reason: 'stop' }],
    usage: { prompt_tokens: 9, completion_tokens: 8, total_tokens: 17 },
  });
  const s = await mock.stats();
  assert.deepEqual([s.models, s.keys], [{ 'my-gpt': 1 }, { 'azure-key': 1 }]);
  const streamed = sseData((await postJson(azureUrl('my-gpt', 'chat/completions'), { ...body, stream: true }, AZURE)).text);
  assert.equal(JSON.parse(streamed[0]).model, 'my-gpt');
  assert.equal(streamed.at(-1), '[DONE]');
});

test('azure: embeddings under a deployment; without api-version it is Azure\'s 404', async () => {
  const r = await postJson(azureUrl('my-embed', 'embeddings'), { input: 'alpha' }, AZURE);
  assert.deepEqual([r.status, r.json.model, r.json.data[0].embedding.length], [200, 'my-embed', 8]);
  for (const op of ['chat/completions', 'embeddings']) {
    const nf = await postJson(azureUrl('my-gpt', op, ''), { messages: [] }, AZURE);
    assert.equal(nf.status, 404);
    assert.deepEqual(nf.json, { error: { code: '404', message: 'Resource not found' } });
  }
});

test('azure: faults answer {"error":{code,message}} with the status as the code', async () => {
  for (const fault of ['429', '529']) await withFault(fault, async () => {
    const r = await postJson(azureUrl('d', 'chat/completions'), { messages: [{ role: 'user', content: 'x' }] }, AZURE);
    assert.equal(r.status, Number(fault));
    assert.equal(r.json.error.code, fault);
  });
});

// ---- OpenAI: what the other dialects share ----

test('openai: a trailing assistant message is continued; stop cuts before the sequence', async () => {
  const body = { model: 'm', messages: [{ role: 'user', content: 'Say hello to the world' }, { role: 'assistant', content: 'Mock reply to: Say hello' }] };
  const r = await postJson(`${mock.v1}/chat/completions`, body);
  assert.deepEqual([r.json.choices[0].message.content, r.json.usage], [' to the world', { prompt_tokens: 9 + 9, completion_tokens: 3, total_tokens: 21 }]);
  const s = sseData((await postJson(`${mock.v1}/chat/completions`, { ...body, stream: true })).text);
  assert.deepEqual(s.slice(1, -2).map((e) => JSON.parse(e).choices[0].delta.content), [' to ', 'the ', 'world']);
  const stop = await postJson(`${mock.v1}/chat/completions`, { model: 'm', messages: [body.messages[0]], stop: ['the'] });
  assert.deepEqual([stop.json.choices[0].message.content, stop.json.choices[0].finish_reason], ['Mock reply to: Say hello to ', 'stop']);
});

test('openai: fault 529 is a server_error in OpenAI\'s shape', () => withFault('529', async () => {
  const r = await postJson(`${mock.v1}/chat/completions`, { model: 'm', messages: [{ role: 'user', content: 'x' }] });
  assert.deepEqual([r.status, r.json], [529, { error: { message: 'Overloaded (gyre-mock fault 529).', type: 'server_error', param: null, code: null } }]);
}));

// ---- every dialect: the same answer, the same faults ----

// One conversation (system prompt, a tool call and its result, then a question) in each dialect's shape.
const SAME = {
  openai: () => postJson(`${mock.v1}/chat/completions`, { model: 'm', max_tokens: 4, messages: [{ role: 'system', content: 'be brief' }, { role: 'user', content: 'weather?' }, { role: 'assistant', content: null, tool_calls: [{ id: 'c1', type: 'function', function: { name: 'w', arguments: '{}' } }] }, { role: 'tool', tool_call_id: 'c1', content: '21 degrees' }, { role: 'user', content: 'and tomorrow then?' }] }).then((r) => [r.json.choices[0].message.content, r.json.usage.prompt_tokens, r.json.usage.completion_tokens]),
  anthropic: () => postMessages({ model: 'm', max_tokens: 4, system: 'be brief', messages: [{ role: 'user', content: 'weather?' }, { role: 'assistant', content: [{ type: 'tool_use', id: 'c1', name: 'w', input: {} }] }, { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'c1', content: '21 degrees' }, { type: 'text', text: 'and tomorrow then?' }] }] }).then((r) => [r.json.content[0].text, r.json.usage.input_tokens, r.json.usage.output_tokens]),
  gemini: () => postJson(geminiUrl('g', 'generateContent'), { systemInstruction: { parts: [{ text: 'be brief' }] }, generationConfig: { maxOutputTokens: 4 }, contents: [{ role: 'user', parts: [{ text: 'weather?' }] }, { role: 'model', parts: [{ functionCall: { name: 'w', args: {} } }] }, { role: 'user', parts: [{ functionResponse: { name: 'w', response: { output: '21 degrees' } } }, { text: 'and tomorrow then?' }] }] }, GOOG).then((r) => [r.json.candidates[0].content.parts[0].text, r.json.usageMetadata.promptTokenCount, r.json.usageMetadata.candidatesTokenCount]),
  bedrock: () => bedrock('converse', { system: [{ text: 'be brief' }], inferenceConfig: { maxTokens: 4 }, messages: [{ role: 'user', content: [{ text: 'weather?' }] }, { role: 'assistant', content: [{ toolUse: { toolUseId: 'c1', name: 'w', input: {} } }] }, { role: 'user', content: [{ toolResult: { toolUseId: 'c1', content: [{ text: '21 degrees' }] } }, { text: 'and tomorrow then?' }] }] }).then((r) => [r.json.output.message.content[0].text, r.json.usage.inputTokens, r.json.usage.outputTokens]),
  azure: () => postJson(azureUrl('m', 'chat/completions'), { max_tokens: 4, messages: [{ role: 'system', content: 'be brief' }, { role: 'user', content: 'weather?' }, { role: 'assistant', content: null, tool_calls: [{ id: 'c1', type: 'function', function: { name: 'w', arguments: '{}' } }] }, { role: 'tool', tool_call_id: 'c1', content: '21 degrees' }, { role: 'user', content: 'and tomorrow then?' }] }, AZURE).then((r) => [r.json.choices[0].message.content, r.json.usage.prompt_tokens, r.json.usage.completion_tokens]),
};

test('every dialect gives the same conversation the same text and the same token counts', async () => {
  // prompt: system 2+4, user 1+4, assistant 0+4, tool 2+4, user 3+4 = 28; the reply cut to 4 words.
  for (const [name, ask] of Object.entries(SAME)) assert.deepEqual(await ask(), ['Mock reply to: and', 28, 4], name);
});

// A request per dialect, for the faults that act the same in all of them.
const ANY = {
  openai: () => fetch(`${mock.v1}/chat/completions`, { method: 'POST', body: JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'x' }] }), signal: AbortSignal.timeout(10000 * SLOW) }),
  anthropic: () => fetch(`${mock.url}/v1/messages`, { method: 'POST', headers: ANTHROPIC, body: JSON.stringify(messages()), signal: AbortSignal.timeout(10000 * SLOW) }),
  gemini: () => fetch(geminiUrl('g', 'generateContent'), { method: 'POST', headers: GOOG, body: JSON.stringify(gemini()), signal: AbortSignal.timeout(10000 * SLOW) }),
  bedrock: () => { const text = JSON.stringify(converse()); const url = bedrockUrl('converse'); return fetch(url, { method: 'POST', body: text, headers: sigv4({ url, body: text }), signal: AbortSignal.timeout(10000 * SLOW) }); },
  azure: () => fetch(azureUrl('d', 'chat/completions'), { method: 'POST', headers: AZURE, body: JSON.stringify({ messages: [{ role: 'user', content: 'x' }] }), signal: AbortSignal.timeout(10000 * SLOW) }),
};

test('fault reset resets the connection in every dialect', () => withFault('reset', async () => {
  for (const [name, ask] of Object.entries(ANY)) await assert.rejects(ask(), (e) => /ECONNRESET|other side closed|socket/.test(String(e.cause ?? e)), name);
}));

test('fault hang never answers in any dialect', () => withFault('hang', async () => {
  for (const [name, ask] of Object.entries(ANY)) {
    const res = await Promise.race([ask().then(() => 'answered', () => 'failed'), sleep(300).then(() => 'hung')]);
    assert.equal(res, 'hung', name);
  }
}));

test('fault truncate cuts a whole answer in half in every dialect', () => withFault('truncate', async () => {
  for (const [name, ask] of Object.entries(ANY)) {
    const r = await ask();
    assert.equal(r.status, 200, name);
    await assert.rejects(r.arrayBuffer(), name);
  }
}));

test('fault slow-first-byte holds every dialect\'s answer for 2 s', () => withFault('slow-first-byte', async () => {
  const t0 = Date.now();
  const statuses = await Promise.all(Object.values(ANY).map((ask) => ask().then((r) => r.status)));
  const ms = Date.now() - t0;
  assert.deepEqual(statuses, [200, 200, 200, 200, 200]);
  assert.ok(ms >= 1900 && ms < 2000 + 2000 * SLOW, `${ms} ms`);
}));

test('a fault rate of 0.5 alternates across dialects, one schedule for all', () => withFault('529', async () => {
  const statuses = [];
  for (const ask of Object.values(ANY)) statuses.push((await ask()).status);
  assert.deepEqual(statuses, [200, 529, 200, 529, 200]);
}, { fault_rate: 0.5 }));

test('paths outside every dialect are 404 and never faulted', () => withFault('500', async () => {
  const r = await fetch(`${mock.url}/v2/x`);
  assert.equal(r.status, 404);
  assert.equal((await r.json()).error.code, 'unknown_url');
  const raw = await new Promise((resolve) => {
    const s = net.connect(mock.port, '127.0.0.1', () => s.write('GET /v1beta/other HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'));
    let out = ''; s.on('data', (d) => { out += d; }); s.on('close', () => resolve(out)); s.on('error', () => resolve(out));
  });
  assert.match(raw, /^HTTP\/1\.1 404 Not Found\r\n/);
  const get = await fetch(`${mock.url}/v1/messages`, { headers: ANTHROPIC });
  assert.deepEqual([get.status, await get.json()], [404, { type: 'error', error: { type: 'not_found_error', message: 'Unknown path GET /v1/messages' } }]);
}));
