// What an operator expects on day one, tried as a new user would: the access
// log (one JSON line per request, exact fields), `gyre stats --config`
// without the providers' key variables, `make install`, and `make run`
// choosing a real provider over gyre-mock when a key is set.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import fs from 'node:fs';
import { spawnSync } from 'node:child_process';
import { startGyre, startMock, runGyre, tmpdir, freePort, ROOT, BUILD, SLOW } from '../lib/harness.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const CLIENT_KEY = 'ck-dayone-0123456789abcdef';

/** The file's JSON lines once it has `n` of them (bounded wait). */
async function lines(file, n, ms = 5000 * SLOW) {
  const deadline = Date.now() + ms;
  let text = '';
  while (Date.now() < deadline) {
    text = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '';
    if (text.split('\n').filter(Boolean).length >= n) break;
    await sleep(20);
  }
  assert.ok(text.endsWith('\n'), `the access log ends in a newline: ${JSON.stringify(text.slice(-80))}`);
  return text.split('\n').filter(Boolean).map((l) => JSON.parse(l));
}

describe('the access log', () => {
  let mock, g, dir, log;
  before(async () => {
    mock = await startMock();
    dir = tmpdir('gyre-access-');
    log = path.join(dir, 'access.jsonl');
    g = await startGyre(`workers: 1
auth: {keys: [${CLIENT_KEY}], read_token: rt-dayone-0123456789abcdef}
access_log: {path: "${log}", flush_ms: 20}
providers:
  - {name: mock, kind: openai, base_url: "${mock.v1}", keys: [sk-mock-dayone]}
routes:
  - {name: chat, targets: [{provider: mock, model: gpt-4o-mini}], cache: {ttl_ms: 60000}}
`);
  });
  after(async () => {
    assert.equal((await g.stop()).code, 0);
    assert.equal((await mock.stop()).code, 0);
  });

  test('writes one JSON line per request with exact fields: ok, cache hit, stream, 404, 401, and no query value', async () => {
    // The readiness probe (/healthz) was the first request: its line comes first.
    const auth = { authorization: `Bearer ${CLIENT_KEY}`, 'content-type': 'application/json' };
    const chat = JSON.stringify({ model: 'chat', messages: [{ role: 'user', content: 'Say hello.' }] });
    const sent = [];
    async function send(urlPath, init) {
      const r = await fetch(`${g.url}${urlPath}`, init);
      const body = await r.text();
      sent.push({ r, body, bodyIn: init?.body ? Buffer.byteLength(init.body) : 0 });
    }
    await send('/v1/chat/completions', { method: 'POST', headers: { ...auth, 'x-request-id': 'req-dayone-1' }, body: chat });
    await send('/v1/chat/completions', { method: 'POST', headers: auth, body: chat });
    const stream = JSON.stringify({ model: 'chat', stream: true, messages: [{ role: 'user', content: 'Stream it.' }] });
    await send('/v1/chat/completions', { method: 'POST', headers: auth, body: stream });
    await send('/nowhere?key=sk-secret-in-query&alt=sse&flag', { headers: auth });
    await send('/v1/chat/completions', { method: 'POST', headers: { 'content-type': 'application/json' }, body: chat });
    assert.deepEqual(sent.map((s) => s.r.status), [200, 200, 200, 404, 401]);

    const all = await lines(log, 6);
    assert.equal(all.length, 6);
    const health = all[0];
    assert.equal(health.path, '/healthz');
    const got = all.slice(1);
    const text = fs.readFileSync(log, 'utf8');
    assert.ok(!text.includes('sk-secret-in-query'), 'a query value never reaches the log');
    assert.ok(!text.includes(CLIENT_KEY) && !text.includes('sk-mock-dayone'), 'no key reaches the log');

    const common = (l, i) => {
      assert.deepEqual(Object.keys(l), ['time', 'request_id', 'remote_addr', 'method', 'path', 'query_keys', 'status',
        'bytes_in', 'bytes_out', 'duration_ms', 'route', 'provider', 'model', 'key_id', 'cache', 'attempts', 'trace_id']);
      assert.match(l.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      assert.ok(Math.abs(Date.parse(l.time) - Date.now()) < 60000);
      assert.equal(l.request_id, sent[i].r.headers.get('x-request-id'));
      assert.equal(l.remote_addr, '127.0.0.1');
      assert.equal(l.status, sent[i].r.status);
      assert.equal(l.bytes_in, sent[i].bodyIn);
      assert.equal(l.bytes_out, Buffer.byteLength(sent[i].body));
      assert.equal(typeof l.duration_ms, 'number');
      assert.ok(l.duration_ms >= 0 && l.duration_ms < 30000);
      assert.equal(l.key_id, null); // the managed keys' ids come with them; config keys have none yet
    };
    got.forEach(common);
    assert.equal(got[0].request_id, 'req-dayone-1');
    const call = { method: 'POST', path: '/v1/chat/completions', query_keys: null, route: 'chat', provider: 'mock', model: 'gpt-4o-mini' };
    for (const [i, cache, attempts] of [[0, 'miss', 1], [1, 'hit', 0], [2, 'miss', 1]]) {
      const l = got[i];
      assert.deepEqual({ method: l.method, path: l.path, query_keys: l.query_keys, route: l.route, provider: l.provider, model: l.model }, call);
      assert.equal(l.cache, cache, `line ${i + 1}'s cache`);
      assert.equal(l.attempts, attempts, `line ${i + 1}'s attempts`);
      assert.equal(l.trace_id, sent[i].r.headers.get('x-gyre-trace-id'));
      assert.match(l.trace_id, /^[0-9a-f]{32}$/);
    }
    assert.deepEqual(
      { method: got[3].method, path: got[3].path, query_keys: got[3].query_keys, route: got[3].route, provider: got[3].provider,
        model: got[3].model, cache: got[3].cache, attempts: got[3].attempts, trace_id: got[3].trace_id },
      { method: 'GET', path: '/nowhere', query_keys: 'key,alt,flag', route: null, provider: null, model: null, cache: null,
        attempts: 0, trace_id: null });
    assert.deepEqual(
      { method: got[4].method, path: got[4].path, route: got[4].route, cache: got[4].cache, trace_id: got[4].trace_id },
      { method: 'POST', path: '/v1/chat/completions', route: null, cache: null, trace_id: null });
    // The log's own counters: every line so far taken, none dropped.
    const m = await (await fetch(`${g.url}/metrics`, { headers: { authorization: 'Bearer rt-dayone-0123456789abcdef' } })).text();
    const value = (name) => m.split('\n').find((l) => l.startsWith(`${name} `))?.split(' ')[1];
    assert.equal(value('gyre_access_log_lines_total'), '6');
    assert.equal(value('gyre_access_log_dropped_total'), '0');
    assert.equal(value('gyre_access_log_write_errors_total'), '0');
  });
});

describe('an access log that cannot be written', () => {
  test('is an error in check-config and at start-up, naming the path', async () => {
    const dir = tmpdir('gyre-access-bad-');
    const file = path.join(dir, 'gyre.yaml');
    const log = path.join(dir, 'no-such-dir', 'access.jsonl');
    fs.writeFileSync(file, `listen: 127.0.0.1:${await freePort()}\naccess_log: ${log}\nproviders: []\nroutes: []\n`);
    const cc = await runGyre(['check-config', file]);
    assert.equal(cc.code, 1);
    assert.equal(cc.stdout, `${file}: access_log: cannot append to ${log}: No such file or directory\n1 error\n`);
    const serve = await runGyre(['serve', '--config', file]);
    assert.equal(serve.code, 1);
    assert.ok(serve.stderr.includes(`gyre: access_log: cannot open ${log} for appending: No such file or directory\n`), serve.stderr);
    fs.rmSync(dir, { recursive: true, force: true });
  });
});

describe('a cache hit', () => {
  let mock, g, dir;
  before(async () => {
    mock = await startMock();
    dir = tmpdir('gyre-saved-');
    g = await startGyre(`workers: 1
store: {sqlite: "${path.join(dir, 'gyre.db')}", fsync_ms: 5}
providers:
  - name: mock
    kind: openai
    base_url: "${mock.v1}"
    keys: [sk-mock-saved]
    prices: {gpt-4o-mini: {input: 3, output: 7}}
routes:
  - {name: chat, targets: [{provider: mock, model: gpt-4o-mini}], cache: {ttl_ms: 60000}}
`);
  });
  after(async () => {
    await g.stop();
    assert.equal((await mock.stop()).code, 0);
  });

  async function traceOf(id) {
    const deadline = Date.now() + 10000 * SLOW;
    for (;;) {
      const r = await fetch(`${g.url}/api/traces/${id}`);
      if (r.status === 200) return r.json();
      if (Date.now() > deadline) throw new Error(`trace ${id}: ${r.status} ${await r.text()}`);
      await sleep(25);
    }
  }

  test('costs 0 in its trace, with the cost it saved beside it equal to the original call\'s cost', async () => {
    const body = JSON.stringify({ model: 'chat', messages: [{ role: 'user', content: 'What does a cache save?' }] });
    const headers = { 'content-type': 'application/json' };
    const first = await fetch(`${g.url}/v1/chat/completions`, { method: 'POST', headers, body });
    assert.equal(first.status, 200);
    await first.text();
    const second = await fetch(`${g.url}/v1/chat/completions`, { method: 'POST', headers, body });
    assert.equal(second.status, 200);
    assert.equal(second.headers.get('x-gyre-cache'), 'hit');
    await second.text();
    const made = await traceOf(first.headers.get('x-gyre-trace-id'));
    const hit = await traceOf(second.headers.get('x-gyre-trace-id'));
    assert.equal(made.cache_hit, false);
    assert.equal(made.cost_saved_usd, 0);
    const want = (made.prompt_tokens * 3 + made.completion_tokens * 7) / 1e6;
    assert.ok(made.prompt_tokens > 0 && made.completion_tokens > 0);
    assert.equal(made.cost_usd, want);
    assert.equal(hit.cache_hit, true);
    assert.equal(hit.cost_usd, 0);
    assert.equal(hit.cost_saved_usd, made.cost_usd);
    assert.equal(hit.prompt_tokens, made.prompt_tokens);
    // The stats count the hit as free and sum what it saved.
    const stats = await (await fetch(`${g.url}/api/stats`)).json();
    assert.equal(stats.total.requests, 2);
    assert.equal(stats.total.cost_usd, Math.round(want * 1e9) / 1e9);
    assert.equal(stats.total.cost_saved_usd, Math.round(want * 1e9) / 1e9);
    // The metrics' spend counts the hit as free.
    const metrics = await (await fetch(`${g.url}/metrics`)).text();
    const spent = metrics.split('\n').filter((l) => l.startsWith('gyre_cost_usd_total{'))
      .reduce((s, l) => s + Number(l.split(' ').pop()), 0);
    assert.ok(Math.abs(spent - want) < 1e-12, `gyre_cost_usd_total sums to ${spent}, the first call's ${want} alone`);
  });
});

describe('gyre stats --config', () => {
  test('reads the store of a config whose provider key variables are not set', async () => {
    const mock = await startMock();
    const dir = tmpdir('gyre-stats-env-');
    const db = path.join(dir, 'gyre.db');
    // A file: secret that exists while gyre serves and is gone when stats runs.
    fs.writeFileSync(path.join(dir, 'read-token'), 'rt-dayone-0123456789abcdef\n');
    const g = await startGyre(`workers: 1
store: {sqlite: "${db}", fsync_ms: 5}
auth: {keys: [env:DAYONE_CLIENT_KEY], read_token: file:${path.join(dir, 'read-token')}}
providers:
  - {name: mock, kind: openai, base_url: "${mock.v1}", keys: [env:DAYONE_PROVIDER_KEY]}
routes:
  - {name: chat, targets: [{provider: mock, model: gpt-4o-mini}]}
`, { env: { DAYONE_CLIENT_KEY: CLIENT_KEY, DAYONE_PROVIDER_KEY: 'sk-provider-dayone' } });
    const r = await fetch(`${g.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${CLIENT_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'chat', messages: [{ role: 'user', content: 'count me' }] }),
    });
    assert.equal(r.status, 200);
    await r.text();
    const config = path.join(dir, 'gyre.yaml');
    fs.copyFileSync(path.join(g.dir, 'gyre.yaml'), config);
    assert.equal((await g.stop()).code, 0);
    assert.equal((await mock.stop()).code, 0);
    fs.rmSync(path.join(dir, 'read-token'));
    const env = { DAYONE_CLIENT_KEY: '', DAYONE_PROVIDER_KEY: '' };
    const cc = await runGyre(['check-config', config], { env });
    assert.equal(cc.code, 1, 'check-config still needs every secret');
    const s = await runGyre(['stats', '--config', config, '--json'], { env });
    assert.equal(s.stderr, '');
    assert.equal(s.code, 0);
    assert.equal(JSON.parse(s.stdout).total.requests, 1);
  });
});

describe('make install', () => {
  test('puts gyre, gyre-mock, the hardened unit, the example config and the docs under DESTDIR and PREFIX', () => {
    const dest = tmpdir('gyre-install-');
    const san = BUILD.includes('san') ? ['SAN=1'] : [];
    const mk = (args) => spawnSync('make', ['-s', `BUILD=${BUILD}`, ...san, ...args], { cwd: ROOT, encoding: 'utf8' });
    let r = mk(['install', `DESTDIR=${dest}`, 'PREFIX=/usr']);
    assert.equal(r.status, 0, r.stderr);
    const files = [];
    const walk = (d) => {
      for (const e of fs.readdirSync(d, { withFileTypes: true })) {
        const p = path.join(d, e.name);
        if (e.isDirectory()) walk(p);
        else files.push(path.relative(dest, p));
      }
    };
    walk(dest);
    const docs = fs.readdirSync(path.join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `usr/share/doc/gyre/${f}`);
    assert.deepEqual(files.sort(), ['etc/gyre/gyre.yaml', 'usr/bin/gyre', 'usr/bin/gyre-mock',
      'usr/lib/systemd/system/gyre.service', 'usr/share/doc/gyre/LICENSE', 'usr/share/doc/gyre/README.md',
      'usr/share/doc/gyre/gyre.example.yaml', ...docs].sort());
    assert.equal(fs.statSync(path.join(dest, 'usr/bin/gyre')).mode & 0o777, 0o755);
    const unit = fs.readFileSync(path.join(dest, 'usr/lib/systemd/system/gyre.service'), 'utf8');
    assert.match(unit, /^ExecStart=\/usr\/bin\/gyre serve --config \/etc\/gyre\/gyre.yaml$/m);
    assert.match(unit, /^ExecReload=\/bin\/kill -HUP \$MAINPID$/m);
    for (const line of ['DynamicUser=yes', 'NoNewPrivileges=yes', 'ProtectSystem=strict', 'ProtectHome=yes', 'PrivateTmp=yes',
      'StateDirectory=gyre', 'CapabilityBoundingSet=', 'RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX',
      'SystemCallFilter=@system-service', 'MemoryDenyWriteExecute=yes', 'LockPersonality=yes', 'LimitNOFILE=65536']) {
      assert.ok(unit.split('\n').includes(line), `the unit has ${line}`);
    }
    assert.ok(!unit.includes('/usr/local'), 'every path follows PREFIX');
    assert.ok(!unit.includes(dest), 'DESTDIR is never written into a file');
    // The installed gyre runs, and the example config reads (its store is what is missing here, not a key).
    const v = spawnSync(path.join(dest, 'usr/bin/gyre'), ['stats', '--config', path.join(dest, 'etc/gyre/gyre.yaml')],
      { encoding: 'utf8', env: { ...process.env, OPENAI_API_KEY: '' } });
    assert.equal(v.stderr, 'gyre stats: no trace store at /var/lib/gyre/gyre.db: start gyre with store: {sqlite: /var/lib/gyre/gyre.db}, or pass --db PATH\n');
    // A second install keeps the operator's config and puts the example beside it.
    fs.writeFileSync(path.join(dest, 'etc/gyre/gyre.yaml'), 'listen: 127.0.0.1:9999\n');
    r = mk(['install', `DESTDIR=${dest}`, 'PREFIX=/usr']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(fs.readFileSync(path.join(dest, 'etc/gyre/gyre.yaml'), 'utf8'), 'listen: 127.0.0.1:9999\n');
    assert.ok(fs.existsSync(path.join(dest, 'etc/gyre/gyre.yaml.example')));
    r = mk(['uninstall', `DESTDIR=${dest}`, 'PREFIX=/usr']);
    assert.equal(r.status, 0, r.stderr);
    files.length = 0;
    walk(dest);
    assert.deepEqual(files, ['etc/gyre/gyre.yaml']);
    fs.rmSync(dest, { recursive: true, force: true });
  });

  test('installs a unit that systemd-analyze verify accepts, when systemd-analyze is there', () => {
    const prefix = tmpdir('gyre-prefix-');
    const san = BUILD.includes('san') ? ['SAN=1'] : [];
    const r = spawnSync('make', ['-s', `BUILD=${BUILD}`, ...san, 'install', `PREFIX=${prefix}`], { cwd: ROOT, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const unit = path.join(prefix, 'lib/systemd/system/gyre.service');
    assert.ok(fs.readFileSync(unit, 'utf8').includes(`ExecStart=${prefix}/bin/gyre serve --config ${prefix}/etc/gyre/gyre.yaml`));
    const has = spawnSync('systemd-analyze', ['--version']).status === 0;
    if (has) {
      const v = spawnSync('systemd-analyze', ['verify', unit], { encoding: 'utf8' });
      assert.equal(v.status, 0, v.stderr);
      assert.equal(v.stderr, '');
    }
    fs.rmSync(prefix, { recursive: true, force: true });
  });
});

describe('make run', () => {
  // scripts/run.sh with stand-ins for gyre and gyre-mock that record how they were started.
  function run(env) {
    const fake = tmpdir('gyre-run-');
    const log = path.join(fake, 'log');
    fs.writeFileSync(path.join(fake, 'gyre'), `#!/bin/sh\necho "gyre $* GYRE_MOCK_URL=\${GYRE_MOCK_URL:-}" >>${log}\n`, { mode: 0o755 });
    fs.writeFileSync(path.join(fake, 'gyre-mock'), `#!/bin/sh\necho "gyre-mock $*" >>${log}\n`, { mode: 0o755 });
    const clean = { ...process.env };
    for (const k of Object.keys(clean)) if (k.endsWith('_API_KEY') || k === 'GYRE_MOCK_URL') delete clean[k];
    const r = spawnSync('bash', ['scripts/run.sh'], { cwd: ROOT, encoding: 'utf8', timeout: 20000,
      env: { ...clean, GYRE_BUILD: fake, GYRE_MOCK_PORT: '1', ...env } });
    assert.equal(r.status, 0, r.stderr);
    const text = fs.readFileSync(log, 'utf8');
    fs.rmSync(fake, { recursive: true, force: true });
    return text;
  }

  for (const key of ['ANTHROPIC_API_KEY', 'GEMINI_API_KEY', 'OPENAI_API_KEY']) {
    test(`with ${key} set starts gyre alone, with no gyre-mock and no GYRE_MOCK_URL`, () => {
      assert.equal(run({ [key]: 'sk-real-looking' }), 'gyre serve GYRE_MOCK_URL=\n');
    });
  }

  test('with no provider key starts gyre-mock and points gyre at it', () => {
    assert.equal(run({}), 'gyre-mock --listen 127.0.0.1:1\ngyre serve GYRE_MOCK_URL=http://127.0.0.1:1/v1\n');
  });
});
