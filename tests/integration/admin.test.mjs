// The admin API (/api/admin, behind the admin token), the audit log
// (GET /api/audit, `gyre audit`) and provider keys added through the API,
// sealed at rest with the master key (GYRE_MASTER_KEY), against real gyre and
// gyre-mock processes.  gyre-mock counts the key each request carried
// (/_mock/stats keys), which is how the tests see which provider key is used.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { startGyre, startMock, startUpstream, runGyre, postJson, chatBody, tmpdir, SLOW } from '../lib/harness.mjs';

const CLIENT_KEY = 'sk-gyre-client-admin-test-5b7e2c9a';
const READ_TOKEN = 'read-token-admin-test-8d1f4a6c2e';
const ADMIN_TOKEN = 'admin-token-admin-test-3c9a7e5b1d';
const FILE_KEY = 'sk-provider-from-file-1a2b3c4d5e';
const NEW_KEY = 'sk-provider-added-by-api-9f8e7d6c5b4a';
const MASTER = '000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f';
const OTHER_MASTER = 'ff0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f';

const bearer = (k) => ({ authorization: `Bearer ${k}` });

function config(mock, dir, extra = '') {
  return `workers: 1
store: {sqlite: "${path.join(dir, 'gyre.db')}"}
auth:
  keys: [${CLIENT_KEY}]
  read_token: ${READ_TOKEN}
  admin_token: ${ADMIN_TOKEN}
providers:
  - {name: mock, kind: openai, base_url: "${mock.v1}", keys: [${FILE_KEY}]}
routes:
  - {name: chat, targets: [{provider: mock, model: gpt-4o-mini}]}
${extra}`;
}

async function call(gyre, method, p, headers = {}, body = undefined) {
  const r = await fetch(`${gyre.url}${p}`, {
    method,
    headers: body !== undefined ? { 'content-type': 'application/json', ...headers } : headers,
    body: body !== undefined ? (typeof body === 'string' ? body : JSON.stringify(body)) : undefined,
    signal: AbortSignal.timeout(5000 * SLOW),
  });
  const text = await r.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { status: r.status, json, text };
}

