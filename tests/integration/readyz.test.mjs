// /readyz (docs/live.md): 200 while every route has a usable target,
// 503 naming the route and why when one has none (its only provider's
// breaker open), 200 again once the breaker lets calls through; /healthz
// stays the liveness probe throughout.  Both are open: a probe carries no
// credential.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startGyre, startMock, SLOW } from '../lib/harness.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const CLIENT = 'client-key-0123456789abcdef';

async function readyz(url) {
  const r = await fetch(`${url}/readyz`);
  return { status: r.status, json: await r.json() };
}

async function chat(url) {
  const r = await fetch(`${url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${CLIENT}` },
    body: JSON.stringify({ model: 'chat', messages: [{ role: 'user', content: 'Say hello.' }] }),
  });
  await r.arrayBuffer();
  return r.status;
}

test('/readyz is 200, then 503 naming the route while its only provider\'s breaker is open, then 200 once it closes', async () => {
  const mock = await startMock();
  const cooldown = 1500 * SLOW;
  const g = await startGyre(`workers: 1
auth: {keys: [${CLIENT}], admin_token: admin-token-0123456789abcdef}
providers:
  - {name: primary, kind: openai, base_url: "${mock.v1}", keys: [sk-ready-a], breaker: {failures: 2, cooldown_ms: ${cooldown}}}
  - {name: spare, kind: openai, base_url: "${mock.v1}", keys: [sk-ready-b]}
routes:
  - name: chat
    targets: [{provider: primary, model: gpt-4o-mini}]
  - name: other
    targets: [{provider: spare, model: gpt-4o-mini}]
`);
  try {
    assert.deepEqual(await readyz(g.url), {
      status: 200,
      json: { routes: { chat: { usable: 1, targets: 1 }, other: { usable: 1, targets: 1 } }, generation: 1, status: 'ready' },
    });
    await mock.configure({ fault: '500' });
    assert.equal(await chat(g.url), 500);
    assert.equal(await chat(g.url), 500);
    const t0 = Date.now();
    assert.deepEqual(await readyz(g.url), {
      status: 503,
      json: {
        routes: {
          chat: { usable: 0, targets: 1, reason: "provider 'primary': circuit open or every key resting after 429s, on every worker" },
          other: { usable: 1, targets: 1 },
        },
        generation: 1,
        status: 'not_ready',
      },
    });
    // The liveness probe is not the readiness one.
    assert.equal((await fetch(`${g.url}/healthz`)).status, 200);
    // A SIGHUP that leaves the provider as it was keeps its breaker open (the next generation inherits it).
    g.proc.kill('SIGHUP');
    while (!g.proc.output().includes('generation 2 in force')) await sleep(10);
    const again = await readyz(g.url);
    assert.equal(again.status, 503);
    assert.equal(again.json.generation, 2);
    assert.equal(again.json.routes.chat.usable, 0);
    await mock.configure({ fault: null });
    // Once the cooldown is over the breaker lets a probe through: usable again, and the probe's success closes it.
    await sleep(Math.max(0, cooldown + 50 - (Date.now() - t0)));
    assert.equal((await readyz(g.url)).status, 200);
    assert.equal(await chat(g.url), 200);
    assert.deepEqual(await readyz(g.url), {
      status: 200,
      json: { routes: { chat: { usable: 1, targets: 1 }, other: { usable: 1, targets: 1 } }, generation: 2, status: 'ready' },
    });
  } finally {
    await g.stop();
    await mock.stop();
  }
});

test('/readyz takes GET only: 405 with Allow for other methods', async () => {
  const g = await startGyre('workers: 1\nproviders: []\nroutes: []\n');
  try {
    const r = await fetch(`${g.url}/readyz`, { method: 'POST' });
    assert.equal(r.status, 405);
    assert.equal(r.headers.get('allow'), 'GET');
    assert.deepEqual(await readyz(g.url), { status: 200, json: { routes: {}, generation: 1, status: 'ready' } });
  } finally {
    await g.stop();
  }
});
