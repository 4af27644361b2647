// Routing behaviour, part II: how a route's strategy orders its pool
// (weighted, least_latency, least_inflight, cheapest), session affinity and
// how it follows a circuit breaker, the response cache (exact-match keys,
// Cache-Control, streams from and into the cache, TTL, errors never cached,
// Anthropic clients) and mid-stream resume (one seamless stream when the
// provider cuts it, across dialects, for both client dialects), each against
// real gyre and gyre-mock processes with `workers: 1`, so that the per-worker
// latency, in-flight, breaker and key figures are the ones every request sees.
//
// The mock's answer to "<text>" is "Mock reply to: <text>" (docs/mock.md);
// gyre names the target that answered in x-gyre-provider / x-gyre-model.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import OpenAI from 'openai';
import { startGyre, startMock, startUpstream, postJson, sseData, freePort, tmpdir, SLOW } from '../lib/harness.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const reply = (text) => `Mock reply to: ${text}`;
const ask = (model, text, extra = {}) => ({ model, messages: [{ role: 'user', content: text }], ...extra });
const chat = (g, body, headers = {}) => postJson(`${g.url}/v1/chat/completions`, body, headers);
const messages = (g, body, headers = {}) =>
  postJson(`${g.url}/v1/messages`, body, { 'anthropic-version': '2023-06-01', ...headers });

/**
 * POSTs a streaming request and reads its body to the end even when the
 * response ends abnormally (a stream that fails mid-way ends the HTTP body
 * with an error, which fetch reports by rejecting): {status, headers, text,
 * cut} where `cut` says whether the body ended abnormally.
 */
async function postStream(url, body, headers = {}) {
  const r = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(15000 * SLOW),
  });
  const reader = r.body.getReader();
  const dec = new TextDecoder();
  let text = '', cut = false;
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      text += dec.decode(value, { stream: true });
    }
  } catch {
    cut = true;
  }
  return { status: r.status, headers: r.headers, text, cut };
}

/** Runs fn(0..n-1) with at most `width` calls in flight; the results in order. */
async function pooled(n, width, fn) {
  const out = new Array(n);
  let next = 0;
  await Promise.all(Array.from({ length: width }, async () => {
    while (next < n) {
      const i = next++;
      out[i] = await fn(i);
    }
  }));
  return out;
}

function tally(list) {
  const t = {};
  for (const x of list) t[x] = (t[x] || 0) + 1;
  return t;
}

/** Waits (bounded) until cond() holds. */
async function until(cond, what, ms = 5000 * SLOW) {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

const reset = (mock) => fetch(`${mock.url}/_mock/reset`, { method: 'POST' }).then((r) => r.json());

/** The OpenAI chunks of a streamed answer (every data: payload but [DONE], parsed). */
function chunksOf(text) {
  return sseData(text).filter((d) => d !== '[DONE]').map((d) => JSON.parse(d));
}
const contentOf = (chunks) => chunks.map((c) => c.choices?.[0]?.delta?.content ?? '').join('');

/** Anthropic's stream as [{event, data}]. */
function anthropicEvents(text) {
  const out = [];
  for (const block of text.split(/\n\n/)) {
    const ev = block.split('\n').find((l) => l.startsWith('event: '));
    const data = block.split('\n').find((l) => l.startsWith('data: '));
    if (ev && data) out.push({ event: ev.slice(7), data: JSON.parse(data.slice(6)) });
  }
  return out;
}

/** A chat.completion a scripted upstream answers with. */
function completion(text) {
  return JSON.stringify({
    id: 'chatcmpl-scripted', object: 'chat.completion', created: 1700000000, model: 'gpt-4o-mini',
    choices: [{ index: 0, message: { role: 'assistant', content: text }, finish_reason: 'stop' }],
    usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 },
  });
}

// ---------------------------------------------------------------------------
// 1. Strategies
// ---------------------------------------------------------------------------

test('weighted (the default): weights 3:1 share 400 requests about 300:100, and a weight-0 target gets none', async () => {
  const mock = await startMock();
  const g = await startGyre(`workers: 1
providers:
  - {name: heavy, kind: openai, base_url: "${mock.v1}", keys: [sk-heavy]}
  - {name: light, kind: openai, base_url: "${mock.v1}", keys: [sk-light]}
  - {name: standby, kind: openai, base_url: "${mock.v1}", keys: [sk-standby]}
routes:
  - name: chat
    targets:
      - {provider: heavy, model: gpt-4o-mini, weight: 3}
      - {provider: light, model: gpt-4o-mini, weight: 1}
      - {provider: standby, model: gpt-4o-mini, weight: 0}
`);
  const N = 400;
  const res = await pooled(N, 8, () => chat(g, ask('chat', 'Say hello.')));
  for (const r of res) {
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('x-gyre-attempts'), '1');
    assert.equal(r.json.choices[0].message.content, reply('Say hello.'));
  }
  const t = tally(res.map((r) => r.headers.get('x-gyre-provider')));
  // heavy ~ Binomial(400, 0.75): mean 300, sd 8.66.  [260, 340] is +-4.6 sd, so a correct
  // gyre fails this about 4 times in a million runs; a 1:1 split (200) or a 2:1 split
  // (267 +- 9.4) would be out of it or at its very edge.
  assert.ok(t.heavy >= 260 && t.heavy <= 340, `heavy got ${t.heavy} of ${N}: ${JSON.stringify(t)}`);
  assert.equal(t.heavy + t.light, N);
  assert.equal(t.standby, undefined, 'a weight-0 target is never chosen while the others are up');
  // The provider saw exactly what gyre's headers say.
  const keys = (await mock.stats()).keys;
  assert.deepEqual(keys, { 'sk-heavy': t.heavy, 'sk-light': t.light });
  assert.equal((await g.stop()).code, 0);
  assert.equal((await mock.stop()).code, 0);
});

