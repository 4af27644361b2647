// Notifiers (`notifiers:`): the config loads as the docs write it and its errors name notifiers[i].field without
// a secret; gyre-mock receives them (webhooks recorded, staged failures, PagerDuty's Events API v2); a running gyre
// counts every configured notifier in /metrics.  The sender's retries, digests and bounds are proven in
// tests/unit/control_notify.c against a loopback receiver; the alert → notifier path joins when the alert engine
// does.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { runGyre, startGyre, startMock, tmpdir } from '../lib/harness.mjs';

function writeConfig(text) {
  const file = path.join(tmpdir(), 'gyre.yaml');
  fs.writeFileSync(file, text);
  return file;
}

const SLACK_URL = 'https://hooks.slack.com/services/T0001/B0001/sEcReTsLaCkToKeN';
const PD_KEY = 'pdR0uT1nGkEy0123456789abcdef0123';

test('check-config loads the notifiers of the docs as written', async () => {
  const file = writeConfig(`listen: 127.0.0.1:8080
notifiers:
  - {name: page_oncall, kind: pagerduty, url: https://events.pagerduty.com/v2/enqueue, routing_key: env:PD_ROUTING_KEY}
  - {name: ops, kind: webhook, url: http://127.0.0.1:9999/hook}
  - {name: team, kind: slack, url: env:SLACK_WEBHOOK_URL}
  - {name: chat, kind: teams, url: 'https://example.webhook.office.com/workflows/x', timeout: 2s, retries: 3, digest: 5m}
  - {name: journal, kind: log}
`);
  const r = await runGyre(['check-config', file], { env: { PD_ROUTING_KEY: PD_KEY, SLACK_WEBHOOK_URL: SLACK_URL } });
  assert.equal(r.stderr, '');
  assert.equal(r.code, 0);
  assert.equal(r.stdout, `${file}: ok (0 providers, 0 routes)\n`);
});

test('check-config names each wrong notifier field with its line and never prints a URL or a key', async () => {
  const file = writeConfig(`notifiers:
  - {name: page_oncall, kind: pagerduty, url: https://events.pagerduty.com/v2/enqueue}
  - {name: team, kind: slack, url: 'ftp://hooks.slack.com/services/T0001/B0001/sEcReTsLaCkToKeN', routing_key: ${PD_KEY}}
  - {name: team, kind: email}
  - {name: ops, kind: webhook, url: env:GYRE_UNSET_HOOK_URL, retries: 99, digest: 10ms}
`);
  const r = await runGyre(['check-config', file], { env: { GYRE_UNSET_HOOK_URL: '' } });
  assert.equal(r.code, 1);
  assert.equal(r.stdout, [
    `${file}:2: notifiers[0]: a 'pagerduty' notifier needs a 'routing_key' (its Events API v2 integration key)`,
    `${file}:3: notifiers[1].url: is not an http:// or https:// URL with a host`,
    `${file}:3: notifiers[1].routing_key: only a 'pagerduty' notifier takes a routing_key`,
    `${file}:4: notifiers[2].kind: unknown value 'email' (supported: webhook, slack, teams, pagerduty, log)`,
    `${file}:4: notifiers[2].name: 'team' is already the name of notifiers[1]`,
    `${file}:5: notifiers[3].url: environment variable GYRE_UNSET_HOOK_URL is not set`,
    `${file}:5: notifiers[3].retries: 99 is out of range (0 to 20)`,
    `${file}:5: notifiers[3].digest: must be 0 (off) or between 1s and 24h`,
    '8 errors',
    '',
  ].join('\n'));
  assert.ok(!r.stdout.includes('sEcReT') && !r.stderr.includes('sEcReT'));
  assert.ok(!r.stdout.includes(PD_KEY) && !r.stderr.includes(PD_KEY));
});

