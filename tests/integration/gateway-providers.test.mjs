// Every provider kind through gyre: one gyre with an openai, an azure, an
// anthropic, a gemini and a bedrock provider, all pointed at one gyre-mock,
// and a route to each.  The mock gives the same conversation the same text
// and the same token counts in every dialect (docs/mock.md), so each kind's
// answer through gyre's OpenAI endpoint is checked against the openai kind's
// answer to the same request, and what reached the provider (path, key,
// dialect-shaped body) is read back from the mock's statistics.  Then gyre's
// Anthropic endpoint (/v1/messages): passed through to the anthropic
// provider, translated for the others.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startGyre, startMock, sseData, SLOW } from '../lib/harness.mjs';
import { utf8, fnv1a, hex8, chatId, callId } from '../lib/mock-rules.mjs';

let mock, gyre;

// The client's own credentials: gyre must use the providers' keys instead.
const CLIENT_KEY = 'client-key-not-forwarded';

const KINDS = {
  openai: { route: 'via-openai', provider: 'p-openai', model: 'gpt-4o-mini', key: 'sk-openai-gyre', translated: false },
  azure: { route: 'via-azure', provider: 'p-azure', model: 'gyre-deployment', key: 'azure-key-gyre', translated: false },
  anthropic: { route: 'via-anthropic', provider: 'p-anthropic', model: 'claude-mock', key: 'sk-ant-gyre', translated: true },
  gemini: { route: 'via-gemini', provider: 'p-gemini', model: 'gemini-mock', key: 'gemini-key-gyre', translated: true },
  // The mock's default credential; the access key id is what the mock counts.
  bedrock: { route: 'via-bedrock', provider: 'p-bedrock', model: 'anthropic.claude-mock-v1:0', key: 'AKIDGYREMOCK', translated: true },
};
const NAMES = Object.keys(KINDS);
const TRANSLATED = NAMES.filter((k) => KINDS[k].translated);

/** The path each kind's provider is asked on, as the mock counts it (query removed) and as it got it. */
function upstreamPath(kind, stream) {
  switch (kind) {
    case 'openai': return ['/v1/chat/completions', '/v1/chat/completions'];
    case 'azure': return ['/openai/deployments/gyre-deployment/chat/completions', '/openai/deployments/gyre-deployment/chat/completions?api-version=2024-10-21'];
    case 'anthropic': return ['/v1/messages', '/v1/messages'];
    case 'gemini': return stream
      ? ['/v1beta/models/gemini-mock:streamGenerateContent', '/v1beta/models/gemini-mock:streamGenerateContent?alt=sse']
      : ['/v1beta/models/gemini-mock:generateContent', '/v1beta/models/gemini-mock:generateContent'];
    case 'bedrock': {
      // The model id's ':' is percent-encoded in the path.
      const p = `/model/anthropic.claude-mock-v1%3A0/${stream ? 'converse-stream' : 'converse'}`;
      return [p, p];
    }
  }
  throw new Error(kind);
}

// ---- the mock's rules (docs/mock.md), restated ----

const hashOf = (text) => fnv1a(utf8(text));
const callHashOf = (text) => fnv1a(utf8('call'), hashOf(text));
/** The id of the tool call the mock answers to `body` (the bytes it got), in each kind's spelling. */
function mockCallId(kind, body, gyreId) {
  switch (kind) {
    case 'openai': case 'azure': return `call_mock_${hex8(callHashOf(body))}`;
    case 'anthropic': return `toolu_mock_${hex8(callHashOf(body))}`;
    case 'bedrock': return `tooluse_mock_${hex8(callHashOf(body))}`;
    // Gemini's functionCall has no id: gyre names it after its own completion id.
    case 'gemini': return `call_${gyreId.slice('chatcmpl-gyre-'.length)}_0`;
  }
  throw new Error(kind);
}

const WEATHER = {
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'The current weather in a city',
    parameters: {
      type: 'object',
      properties: { city: { type: 'string' }, unit: { type: 'string', enum: ['c', 'f'] } },
      required: ['city'],
    },
  },
};
// Only `city` is required, so the mock fills in only `city`, with "mock".
const WEATHER_ARGS = '{"city":"mock"}';
const ASK = [{ role: 'user', content: 'What is the weather in Oslo right now?' }];
const SUM = [{ role: 'system', content: 'You are terse.' }, { role: 'user', content: 'What is two plus two?' }];
// A 1x1 PNG.
const PNG_B64 = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==';
const usageOf = (u) => ({ prompt_tokens: u.prompt_tokens, completion_tokens: u.completion_tokens, total_tokens: u.total_tokens });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

before(async () => {
  mock = await startMock();
  const providers = [
    `{name: p-openai, kind: openai, base_url: "${mock.v1}", keys: [sk-openai-gyre]}`,
    `{name: p-azure, kind: azure, base_url: "${mock.url}", keys: [azure-key-gyre]}`,
    `{name: p-anthropic, kind: anthropic, base_url: "${mock.v1}", keys: [sk-ant-gyre]}`,
    `{name: p-gemini, kind: gemini, base_url: "${mock.url}/v1beta", keys: [gemini-key-gyre]}`,
    `{name: p-bedrock, kind: bedrock, base_url: "${mock.url}", region: us-west-2, keys: ["AKIDGYREMOCK:gyre-mock-secret"]}`,
  ];
  const routes = NAMES.map((k) => `  - {name: ${KINDS[k].route}, targets: [{provider: ${KINDS[k].provider}, model: "${KINDS[k].model}"}]}`);
  gyre = await startGyre(`workers: 1
providers:
${providers.map((p) => `  - ${p}`).join('\n')}
routes:
${routes.join('\n')}
`);
});

