// Alerts that act (docs/alerts.md): gyre-mock faults one provider key (or one
// provider), gyre's in-process rule fires within its `for` plus one
// evaluation, the action moves the traffic (read back from the mock's
// per-key statistics), exactly one firing event is recorded (GET
// /api/alerts, /metrics, the log line of the `log` action), and when the
// fault is gone the alert resolves and the traffic comes back.
//
// The notifier half: the rotate test's `ops` is a webhook notifier pointed
// at gyre-mock's receiver (/_mock/hooks/ops), which must get exactly one
// Alertmanager notice per transition, saying what gyre did.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import path from 'node:path';
import { startGyre, startMock, chatBody, postJson, runGyre, SLOW } from '../lib/harness.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const KEY_A = 'sk-alert-key-A-0123456789';
const KEY_B = 'sk-alert-key-B-0123456789';
const KEY_Q = 'sk-alert-key-Q-0123456789';

async function alerts(gyre) {
  const r = await fetch(`${gyre.url}/api/alerts`);
  assert.equal(r.status, 200);
  return r.json();
}

/** Polls GET /api/alerts until `pred` holds (bounded), returning the last answer. */
async function waitAlerts(gyre, pred, ms) {
  const deadline = Date.now() + ms;
  for (;;) {
    const a = await alerts(gyre);
    if (pred(a)) return a;
    if (Date.now() > deadline) throw new Error(`alerts never reached the state: ${JSON.stringify(a)}`);
    await sleep(100);
  }
}

/** Sends n chat requests one after another, `gap` ms apart; returns their statuses. */
async function send(gyre, n, gap, model = 'chat') {
  const statuses = [];
  for (let i = 0; i < n; i++) {
    statuses.push((await postJson(`${gyre.url}/v1/chat/completions`, chatBody({ model }))).status);
    if (gap) await sleep(gap);
  }
  return statuses;
}

function keyCounts(stats, keys) {
  return keys.map((k) => stats.keys[k] ?? 0);
}

