// Nothing lost (issue 5, point 4), through a whole gyre: traces survive a
// kill -9 except at most the last 50 ms of answers, and a store that is
// locked for seconds makes traces spill to the spool and come back exactly
// once, both when the lock goes away and when gyre is stopped (SIGTERM)
// while they are still spooled.
//
// The store is locked from outside with the sqlite3 command-line shell
// (Debian's sqlite3 package), which holds `BEGIN EXCLUSIVE` on the same
// database file: that is what another process writing the file looks like.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import http from 'node:http';
import path from 'node:path';
import fs from 'node:fs';
import { startGyre, startMock, tmpdir, SLOW } from '../lib/harness.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const dirs = [];
let mock;

after(async () => {
  if (mock) assert.equal((await mock.stop()).code, 0);
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

async function theMock() {
  if (!mock) mock = await startMock();
  return mock;
}

function config(db, m, workers = 2) {
  return `workers: ${workers}
store: {sqlite: "${db}", traces: true}
providers:
  - {name: mock, kind: openai, base_url: "${m.v1}", keys: [sk-durability]}
routes:
  - name: chat
    targets: [{provider: mock, model: gpt-4o-mini}]
`;
}

// A prompt of about 1 KB, so that every trace carries bodies worth writing.
const BODY = JSON.stringify({
  model: 'chat',
  messages: [{ role: 'user', content: `Durability check. ${'lorem ipsum dolor sit amet '.repeat(36)}` }],
});

/**
 * A client: `conc` requests at a time, one after the other on keep-alive
 * connections, until stop() is called or `ms` have passed.  Each answer is
 * recorded as {id, at}: its x-gyre-trace-id and performance.now() when its
 * last byte arrived.  Requests that fail (the gyre was killed) are counted.
 */
function client(url, { conc = 8, ms = 3000 } = {}) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: conc });
  const answers = [];
  let stopped = false, failed = 0, non200 = 0;
  const one = () => new Promise((resolve) => {
    const req = http.request(`${url}/v1/chat/completions`, {
      method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(BODY) },
    }, (res) => {
      res.on('data', () => {});
      res.on('end', () => {
        const at = performance.now();
        if (res.statusCode === 200) answers.push({ id: res.headers['x-gyre-trace-id'], at });
        else non200++;
        resolve();
      });
      res.on('error', () => { failed++; resolve(); });
    });
    req.on('error', () => { failed++; resolve(); });
    req.end(BODY);
  });
  const deadline = performance.now() + ms;
  const loops = Array.from({ length: conc }, async () => {
    while (!stopped && performance.now() < deadline) await one();
  });
  const done = Promise.all(loops).then(() => { agent.destroy(); return { answers, failed, non200 }; });
  return { answers, stop: () => { stopped = true; return done; }, done };
}

