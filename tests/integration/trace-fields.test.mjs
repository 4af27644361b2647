// Every field of a trace (issue 5, point 1), asserted on a non-streaming and
// a streaming request with tool calls, for the three ways a chat call goes
// through gyre: OpenAI passed through, OpenAI translated to Anthropic, and
// Anthropic's /v1/messages passed through.  A stream whose client did not
// ask for usage is still priced: gyre asks the provider for it and keeps it
// from the client.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import fs from 'node:fs';
import { startGyre, startMock, startUpstream, postJson, sseData, tmpdir, ROOT, SLOW } from '../lib/harness.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const PRICES = JSON.parse(fs.readFileSync(path.join(ROOT, 'data/prices.json'), 'utf8')).models;
const OTEL_TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const PARENT_SPAN = '00f067aa0ba902b7';
const META = {
  'x-gyre-session': 'sess-fields',
  'x-gyre-agent': 'coder',
  'x-gyre-user': 'user-7',
  'x-gyre-tags': 'tools,fields',
  'x-gyre-meta-ticket': 'T-1234',
  traceparent: `00-${OTEL_TRACE}-${PARENT_SPAN}-01`,
};
const TOOLS = [{
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'The weather in a city',
    parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
  },
}];

let mock, up, gyre, dir;

before(async () => {
  mock = await startMock();
  // An OpenAI provider that, like OpenAI, puts "usage":null in every chunk once usage is asked for.
  up = await startUpstream((req, res, body) => {
    const b = JSON.parse(body);
    if (b.messages[0].content === 'refuse me') {
      res.writeHead(400, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { message: 'scripted refusal', type: 'invalid_request_error', param: 'messages', code: 'refused' } }));
      return;
    }
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    const asked = b.stream_options?.include_usage === true;
    const extra = asked ? ',"usage":null' : '';
    const head = '{"id":"chatcmpl-up","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o-mini"';
    res.write(`data: ${head},"choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]${extra}}\n\n`);
    res.write(`data: ${head},"choices":[{"index":0,"delta":{"content":"hi there"},"finish_reason":null}]${extra}}\n\n`);
    res.write(`data: ${head},"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]${extra}}\n\n`);
    if (asked) res.write(`data: ${head},"choices":[],"usage":{"prompt_tokens":11,"completion_tokens":2,"total_tokens":13}}\n\n`);
    res.end('data: [DONE]\n\n');
  });
  dir = tmpdir('gyre-fields-');
  gyre = await startGyre(`workers: 1
store: {sqlite: "${path.join(dir, 'gyre.db')}", traces: true}
providers:
  - {name: mock, kind: openai, base_url: "${mock.v1}", keys: [sk-mock-fields]}
  - {name: claude, kind: anthropic, base_url: "${mock.v1}", keys: [sk-ant-fields]}
  - {name: scripted, kind: openai, base_url: "${up.v1}", keys: [sk-scripted]}
routes:
  - {name: chat, targets: [{provider: mock, model: gpt-4o-mini}]}
  - {name: sonnet, targets: [{provider: claude, model: claude-sonnet-4}]}
  - {name: nulls, targets: [{provider: scripted, model: gpt-4o-mini}]}
`);
});