/** A request with its path exactly as written (fetch would resolve dot segments first). */
function rawGet(gyre, p, headers) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: gyre.port, path: p, method: 'GET', headers }, (res) => {
      let text = '';
      res.on('data', (d) => { text += d; });
      res.on('end', () => resolve({ status: res.statusCode, json: JSON.parse(text) }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** The audit entries (newest first) without their time fields, which differ per run. */
async function auditEntries(gyre, query = '') {
  const r = await call(gyre, 'GET', `/api/audit${query}`, bearer(READ_TOKEN));
  assert.equal(r.status, 200, r.text);
  for (const e of r.json.data) {
    assert.match(e.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    assert.equal(Math.floor(e.time_us / 1000), Date.parse(e.time));
  }
  return r.json.data.map(({ time, time_us, ...rest }) => rest);
}

/** stderr without the lines a start prints for each route before it fails. */
const startErrors = (r) => r.stderr.replace(/^gyre: route .*\n/gm, '');

/** Every file under `dir` holding `needle` (the state database, its WAL, the trace store, the log). */
function filesHolding(dir, needle) {
  const found = [];
  for (const name of fs.readdirSync(dir, { recursive: true })) {
    const p = path.join(dir, name);
    if (fs.statSync(p).isFile() && fs.readFileSync(p).includes(Buffer.from(needle))) found.push(name);
  }
  return found;
}

let mock;
before(async () => { mock = await startMock(); });
after(async () => { assert.equal((await mock.stop()).code, 0); });

const resetMock = async () => { await fetch(`${mock.url}/_mock/reset`, { method: 'POST' }); };
const keysSeen = async () => (await mock.stats()).keys;
async function chat(gyre, n) {
  for (let i = 0; i < n; i++) {
    const r = await postJson(`${gyre.url}/v1/chat/completions`, chatBody(), bearer(CLIENT_KEY));
    assert.equal(r.status, 200, r.text);
  }
}

test('the admin API answers the admin token only: 401 without a token or with an unknown one, 403 for a client key and the read token', async () => {
  const dir = tmpdir('gyre-admin-');
  const gyre = await startGyre(config(mock, dir), { env: { GYRE_MASTER_KEY: MASTER } });
  try {
    const none = await call(gyre, 'GET', '/api/admin/providers');
    assert.equal(none.status, 401);
    assert.deepEqual(none.json.error, {
      message: "no token was sent: the admin API needs the admin_token of this gateway, as 'Authorization: Bearer TOKEN'",
      type: 'invalid_request_error', param: null, code: 'invalid_api_key',
    });
    const wrong = await call(gyre, 'GET', '/api/admin/providers', bearer('admin-token-that-is-not-this-one'));
    assert.equal(wrong.status, 401);
    assert.equal(wrong.json.error.message, 'the token sent is not recognised by this gateway');
    for (const cred of [CLIENT_KEY, READ_TOKEN]) {
      const r = await call(gyre, 'POST', '/api/admin/providers/mock/keys', bearer(cred), { key: NEW_KEY });
      assert.equal(r.status, 403, cred);
      assert.deepEqual(r.json.error, {
        message: 'the admin API needs the admin_token: neither a client key nor the read_token gives access to it',
        type: 'invalid_request_error', param: null, code: 'insufficient_permissions',
      });
    }
    const ok = await call(gyre, 'GET', '/api/admin/providers', bearer(ADMIN_TOKEN));
    assert.equal(ok.status, 200);
    assert.deepEqual(ok.json, { providers: [{ name: 'mock', keys: [{ id: 'mock#0', source: 'config', weight: 1, in_force: true }] }] });
    assert.ok(!ok.text.includes(FILE_KEY));
    const unknown = await call(gyre, 'GET', '/api/admin/nothing', bearer(ADMIN_TOKEN));
    assert.equal(unknown.status, 404);
    assert.equal(unknown.json.error.message, 'unknown admin path /api/admin/nothing');
    const method = await call(gyre, 'PUT', '/api/admin/providers', bearer(ADMIN_TOKEN));
    assert.equal(method.status, 405);
    assert.equal(method.json.error.message, 'PUT is not allowed on /api/admin/providers');
    // Nothing the refused requests asked for was saved.
    assert.deepEqual(await auditEntries(gyre), []);
  } finally {
    await gyre.stop();
  }
});

test('a dot segment cannot carry a read token into the admin API, nor an admin path out of it', async () => {
  const dir = tmpdir('gyre-admin-');
  const gyre = await startGyre(config(mock, dir), { env: { GYRE_MASTER_KEY: MASTER } });
  try {
    // Normalised, this is /api/traces (the read token may): the path as sent is an admin path, so it is refused.
    const out = await rawGet(gyre, '/api/admin/../traces', bearer(READ_TOKEN));
    assert.equal(out.status, 400);
    assert.equal(out.json.error.message, 'an admin API path must be written plainly, without dot segments or escaped slashes');
    // Normalised, this is an admin path: the access stage asks for the admin token.
    const into = await rawGet(gyre, '/api/traces/../admin/providers', bearer(READ_TOKEN));
    assert.equal(into.status, 403);
  } finally {
    await gyre.stop();
  }
});

test('reading /api/* needs at least the read token: /api/audit answers the read and admin tokens, 403 to a client key, 401 without', async () => {
  const dir = tmpdir('gyre-admin-');
  const gyre = await startGyre(config(mock, dir), { env: { GYRE_MASTER_KEY: MASTER } });
  try {
    for (const p of ['/api/audit', '/api/traces']) {
      assert.equal((await call(gyre, 'GET', p)).status, 401, p);
      const client = await call(gyre, 'GET', p, bearer(CLIENT_KEY));
      assert.equal(client.status, 403, p);
      assert.equal(client.json.error.message, 'a client key does not give access to this path: it needs the read_token or the admin_token');
      assert.equal((await call(gyre, 'GET', p, bearer(READ_TOKEN))).status, 200, p);
      assert.equal((await call(gyre, 'GET', p, bearer(ADMIN_TOKEN))).status, 200, p);
    }
    const bad = await call(gyre, 'GET', '/api/audit?limit=0', bearer(READ_TOKEN));
    assert.equal(bad.status, 400);
    assert.equal(bad.json.error.message, "'limit' must be a whole number from 1 to 1000, got '0'");
    const unknown = await call(gyre, 'GET', '/api/audit?who=me', bearer(READ_TOKEN));
    assert.equal(unknown.status, 400);
    assert.equal(unknown.json.error.message, "unknown parameter 'who'; expected one of since, until, action, actor, limit, cursor");
  } finally {
    await gyre.stop();
  }
});

test('a provider key added through the API is sealed in the state database, audited with exact before and after, and in force at once (201, traffic uses it)', async () => {
  const dir = tmpdir('gyre-admin-');
  const gyre = await startGyre(config(mock, dir), { env: { GYRE_MASTER_KEY: MASTER } });
  try {
    await resetMock();
    const add = await call(gyre, 'POST', '/api/admin/providers/mock/keys', bearer(ADMIN_TOKEN), { key: NEW_KEY, weight: 2 });
    // Put in force by a live reload (docs/live.md): traffic uses the key at once.
    assert.equal(add.status, 201, add.text);
    assert.deepEqual(add.json, { id: 'mock#a1', provider: 'mock', weight: 2, in_force: true });
    assert.ok(!add.text.includes(NEW_KEY));
    const list = await call(gyre, 'GET', '/api/admin/providers', bearer(ADMIN_TOKEN));
    assert.deepEqual(list.json, {
      providers: [{
        name: 'mock',
        keys: [
          { id: 'mock#0', source: 'config', weight: 1, in_force: true },
          { id: 'mock#a1', source: 'api', weight: 2, in_force: true },
        ],
      }],
    });
    // In force: round robin over the file's key and the added one.
    await chat(gyre, 2);
    assert.deepEqual(await keysSeen(), { [FILE_KEY]: 1, [NEW_KEY]: 1 });
    // The database and every file beside it hold no key in clear.
    assert.deepEqual(filesHolding(dir, NEW_KEY), []);
    assert.ok(fs.readdirSync(dir).includes('gyre.db.state'));

    const del = await call(gyre, 'DELETE', '/api/admin/providers/mock/keys/mock%23a1', bearer(ADMIN_TOKEN));
    assert.equal(del.status, 200, del.text);
    assert.deepEqual(del.json, { id: 'mock#a1', provider: 'mock', deleted: true, in_force: true });
    const again = await call(gyre, 'DELETE', '/api/admin/providers/mock/keys/mock%23a1', bearer(ADMIN_TOKEN));
    assert.equal(again.status, 404);
    assert.equal(again.json.error.message, "provider 'mock' has no key 'mock#a1' added through the admin API");
    const fileKey = await call(gyre, 'DELETE', '/api/admin/providers/mock/keys/mock%230', bearer(ADMIN_TOKEN));
    assert.equal(fileKey.status, 409);
    assert.equal(fileKey.json.error.message, "key 'mock#0' of provider 'mock' is declared in the configuration file: remove it there (and reload)");

    assert.deepEqual(await auditEntries(gyre), [
      { id: 2, actor: 'admin_token', action: 'provider_key.delete', object: 'mock#a1', before: { id: 'mock#a1', provider: 'mock', weight: 2 }, after: null },
      { id: 1, actor: 'admin_token', action: 'provider_key.create', object: 'mock#a1', before: null, after: { id: 'mock#a1', provider: 'mock', weight: 2 } },
    ]);
    assert.deepEqual(await auditEntries(gyre, '?action=provider_key.create'), [
      { id: 1, actor: 'admin_token', action: 'provider_key.create', object: 'mock#a1', before: null, after: { id: 'mock#a1', provider: 'mock', weight: 2 } },
    ]);
    const page = await call(gyre, 'GET', '/api/audit?limit=1', bearer(READ_TOKEN));
    assert.equal(page.json.data.length, 1);
    assert.equal(page.json.next_cursor, '2');
    const next = await call(gyre, 'GET', `/api/audit?limit=1&cursor=${page.json.next_cursor}`, bearer(READ_TOKEN));
    assert.deepEqual(next.json.data.map((e) => e.id), [1]);
    assert.equal(next.json.next_cursor, null);
    const audit = await call(gyre, 'GET', '/api/audit', bearer(READ_TOKEN));
    assert.ok(!audit.text.includes(NEW_KEY));
  } finally {
    await gyre.stop();
  }
});

test('a provider key added through the API is used by the traffic after a restart, and a deleted one no longer', async () => {
  const dir = tmpdir('gyre-admin-');
  let gyre = await startGyre(config(mock, dir), { env: { GYRE_MASTER_KEY: MASTER } });
  const add = await call(gyre, 'POST', '/api/admin/providers/mock/keys', bearer(ADMIN_TOKEN), { key: NEW_KEY });
  assert.equal(add.json.id, 'mock#a1');
  await gyre.stop();

  gyre = await startGyre(config(mock, dir), { env: { GYRE_MASTER_KEY: MASTER } });
  try {
    await resetMock();
    await chat(gyre, 4);
    // Round robin over the file's key and the added one.
    assert.deepEqual(await keysSeen(), { [FILE_KEY]: 2, [NEW_KEY]: 2 });
    const list = await call(gyre, 'GET', '/api/admin/providers', bearer(ADMIN_TOKEN));
    assert.deepEqual(list.json.providers[0].keys, [
      { id: 'mock#0', source: 'config', weight: 1, in_force: true },
      { id: 'mock#a1', source: 'api', weight: 1, in_force: true },
    ]);
    // Deleting it takes it out of use at once (a live reload).
    const del = await call(gyre, 'DELETE', '/api/admin/providers/mock/keys/mock%23a1', bearer(ADMIN_TOKEN));
    assert.equal(del.status, 200);
    assert.deepEqual(del.json, { id: 'mock#a1', provider: 'mock', deleted: true, in_force: true });
    await resetMock();
    await chat(gyre, 2);
    assert.deepEqual(await keysSeen(), { [FILE_KEY]: 2 });
  } finally {
    await gyre.stop();
  }
  gyre = await startGyre(config(mock, dir), { env: { GYRE_MASTER_KEY: MASTER } });
  try {
    await resetMock();
    await chat(gyre, 2);
    assert.deepEqual(await keysSeen(), { [FILE_KEY]: 2 });
  } finally {
    await gyre.stop();
  }
  fs.rmSync(dir, { recursive: true, force: true });
});

test('without a master key, adding a provider key is refused with 409 naming GYRE_MASTER_KEY, and nothing is saved', async () => {
  const dir = tmpdir('gyre-admin-');
  const gyre = await startGyre(config(mock, dir), { env: { GYRE_MASTER_KEY: '', GYRE_MASTER_KEY_FILE: '' } });
  try {
    const r = await call(gyre, 'POST', '/api/admin/providers/mock/keys', bearer(ADMIN_TOKEN), { key: NEW_KEY });
    assert.equal(r.status, 409);
    assert.deepEqual(r.json.error, {
      message: 'no master key: provider keys added through the admin API are stored encrypted; start gyre with GYRE_MASTER_KEY '
        + '(64 hex digits or the base64 of 32 bytes (make one with: head -c 32 /dev/urandom | base64)), GYRE_MASTER_KEY_FILE or master_key_file: set',
      type: 'invalid_request_error', param: null, code: 'master_key_not_configured',
    });
    assert.ok(!r.text.includes(NEW_KEY));
    const bad = await call(gyre, 'POST', '/api/admin/providers/nope/keys', bearer(ADMIN_TOKEN), { key: NEW_KEY });
    assert.equal(bad.status, 404);
    assert.equal(bad.json.error.message, "no provider 'nope' in the configuration");
    const shape = await call(gyre, 'POST', '/api/admin/providers/mock/keys', bearer(ADMIN_TOKEN), { key: NEW_KEY, colour: 'blue' });
    assert.equal(shape.status, 400);
    assert.equal(shape.json.error.message, "unknown field 'colour' (known: key, weight)");
    assert.deepEqual(await auditEntries(gyre), []);
    assert.deepEqual(filesHolding(dir, NEW_KEY), []);
  } finally {
    await gyre.stop();
  }
});

test('a wrong master key at start is a start error naming the key that cannot be decrypted by its id, never the key', async () => {
  const dir = tmpdir('gyre-admin-');
  const gyre = await startGyre(config(mock, dir), { env: { GYRE_MASTER_KEY: MASTER } });
  assert.equal((await call(gyre, 'POST', '/api/admin/providers/mock/keys', bearer(ADMIN_TOKEN), { key: NEW_KEY })).json.id, 'mock#a1');
  const file = path.join(dir, 'gyre.yaml');
  fs.writeFileSync(file, `listen: 127.0.0.1:${gyre.port}\n${config(mock, dir)}`);
  await gyre.stop(); // removes gyre's own directory, not `dir`
  const state = path.join(dir, 'gyre.db.state');
  const wrong = await runGyre(['serve', '--config', file], { env: { GYRE_MASTER_KEY: OTHER_MASTER } });
  assert.equal(wrong.code, 1);
  assert.equal(startErrors(wrong), `gyre: provider keys: provider key 'mock#a1' (provider 'mock') in ${state} cannot be decrypted with the master key `
    + 'from GYRE_MASTER_KEY: it is not the master key the key was added with, or the stored key was altered\n');
  const none = await runGyre(['serve', '--config', file], { env: { GYRE_MASTER_KEY: '' } });
  assert.equal(none.code, 1);
  assert.equal(startErrors(none), `gyre: provider keys: provider keys were added through the admin API and are stored encrypted in ${state}, but no `
    + 'master key is set: set GYRE_MASTER_KEY (or GYRE_MASTER_KEY_FILE, or master_key_file:) to the master key they were added with\n');
  for (const out of [wrong, none]) assert.ok(!(out.stdout + out.stderr).includes(NEW_KEY));
  fs.rmSync(dir, { recursive: true, force: true });
});

test('a master key file that its group or others may read is refused at start, as ssh refuses such a key', async () => {
  const dir = tmpdir('gyre-admin-');
  const keyFile = path.join(dir, 'master.key');
  fs.writeFileSync(keyFile, `${MASTER}\n`, { mode: 0o644 });
  fs.chmodSync(keyFile, 0o644);
  const file = path.join(dir, 'gyre.yaml');
  fs.writeFileSync(file, `listen: 127.0.0.1:1\n${config(mock, dir, `master_key_file: ${keyFile}\n`)}`);
  const r = await runGyre(['serve', '--config', file], { env: { GYRE_MASTER_KEY: '', GYRE_MASTER_KEY_FILE: '' } });
  assert.equal(r.code, 1);
  assert.equal(startErrors(r), `gyre: provider keys: master_key_file: ${keyFile} may be read or written by its group or others (mode 0644): `
    + `the master key must be private to its owner; chmod 600 ${keyFile}\n`);
  fs.rmSync(dir, { recursive: true, force: true });
});

test('a state database that cannot be opened is a start error naming state and the reason', async () => {
  const dir = tmpdir('gyre-admin-');
  const file = path.join(dir, 'gyre.yaml');
  fs.writeFileSync(file, `listen: 127.0.0.1:1\nstate: ${dir}/missing/dir/gyre.state\n${config(mock, dir)}`);
  const r = await runGyre(['serve', '--config', file]);
  assert.equal(r.code, 1);
  assert.equal(startErrors(r), `gyre: state: cannot open the state database ${dir}/missing/dir/gyre.state: unable to open database file\n`);
  fs.rmSync(dir, { recursive: true, force: true });
});

test('gyre audit lists the changes newest first, filters by action, and prints the page as JSON', async () => {
  const dir = tmpdir('gyre-admin-');
  const gyre = await startGyre(config(mock, dir), { env: { GYRE_MASTER_KEY: MASTER } });
  try {
    await call(gyre, 'POST', '/api/admin/providers/mock/keys', bearer(ADMIN_TOKEN), { key: NEW_KEY, weight: 3 });
    await call(gyre, 'DELETE', '/api/admin/providers/mock/keys/mock%23a1', bearer(ADMIN_TOKEN));
    const state = path.join(dir, 'gyre.db.state');
    const table = await runGyre(['audit', '--state', state, '--since', '1h']);
    assert.equal(table.code, 0, table.stderr);
    const lines = table.stdout.trimEnd().split('\n');
    assert.equal(lines.length, 3);
    assert.match(lines[0], /^TIME +ACTOR +ACTION +OBJECT +BEFORE +AFTER$/);
    assert.match(lines[1], /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d +admin_token +provider_key\.delete +mock#a1 +\{"id":"mock#a1","provider":"mock","weight":3\} +-$/);
    assert.match(lines[2], /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d +admin_token +provider_key\.create +mock#a1 +- +\{"id":"mock#a1","provider":"mock","weight":3\}$/);
    const json = await runGyre(['audit', '--state', state, '--action', 'provider_key.create', '--json']);
    assert.equal(json.code, 0, json.stderr);
    const page = JSON.parse(json.stdout);
    assert.deepEqual(page.data.map(({ time, time_us, ...e }) => e), [
      { id: 1, actor: 'admin_token', action: 'provider_key.create', object: 'mock#a1', before: null, after: { id: 'mock#a1', provider: 'mock', weight: 3 } },
    ]);
    const later = await runGyre(['audit', '--state', state, '--since', `${Math.floor(Date.now() / 1000) + 60}`]);
    assert.equal(later.stdout, 'no audit entries\n');
    const missing = await runGyre(['audit', '--state', path.join(dir, 'nope.state')]);
    assert.equal(missing.code, 1);
    assert.equal(missing.stderr, `gyre audit: no control-plane state at ${path.join(dir, 'nope.state')}: No such file or directory\n`);
  } finally {
    await gyre.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('gyre providers rotate-key adds the new key and, when gyre cannot put it in force, leaves the old keys and says why', async () => {
  const dir = tmpdir('gyre-admin-');
  const gyre = await startGyre(config(mock, dir), { env: { GYRE_MASTER_KEY: MASTER } });
  try {
    const env = { GYRE_TEST_NEW_KEY: NEW_KEY, GYRE_TEST_ADMIN: ADMIN_TOKEN };
    // The file now says what only a restart changes: the live reload that would put the key in force is refused.
    const file = path.join(gyre.dir, 'gyre.yaml');
    const good = fs.readFileSync(file, 'utf8');
    fs.writeFileSync(file, good.replace('workers: 1', 'workers: 2'));
    const r = await runGyre(['providers', 'rotate-key', '--provider', 'mock', '--key', 'env:GYRE_TEST_NEW_KEY', '--url', gyre.url, '--admin-token', 'env:GYRE_TEST_ADMIN'], { env });
    assert.equal(r.code, 1);
    assert.equal(r.stderr, `gyre providers: the new key mock#a1 is saved but not in force (saved; not in force until the next restart: ${file}: workers: changing it needs a restart (was 1, now 2)); the old keys stay\n`);
    assert.ok(!(r.stdout + r.stderr).includes(NEW_KEY));
    const literal = await runGyre(['providers', 'rotate-key', '--provider', 'mock', '--key', NEW_KEY, '--url', gyre.url, '--admin-token', 'env:GYRE_TEST_ADMIN'], { env });
    assert.equal(literal.code, 1);
    assert.equal(literal.stderr, "gyre providers: --key must be env:NAME or file:PATH (a secret on the command line would show in ps and the shell's history)\n");
    const list = await runGyre(['providers', 'list', '--url', gyre.url, '--admin-token', 'env:GYRE_TEST_ADMIN'], { env });
    assert.equal(list.code, 0, list.stderr);
    assert.equal(list.stdout, 'PROVIDER  KEY ID   SOURCE  WEIGHT  IN FORCE\nmock      mock#0   config       1  yes\nmock      mock#a1  api          1  no\n');
    // With the file as it was, a rotation puts its key in force, then takes the earlier API key away.
    fs.writeFileSync(file, good);
    const ok = await runGyre(['providers', 'rotate-key', '--provider', 'mock', '--key', 'env:GYRE_TEST_NEW_KEY', '--url', gyre.url, '--admin-token', 'env:GYRE_TEST_ADMIN'], { env });
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(ok.stdout, 'added mock#a2 to mock (in force)\nremoved mock#a1\n');
    const after = await runGyre(['providers', 'list', '--url', gyre.url, '--admin-token', 'env:GYRE_TEST_ADMIN'], { env });
    assert.equal(after.stdout, 'PROVIDER  KEY ID   SOURCE  WEIGHT  IN FORCE\nmock      mock#0   config       1  yes\nmock      mock#a2  api          1  yes\n');
    const denied = await runGyre(['providers', 'list', '--url', gyre.url], { env: { GYRE_ADMIN_TOKEN: '' } });
    assert.equal(denied.code, 1);
    assert.equal(denied.stderr, "gyre providers: GET /api/admin/providers: 401: no token was sent: the admin API needs the admin_token of this gateway, as 'Authorization: Bearer TOKEN'\n");
  } finally {
    await gyre.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('without a store or state: there is no control-plane state, and the endpoints that need it answer 404 state_not_configured', async () => {
  const dir = tmpdir('gyre-admin-');
  // The harness gives every gyre a store: the line is taken out of the file before gyre reads it ($3 is the file).
  const gyre = await startGyre(config(mock, dir), { env: { GYRE_MASTER_KEY: MASTER }, wrap: `sed -i '/^store:/d' "$3"` });
  try {
    const add = await call(gyre, 'POST', '/api/admin/providers/mock/keys', bearer(ADMIN_TOKEN), { key: NEW_KEY });
    assert.equal(add.status, 404);
    assert.deepEqual(add.json.error, {
      message: 'this gateway keeps no control-plane state: the config has neither a store (store: {sqlite: PATH}) nor state: PATH',
      type: 'invalid_request_error', param: null, code: 'state_not_configured',
    });
    const audit = await call(gyre, 'GET', '/api/audit', bearer(READ_TOKEN));
    assert.equal(audit.status, 404);
    assert.equal(audit.json.error.code, 'state_not_configured');
    assert.equal(audit.json.error.message, 'this gateway keeps no audit log: the config has neither a store (store: {sqlite: PATH}) nor state: PATH');
    // The providers and their keys in force are known without a state.
    const list = await call(gyre, 'GET', '/api/admin/providers', bearer(ADMIN_TOKEN));
    assert.equal(list.status, 200);
    assert.deepEqual(list.json.providers[0].keys, [{ id: 'mock#0', source: 'config', weight: 1, in_force: true }]);
    assert.deepEqual(fs.readdirSync(dir), []);
  } finally {
    await gyre.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('gyre providers rotate-key adds the new key, waits until it is in force, then removes every key added before it', async () => {
  // A stand-in for a gyre that reloads live: it answers the admin API as gyre does and puts the new key in force
  // only at the second look, so the command must wait before it removes anything.
  const keys = [
    { id: 'mock#0', source: 'config', weight: 1, in_force: true },
    { id: 'mock#a1', source: 'api', weight: 1, in_force: true },
    { id: 'mock#a2', source: 'api', weight: 1, in_force: true },
  ];
  let looks = 0;
  const admin = await startUpstream((req, res, body) => {
    const send = (status, json) => { res.writeHead(status, { 'content-type': 'application/json' }); res.end(JSON.stringify(json)); };
    if (req.headers.authorization !== `Bearer ${ADMIN_TOKEN}`) return send(401, { error: { message: 'no' } });
    if (req.method === 'GET' && req.url === '/api/admin/providers') {
      const added = keys.find((k) => k.id === 'mock#a3');
      if (added && ++looks >= 2) added.in_force = true;
      return send(200, { providers: [{ name: 'mock', keys }] });
    }
    if (req.method === 'POST' && req.url === '/api/admin/providers/mock/keys') {
      const b = JSON.parse(body);
      keys.push({ id: 'mock#a3', source: 'api', weight: b.weight, in_force: false });
      return send(201, { id: 'mock#a3', provider: 'mock', weight: b.weight, in_force: true });
    }
    const m = req.method === 'DELETE' && req.url.match(/^\/api\/admin\/providers\/mock\/keys\/(.+)$/);
    if (m) {
      const id = decodeURIComponent(m[1]);
      keys.splice(keys.findIndex((k) => k.id === id), 1);
      return send(200, { id, provider: 'mock', deleted: true, in_force: true });
    }
    return send(404, { error: { message: 'unknown' } });
  });
  try {
    const r = await runGyre(['providers', 'rotate-key', '--provider', 'mock', '--key', 'env:GYRE_TEST_NEW_KEY', '--weight', '3', '--url', admin.url],
      { env: { GYRE_TEST_NEW_KEY: NEW_KEY, GYRE_ADMIN_TOKEN: ADMIN_TOKEN } });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'added mock#a3 to mock (in force)\nremoved mock#a1\nremoved mock#a2\n');
    assert.equal(r.stderr, '');
    const seen = admin.requests.map((q) => `${q.method} ${q.url}`);
    assert.deepEqual(seen, [
      'GET /api/admin/providers',
      'POST /api/admin/providers/mock/keys',
      'GET /api/admin/providers',
      'GET /api/admin/providers',
      'DELETE /api/admin/providers/mock/keys/mock%23a1',
      'DELETE /api/admin/providers/mock/keys/mock%23a2',
    ]);
    assert.deepEqual(JSON.parse(admin.requests[1].body), { key: NEW_KEY, weight: 3 });
    assert.deepEqual(keys.map((k) => k.id), ['mock#0', 'mock#a3']);
    // --old names the one key to remove.
    admin.requests.length = 0;
    keys.splice(0, keys.length, { id: 'mock#0', source: 'config', weight: 1, in_force: true }, { id: 'mock#a1', source: 'api', weight: 1, in_force: true });
    looks = 0;
    const one = await runGyre(['providers', 'rotate-key', '--provider', 'mock', '--key', 'env:GYRE_TEST_NEW_KEY', '--old', 'mock#0', '--url', admin.url],
      { env: { GYRE_TEST_NEW_KEY: NEW_KEY, GYRE_ADMIN_TOKEN: ADMIN_TOKEN } });
    assert.equal(one.code, 0, one.stderr);
    assert.equal(one.stdout, 'added mock#a3 to mock (in force)\nremoved mock#0\n');
    assert.deepEqual(keys.map((k) => k.id), ['mock#a1', 'mock#a3']);
  } finally {
    await admin.close();
  }
});

test('gyre providers rotate-key against a running gyre under load: every request is answered, and then only the new key is used', async () => {
  const dir = tmpdir('gyre-admin-');
  const gyre = await startGyre(config(mock, dir).replace('workers: 1', 'workers: 2'), { env: { GYRE_MASTER_KEY: MASTER } });
  const OLD_KEY = 'sk-provider-old-api-key-77aa88bb99cc';
  try {
    await resetMock();
    const add = await call(gyre, 'POST', '/api/admin/providers/mock/keys', bearer(ADMIN_TOKEN), { key: OLD_KEY, weight: 1 });
    assert.equal(add.status, 201, add.text);
    // Four clients flat out while the key is rotated (runGyre runs the CLI as its own process, asynchronously).
    let stop = false;
    const statuses = [];
    const client = async () => {
      while (!stop) {
        const r = await postJson(`${gyre.url}/v1/chat/completions`, chatBody(), bearer(CLIENT_KEY));
        statuses.push(r.status);
      }
    };
    const clients = [client(), client(), client(), client()];
    await new Promise((r) => setTimeout(r, 300));
    const r = await runGyre(['providers', 'rotate-key', '--provider', 'mock', '--key', 'env:GYRE_TEST_NEW_KEY', '--url', gyre.url],
      { env: { GYRE_TEST_NEW_KEY: NEW_KEY, GYRE_ADMIN_TOKEN: ADMIN_TOKEN } });
    await new Promise((res) => setTimeout(res, 300));
    stop = true;
    await Promise.all(clients);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'added mock#a2 to mock (in force)\nremoved mock#a1\n');
    assert.ok(statuses.length > 20, `${statuses.length} requests`);
    assert.deepEqual([...new Set(statuses)], [200], 'no request failed during the rotation');
    // After it: the old key gets nothing, the new one and the file's share the traffic.
    const before = await keysSeen();
    await chat(gyre, 6);
    const after = await keysSeen();
    assert.equal((after[OLD_KEY] ?? 0) - (before[OLD_KEY] ?? 0), 0);
    assert.equal((after[NEW_KEY] ?? 0) - (before[NEW_KEY] ?? 0) + (after[FILE_KEY] ?? 0) - (before[FILE_KEY] ?? 0), 6);
    assert.ok((after[NEW_KEY] ?? 0) - (before[NEW_KEY] ?? 0) > 0);
  } finally {
    await gyre.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