test('weighted: a weight-0 target is the standby that takes the calls when the weighted targets are down', async () => {
  const mock = await startMock();
  const dead = await freePort(); // nothing listens there: connect fails
  const g = await startGyre(`workers: 1
providers:
  - {name: heavy, kind: openai, base_url: "http://127.0.0.1:${dead}/v1", keys: [sk-heavy], breaker: off}
  - {name: light, kind: openai, base_url: "http://127.0.0.1:${dead}/v1", keys: [sk-light], breaker: off}
  - {name: standby, kind: openai, base_url: "${mock.v1}", keys: [sk-standby]}
routes:
  - name: chat
    targets:
      - {provider: heavy, model: gpt-4o-mini, weight: 3}
      - {provider: light, model: gpt-4o-mini, weight: 1}
      - {provider: standby, model: gpt-4o-mini, weight: 0}
`);
  for (let i = 0; i < 10; i++) {
    const r = await chat(g, ask('chat', 'Say hello.'));
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('x-gyre-provider'), 'standby');
    // Both weighted targets were tried (and refused the connection) before the standby.
    assert.equal(r.headers.get('x-gyre-attempts'), '3');
  }
  assert.deepEqual((await mock.stats()).keys, { 'sk-standby': 10 });
  assert.equal((await g.stop()).code, 0);
  assert.equal((await mock.stop()).code, 0);
});

test('least_latency: untried targets first, then the faster one; traffic moves when it becomes slow', async () => {
  const slow = await startMock(['--latency-ms', '100']);
  const fast = await startMock();
  const g = await startGyre(`workers: 1
providers:
  - {name: slow, kind: openai, base_url: "${slow.v1}", keys: [sk-slow]}
  - {name: fast, kind: openai, base_url: "${fast.v1}", keys: [sk-fast]}
routes:
  - name: chat
    strategy: least_latency
    targets: [{provider: slow, model: gpt-4o-mini}, {provider: fast, model: gpt-4o-mini}]
`);
  const who = async () => {
    const r = await chat(g, ask('chat', 'Say hello.'));
    assert.equal(r.status, 200);
    return r.headers.get('x-gyre-provider');
  };
  // Neither is measured yet: the first two requests measure one each.
  const first = [await who(), await who()];
  assert.deepEqual(first.sort(), ['fast', 'slow']);
  // Measured, the fast one (about 0 ms against 100 ms: far apart, so a loaded machine's
  // hiccup does not reorder them) takes everything.
  const measured = [];
  for (let i = 0; i < 20; i++) measured.push(await who());
  assert.deepEqual(tally(measured), { fast: 20 });
  // The fast one becomes slower (300 ms) than the slow one: its moving average (weight 0.3
  // for the newest sample: 0.3*300 + 0.7*1 = 91, then 154) passes 100 ms after its second
  // slow answer, and from then on the 100 ms target is the faster one and takes every request.
  await fast.configure({ latency_ms: 300 });
  const after = [];
  for (let i = 0; i < 10; i++) after.push(await who());
  assert.equal(after[0], 'fast', 'the change is only known once measured');
  const moved = after.indexOf('slow');
  assert.ok(moved >= 1 && moved <= 4, `traffic moved after ${moved} requests: ${after.join(' ')}`);
  assert.deepEqual(after.slice(moved), Array(after.length - moved).fill('slow'), after.join(' '));
  assert.equal((await slow.stats()).requests, 1 + after.length - moved);
  assert.equal((await g.stop()).code, 0);
  assert.equal((await slow.stop()).code, 0);
  assert.equal((await fast.stop()).code, 0);
});

