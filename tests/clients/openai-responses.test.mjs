// The OpenAI Node SDK's Responses API (client.responses.create and
// client.responses.stream, openai 6.49.0) against gyre, on every provider kind
// behind it, with gyre-mock as each provider.  An openai provider gets the
// request as the client wrote it (POST /v1/responses, the route's model
// spliced in) and its answer is relayed as it came; every other kind (azure
// through its chat deployments, anthropic, gemini, bedrock) gets it translated
// and gyre writes the Response.  The mock gives one conversation the same
// answer and token counts in every dialect (docs/mock.md), so each kind's
// Response is checked against the same expected text, tool call and usage.
// Then the tool round trip (function_call → function_call_output → answer),
// previous_response_id answered from gyre's trace store, store: false, and
// errors.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import path from 'node:path';
import { startGyre, startMock, tmpdir } from '../lib/harness.mjs';

let mock, failing, gyre, client;

const KINDS = {
  openai: { route: 'via-openai', model: 'gpt-4o-mini', native: true },
  azure: { route: 'via-azure', model: 'gyre-deployment', native: false },
  anthropic: { route: 'via-anthropic', model: 'claude-mock', native: false },
  gemini: { route: 'via-gemini', model: 'gemini-mock', native: false },
  bedrock: { route: 'via-bedrock', model: 'anthropic.claude-mock-v1:0', native: false },
};
const NAMES = Object.keys(KINDS);

/** Where each kind's provider is asked, as the mock counts it (query removed). */
function upstreamPath(kind, stream) {
  switch (kind) {
    case 'openai': return '/v1/responses';
    case 'azure': return '/openai/deployments/gyre-deployment/chat/completions';
    case 'anthropic': return '/v1/messages';
    case 'gemini': return `/v1beta/models/gemini-mock:${stream ? 'streamGenerateContent' : 'generateContent'}`;
    case 'bedrock': return `/model/anthropic.claude-mock-v1%3A0/${stream ? 'converse-stream' : 'converse'}`;
  }
  throw new Error(kind);
}

const WEATHER = {
  type: 'function',
  name: 'get_weather',
  description: 'The current weather in a city',
  parameters: {
    type: 'object',
    properties: { city: { type: 'string' }, unit: { type: 'string', enum: ['c', 'f'] } },
    required: ['city'],
  },
  strict: false,
};
// Only `city` is required, so the mock fills in only `city`, with "mock".
const WEATHER_ARGS = '{"city":"mock"}';
const ASK = 'What is the weather in Oslo right now?';

// The mock's rules: prompt tokens are Σ (words + 4) over the messages; completion tokens the reply's words, or
// for a tool call the words of its arguments + 4.
const words = (s) => s.split(/\s+/).filter(Boolean).length;
const promptTokens = (...texts) => texts.reduce((n, t) => n + words(t) + 4, 0);
const usage = (input, output) => ({
  input_tokens: input, input_tokens_details: { cached_tokens: 0 },
  output_tokens: output, output_tokens_details: { reasoning_tokens: 0 }, total_tokens: input + output,
});

