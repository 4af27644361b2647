// No secret leaks (the control issue's "Done when"): after a full run, with
// provider keys, a client key, the admin and read tokens and the master key
// all given through the environment, not one of them appears in gyre's log,
// in a trace (the API, the trace log, the SQLite files), in /metrics, in an
// error body any client received, in the audit log (the API and the state
// database), or in any other file gyre wrote.  The run exercises calls that
// succeed, fail upstream (gyre-mock faults, one of which echoes the request's
// headers, provider key included, in its error), are refused for a wrong
// credential, and the admin API adding and removing a provider key.
//
// Each secret is checked whole and by every 12-character window of its random
// part, so a truncated or partly masked copy is found too.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { startGyre, startMock, tmpdir, SLOW } from '../lib/harness.mjs';

const rand = () => crypto.randomBytes(16).toString('hex');
const SECRETS = {
  provider_key_a: `sk-prov-a-${rand()}`,
  provider_key_b: `sk-prov-b-${rand()}`,
  anthropic_key: `sk-ant-${rand()}`,
  client_key: `sk-gyre-${rand()}`,
  read_token: `read-${rand()}`,
  admin_token: `admin-${rand()}`,
  master_key: crypto.randomBytes(32).toString('hex'),
  added_provider_key: `sk-prov-added-${rand()}`,
  wrong_client_key: `sk-wrong-${rand()}`,
};
const WINDOW = 12;

/** Every secret found in `text`: the names of those whose value, or a 12-character window of it, appears. */
function leaks(text) {
  const found = [];
  for (const [name, value] of Object.entries(SECRETS)) {
    const random = value.slice(value.lastIndexOf('-') + 1);
    for (let i = 0; i + WINDOW <= random.length; i++) {
      if (text.includes(random.slice(i, i + WINDOW))) { found.push(name); break; }
    }
  }
  return found;
}

/** Every file under `dir`, read as bytes into latin1 text (SQLite pages, zstd segments, WAL files alike). */
function filesUnder(dir) {
  const out = [];
  for (const name of fs.readdirSync(dir, { recursive: true })) {
    const p = path.join(dir, name);
    if (fs.statSync(p).isFile()) out.push({ name, text: fs.readFileSync(p).toString('latin1') });
  }
  return out;
}