test('least_inflight: requests balance over in-flight counts, and go to the other target while one holds several', async () => {
  // Two scripted providers that hold every request until told to answer, so the
  // in-flight counts are exactly the requests a test has not released.
  const mk = async (name) => {
    const u = { held: [], hold: true };
    u.up = await startUpstream((req, res, body) => {
      const text = JSON.parse(body).messages[0].content;
      if (u.hold) u.held.push({ text, res });
      else res.writeHead(200, { 'content-type': 'application/json' }).end(completion(`${name}: ${text}`));
    });
    u.release = () => {
      for (const h of u.held) h.res.writeHead(200, { 'content-type': 'application/json' }).end(completion(`${name}: ${h.text}`));
      u.held = [];
    };
    return u;
  };
  const a = await mk('a'), b = await mk('b');
  const g = await startGyre(`workers: 1
providers:
  - {name: a, kind: openai, base_url: "${a.up.v1}", keys: [sk-a]}
  - {name: b, kind: openai, base_url: "${b.up.v1}", keys: [sk-b]}
routes:
  - name: chat
    strategy: least_inflight
    targets: [{provider: a, model: gpt-4o-mini}, {provider: b, model: gpt-4o-mini}]
`);
  const pending = {};
  const send = (text) => { pending[text] = chat(g, ask('chat', text)); };
  // Six requests, each sent once the previous one is held upstream: least_inflight
  // never lets the two counts differ by more than one, so each target holds three.
  for (let i = 0; i < 6; i++) {
    send(`held ${i}`);
    await until(() => a.held.length + b.held.length === i + 1, `request ${i} to arrive upstream`);
  }
  assert.equal(a.held.length, 3);
  assert.equal(b.held.length, 3);
  // b answers its three (in flight: a 3, b 0) and from now on answers at once.
  const bTexts = b.held.map((h) => h.text);
  b.hold = false;
  b.release();
  for (const t of bTexts) {
    const r = await pending[t];
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('x-gyre-provider'), 'b');
    assert.equal(r.json.choices[0].message.content, `b: ${t}`);
  }
  // While a still holds three, every new request goes to b.
  for (let i = 0; i < 10; i++) {
    const r = await chat(g, ask('chat', `new ${i}`));
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('x-gyre-provider'), 'b', `request ${i} went to a while a held 3`);
  }
  assert.equal(a.up.requests.length, 3, 'a saw no request after its three');
  assert.equal(b.up.requests.length, 13);
  const aTexts = a.held.map((h) => h.text);
  a.release();
  for (const t of aTexts) {
    const r = await pending[t];
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('x-gyre-provider'), 'a');
    assert.equal(r.json.choices[0].message.content, `a: ${t}`);
  }
  assert.equal((await g.stop()).code, 0);
  await a.up.close();
  await b.up.close();
});

test('cheapest: every request goes to the cheaper model (data/prices.json), and to the dearer one when it fails', async () => {
  const dear = await startMock();
  const cheap = await startMock();
  const g = await startGyre(`workers: 1
providers:
  - {name: dear, kind: openai, base_url: "${dear.v1}", keys: [sk-dear]}
  - {name: cheap, kind: openai, base_url: "${cheap.v1}", keys: [sk-cheap], breaker: off}
routes:
  - name: chat
    strategy: cheapest
    targets: [{provider: dear, model: gpt-4o}, {provider: cheap, model: gpt-4o-mini}]
`);
  // gpt-4o is 2.50 + 10.00 USD per 1M tokens, gpt-4o-mini 0.15 + 0.60 (data/prices.json).
  for (let i = 0; i < 20; i++) {
    const r = await chat(g, ask('chat', 'Say hello.'));
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('x-gyre-provider'), 'cheap');
    assert.equal(r.headers.get('x-gyre-model'), 'gpt-4o-mini');
    assert.equal(r.headers.get('x-gyre-attempts'), '1');
    assert.equal(r.json.model, 'gpt-4o-mini');
  }
  assert.equal((await dear.stats()).requests, 0);
  await cheap.configure({ fault: '500' });
  for (let i = 0; i < 3; i++) {
    const r = await chat(g, ask('chat', 'Say hello.'));
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('x-gyre-provider'), 'dear');
    assert.equal(r.headers.get('x-gyre-model'), 'gpt-4o');
    assert.equal(r.headers.get('x-gyre-attempts'), '2', 'the cheaper one is still tried first');
    assert.equal(r.json.choices[0].message.content, reply('Say hello.'));
  }
  assert.deepEqual((await dear.stats()).models, { 'gpt-4o': 3 });
  assert.deepEqual((await cheap.stats()).models, { 'gpt-4o-mini': 23 });
  assert.equal((await g.stop()).code, 0);
  assert.equal((await dear.stop()).code, 0);
  assert.equal((await cheap.stop()).code, 0);
});