test('429s on key A fire rate_limited_rate, move the traffic to key B once, and it comes back when they stop', async () => {
  const mock = await startMock();
  const gyre = await startGyre(`workers: 1
providers:
  - {name: p, kind: openai, base_url: "${mock.v1}", keys: [${KEY_A}, ${KEY_B}], breaker: {failures: 0}}
routes:
  - name: chat
    targets: [{provider: p, model: gpt-4o-mini}]
notifiers:
  - {name: ops, kind: webhook, url: "${mock.url}/_mock/hooks/ops"}
alerts:
  - name: key_rate_limited
    condition: rate_limited_rate > 20%
    window: 5s
    for: 0s
    resolve_for: 1s
    min_firing: 2s
    by: [provider, key]
    actions: [rotate_key, log, ops]
`);
  try {
    // Round robin over A and B before anything happens.
    let before = keyCounts(await mock.stats(), [KEY_A, KEY_B]);
    assert.deepEqual(await send(gyre, 4, 0), [200, 200, 200, 200]);
    let after = keyCounts(await mock.stats(), [KEY_A, KEY_B]);
    assert.deepEqual([after[0] - before[0], after[1] - before[1]], [2, 2]);
    assert.deepEqual((await alerts(gyre)).alerts, []);

    await mock.configure({ fault: '429', fault_key: KEY_A });
    const faultedAt = Date.now();
    // Requests keep coming; the alert fires within its `for` (0 s) plus one evaluation (1 s).
    let fired = null;
    while (fired === null) {
      await send(gyre, 1, 100);
      const a = await alerts(gyre);
      fired = a.alerts.find((x) => x.state === 'firing') ?? null;
      assert.ok(Date.now() - faultedAt < 5000 * SLOW, 'the alert fired in time');
    }
    console.log(`# from the first 429 on key A to the alert firing (traffic off the key): ${Date.now() - faultedAt} ms`);
    assert.equal(fired.rule, 'key_rate_limited');
    assert.deepEqual(fired.labels, { provider: 'p', key: 'p#0' });

    // While it fires every call goes to B, also past A's one-second 429 rest.
    before = keyCounts(await mock.stats(), [KEY_A, KEY_B]);
    assert.deepEqual(await send(gyre, 10, 150), Array(10).fill(200));
    after = keyCounts(await mock.stats(), [KEY_A, KEY_B]);
    assert.deepEqual([after[0] - before[0], after[1] - before[1]], [0, 10]);

    let a = await alerts(gyre);
    const firing = a.events.filter((e) => e.state === 'firing');
    assert.equal(firing.length, 1);
    assert.equal(firing[0].actions, "gyre moved provider p's traffic off key p#0 to p#1; logged; notified ops");
    assert.equal(firing[0].condition, 'rate_limited_rate > 20%');
    // A's share of 429s in the window: its two good calls before the fault and the 429s after (timing decides
    // how many fit in A's one-second rests), past the 20 % threshold.
    assert.ok(firing[0].value > 0.2 && firing[0].value <= 1, `value ${firing[0].value}`);
    assert.match(gyre.proc.output(), /gyre: alert key_rate_limited firing: rate_limited_rate is [0-9.]+% \(rate_limited_rate > 20%\) \{"provider":"p","key":"p#0"\}; gyre moved provider p's traffic off key p#0 to p#1/);
    // Labels carry the key's id, never the key.
    assert.ok(!JSON.stringify(a).includes(KEY_A));

    await mock.configure({ fault: null, fault_key: null });
    a = await waitAlerts(gyre, (x) => x.events.some((e) => e.state === 'resolved'), 15000 * SLOW);
    assert.deepEqual(a.alerts, []);
    assert.deepEqual(a.events.map((e) => e.state), ['resolved', 'firing']);
    assert.equal(a.events[0].actions, "gyre put key p#0 back into provider p's rotation; logged; notified ops");

    // The receiver got exactly one notice per transition, Alertmanager's shape, saying what gyre did.
    const deadline = Date.now() + 5000 * SLOW;
    let hooks;
    for (;;) {
      hooks = await (await fetch(`${mock.url}/_mock/hooks/ops`)).json();
      if (hooks.length >= 2 || Date.now() > deadline) break;
      await sleep(100);
    }
    assert.deepEqual(hooks.map((h) => [h.version, h.status, h.alerts.length]), [['4', 'firing', 1], ['4', 'resolved', 1]]);
    const [fireNote, resolveNote] = hooks.map((h) => h.alerts[0]);
    assert.deepEqual(fireNote.labels, { alertname: 'key_rate_limited', severity: 'warning', provider: 'p', key: 'p#0' });
    assert.equal(fireNote.annotations.actions, "gyre moved provider p's traffic off key p#0 to p#1; logged");
    assert.equal(resolveNote.annotations.actions, "gyre put key p#0 back into provider p's rotation; logged");
    assert.equal(fireNote.fingerprint, firing[0].fingerprint);
    assert.ok(!JSON.stringify(hooks).includes(KEY_A) && !JSON.stringify(hooks).includes(KEY_B));

    // Round robin again.
    before = keyCounts(await mock.stats(), [KEY_A, KEY_B]);
    assert.deepEqual(await send(gyre, 10, 0), Array(10).fill(200));
    after = keyCounts(await mock.stats(), [KEY_A, KEY_B]);
    assert.deepEqual([after[0] - before[0], after[1] - before[1]], [5, 5]);

    const metrics = await (await fetch(`${gyre.url}/metrics`)).text();
    assert.match(metrics, /^gyre_alert_transitions_total\{rule="key_rate_limited",state="firing"\} 1$/m);
    assert.match(metrics, /^gyre_alert_transitions_total\{rule="key_rate_limited",state="resolved"\} 1$/m);
    assert.match(metrics, /^gyre_alerts_firing\{rule="key_rate_limited"\} 0$/m);
    assert.match(metrics, /^gyre_queue_depth 0$/m);

    // The events were stored: `gyre alerts` reads them from the control-plane database.
    const state = path.join(gyre.dir, 'gyre.db.state');
    const cli = await runGyre(['alerts', '--json', '--state', state]);
    assert.equal(cli.code, 0, cli.stderr);
    const stored = JSON.parse(cli.stdout);
    assert.deepEqual(stored.alerts, []);
    assert.deepEqual(stored.events.map((e) => [e.rule, e.state, e.labels, e.actions]), [
      ['key_rate_limited', 'resolved', { provider: 'p', key: 'p#0' }, "gyre put key p#0 back into provider p's rotation; logged; notified ops"],
      ['key_rate_limited', 'firing', { provider: 'p', key: 'p#0' }, "gyre moved provider p's traffic off key p#0 to p#1; logged; notified ops"],
    ]);
    const text = await runGyre(['alerts', '--state', state]);
    assert.equal(text.code, 0);
    assert.match(text.stdout, /^firing or pending now: 0\n\nevents \(newest first\): 2\n/);
  } finally {
    await gyre.stop();
    await mock.stop();
  }
});

test('failover_to_secondary takes a failing target out of its route and restores it; a route\'s last target stays', async () => {
  const mock = await startMock();
  const gyre = await startGyre(`workers: 1
notifiers:
  - {name: ops, kind: webhook, url: "${mock.url}/_mock/hooks/ops"}
providers:
  - {name: p1, kind: openai, base_url: "${mock.v1}", keys: [${KEY_A}], breaker: {failures: 0}}
  - {name: p2, kind: openai, base_url: "${mock.v1}", keys: [${KEY_B}], breaker: {failures: 0}}
routes:
  - name: chat
    targets: [{provider: p1, model: gpt-4o-mini}, {provider: p2, model: gpt-4o-mini}]
  - name: solo
    targets: [{provider: p1, model: gpt-4o-mini}]
alerts:
  - name: provider_degradation
    condition: error_rate > 5%
    window: 3s
    resolve_for: 1s
    min_firing: 1s
    actions: [failover_to_secondary, ops]
`);
  try {
    await mock.configure({ fault: '500', fault_key: KEY_A });
    // Traffic on both routes until both label sets fire.
    const deadline = Date.now() + 8000 * SLOW;
    let a;
    for (;;) {
      await send(gyre, 2, 50, 'chat');
      await send(gyre, 1, 50, 'solo');
      a = await alerts(gyre);
      if (a.alerts.filter((y) => y.state === 'firing').length === 2) break;
      assert.ok(Date.now() < deadline, JSON.stringify(a));
    }
    const byRoute = Object.fromEntries(a.events.filter((e) => e.state === 'firing').map((e) => [e.labels.route, e]));
    assert.deepEqual(Object.keys(byRoute).sort(), ['chat', 'solo']);
    assert.deepEqual(byRoute.chat.labels, { route: 'chat', provider: 'p1' });
    assert.equal(byRoute.chat.actions, "gyre took route chat's target p1/gpt-4o-mini out of rotation; notified ops");
    assert.equal(byRoute.solo.actions,
      "gyre could not take route solo's target p1/gpt-4o-mini out of rotation: it is the route's last usable target; " +
      'notified ops');

    // Out of rotation: chat's calls go to p2 first, and p1's key sees none of them.
    const before = keyCounts(await mock.stats(), [KEY_A, KEY_B]);
    assert.deepEqual(await send(gyre, 6, 0, 'chat'), Array(6).fill(200));
    const after = keyCounts(await mock.stats(), [KEY_A, KEY_B]);
    assert.deepEqual([after[0] - before[0], after[1] - before[1]], [0, 6]);

    await mock.configure({ fault: null, fault_key: null });
    // solo keeps its traffic (p1 answers again), so its alert resolves on good calls.
    const end = Date.now() + 15000 * SLOW;
    for (;;) {
      await send(gyre, 1, 100, 'solo');
      a = await alerts(gyre);
      if (a.events.filter((e) => e.state === 'resolved').length === 2) break;
      assert.ok(Date.now() < end, JSON.stringify(a));
    }
    const resolved = Object.fromEntries(a.events.filter((e) => e.state === 'resolved').map((e) => [e.labels.route, e]));
    assert.equal(resolved.chat.actions, "gyre put route chat's target p1/gpt-4o-mini back into rotation; notified ops");
    assert.equal(resolved.solo.actions, 'notified ops');
    assert.equal(a.events.filter((e) => e.state === 'firing').length, 2);
    // The receiver got exactly one firing and one resolved body per route, each saying what gyre had done.
    let hooks = [];
    for (let t = 0; t < 300 && hooks.length < 4; t++) {
      hooks = await (await fetch(`${mock.url}/_mock/hooks/ops`)).json();
      if (hooks.length < 4) await new Promise((r) => setTimeout(r, 10));
    }
    const notes = hooks.map((h) => [h.status, h.alerts[0].labels.route, h.alerts[0].annotations.actions]).sort();
    assert.deepEqual(notes, [
      ['firing', 'chat', "gyre took route chat's target p1/gpt-4o-mini out of rotation"],
      ['firing', 'solo', "gyre could not take route solo's target p1/gpt-4o-mini out of rotation: it is the route's last usable target"],
      ['resolved', 'chat', "gyre put route chat's target p1/gpt-4o-mini back into rotation"],
      ['resolved', 'solo', 'none'],
    ].sort());

    // Restored: p1 takes a share of chat's calls again.
    const b2 = keyCounts(await mock.stats(), [KEY_A]);
    await send(gyre, 20, 0, 'chat');
    const a2 = keyCounts(await mock.stats(), [KEY_A]);
    assert.ok(a2[0] - b2[0] > 0, 'p1 is back in chat\'s rotation');
  } finally {
    await gyre.stop();
    await mock.stop();
  }
});

test('open_circuit holds a failing provider open while the alert fires: its calls go to the fallback', async () => {
  const mock = await startMock();
  const gyre = await startGyre(`workers: 1
notifiers:
  - {name: pager, kind: pagerduty, url: "${mock.url}/v2/enqueue", routing_key: env:GYRE_TEST_PD_KEY}
providers:
  - {name: p1, kind: openai, base_url: "${mock.v1}", keys: [${KEY_Q}], breaker: {failures: 0}}
  - {name: p2, kind: openai, base_url: "${mock.v1}", keys: [${KEY_B}], breaker: {failures: 0}}
routes:
  - name: chat
    targets: [{provider: p1, model: gpt-4o-mini}]
    fallbacks: [{provider: p2, model: gpt-4o-mini}]
alerts:
  - name: p_down
    condition: error_rate >= 50%
    window: 3s
    resolve_for: 1s
    min_firing: 1s
    actions: [open_circuit, pager]
`, { env: { GYRE_TEST_PD_KEY: 'R0UTINGKEY0123456789abcdefABCDEF' } });
  try {
    await mock.configure({ fault: '503', fault_key: KEY_Q });
    const deadline = Date.now() + 8000 * SLOW;
    let a;
    for (;;) {
      await send(gyre, 1, 100);
      a = await alerts(gyre);
      if (a.alerts.some((y) => y.state === 'firing')) break;
      assert.ok(Date.now() < deadline, JSON.stringify(a));
    }
    assert.deepEqual(a.alerts[0].labels, { provider: 'p1' });
    assert.equal(a.events[0].actions, "gyre opened provider p1's circuit; notified pager");
    const before = keyCounts(await mock.stats(), [KEY_Q, KEY_B]);
    assert.deepEqual(await send(gyre, 5, 0), Array(5).fill(200));
    const after = keyCounts(await mock.stats(), [KEY_Q, KEY_B]);
    assert.deepEqual([after[0] - before[0], after[1] - before[1]], [0, 5]);
    await mock.configure({ fault: null, fault_key: null });
    a = await waitAlerts(gyre, (x) => x.events.some((e) => e.state === 'resolved'), 15000 * SLOW);
    assert.equal(a.events[0].actions, "gyre closed provider p1's circuit; notified pager");
    const b2 = keyCounts(await mock.stats(), [KEY_Q]);
    assert.deepEqual(await send(gyre, 3, 0), [200, 200, 200]);
    assert.equal(keyCounts(await mock.stats(), [KEY_Q])[0] - b2[0], 3);
    // PagerDuty's Events API v2: one trigger, then one resolve with the same dedup_key.
    let events = [];
    for (let t = 0; t < 300 && events.length < 2; t++) {
      events = await (await fetch(`${mock.url}/_mock/hooks/pagerduty`)).json();
      if (events.length < 2) await new Promise((r) => setTimeout(r, 10));
    }
    assert.deepEqual(events.map((e) => [e.routing_key, e.event_action]),
      [['R0UTINGKEY0123456789abcdefABCDEF', 'trigger'], ['R0UTINGKEY0123456789abcdefABCDEF', 'resolve']]);
    assert.equal(events[0].dedup_key, events[1].dedup_key);
    assert.equal(events[0].payload.custom_details.annotations.actions, "gyre opened provider p1's circuit");
  } finally {
    await gyre.stop();
    await mock.stop();
  }
});

test('with otlp: configured, each alert event reaches the collector as one OTLP log record at /v1/logs', async () => {
  const records = [];
  const collector = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => { body += d; });
    req.on('end', () => {
      if (req.url === '/v1/logs') {
        for (const rl of JSON.parse(body).resourceLogs) for (const sl of rl.scopeLogs) for (const r of sl.logRecords) records.push(r);
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{}');
    });
  });
  await new Promise((r) => collector.listen(0, '127.0.0.1', r));
  const mock = await startMock();
  const gyre = await startGyre(`workers: 1
otlp: {endpoint: "http://127.0.0.1:${collector.address().port}/v1/traces", interval_ms: 100}
providers:
  - {name: p, kind: openai, base_url: "${mock.v1}", keys: [${KEY_A}]}
routes:
  - {name: chat, targets: [{provider: p, model: gpt-4o-mini}]}
alerts:
  - {name: busy, condition: request_rate > 0, window: 1s, resolve_for: 0s, min_firing: 0s, by: route, severity: info, action: log}
`);
  try {
    assert.deepEqual(await send(gyre, 1, 0), [200]);
    await waitAlerts(gyre, (x) => x.events.some((e) => e.state === 'resolved'), 8000 * SLOW);
    const deadline = Date.now() + 5000 * SLOW;
    while (records.length < 2 && Date.now() < deadline) await sleep(50);
    const attrs = (r) => Object.fromEntries(r.attributes.map((a) => [a.key, a.value.stringValue ?? a.value.doubleValue]));
    assert.deepEqual(records.map((r) => [r.severityText, r.severityNumber, attrs(r)['gyre.alert.rule'],
      attrs(r)['gyre.alert.state'], attrs(r)['gyre.alert.label.route'], attrs(r)['gyre.alert.actions']]), [
      ['info', 9, 'busy', 'firing', 'chat', 'logged'],
      ['info', 9, 'busy', 'resolved', 'chat', 'logged'],
    ]);
    assert.equal(attrs(records[0])['gyre.alert.value'], 1);
    const metrics = await (await fetch(`${gyre.url}/metrics`)).text();
    assert.match(metrics, /^gyre_alert_logs_exported_total 2$/m);
    assert.match(metrics, /^gyre_alert_logs_dropped_total 0$/m);
  } finally {
    await gyre.stop();
    await mock.stop();
    collector.close();
  }
});
