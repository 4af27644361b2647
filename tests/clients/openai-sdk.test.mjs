// The official OpenAI Node SDK (openai 6.49.0) against gyre, with gyre-mock as
// the provider.  Each answer is checked two ways: against the values the
// mock's documented rules give (docs/mock.md), and against what the same SDK
// gets from the mock directly for the route's target model, so that anything
// gyre adds, drops or reorders on the way shows up as a difference.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startGyre, startMock } from '../lib/harness.mjs';
import { utf8, fnv1a, hex8, chatId, callId } from '../lib/mock-rules.mjs';

let mock, gyre, client, direct;

// ---- the mock's rules (docs/mock.md), restated ----

/** The body the provider gets from gyre: the client's, with the route's name replaced by the target model. */
const upstream = (params, model = 'gpt-4o-mini') => ({ ...params, model });

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

before(async () => {
  mock = await startMock();
  gyre = await startGyre(`workers: 1
providers:
  - {name: primary, kind: openai, base_url: ${mock.v1}, keys: [sk-test-a]}
routes:
  - name: chat
    targets: [{provider: primary, model: gpt-4o-mini, weight: 100}]
  - name: embed
    targets: [{provider: primary, model: text-embedding-3-small}]
`);
  client = new OpenAI({ baseURL: `${gyre.url}/v1`, apiKey: 'client-key-not-forwarded', maxRetries: 0, timeout: 10000 });
  // The provider's own key, so that the mock's key count stays a single key.
  direct = new OpenAI({ baseURL: mock.v1, apiKey: 'sk-test-a', maxRetries: 0, timeout: 10000 });
});

after(async () => {
  assert.equal((await gyre.stop()).code, 0);
  assert.equal((await mock.stop()).code, 0);
});

/** Every chunk of a streamed create(), as the SDK parsed them. */
async function collect(stream) {
  const chunks = [];
  for await (const c of stream) chunks.push(c);
  return chunks;
}

/** Assembles streamed tool-call deltas by index, as an application would; also returns the argument fragments. */
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

test('a non-streamed chat completion is exactly what the provider answered, with a request id', async () => {
  const params = {
    model: 'chat',
    messages: [{ role: 'system', content: 'You are terse.' }, { role: 'user', content: 'What is two plus two?' }],
  };
  const { data, response, request_id } = await client.chat.completions.create(params).withResponse();
  assert.equal(response.status, 200);
  assert.equal(data.id, chatId(upstream(params)));
  assert.equal(data.object, 'chat.completion');
  assert.equal(data.created, 1700000000);
  assert.equal(data.model, 'gpt-4o-mini');
  assert.deepEqual(data.choices, [{
    index: 0,
    message: { role: 'assistant', content: 'Mock reply to: What is two plus two?', refusal: null },
    logprobs: null,
    finish_reason: 'stop',
  }]);
  // prompt: (3 + 4) + (5 + 4); completion: 8 words.
  assert.deepEqual(data.usage, { prompt_tokens: 16, completion_tokens: 8, total_tokens: 24 });
  assert.match(request_id, /^[0-9a-f]{32}$/);
  assert.equal(data._request_id, request_id);
  assert.equal(response.headers.get('x-request-id'), request_id);

  // The provider got the client's body with only the model changed, and gyre's request id.
  const seen = (await mock.stats()).last_request;
  assert.equal(seen.body, JSON.stringify(upstream(params)));
  assert.equal(seen.headers['x-request-id'], request_id);
  assert.equal(seen.headers.authorization, 'Bearer sk-test-a');

  const expected = await direct.chat.completions.create(upstream(params));
  assert.deepEqual(data, expected);
});