test('after a full run no secret appears in the log, traces, metrics, error bodies, the audit log or any file gyre wrote', async () => {
  const mock = await startMock();
  const dir = tmpdir('gyre-secrets-');
  const env = {
    GYRE_SECRETS_KEY_A: SECRETS.provider_key_a,
    GYRE_SECRETS_KEY_B: SECRETS.provider_key_b,
    GYRE_SECRETS_KEY_ANT: SECRETS.anthropic_key,
    GYRE_SECRETS_CLIENT: SECRETS.client_key,
    GYRE_SECRETS_READ: SECRETS.read_token,
    GYRE_SECRETS_ADMIN: SECRETS.admin_token,
    GYRE_MASTER_KEY: SECRETS.master_key,
  };
  const gyre = await startGyre(`workers: 2
store: {sqlite: "${path.join(dir, 'gyre.db')}"}
auth:
  keys: [env:GYRE_SECRETS_CLIENT]
  read_token: env:GYRE_SECRETS_READ
  admin_token: env:GYRE_SECRETS_ADMIN
providers:
  - {name: mock, kind: openai, base_url: "${mock.v1}", keys: [env:GYRE_SECRETS_KEY_A, env:GYRE_SECRETS_KEY_B]}
  - {name: claude, kind: anthropic, base_url: "${mock.v1}", keys: [env:GYRE_SECRETS_KEY_ANT]}
routes:
  - {name: chat, targets: [{provider: mock, model: gpt-4o-mini}]}
  - {name: claude, targets: [{provider: claude, model: claude-mock}]}
`, { env });

  const received = []; // every body a client got back
  async function send(method, p, { headers = {}, body } = {}) {
    const r = await fetch(`${gyre.url}${p}`, {
      method,
      headers: body !== undefined ? { 'content-type': 'application/json', ...headers } : headers,
      body: body !== undefined ? JSON.stringify(body) : undefined,
      signal: AbortSignal.timeout(15000 * SLOW),
    });
    const text = await r.text();
    received.push({ what: `${method} ${p} -> ${r.status}`, text: `${[...r.headers].map(([k, v]) => `${k}: ${v}`).join('\n')}\n\n${text}` });
    return { status: r.status, text };
  }
  const client = { authorization: `Bearer ${SECRETS.client_key}` };
  const admin = { authorization: `Bearer ${SECRETS.admin_token}` };
  const reader = { authorization: `Bearer ${SECRETS.read_token}` };
  const chat = (extra = {}) => ({ model: 'chat', messages: [{ role: 'user', content: 'Say hello.' }], ...extra });
  const claude = { model: 'claude', max_tokens: 16, messages: [{ role: 'user', content: 'Say hello.' }] };

  let stopped = null;
  try {
    // Calls that succeed, on both keys of `mock`, streamed and not, and on Anthropic's dialect.
    for (let i = 0; i < 4; i++) assert.equal((await send('POST', '/v1/chat/completions', { headers: client, body: chat() })).status, 200);
    assert.equal((await send('POST', '/v1/chat/completions', { headers: client, body: chat({ stream: true }) })).status, 200);
    assert.equal((await send('POST', '/v1/messages', { headers: { 'x-api-key': SECRETS.client_key, 'anthropic-version': '2023-06-01' }, body: claude })).status, 200);
    // Calls that fail upstream; echo_headers puts the provider key into the provider's error.
    for (const fault of ['429', '500', 'echo_headers']) {
      await mock.configure({ fault });
      const a = await send('POST', '/v1/chat/completions', { headers: client, body: chat() });
      assert.ok(a.status >= 400, `${fault}: ${a.status}`);
      const b = await send('POST', '/v1/messages', { headers: { 'x-api-key': SECRETS.client_key, 'anthropic-version': '2023-06-01' }, body: claude });
      assert.ok(b.status >= 400, `${fault}: ${b.status}`);
    }
    await mock.configure({ fault: null });
    // Refused credentials: a wrong key every way a client sends one, the read token calling a model, a client key
    // reading, the read token changing.
    assert.equal((await send('POST', '/v1/chat/completions', { headers: { authorization: `Bearer ${SECRETS.wrong_client_key}` }, body: chat() })).status, 401);
    assert.equal((await send('POST', '/v1/messages', { headers: { 'x-api-key': SECRETS.wrong_client_key }, body: claude })).status, 401);
    assert.equal((await send('POST', '/v1/chat/completions', { headers: { authorization: `Basic ${Buffer.from(`u:${SECRETS.wrong_client_key}`).toString('base64')}` }, body: chat() })).status, 401);
    assert.equal((await send('POST', '/v1/chat/completions', { headers: reader, body: chat() })).status, 403);
    assert.equal((await send('GET', '/api/traces', { headers: client })).status, 403);
    assert.equal((await send('GET', '/api/admin/providers', { headers: reader })).status, 403);
    // Admin changes: a provider key added, listed, refused where it is wrong, removed.
    const add = await send('POST', '/api/admin/providers/mock/keys', { headers: admin, body: { key: SECRETS.added_provider_key, weight: 1 } });
    assert.ok(add.status === 201 || add.status === 202, add.text);
    assert.equal((await send('POST', '/api/admin/providers/nope/keys', { headers: admin, body: { key: SECRETS.added_provider_key } })).status, 404);
    assert.equal((await send('POST', '/api/admin/providers/mock/keys', { headers: admin, body: { key: `${SECRETS.added_provider_key} x` } })).status, 400);
    assert.equal((await send('POST', '/api/admin/providers/mock/keys', { headers: admin, body: { key: SECRETS.added_provider_key, weight: -1 } })).status, 400);
    assert.equal((await send('POST', '/api/admin/providers/mock/keys', { headers: client, body: { key: SECRETS.added_provider_key } })).status, 403);
    assert.equal((await send('GET', '/api/admin/providers', { headers: admin })).status, 200);
    const del = await send('DELETE', '/api/admin/providers/mock/keys/mock%23a1', { headers: admin });
    assert.ok(del.status === 200 || del.status === 202, del.text);

    // What gyre exposes: every trace (the pages and each one whole), the stats, /metrics, the audit log.
    const page = await send('GET', '/api/traces?limit=1000', { headers: reader });
    assert.equal(page.status, 200);
    const traces = JSON.parse(page.text).data;
    assert.ok(traces.length >= 12, `${traces.length} traces`);
    for (const t of traces) assert.equal((await send('GET', `/api/traces/${t.trace_id}`, { headers: reader })).status, 200);
    assert.equal((await send('GET', '/api/stats?group_by=provider', { headers: reader })).status, 200);
    assert.equal((await send('GET', '/metrics', { headers: reader })).status, 200);
    const audit = await send('GET', '/api/audit', { headers: reader });
    assert.deepEqual(JSON.parse(audit.text).data.map((e) => e.action), ['provider_key.delete', 'provider_key.create']);
  } finally {
    stopped = await gyre.stop();
    assert.equal((await mock.stop()).code, 0);
  }
  assert.equal(stopped.code, 0);

  const places = [
    { what: "gyre's log (stdout and stderr)", text: stopped.output },
    ...received,
    ...filesUnder(dir).map((f) => ({ what: `file ${f.name}`, text: f.text })),
  ];
  // The files looked at include the state database (the audit log, the sealed key), the trace store and the log.
  const names = filesUnder(dir).map((f) => f.name);
  assert.ok(names.includes('gyre.db.state'), names.join(' '));
  assert.ok(names.includes('gyre.db'), names.join(' '));
  assert.ok(names.some((n) => n.startsWith('gyre.db.log')), names.join(' '));
  const found = places.map((p) => ({ where: p.what, secrets: leaks(p.text) })).filter((p) => p.secrets.length);
  assert.deepEqual(found, []);
  fs.rmSync(dir, { recursive: true, force: true });
});