after(async () => {
  assert.equal((await gyre.stop()).code, 0);
  assert.equal((await mock.stop()).code, 0);
  await up.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

async function pollTrace(id) {
  const deadline = Date.now() + 3000 * SLOW;
  let last = '';
  while (Date.now() < deadline) {
    const r = await fetch(`${gyre.url}/api/traces/${id}`);
    last = await r.text();
    if (r.status === 200) return JSON.parse(last);
    await sleep(50);
  }
  assert.fail(`trace ${id} was not stored: ${last}`);
}

function cost(model, t) {
  const p = PRICES[model];
  const cached = t.cached_tokens ?? 0;
  return ((t.prompt_tokens - cached) * p.input + cached * (p.cached_input ?? p.input) + t.completion_tokens * p.output) / 1e6;
}

// What every trace of these calls has, whatever the path.
function assertEnvelope(t, res, { endpoint, route, provider, model, stream }) {
  assert.equal(t.trace_id, res.headers.get('x-gyre-trace-id'));
  assert.match(t.trace_id, /^[0-9a-f]{32}$/);
  assert.equal(t.otel_trace_id, OTEL_TRACE);
  assert.equal(t.parent_span_id, PARENT_SPAN);
  assert.match(t.span_id, /^[0-9a-f]{16}$/);
  assert.notEqual(t.span_id, PARENT_SPAN);
  assert.equal(t.request_id, res.headers.get('x-request-id'));
  assert.equal(t.endpoint, endpoint);
  assert.equal(t.route, route);
  assert.equal(t.provider, provider);
  assert.equal(t.model, model);
  assert.equal(t.status, 200);
  assert.equal(t.stream, stream);
  assert.equal(t.cache_hit, false);
  assert.equal(t.latency_us, t.ended_us - t.started_us);
  assert.ok(t.latency_us > 0);
  if (stream) assert.ok(t.ttft_us > 0 && t.ttft_us <= t.latency_us, `ttft_us ${t.ttft_us} latency_us ${t.latency_us}`);
  else assert.equal(t.ttft_us, null);
  assert.equal(t.session, 'sess-fields');
  assert.equal(t.agent, 'coder');
  assert.equal(t.user, 'user-7');
  assert.deepEqual(t.tags, ['fields', 'tools']);
  assert.deepEqual(t.meta, { ticket: 'T-1234' });
  assert.equal(t.attempts.length, 1);
  const a = t.attempts[0];
  assert.deepEqual({ provider: a.provider, model: a.model, key_id: a.key_id, status: a.status, error: a.error },
    { provider, model, key_id: `${provider}#0`, status: 200, error: '' });
  assert.ok(a.started_us >= t.started_us && a.started_us + a.latency_us <= t.ended_us, JSON.stringify(a));
  assert.equal(t.cost_usd, cost(model, t));
}

// The reassembled completion of a stream, next to the whole answer of the same call.
function assertSameToolCall(streamed, whole) {
  const m = streamed.choices[0].message, w = whole.choices[0].message;
  assert.equal(streamed.object, 'chat.completion');
  assert.equal(streamed.choices[0].finish_reason, 'tool_calls');
  assert.equal(m.role, 'assistant');
  assert.equal(m.tool_calls.length, 1);
  assert.equal(m.tool_calls[0].type, 'function');
  assert.equal(m.tool_calls[0].function.name, w.tool_calls[0].function.name);
  assert.deepEqual(JSON.parse(m.tool_calls[0].function.arguments), JSON.parse(w.tool_calls[0].function.arguments));
}

const chatTools = (extra = {}) => ({
  model: 'chat', tools: TOOLS, messages: [{ role: 'user', content: 'What is the weather in Paris?' }], ...extra,
});

const whole = {};

test('OpenAI passed through, not streamed, a tool call: every field of the trace', async () => {
  const body = chatTools();
  const res = await postJson(`${gyre.url}/v1/chat/completions`, body, META);
  assert.equal(res.status, 200, res.text);
  assert.equal(res.json.choices[0].finish_reason, 'tool_calls');
  const t = await pollTrace(res.headers.get('x-gyre-trace-id'));
  assertEnvelope(t, res, { endpoint: '/v1/chat/completions', route: 'chat', provider: 'mock', model: 'gpt-4o-mini', stream: false });
  assert.equal(t.finish_reason, 'tool_calls');
  assert.equal(t.prompt_tokens, res.json.usage.prompt_tokens);
  assert.equal(t.completion_tokens, res.json.usage.completion_tokens);
  assert.equal(t.cached_tokens, null);
  assert.equal(t.reasoning_tokens, null);
  assert.deepEqual(t.request_body, body);
  assert.deepEqual(t.response_body, res.json);
  whole.openai = res.json;
});

test('OpenAI passed through, streamed without stream usage, a tool call: gyre asks for the usage, the client never sees it, the trace has it', async () => {
  const body = chatTools({ stream: true });
  const res = await postJson(`${gyre.url}/v1/chat/completions`, body, META);
  assert.equal(res.status, 200, res.text);
  const events = sseData(res.text);
  assert.equal(events.at(-1), '[DONE]');
  const chunks = events.slice(0, -1).map((d) => JSON.parse(d));
  assert.equal(chunks.filter((c) => 'usage' in c).length, 0, 'the client did not ask for usage');
  assert.equal(chunks.filter((c) => c.choices.length === 0).length, 0);
  const t = await pollTrace(res.headers.get('x-gyre-trace-id'));
  assertEnvelope(t, res, { endpoint: '/v1/chat/completions', route: 'chat', provider: 'mock', model: 'gpt-4o-mini', stream: true });
  assert.equal(t.finish_reason, 'tool_calls');
  // The mock counts the same request the same way, streamed or not.
  assert.equal(t.prompt_tokens, whole.openai.usage.prompt_tokens);
  assert.equal(t.completion_tokens, whole.openai.usage.completion_tokens);
  assert.deepEqual(t.request_body, body);
  assertSameToolCall(t.response_body, whole.openai);
  assert.equal(t.response_body.choices[0].message.tool_calls[0].id, chunks.find((c) => c.choices[0]?.delta?.tool_calls)?.choices[0].delta.tool_calls[0].id);
  assert.deepEqual(t.response_body.usage, { prompt_tokens: t.prompt_tokens, completion_tokens: t.completion_tokens, total_tokens: t.prompt_tokens + t.completion_tokens });
});

test('a provider that sends "usage":null in every chunk once asked: the client gets the chunks without it, the trace gets the usage', async () => {
  const res = await postJson(`${gyre.url}/v1/chat/completions`,
    { model: 'nulls', stream: true, messages: [{ role: 'user', content: 'hi' }] });
  assert.equal(res.status, 200, res.text);
  assert.deepEqual(JSON.parse(up.requests.at(-1).body).stream_options, { include_usage: true });
  assert.doesNotMatch(res.text, /usage/);
  const chunks = sseData(res.text).slice(0, -1).map((d) => JSON.parse(d));
  assert.deepEqual(chunks.map((c) => c.choices[0].delta.content ?? null), ['', 'hi there', null]);
  const t = await pollTrace(res.headers.get('x-gyre-trace-id'));
  assert.deepEqual([t.prompt_tokens, t.completion_tokens, t.finish_reason], [11, 2, 'stop']);
  assert.equal(t.response_body.choices[0].message.content, 'hi there');
});

test('a client that asked for stream usage gets it as the provider sent it', async () => {
  const res = await postJson(`${gyre.url}/v1/chat/completions`,
    { model: 'nulls', stream: true, stream_options: { include_usage: true }, messages: [{ role: 'user', content: 'hi' }] });
  const chunks = sseData(res.text).slice(0, -1).map((d) => JSON.parse(d));
  assert.equal(chunks.length, 4);
  assert.deepEqual(chunks.at(-1).usage, { prompt_tokens: 11, completion_tokens: 2, total_tokens: 13 });
  assert.equal(chunks[0].usage, null);
});

test('OpenAI translated to Anthropic, not streamed and streamed, a tool call: every field of both traces', async () => {
  const body = chatTools({ model: 'sonnet' });
  const res = await postJson(`${gyre.url}/v1/chat/completions`, body, META);
  assert.equal(res.status, 200, res.text);
  const t = await pollTrace(res.headers.get('x-gyre-trace-id'));
  assertEnvelope(t, res, { endpoint: '/v1/chat/completions', route: 'sonnet', provider: 'claude', model: 'claude-sonnet-4', stream: false });
  assert.equal(t.finish_reason, 'tool_calls');
  assert.equal(t.prompt_tokens, res.json.usage.prompt_tokens);
  assert.equal(t.completion_tokens, res.json.usage.completion_tokens);
  assert.deepEqual(t.request_body, body);
  assert.deepEqual(t.response_body, res.json);

  const sbody = chatTools({ model: 'sonnet', stream: true });
  const sres = await postJson(`${gyre.url}/v1/chat/completions`, sbody, META);
  assert.equal(sres.status, 200, sres.text);
  assert.doesNotMatch(sres.text, /"usage"/);
  const st = await pollTrace(sres.headers.get('x-gyre-trace-id'));
  assertEnvelope(st, sres, { endpoint: '/v1/chat/completions', route: 'sonnet', provider: 'claude', model: 'claude-sonnet-4', stream: true });
  assert.equal(st.finish_reason, 'tool_calls');
  assert.equal(st.prompt_tokens, t.prompt_tokens);
  assert.equal(st.completion_tokens, t.completion_tokens);
  assert.deepEqual(st.request_body, sbody);
  assertSameToolCall(st.response_body, res.json);
});

test("Anthropic's /v1/messages passed through, not streamed and streamed, a tool use: the trace reads the answer in OpenAI's shape", async () => {
  const body = {
    model: 'sonnet', max_tokens: 256,
    tools: [{ name: 'get_weather', description: 'The weather in a city', input_schema: TOOLS[0].function.parameters }],
    messages: [{ role: 'user', content: 'What is the weather in Paris?' }],
  };
  const res = await postJson(`${gyre.url}/v1/messages`, body, META);
  assert.equal(res.status, 200, res.text);
  assert.equal(res.json.stop_reason, 'tool_use');
  const t = await pollTrace(res.headers.get('x-gyre-trace-id'));
  assertEnvelope(t, res, { endpoint: '/v1/messages', route: 'sonnet', provider: 'claude', model: 'claude-sonnet-4', stream: false });
  assert.equal(t.finish_reason, 'tool_calls');
  assert.equal(t.prompt_tokens, res.json.usage.input_tokens);
  assert.equal(t.completion_tokens, res.json.usage.output_tokens);
  assert.deepEqual(t.request_body, body);
  const use = res.json.content.find((c) => c.type === 'tool_use');
  const call = t.response_body.choices[0].message.tool_calls[0];
  assert.deepEqual([call.id, call.function.name, JSON.parse(call.function.arguments)], [use.id, use.name, use.input]);

  const sbody = { ...body, stream: true };
  const sres = await postJson(`${gyre.url}/v1/messages`, sbody, META);
  assert.equal(sres.status, 200, sres.text);
  assert.match(sres.text, /event: message_stop/);
  const st = await pollTrace(sres.headers.get('x-gyre-trace-id'));
  assertEnvelope(st, sres, { endpoint: '/v1/messages', route: 'sonnet', provider: 'claude', model: 'claude-sonnet-4', stream: true });
  assert.equal(st.finish_reason, 'tool_calls');
  assert.equal(st.prompt_tokens, t.prompt_tokens);
  assert.equal(st.completion_tokens, t.completion_tokens);
  assert.deepEqual(st.request_body, sbody);
  const scall = st.response_body.choices[0].message.tool_calls[0];
  assert.deepEqual([scall.function.name, JSON.parse(scall.function.arguments)], [use.name, use.input]);
});

test('a 400 from the provider: its status, its error in the attempt, its body as the response, no tokens, no cost', async () => {
  const body = { model: 'nulls', messages: [{ role: 'user', content: 'refuse me' }] };
  const res = await postJson(`${gyre.url}/v1/chat/completions`, body, META);
  assert.equal(res.status, 400);
  const t = await pollTrace(res.headers.get('x-gyre-trace-id'));
  assert.equal(t.status, 400);
  assert.deepEqual(t.request_body, body);
  assert.equal(t.attempts.length, 1);
  assert.equal(t.attempts[0].status, 400);
  assert.equal(t.attempts[0].key_id, 'scripted#0');
  assert.equal(t.attempts[0].error, "provider 'scripted' answered 400: scripted refusal");
  assert.deepEqual([t.prompt_tokens, t.completion_tokens, t.cost_usd, t.finish_reason], [null, null, null, '']);
  assert.deepEqual(t.response_body, res.json);
  assert.deepEqual(t.session, 'sess-fields');
});

test("a request gyre refuses itself (a bad field): the trace keeps the body it sent and gyre's error as the answer", async () => {
  const body = { model: 'chat', messages: [{ role: 'user', content: 'x' }], temperature: 'hot' };
  const res = await postJson(`${gyre.url}/v1/chat/completions`, body, META);
  assert.equal(res.status, 400);
  assert.equal(res.json.error.param, 'temperature');
  const t = await pollTrace(res.headers.get('x-gyre-trace-id'));
  assert.deepEqual([t.status, t.route, t.provider, t.attempts.length, t.cost_usd], [400, '', '', 0, null]);
  assert.deepEqual(t.request_body, body);
  assert.deepEqual(t.response_body, res.json);
  assert.equal(t.agent, 'coder');
});