before(async () => {
  mock = await startMock();
  // An openai provider that answers every request 500: the primary of a route whose fallback is anthropic.
  failing = await startMock(['--fault', '500']);
  // Traces are stored, bodies included (capture is on by default): previous_response_id reads them back.
  gyre = await startGyre(`workers: 1
store: {sqlite: "${path.join(tmpdir('gyre-responses-'), 'gyre.db')}", traces: true}
providers:
  - {name: p-openai, kind: openai, base_url: "${mock.v1}", keys: [sk-openai-gyre]}
  - {name: p-azure, kind: azure, base_url: "${mock.url}", keys: [azure-key-gyre]}
  - {name: p-anthropic, kind: anthropic, base_url: "${mock.v1}", keys: [sk-ant-gyre]}
  - {name: p-gemini, kind: gemini, base_url: "${mock.url}/v1beta", keys: [gemini-key-gyre]}
  - {name: p-bedrock, kind: bedrock, base_url: "${mock.url}", region: us-west-2, keys: ["AKIDGYREMOCK:gyre-mock-secret"]}
  - {name: p-failing, kind: openai, base_url: "${failing.v1}", keys: [sk-failing]}
routes:
${NAMES.map((k) => `  - {name: ${KINDS[k].route}, targets: [{provider: p-${k}, model: "${KINDS[k].model}"}]}`).join('\n')}
  - {name: quiet, capture: false, targets: [{provider: p-anthropic, model: claude-mock}]}
  - {name: falls-back, targets: [{provider: p-failing, model: gpt-4o-mini}], fallbacks: [{provider: p-anthropic, model: claude-mock}]}
`);
  client = new OpenAI({ baseURL: `${gyre.url}/v1`, apiKey: 'client-key-not-forwarded', maxRetries: 0, timeout: 10000 });
});

after(async () => {
  assert.equal((await gyre.stop()).code, 0);
  assert.equal((await mock.stop()).code, 0);
  assert.equal((await failing.stop()).code, 0);
});

async function lastRequest() {
  const s = await mock.stats();
  return { path: s.last_request.path.split('?')[0], body: JSON.parse(s.last_request.body), count: s.requests };
}

async function resetMock() {
  const r = await fetch(`${mock.url}/_mock/reset`, { method: 'POST' });
  assert.equal(r.status, 200);
  await r.json();
}

/** The id a Response must have: the mock's for a native call, gyre's ("resp_gyre_" + its trace id) otherwise. */
function checkId(kind, id) {
  if (KINDS[kind].native) assert.match(id, /^resp_mock_[0-9a-f]{8}$/);
  else assert.match(id, /^resp_gyre_[0-9a-f]{32}$/);
}

/** The text message item of a Response, checked whole but for its id. */
function checkMessage(kind, item, text) {
  assert.match(item.id, KINDS[kind].native ? /^msg_mock_[0-9a-f]{8}$/ : /^msg_gyre_[0-9a-f]{32}_0$/);
  // The stream helper's final Response adds `parsed` (its own, not the wire's) to each part.
  const content = item.content.map(({ parsed, ...part }) => { assert.ok(parsed === undefined || parsed === null); return part; });
  assert.deepEqual({ ...item, id: undefined, content }, {
    id: undefined, type: 'message', status: 'completed', role: 'assistant',
    content: [{ type: 'output_text', annotations: [], logprobs: [], text }],
  });
}

function checkCall(kind, item) {
  assert.equal(item.type, 'function_call');
  assert.equal(item.status, 'completed');
  assert.equal(item.name, 'get_weather');
  assert.equal(item.arguments, WEATHER_ARGS);
  assert.match(item.call_id, /^(call_mock_|toolu_mock_|tooluse_mock_|call_)[0-9a-z_]+$/);
  assert.match(item.id, KINDS[kind].native ? /^fc_mock_[0-9a-f]{8}$/ : /^fc_gyre_[0-9a-f]{32}_0$/);
}

