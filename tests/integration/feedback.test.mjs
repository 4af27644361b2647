// Feedback (issue 14 point 1): POST /v1/feedback and `gyre feedback` on a
// call made through a real gyre to gyre-mock, shown on /api/traces/{id}
// with exact values; the 400s naming the field at fault, the 404s, feedback
// by session, a correction stored and shown, and who may give feedback.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import fs from 'node:fs';
import { startGyre, startMock, postJson, chatBody, runGyre, tmpdir, SLOW } from '../lib/harness.mjs';

const CLIENT_KEY = 'gk-feedback-client-0123456789abcdef';
const READ_TOKEN = 'rt-feedback-read-0123456789abcdef';
const SESSION = 'sess-feedback-1';
let mock, gyre, dir, traceId;

before(async () => {
  mock = await startMock();
  dir = tmpdir('gyre-feedback-');
  gyre = await startGyre(`workers: 1
store: {sqlite: "${path.join(dir, 'gyre.db')}", traces: true}
auth: {keys: [${CLIENT_KEY}], read_token: ${READ_TOKEN}}
providers:
  - {name: mock, kind: openai, base_url: "${mock.v1}", keys: [sk-mock]}
routes:
  - name: chat
    targets: [{provider: mock, model: gpt-4o-mini}]
feedback:
  metrics:
    - {name: helpful, type: boolean}
    - {name: rating, type: number, min: 1, max: 5}
    - {name: tone, type: category, categories: [calm, rude]}
`);
  const res = await postJson(`${gyre.url}/v1/chat/completions`, chatBody(),
    { authorization: `Bearer ${CLIENT_KEY}`, 'x-gyre-session': SESSION });
  assert.equal(res.status, 200, res.text);
  traceId = res.headers.get('x-gyre-trace-id');
  assert.match(traceId, /^[0-9a-f]{32}$/);
});

after(async () => {
  assert.equal((await gyre.stop()).code, 0);
  assert.equal((await mock.stop()).code, 0);
  fs.rmSync(dir, { recursive: true, force: true });
});

const asClient = { authorization: `Bearer ${CLIENT_KEY}` };
const asReader = { authorization: `Bearer ${READ_TOKEN}` };

async function getTrace(id) {
  const r = await fetch(`${gyre.url}/api/traces/${id}`, { headers: asReader, signal: AbortSignal.timeout(5000 * SLOW) });
  assert.equal(r.status, 200);
  return r.json();
}

test('feedback right after the call finds its trace and answers 201 with what was stored', async () => {
  // No wait for the indexer: gyre looks the trace up again for up to 2 s.
  const res = await postJson(`${gyre.url}/v1/feedback`, { trace_id: traceId, name: 'helpful', value: false, comment: 'too short' }, asClient);
  assert.equal(res.status, 201, res.text);
  const created = res.json.created_us;
  assert.ok(Number.isInteger(created) && created > 1.7e15, res.text);
  assert.deepEqual(res.json, {
    trace_id: traceId, session_id: SESSION, name: 'helpful', value: 0, label: null,
    comment: 'too short', correction: null, created_us: created,
  });
});

test('a number, a category and a correction are stored and shown on /api/traces/{id}', async () => {
  const a = await postJson(`${gyre.url}/v1/feedback`, { trace_id: traceId, name: 'rating', value: 4.5 }, asReader);
  assert.equal(a.status, 201, a.text);
  const b = await postJson(`${gyre.url}/v1/feedback`,
    { trace_id: traceId, name: 'tone', value: 'calm', correction: 'Hello! How can I help you today?' }, asClient);
  assert.equal(b.status, 201, b.text);
  const t = await getTrace(traceId);
  assert.deepEqual(t.feedback.map(({ created_us, ...f }) => { assert.ok(created_us > 0); return f; }), [
    { name: 'helpful', value: 0, label: null, comment: 'too short', correction: null, session: false },
    { name: 'rating', value: 4.5, label: null, comment: null, correction: null, session: false },
    { name: 'tone', value: null, label: 'calm', comment: null, correction: 'Hello! How can I help you today?', session: false },
  ]);
  assert.deepEqual(t.scores, []);
  assert.equal(t.cluster, null);
});

test('feedback by session shows on every call of the session', async () => {
  const res = await postJson(`${gyre.url}/v1/feedback`, { session_id: SESSION, name: 'helpful', value: true }, asClient);
  assert.equal(res.status, 201, res.text);
  assert.equal(res.json.trace_id, null);
  assert.equal(res.json.session_id, SESSION);
  assert.equal(res.json.value, 1);
  const t = await getTrace(traceId);
  const last = t.feedback[t.feedback.length - 1];
  assert.deepEqual({ ...last, created_us: 0 },
    { name: 'helpful', value: 1, label: null, comment: null, correction: null, session: true, created_us: 0 });
});

test('an unknown trace or session is a 404 after the bounded wait', async () => {
  const t0 = Date.now();
  const res = await postJson(`${gyre.url}/v1/feedback`, { trace_id: 'f'.repeat(32), name: 'helpful', value: true }, asClient);
  assert.equal(res.status, 404, res.text);
  assert.deepEqual(res.json.error, { message: `no trace '${'f'.repeat(32)}'`, type: 'invalid_request_error', param: 'trace_id', code: 'trace_not_found' });
  assert.ok(Date.now() - t0 >= 1900, 'it waited for the indexer first');
  const s = await postJson(`${gyre.url}/v1/feedback`, { session_id: 'no-such-session', name: 'helpful', value: true }, asClient);
  assert.equal(s.status, 404, s.text);
  assert.equal(s.json.error.message, "no session 'no-such-session'");
  assert.equal(s.json.error.param, 'session_id');
});