/** Every trace_id in the store, read back through /api/traces page by page. */
async function storedIds(url) {
  const ids = [];
  let cursor = null;
  for (;;) {
    const q = `limit=1000${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
    const r = await fetch(`${url}/api/traces?${q}`, { signal: AbortSignal.timeout(10000 * SLOW) });
    assert.equal(r.status, 200, `GET /api/traces?${q}: ${r.status}`);
    const page = await r.json();
    for (const t of page.data) ids.push(t.trace_id);
    if (!page.next_cursor) return ids;
    cursor = page.next_cursor;
  }
}

function spoolSize(db) {
  try { return fs.statSync(`${db}.spool`).size; } catch { return -1; }
}

// The spool is back to its 8-byte header when everything in it was replayed.
async function waitSpoolEmpty(db, ms) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (spoolSize(db) === 8) return;
    await sleep(20);
  }
  assert.fail(`the spool ${db}.spool still holds ${spoolSize(db)} bytes after ${ms} ms`);
}

// The store holds `want` ids (the writer stores them a few ms after the answer): wait, bounded.
async function waitStored(url, want, ms) {
  const deadline = Date.now() + ms;
  let ids = [];
  while (Date.now() < deadline) {
    ids = await storedIds(url);
    const have = new Set(ids);
    if (want.every((id) => have.has(id))) return ids;
    await sleep(100);
  }
  return ids;
}

async function metric(url, name) {
  const r = await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(5000 * SLOW) });
  if (r.status !== 200) return null;
  const m = new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(await r.text());
  return m ? Number(m[1]) : null;
}

function haveSqlite3() {
  try { execFileSync('sqlite3', ['-version'], { stdio: 'ignore' }); return true; } catch { return false; }
}

/**
 * Another process holding the database's write lock: the sqlite3 shell in
 * `BEGIN EXCLUSIVE`.  Resolves once the lock is held; release() commits and
 * waits for the shell to exit.
 */
async function lockStore(db) {
  const sh = spawn('sqlite3', ['-batch', db], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  sh.stdout.on('data', (d) => { out += d; });
  sh.stderr.on('data', (d) => { out += d; });
  const exited = new Promise((r) => sh.on('exit', (code) => r(code)));
  sh.stdin.write('PRAGMA busy_timeout = 10000;\nBEGIN EXCLUSIVE;\nSELECT \'locked\';\n');
  const deadline = Date.now() + 10000 * SLOW;
  while (!out.includes('locked')) {
    if (Date.now() > deadline || sh.exitCode !== null) assert.fail(`sqlite3 could not lock ${db}: ${out}`);
    await sleep(10);
  }
  return {
    release: async () => {
      sh.stdin.end('COMMIT;\n.quit\n');
      assert.equal(await exited, 0, `sqlite3: ${out}`);
    },
  };
}

test('after kill -9, every trace whose answer arrived more than 50 ms before the kill is in the store', async (t) => {
  const m = await theMock();
  const dir = tmpdir('gyre-durability-');
  dirs.push(dir);
  const db = path.join(dir, 'gyre.db');
  const g1 = await startGyre(config(db, m));
  dirs.push(g1.dir);

  const c = client(g1.url, { conc: 8, ms: 10000 });
  await sleep(2000);
  const killAt = performance.now();
  g1.proc.kill('SIGKILL');
  const { answers } = await c.stop();
  assert.equal((await g1.proc.exited).signal, 'SIGKILL');
  const must = answers.filter((a) => a.at < killAt - 50).map((a) => a.id);
  const last50 = answers.filter((a) => a.at >= killAt - 50).map((a) => a.id);
  assert.ok(must.length >= 500, `only ${must.length} answers before the kill: the client did not load gyre`);
  assert.equal(new Set(answers.map((a) => a.id)).size, answers.length, 'x-gyre-trace-id repeated');

  // Same store, same spool: what the killed gyre left in the spool is replayed.
  const g2 = await startGyre(config(db, m));
  await waitSpoolEmpty(db, 10000 * SLOW);
  const ids = await waitStored(g2.url, must, 5000 * SLOW);
  const stored = new Set(ids);
  assert.equal(stored.size, ids.length, 'a trace_id is stored twice');
  const lost = must.filter((id) => !stored.has(id));
  const lostLast = last50.filter((id) => !stored.has(id));
  const oldest = answers.filter((a) => !stored.has(a.id)).reduce((x, a) => Math.max(x, killAt - a.at), 0);
  t.diagnostic(`${answers.length} answers, ${must.length} more than 50 ms before the kill, ${stored.size} traces stored; ` +
    `of the ${last50.length} answers of the last 50 ms, ${lostLast.length} missing; the oldest missing answer arrived ` +
    `${oldest.toFixed(1)} ms before the kill`);
  assert.deepEqual(lost, [], `${lost.length} of the ${must.length} traces answered more than 50 ms before the kill are missing`);
  // Nothing stored that no client was answered for, beyond the calls cut short by the kill.
  assert.ok(stored.size <= answers.length + 8 * 2, `${stored.size} stored for ${answers.length} answers`);
  assert.equal((await g2.stop()).code, 0);
});

test('while another process holds the store locked, traces spill to the spool and arrive exactly once when it is released', async (t) => {
  assert.ok(haveSqlite3(), 'the sqlite3 shell is missing (scripts/install-deps.sh installs Debian\'s sqlite3)');
  const m = await theMock();
  const dir = tmpdir('gyre-overload-');
  dirs.push(dir);
  const db = path.join(dir, 'gyre.db');
  const g = await startGyre(config(db, m));
  // The schema exists before the lock is taken.
  const warm = client(g.url, { conc: 1, ms: 200 });
  const w = await warm.done;

  const lock = await lockStore(db);
  const c = client(g.url, { conc: 8, ms: 6000 });
  // Long enough for the writer to give up on the lock (the store's busy timeout) and spool.
  let spooled = 0;
  const deadline = Date.now() + 15000 * SLOW;
  while (Date.now() < deadline && (spooled = spoolSize(db)) <= 8) await sleep(50);
  const during = await c.stop();
  const spooledAtPeak = spoolSize(db);
  await lock.release();
  assert.ok(spooled > 8, 'nothing reached the spool while the store was locked');

  await waitSpoolEmpty(db, 20000 * SLOW);
  const want = [...w.answers, ...during.answers].map((a) => a.id);
  const ids = await waitStored(g.url, want, 10000 * SLOW);
  t.diagnostic(`${during.answers.length} answers while locked; spool reached ${spooledAtPeak} bytes; ${ids.length} traces stored`);
  assert.equal(during.non200, 0);
  assert.equal(new Set(ids).size, ids.length, 'a trace_id is stored twice');
  const have = new Set(ids);
  assert.deepEqual(want.filter((id) => !have.has(id)), [], 'traces missing after the lock was released');
  assert.equal(ids.length, want.length);
  assert.equal(await metric(g.url, 'gyre_traces_dropped_total'), 0);
  assert.ok(await metric(g.url, 'gyre_traces_spooled_total') > 0, 'the writer says it spooled nothing');
  assert.equal(await metric(g.url, 'gyre_traces_replayed_total'), await metric(g.url, 'gyre_traces_spooled_total'));
  assert.equal((await g.stop()).code, 0);
});

test('SIGTERM while traces are spooled behind a locked store drains every one of them into the store', async (t) => {
  assert.ok(haveSqlite3(), 'the sqlite3 shell is missing (scripts/install-deps.sh installs Debian\'s sqlite3)');
  const m = await theMock();
  const dir = tmpdir('gyre-drain-');
  dirs.push(dir);
  const db = path.join(dir, 'gyre.db');
  const g = await startGyre(config(db, m));
  const w = await client(g.url, { conc: 1, ms: 200 }).done;

  const lock = await lockStore(db);
  const c = client(g.url, { conc: 8, ms: 6000 });
  const deadline = Date.now() + 15000 * SLOW;
  while (Date.now() < deadline && spoolSize(db) <= 8) await sleep(50);
  const during = await c.stop();
  assert.ok(spoolSize(db) > 8, 'nothing reached the spool while the store was locked');
  // SIGTERM with the store still locked; the lock goes away a little later, within the drain's patience.
  // stop() sends a second SIGTERM, as an impatient operator would: gyre keeps draining.
  g.proc.kill('SIGTERM');
  await sleep(300);
  await lock.release();
  const res = await g.stop(30000 * SLOW);
  assert.equal(res.code, 0, res.output);
  assert.equal(spoolSize(db), 8, 'the spool was not emptied by the drain');

  const want = [...w.answers, ...during.answers].map((a) => a.id);
  const sql = execFileSync('sqlite3', ['-batch', db, 'SELECT trace_id FROM traces;'], { encoding: 'utf8', maxBuffer: 256 << 20 });
  const ids = sql.split('\n').filter(Boolean);
  t.diagnostic(`${during.answers.length} answers while locked; ${ids.length} traces stored after the drain`);
  assert.equal(new Set(ids).size, ids.length);
  const have = new Set(ids);
  assert.deepEqual(want.filter((id) => !have.has(id)), [], 'traces missing after the drain');
  assert.equal(ids.length, want.length);
});
