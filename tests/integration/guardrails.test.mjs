// In-line guardrails (issue 14, docs/guardrails.md) against real gyre and gyre-mock processes: a route's
// heuristic checks on the request (deny: 400 in the client's dialect; flag) and on the answer (deny: 422;
// retry: the next target; flag), a stream's check flagging at its end, the trace's marks and the metrics.
//
// The mock's answer to "<text>" is "Mock reply to: <text>" cut to 64 characters (docs/mock.md), so a prompt
// plants what the answer contains.  The retry route's first target is a mock that waits 400 ms before each
// answer, and its check is a latency bound of 250 ms per attempt: the slow target's answer fails it, the fast
// one's passes.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import fs from 'node:fs';
import path from 'node:path';
import { startGyre, startMock, postJson, sseData, runGyre, tmpdir, SLOW } from '../lib/harness.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const ask = (model, text, extra = {}) => ({ model, messages: [{ role: 'user', content: text }], ...extra });
const SSN = '123-45-6789';

let fast, slow, gyre;

before(async () => {
  fast = await startMock();
  slow = await startMock(['--latency-ms', '400']);
  gyre = await startGyre(`workers: 1
providers:
  - {name: fast, kind: openai, base_url: "${fast.v1}", keys: [sk-fast-guard-0001]}
  - {name: slow, kind: openai, base_url: "${slow.v1}", keys: [sk-slow-guard-0001]}
  - {name: claude, kind: anthropic, base_url: "${fast.v1}", keys: [sk-ant-guard-0001]}
scorers:
  - {name: no_ssn, type: regex, must_not: ['[0-9]{3}-[0-9]{2}-[0-9]{4}']}
  - {name: polite, type: toxicity}
  - {name: quick, type: latency, max_latency: 250ms}
  - {name: no_secret, type: regex, must_not: [secret]}
routes:
  - name: guarded-in
    targets: [{provider: fast, model: gpt-4o-mini}]
    guardrails:
      - {check: no_ssn, on: request, action: deny}
      - {check: polite, on: request, action: flag}
  - name: claude-in
    targets: [{provider: claude, model: claude-3-5-haiku}]
    guardrails:
      - {check: no_ssn, on: request, action: deny}
  - name: claude-out
    targets: [{provider: claude, model: claude-3-5-haiku}]
    guardrails:
      - {check: no_ssn, on: response, action: deny}
  - name: guarded-out
    targets: [{provider: fast, model: gpt-4o-mini}]
    guardrails:
      - {check: no_ssn, on: response, action: deny}
      - {check: no_secret, on: response, action: flag}
  - name: retried
    strategy: weighted
    targets: [{provider: slow, model: gpt-4o-mini, weight: 1}]
    fallbacks: [{provider: fast, model: gpt-4o}]
    fallback_on: [connect]
    guardrails:
      - {check: quick, action: retry}
  - name: all-slow
    targets: [{provider: slow, model: gpt-4o-mini}]
    guardrails:
      - {check: quick, action: retry}
`);
});

after(async () => {
  assert.equal((await gyre.stop()).code, 0);
  assert.equal((await fast.stop()).code, 0);
  assert.equal((await slow.stop()).code, 0);
});

const chat = (body) => postJson(`${gyre.url}/v1/chat/completions`, body);

async function trace(id) {
  const deadline = Date.now() + 3000 * SLOW;
  for (;;) {
    const r = await fetch(`${gyre.url}/api/traces/${id}`);
    if (r.status === 200) return r.json();
    if (Date.now() > deadline) assert.fail(`trace ${id} not stored: ${r.status}`);
    await sleep(50);
  }
}

test('a request guardrail that denies answers 400 in OpenAI\'s shape naming the check, and no provider is called', async () => {
  const before = (await fast.stats()).requests;
  const r = await chat(ask('guarded-in', `my SSN is ${SSN}, file my taxes`));
  assert.equal(r.status, 400);
  assert.deepEqual(r.json, {
    error: {
      message: "guardrail 'no_ssn' failed on the request: must_not[0] '[0-9]{3}-[0-9]{2}-[0-9]{4}' matches",
      type: 'invalid_request_error',
      param: 'messages',
      code: 'guardrail_failed',
    },
  });
  assert.equal((await fast.stats()).requests, before);
  const t = await trace(r.headers.get('x-gyre-trace-id'));
  assert.equal(t.status, 400);
  assert.deepEqual(t.tags, ['guardrail:no_ssn:deny']);
  assert.equal(t.attempts.length, 0);
});

