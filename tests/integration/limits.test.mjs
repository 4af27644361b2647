// Limits and budgets (docs/limits.md) against real gyre and gyre-mock: requests per minute with exact counts,
// OpenAI's 429 and x-ratelimit-* headers (and Anthropic's rate_limit_error on /v1/messages), requests in
// flight, budgets spent to the nano-dollar with mock prices, 64 concurrent streams against a small budget, and
// a client that leaves mid-stream giving its slot back.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';

import { startGyre, startMock, postJson, sseData, SLOW } from '../lib/harness.mjs';

// $1000 and $2000 per million tokens: a prompt token costs exactly 1,000,000 nano-dollars, an output token
// 2,000,000, so every sum below is an integer of nano-dollars.
const IN_NUSD = 1000000, OUT_NUSD = 2000000;

function config(mock, limits, { workers = 2, extra = '', prices = '{input: 1000, output: 2000}' } = {}) {
  return `workers: ${workers}
providers:
  - {name: p, kind: openai, base_url: "${mock.v1}", keys: [sk-mock-a], prices: {m1: ${prices}}}
routes:
  - {name: chat, targets: [{provider: p, model: m1}]}
  - {name: cached, targets: [{provider: p, model: m1}], cache: {ttl_ms: 60000}}
${extra}limits:
${limits}`;
}

const body = (extra = {}) => ({ model: 'chat', messages: [{ role: 'user', content: 'Say hello.' }], max_tokens: 8, ...extra });