after(async () => {
  assert.equal((await gyre.stop()).code, 0);
  assert.equal((await mock.stop()).code, 0);
});

async function resetMock() {
  const r = await fetch(`${mock.url}/_mock/reset`, { method: 'POST' });
  assert.equal(r.status, 200);
  await r.json();
}

async function withFault(fault, fn) {
  await mock.configure({ fault, fault_rate: 1 });
  try { await fn(); } finally { await mock.configure({ fault: null, fault_rate: 1 }); }
}

async function post(path, body, headers) {
  const r = await fetch(`${gyre.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(15000 * SLOW),
  });
  const text = await r.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* a stream */ }
  return { status: r.status, headers: r.headers, text, json };
}

/** A chat through gyre's OpenAI endpoint on `kind`'s route. */
const chat = (kind, body) => post('/v1/chat/completions', { model: KINDS[kind].route, ...body }, { authorization: `Bearer ${CLIENT_KEY}` });

/** A translated stream is gyre's own, with its type; a passed-through one keeps the provider's. */
const streamType = (kind) => (KINDS[kind].translated ? 'text/event-stream; charset=utf-8' : 'text/event-stream');

/** A streamed chat: the parsed chunks, and whether the stream ended with [DONE]. */
async function chatStream(kind, body) {
  const r = await chat(kind, { ...body, stream: true });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.headers.get('content-type'), streamType(kind));
  const data = sseData(r.text);
  assert.equal(data.at(-1), '[DONE]', r.text);
  assert.equal(data.filter((d) => d === '[DONE]').length, 1);
  return { ...r, chunks: data.slice(0, -1).map((d) => JSON.parse(d)) };
}

/** What the provider got last. */
async function lastSeen() {
  return (await mock.stats()).last_request;
}

function checkGyreHeaders(kind, headers) {
  const k = KINDS[kind];
  assert.equal(headers.get('x-gyre-route'), k.route);
  assert.equal(headers.get('x-gyre-provider'), k.provider);
  assert.equal(headers.get('x-gyre-model'), k.model);
  assert.equal(headers.get('x-gyre-attempts'), '1');
}

/** The id and created a translated answer carries: gyre's own. */
function checkGyreId(id, created) {
  assert.match(id, /^chatcmpl-gyre-[0-9a-f]{16}$/);
  const now = Date.now() / 1000;
  assert.ok(Number.isInteger(created) && created > now - 60 && created < now + 5, `created ${created}`);
}

/** Tool-call deltas assembled by index, as an application would; also the argument fragments. */
function assembleToolCalls(chunks) {
  const calls = [];
  const fragments = [];
  for (const c of chunks) {
    for (const d of c.choices[0]?.delta?.tool_calls ?? []) {
      if (!calls[d.index]) {
        calls[d.index] = { id: d.id, type: d.type, function: { name: d.function.name, arguments: '' } };
        fragments[d.index] = [];
      } else {
        // Only the head delta of a call carries its id and name.
        assert.equal(d.id, undefined);
        assert.equal(d.function.name, undefined);
      }
      if (d.function.arguments) {
        calls[d.index].function.arguments += d.function.arguments;
        fragments[d.index].push(d.function.arguments);
      }
    }
  }
  return { calls, fragments };
}

// ---- through gyre's OpenAI endpoint ----

test('every kind answers a plain chat with the same content, finish_reason and usage as the openai kind', async () => {
  const ref = await chat('openai', { messages: SUM });
  assert.equal(ref.status, 200, ref.text);
  assert.deepEqual(ref.json.choices, [{
    index: 0, message: { role: 'assistant', content: 'Mock reply to: What is two plus two?', refusal: null }, logprobs: null, finish_reason: 'stop',
  }]);
  // prompt: (3 + 4) + (5 + 4); completion: 8 words.
  assert.deepEqual(ref.json.usage, { prompt_tokens: 16, completion_tokens: 8, total_tokens: 24 });
  for (const kind of NAMES) {
    const r = await chat(kind, { messages: SUM });
    assert.equal(r.status, 200, `${kind}: ${r.text}`);
    assert.equal(r.headers.get('content-type'), 'application/json', kind);
    checkGyreHeaders(kind, r.headers);
    const seen = await lastSeen();
    assert.equal(r.json.object, 'chat.completion', kind);
    assert.equal(r.json.model, KINDS[kind].model, kind);
    if (KINDS[kind].translated) {
      checkGyreId(r.json.id, r.json.created);
      assert.deepEqual(r.json.choices, [{ index: 0, message: { role: 'assistant', content: 'Mock reply to: What is two plus two?' }, finish_reason: 'stop' }], kind);
    } else {
      // openai and azure answers pass through as the provider gave them.
      assert.equal(r.json.id, `chatcmpl-mock-${hex8(hashOf(seen.body))}`, kind);
      assert.equal(r.json.created, 1700000000);
      assert.deepEqual(r.json.choices, ref.json.choices, kind);
    }
    assert.deepEqual(usageOf(r.json.usage), ref.json.usage, kind);
  }
});

test('each kind gets its own path, its own key in its own header, and never the client\'s key', async () => {
  for (const kind of NAMES) {
    await resetMock();
    const r = await chat(kind, { messages: SUM });
    assert.equal(r.status, 200, `${kind}: ${r.text}`);
    const stats = await mock.stats();
    const [counted, full] = upstreamPath(kind, false);
    assert.deepEqual(stats.paths, { [counted]: 1 }, kind);
    assert.deepEqual(stats.keys, { [KINDS[kind].key]: 1 }, kind);
    assert.deepEqual(stats.models, { [KINDS[kind].model]: 1 }, kind);
    const seen = stats.last_request;
    assert.equal(seen.method, 'POST');
    assert.equal(seen.path, full, kind);
    assert.doesNotMatch(JSON.stringify(seen), new RegExp(CLIENT_KEY), kind);
    const h = seen.headers;
    switch (kind) {
      case 'openai':
        assert.equal(h.authorization, 'Bearer sk-openai-gyre');
        assert.equal(seen.body, JSON.stringify({ model: 'gpt-4o-mini', messages: SUM }));
        break;
      case 'azure':
        assert.equal(h['api-key'], 'azure-key-gyre');
        assert.equal(h.authorization, undefined);
        assert.deepEqual(JSON.parse(seen.body).messages, SUM);
        break;
      case 'anthropic':
        assert.equal(h['x-api-key'], 'sk-ant-gyre');
        assert.equal(h['anthropic-version'], '2023-06-01');
        assert.equal(h.authorization, undefined);
        // The system message moves to `system`; max_tokens is the provider's default (4096).
        assert.deepEqual(JSON.parse(seen.body), {
          model: 'claude-mock', max_tokens: 4096, system: 'You are terse.', messages: [{ role: 'user', content: 'What is two plus two?' }],
        });
        break;
      case 'gemini':
        assert.equal(h['x-goog-api-key'], 'gemini-key-gyre');
        assert.equal(h.authorization, undefined);
        assert.deepEqual(JSON.parse(seen.body), {
          contents: [{ role: 'user', parts: [{ text: 'What is two plus two?' }] }],
          systemInstruction: { parts: [{ text: 'You are terse.' }] },
        });
        break;
      case 'bedrock': {
        // The mock verified the signature (else a 403); its credential scope names the configured region.
        const m = /^AWS4-HMAC-SHA256 Credential=AKIDGYREMOCK\/(\d{8})\/us-west-2\/bedrock\/aws4_request, SignedHeaders=([a-z0-9-]+;)*host(;[a-z0-9-]+)*, Signature=[0-9a-f]{64}$/.exec(h.authorization);
        assert.ok(m, h.authorization);
        assert.match(h['x-amz-date'], /^\d{8}T\d{6}Z$/);
        assert.equal(m[1], h['x-amz-date'].slice(0, 8));
        assert.deepEqual(JSON.parse(seen.body), {
          messages: [{ role: 'user', content: [{ text: 'What is two plus two?' }] }],
          system: [{ text: 'You are terse.' }],
          inferenceConfig: { maxTokens: 4096 },
        });
        break;
      }
    }
  }
});

test('every kind streams with include_usage: one role chunk, the same pieces as the openai kind, a finish chunk, a usage chunk, [DONE]', async () => {
  const body = { messages: [{ role: 'user', content: 'Tell me a short story about a lighthouse keeper' }], stream_options: { include_usage: true } };
  const ref = await chatStream('openai', body);
  const pieces = (chunks) => chunks.map((c) => c.choices[0]?.delta?.content).filter((p) => p);
  const refPieces = pieces(ref.chunks);
  assert.deepEqual(refPieces, ['Mock ', 'reply ', 'to: ', 'Tell ', 'me ', 'a ', 'short ', 'story ', 'about ', 'a ', 'lighthouse ', 'keeper']);
  assert.deepEqual(ref.chunks.at(-1).usage, { prompt_tokens: 13, completion_tokens: 12, total_tokens: 25 });

  for (const kind of NAMES) {
    await resetMock();
    const r = await chatStream(kind, body);
    checkGyreHeaders(kind, r.headers);
    const stats = await mock.stats();
    const [counted, full] = upstreamPath(kind, true);
    assert.deepEqual(stats.paths, { [counted]: 1 }, kind);
    assert.equal(stats.last_request.path, full, kind);

    const { chunks } = r;
    // The role chunk, 12 words, the finish chunk, the usage chunk.
    assert.equal(chunks.length, 15, `${kind}: ${r.text}`);
    assert.deepEqual(pieces(chunks), refPieces, kind);
    assert.equal(pieces(chunks).join(''), 'Mock reply to: Tell me a short story about a lighthouse keeper');
    assert.equal(chunks.filter((c) => c.choices[0]?.delta?.role !== undefined).length, 1, kind);
    const lp = KINDS[kind].translated ? {} : { logprobs: null };
    assert.deepEqual(chunks[0].choices, [{ index: 0, delta: { role: 'assistant', content: '' }, ...lp, finish_reason: null }], kind);
    assert.deepEqual(chunks[1].choices, [{ index: 0, delta: { content: 'Mock ' }, ...lp, finish_reason: null }], kind);
    assert.deepEqual(chunks[13].choices, [{ index: 0, delta: {}, ...lp, finish_reason: 'stop' }], kind);
    assert.deepEqual(chunks[14].choices, [], kind);
    assert.deepEqual(usageOf(chunks[14].usage), ref.chunks.at(-1).usage, kind);
    for (const c of chunks) {
      assert.equal(c.object, 'chat.completion.chunk');
      assert.equal(c.model, KINDS[kind].model, kind);
      assert.equal(c.id, chunks[0].id, kind);
      assert.equal(c.created, chunks[0].created, kind);
    }
    if (KINDS[kind].translated) checkGyreId(chunks[0].id, chunks[0].created);
    else assert.equal(chunks[0].id, `chatcmpl-mock-${hex8(hashOf(stats.last_request.body))}`, kind);
  }
});

test('every kind makes a tool call that fits the schema, then answers its result, with the openai kind\'s usage', async () => {
  const params = { messages: ASK, tools: [WEATHER] };
  const ref = await chat('openai', params);
  // prompt: 8 words + 4; completion: 1 word of arguments + 4.
  assert.deepEqual(ref.json.usage, { prompt_tokens: 12, completion_tokens: 5, total_tokens: 17 });
  const result = '4 degrees and snowing';
  for (const kind of NAMES) {
    const first = await chat(kind, params);
    assert.equal(first.status, 200, `${kind}: ${first.text}`);
    const seen = await lastSeen();
    assert.equal(first.json.choices[0].finish_reason, 'tool_calls', kind);
    const msg = first.json.choices[0].message;
    assert.equal(msg.role, 'assistant');
    assert.equal(msg.content, null, kind);
    assert.deepEqual(msg.tool_calls, [{ id: mockCallId(kind, seen.body, first.json.id), type: 'function', function: { name: 'get_weather', arguments: WEATHER_ARGS } }], kind);
    assert.deepEqual(JSON.parse(msg.tool_calls[0].function.arguments), { city: 'mock' });
    assert.deepEqual(usageOf(first.json.usage), ref.json.usage, kind);
    // The tool reached the provider in its own dialect's shape.
    const up = JSON.parse(seen.body);
    if (kind === 'anthropic') assert.deepEqual(up.tools, [{ name: 'get_weather', description: 'The current weather in a city', input_schema: WEATHER.function.parameters }]);
    if (kind === 'gemini') assert.equal(up.tools[0].functionDeclarations[0].name, 'get_weather');
    if (kind === 'bedrock') assert.deepEqual(up.toolConfig.tools[0].toolSpec.inputSchema, { json: WEATHER.function.parameters });

    // The application runs the tool and sends its result back with the assistant's message.
    const call = msg.tool_calls[0];
    const second = await chat(kind, {
      tools: [WEATHER],
      messages: [...ASK, { role: 'assistant', content: null, tool_calls: msg.tool_calls }, { role: 'tool', tool_call_id: call.id, content: result }],
    });
    assert.equal(second.status, 200, `${kind}: ${second.text}`);
    assert.equal(second.json.choices[0].finish_reason, 'stop', kind);
    assert.equal(second.json.choices[0].message.content, `Mock reply to tool result: ${result}`, kind);
    assert.equal(second.json.choices[0].message.tool_calls, undefined, kind);
    // prompt: (8 + 4) + (0 + 4) + (4 + 4); completion: 9 words.
    assert.deepEqual(usageOf(second.json.usage), { prompt_tokens: 24, completion_tokens: 9, total_tokens: 33 }, kind);
    const up2 = JSON.parse((await lastSeen()).body);
    if (kind === 'anthropic') {
      assert.deepEqual(up2.messages[1], { role: 'assistant', content: [{ type: 'tool_use', id: call.id, name: 'get_weather', input: { city: 'mock' } }] });
      assert.deepEqual(up2.messages[2], { role: 'user', content: [{ type: 'tool_result', tool_use_id: call.id, content: result }] });
    }
    if (kind === 'gemini') {
      assert.deepEqual(up2.contents[1], { role: 'model', parts: [{ functionCall: { name: 'get_weather', args: { city: 'mock' } } }] });
      assert.deepEqual(up2.contents[2], { role: 'user', parts: [{ functionResponse: { name: 'get_weather', response: { result } } }] });
    }
    if (kind === 'bedrock') {
      assert.deepEqual(up2.messages[1], { role: 'assistant', content: [{ toolUse: { toolUseId: call.id, name: 'get_weather', input: { city: 'mock' } } }] });
      assert.deepEqual(up2.messages[2], { role: 'user', content: [{ toolResult: { toolUseId: call.id, content: [{ text: result }] } }] });
    }
  }
});

test('gemini gets a tool result that is a JSON object as that object (functionResponse.response.result), a string result as the string', async () => {
  const msg = { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: WEATHER_ARGS } }] };
  const json = '{"temp": 4, "sky": "snow"}';
  const r = await chat('gemini', { tools: [WEATHER], messages: [...ASK, msg, { role: 'tool', tool_call_id: 'call_1', content: json }] });
  assert.equal(r.status, 200, r.text);
  const up = JSON.parse((await lastSeen()).body);
  assert.deepEqual(up.contents[2].parts, [{ functionResponse: { name: 'get_weather', response: { result: { temp: 4, sky: 'snow' } } } }]);
  // The mock reads a response whose result is not a string as its compact JSON.
  assert.equal(r.json.choices[0].message.content, 'Mock reply to tool result: {"result":{"temp":4,"sky":"snow"}}');
  // A JSON value that is not an object stays text.
  await chat('gemini', { tools: [WEATHER], messages: [...ASK, msg, { role: 'tool', tool_call_id: 'call_1', content: '[1,2]' }] });
  assert.deepEqual(JSON.parse((await lastSeen()).body).contents[2].parts[0].functionResponse.response, { result: '[1,2]' });
});

test('every kind streams a tool call whose deltas assemble into the non-streamed call', async () => {
  const params = { messages: ASK, tools: [WEATHER], stream_options: { include_usage: true } };
  for (const kind of NAMES) {
    const r = await chatStream(kind, params);
    const seen = await lastSeen();
    const { calls, fragments } = assembleToolCalls(r.chunks);
    assert.deepEqual(calls, [{ id: mockCallId(kind, seen.body, r.chunks[0].id), type: 'function', function: { name: 'get_weather', arguments: WEATHER_ARGS } }], kind);
    assert.deepEqual(JSON.parse(calls[0].function.arguments), { city: 'mock' });
    // 15 bytes of arguments in three pieces of 5; Gemini sends a function call whole.
    assert.deepEqual(fragments, kind === 'gemini' ? [[WEATHER_ARGS]] : [['{"cit', 'y":"m', 'ock"}']], kind);
    assert.equal(r.chunks.filter((c) => c.choices[0]?.delta?.content).length, 0, kind);
    assert.equal(r.chunks.at(-2).choices[0].finish_reason, 'tool_calls', kind);
    assert.deepEqual(usageOf(r.chunks.at(-1).usage), { prompt_tokens: 12, completion_tokens: 5, total_tokens: 17 }, kind);
    // The provider's stream passes through (openai, azure) or is gyre's (a tool call's role chunk has content "").
    assert.deepEqual(r.chunks[0].choices[0].delta, { role: 'assistant', content: KINDS[kind].translated ? '' : null }, kind);

    const plain = await chat(kind, { messages: ASK, tools: [WEATHER] });
    assert.deepEqual({ ...calls[0], id: undefined }, { ...plain.json.choices[0].message.tool_calls[0], id: undefined }, kind);
  }
});

test('an image_url data URL part is accepted by every kind and reaches the provider in its own shape', async () => {
  const content = [{ type: 'text', text: 'Describe this picture' }, { type: 'image_url', image_url: { url: `data:image/png;base64,${PNG_B64}` } }];
  for (const kind of NAMES) {
    const r = await chat(kind, { messages: [{ role: 'user', content }] });
    assert.equal(r.status, 200, `${kind}: ${r.text}`);
    assert.equal(r.json.choices[0].message.content, 'Mock reply to: Describe this picture', kind);
    // prompt: 3 words + 4; completion: 6 words.
    assert.deepEqual(usageOf(r.json.usage), { prompt_tokens: 7, completion_tokens: 6, total_tokens: 13 }, kind);
    const up = JSON.parse((await lastSeen()).body);
    switch (kind) {
      case 'openai': case 'azure':
        assert.deepEqual(up.messages[0].content, content);
        break;
      case 'anthropic':
        assert.deepEqual(up.messages[0].content, [{ type: 'text', text: 'Describe this picture' }, { type: 'image', source: { type: 'base64', media_type: 'image/png', data: PNG_B64 } }]);
        break;
      case 'gemini':
        assert.deepEqual(up.contents[0].parts, [{ text: 'Describe this picture' }, { inlineData: { mimeType: 'image/png', data: PNG_B64 } }]);
        break;
      case 'bedrock':
        assert.deepEqual(up.messages[0].content, [{ text: 'Describe this picture' }, { image: { format: 'png', source: { bytes: PNG_B64 } } }]);
        break;
    }
  }
});

test('stop sequences and max_tokens end every kind\'s answer where the openai kind\'s ends', async () => {
  const q = [{ role: 'user', content: 'What is two plus two?' }];
  for (const kind of NAMES) {
    const stopped = await chat(kind, { messages: q, stop: ['plus'] });
    assert.equal(stopped.status, 200, `${kind}: ${stopped.text}`);
    assert.equal(stopped.json.choices[0].message.content, 'Mock reply to: What is two ', kind);
    assert.equal(stopped.json.choices[0].finish_reason, 'stop', kind);
    assert.deepEqual(usageOf(stopped.json.usage), { prompt_tokens: 9, completion_tokens: 6, total_tokens: 15 }, kind);
    const up = JSON.parse((await lastSeen()).body);
    if (kind === 'anthropic') assert.deepEqual(up.stop_sequences, ['plus']);
    if (kind === 'gemini') assert.deepEqual(up.generationConfig.stopSequences, ['plus']);
    if (kind === 'bedrock') assert.deepEqual(up.inferenceConfig.stopSequences, ['plus']);

    const cut = await chat(kind, { messages: q, max_tokens: 3 });
    assert.equal(cut.json.choices[0].message.content, 'Mock reply to:', kind);
    assert.equal(cut.json.choices[0].finish_reason, 'length', kind);
    assert.deepEqual(usageOf(cut.json.usage), { prompt_tokens: 9, completion_tokens: 3, total_tokens: 12 }, kind);
    const up2 = JSON.parse((await lastSeen()).body);
    if (kind === 'anthropic') assert.equal(up2.max_tokens, 3);
    if (kind === 'gemini') assert.equal(up2.generationConfig.maxOutputTokens, 3);
    if (kind === 'bedrock') assert.equal(up2.inferenceConfig.maxTokens, 3);
  }
});

test('a provider\'s 429 reaches the OpenAI client as a 429 with Retry-After: as it is from openai/azure, OpenAI-shaped and naming the provider from the others', async () => {
  await withFault('429', async () => {
    for (const kind of NAMES) {
      const r = await chat(kind, { messages: SUM });
      assert.equal(r.status, 429, `${kind}: ${r.text}`);
      assert.equal(r.headers.get('retry-after'), '1', kind);
      assert.equal(r.headers.get('content-type'), 'application/json', kind);
      checkGyreHeaders(kind, r.headers);
      const message = 'Rate limit reached for requests (gyre-mock fault 429).';
      if (kind === 'openai') assert.deepEqual(r.json, { error: { message, type: 'requests', param: null, code: 'rate_limit_exceeded' } });
      else if (kind === 'azure') assert.deepEqual(r.json, { error: { code: '429', message } });
      else assert.deepEqual(r.json, { error: { message: `provider '${KINDS[kind].provider}' answered 429: ${message}`, type: 'rate_limit_error', param: null, code: 'upstream_status' } }, kind);
    }
  });
  // Each 429 rested its provider's only key for a second.
  await sleep(1100);
});

// ---- through gyre's Anthropic endpoint (/v1/messages) ----

const ANTHROPIC_HEADERS = { 'anthropic-version': '2023-06-01', 'x-api-key': CLIENT_KEY };
const messagesTo = (kind, body) => post('/v1/messages', { model: KINDS[kind].route, max_tokens: 100, ...body }, ANTHROPIC_HEADERS);
const anthropicUsage = (input, output) => ({ input_tokens: input, output_tokens: output, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 });
const MSG_KINDS = ['openai', 'gemini', 'bedrock'];

/** Anthropic's stream as [{event, data}]. */
function sseEvents(text) {
  return text.split('\n\n').filter((b) => b).map((b) => {
    const lines = b.split('\n');
    assert.ok(lines[0].startsWith('event: '), b);
    assert.ok(lines[1].startsWith('data: '), b);
    assert.equal(lines.length, 2, b);
    return { event: lines[0].slice(7), data: JSON.parse(lines[1].slice(6)) };
  });
}

/** The message id gyre derives from an OpenAI completion id. */
const msgIdFrom = (chatcmplId) => `msg_${chatcmplId.slice('chatcmpl-'.length)}`;

test('/v1/messages to the anthropic provider passes the mock\'s message object through exactly', async () => {
  const body = { model: KINDS.anthropic.route, max_tokens: 100, system: 'You are terse.', messages: [{ role: 'user', content: 'What is two plus two?' }] };
  await resetMock();
  const r = await post('/v1/messages', body, ANTHROPIC_HEADERS);
  assert.equal(r.status, 200, r.text);
  checkGyreHeaders('anthropic', r.headers);
  const stats = await mock.stats();
  assert.deepEqual([stats.paths, stats.keys], [{ '/v1/messages': 1 }, { 'sk-ant-gyre': 1 }]);
  // The client's body with only the model changed, and gyre's key instead of the client's.
  const sent = JSON.stringify({ ...body, model: 'claude-mock' });
  assert.equal(stats.last_request.body, sent);
  assert.equal(stats.last_request.headers['x-api-key'], 'sk-ant-gyre');
  assert.equal(stats.last_request.headers['anthropic-version'], '2023-06-01');
  assert.deepEqual(r.json, {
    id: `msg_mock_${hex8(hashOf(sent))}`, type: 'message', role: 'assistant', model: 'claude-mock',
    content: [{ type: 'text', text: 'Mock reply to: What is two plus two?' }],
    stop_reason: 'end_turn', stop_sequence: null, usage: anthropicUsage(16, 8),
  });
  // Exactly what the mock answers the same body directly.
  const direct = await fetch(`${mock.url}/v1/messages`, { method: 'POST', headers: { 'content-type': 'application/json', 'anthropic-version': '2023-06-01', 'x-api-key': 'sk-ant-gyre' }, body: sent });
  assert.equal(r.text, await direct.text());
});

test('/v1/messages to openai, gemini and bedrock providers is translated: the same text, stop_reason and usage as the anthropic provider gives', async () => {
  const body = { system: 'You are terse.', messages: [{ role: 'user', content: 'What is two plus two?' }] };
  const ref = await messagesTo('anthropic', body);
  for (const kind of MSG_KINDS) {
    await resetMock();
    const r = await messagesTo(kind, body);
    assert.equal(r.status, 200, `${kind}: ${r.text}`);
    assert.equal(r.headers.get('content-type'), 'application/json');
    checkGyreHeaders(kind, r.headers);
    const stats = await mock.stats();
    assert.deepEqual(stats.paths, { [upstreamPath(kind, false)[0]]: 1 }, kind);
    assert.deepEqual(stats.keys, { [KINDS[kind].key]: 1 }, kind);
    assert.doesNotMatch(JSON.stringify(stats), new RegExp(CLIENT_KEY));
    const { id, ...rest } = r.json;
    if (kind === 'openai') assert.equal(id, msgIdFrom(chatId(JSON.parse(stats.last_request.body))));
    else assert.match(id, /^msg_gyre-[0-9a-f]{16}$/);
    const { id: _refId, ...refRest } = ref.json;
    assert.deepEqual(rest, { ...refRest, model: KINDS[kind].model }, kind);
  }
  // The anthropic provider's own stop reasons and usage, for reference.
  assert.equal(ref.json.stop_reason, 'end_turn');
  assert.deepEqual(ref.json.usage, anthropicUsage(16, 8));
});

test('/v1/messages max_tokens ends a translated answer with stop_reason max_tokens; a stop sequence ends it as end_turn (the OpenAI pivot does not say which sequence met)', async () => {
  const q = [{ role: 'user', content: 'What is two plus two?' }];
  const refStop = await messagesTo('anthropic', { messages: q, stop_sequences: ['plus'] });
  assert.deepEqual([refStop.json.content, refStop.json.stop_reason, refStop.json.stop_sequence], [[{ type: 'text', text: 'Mock reply to: What is two ' }], 'stop_sequence', 'plus']);
  for (const kind of MSG_KINDS) {
    const cut = await messagesTo(kind, { messages: q, max_tokens: 3 });
    assert.deepEqual([cut.json.content, cut.json.stop_reason, cut.json.stop_sequence], [[{ type: 'text', text: 'Mock reply to:' }], 'max_tokens', null], kind);
    assert.deepEqual([cut.json.usage.input_tokens, cut.json.usage.output_tokens], [9, 3], kind);
    const stopped = await messagesTo(kind, { messages: q, stop_sequences: ['plus'] });
    assert.deepEqual([stopped.json.content, stopped.json.stop_reason, stopped.json.stop_sequence], [[{ type: 'text', text: 'Mock reply to: What is two ' }], 'end_turn', null], kind);
  }
});

/** Checks a text stream's event sequence and returns its text. */
function checkTextStream(events, { ping, kind }) {
  const names = events.map((e) => e.event);
  const deltas = names.filter((n) => n === 'content_block_delta').length;
  assert.deepEqual(names, ['message_start', 'content_block_start', ...(ping ? ['ping'] : []), ...Array(deltas).fill('content_block_delta'), 'content_block_stop', 'message_delta', 'message_stop'], kind);
  for (const e of events) assert.equal(e.data.type, e.event);
  const start = events[0].data.message;
  assert.deepEqual([start.type, start.role, start.content, start.stop_reason, start.stop_sequence], ['message', 'assistant', [], null, null], kind);
  assert.deepEqual(events[1].data, { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } }, kind);
  const text = events.filter((e) => e.event === 'content_block_delta').map((e) => {
    assert.equal(e.data.index, 0);
    assert.equal(e.data.delta.type, 'text_delta');
    return e.data.delta.text;
  });
  assert.deepEqual(events.at(-3).data, { type: 'content_block_stop', index: 0 });
  assert.deepEqual(events.at(-1).data, { type: 'message_stop' });
  return { text, start, delta: events.at(-2).data };
}

test('/v1/messages streams: Anthropic\'s exact event sequence, passed through from anthropic and built by gyre for the others', async () => {
  const body = { stream: true, messages: [{ role: 'user', content: 'Tell me a short story about a lighthouse keeper' }] };
  const words = ['Mock ', 'reply ', 'to: ', 'Tell ', 'me ', 'a ', 'short ', 'story ', 'about ', 'a ', 'lighthouse ', 'keeper'];
  const ref = await messagesTo('anthropic', body);
  assert.equal(ref.status, 200, ref.text);
  assert.equal(ref.headers.get('content-type'), 'text/event-stream');
  const sent = (await lastSeen()).body;
  const refEv = checkTextStream(sseEvents(ref.text), { ping: true, kind: 'anthropic' });
  assert.deepEqual(refEv.text, words);
  assert.equal(refEv.start.id, `msg_mock_${hex8(hashOf(sent))}`);
  assert.equal(refEv.start.model, 'claude-mock');
  assert.deepEqual(refEv.start.usage, anthropicUsage(13, 1));
  assert.deepEqual(refEv.delta, { type: 'message_delta', delta: { stop_reason: 'end_turn', stop_sequence: null }, usage: { output_tokens: 12 } });
  // Byte for byte what the mock streams for the same body.
  const direct = await fetch(`${mock.url}/v1/messages`, { method: 'POST', headers: { 'content-type': 'application/json', 'anthropic-version': '2023-06-01', 'x-api-key': 'sk-ant-gyre' }, body: sent });
  assert.equal(ref.text, await direct.text());

  for (const kind of MSG_KINDS) {
    await resetMock();
    const r = await messagesTo(kind, body);
    assert.equal(r.status, 200, `${kind}: ${r.text}`);
    assert.equal(r.headers.get('content-type'), 'text/event-stream; charset=utf-8');
    checkGyreHeaders(kind, r.headers);
    assert.deepEqual((await mock.stats()).paths, { [upstreamPath(kind, true)[0]]: 1 }, kind);
    const ev = checkTextStream(sseEvents(r.text), { ping: false, kind });
    assert.deepEqual(ev.text, words, kind);
    assert.equal(ev.text.join(''), 'Mock reply to: Tell me a short story about a lighthouse keeper');
    assert.match(ev.start.id, kind === 'openai' ? /^msg_mock-[0-9a-f]{8}$/ : /^msg_gyre-[0-9a-f]{16}$/, kind);
    // The provider's usage arrives at its stream's end, so message_delta carries all of it.
    assert.deepEqual(ev.delta, { type: 'message_delta', delta: { stop_reason: 'end_turn', stop_sequence: null }, usage: { input_tokens: 13, cache_creation_input_tokens: 0, cache_read_input_tokens: 0, output_tokens: 12 } }, kind);
  }
});

test('a translated /v1/messages stream names the same model as the unstreamed answer (the target model, not the route)', async () => {
  const body = { messages: [{ role: 'user', content: 'What is two plus two?' }] };
  for (const kind of MSG_KINDS) {
    const whole = await messagesTo(kind, body);
    assert.equal(whole.json.model, KINDS[kind].model, kind);
    const streamed = sseEvents((await messagesTo(kind, { ...body, stream: true })).text);
    assert.equal(streamed[0].data.message.model, whole.json.model, kind);
  }
});

test('/v1/messages tool_use round trip, streamed and not, on every provider kind', async () => {
  const tools = [{ name: 'get_weather', description: 'The current weather in a city', input_schema: WEATHER.function.parameters }];
  const ask = [{ role: 'user', content: 'What is the weather in Oslo right now?' }];
  for (const kind of ['anthropic', ...MSG_KINDS]) {
    const first = await messagesTo(kind, { tools, messages: ask });
    assert.equal(first.status, 200, `${kind}: ${first.text}`);
    const seen = await lastSeen();
    assert.equal(first.json.stop_reason, 'tool_use', kind);
    const use = first.json.content[0];
    assert.equal(first.json.content.length, 1, kind);
    const gyreId = kind === 'gemini' ? `chatcmpl-${first.json.id.slice('msg_'.length)}` : null;
    assert.deepEqual(use, { type: 'tool_use', id: mockCallId(kind, seen.body, gyreId), name: 'get_weather', input: { city: 'mock' } }, kind);
    assert.deepEqual([first.json.usage.input_tokens, first.json.usage.output_tokens], [12, 5], kind);

    const second = await messagesTo(kind, {
      tools,
      messages: [...ask, { role: 'assistant', content: [use] }, { role: 'user', content: [{ type: 'tool_result', tool_use_id: use.id, content: '4 degrees and snowing' }] }],
    });
    assert.equal(second.status, 200, `${kind}: ${second.text}`);
    assert.deepEqual(second.json.content, [{ type: 'text', text: 'Mock reply to tool result: 4 degrees and snowing' }], kind);
    assert.equal(second.json.stop_reason, 'end_turn', kind);
    // prompt: (8 + 4) + (0 + 4) + (4 + 4); completion: 9 words.
    assert.deepEqual([second.json.usage.input_tokens, second.json.usage.output_tokens], [24, 9], kind);

    const streamed = await messagesTo(kind, { tools, messages: ask, stream: true });
    const events = sseEvents(streamed.text);
    const names = events.map((e) => e.event).filter((n) => n !== 'ping');
    const parts = kind === 'gemini' ? [WEATHER_ARGS] : ['{"cit', 'y":"m', 'ock"}'];
    assert.deepEqual(names, ['message_start', 'content_block_start', ...parts.map(() => 'content_block_delta'), 'content_block_stop', 'message_delta', 'message_stop'], kind);
    const block = events.find((e) => e.event === 'content_block_start').data;
    assert.equal(block.content_block.type, 'tool_use');
    assert.equal(block.content_block.name, 'get_weather');
    assert.deepEqual(block.content_block.input, {});
    assert.match(block.content_block.id, /^(toolu_mock_|call_mock_|call_|tooluse_mock_)/);
    const partial = events.filter((e) => e.event === 'content_block_delta').map((e) => {
      assert.equal(e.data.delta.type, 'input_json_delta');
      return e.data.delta.partial_json;
    });
    assert.deepEqual(partial, parts, kind);
    assert.deepEqual(JSON.parse(partial.join('')), { city: 'mock' });
    assert.equal(events.find((e) => e.event === 'message_delta').data.delta.stop_reason, 'tool_use', kind);
  }
});

test('/v1/messages errors are Anthropic-shaped: 404 for an unknown model, 400 for a missing max_tokens, the provider\'s 429', async () => {
  const nf = await post('/v1/messages', { model: 'claude-nonexistent', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] }, ANTHROPIC_HEADERS);
  assert.equal(nf.status, 404);
  assert.equal(nf.headers.get('content-type'), 'application/json');
  assert.deepEqual(nf.json, { type: 'error', error: { type: 'not_found_error', message: `the model 'claude-nonexistent' does not exist on this gateway; available: ${NAMES.map((k) => `'${KINDS[k].route}'`).join(', ')}, ${NAMES.map((k) => `'${KINDS[k].provider}/<model>'`).join(', ')}` } });

  for (const kind of ['anthropic', ...MSG_KINDS]) {
    const bad = await post('/v1/messages', { model: KINDS[kind].route, messages: [{ role: 'user', content: 'hi' }] }, ANTHROPIC_HEADERS);
    assert.equal(bad.status, 400, kind);
    assert.deepEqual(bad.json, { type: 'error', error: { type: 'invalid_request_error', message: 'max_tokens: field required' } }, kind);
  }

  await resetMock();
  await withFault('429', async () => {
    for (const kind of ['anthropic', ...MSG_KINDS]) {
      const r = await messagesTo(kind, { messages: [{ role: 'user', content: 'hi' }] });
      assert.equal(r.status, 429, `${kind}: ${r.text}`);
      assert.equal(r.headers.get('retry-after'), '1', kind);
      const message = 'Rate limit reached for requests (gyre-mock fault 429).';
      // The anthropic provider's own error body; the others' message, named after their provider.
      assert.deepEqual(r.json, { type: 'error', error: { type: 'rate_limit_error', message: kind === 'anthropic' ? message : `provider '${KINDS[kind].provider}' answered 429: ${message}` } }, kind);
    }
  });
  // Only the four provider calls reached the mock: the 404 and the 400s were gyre's own.
  assert.equal((await mock.stats()).requests, 4);
  await sleep(1100);
});