test('a request guardrail that denies answers an Anthropic client in Anthropic\'s error shape', async () => {
  const r = await postJson(`${gyre.url}/v1/messages`,
    { model: 'claude-in', max_tokens: 50, messages: [{ role: 'user', content: `SSN ${SSN}` }] },
    { 'anthropic-version': '2023-06-01' });
  assert.equal(r.status, 400);
  assert.deepEqual(r.json, {
    type: 'error',
    error: {
      type: 'invalid_request_error',
      message: "guardrail 'no_ssn' failed on the request: must_not[0] '[0-9]{3}-[0-9]{2}-[0-9]{4}' matches",
    },
  });
});

test('the openai SDK sees a clean BadRequestError on a denied request', async () => {
  const client = new OpenAI({ baseURL: `${gyre.url}/v1`, apiKey: 'unused', maxRetries: 0 });
  await assert.rejects(
    client.chat.completions.create(ask('guarded-in', `SSN ${SSN}`)),
    (e) => e instanceof OpenAI.BadRequestError && e.status === 400 && e.code === 'guardrail_failed' &&
      e.message === "400 guardrail 'no_ssn' failed on the request: must_not[0] '[0-9]{3}-[0-9]{2}-[0-9]{4}' matches",
  );
});

test('a request guardrail that flags lets the call through and marks the trace', async () => {
  const r = await chat(ask('guarded-in', 'you idiot, say hi'));
  assert.equal(r.status, 200);
  assert.equal(r.json.choices[0].message.content, 'Mock reply to: you idiot, say hi');
  const t = await trace(r.headers.get('x-gyre-trace-id'));
  assert.deepEqual(t.tags, ['guardrail:polite:flag']);
  assert.equal(t.meta['guardrail.polite'], "the text has a toxic term ('idiot')");
});

test('an answer guardrail that denies answers 422 naming the check, instead of the answer', async () => {
  const r = await chat(ask('guarded-out', `repeat ${SSN}`));
  assert.equal(r.status, 422);
  assert.deepEqual(r.json, {
    error: {
      message: "guardrail 'no_ssn' failed on the answer: must_not[0] '[0-9]{3}-[0-9]{2}-[0-9]{4}' matches",
      type: 'invalid_request_error',
      param: null,
      code: 'guardrail_failed',
    },
  });
  assert.equal(r.headers.get('x-gyre-provider'), 'fast');
  const t = await trace(r.headers.get('x-gyre-trace-id'));
  assert.equal(t.status, 422);
  assert.deepEqual(t.tags, ['guardrail:no_ssn:deny']);
  assert.equal(t.attempts.length, 1);
  assert.equal(t.attempts[0].status, 200);
});

test('an Anthropic client whose answer (passed through from an Anthropic provider) is denied gets 422 in Anthropic\'s shape', async () => {
  const ok = await postJson(`${gyre.url}/v1/messages`,
    { model: 'claude-out', max_tokens: 50, messages: [{ role: 'user', content: 'say hi' }] },
    { 'anthropic-version': '2023-06-01' });
  assert.equal(ok.status, 200);
  assert.deepEqual(ok.json.content, [{ type: 'text', text: 'Mock reply to: say hi' }]);
  const r = await postJson(`${gyre.url}/v1/messages`,
    { model: 'claude-out', max_tokens: 50, messages: [{ role: 'user', content: `repeat ${SSN}` }] },
    { 'anthropic-version': '2023-06-01' });
  assert.equal(r.status, 422);
  assert.deepEqual(r.json, {
    type: 'error',
    error: {
      type: 'invalid_request_error',
      message: "guardrail 'no_ssn' failed on the answer: must_not[0] '[0-9]{3}-[0-9]{2}-[0-9]{4}' matches",
    },
  });
});

test('the openai SDK sees a clean UnprocessableEntityError on a denied answer', async () => {
  const client = new OpenAI({ baseURL: `${gyre.url}/v1`, apiKey: 'unused', maxRetries: 0 });
  await assert.rejects(
    client.chat.completions.create(ask('guarded-out', `repeat ${SSN}`)),
    (e) => e instanceof OpenAI.UnprocessableEntityError && e.status === 422 && e.code === 'guardrail_failed',
  );
});

test('an answer guardrail that flags sends the answer as it is and marks the trace', async () => {
  const r = await chat(ask('guarded-out', 'tell the secret'));
  assert.equal(r.status, 200);
  assert.equal(r.json.choices[0].message.content, 'Mock reply to: tell the secret');
  const t = await trace(r.headers.get('x-gyre-trace-id'));
  assert.deepEqual(t.tags, ['guardrail:no_secret:flag']);
  assert.equal(t.meta['guardrail.no_secret'], "must_not[0] 'secret' matches");
});

