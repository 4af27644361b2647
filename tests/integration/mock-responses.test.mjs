// gyre-mock's OpenAI Responses API (POST /v1/responses, docs/mock.md): the
// Response object and the documented stream of events, both exact functions
// of the request, checked byte for byte against the rules restated here; the
// same conversation gives the same answer and token counts as chat
// completions; tool calls; errors.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startMock, postJson } from '../lib/harness.mjs';
import { utf8, fnv1a, hex8 } from '../lib/mock-rules.mjs';

let mock;
before(async () => { mock = await startMock(); });
after(async () => { assert.equal((await mock.stop()).code, 0); });

const hashOf = (body) => fnv1a(utf8(JSON.stringify(body)));
const callHashOf = (body) => fnv1a(utf8('call'), hashOf(body));
const WEATHER = { type: 'function', name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } };

/** The Response the rules give, with output and usage as given. */
function response(body, { status = 'completed', output, usage, incomplete = null }) {
  return {
    id: `resp_mock_${hex8(hashOf(body))}`, object: 'response', created_at: 1700000000, status, background: false,
    error: null, incomplete_details: incomplete, instructions: body.instructions ?? null,
    max_output_tokens: body.max_output_tokens ?? null, model: body.model, output, parallel_tool_calls: true,
    previous_response_id: null, reasoning: { effort: null, summary: null }, store: true, temperature: 1,
    text: { format: { type: 'text' } }, tool_choice: 'auto', tools: body.tools ?? [], top_p: 1, truncation: 'disabled',
    usage, user: null, metadata: {},
  };
}
const usageOf = (input, output) => ({
  input_tokens: input, input_tokens_details: { cached_tokens: 0 }, output_tokens: output,
  output_tokens_details: { reasoning_tokens: 0 }, total_tokens: input + output,
});
const message = (body, text, status = 'completed') => ({
  id: `msg_mock_${hex8(hashOf(body))}`, type: 'message', status, role: 'assistant',
  content: [{ type: 'output_text', annotations: [], logprobs: [], text }],
});

/** Parses an event stream into [{event, data}], checking every frame's form. */
function events(text) {
  const out = [];
  for (const frame of text.split('\n\n').filter(Boolean)) {
    const m = /^event: ([a-z._]+)\ndata: (.*)$/s.exec(frame);
    assert.ok(m, frame);
    const data = JSON.parse(m[2]);
    assert.equal(data.type, m[1]);
    out.push(data);
  }
  return out;
}

test('a Response: the reply to the conversation, instructions as its system message, usage', async () => {
  const body = { model: 'gpt-4o-mini', instructions: 'You are terse.', input: 'Say hello to the world' };
  const r = await postJson(`${mock.v1}/responses`, body);
  assert.equal(r.status, 200);
  // system (3 words + 4) + user (5 + 4); the reply's 8 words.
  assert.deepEqual(r.json, response(body, { output: [message(body, 'Mock reply to: Say hello to the world')], usage: usageOf(16, 8) }));
});

test('input items: messages with parts, a function call and its output give the reply to the tool result', async () => {
  const body = {
    model: 'gpt-4o-mini', tools: [WEATHER],
    input: [
      { role: 'user', content: [{ type: 'input_text', text: 'Weather' }, { type: 'input_text', text: 'in Oslo?' }] },
      { type: 'function_call', call_id: 'c1', name: 'get_weather', arguments: '{"city":"Oslo"}' },
      { type: 'function_call_output', call_id: 'c1', output: 'Sunny' },
    ],
  };
  const r = await postJson(`${mock.v1}/responses`, body);
  assert.equal(r.status, 200);
  // user "Weather in Oslo?" (3 + 4), the assistant's call (0 + 4), the tool result (1 + 4); the reply's 6 words.
  assert.deepEqual(r.json, response(body, { output: [message(body, 'Mock reply to tool result: Sunny')], usage: usageOf(16, 6) }));
});

test('with function tools the answer is a function_call with arguments from the schema', async () => {
  const body = { model: 'gpt-4o-mini', input: 'Weather in Oslo?', tools: [WEATHER] };
  const r = await postJson(`${mock.v1}/responses`, body);
  const h = hex8(callHashOf(body));
  assert.deepEqual(r.json, response(body, {
    output: [{ id: `fc_mock_${h}`, type: 'function_call', status: 'completed', arguments: '{"city":"mock"}', call_id: `call_mock_${h}`, name: 'get_weather' }],
    usage: usageOf(7, 5),
  }));
  const none = await postJson(`${mock.v1}/responses`, { ...body, tool_choice: 'none' });
  assert.equal(none.json.output[0].type, 'message');
});