test('cheapest: a `prices:` file replaces the shipped table, and a model it does not price comes last', async () => {
  const mock = await startMock();
  const dir = tmpdir('gyre-routing2-');
  const prices = path.join(dir, 'prices.json');
  // Turned around: here gpt-4o-mini is the dear one.
  fs.writeFileSync(prices, JSON.stringify({
    version: 'test', source: 'gateway-routing2.test.mjs',
    models: { 'gpt-4o': { input: 1, output: 1 }, 'gpt-4o-mini': { input: 50, output: 50 } },
  }));
  const g = await startGyre(`workers: 1
prices: "${prices}"
providers:
  - {name: p, kind: openai, base_url: "${mock.v1}", keys: [sk-p]}
routes:
  - name: chat
    strategy: cheapest
    targets: [{provider: p, model: unpriced-model}, {provider: p, model: gpt-4o-mini}, {provider: p, model: gpt-4o}]
`);
  for (let i = 0; i < 10; i++) {
    const r = await chat(g, ask('chat', 'Say hello.'));
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('x-gyre-model'), 'gpt-4o');
  }
  assert.deepEqual((await mock.stats()).models, { 'gpt-4o': 10 });
  assert.equal((await g.stop()).code, 0);
  assert.equal((await mock.stop()).code, 0);
  fs.rmSync(dir, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------
// 2. Session affinity
// ---------------------------------------------------------------------------

test('affinity: session keeps a session on one target and key, spreads sessions, and follows the breaker', async () => {
  const m1 = await startMock();
  const m2 = await startMock();
  const mocks = { p1: m1, p2: m2 };
  const breaker = '{failures: 2, min_requests: 1000, cooldown_ms: 800}';
  const g = await startGyre(`workers: 1
providers:
  - {name: p1, kind: openai, base_url: "${m1.v1}", keys: [k1a, k1b], breaker: ${breaker}}
  - {name: p2, kind: openai, base_url: "${m2.v1}", keys: [k2a, k2b], breaker: ${breaker}}
routes:
  - name: chat
    affinity: session
    targets: [{provider: p1, model: gpt-4o-mini}, {provider: p2, model: gpt-4o-mini}]
`);
  const call = (session) => chat(g, ask('chat', 'Say hello.'), { 'x-gyre-session': session });

  // One session, 30 calls: one target, one key.
  const res = [];
  for (let i = 0; i < 30; i++) res.push(await call('session-alpha'));
  for (const r of res) assert.equal(r.status, 200);
  const provs = tally(res.map((r) => r.headers.get('x-gyre-provider')));
  assert.equal(Object.keys(provs).length, 1, JSON.stringify(provs));
  const home = Object.keys(provs)[0];
  const away = home === 'p1' ? 'p2' : 'p1';
  const homeStats = await mocks[home].stats();
  assert.equal(homeStats.requests, 30);
  assert.equal(Object.keys(homeStats.keys).length, 1, `one key: ${JSON.stringify(homeStats.keys)}`);
  const homeKey = Object.keys(homeStats.keys)[0];
  assert.equal((await mocks[away].stats()).requests, 0);

  // Forty sessions spread over both targets and all four keys; each one stays put.
  await reset(m1);
  await reset(m2);
  const placed = {};
  for (let i = 0; i < 40; i++) placed[`s${i}`] = (await call(`s${i}`)).headers.get('x-gyre-provider');
  const spread = tally(Object.values(placed));
  assert.ok(spread.p1 >= 5 && spread.p2 >= 5, `sessions spread over both targets: ${JSON.stringify(spread)}`);
  const keysUsed = [...Object.keys((await m1.stats()).keys), ...Object.keys((await m2.stats()).keys)].sort();
  assert.deepEqual(keysUsed, ['k1a', 'k1b', 'k2a', 'k2b']);
  for (let i = 0; i < 40; i++) assert.equal((await call(`s${i}`)).headers.get('x-gyre-provider'), placed[`s${i}`]);

  // The home target fails: each failure falls back to the other target, once the session's key
  // and then the provider's other key have each failed `failures` (2) times in a row, both
  // breakers are open, the target is unusable, and the session goes straight to the other one.
  await reset(m1);
  await reset(m2);
  await mocks[home].configure({ fault: '500' });
  for (let i = 0; i < 4; i++) {
    const r = await call('session-alpha');
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('x-gyre-provider'), away);
    assert.equal(r.headers.get('x-gyre-attempts'), '2', `failure ${i} on ${home} came first`);
  }
  assert.equal((await mocks[home].stats()).requests, 4);
  for (let i = 0; i < 5; i++) {
    const r = await call('session-alpha');
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('x-gyre-provider'), away);
    assert.equal(r.headers.get('x-gyre-attempts'), '1', 'an open target is not tried');
  }
  assert.equal((await mocks[home].stats()).requests, 4);

  // Healthy again and past the cooldown: the probe goes home, succeeds, and the session stays
  // home, on the key it had.
  await mocks[home].configure({ fault: null });
  await reset(mocks[home]);
  await sleep(1000);
  for (let i = 0; i < 6; i++) {
    const r = await call('session-alpha');
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('x-gyre-provider'), home, `call ${i} after the cooldown`);
    assert.equal(r.headers.get('x-gyre-attempts'), '1');
  }
  assert.deepEqual((await mocks[home].stats()).keys, { [homeKey]: 6 });
  assert.equal((await g.stop()).code, 0);
  assert.equal((await m1.stop()).code, 0);
  assert.equal((await m2.stop()).code, 0);
});

// ---------------------------------------------------------------------------
// 3. The response cache
// ---------------------------------------------------------------------------

