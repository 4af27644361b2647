// GET /api/stats (issue 5): the calls gyre answered, counted, with latency
// and TTFT percentiles, tokens and cost, grouped and bucketed in time, read
// from the rollup the writer keeps; and each 400 names the bad parameter.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import fs from 'node:fs';
import { startGyre, startMock, postJson, chatBody, tmpdir, SLOW } from '../lib/harness.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
let mock, gyre, dir, started;

before(async () => {
  mock = await startMock();
  dir = tmpdir('gyre-api-stats-');
  gyre = await startGyre(`workers: 1
store: {sqlite: "${path.join(dir, 'gyre.db')}", traces: true}
providers:
  - {name: mock, kind: openai, base_url: "${mock.v1}", keys: [sk-mock-stats]}
routes:
  - name: chat
    targets: [{provider: mock, model: gpt-4o-mini}]
`);
  started = Date.now();
  const calls = [
    [chatBody(), { 'x-gyre-user': 'alice', 'x-gyre-agent': 'planner' }],
    [chatBody(), { 'x-gyre-user': 'alice', 'x-gyre-agent': 'planner' }],
    [chatBody({ stream: true }), { 'x-gyre-user': 'bob', 'x-gyre-agent': 'coder' }],
  ];
  for (const [body, headers] of calls) {
    const r = await postJson(`${gyre.url}/v1/chat/completions`, body, headers);
    assert.equal(r.status, 200, r.text);
  }
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

// The writer stores the traces shortly after the answers: wait until the stats count all three, bounded.
async function statsWhenWritten(p) {
  const deadline = Date.now() + 3000 * SLOW;
  let last;
  while (Date.now() < deadline) {
    last = await getJson(p);
    assert.equal(last.status, 200, last.text);
    if (last.json.total.requests === 3) return last.json;
    await sleep(50);
  }
  assert.fail(`the stats did not reach 3 requests within ${3000 * SLOW} ms: ${last.text}`);
}

function assertStats(s, requests) {
  assert.equal(s.requests, requests);
  assert.equal(s.errors, 0);
  assert.equal(s.error_rate, 0);
  for (const p of ['p50', 'p95', 'p99']) assert.ok(s.latency_ms[p] >= 0, `latency_ms.${p}: ${s.latency_ms[p]}`);
  assert.ok(s.latency_ms.p50 <= s.latency_ms.p95 && s.latency_ms.p95 <= s.latency_ms.p99);
  for (const k of ['prompt_tokens', 'completion_tokens', 'cached_tokens', 'reasoning_tokens']) assert.ok(Number.isInteger(s[k]) && s[k] >= 0, k);
}

test('the total counts every call of the last 24 h, with ttft from the stream', async () => {
  const s = await statsWhenWritten('/api/stats');
  assert.equal(s.bucket_us, null);
  assert.ok(s.to_us - s.from_us === 24 * 3600 * 1e6, `the default range is 24 h: ${s.from_us}..${s.to_us}`);
  assert.ok(s.from_us < started * 1000 && s.to_us >= started * 1000);
  assertStats(s.total, 3);
  assert.ok(s.total.ttft_ms !== null && s.total.ttft_ms.p50 >= 0, 'one call streamed');
  assert.deepEqual(s.groups, []);
  assert.deepEqual(s.buckets, []);
});

test('group_by user and agent gives one group per pair, most requests first', async () => {
  const s = await statsWhenWritten('/api/stats?group_by=agent,user');
  assert.deepEqual(s.groups.map((g) => [g.key, g.requests]), [
    [{ agent: 'planner', user: 'alice' }, 2],
    [{ agent: 'coder', user: 'bob' }, 1],
  ]);
  assertStats(s.groups[0], 2);
  assert.equal(s.groups[0].ttft_ms, null, "alice's calls were not streams");
  assert.ok(s.groups[1].ttft_ms !== null, "bob's call streamed");
});

test('a filter narrows the total and minute buckets list only the minutes with calls', async () => {
  const s = await statsWhenWritten('/api/stats?bucket=1m');
  assert.equal(s.bucket_us, 60e6);
  assert.ok(s.buckets.length >= 1 && s.buckets.length <= 2, JSON.stringify(s.buckets.map((b) => b.start_us)));
  assert.equal(s.buckets.reduce((n, b) => n + b.requests, 0), 3);
  for (const b of s.buckets) assert.equal(b.start_us % 60e6, 0);
  const bob = await getJson('/api/stats?user=bob');
  assert.equal(bob.status, 200, bob.text);
  assertStats(bob.json.total, 1);
  const nobody = await getJson('/api/stats?provider=nope');
  assert.equal(nobody.json.total.requests, 0);
  assert.equal(nobody.json.total.latency_ms, null);
  assert.equal(nobody.json.total.cost_usd, null);
});

test('each bad parameter is a 400 that names it', async () => {
  const cases = [
    ['/api/stats?bucket=2h', 'bucket', "'bucket' must be one of 1m, 5m, 15m, 1h, 1d, got '2h'"],
    ['/api/stats?group_by=session', 'group_by', "'group_by' takes a comma list of route, provider, model, agent, user, key, team; got 'session'"],
    ['/api/stats?tag=x', 'tag', "unknown parameter 'tag'; expected one of from, to, route, provider, model, agent, user, group_by, bucket, key, team"],
    ['/api/stats?from=yesterday', 'from', "'from' must be unix milliseconds or an RFC 3339 time such as 2026-12-01T10:00:00Z, got 'yesterday'"],
    ['/api/stats?from=2026-01-01T00:00:00Z&to=2026-02-01T00:00:00Z&bucket=1m', 'bucket',
      'bucket: 44640 buckets over this range, more than 10080; use a larger bucket or a shorter range'],
  ];
  for (const [p, param, message] of cases) {
    const r = await getJson(p);
    assert.equal(r.status, 400, `${p}: ${r.text}`);
    assert.equal(r.json.error.param, param, p);
    assert.equal(r.json.error.message, message, p);
  }
});