test('max_output_tokens cuts the reply: status incomplete, reason max_output_tokens', async () => {
  const body = { model: 'gpt-4o-mini', input: 'Say hello to the world', max_output_tokens: 2 };
  const r = await postJson(`${mock.v1}/responses`, body);
  assert.deepEqual(r.json, response(body, {
    status: 'incomplete', incomplete: { reason: 'max_output_tokens' },
    output: [message(body, 'Mock reply', 'incomplete')], usage: usageOf(9, 2),
  }));
});

test('a stream is the documented event sequence, numbered from 0, ending in response.completed', async () => {
  const body = { model: 'gpt-4o-mini', input: 'Say hello', stream: true };
  const res = await fetch(`${mock.v1}/responses`, { method: 'POST', body: JSON.stringify(body) });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type'), /^text\/event-stream/);
  const ev = events(await res.text());
  const id = `msg_mock_${hex8(hashOf(body))}`, ref = { item_id: id, output_index: 0, content_index: 0 };
  const part = (text) => ({ type: 'output_text', annotations: [], logprobs: [], text });
  const inProgress = response(body, { status: 'in_progress', output: [], usage: null });
  const final = response(body, { output: [message(body, 'Mock reply to: Say hello')], usage: usageOf(6, 5) });
  const expected = [
    { type: 'response.created', response: inProgress },
    { type: 'response.in_progress', response: inProgress },
    { type: 'response.output_item.added', output_index: 0, item: { id, type: 'message', status: 'in_progress', content: [], role: 'assistant' } },
    { type: 'response.content_part.added', ...ref, part: part('') },
    ...['Mock ', 'reply ', 'to: ', 'Say ', 'hello'].map((delta) => ({ type: 'response.output_text.delta', ...ref, logprobs: [], delta })),
    { type: 'response.output_text.done', ...ref, logprobs: [], text: 'Mock reply to: Say hello' },
    { type: 'response.content_part.done', ...ref, part: part('Mock reply to: Say hello') },
    { type: 'response.output_item.done', output_index: 0, item: message(body, 'Mock reply to: Say hello') },
    { type: 'response.completed', response: final },
  ];
  assert.deepEqual(ev, expected.map((e, i) => ({ type: e.type, sequence_number: i, ...e })));
});

test('a streamed tool call: arguments in up to three deltas, then .done and the item', async () => {
  const body = { model: 'gpt-4o-mini', input: 'Weather in Oslo?', tools: [WEATHER], stream: true };
  const res = await fetch(`${mock.v1}/responses`, { method: 'POST', body: JSON.stringify(body) });
  const ev = events(await res.text());
  assert.deepEqual(ev.map((e) => e.type), [
    'response.created', 'response.in_progress', 'response.output_item.added',
    'response.function_call_arguments.delta', 'response.function_call_arguments.delta', 'response.function_call_arguments.delta',
    'response.function_call_arguments.done', 'response.output_item.done', 'response.completed',
  ]);
  const h = hex8(callHashOf(body));
  assert.equal(ev.filter((e) => e.type.endsWith('.delta')).map((e) => e.delta).join(''), '{"city":"mock"}');
  assert.deepEqual(ev[6], { type: 'response.function_call_arguments.done', sequence_number: 6, item_id: `fc_mock_${h}`, output_index: 0, name: 'get_weather', arguments: '{"city":"mock"}' });
  assert.equal(ev[8].response.output[0].call_id, `call_mock_${h}`);
});

test('the Responses answer and chat completions agree on one conversation', async () => {
  const chat = await postJson(`${mock.v1}/chat/completions`, { model: 'm', messages: [{ role: 'system', content: 'Be kind.' }, { role: 'user', content: 'How are you today?' }] });
  const resp = await postJson(`${mock.v1}/responses`, { model: 'm', instructions: 'Be kind.', input: [{ role: 'user', content: 'How are you today?' }] });
  assert.equal(resp.json.output[0].content[0].text, chat.json.choices[0].message.content);
  assert.equal(resp.json.usage.input_tokens, chat.json.usage.prompt_tokens);
  assert.equal(resp.json.usage.output_tokens, chat.json.usage.completion_tokens);
});

test('errors: no model, no input, and a previous_response_id the mock does not hold', async () => {
  let r = await postJson(`${mock.v1}/responses`, { input: 'x' });
  assert.equal(r.status, 400);
  assert.equal(r.json.error.param, 'model');
  r = await postJson(`${mock.v1}/responses`, { model: 'm', input: [] });
  assert.equal(r.status, 400);
  assert.equal(r.json.error.param, 'input');
  r = await postJson(`${mock.v1}/responses`, { model: 'm', input: 'x', previous_response_id: 'resp_x' });
  assert.equal(r.status, 400);
  assert.deepEqual(r.json, { error: { message: "Previous response with id 'resp_x' not found.", type: 'invalid_request_error', param: 'previous_response_id', code: 'previous_response_not_found' } });
});