test('a streamed chat completion with usage arrives in pieces that join to the non-streamed content', async () => {
  const base = { model: 'chat', messages: [{ role: 'user', content: 'Tell me a short story about a lighthouse keeper' }] };
  const whole = await client.chat.completions.create(base);
  assert.equal(whole.choices[0].message.content, 'Mock reply to: Tell me a short story about a lighthouse keeper');

  const params = { ...base, stream: true, stream_options: { include_usage: true } };
  const { data: stream, response } = await client.chat.completions.create(params).withResponse();
  assert.equal(response.headers.get('content-type'), 'text/event-stream');
  assert.match(response.headers.get('x-request-id'), /^[0-9a-f]{32}$/);
  const chunks = await collect(stream);

  const pieces = chunks.map((c) => c.choices[0]?.delta?.content).filter((p) => p);
  assert.deepEqual(pieces, ['Mock ', 'reply ', 'to: ', 'Tell ', 'me ', 'a ', 'short ', 'story ', 'about ', 'a ', 'lighthouse ', 'keeper']);
  assert.equal(pieces.join(''), whole.choices[0].message.content);
  // A role chunk, 12 words, the finish chunk, the usage chunk.
  assert.equal(chunks.length, 15);
  assert.deepEqual(chunks[0].choices[0].delta, { role: 'assistant', content: '' });
  assert.deepEqual(chunks[13].choices, [{ index: 0, delta: {}, logprobs: null, finish_reason: 'stop' }]);
  const last = chunks.at(-1);
  assert.deepEqual(last.choices, []);
  assert.deepEqual(last.usage, { prompt_tokens: 13, completion_tokens: 12, total_tokens: 25 });
  assert.deepEqual(last.usage, whole.usage);
  for (const c of chunks) {
    assert.equal(c.id, chatId(upstream(params)));
    assert.equal(c.model, 'gpt-4o-mini');
    assert.equal(c.object, 'chat.completion.chunk');
  }

  // Chunk for chunk what the SDK reads from the provider itself.
  const expected = await collect(await direct.chat.completions.create(upstream(params)));
  assert.deepEqual(chunks, expected);
});

test('a tool-call round trip, not streamed: the call, then the answer to its result', async () => {
  const params = { model: 'chat', messages: ASK, tools: [WEATHER] };
  const first = await client.chat.completions.create(params);
  assert.equal(first.id, chatId(upstream(params)));
  assert.equal(first.choices[0].finish_reason, 'tool_calls');
  const msg = first.choices[0].message;
  assert.equal(msg.role, 'assistant');
  assert.equal(msg.content, null);
  assert.equal(msg.tool_calls.length, 1);
  const call = msg.tool_calls[0];
  assert.equal(call.id, callId(upstream(params)));
  assert.equal(call.type, 'function');
  assert.equal(call.function.name, 'get_weather');
  assert.equal(call.function.arguments, WEATHER_ARGS);
  assert.deepEqual(JSON.parse(call.function.arguments), { city: 'mock' });
  // prompt: 8 words + 4; completion: 1 word of arguments + 4.
  assert.deepEqual(first.usage, { prompt_tokens: 12, completion_tokens: 5, total_tokens: 17 });
  assert.deepEqual(first, await direct.chat.completions.create(upstream(params)));

  // The application runs the tool and sends its result back with the assistant's message.
  const params2 = {
    model: 'chat',
    tools: [WEATHER],
    messages: [...ASK, msg, { role: 'tool', tool_call_id: call.id, content: '{"temp": 4, "sky": "snow"}' }],
  };
  const second = await client.chat.completions.create(params2);
  assert.equal(second.choices[0].finish_reason, 'stop');
  assert.equal(second.choices[0].message.content, 'Mock reply to tool result: {"temp": 4, "sky": "snow"}');
  assert.equal(second.choices[0].message.tool_calls, undefined);
  // prompt: (8 + 4) + (0 + 4) + (4 + 4); completion: 9 words.
  assert.deepEqual(second.usage, { prompt_tokens: 24, completion_tokens: 9, total_tokens: 33 });
  assert.deepEqual(second, await direct.chat.completions.create(upstream(params2)));
});

test('tool_choice naming the second of two tools gets a call to that one', async () => {
  const clock = { type: 'function', function: { name: 'get_time', parameters: { type: 'object', properties: { zone: { type: 'string' } }, required: ['zone'] } } };
  const res = await client.chat.completions.create({
    model: 'chat', messages: ASK, tools: [clock, WEATHER], tool_choice: { type: 'function', function: { name: 'get_weather' } },
  });
  assert.equal(res.choices[0].message.tool_calls[0].function.name, 'get_weather');
  assert.equal(res.choices[0].message.tool_calls[0].function.arguments, WEATHER_ARGS);
  // tool_choice "none" gets text instead.
  const none = await client.chat.completions.create({ model: 'chat', messages: ASK, tools: [WEATHER], tool_choice: 'none' });
  assert.equal(none.choices[0].message.content, 'Mock reply to: What is the weather in Oslo right now?');
  assert.equal(none.choices[0].message.tool_calls, undefined);
});