async function metric(url, name) {
  const text = await (await fetch(`${url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? undefined : line.slice(name.length + 1);
}

// What a stream cost, from the usage event it ended with (the client asked for it).
function streamCostNusd(text, inNusd = IN_NUSD) {
  const usage = sseData(text).filter((d) => d !== '[DONE]').map((d) => JSON.parse(d)).find((e) => e.usage)?.usage;
  assert.ok(usage, 'the stream carried its usage');
  return usage.prompt_tokens * inNusd + usage.completion_tokens * OUT_NUSD;
}

// The reservation of a request: its body's bytes / 4 (rounded up) in, its max_tokens out, at the dearest price.
function estimateNusd(b) {
  return Math.ceil(Buffer.byteLength(JSON.stringify(b)) / 4) * IN_NUSD + b.max_tokens * OUT_NUSD;
}

const nusdToUsd = (n) => (n / 1e9).toFixed(9);

test('10 rpm: exactly 10 of 15 requests are answered, 5 get 429 with Retry-After and the x-ratelimit headers', async () => {
  const mock = await startMock();
  const gyre = await startGyre(config(mock, '  default: {rpm: 10, tpm: 100000}\n'));
  try {
    const results = [];
    for (let i = 0; i < 15; i++) results.push(await postJson(`${gyre.url}/v1/chat/completions`, body()));
    const ok = results.filter((r) => r.status === 200), refused = results.filter((r) => r.status === 429);
    assert.equal(ok.length, 10);
    assert.equal(refused.length, 5);
    assert.deepEqual(results.map((r) => r.status), [...Array(10).fill(200), ...Array(5).fill(429)]);
    // A success carries the key's standing, as OpenAI's answers do.
    assert.equal(ok[0].headers.get('x-ratelimit-limit-requests'), '10');
    assert.equal(ok[0].headers.get('x-ratelimit-remaining-requests'), '9');
    assert.equal(ok[0].headers.get('x-ratelimit-reset-requests'), '6s');
    assert.equal(ok[9].headers.get('x-ratelimit-remaining-requests'), '0');
    assert.equal(ok[0].headers.get('x-ratelimit-limit-tokens'), '100000');
    assert.match(ok[0].headers.get('x-ratelimit-remaining-tokens'), /^\d+$/);
    assert.match(ok[0].headers.get('x-ratelimit-reset-tokens'), /^\d+(ms|(\.\d+)?s)$/);
    for (const r of refused) {
      assert.equal(r.json.error.type, 'requests');
      assert.equal(r.json.error.code, 'rate_limit_exceeded');
      assert.match(r.json.error.message,
        /^rate limit of 10 requests per minute for key \(anonymous\) reached; resets in [1-6] s$/);
      const retry = Number(r.headers.get('retry-after'));
      assert.ok(retry >= 1 && retry <= 6, `Retry-After ${retry}`);
      assert.equal(r.headers.get('x-ratelimit-limit-requests'), '10');
      assert.equal(r.headers.get('x-ratelimit-remaining-requests'), '0');
      assert.match(r.headers.get('x-ratelimit-reset-requests'), /^(59|60|5\d)(\.\d+)?s$|^1m0s$/);
    }
    assert.equal((await mock.stats()).requests, 10);
    assert.equal(await metric(gyre.url, 'gyre_limit_refusals_total{level="key",limit="rpm"}'), '5');
  } finally {
    await gyre.stop();
    await mock.stop();
  }
});

test('a refusal on /v1/messages is Anthropic\'s rate_limit_error naming the user level', async () => {
  const mock = await startMock();
  const gyre = await startGyre(config(mock, '  users: {"*": {rpm: 1}}\n'));
  try {
    const msg = { model: 'chat', max_tokens: 8, messages: [{ role: 'user', content: 'Hi.' }] };
    const first = await postJson(`${gyre.url}/v1/messages`, msg, { 'x-gyre-user': 'ann' });
    assert.equal(first.status, 200);
    const second = await postJson(`${gyre.url}/v1/messages`, msg, { 'x-gyre-user': 'ann' });
    assert.equal(second.status, 429);
    assert.equal(second.json.type, 'error');
    assert.equal(second.json.error.type, 'rate_limit_error');
    assert.match(second.json.error.message, /^rate limit of 1 requests per minute for user ann reached; resets in (59|60) s$/);
    assert.ok(Number(second.headers.get('retry-after')) >= 59);
    // Another user has their own minute; the body's `user` names one too.
    assert.equal((await postJson(`${gyre.url}/v1/messages`, msg, { 'x-gyre-user': 'bo' })).status, 200);
    assert.equal((await postJson(`${gyre.url}/v1/chat/completions`, body({ user: 'cy' }))).status, 200);
    assert.equal((await postJson(`${gyre.url}/v1/chat/completions`, body({ user: 'cy' }))).status, 429);
  } finally {
    await gyre.stop();
    await mock.stop();
  }
});

test('concurrency 4: of 20 parallel slow requests exactly 4 run, the other 16 get 429, and the slots come back', async () => {
  const mock = await startMock(['--latency-ms', String(1500 * SLOW)]);
  const gyre = await startGyre(config(mock, '  agents: {batch: {concurrency: 4}}\n'));
  try {
    let maxActive = 0, polling = true;
    const poll = (async () => {
      while (polling) {
        maxActive = Math.max(maxActive, (await mock.stats()).active);
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    const all = await Promise.all(Array.from({ length: 20 },
      () => postJson(`${gyre.url}/v1/chat/completions`, body(), { 'x-gyre-agent': 'batch' })));
    polling = false;
    await poll;
    assert.equal(all.filter((r) => r.status === 200).length, 4);
    const refused = all.filter((r) => r.status === 429);
    assert.equal(refused.length, 16);
    assert.equal(refused[0].json.error.code, 'concurrency_limit_exceeded');
    assert.equal(refused[0].json.error.message,
      'concurrency limit of 4 requests in flight for agent batch reached; retry when one ends');
    assert.equal(refused[0].headers.get('retry-after'), '1');
    assert.equal((await mock.stats()).requests, 4);
    assert.ok(maxActive <= 4, `the mock saw ${maxActive} at once`);
    // Every slot was given back when its request ended: 4 more run at once.
    const again = await Promise.all(Array.from({ length: 4 },
      () => postJson(`${gyre.url}/v1/chat/completions`, body(), { 'x-gyre-agent': 'batch' })));
    assert.deepEqual(again.map((r) => r.status), [200, 200, 200, 200]);
  } finally {
    await gyre.stop();
    await mock.stop();
  }
});

test('a budget with mock prices: the request that would exceed it gets 429, and the spend is exactly the sum of the answers\' costs', async () => {
  const mock = await startMock();
  const b = body();
  const est = estimateNusd(b);
  // Room for 3 reservations and most of a fourth: after 3 answers (each cheaper than its reservation) the spend
  // plus one more reservation decides, request by request, exactly as computed below.
  const budgetNusd = 3 * est + est - 1;
  const gyre = await startGyre(config(mock,
    `  agents: {buyer: {budget_usd: ${nusdToUsd(budgetNusd)}, budget_period: day}}\n`));
  try {
    let spent = 0, answered = 0;
    const statuses = [];
    for (let i = 0; i < 12; i++) {
      const r = await postJson(`${gyre.url}/v1/chat/completions`, b, { 'x-gyre-agent': 'buyer' });
      statuses.push(r.status);
      const admit = spent + est <= budgetNusd;
      assert.equal(r.status, admit ? 200 : 429, `request ${i}: spent ${spent}, estimate ${est}, budget ${budgetNusd}`);
      if (r.status === 200) {
        const u = r.json.usage;
        assert.ok(u.prompt_tokens * IN_NUSD + u.completion_tokens * OUT_NUSD <= est);
        spent += u.prompt_tokens * IN_NUSD + u.completion_tokens * OUT_NUSD;
        answered++;
      } else {
        assert.equal(r.json.error.type, 'insufficient_quota');
        assert.equal(r.json.error.code, 'budget_exceeded');
        assert.match(r.json.error.message, /^budget of \$0\.\d\d per day \(UTC\) for agent buyer reached; resets in \d+ s$/);
        break;
      }
    }
    assert.ok(answered >= 4, `answered ${answered}`);
    assert.equal(statuses.at(-1), 429);
    assert.equal(await metric(gyre.url, 'gyre_budget_spent_usd{level="agent",id="buyer"}'), nusdToUsd(spent));
    assert.equal((await mock.stats()).requests, answered);
  } finally {
    await gyre.stop();
    await mock.stop();
  }
});

test('64 concurrent streams against a small budget: exactly floor(budget / estimate) run and the spend stays within the bound', async () => {
  const mock = await startMock(['--latency-ms', String(1500 * SLOW)]);
  const b = body({ stream: true, stream_options: { include_usage: true } });
  const est = estimateNusd(b);
  const budgetNusd = 5 * est + Math.floor(est / 2); // room for 5 reservations, not 6
  const gyre = await startGyre(config(mock,
    `  agents: {swarm: {budget_usd: ${nusdToUsd(budgetNusd)}, budget_period: month}}\n`));
  try {
    const all = await Promise.all(Array.from({ length: 64 }, async () => {
      const r = await fetch(`${gyre.url}/v1/chat/completions`, {
        method: 'POST', headers: { 'content-type': 'application/json', 'x-gyre-agent': 'swarm' }, body: JSON.stringify(b),
      });
      return { status: r.status, text: await r.text() };
    }));
    const ok = all.filter((r) => r.status === 200);
    assert.equal(ok.length, 5);
    assert.equal(all.filter((r) => r.status === 429).length, 59);
    // The bound (docs/limits.md): spend <= budget + the sum over admitted requests of what each cost beyond its
    // reservation.  Every stream here cost less than it reserved, so the bound is the budget itself.
    const costs = ok.map((r) => streamCostNusd(r.text));
    const spent = costs.reduce((a, c) => a + c, 0);
    const overrun = costs.reduce((a, c) => a + Math.max(0, c - est), 0);
    assert.equal(overrun, 0);
    assert.ok(spent <= budgetNusd + overrun);
    assert.equal(await metric(gyre.url, 'gyre_budget_spent_usd{level="agent",id="swarm"}'), nusdToUsd(spent));
    assert.equal(await metric(gyre.url, 'gyre_limit_refusals_total{level="agent",limit="budget"}'), '59');
  } finally {
    await gyre.stop();
    await mock.stop();
  }
});

test('64 concurrent streams whose estimate is low: the overshoot is exactly the documented bound', async () => {
  // default_max_tokens: 1 and no max_tokens in the body: each reservation counts one output token, and the
  // answers are longer; input is free here, so that the input's estimate (which is high) does not cover the
  // output's.  The overshoot is then exactly sum(actual - reserved) over the admitted streams.
  const mock = await startMock(['--latency-ms', String(1500 * SLOW)]);
  const b = { model: 'chat', messages: [{ role: 'user', content: 'Say hello.' }], stream: true,
    stream_options: { include_usage: true } };
  const est = 1 * OUT_NUSD;
  const budgetNusd = 7 * est; // room for exactly 7 reservations
  const gyre = await startGyre(config(mock,
    `  default_max_tokens: 1\n  agents: {swarm: {budget_usd: ${nusdToUsd(budgetNusd)}, budget_period: month}}\n`,
    { prices: '{input: 0, output: 2000}' }));
  try {
    const all = await Promise.all(Array.from({ length: 64 }, async () => {
      const r = await fetch(`${gyre.url}/v1/chat/completions`, {
        method: 'POST', headers: { 'content-type': 'application/json', 'x-gyre-agent': 'swarm' }, body: JSON.stringify(b),
      });
      return { status: r.status, text: await r.text() };
    }));
    const ok = all.filter((r) => r.status === 200);
    assert.equal(ok.length, 7);
    const costs = ok.map((r) => streamCostNusd(r.text, 0));
    for (const c of costs) assert.ok(c > est, 'each answer cost more than its reservation');
    const spent = costs.reduce((a, c) => a + c, 0);
    // The overshoot is exactly the bound: what the admitted streams cost beyond their reservations.
    assert.equal(spent - budgetNusd, costs.reduce((a, c) => a + (c - est), 0));
    assert.equal(await metric(gyre.url, 'gyre_budget_spent_usd{level="agent",id="swarm"}'), nusdToUsd(spent));
    // Over budget now: even the next request is refused.
    assert.equal((await postJson(`${gyre.url}/v1/chat/completions`, { ...b, stream: false }, { 'x-gyre-agent': 'swarm' })).status, 429);
  } finally {
    await gyre.stop();
    await mock.stop();
  }
});

test('a client that leaves mid-stream gives its concurrency slot back and is charged its reservation', async () => {
  const mock = await startMock(['--tokens-per-sec', '5']);
  const b = body({ stream: true, max_tokens: 40 });
  const est = estimateNusd(b);
  const gyre = await startGyre(config(mock,
    '  agents: {solo: {concurrency: 1, budget_usd: 100, budget_period: day}}\n'));
  try {
    const port = new URL(gyre.url).port;
    const payload = JSON.stringify(b);
    // A raw request, read until the first event, then the socket is destroyed.
    await new Promise((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port, path: '/v1/chat/completions', method: 'POST',
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload), 'x-gyre-agent': 'solo' } },
      (res) => {
        assert.equal(res.statusCode, 200);
        res.once('data', () => { req.destroy(); resolve(); });
      });
      req.on('error', () => {});
      req.setTimeout(10000 * SLOW, () => reject(new Error('no first event')));
      req.end(payload);
    });
    // While it streamed, the one slot was taken.  Once gyre sees the client gone, the slot is back.
    let status = 0, last = null;
    const deadline = Date.now() + 5000 * SLOW;
    while (Date.now() < deadline) {
      last = await postJson(`${gyre.url}/v1/chat/completions`, body({ max_tokens: 1 }), { 'x-gyre-agent': 'solo' });
      status = last.status;
      if (status === 200) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(status, 200);
    // Charged: the cut stream its reservation (gyre never saw its usage), the second what it used.
    const u = last.json.usage;
    const second = u.prompt_tokens * IN_NUSD + u.completion_tokens * OUT_NUSD;
    assert.equal(await metric(gyre.url, 'gyre_budget_spent_usd{level="agent",id="solo"}'), nusdToUsd(est + second));
  } finally {
    await gyre.stop();
    await mock.stop();
  }
});

test('the admin API sets a limit live, lists it with its use, and removes it', async () => {
  const mock = await startMock();
  const gyre = await startGyre(config(mock, '  agents: {}\n'));
  try {
    const call = () => postJson(`${gyre.url}/v1/chat/completions`, body(), { 'x-gyre-agent': 'bot' });
    assert.equal((await call()).status, 200);
    const put = await fetch(`${gyre.url}/api/admin/limits/agents/bot`, {
      method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ rpm: 2 }),
    });
    assert.equal(put.status, 200);
    assert.deepEqual(await put.json(), { rpm: 2 });
    assert.deepEqual([(await call()).status, (await call()).status, (await call()).status], [200, 200, 429]);
    const list = await (await fetch(`${gyre.url}/api/admin/limits`)).json();
    assert.deepEqual(list.agents, [{
      rpm: 2, id: 'bot',
      usage: { requests_in_window: 2, tokens_in_window: 0, inflight: 0, reserved_usd: 0, spent_usd: 0 },
    }]);
    const bad = await fetch(`${gyre.url}/api/admin/limits/agents/bot`, {
      method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ rpm: 0 }),
    });
    assert.equal(bad.status, 400);
    assert.equal((await bad.json()).error.message, 'rpm: a whole number from 1 to 100000000');
    const del = await fetch(`${gyre.url}/api/admin/limits/agents/bot`, { method: 'DELETE' });
    assert.equal(del.status, 200);
    assert.equal((await call()).status, 200);
  } finally {
    await gyre.stop();
    await mock.stop();
  }
});

test('a limit set through the admin API is in force again after a restart, and one deleted stays deleted', async () => {
  const mock = await startMock();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gyre-limits-'));
  const text = `store: {sqlite: "${path.join(dir, 'gyre.db')}"}\n${config(mock, '  agents: {}\n')}`;
  const call = (g, agent) => postJson(`${g.url}/v1/chat/completions`, body(), { 'x-gyre-agent': agent });
  const put = (g, agent, rule) => fetch(`${g.url}/api/admin/limits/agents/${agent}`, {
    method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(rule) });
  let g = await startGyre(text);
  try {
    assert.equal((await put(g, 'bot', { rpm: 1 })).status, 200);
    assert.equal((await put(g, 'gone', { rpm: 1 })).status, 200);
    assert.equal((await fetch(`${g.url}/api/admin/limits/agents/gone`, { method: 'DELETE' })).status, 200);
    await g.stop();
    g = await startGyre(text);
    // A new start: the window is empty, so the first call passes and the second meets the rule kept from before.
    assert.deepEqual([(await call(g, 'bot')).status, (await call(g, 'bot')).status], [200, 429]);
    assert.deepEqual([(await call(g, 'gone')).status, (await call(g, 'gone')).status], [200, 200]);
    const list = await (await fetch(`${g.url}/api/admin/limits`)).json();
    assert.deepEqual(list.agents.map((r) => [r.id, r.rpm]), [['bot', 1]]);
  } finally {
    await g.stop();
    await mock.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a cache hit costs nothing against a budget and still counts as a request', async () => {
  const mock = await startMock();
  const gyre = await startGyre(config(mock, '  agents: {reader: {rpm: 3, budget_usd: 10, budget_period: day}}\n'));
  try {
    const b = body({ model: 'cached' });
    const first = await postJson(`${gyre.url}/v1/chat/completions`, b, { 'x-gyre-agent': 'reader' });
    assert.equal(first.headers.get('x-gyre-cache'), 'miss');
    const hit = await postJson(`${gyre.url}/v1/chat/completions`, b, { 'x-gyre-agent': 'reader' });
    assert.equal(hit.status, 200);
    assert.equal(hit.headers.get('x-gyre-cache'), 'hit');
    const cost = first.json.usage.prompt_tokens * IN_NUSD + first.json.usage.completion_tokens * OUT_NUSD;
    assert.equal(await metric(gyre.url, 'gyre_budget_spent_usd{level="agent",id="reader"}'), nusdToUsd(cost));
    assert.equal((await postJson(`${gyre.url}/v1/chat/completions`, b, { 'x-gyre-agent': 'reader' })).status, 200);
    assert.equal((await postJson(`${gyre.url}/v1/chat/completions`, b, { 'x-gyre-agent': 'reader' })).status, 429);
    assert.equal((await mock.stats()).requests, 1);
  } finally {
    await gyre.stop();
    await mock.stop();
  }
});

test('a soft budget notifies its notifier once at 50, 80 and 100 % of the period and never refuses', async () => {
  const mock = await startMock();
  const b = body();
  // The first answer's cost, from a gateway without limits: every answer to the same request costs the same.
  const probe = await startGyre(config(mock, '  {}\n'));
  let costNusd;
  try {
    const u = (await postJson(`${probe.url}/v1/chat/completions`, b)).json.usage;
    costNusd = u.prompt_tokens * IN_NUSD + u.completion_tokens * OUT_NUSD;
  } finally {
    await probe.stop();
  }
  const budgetNusd = 10 * costNusd; // 50 % after the 5th answer, 80 % after the 8th, 100 % after the 10th
  const gyre = await startGyre(config(mock,
    `  agents: {buyer: {budget_usd: ${nusdToUsd(budgetNusd)}, budget_period: day, soft: true, notify: ops}}\n`,
    { extra: `notifiers:\n  - {name: ops, kind: webhook, url: "${mock.url}/_mock/hooks/ops"}\n` }));
  try {
    const seen = [];
    for (let i = 1; i <= 12; i++) {
      const r = await postJson(`${gyre.url}/v1/chat/completions`, b, { 'x-gyre-agent': 'buyer' });
      assert.equal(r.status, 200, `request ${i}: a soft budget never refuses`);
      // The request is settled when h2o disposes it, just after the answer: wait for its notice, if it crossed.
      const want = i >= 10 ? 3 : i >= 8 ? 2 : i >= 5 ? 1 : 0;
      for (let t = 0; t < 200; t++) {
        seen.splice(0, seen.length, ...(await (await fetch(`${mock.url}/_mock/hooks/ops`)).json()));
        if (seen.length >= want) break;
        await new Promise((res) => setTimeout(res, 10));
      }
      assert.equal(seen.length, want, `after request ${i}`);
    }
    assert.deepEqual(seen.map((h) => [h.version, h.status, h.alerts[0].labels.alertname, h.alerts[0].labels.level,
      h.alerts[0].labels.id, h.alerts[0].labels.threshold_pct, h.alerts[0].labels.severity]), [
      ['4', 'firing', 'budget', 'agent', 'buyer', '50', 'warning'],
      ['4', 'firing', 'budget', 'agent', 'buyer', '80', 'warning'],
      ['4', 'firing', 'budget', 'agent', 'buyer', '100', 'critical'],
    ]);
    assert.equal(seen[2].alerts[0].annotations.spent_usd, (10 * costNusd / 1e9).toFixed(6));
    assert.match(seen[2].alerts[0].annotations.summary, /^agent buyer has spent \$\d+\.\d\d of its \$\d+\.\d\d daily budget \(100 %\); the budget is soft: requests go on$/);
  } finally {
    await gyre.stop();
    await mock.stop();
  }
});
