// The official Anthropic Node SDK (@anthropic-ai/sdk 1.15.0) against gyre's
// /v1/messages, with gyre-mock as the provider, on two routes: `claude` to an
// anthropic provider (gyre passes the request and the answer through) and
// `gpt` to an openai provider (gyre translates both ways).  The passthrough
// route is checked against what the same SDK gets from the mock directly; the
// translated route against the passthrough route, since the mock gives one
// conversation the same text and token counts in every dialect
// (docs/mock.md).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import Anthropic from '@anthropic-ai/sdk';
import { startGyre, startMock, SLOW } from '../lib/harness.mjs';
import { utf8, fnv1a, hex8 } from '../lib/mock-rules.mjs';

let mock, gyre, client, direct;

// The SDK's key: gyre uses its own provider keys and must drop this one.
const SDK_KEY = 'sk-ant-sdk-key-not-forwarded';

const ROUTES = {
  passthrough: { route: 'claude', provider: 'anthropic-mock', model: 'claude-mock' },
  translated: { route: 'gpt', provider: 'openai-mock', model: 'gpt-4o-mini' },
};

const hashOf = (text) => fnv1a(utf8(text));
const usage = (input, output) => ({ input_tokens: input, output_tokens: output, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const WEATHER = {
  name: 'get_weather',
  description: 'The current weather in a city',
  input_schema: {
    type: 'object',
    properties: { city: { type: 'string' }, unit: { type: 'string', enum: ['c', 'f'] } },
    required: ['city'],
  },
};
const ASK = [{ role: 'user', content: 'What is the weather in Oslo right now?' }];

before(async () => {
  mock = await startMock();
  gyre = await startGyre(`workers: 1
providers:
  - {name: anthropic-mock, kind: anthropic, base_url: "${mock.v1}", keys: [sk-ant-gyre]}
  - {name: openai-mock, kind: openai, base_url: "${mock.v1}", keys: [sk-openai-gyre]}
routes:
  - name: claude
    targets: [{provider: anthropic-mock, model: claude-mock}]
  - name: gpt
    targets: [{provider: openai-mock, model: gpt-4o-mini}]
`);
  // No /v1: the SDK adds /v1/messages itself.
  client = new Anthropic({ baseURL: gyre.url, apiKey: SDK_KEY, maxRetries: 0, timeout: 10000 * SLOW });
  // The provider's own key, so that the mock's key count stays gyre's keys only.
  direct = new Anthropic({ baseURL: mock.url, apiKey: 'sk-ant-gyre', maxRetries: 0, timeout: 10000 * SLOW });
});

after(async () => {
  assert.equal((await gyre.stop()).code, 0);
  assert.equal((await mock.stop()).code, 0);
});

const lastSeen = async () => (await mock.stats()).last_request;

test('messages.create on the passthrough route is exactly what the provider answers, with gyre\'s key and headers', async () => {
  const params = { model: 'claude', max_tokens: 100, messages: [{ role: 'user', content: 'What is two plus two?' }] };
  const { data, response } = await client.messages.create(params).withResponse();
  assert.equal(response.status, 200);
  assert.equal(response.headers.get('x-gyre-route'), 'claude');
  assert.equal(response.headers.get('x-gyre-provider'), 'anthropic-mock');
  assert.equal(response.headers.get('x-gyre-model'), 'claude-mock');
  assert.match(response.headers.get('x-request-id'), /^[0-9a-f]{32}$/);
  const seen = await lastSeen();
  // The SDK's body with only the model changed.
  assert.equal(seen.body, JSON.stringify({ ...params, model: 'claude-mock' }));
  assert.equal(seen.headers['x-api-key'], 'sk-ant-gyre');
  assert.equal(seen.headers['anthropic-version'], '2023-06-01');
  assert.deepEqual(data, {
    id: `msg_mock_${hex8(hashOf(seen.body))}`,
    type: 'message',
    role: 'assistant',
    model: 'claude-mock',
    content: [{ type: 'text', text: 'Mock reply to: What is two plus two?' }],
    stop_reason: 'end_turn',
    stop_sequence: null,
    // prompt: 5 words + 4; completion: 8 words.
    usage: usage(9, 8),
  });
  assert.deepEqual(data, await direct.messages.create({ ...params, model: 'claude-mock' }));
});

test('messages.create on the translated route gives the same message, built by gyre from the OpenAI answer', async () => {
  const params = { model: 'gpt', max_tokens: 100, messages: [{ role: 'user', content: 'What is two plus two?' }] };
  const pass = await client.messages.create({ ...params, model: 'claude' });
  const { data, response } = await client.messages.create(params).withResponse();
  assert.equal(response.headers.get('x-gyre-provider'), 'openai-mock');
  const seen = await lastSeen();
  assert.equal(seen.path, '/v1/chat/completions');
  assert.equal(seen.headers.authorization, 'Bearer sk-openai-gyre');
  assert.equal(seen.headers['x-api-key'], undefined);
  assert.deepEqual(JSON.parse(seen.body), { model: 'gpt-4o-mini', messages: params.messages, max_tokens: 100 });
  // The OpenAI completion's id, "chatcmpl-mock-<hash>", becomes "msg_mock-<hash>".
  assert.equal(data.id, `msg_mock-${hex8(hashOf(seen.body))}`);
  assert.deepEqual({ ...data, id: undefined }, { ...pass, id: undefined, model: 'gpt-4o-mini' });
  assert.deepEqual(data.content, [{ type: 'text', text: 'Mock reply to: What is two plus two?' }]);
  assert.deepEqual(data.usage, usage(9, 8));
});

for (const [name, r] of Object.entries(ROUTES)) {
  test(`${name}: a system prompt counts as a message and reaches the provider in its dialect`, async () => {
    const res = await client.messages.create({
      model: r.route, max_tokens: 100, system: 'You are terse.', messages: [{ role: 'user', content: 'What is two plus two?' }],
    });
    assert.deepEqual(res.content, [{ type: 'text', text: 'Mock reply to: What is two plus two?' }]);
    // prompt: (3 + 4) + (5 + 4); completion: 8 words.
    assert.deepEqual(res.usage, usage(16, 8));
    const body = JSON.parse((await lastSeen()).body);
    if (name === 'passthrough') assert.equal(body.system, 'You are terse.');
    else assert.deepEqual(body.messages[0], { role: 'system', content: 'You are terse.' });
  });

  test(`${name}: messages.stream gives text deltas that join to the whole answer, and finalMessage() the message`, async () => {
    const params = { model: r.route, max_tokens: 100, messages: [{ role: 'user', content: 'Tell me a short story about a lighthouse keeper' }] };
    const whole = await client.messages.create(params);
    assert.deepEqual(whole.content, [{ type: 'text', text: 'Mock reply to: Tell me a short story about a lighthouse keeper' }]);

    const stream = client.messages.stream(params);
    const deltas = [];
    stream.on('text', (t) => deltas.push(t));
    const final = await stream.finalMessage();
    assert.deepEqual(deltas, ['Mock ', 'reply ', 'to: ', 'Tell ', 'me ', 'a ', 'short ', 'story ', 'about ', 'a ', 'lighthouse ', 'keeper']);
    assert.equal(deltas.join(''), whole.content[0].text);
    assert.deepEqual(final.content, whole.content);
    assert.equal(final.stop_reason, 'end_turn');
    assert.equal(final.stop_sequence, null);
    // prompt: 9 words + 4; completion: 12 words; the same usage as unstreamed.
    assert.deepEqual(final.usage, usage(13, 12));
    assert.deepEqual(final.usage, whole.usage);
    assert.equal(final.role, 'assistant');
    assert.match(final.id, name === 'passthrough' ? /^msg_mock_[0-9a-f]{8}$/ : /^msg_mock-[0-9a-f]{8}$/);
    const seen = await lastSeen();
    if (name === 'passthrough') {
      assert.equal(final.id, `msg_mock_${hex8(hashOf(seen.body))}`);
      assert.equal(final.model, 'claude-mock');
    } else {
      // gyre asked the provider for a stream with usage, to give Anthropic's usage at the end.
      assert.deepEqual(JSON.parse(seen.body).stream_options, { include_usage: true });
    }

    // stream: true on create() gives the raw events (the SDK drops `ping`).
    const raw = await client.messages.create({ ...params, stream: true });
    const types = [];
    let text = '';
    for await (const ev of raw) {
      types.push(ev.type);
      if (ev.type === 'content_block_delta') text += ev.delta.text;
    }
    assert.deepEqual(types, ['message_start', 'content_block_start', ...Array(12).fill('content_block_delta'), 'content_block_stop', 'message_delta', 'message_stop']);
    assert.equal(text, whole.content[0].text);
  });

  test(`${name}: a tool use round trip, then a streamed tool use whose JSON assembles to the same input`, async () => {
    const first = await client.messages.create({ model: r.route, max_tokens: 100, tools: [WEATHER], messages: ASK });
    assert.equal(first.stop_reason, 'tool_use');
    assert.equal(first.content.length, 1);
    const use = first.content[0];
    const seen = await lastSeen();
    const callHash = hex8(fnv1a(utf8('call'), hashOf(seen.body)));
    assert.deepEqual(use, { type: 'tool_use', id: name === 'passthrough' ? `toolu_mock_${callHash}` : `call_mock_${callHash}`, name: 'get_weather', input: { city: 'mock' } });
    // prompt: 8 words + 4; completion: 1 word of arguments + 4.
    assert.deepEqual(first.usage, usage(12, 5));
    if (name === 'translated') {
      assert.deepEqual(JSON.parse(seen.body).tools, [{ type: 'function', function: { name: 'get_weather', description: WEATHER.description, parameters: WEATHER.input_schema } }]);
    }

    const second = await client.messages.create({
      model: r.route, max_tokens: 100, tools: [WEATHER],
      messages: [...ASK, { role: 'assistant', content: first.content }, { role: 'user', content: [{ type: 'tool_result', tool_use_id: use.id, content: '4 degrees and snowing' }] }],
    });
    assert.deepEqual(second.content, [{ type: 'text', text: 'Mock reply to tool result: 4 degrees and snowing' }]);
    assert.equal(second.stop_reason, 'end_turn');
    // prompt: (8 + 4) + (0 + 4) + (4 + 4); completion: 9 words.
    assert.deepEqual(second.usage, usage(24, 9));
    if (name === 'translated') {
      const up = JSON.parse((await lastSeen()).body);
      assert.deepEqual(up.messages.slice(1), [
        { role: 'assistant', content: null, tool_calls: [{ id: use.id, type: 'function', function: { name: 'get_weather', arguments: '{"city":"mock"}' } }] },
        { role: 'tool', tool_call_id: use.id, content: '4 degrees and snowing' },
      ]);
    }

    const stream = client.messages.stream({ model: r.route, max_tokens: 100, tools: [WEATHER], messages: ASK });
    const partials = [];
    stream.on('inputJson', (partial) => partials.push(partial));
    const final = await stream.finalMessage();
    // 15 bytes of arguments in three pieces of 5.
    assert.deepEqual(partials, ['{"cit', 'y":"m', 'ock"}']);
    assert.equal(final.stop_reason, 'tool_use');
    assert.equal(final.content.length, 1);
    assert.deepEqual({ ...final.content[0], id: undefined }, { ...use, id: undefined });
    assert.deepEqual(final.usage, usage(12, 5));
  });

  test(`${name}: errors are the SDK's classes: NotFoundError, BadRequestError, RateLimitError with Retry-After`, async () => {
    await assert.rejects(client.messages.create({ model: 'claude-nonexistent', max_tokens: 10, messages: ASK }), (err) => {
      assert.ok(err instanceof Anthropic.NotFoundError, err.constructor.name);
      assert.equal(err.status, 404);
      assert.equal(err.type, 'not_found_error');
      assert.equal(err.apiMessage, "the model 'claude-nonexistent' does not exist on this gateway; available: 'claude', 'gpt', 'anthropic-mock/<model>', 'openai-mock/<model>'");
      assert.deepEqual(err.error, { type: 'error', error: { type: 'not_found_error', message: err.apiMessage } });
      return true;
    });
    const bad = [
      [{ model: r.route, messages: ASK }, 'max_tokens: field required'],
      [{ model: r.route, max_tokens: 0, messages: ASK }, 'max_tokens: must be a positive integer'],
      [{ model: r.route, max_tokens: 10, messages: [] }, 'messages: must be a non-empty array'],
      [{ model: r.route, max_tokens: 10, messages: [{ role: 'system', content: 'x' }] }, 'messages[0].role: must be "user" or "assistant"'],
    ];
    const before = (await mock.stats()).requests;
    for (const [body, message] of bad) {
      await assert.rejects(client.messages.create(body), (err) => {
        assert.ok(err instanceof Anthropic.BadRequestError, `${JSON.stringify(body)}: ${err.constructor.name}`);
        assert.equal(err.status, 400);
        assert.equal(err.type, 'invalid_request_error');
        assert.equal(err.apiMessage, message);
        return true;
      });
    }
    // gyre refused them itself: none reached the provider.
    assert.equal((await mock.stats()).requests, before);

    await mock.configure({ fault: '429', fault_rate: 1 });
    try {
      await assert.rejects(client.messages.create({ model: r.route, max_tokens: 10, messages: ASK }), (err) => {
        assert.ok(err instanceof Anthropic.RateLimitError, err.constructor.name);
        assert.equal(err.status, 429);
        assert.equal(err.headers.get('retry-after'), '1');
        assert.equal(err.type, 'rate_limit_error');
        const message = 'Rate limit reached for requests (gyre-mock fault 429).';
        // The provider's own error body passes through; a translated one names the provider.
        assert.equal(err.apiMessage, name === 'passthrough' ? message : `provider 'openai-mock' answered 429: ${message}`);
        return true;
      });
    } finally {
      await mock.configure({ fault: null });
    }
    // The 429 rested the provider's only key for its Retry-After (1 s).
    await sleep(1100);
    const ok = await client.messages.create({ model: r.route, max_tokens: 100, messages: ASK });
    assert.deepEqual(ok.content, [{ type: 'text', text: 'Mock reply to: What is the weather in Oslo right now?' }]);
  });
}

test('on the translated route a streamed message names the same model as messages.create()', async () => {
  const params = { model: 'gpt', max_tokens: 100, messages: [{ role: 'user', content: 'What is two plus two?' }] };
  const whole = await client.messages.create(params);
  assert.equal(whole.model, 'gpt-4o-mini');
  const final = await client.messages.stream(params).finalMessage();
  assert.equal(final.model, whole.model);
});

test('the SDK\'s key never reaches a provider: the mock saw only gyre\'s keys', async () => {
  const stats = await mock.stats();
  assert.ok(stats.requests >= 20, `${stats.requests} requests`);
  assert.deepEqual(Object.keys(stats.keys).sort(), ['sk-ant-gyre', 'sk-openai-gyre']);
  assert.equal(stats.keys['sk-ant-gyre'] + stats.keys['sk-openai-gyre'], stats.requests);
  assert.doesNotMatch(JSON.stringify(stats), new RegExp(SDK_KEY));
  assert.deepEqual(Object.keys(stats.models).sort(), ['claude-mock', 'gpt-4o-mini']);
});