test('a tool-call round trip, streamed: deltas assemble into the same call', async () => {
  const params = { model: 'chat', messages: ASK, tools: [WEATHER], stream: true, stream_options: { include_usage: true } };
  const chunks = await collect(await client.chat.completions.create(params));
  const { calls, fragments } = assembleToolCalls(chunks);
  assert.deepEqual(calls, [{ id: callId(upstream(params)), type: 'function', function: { name: 'get_weather', arguments: WEATHER_ARGS } }]);
  // 15 bytes of arguments in three pieces of 5.
  assert.deepEqual(fragments, [['{"cit', 'y":"m', 'ock"}']]);
  assert.deepEqual(chunks[0].choices[0].delta, { role: 'assistant', content: null });
  assert.equal(chunks.filter((c) => c.choices[0]?.delta?.content).length, 0);
  assert.equal(chunks.at(-2).choices[0].finish_reason, 'tool_calls');
  assert.deepEqual(chunks.at(-1).usage, { prompt_tokens: 12, completion_tokens: 5, total_tokens: 17 });
  assert.deepEqual(chunks, await collect(await direct.chat.completions.create(upstream(params))));

  // The same call as the non-streamed answer, but for its id (a hash of a different body).
  const plain = await client.chat.completions.create({ model: 'chat', messages: ASK, tools: [WEATHER] });
  assert.deepEqual({ ...calls[0], id: undefined }, { ...plain.choices[0].message.tool_calls[0], id: undefined });

  const params2 = {
    model: 'chat', tools: [WEATHER], stream: true,
    messages: [...ASK, { role: 'assistant', content: null, tool_calls: calls }, { role: 'tool', tool_call_id: calls[0].id, content: '4 degrees and snowing' }],
  };
  const answer = await collect(await client.chat.completions.create(params2));
  const pieces = answer.map((c) => c.choices[0]?.delta?.content).filter((p) => p);
  assert.deepEqual(pieces, ['Mock ', 'reply ', 'to ', 'tool ', 'result: ', '4 ', 'degrees ', 'and ', 'snowing']);
  assert.equal(answer.at(-1).choices[0].finish_reason, 'stop');
  assert.equal(assembleToolCalls(answer).calls.length, 0);
});

test('embeddings through the embed route match the provider, in base64 (the SDK default) and as floats', async () => {
  const input = ['a', 'b'];
  // Without encoding_format the SDK asks for base64 and decodes float32s.
  const res = await client.embeddings.create({ model: 'embed', input });
  assert.equal(res.object, 'list');
  assert.equal(res.model, 'text-embedding-3-small');
  assert.equal(res.data.length, 2);
  assert.deepEqual(res.data.map((d) => [d.object, d.index, d.embedding.length]), [['embedding', 0, 8], ['embedding', 1, 8]]);
  assert.deepEqual(res.usage, { prompt_tokens: 2, total_tokens: 2 });
  assert.equal(JSON.parse((await mock.stats()).last_request.body).encoding_format, 'base64');
  const expected = await direct.embeddings.create({ model: 'text-embedding-3-small', input });
  assert.deepEqual(res.data, expected.data);
  assert.notDeepEqual(res.data[0].embedding, res.data[1].embedding);

  const floats = await client.embeddings.create({ model: 'embed', input, encoding_format: 'float' });
  assert.deepEqual(floats, await direct.embeddings.create({ model: 'text-embedding-3-small', input, encoding_format: 'float' }));
  for (let i = 0; i < 2; i++) {
    const v = floats.data[i].embedding;
    assert.ok(Math.abs(Math.hypot(...v) - 1) < 1e-5, `vector ${i} has unit length`);
    // The same numbers, as float32s.
    assert.deepEqual(v.map(Math.fround), res.data[i].embedding);
  }

  const wide = await client.embeddings.create({ model: 'embed', input: 'a', dimensions: 16, encoding_format: 'float' });
  assert.equal(wide.data[0].embedding.length, 16);
});

