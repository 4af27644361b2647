// bench-offloop: a proxied request's latency while heavy /api/stats queries run (issue 12's target: its p99
// within 1 ms of its p99 without them).  One worker, so that a query run on the event loop would hold every
// proxied request behind it; traces off, so that the writer does not add its own load to either run.
//
//   node bench/store/bench-offloop.mjs --gyre build/gyre --mock build/gyre-mock --db /tmp/gyre-bench-api.db
//        [--seconds 15] [--stats '/api/stats?group_by=user']
//
// Runs wrk (bench/proxy/chat.lua, 1 thread, 8 connections) against gyre -> gyre-mock twice: alone, then while
// a client issues the stats query back to back; prints both latency distributions and the stats queries'
// own latency.  The store (--db) is bench-writer --fill's (bench/store/bench-api.mjs fills one).
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : dflt;
};
const GYRE = opt('--gyre', 'build/gyre'), MOCK = opt('--mock', 'build/gyre-mock');
const DB = opt('--db', '/tmp/gyre-bench-api.db');
const SECONDS = Number(opt('--seconds', 15));
const STATS = opt('--stats', '/api/stats?group_by=user');
const ROOT = path.resolve(new URL('../..', import.meta.url).pathname);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => resolve(p)); });
  });
}

async function ready(url) {
  for (let i = 0; i < 200; i++) {
    try { if ((await fetch(url)).ok) return; } catch { /* not yet */ }
    await sleep(50);
  }
  throw new Error(`${url} not ready`);
}

/* wrk in a child that this process waits for without blocking its own loop (the stats client runs in it). */
async function wrk(url) {
  const r = await new Promise((resolve) => {
    const p = spawn('wrk', ['-t1', '-c8', `-d${SECONDS}s`, '--latency', '-s', path.join(ROOT, 'bench/proxy/chat.lua'),
      `${url}/v1/chat/completions`]);
    let stdout = '';
    p.stdout.on('data', (d) => { stdout += d; });
    p.on('exit', () => resolve({ stdout }));
  });
  const pick = (re) => { const m = r.stdout.match(re); return m ? m[1] + m[2] : null; };
  return {
    rps: Number((r.stdout.match(/Requests\/sec:\s+([\d.]+)/) || [])[1]),
    p50: pick(/\s50%\s+([\d.]+)(us|ms|s)/), p90: pick(/\s90%\s+([\d.]+)(us|ms|s)/), p99: pick(/\s99%\s+([\d.]+)(us|ms|s)/),
    max: pick(/Latency\s+\S+\s+\S+\s+([\d.]+)(us|ms|s)/), raw: r.stdout,
  };
}

const mockPort = await freePort(), gyrePort = await freePort();
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gyre-offloop-'));
const conf = path.join(dir, 'gyre.yaml');
fs.writeFileSync(conf, `listen: 127.0.0.1:${gyrePort}
workers: 1
store: {sqlite: "${DB}", traces: false}
providers:
  - {name: mock, kind: openai, base_url: "http://127.0.0.1:${mockPort}/v1", keys: [sk-bench]}
routes:
  - name: chat
    targets: [{provider: mock, model: gpt-4o-mini}]
`);
const mock = spawn(MOCK, ['--listen', `127.0.0.1:${mockPort}`], { stdio: 'ignore' });
const gyre = spawn(GYRE, ['serve', '--config', conf], { stdio: ['ignore', 'ignore', fs.openSync(path.join(os.tmpdir(), 'gyre-offloop.log'), 'w')] });
const url = `http://127.0.0.1:${gyrePort}`;
try {
  await ready(`http://127.0.0.1:${mockPort}/_mock/stats`);
  await ready(`${url}/healthz`);
  // Warm: the page cache of the store, and the connections.
  for (let i = 0; i < 3; i++) await (await fetch(`${url}${STATS}`)).text();
  spawnSync('wrk', ['-t1', '-c8', '-d2s', '-s', path.join(ROOT, 'bench/proxy/chat.lua'), `${url}/v1/chat/completions`]);
  const alone = await wrk(url);
  let stop = false;
  const lat = [];
  const loop = (async () => {
    while (!stop) {
      const t0 = performance.now();
      let r;
      try {
        r = await fetch(`${url}${STATS}`);
        await r.text();
      } catch {
        continue; /* a kept-alive connection gyre closed while idle (before wrk's run): the next one is fresh */
      }
      if (r.status !== 200) throw new Error(`stats: ${r.status}`);
      lat.push(performance.now() - t0);
    }
  })();
  const during = await wrk(url);
  stop = true;
  await loop;
  lat.sort((a, b) => a - b);
  const out = {
    gyre: GYRE, db: DB, seconds: SECONDS, stats: STATS,
    alone: { rps: alone.rps, p50: alone.p50, p90: alone.p90, p99: alone.p99 },
    during_stats: { rps: during.rps, p50: during.p50, p90: during.p90, p99: during.p99 },
    stats_queries: { n: lat.length, p50_ms: +lat[Math.floor(lat.length / 2)].toFixed(1), max_ms: +lat[lat.length - 1].toFixed(1) },
  };
  console.log(JSON.stringify(out, null, 2));
} finally {
  // Stopped whatever happened above: SIGTERM, then SIGKILL for one still there after 5 s.
  for (const p of [gyre, mock]) {
    const exited = new Promise((resolve) => (p.exitCode !== null || p.signalCode !== null ? resolve() : p.on('exit', resolve)));
    p.kill('SIGTERM');
    const timer = setTimeout(() => p.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  }
  fs.rmSync(dir, { recursive: true, force: true });
}
