// Active health probes (`health_check:` on a provider, docs/live.md): every interval gyre sends GET base_url +
// path with the provider's first key; `unhealthy_after` failures in a row make /readyz count the provider's
// targets unusable (503 naming the route and the check's last result) and gyre_provider_healthy 0; one
// success makes it healthy again.  Routing is not changed by a probe.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { startGyre, startMock, SLOW } from '../lib/harness.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const CLIENT = 'client-key-0123456789abcdef';
const READ = 'read-token-0123456789abcdef';

async function readyz(url) {
  const r = await fetch(`${url}/readyz`);
  return { status: r.status, json: await r.json() };
}

async function metric(url, series) {
  const text = await (await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${READ}` } })).text();
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

// Polls `fn` until it returns true, for at most `ms`.
async function until(fn, ms) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await fn()) return true;
    await sleep(25);
  }
  return false;
}

test('a provider whose health check fails twice in a row makes /readyz 503 with the reason and gyre_provider_healthy 0; one success heals it', async () => {
  const mock = await startMock();
  const g = await startGyre(`workers: 1
auth: {keys: [${CLIENT}], read_token: ${READ}}
providers:
  - {name: p, kind: openai, base_url: "${mock.v1}", keys: [sk-probe-a, sk-probe-b], health_check: {interval: 200ms, timeout: 1s, unhealthy_after: 2}}
  - {name: q, kind: openai, base_url: "${mock.v1}", keys: [sk-unprobed]}
routes:
  - name: chat
    targets: [{provider: p, model: gpt-4o-mini}]
  - name: other
    targets: [{provider: q, model: gpt-4o-mini}]
`);
  try {
    assert.ok(await until(async () => (await metric(g.url, 'gyre_provider_health_checks_total{provider="p",result="ok"}')) >= 1, 3000 * SLOW));
    assert.deepEqual(await readyz(g.url), {
      status: 200,
      json: { routes: { chat: { usable: 1, targets: 1 }, other: { usable: 1, targets: 1 } }, generation: 1, status: 'ready' },
    });
    assert.equal(await metric(g.url, 'gyre_provider_healthy{provider="p"}'), 1);
    // Only providers with a check have the series.
    assert.equal(await metric(g.url, 'gyre_provider_healthy{provider="q"}'), undefined);
    // The probe is GET /v1/models with the provider's first key, as openai sends it.
    const stats = await mock.stats();
    assert.ok(stats.paths['/v1/models'] >= 1);
    assert.ok(stats.keys['sk-probe-a'] >= 1);
    assert.equal(stats.keys['sk-probe-b'], undefined);
    assert.equal(stats.keys['sk-unprobed'], undefined);

    await mock.configure({ fault: '503' });
    assert.ok(await until(async () => (await readyz(g.url)).status === 503, 3000 * SLOW));
    const down = await readyz(g.url);
    assert.equal(down.json.status, 'not_ready');
    assert.deepEqual(down.json.routes.other, { usable: 1, targets: 1 });
    assert.equal(down.json.routes.chat.usable, 0);
    assert.match(down.json.routes.chat.reason, /^provider 'p': health check failing \([0-9]+ in a row: 503\)$/);
    assert.equal(await metric(g.url, 'gyre_provider_healthy{provider="p"}'), 0);
    assert.ok((await metric(g.url, 'gyre_provider_health_checks_total{provider="p",result="fail"}')) >= 2);
    assert.match(g.proc.output(), /provider 'p': health check failed 2 times in a row: unhealthy/);

    await mock.configure({ fault: null });
    assert.ok(await until(async () => (await readyz(g.url)).status === 200, 3000 * SLOW));
    assert.equal(await metric(g.url, 'gyre_provider_healthy{provider="p"}'), 1);
    assert.match(g.proc.output(), /provider 'p': health check passes again: healthy/);
    // No key is ever logged.
    assert.doesNotMatch(g.proc.output(), /sk-probe-a/);
  } finally {
    await g.stop();
    await mock.stop();
  }
});

test('a connection refused counts as a failing check (anthropic kind), and a SIGHUP that drops health_check drops the check and its series', async () => {
  // Port 1 on loopback: nothing listens there, so every probe fails with a refused connection.
  const conf = (hc) => `workers: 1
auth: {keys: [${CLIENT}], read_token: ${READ}}
providers:
  - {name: gone, kind: anthropic, base_url: "http://127.0.0.1:1/v1", keys: [sk-ant-x]${hc}}
routes:
  - name: chat
    targets: [{provider: gone, model: claude}]
`;
  const g = await startGyre(conf(', health_check: {interval: 100ms, unhealthy_after: 1}'));
  try {
    assert.ok(await until(async () => (await readyz(g.url)).status === 503, 3000 * SLOW));
    assert.match((await readyz(g.url)).json.routes.chat.reason,
      /^provider 'gone': health check failing \([0-9]+ in a row: Connection refused\)$/);
    assert.equal(await metric(g.url, 'gyre_provider_healthy{provider="gone"}'), 0);
    const file = path.join(g.dir, 'gyre.yaml');
    const keep = fs.readFileSync(file, 'utf8').split('\n').filter((l) => /^(listen|store):/.test(l)).join('\n');
    fs.writeFileSync(file, `${keep}\n${conf('')}`);
    g.proc.kill('SIGHUP');
    assert.ok(await until(async () => g.proc.output().includes('generation 2 in force'), 5000 * SLOW));
    assert.deepEqual(await readyz(g.url), {
      status: 200,
      json: { routes: { chat: { usable: 1, targets: 1 } }, generation: 2, status: 'ready' },
    });
    assert.equal(await metric(g.url, 'gyre_provider_healthy{provider="gone"}'), undefined);
  } finally {
    await g.stop();
  }
});

test('gyre stops promptly with a health check in flight', async () => {
  const mock = await startMock();
  const g = await startGyre(`workers: 1
auth: {keys: [${CLIENT}], read_token: ${READ}}
providers:
  - {name: p, kind: openai, base_url: "${mock.v1}", keys: [sk-x], health_check: {interval: 50ms, timeout: 500ms}}
routes:
  - name: chat
    targets: [{provider: p, model: gpt-4o-mini}]
`);
  await mock.configure({ fault: 'hang' });
  await sleep(150);
  const t0 = Date.now();
  await g.stop();
  assert.ok(Date.now() - t0 < 3000 * SLOW);
  await mock.stop();
});