for (const kind of NAMES) {
  const { route } = KINDS[kind];

  test(`${kind}: responses.create answers in a Response, with usage`, async () => {
    await resetMock();
    const r = await client.responses.create({ model: route, instructions: 'You are terse.', input: 'What is two plus two?' });
    checkId(kind, r.id);
    assert.equal(r.object, 'response');
    assert.equal(r.status, 'completed');
    assert.equal(r.output_text, 'Mock reply to: What is two plus two?');
    assert.equal(r.output.length, 1);
    checkMessage(kind, r.output[0], 'Mock reply to: What is two plus two?');
    assert.deepEqual(r.usage, usage(promptTokens('You are terse.', 'What is two plus two?'), words(r.output_text)));
    assert.equal(r.instructions, 'You are terse.');
    const last = await lastRequest();
    assert.equal(last.path, upstreamPath(kind, false));
    if (kind === 'openai') {
      // Native: the client's body as it was, the route's model in place of its name.
      assert.deepEqual(last.body, { model: 'gpt-4o-mini', instructions: 'You are terse.', input: 'What is two plus two?' });
    }
  });

  test(`${kind}: responses.stream gives the documented events and the same final Response`, async () => {
    await resetMock();
    const stream = client.responses.stream({ model: route, input: 'Say hello to the world' });
    const events = [];
    for await (const e of stream) events.push(e);
    const final = await stream.finalResponse();
    const types = events.map((e) => e.type);
    const deltas = types.filter((t) => t === 'response.output_text.delta').length;
    assert.deepEqual(types, [
      'response.created', 'response.in_progress', 'response.output_item.added', 'response.content_part.added',
      ...Array(deltas).fill('response.output_text.delta'),
      'response.output_text.done', 'response.content_part.done', 'response.output_item.done', 'response.completed',
    ]);
    assert.ok(deltas >= 1);
    assert.deepEqual(events.map((e) => e.sequence_number), events.map((_, i) => i));
    const text = 'Mock reply to: Say hello to the world';
    assert.equal(events.filter((e) => e.type === 'response.output_text.delta').map((e) => e.delta).join(''), text);
    assert.equal(final.output_text, text);
    assert.equal(final.status, 'completed');
    checkId(kind, final.id);
    assert.equal(events[0].response.id, final.id);
    checkMessage(kind, final.output[0], text);
    assert.deepEqual(final.usage, usage(promptTokens('Say hello to the world'), words(text)));
    assert.equal((await lastRequest()).path, upstreamPath(kind, true));
  });

  for (const streamed of [false, true]) {
    test(`${kind}: a tool round trip, ${streamed ? 'streamed' : 'not streamed'}: function_call, function_call_output, answer`, async () => {
      const ask = async (input) => {
        if (!streamed) return client.responses.create({ model: route, input, tools: [WEATHER] });
        const s = client.responses.stream({ model: route, input, tools: [WEATHER] });
        const types = [];
        for await (const e of s) types.push(e.type);
        const final = await s.finalResponse();
        return Object.assign(final, { types });
      };
      const first = await ask([{ role: 'user', content: ASK }]);
      assert.equal(first.output.length, 1);
      const call = first.output[0];
      checkCall(kind, call);
      assert.equal(first.output_text, '');
      assert.deepEqual(first.usage, usage(promptTokens(ASK), words(WEATHER_ARGS) + 4));
      if (streamed) {
        const n = first.types.filter((t) => t === 'response.function_call_arguments.delta').length;
        assert.ok(n >= 1);
        assert.deepEqual(first.types, [
          'response.created', 'response.in_progress', 'response.output_item.added',
          ...Array(n).fill('response.function_call_arguments.delta'),
          'response.function_call_arguments.done', 'response.output_item.done', 'response.completed',
        ]);
      }
      // The client runs the tool and sends its output with the conversation so far.
      const second = await ask([
        { role: 'user', content: ASK },
        ...first.output,
        { type: 'function_call_output', call_id: call.call_id, output: 'Sunny, 21 C' },
      ]);
      assert.equal(second.output_text, 'Mock reply to tool result: Sunny, 21 C');
      assert.equal(second.status, 'completed');
      // user + assistant (the call, no text) + tool result.
      assert.equal(second.usage.input_tokens, promptTokens(ASK, '', 'Sunny, 21 C'));
    });
  }
}