describe('cache', () => {
  let mock, g;
  // `cached` keeps entries for a minute, so that a slow (sanitizer) run never sees one
  // expire mid-test; `brief` has the 500 ms TTL the expiry test needs.
  before(async () => {
    mock = await startMock();
    g = await startGyre(`workers: 1
providers:
  - {name: primary, kind: openai, base_url: "${mock.v1}", keys: [sk-test], breaker: off}
  - {name: anth, kind: anthropic, base_url: "${mock.v1}", keys: [sk-anth]}
routes:
  - name: acached
    targets: [{provider: anth, model: claude-sonnet-4-5}]
    cache: {ttl_ms: 60000}
  - name: cached
    targets: [{provider: primary, model: gpt-4o-mini}]
    cache: {ttl_ms: 60000}
  - name: brief
    targets: [{provider: primary, model: gpt-4o-mini}]
    cache: {ttl_ms: 500}
`);
  });
  after(async () => {
    assert.equal((await g.stop()).code, 0);
    assert.equal((await mock.stop()).code, 0);
  });
  const upstream = async () => (await mock.stats()).requests;

  function assertHit(r, route = 'cached', provider = 'primary', model = 'gpt-4o-mini') {
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('x-gyre-cache'), 'hit');
    assert.equal(r.headers.get('x-gyre-route'), route);
    assert.equal(r.headers.get('x-gyre-provider'), provider);
    assert.equal(r.headers.get('x-gyre-model'), model);
    assert.equal(r.headers.get('x-gyre-attempts'), '0');
  }
  function assertMiss(r) {
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('x-gyre-cache'), 'miss');
    assert.equal(r.headers.get('x-gyre-attempts'), '1');
  }

  test('an identical request is a hit with the identical body, and the provider sees one request', async () => {
    await reset(mock);
    const body = ask('cached', 'Cache one.');
    const r1 = await chat(g, body);
    assertMiss(r1);
    assert.equal(r1.json.choices[0].message.content, reply('Cache one.'));
    const r2 = await chat(g, body);
    assertHit(r2);
    assert.equal(r2.text, r1.text);
    assert.equal(r2.headers.get('content-type'), 'application/json');
    assert.equal(await upstream(), 1);
  });

  test('key order, whitespace, number spelling and `user` do not change the key; a changed temperature does', async () => {
    await reset(mock);
    const r1 = await chat(g, ask('cached', 'Cache two.', { temperature: 0.5 }));
    assertMiss(r1);
    const same = `{ "temperature" : 5e-1,\n  "messages": [ { "content": "Cache two.", "role": "user" } ],\n  "user": "someone",\n  "model": "cached" }`;
    const r2 = await chat(g, same);
    assertHit(r2);
    assert.equal(r2.text, r1.text);
    assert.equal(await upstream(), 1);
    const r3 = await chat(g, ask('cached', 'Cache two.', { temperature: 0.7 }));
    assertMiss(r3);
    assert.equal(await upstream(), 2);
    assert.equal(JSON.parse((await mock.stats()).last_request.body).temperature, 0.7);
  });

  test('Cache-Control: no-cache goes to the provider (marked miss) and refreshes the entry; no-store keeps nothing', async () => {
    await reset(mock);
    const body = ask('cached', 'Cache three.');
    assertMiss(await chat(g, body));
    const r2 = await chat(g, body, { 'cache-control': 'no-cache' });
    assertMiss(r2);
    assert.equal(r2.json.choices[0].message.content, reply('Cache three.'));
    assert.equal(await upstream(), 2, 'the provider saw the no-cache request');
    assertHit(await chat(g, body));
    assert.equal(await upstream(), 2);

    const fresh = ask('cached', 'Cache three, not stored.');
    assertMiss(await chat(g, fresh, { 'cache-control': 'no-store' }));
    assertMiss(await chat(g, fresh)); // no-store kept nothing ...
    assertHit(await chat(g, fresh)); // ... and this one was stored
    assert.equal(await upstream(), 4);
  });

  test('a streaming request for a cached completion is answered from the cache as a stream', async () => {
    await reset(mock);
    const r1 = await chat(g, ask('cached', 'Cache four, streamed later.'));
    assertMiss(r1);
    const done = r1.json;

    const s = await chat(g, ask('cached', 'Cache four, streamed later.', { stream: true, stream_options: { include_usage: true } }));
    assertHit(s);
    assert.equal(s.headers.get('content-type'), 'text/event-stream; charset=utf-8');
    const data = sseData(s.text);
    assert.equal(data.at(-1), '[DONE]');
    assert.equal(data.filter((d) => d === '[DONE]').length, 1);
    const chunks = chunksOf(s.text);
    assert.equal(contentOf(chunks), done.choices[0].message.content);
    for (const c of chunks) {
      assert.equal(c.id, done.id);
      assert.equal(c.object, 'chat.completion.chunk');
      assert.equal(c.model, done.model);
    }
    assert.equal(chunks.filter((c) => c.choices[0]?.delta?.role !== undefined).length, 1);
    assert.equal(chunks[0].choices[0].delta.role, 'assistant');
    const finish = chunks.filter((c) => c.choices[0]?.finish_reason);
    assert.equal(finish.length, 1);
    assert.equal(finish[0].choices[0].finish_reason, 'stop');
    // The usage chunk comes last, with no choices, carrying the completion's usage.
    const last = chunks.at(-1);
    assert.deepEqual(last.choices, []);
    assert.deepEqual(last.usage, done.usage);

    // Without include_usage there is no usage chunk.
    const s2 = await chat(g, ask('cached', 'Cache four, streamed later.', { stream: true }));
    assertHit(s2);
    const c2 = chunksOf(s2.text);
    assert.equal(contentOf(c2), done.choices[0].message.content);
    assert.equal(c2.filter((c) => c.usage).length, 0);
    assert.equal(sseData(s2.text).at(-1), '[DONE]');
    assert.equal(await upstream(), 1);
  });

  test('a streamed miss is stored, and a later identical non-streaming request is a hit', async () => {
    await reset(mock);
    const s = await chat(g, ask('cached', 'Cache five, streamed first.', { stream: true }));
    assertMiss(s);
    const chunks = chunksOf(s.text);
    assert.equal(contentOf(chunks), reply('Cache five, streamed first.'));
    assert.equal(sseData(s.text).at(-1), '[DONE]');
    const r = await chat(g, ask('cached', 'Cache five, streamed first.'));
    assertHit(r);
    assert.equal(r.json.object, 'chat.completion');
    assert.equal(r.json.id, chunks[0].id);
    assert.equal(r.json.model, 'gpt-4o-mini');
    assert.deepEqual(r.json.choices[0].message, { role: 'assistant', content: reply('Cache five, streamed first.') });
    assert.equal(r.json.choices[0].finish_reason, 'stop');
    assert.equal(await upstream(), 1);
  });

  test('an entry expires after its ttl_ms (500)', async () => {
    await reset(mock);
    const body = ask('brief', 'Cache six.');
    assertMiss(await chat(g, body));
    assertHit(await chat(g, body), 'brief');
    assert.equal(await upstream(), 1);
    await sleep(700);
    const r = await chat(g, body);
    assertMiss(r);
    assert.equal(r.headers.get('x-gyre-route'), 'brief');
    assert.equal(await upstream(), 2);
    assertHit(await chat(g, body), 'brief');
    assert.equal(await upstream(), 2);
  });

  test('the cache is per route: the same request on another route is a miss', async () => {
    await reset(mock);
    assertMiss(await chat(g, ask('cached', 'Cache seven.')));
    assertMiss(await chat(g, ask('brief', 'Cache seven.')));
    assert.equal(await upstream(), 2);
  });

  test('errors are not cached', async () => {
    await reset(mock);
    const body = ask('cached', 'Cache eight.');
    await mock.configure({ fault: '500' });
    const e = await chat(g, body);
    assert.equal(e.status, 500);
    assert.equal(e.headers.get('x-gyre-cache'), 'miss');
    await mock.configure({ fault: null });
    const r = await chat(g, body);
    assertMiss(r);
    assert.equal(r.json.choices[0].message.content, reply('Cache eight.'));
    assertHit(await chat(g, body));
    assert.equal(await upstream(), 2);
  });

  test('a cut stream is not cached', async () => {
    await reset(mock);
    const body = ask('cached', 'Cache nine.', { stream: true });
    await mock.configure({ fault: 'truncate' });
    const s = await postStream(`${g.url}/v1/chat/completions`, body);
    assert.equal(s.cut, true);
    assert.equal(JSON.parse(sseData(s.text).at(-1)).error.code, 'stream_interrupted');
    await mock.configure({ fault: null });
    assertMiss(await chat(g, body));
    assertHit(await chat(g, body));
    assert.equal(await upstream(), 2);
  });

  test('Anthropic /v1/messages on a cached route: the hit is in Anthropic\'s shape, whole or streamed', async () => {
    await reset(mock);
    const body = { model: 'cached', max_tokens: 64, messages: [{ role: 'user', content: 'Cache ten.' }] };
    const r1 = await messages(g, body);
    assertMiss(r1);
    assert.equal(r1.json.type, 'message');
    assert.deepEqual(r1.json.content, [{ type: 'text', text: reply('Cache ten.') }]);
    const r2 = await messages(g, body);
    assertHit(r2);
    assert.equal(r2.text, r1.text);
    assert.equal(r2.json.type, 'message');
    assert.equal(r2.json.role, 'assistant');
    assert.equal(r2.json.stop_reason, 'end_turn');
    assert.deepEqual(r2.json.content, [{ type: 'text', text: reply('Cache ten.') }]);

    const s = await messages(g, { ...body, stream: true });
    assertHit(s);
    const ev = anthropicEvents(s.text);
    assert.equal(ev.filter((e) => e.event === 'message_start').length, 1);
    assert.equal(ev.filter((e) => e.event === 'message_stop').length, 1);
    assert.equal(ev.at(-1).event, 'message_stop');
    const text = ev.filter((e) => e.event === 'content_block_delta').map((e) => e.data.delta.text).join('');
    assert.equal(text, reply('Cache ten.'));
    assert.equal(ev.find((e) => e.event === 'message_delta').data.delta.stop_reason, 'end_turn');
    assert.equal(await upstream(), 1);
  });

  test('Anthropic client, anthropic provider: a streamed miss is stored, and the identical whole request is a hit', async () => {
    await reset(mock);
    const body = { model: 'acached', max_tokens: 64, messages: [{ role: 'user', content: 'Cache eleven.' }] };
    const s = await messages(g, { ...body, stream: true });
    assertMiss(s);
    assert.equal(anthropicEvents(s.text).at(-1).event, 'message_stop');
    const r = await messages(g, body);
    assertHit(r, 'acached', 'anth', 'claude-sonnet-4-5');
    assert.equal(r.json.type, 'message');
    assert.deepEqual(r.json.content, [{ type: 'text', text: reply('Cache eleven.') }]);
    assert.equal(await upstream(), 1);
  });

  // gyre bug (src/proxy/proxy.c, deliver_buffered): a whole (non-streaming)
  // answer that went through untranslated is stored only for OpenAI clients, so
  // an Anthropic client on a route whose provider is anthropic never gets a hit
  // for a non-streaming request, although the route has a cache (streams are
  // stored, see the test above).
  const ANTHROPIC_CACHE_BUG = 'a pass-through Anthropic answer (Anthropic client, anthropic provider) must be stored';
  test('Anthropic client, anthropic provider: an identical whole request is a hit', async () => {
    await reset(mock);
    const body = { model: 'acached', max_tokens: 64, messages: [{ role: 'user', content: 'Cache twelve.' }] };
    const r1 = await messages(g, body);
    assertMiss(r1);
    assert.deepEqual(r1.json.content, [{ type: 'text', text: reply('Cache twelve.') }]);
    const r2 = await messages(g, body);
    assert.equal(r2.status, 200);
    assert.equal(r2.json.type, 'message');
    assert.deepEqual(r2.json.content, [{ type: 'text', text: reply('Cache twelve.') }]);
    assert.equal(r2.headers.get('x-gyre-cache'), 'hit', ANTHROPIC_CACHE_BUG);
    assertHit(r2, 'acached', 'anth', 'claude-sonnet-4-5');
    assert.equal(await upstream(), 1);
  });
});

