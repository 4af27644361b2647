// The official OpenAI Node SDK as a real client of gyre, with gyre-mock as
// the provider: changing the base URL is all a user does.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startGyre, startMock, oneProviderConfig } from '../lib/harness.mjs';

let mock, gyre, client, direct;
const WEATHER = [{
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'Current weather in a city',
    parameters: { type: 'object', properties: { city: { type: 'string' }, unit: { type: 'string', enum: ['c', 'f'] } }, required: ['city', 'unit'] },
  },
}];
const ASK = [{ role: 'user', content: 'What is the weather in Paris?' }];

before(async () => {
  mock = await startMock();
  gyre = await startGyre(oneProviderConfig(mock.v1));
  client = new OpenAI({ baseURL: `${gyre.url}/v1`, apiKey: 'client-key-not-forwarded', maxRetries: 0, timeout: 10000 });
  // The same SDK talking to the mock directly: what gyre must relay unchanged.
  direct = new OpenAI({ baseURL: mock.v1, apiKey: 'sk-test-a', maxRetries: 0, timeout: 10000 });
});
after(async () => {
  assert.equal((await gyre.stop()).code, 0);
  assert.equal((await mock.stop()).code, 0);
});

test('a non-streamed chat completion comes back exactly as the provider sent it', async () => {
  const { data, response } = await client.chat.completions
    .create({ model: 'chat', messages: [{ role: 'user', content: 'Hello there' }] })
    .withResponse();
  const expected = await direct.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Hello there' }] });
  assert.equal(data.choices[0].message.content, 'Mock reply to: Hello there');
  assert.equal(data.model, 'gpt-4o-mini');
  assert.deepEqual(data.usage, { prompt_tokens: 6, completion_tokens: 5, total_tokens: 11 });
  assert.deepEqual(data, expected);
  assert.match(response.headers.get('x-request-id'), /^[0-9a-f]{32}$/);
  assert.equal(data._request_id, response.headers.get('x-request-id'));
});

test('a streamed chat completion with usage arrives chunk by chunk and adds up', async () => {
  const stream = await client.chat.completions.create({
    model: 'chat', messages: [{ role: 'user', content: 'Hello there' }], stream: true, stream_options: { include_usage: true },
  });
  let text = '', contentChunks = 0, last;
  for await (const chunk of stream) {
    const piece = chunk.choices[0]?.delta?.content;
    if (piece) { text += piece; contentChunks++; }
    last = chunk;
  }
  assert.equal(text, 'Mock reply to: Hello there');
  assert.equal(contentChunks, 5);
  assert.deepEqual(last.choices, []);
  assert.deepEqual(last.usage, { prompt_tokens: 6, completion_tokens: 5, total_tokens: 11 });
});

test('a tool-call round trip, not streamed', async () => {
  const first = await client.chat.completions.create({ model: 'chat', messages: ASK, tools: WEATHER });
  const call = first.choices[0].message.tool_calls[0];
  assert.equal(first.choices[0].finish_reason, 'tool_calls');
  assert.equal(call.type, 'function');
  assert.equal(call.function.name, 'get_weather');
  assert.deepEqual(JSON.parse(call.function.arguments), { city: 'mock', unit: 'c' });
  const second = await client.chat.completions.create({
    model: 'chat', tools: WEATHER,
    messages: [...ASK, first.choices[0].message, { role: 'tool', tool_call_id: call.id, content: '18 C and sunny' }],
  });
  assert.equal(second.choices[0].message.content, 'Mock reply to tool result: 18 C and sunny');
  assert.equal(second.choices[0].finish_reason, 'stop');
});

test('a tool-call round trip, streamed, with the SDK assembling the deltas', async () => {
  const runner = client.chat.completions.stream({ model: 'chat', messages: ASK, tools: WEATHER });
  const done = await runner.finalChatCompletion();
  const msg = done.choices[0].message;
  assert.equal(done.choices[0].finish_reason, 'tool_calls');
  assert.equal(msg.tool_calls.length, 1);
  assert.match(msg.tool_calls[0].id, /^call_mock_[0-9a-f]{8}$/);
  assert.equal(msg.tool_calls[0].function.name, 'get_weather');
  assert.deepEqual(JSON.parse(msg.tool_calls[0].function.arguments), { city: 'mock', unit: 'c' });
  const stream = await client.chat.completions.create({
    model: 'chat', tools: WEATHER, stream: true,
    messages: [...ASK, { role: 'assistant', content: null, tool_calls: msg.tool_calls }, { role: 'tool', tool_call_id: msg.tool_calls[0].id, content: 'rain' }],
  });
  let text = '';
  for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? '';
  assert.equal(text, 'Mock reply to tool result: rain');
});

test('embeddings through a route', async () => {
  const res = await client.embeddings.create({ model: 'embed', input: ['alpha', 'beta'] });
  const expected = await direct.embeddings.create({ model: 'text-embedding-3-small', input: ['alpha', 'beta'] });
  assert.equal(res.data.length, 2);
  assert.equal(res.data[0].embedding.length, 8);
  assert.deepEqual(res.data.map((d) => d.embedding), expected.data.map((d) => d.embedding));
  assert.equal(res.model, 'text-embedding-3-small');
});

test('models.list shows the routes', async () => {
  const ids = [];
  for await (const m of client.models.list()) ids.push(m.id);
  assert.deepEqual(ids, ['chat', 'embed']);
});

test('an unknown model raises NotFoundError with code model_not_found', async () => {
  await assert.rejects(client.chat.completions.create({ model: 'gpt-9', messages: ASK }), (err) => {
    assert.ok(err instanceof OpenAI.NotFoundError);
    assert.equal(err.status, 404);
    assert.equal(err.code, 'model_not_found');
    assert.equal(err.param, 'model');
    assert.match(err.message, /the model 'gpt-9' does not exist on this gateway; available: 'chat', 'embed', 'primary\/<model>'/);
    return true;
  });
});

test('a malformed request raises BadRequestError naming the field', async () => {
  await assert.rejects(client.chat.completions.create({ model: 'chat', messages: 'hello' }), (err) => {
    assert.ok(err instanceof OpenAI.BadRequestError);
    assert.equal(err.status, 400);
    assert.equal(err.param, 'messages');
    assert.equal(err.code, 'invalid_type');
    return true;
  });
  await assert.rejects(client.chat.completions.create({ model: 'chat', messages: ASK, temperature: 'warm' }), (err) => {
    assert.ok(err instanceof OpenAI.BadRequestError);
    assert.equal(err.param, 'temperature');
    return true;
  });
});

test('a stream the provider cuts makes the SDK raise, not return a short answer', async () => {
  await mock.configure({ fault: 'truncate', fault_rate: 1 });
  try {
    const stream = await client.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'a long answer please' }], stream: true });
    let text = '';
    await assert.rejects((async () => { for await (const c of stream) text += c.choices[0]?.delta?.content ?? ''; })(), (err) => {
      assert.match(err.message, /provider 'primary' ended the stream before it was complete/);
      return true;
    });
    assert.equal(text, 'Mock reply ');
  } finally {
    await mock.configure({ fault: null });
  }
});

test('the provider only ever saw gyre\'s key, never the client\'s', async () => {
  const stats = await mock.stats();
  assert.deepEqual(Object.keys(stats.keys), ['sk-test-a']);
});