test('a wrong metric or value is a 400 naming the field, and nothing is stored', async () => {
  const cases = [
    [{ trace_id: traceId, name: 'stars', value: 1 }, 'name', "unknown metric 'stars' (this gateway's metrics: helpful, rating, tone)"],
    [{ trace_id: traceId, name: 'helpful', value: 'yes' }, 'value', "'value' must be true or false for the boolean metric 'helpful'"],
    [{ trace_id: traceId, name: 'rating', value: 9 }, 'value', "'value' 9 is outside the range of 'rating' (1 to 5)"],
    [{ trace_id: traceId, name: 'rating', value: '3' }, 'value', "'value' must be a number for the number metric 'rating'"],
    [{ trace_id: traceId, name: 'tone', value: 'angry' }, 'value', "'value' must be one of the categories of 'tone': calm, rude"],
    [{ trace_id: traceId, name: 'helpful' }, 'value', "'value' is required"],
    [{ trace_id: 'XYZ', name: 'helpful', value: true }, 'trace_id', "'trace_id' must be 32 lowercase hex digits (the x-gyre-trace-id of the call)"],
    [{ name: 'helpful', value: true }, 'trace_id', "'trace_id' or 'session_id' is required"],
    [{ trace_id: traceId, name: 'helpful', value: true, comment: 7 }, 'comment', "'comment' must be a string"],
  ];
  for (const [body, param, message] of cases) {
    const res = await postJson(`${gyre.url}/v1/feedback`, body, asClient);
    assert.equal(res.status, 400, `${JSON.stringify(body)}: ${res.text}`);
    assert.deepEqual(res.json.error, { message, type: 'invalid_request_error', param, code: 'invalid_value' });
  }
  const t = await getTrace(traceId);
  assert.equal(t.feedback.length, 4);
});

test('feedback needs a client key or the read token', async () => {
  const none = await postJson(`${gyre.url}/v1/feedback`, { trace_id: traceId, name: 'helpful', value: true });
  assert.equal(none.status, 401);
  const get = await fetch(`${gyre.url}/v1/feedback`, { headers: asClient });
  assert.equal(get.status, 405);
  assert.equal(get.headers.get('allow'), 'POST');
});

test('gyre feedback gives feedback over HTTP, with a correction from a file, and says why it is refused', async () => {
  const file = path.join(dir, 'fix.txt');
  fs.writeFileSync(file, 'The corrected answer.');
  const env = { GYRE_API_KEY: CLIENT_KEY };
  const ok = await runGyre(['feedback', '--trace', traceId, '--name', 'rating', '--value', '2', '--comment', 'meh',
    '--correction', `@${file}`, '--url', gyre.url, '--json'], { env });
  assert.equal(ok.code, 0, ok.stderr);
  const a = JSON.parse(ok.stdout);
  assert.deepEqual({ ...a, created_us: 0 }, {
    trace_id: traceId, session_id: SESSION, name: 'rating', value: 2, label: null, comment: 'meh',
    correction: 'The corrected answer.', created_us: 0,
  });
  const plain = await runGyre(['feedback', '--session', SESSION, '--name', 'tone', '--value', 'rude', '--url', gyre.url], { env });
  assert.equal(plain.code, 0, plain.stderr);
  assert.equal(plain.stdout, `feedback stored: tone=rude on session ${SESSION}\n`);
  const bad = await runGyre(['feedback', '--trace', traceId, '--name', 'rating', '--value', '7', '--url', gyre.url], { env });
  assert.equal(bad.code, 1);
  assert.equal(bad.stderr, "gyre feedback: 400: 'value' 7 is outside the range of 'rating' (1 to 5)\n");
  const t = await getTrace(traceId);
  assert.deepEqual(t.feedback.slice(4).map((f) => [f.name, f.value, f.label, f.correction, f.session]), [
    ['rating', 2, null, 'The corrected answer.', false],
    ['tone', null, 'rude', null, true],
  ]);
  // `gyre traces show --json` prints the same members.
  const show = await runGyre(['traces', 'show', traceId, '--json', '--db', path.join(dir, 'gyre.db')]);
  assert.equal(show.code, 0, show.stderr);
  const shown = JSON.parse(show.stdout);
  assert.deepEqual(shown.feedback, t.feedback);
  assert.deepEqual(shown.scores, []);
  assert.equal(shown.cluster, null);
  // And its table, one row per feedback, oldest first.
  const text = await runGyre(['traces', 'show', traceId, '--db', path.join(dir, 'gyre.db')]);
  assert.equal(text.code, 0, text.stderr);
  const block = text.stdout.split('\n\n').find((b) => b.startsWith('feedback ('));
  const rows = block.split('\n').map((l) => l.trim().split(/ {2,}/));
  assert.deepEqual(rows[0], ['feedback (6):']);
  assert.deepEqual(rows[1], ['NAME', 'VALUE', 'BY', 'CREATED (UTC)', 'COMMENT', 'CORRECTION']);
  assert.deepEqual(rows.slice(2).map((r) => [r[0], r[1], r[2], r[4], r[5]]), [
    ['helpful', '0', 'trace', 'too short', '-'],
    ['rating', '4.5', 'trace', '-', '-'],
    ['tone', 'calm', 'trace', '-', 'Hello! How can I help you today?'],
    ['helpful', '1', 'session', '-', '-'],
    ['rating', '2', 'trace', 'meh', 'The corrected answer.'],
    ['tone', 'rude', 'session', '-', '-'],
  ]);
  assert.ok(text.stdout.includes('\nscores (0):\n'));
  assert.ok(text.stdout.includes('\ncluster        -\n'));
});