// ---------------------------------------------------------------------------
// 4. Mid-stream resume
// ---------------------------------------------------------------------------

describe('midstream resume', () => {
  let cut, ok, g;
  const FULL = reply('Say hello.');
  before(async () => {
    // `cut` stops every stream after two word pieces ("Mock ", "reply "); `ok` is healthy.
    cut = await startMock(['--fault', 'truncate']);
    ok = await startMock();
    g = await startGyre(`workers: 1
providers:
  - {name: cutter, kind: openai, base_url: "${cut.v1}", keys: [sk-cut], breaker: off}
  - {name: cutter-a, kind: anthropic, base_url: "${cut.v1}", keys: [sk-cut-a], breaker: off}
  - {name: backup, kind: openai, base_url: "${ok.v1}", keys: [sk-ok]}
routes:
  - name: resume
    midstream: resume
    targets: [{provider: cutter, model: gpt-4o-mini}]
    fallbacks: [{provider: backup, model: gpt-4o-mini}]
  - name: resume-x
    midstream: resume
    targets: [{provider: cutter-a, model: claude-sonnet-4-5}]
    fallbacks: [{provider: backup, model: gpt-4o-mini}]
  - name: noresume
    midstream: error
    targets: [{provider: cutter, model: gpt-4o-mini}]
    fallbacks: [{provider: backup, model: gpt-4o-mini}]
`);
  });
  after(async () => {
    assert.equal((await g.stop()).code, 0);
    assert.equal((await cut.stop()).code, 0);
    assert.equal((await ok.stop()).code, 0);
  });

  // gyre bug (src/proxy/proxy.c, build_pivot and emit_pivot_event): the prefix
  // sent to the fallback has its trailing whitespace trimmed ("Mock reply"),
  // the continuation brings that whitespace back (" to: ..."), and gyre relays
  // it although the client already has it: the joined text reads "Mock reply
  // to: ..." with two spaces.  The tests below fail on exactly that until it is
  // fixed; every other property of the stream is asserted before it.
  const RESUME_WS_BUG = 'a resumed stream must not repeat the whitespace that build_pivot trimmed off the prefill';

  /** The checks every resumed OpenAI stream must pass; returns its chunks. */
  function assertSeamless(text) {
    const data = sseData(text);
    assert.equal(data.at(-1), '[DONE]');
    assert.equal(data.filter((d) => d === '[DONE]').length, 1);
    const chunks = chunksOf(text);
    assert.equal(chunks.filter((c) => c.error).length, 0, text);
    assert.equal(chunks.filter((c) => c.choices[0]?.delta?.role !== undefined).length, 1, 'one role chunk');
    assert.equal(chunks[0].choices[0].delta.role, 'assistant');
    assert.equal(new Set(chunks.map((c) => c.id)).size, 1, 'one id for the whole stream');
    const finish = chunks.filter((c) => c.choices[0]?.finish_reason);
    assert.equal(finish.length, 1);
    assert.equal(finish[0].choices[0].finish_reason, 'stop');
    // The seam: an SSE comment line after the first attempt's last piece, before the continuation's first.
    const m = text.match(/^: gyre-resume attempt=2 provider=backup model=gpt-4o-mini after_chars=11 reason="[^"\n]*"$/m);
    assert.ok(m, `a gyre-resume comment in:\n${text}`);
    assert.equal(text.match(/gyre-resume/g).length, 1);
    const blocks = text.split(/\n\n+/).filter((b) => b !== '');
    const seam = blocks.indexOf(m[0]);
    assert.ok(seam > 0, 'the comment is an SSE block of its own');
    // Before it, exactly what the cut attempt sent; right after it, the continuation's first piece.
    assert.equal(contentOf(chunksOf(blocks.slice(0, seam).join('\n\n'))), 'Mock reply ');
    assert.equal(JSON.parse(blocks[seam - 1].slice(6)).choices[0].delta.content, 'reply ');
    assert.ok(blocks[seam + 1].startsWith('data: '));
    assert.notEqual(JSON.parse(blocks[seam + 1].slice(6)).choices[0].delta.content ?? '', '', 'content right after the seam');
    assert.equal(contentOf(chunks), FULL, RESUME_WS_BUG);
    return chunks;
  }

  async function assertContinuationAsked() {
    // The fallback was asked to continue the partial answer (its trailing space trimmed).
    const last = (await ok.stats()).last_request;
    const sent = JSON.parse(last.body);
    assert.equal(last.path, '/v1/chat/completions');
    assert.equal(sent.model, 'gpt-4o-mini');
    assert.equal(sent.stream, true);
    assert.deepEqual(sent.messages, [{ role: 'user', content: 'Say hello.' }, { role: 'assistant', content: 'Mock reply' }]);
  }

  test('OpenAI primary cut after two pieces: one seamless stream, continued by the fallback', async () => {
    await reset(ok);
    const r = await chat(g, ask('resume', 'Say hello.', { stream: true }));
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('x-gyre-provider'), 'cutter', 'the headers name the attempt that began the stream');
    const chunks = assertSeamless(r.text);
    assert.match(chunks[0].id, /^chatcmpl-mock-[0-9a-f]{8}$/);
    assert.equal((await ok.stats()).requests, 1);
    await assertContinuationAsked();
  });

  test('the OpenAI SDK reads a resumed stream as the full answer, without raising', async () => {
    const client = new OpenAI({ baseURL: `${g.url}/v1`, apiKey: 'unused', maxRetries: 0, timeout: 10000 * SLOW });
    const stream = await client.chat.completions.create({ model: 'resume', messages: [{ role: 'user', content: 'Say hello.' }], stream: true });
    let text = '', finish = null;
    const ids = new Set();
    for await (const c of stream) {
      ids.add(c.id);
      text += c.choices[0]?.delta?.content ?? '';
      finish = c.choices[0]?.finish_reason ?? finish;
    }
    assert.equal(finish, 'stop');
    assert.equal(ids.size, 1);
    assert.equal(text, FULL, RESUME_WS_BUG);
  });

  test('cross-dialect: an Anthropic primary cut mid-stream is continued by an OpenAI fallback', async () => {
    await reset(ok);
    const r = await chat(g, ask('resume-x', 'Say hello.', { stream: true }));
    assert.equal(r.status, 200);
    assertSeamless(r.text);
    assert.equal((await cut.stats()).last_request.path, '/v1/messages');
    await assertContinuationAsked();
  });

  for (const route of ['resume', 'resume-x']) {
    test(`an Anthropic client (/v1/messages stream) on ${route}: one message, its text the full answer`, async () => {
      await reset(ok);
      const r = await messages(g, { model: route, max_tokens: 64, stream: true, messages: [{ role: 'user', content: 'Say hello.' }] });
      assert.equal(r.status, 200);
      const ev = anthropicEvents(r.text);
      assert.equal(ev.filter((e) => e.event === 'error').length, 0, r.text);
      assert.equal(ev.filter((e) => e.event === 'message_start').length, 1);
      assert.equal(ev.filter((e) => e.event === 'message_stop').length, 1);
      assert.equal(ev.at(-1).event, 'message_stop');
      assert.equal(ev.filter((e) => e.event === 'content_block_start').length, 1);
      const deltas = ev.filter((e) => e.event === 'content_block_delta');
      for (const d of deltas) assert.equal(d.data.delta.type, 'text_delta');
      assert.equal(ev.find((e) => e.event === 'message_delta').data.delta.stop_reason, 'end_turn');
      assert.match(r.text, /^: gyre-resume attempt=2 provider=backup model=gpt-4o-mini after_chars=11 /m);
      await assertContinuationAsked();
      assert.equal(deltas.map((d) => d.data.delta.text).join(''), FULL, RESUME_WS_BUG);
    });
  }

  test('midstream: error (the contrast): the same cut ends the stream with an error event, nothing is resumed', async () => {
    await reset(ok);
    const r = await postStream(`${g.url}/v1/chat/completions`, ask('noresume', 'Say hello.', { stream: true }));
    assert.equal(r.status, 200);
    assert.equal(r.cut, true, 'the HTTP response must not end cleanly');
    assert.doesNotMatch(r.text, /gyre-resume/);
    const data = sseData(r.text);
    assert.ok(!data.includes('[DONE]'));
    const chunks = data.map((d) => JSON.parse(d));
    const err = chunks.at(-1).error;
    assert.equal(err.code, 'stream_interrupted');
    assert.equal(err.type, 'upstream_error');
    assert.equal(contentOf(chunks.slice(0, -1)), 'Mock reply ');
    assert.equal((await ok.stats()).requests, 0, 'the fallback is not asked once the stream has begun');

    // The SDK raises instead of returning a short answer.
    const client = new OpenAI({ baseURL: `${g.url}/v1`, apiKey: 'unused', maxRetries: 0, timeout: 10000 * SLOW });
    let text = '';
    await assert.rejects(async () => {
      const stream = await client.chat.completions.create({ model: 'noresume', messages: [{ role: 'user', content: 'Say hello.' }], stream: true });
      for await (const c of stream) text += c.choices[0]?.delta?.content ?? '';
    });
    assert.equal(text, 'Mock reply ');

    // An Anthropic client gets Anthropic's error event.
    const a = await postStream(`${g.url}/v1/messages`, { model: 'noresume', max_tokens: 64, stream: true, messages: [{ role: 'user', content: 'Say hello.' }] },
      { 'anthropic-version': '2023-06-01' });
    assert.equal(a.cut, true);
    const ev = anthropicEvents(a.text);
    assert.equal(ev.at(-1).event, 'error');
    assert.equal(ev.at(-1).data.type, 'error');
    assert.equal(ev.filter((e) => e.event === 'message_stop').length, 0);
  });
});