test('json_schema text.format reaches an OpenAI-speaking provider as response_format', async () => {
  await resetMock();
  const format = { type: 'json_schema', name: 'answer', schema: { type: 'object', properties: { n: { type: 'integer' } } }, strict: true };
  const r = await client.responses.create({ model: 'via-azure', input: 'Two plus two?', text: { format }, max_output_tokens: 50, temperature: 0.2 });
  assert.equal(r.status, 'completed');
  assert.deepEqual(r.text, { format });
  const last = await lastRequest();
  assert.deepEqual(last.body.response_format, { type: 'json_schema', json_schema: { name: 'answer', schema: format.schema, strict: true } });
  assert.equal(last.body.max_completion_tokens, 50);
  assert.equal(last.body.temperature, 0.2);
});

test('max_output_tokens cuts a translated answer: status incomplete, reason max_output_tokens', async () => {
  const r = await client.responses.create({ model: 'via-anthropic', input: 'Count one two three four five', max_output_tokens: 3 });
  assert.equal(r.status, 'incomplete');
  assert.deepEqual(r.incomplete_details, { reason: 'max_output_tokens' });
  assert.equal(r.output_text, 'Mock reply to:');
});

for (const kind of ['anthropic', 'gemini', 'bedrock', 'azure']) {
  test(`${kind}: previous_response_id continues a conversation from gyre's trace store`, async () => {
    const { route } = KINDS[kind];
    const first = await client.responses.create({ model: route, instructions: 'Remember names.', input: 'My name is Ada.' });
    assert.match(first.id, /^resp_gyre_[0-9a-f]{32}$/);
    await resetMock();
    const second = await client.responses.create({ model: route, previous_response_id: first.id, input: 'What is my name?' });
    assert.equal(second.output_text, 'Mock reply to: What is my name?');
    assert.equal(second.previous_response_id, first.id);
    // The provider saw the first turn (its input and gyre's answer) before the new question; the first turn's
    // instructions are not carried over, as OpenAI does not carry them.
    assert.equal(second.usage.input_tokens, promptTokens('My name is Ada.', 'Mock reply to: My name is Ada.', 'What is my name?'));
    const last = await lastRequest();
    const seen = JSON.stringify(last.body);
    assert.ok(seen.includes('My name is Ada.') && seen.includes('Mock reply to: My name is Ada.') && !seen.includes('Remember names.'), seen);
    // A third turn follows the chain back through both.
    const third = await client.responses.create({ model: route, previous_response_id: second.id, input: 'And again?' });
    assert.equal(third.usage.input_tokens, promptTokens('My name is Ada.', 'Mock reply to: My name is Ada.',
      'What is my name?', 'Mock reply to: What is my name?', 'And again?'));
  });
}

test('anthropic: the exact messages a continued conversation sends, streamed turns included', async () => {
  const s = client.responses.stream({ model: 'via-anthropic', input: 'My name is Ada.' });
  for await (const e of s) void e;
  const first = await s.finalResponse();
  await client.responses.create({ model: 'via-anthropic', previous_response_id: first.id, input: 'What is my name?' });
  const last = await lastRequest();
  assert.equal(last.path, '/v1/messages');
  const text = (m) => (typeof m.content === 'string' ? m.content : m.content.map((b) => b.text).join(''));
  assert.deepEqual(last.body.messages.map((m) => [m.role, text(m)]), [
    ['user', 'My name is Ada.'], ['assistant', 'Mock reply to: My name is Ada.'], ['user', 'What is my name?'],
  ]);
});

test('a tool round trip over previous_response_id: only the function_call_output is sent the second time', async () => {
  const first = await client.responses.create({ model: 'via-bedrock', input: ASK, tools: [WEATHER] });
  const call = first.output[0];
  checkCall('bedrock', call);
  const second = await client.responses.create({
    model: 'via-bedrock', previous_response_id: first.id, tools: [WEATHER],
    input: [{ type: 'function_call_output', call_id: call.call_id, output: 'Sunny, 21 C' }],
  });
  assert.equal(second.output_text, 'Mock reply to tool result: Sunny, 21 C');
});