test('gyre-mock records the bodies a hook accepts and fails the posts staged for it', async () => {
  const mock = await startMock();
  try {
    const post = (p, body) => fetch(`${mock.url}${p}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const staged = await post('/_mock/hooks/ops/fail', { status: 500, count: 2 });
    assert.equal(staged.status, 200);
    assert.deepEqual(await staged.json(), { status: 500, count: 2 });
    assert.equal((await post('/_mock/hooks/ops', { n: 1 })).status, 500);
    assert.equal((await post('/_mock/hooks/ops', { n: 1 })).status, 500);
    const ok = await post('/_mock/hooks/ops', { n: 1 });
    assert.equal(ok.status, 200);
    assert.deepEqual(await ok.json(), { status: 'ok', message: 'recorded' });
    await post('/_mock/hooks/other', { n: 2 });
    assert.deepEqual(await (await fetch(`${mock.url}/_mock/hooks/ops`)).json(), [{ n: 1 }]);
    assert.deepEqual(await (await fetch(`${mock.url}/_mock/hooks`)).json(), {
      ops: { received: 3, accepted: 1, failed: 2 },
      other: { received: 1, accepted: 1, failed: 0 },
    });
    assert.equal((await fetch(`${mock.url}/_mock/hooks`, { method: 'DELETE' })).status, 200);
    assert.deepEqual(await (await fetch(`${mock.url}/_mock/hooks/ops`)).json(), []);
    assert.equal((await fetch(`${mock.url}/_mock/hooks/bad%20name`)).status, 404);
  } finally {
    await mock.stop();
  }
});

test('gyre-mock answers PagerDuty events as the Events API v2 documents and records them as "pagerduty"', async () => {
  const mock = await startMock();
  try {
    const enqueue = (body) => fetch(`${mock.url}/v2/enqueue`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const trigger = {
      routing_key: PD_KEY, event_action: 'trigger', dedup_key: 'abc123',
      payload: { summary: 'high_latency: p95 6200ms > 5000ms', source: 'gw1', severity: 'critical' },
    };
    const r = await enqueue(trigger);
    assert.equal(r.status, 202);
    assert.deepEqual(await r.json(), { status: 'success', message: 'Event processed', dedup_key: 'abc123' });
    const bad = await enqueue({ routing_key: PD_KEY, event_action: 'resolve' });
    assert.equal(bad.status, 400);
    assert.deepEqual(await bad.json(), {
      status: 'invalid event', message: 'Event object is invalid',
      errors: ["'dedup_key' is required for acknowledge and resolve"],
    });
    const sev = await enqueue({ ...trigger, payload: { ...trigger.payload, severity: 'page-me' } });
    assert.equal(sev.status, 400);
    assert.deepEqual(await (await fetch(`${mock.url}/_mock/hooks/pagerduty`)).json(), [trigger]);
  } finally {
    await mock.stop();
  }
});

test('a running gyre counts every configured notifier in /metrics, and logs no secret of theirs', async () => {
  const mock = await startMock();
  const gyre = await startGyre(`notifiers:
  - {name: ops, kind: webhook, url: '${mock.url}/_mock/hooks/ops'}
  - {name: team, kind: slack, url: env:SLACK_WEBHOOK_URL}
  - {name: page, kind: pagerduty, url: '${mock.url}/v2/enqueue', routing_key: env:PD_ROUTING_KEY}
`, { env: { SLACK_WEBHOOK_URL: SLACK_URL, PD_ROUTING_KEY: PD_KEY } });
  try {
    const text = await (await fetch(`${gyre.url}/metrics`)).text();
    const lines = text.split('\n').filter((l) => l.startsWith('gyre_notifications_total'));
    assert.deepEqual(lines, [
      'gyre_notifications_total{notifier="ops",kind="webhook",result="sent"} 0',
      'gyre_notifications_total{notifier="ops",kind="webhook",result="failed"} 0',
      'gyre_notifications_total{notifier="ops",kind="webhook",result="dropped"} 0',
      'gyre_notifications_total{notifier="ops",kind="webhook",result="retried"} 0',
      'gyre_notifications_total{notifier="team",kind="slack",result="sent"} 0',
      'gyre_notifications_total{notifier="team",kind="slack",result="failed"} 0',
      'gyre_notifications_total{notifier="team",kind="slack",result="dropped"} 0',
      'gyre_notifications_total{notifier="team",kind="slack",result="retried"} 0',
      'gyre_notifications_total{notifier="page",kind="pagerduty",result="sent"} 0',
      'gyre_notifications_total{notifier="page",kind="pagerduty",result="failed"} 0',
      'gyre_notifications_total{notifier="page",kind="pagerduty",result="dropped"} 0',
      'gyre_notifications_total{notifier="page",kind="pagerduty",result="retried"} 0',
    ]);
    assert.ok(text.includes('# TYPE gyre_notifications_total counter'));
    assert.ok(!text.includes('sEcReT') && !text.includes(PD_KEY));
  } finally {
    const res = await gyre.stop();
    await mock.stop();
    assert.ok(!res.output.includes('sEcReT') && !res.output.includes(PD_KEY));
  }
});
