// Privacy and prices in stored traces (issue 5, points 8 and 3): a route with
// `capture: false` stores no bodies but still its tokens and cost; a route
// that captures stores its bodies redacted (e-mail, phone, card, API key), the
// mock's echo of the prompt included, so free-text search cannot find them;
// a route may redact fewer kinds; and a provider's own `prices:` give the
// exact cost of the calls it answered.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import fs from 'node:fs';
import { startGyre, startMock, postJson, chatBody, sseData, tmpdir, SLOW } from '../lib/harness.mjs';

const SECRET = 'sk-mock-secret-7f3a9c';
const EMAIL = 'jane.doe@example.com';
const PHONE = '+1 415-555-2671';
const CARD = '4111 1111 1111 1111';
const KEY = 'sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1w';
// The mock echoes the first 64 characters of the prompt: the e-mail, phone and card are in them.
const PROMPT = `${EMAIL} ${PHONE} ${CARD} and key ${KEY}`;
const REDACTED = '[email] [phone] [card] and key [api_key]';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

let mock, gyre, dir;

before(async () => {
  mock = await startMock();
  dir = tmpdir('gyre-privacy-');
  gyre = await startGyre(`workers: 1
store: {sqlite: "${path.join(dir, 'gyre.db')}", traces: true}
providers:
  - name: mock
    kind: openai
    base_url: "${mock.v1}"
    keys: [${SECRET}]
    prices:
      gpt-4o-mini: {input: 1, output: 2}
routes:
  - {name: open, targets: [{provider: mock, model: gpt-4o-mini}]}
  - {name: quiet, capture: false, targets: [{provider: mock, model: gpt-4o-mini}]}
  - {name: emails-only, redact: [email], targets: [{provider: mock, model: gpt-4o-mini}]}
`);
});

after(async () => {
  assert.equal((await gyre.stop()).code, 0);
  assert.equal((await mock.stop()).code, 0);
  fs.rmSync(dir, { recursive: true, force: true });
});

async function getJson(p) {
  const r = await fetch(`${gyre.url}${p}`, { signal: AbortSignal.timeout(5000 * SLOW) });
  const text = await r.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { status: r.status, json, text };
}

async function pollTrace(id) {
  const deadline = Date.now() + 3000 * SLOW;
  let last;
  while (Date.now() < deadline) {
    last = await getJson(`/api/traces/${id}`);
    if (last.status === 200) return last;
    assert.equal(last.status, 404, `GET /api/traces/${id}: ${last.text}`);
    await sleep(50);
  }
  assert.fail(`trace ${id} was not stored within ${3000 * SLOW} ms (last answer ${last.status}: ${last.text})`);
}

async function call(model, extra = {}, headers = {}) {
  const res = await postJson(`${gyre.url}/v1/chat/completions`,
    chatBody({ model, messages: [{ role: 'user', content: PROMPT }], ...extra }), headers);
  assert.equal(res.status, 200, res.text);
  return res;
}

// The provider's own prices: input 1, output 2 USD per million tokens (the shipped table has 0.15 and 0.6).
const costOf = (u) => (u.prompt_tokens * 1 + u.completion_tokens * 2) / 1e6;

test('a capture:false route stores no bodies, but its tokens and its cost', async () => {
  const res = await call('quiet');
  const { json: t, text } = await pollTrace(res.headers.get('x-gyre-trace-id'));
  assert.equal(t.route, 'quiet');
  assert.equal(t.request_body, null);
  assert.equal(t.response_body, null);
  assert.equal(t.prompt_tokens, res.json.usage.prompt_tokens);
  assert.equal(t.completion_tokens, res.json.usage.completion_tokens);
  assert.equal(t.cost_usd, costOf(res.json.usage));
  assert.ok(!text.includes(EMAIL) && !text.includes('Mock reply'), text);
});

test('a capturing route stores the request and the echoed answer redacted, and the client got them whole', async () => {
  const res = await call('open', {}, { 'x-gyre-meta-contact': EMAIL, 'x-gyre-meta-ticket': 'T-1234' });
  assert.equal(res.json.choices[0].message.content, `Mock reply to: ${PROMPT}`.slice(0, 'Mock reply to: '.length + 64));
  const { json: t, text } = await pollTrace(res.headers.get('x-gyre-trace-id'));
  assert.equal(t.route, 'open');
  assert.equal(t.request_body.messages[0].content, REDACTED);
  assert.equal(t.request_body.model, 'open');
  assert.match(t.response_body.choices[0].message.content, /^Mock reply to: \[email\] \[phone\] \[card\] /);
  assert.deepEqual(t.meta, { contact: '[email]', ticket: 'T-1234' });
  for (const s of [EMAIL, PHONE, CARD, KEY, SECRET]) assert.ok(!text.includes(s), `${s} in ${text}`);
  assert.equal(t.cost_usd, costOf(res.json.usage));
});

test('a streamed answer is stored reassembled and redacted', async () => {
  const res = await call('open', { stream: true });
  const words = sseData(res.text).filter((d) => d !== '[DONE]').map((d) => JSON.parse(d))
    .map((c) => c.choices?.[0]?.delta?.content ?? '').join('');
  assert.ok(words.includes(EMAIL), words);
  const { json: t, text } = await pollTrace(res.headers.get('x-gyre-trace-id'));
  assert.equal(t.stream, true);
  assert.equal(t.request_body.messages[0].content, REDACTED);
  assert.match(t.response_body.choices[0].message.content, /^Mock reply to: \[email\] \[phone\] \[card\] /);
  for (const s of [EMAIL, PHONE, CARD, KEY]) assert.ok(!text.includes(s), `${s} in ${text}`);
});

test('free-text search does not find a redacted e-mail address, but finds its token', async () => {
  const res = await call('open', {}, { 'x-gyre-session': 'privacy-search' });
  const id = res.headers.get('x-gyre-trace-id');
  await pollTrace(id);
  let r = await getJson(`/api/traces?session=privacy-search&q=${encodeURIComponent('jane.doe')}`);
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(r.json.data, []);
  r = await getJson(`/api/traces?session=privacy-search&q=${encodeURIComponent('example.com')}`);
  assert.deepEqual(r.json.data, []);
  r = await getJson(`/api/traces?session=privacy-search&q=key`);
  assert.deepEqual(r.json.data.map((t) => t.trace_id), [id]);
});

test('a route that redacts only e-mail addresses keeps the other kinds', async () => {
  const res = await call('emails-only');
  const { json: t } = await pollTrace(res.headers.get('x-gyre-trace-id'));
  assert.equal(t.request_body.messages[0].content, `[email] ${PHONE} ${CARD} and key ${KEY}`);
});

test('a provider/model call uses the root redaction and the provider\'s prices', async () => {
  const res = await call('mock/gpt-4o-mini');
  const { json: t } = await pollTrace(res.headers.get('x-gyre-trace-id'));
  assert.equal(t.route, '');
  assert.equal(t.request_body.messages[0].content, REDACTED);
  assert.equal(t.cost_usd, costOf(res.json.usage));
});