test('retry: an answer that fails the check moves to the next target, and the trace shows both attempts', async () => {
  const r = await chat(ask('retried', 'hello there'));
  assert.equal(r.status, 200);
  assert.equal(r.json.choices[0].message.content, 'Mock reply to: hello there');
  assert.equal(r.headers.get('x-gyre-provider'), 'fast');
  assert.equal(r.headers.get('x-gyre-model'), 'gpt-4o');
  assert.equal(r.headers.get('x-gyre-attempts'), '2');
  const t = await trace(r.headers.get('x-gyre-trace-id'));
  assert.deepEqual(t.attempts.map((a) => [a.provider, a.status]), [['slow', 200], ['fast', 200]]);
  assert.match(t.attempts[0].error,
    /^guardrail 'quick' failed on the answer of provider 'slow': took \d+ ms; the maximum is 250 ms$/);
  assert.equal(t.attempts[1].error, '');
  assert.deepEqual(t.tags, ['guardrail:quick:retry']);
});

test('retry with no target left answers 502 naming the check', async () => {
  const r = await chat(ask('all-slow', 'hello'));
  assert.equal(r.status, 502);
  assert.equal(r.json.error.code, 'guardrail_failed');
  assert.equal(r.json.error.type, 'upstream_error');
  assert.match(r.json.error.message,
    /^guardrail 'quick' failed on the answer of provider 'slow': took \d+ ms; the maximum is 250 ms$/);
});

test('a stream is checked at its end and can only flag: the client gets the whole stream', async () => {
  const r = await fetch(`${gyre.url}/v1/chat/completions`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify(ask('guarded-out', `repeat ${SSN}`, { stream: true })),
  });
  assert.equal(r.status, 200);
  const events = sseData(await r.text());
  assert.equal(events.at(-1), '[DONE]');
  const text = events.slice(0, -1).map((d) => JSON.parse(d).choices[0]?.delta?.content ?? '').join('');
  assert.equal(text, `Mock reply to: repeat ${SSN}`);
  const t = await trace(r.headers.get('x-gyre-trace-id'));
  assert.equal(t.status, 200);
  assert.deepEqual(t.tags, ['guardrail:no_ssn:flag']);
});

test('every check is counted by result, and every action taken', async () => {
  const text = await (await fetch(`${gyre.url}/metrics`)).text();
  const line = (s) => text.split('\n').find((l) => l.startsWith(s + ' '));
  assert.equal(line('gyre_guardrail_checks_total{route="guarded-in",check="no_ssn",on="request",result="fail"}'),
    'gyre_guardrail_checks_total{route="guarded-in",check="no_ssn",on="request",result="fail"} 2');
  assert.equal(line('gyre_guardrail_checks_total{route="guarded-in",check="no_ssn",on="request",result="pass"}'),
    'gyre_guardrail_checks_total{route="guarded-in",check="no_ssn",on="request",result="pass"} 1');
  assert.equal(line('gyre_guardrail_actions_total{route="guarded-out",check="no_ssn",on="response",action="deny"}'),
    'gyre_guardrail_actions_total{route="guarded-out",check="no_ssn",on="response",action="deny"} 2');
  assert.equal(line('gyre_guardrail_actions_total{route="guarded-out",check="no_ssn",on="response",action="flag"}'),
    'gyre_guardrail_actions_total{route="guarded-out",check="no_ssn",on="response",action="flag"} 1');
  assert.equal(line('gyre_guardrail_actions_total{route="retried",check="quick",on="response",action="retry"}'),
    'gyre_guardrail_actions_total{route="retried",check="quick",on="response",action="retry"} 1');
  assert.equal(line('gyre_guardrail_checks_total{route="retried",check="quick",on="response",result="pass"}'),
    'gyre_guardrail_checks_total{route="retried",check="quick",on="response",result="pass"} 1');
});

test('check-config names a scorer whose schema keyword is wrong, at its line', async () => {
  const dir = tmpdir('gyre-guard-cc-');
  const file = path.join(dir, 'g.yaml');
  fs.writeFileSync(file, `providers:
  - {name: p, kind: openai, base_url: "http://127.0.0.1:9/v1"}
scorers:
  - {name: ok, type: json_valid}
  - name: shape
    type: json_schema
    schema: {type: object, properties: {n: {type: integer, minimum: low}}}
`);
  const r = await runGyre(['check-config', file]);
  fs.rmSync(dir, { recursive: true, force: true });
  assert.equal(r.code, 1);
  assert.equal(r.stdout, `${file}:5: scorers[1].schema: properties.n.minimum: is not a number\n1 error\n`);
});