test('gyre\'s Response is retrievable by its id from the trace store, as it was answered', async () => {
  const first = await client.responses.create({ model: 'via-gemini', instructions: 'Be brief.', input: 'Keep me.', tools: [WEATHER], tool_choice: 'none' });
  const again = await client.responses.retrieve(first.id);
  assert.equal(again.id, first.id);
  assert.equal(again.output_text, 'Mock reply to: Keep me.');
  assert.deepEqual(again.output, first.output);
  assert.deepEqual(again.usage, first.usage);
  assert.equal(again.instructions, 'Be brief.');
  assert.equal(again.model, first.model);
  await assert.rejects(client.responses.retrieve(`resp_gyre_${'0'.repeat(32)}`), (e) => e.status === 404);
});

test('a response made with store: false can be neither retrieved nor continued', async () => {
  const first = await client.responses.create({ model: 'via-anthropic', input: 'Forget me.', store: false });
  assert.equal(first.store, false);
  await assert.rejects(client.responses.retrieve(first.id), (e) => {
    assert.equal(e.status, 404);
    assert.equal(e.message, `404 No response found with id '${first.id}'.`);
    return true;
  });
  await assert.rejects(
    client.responses.create({ model: 'via-anthropic', previous_response_id: first.id, input: 'Who?' }),
    (e) => {
      assert.equal(e.status, 400);
      assert.equal(e.code, 'previous_response_not_found');
      assert.equal(e.param, 'previous_response_id');
      assert.match(e.message, /created with store: false/);
      return true;
    });
});

test('previous_response_id that gyre does not hold, or whose bodies were not captured, is a 400 naming it', async () => {
  const missing = `resp_gyre_${'0'.repeat(32)}`;
  await assert.rejects(client.responses.create({ model: 'via-gemini', previous_response_id: missing, input: 'x' }),
    (e) => e.status === 400 && e.param === 'previous_response_id' && /no such response/.test(e.message));
  const quiet = await client.responses.create({ model: 'quiet', input: 'Not kept.' });
  await assert.rejects(client.responses.create({ model: 'quiet', previous_response_id: quiet.id, input: 'x' }),
    (e) => e.status === 400 && e.param === 'previous_response_id' && /does not keep the bodies/.test(e.message));
});

test('an OpenAI response id goes only to an openai provider, as the client wrote it', async () => {
  await resetMock();
  // The mock keeps no responses: it answers OpenAI's 400 for an id it does not hold, which gyre relays.
  await assert.rejects(client.responses.create({ model: 'via-openai', previous_response_id: 'resp_abc123', input: 'x' }),
    (e) => e.status === 400 && e.code === 'previous_response_not_found');
  const last = await lastRequest();
  assert.equal(last.path, '/v1/responses');
  assert.equal(last.body.previous_response_id, 'resp_abc123');
  await assert.rejects(client.responses.create({ model: 'via-anthropic', previous_response_id: 'resp_abc123', input: 'x' }),
    (e) => e.status === 400);
});

test('hosted tools pass natively to openai and are refused for a translated kind', async () => {
  const r = await client.responses.create({ model: 'via-openai', input: 'hi', tools: [{ type: 'web_search' }] });
  assert.equal(r.status, 'completed');
  await assert.rejects(client.responses.create({ model: 'via-gemini', input: 'hi', tools: [{ type: 'web_search' }] }),
    (e) => e.status === 400);
});

test('a bad request is a 400 in OpenAI\'s error shape naming the field', async () => {
  await assert.rejects(client.responses.create({ model: 'via-anthropic', input: [{ role: 'robot', content: 'x' }] }),
    (e) => e.status === 400 && e.param === 'input[0].role' && e.type === 'invalid_request_error');
  await assert.rejects(client.responses.create({ model: 'nope', input: 'x' }),
    (e) => e.status === 404 && e.code === 'model_not_found');
});