test('an unknown model raises NotFoundError with code model_not_found', async () => {
  await assert.rejects(client.chat.completions.create({ model: 'gpt-9-omega', messages: ASK }), (err) => {
    assert.ok(err instanceof OpenAI.NotFoundError, err.constructor.name);
    assert.equal(err.status, 404);
    assert.equal(err.code, 'model_not_found');
    assert.equal(err.error.code, 'model_not_found');
    assert.equal(err.param, 'model');
    assert.equal(err.type, 'invalid_request_error');
    assert.equal(err.message, "404 the model 'gpt-9-omega' does not exist on this gateway; available: 'chat', 'embed', 'primary/<model>'");
    assert.match(err.requestID, /^[0-9a-f]{32}$/);
    return true;
  });
  await assert.rejects(client.embeddings.create({ model: 'nobody/text-embedding-3-small', input: 'x' }), OpenAI.NotFoundError);
});

test('bad requests raise BadRequestError naming the field', async () => {
  const cases = [
    [{ model: 'chat', messages: 'nope' }, 'invalid_type', 'messages'],
    [{ model: 'chat' }, 'missing_required_parameter', 'messages'],
    [{ model: 'chat', messages: [] }, 'empty_array', 'messages'],
    [{ model: 'chat', messages: ASK, temperature: 'warm' }, 'invalid_type', 'temperature'],
  ];
  for (const [body, code, param] of cases) {
    await assert.rejects(client.chat.completions.create(body), (err) => {
      assert.ok(err instanceof OpenAI.BadRequestError, `${JSON.stringify(body)}: ${err.constructor.name}`);
      assert.equal(err.status, 400);
      assert.equal(err.code, code, JSON.stringify(body));
      assert.equal(err.param, param, JSON.stringify(body));
      assert.equal(err.type, 'invalid_request_error');
      return true;
    });
  }
  await assert.rejects(client.embeddings.create({ model: 'embed' }), (err) => {
    assert.ok(err instanceof OpenAI.BadRequestError);
    assert.equal(err.param, 'input');
    return true;
  });
});

test('a provider error reaches the SDK as its own class, with the provider\'s body and headers', async () => {
  await mock.configure({ fault: '429', fault_rate: 1 });
  try {
    await assert.rejects(client.chat.completions.create({ model: 'chat', messages: ASK }), (err) => {
      assert.ok(err instanceof OpenAI.RateLimitError, err.constructor.name);
      assert.equal(err.status, 429);
      assert.equal(err.headers.get('retry-after'), '1');
      assert.deepEqual(err.error, { message: 'Rate limit reached for requests (gyre-mock fault 429).', type: 'requests', param: null, code: 'rate_limit_exceeded' });
      assert.match(err.requestID, /^[0-9a-f]{32}$/);
      return true;
    });
    // The 429 rested gyre's only key for its Retry-After (1 s): until then gyre answers 503 itself
    // without calling the provider; after it, the provider's own 503 comes through as it is.
    await assert.rejects(client.chat.completions.create({ model: 'chat', messages: ASK }), (err) => {
      assert.ok(err instanceof OpenAI.InternalServerError, err.constructor.name);
      assert.equal(err.status, 503);
      assert.equal(err.code, 'target_unavailable');
      assert.equal(err.headers.get('retry-after'), '1');
      return true;
    });
    await new Promise((r) => setTimeout(r, 1100));
    await mock.configure({ fault: '503' });
    await assert.rejects(client.chat.completions.create({ model: 'chat', messages: ASK }), (err) => {
      assert.ok(err instanceof OpenAI.InternalServerError, err.constructor.name);
      assert.equal(err.status, 503);
      assert.equal(err.type, 'server_error');
      return true;
    });
  } finally {
    await mock.configure({ fault: null });
  }
  // And the next call is served normally.
  const ok = await client.chat.completions.create({ model: 'chat', messages: ASK });
  assert.equal(ok.choices[0].message.content, 'Mock reply to: What is the weather in Oslo right now?');
});

test('the client\'s key never reaches the provider: only gyre\'s key was seen', async () => {
  const stats = await mock.stats();
  assert.ok(stats.requests >= 20, `${stats.requests} requests`);
  assert.deepEqual(stats.keys, { 'sk-test-a': stats.requests });
  assert.deepEqual(Object.keys(stats.models).sort(), ['gpt-4o-mini', 'text-embedding-3-small']);
  assert.doesNotMatch(JSON.stringify(stats), /client-key-not-forwarded/);
});