test('a provider error is relayed in OpenAI\'s error shape, and a cut stream ends with error and response.failed', async () => {
  await mock.configure({ fault: '500', fault_rate: 1 });
  try {
    await assert.rejects(client.responses.create({ model: 'via-gemini', input: 'x' }), (e) => e.status === 500 || e.status === 502);
  } finally {
    await mock.configure({ fault: null, fault_rate: 1 });
  }
  await mock.configure({ fault: 'truncate', fault_rate: 1 });
  try {
    // The raw stream: the events so far, then `error` and `response.failed`, numbered on; then the cut itself.
    const raw = await client.responses.create({ model: 'via-anthropic', input: 'Tell me a long story please', stream: true });
    const events = [];
    await assert.rejects((async () => { for await (const e of raw) events.push(e); })(), /terminated/);
    assert.deepEqual(events.map((e) => e.type).slice(-2), ['error', 'response.failed']);
    assert.deepEqual(events.map((e) => e.sequence_number), events.map((_, i) => i));
    assert.equal(events.at(-2).code, 'stream_interrupted');
    const failed = events.at(-1).response;
    assert.equal(failed.status, 'failed');
    assert.equal(failed.error.code, 'server_error');
    assert.match(failed.error.message, /ended the stream before it was complete/);
    // The SDK's stream helper raises at the error event.
    const helper = client.responses.stream({ model: 'via-anthropic', input: 'Tell me a long story please' });
    await assert.rejects(helper.finalResponse(), (e) => /ended the stream before it was complete/.test(e.message));
  } finally {
    await mock.configure({ fault: null, fault_rate: 1 });
  }
});

test('a route whose openai primary answers 500 falls back to its anthropic provider, translated', async () => {
  await resetMock();
  const r = await client.responses.create({ model: 'falls-back', input: 'Say hello' });
  assert.equal(r.output_text, 'Mock reply to: Say hello');
  assert.match(r.id, /^resp_gyre_[0-9a-f]{32}$/);
  assert.equal((await failing.stats()).paths['/v1/responses'] >= 1, true);
  assert.equal((await lastRequest()).path, '/v1/messages');
  const s = client.responses.stream({ model: 'falls-back', input: 'Say hello' });
  for await (const e of s) void e;
  assert.equal((await s.finalResponse()).output_text, 'Mock reply to: Say hello');
});

/** The stored trace of an answer, by its x-gyre-trace-id, waiting (bounded) for the writer. */
async function traceOf(traceId) {
  for (let i = 0; i < 100; i++) {
    const r = await fetch(`${gyre.url}/api/traces/${traceId}`);
    if (r.status === 200) return r.json();
    await r.arrayBuffer();
    await new Promise((res) => setTimeout(res, 20));
  }
  throw new Error(`no trace ${traceId}`);
}

test('a native openai Responses call is traced with its tokens and its answer in chat\'s shape, streamed or not', async () => {
  const { data, response } = await client.responses.create({ model: 'via-openai', input: 'Trace me please' }).withResponse();
  const t = await traceOf(response.headers.get('x-gyre-trace-id'));
  assert.equal(t.endpoint, '/v1/responses');
  assert.equal(t.prompt_tokens, data.usage.input_tokens);
  assert.equal(t.completion_tokens, data.usage.output_tokens);
  assert.equal(t.response_body.choices[0].message.content, 'Mock reply to: Trace me please');
  assert.equal(t.request_body.input, 'Trace me please');
  const raw = await client.responses.create({ model: 'via-openai', input: 'Stream me please', stream: true }).withResponse();
  for await (const e of raw.data) void e;
  const ts = await traceOf(raw.response.headers.get('x-gyre-trace-id'));
  assert.equal(ts.stream, true);
  assert.equal(ts.prompt_tokens, promptTokens('Stream me please'));
  assert.equal(ts.completion_tokens, words('Mock reply to: Stream me please'));
  assert.equal(ts.response_body.choices[0].message.content, 'Mock reply to: Stream me please');
});
