// Starts real gyre and gyre-mock processes on loopback ports for the
// integration and client tests, and stops them the way an operator would
// (SIGTERM), checking that they exit 0 and that a sanitizer build printed no
// report.  Every wait here is bounded.
import { spawn } from 'node:child_process';
import net from 'node:net';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const BUILD = process.env.GYRE_BUILD || 'build';
export const ROOT = path.resolve(new URL('../..', import.meta.url).pathname);
export const SAN = BUILD.includes('san');
// Sanitizer builds start and answer more slowly; give every wait more room.
export const SLOW = SAN ? 4 : 1;

const SAN_ENV = {
  ASAN_OPTIONS: process.env.GYRE_ASAN_EXTRA ? `detect_leaks=1:halt_on_error=1:abort_on_error=0:exitcode=86:${process.env.GYRE_ASAN_EXTRA}` : 'detect_leaks=1:halt_on_error=1:abort_on_error=0:exitcode=86',
  UBSAN_OPTIONS: 'print_stacktrace=1:halt_on_error=1:exitcode=86',
  LSAN_OPTIONS: 'exitcode=86',
};
const SAN_REPORT = /(ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:)/;

export function bin(name) {
  return path.join(ROOT, BUILD, name);
}

/** A TCP port that was free a moment ago on 127.0.0.1. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

export function tmpdir(prefix = 'gyre-test-') {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function waitReady(url, proc, ms) {
  const deadline = Date.now() + ms;
  let last = '';
  while (Date.now() < deadline) {
    if (proc.exitCode !== null || proc.signalCode !== null) {
      throw new Error(`process exited early (${proc.exitCode ?? proc.signalCode}):\n${proc.output()}`);
    }
    try {
      const r = await fetch(url, { signal: AbortSignal.timeout(1000) });
      if (r.ok) { await r.arrayBuffer(); return; }
      last = `status ${r.status}`;
    } catch (e) {
      last = e.message;
    }
    await sleep(25);
  }
  throw new Error(`not ready after ${ms} ms at ${url}: ${last}\n${proc.output()}`);
}

// Whatever a test started and did not stop (because an assertion failed
// first) is killed when the file's process exits; tests/run.sh runs node
// with --test-force-exit, so a failure never leaves the runner waiting on a
// live process or server.
const live = new Set();
function track(x) {
  live.add(x);
}
process.on('exit', () => {
  for (const y of live) if (y.kill) y.kill('SIGKILL');
});

function launch(file, args, env, cwd = undefined) {
  const proc = spawn(file, args, {
    cwd,
    env: { ...process.env, ...(SAN ? SAN_ENV : {}), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout.on('data', (d) => { out += d; });
  proc.stderr.on('data', (d) => { out += d; });
  proc.output = () => out;
  proc.exited = new Promise((resolve) => proc.on('exit', (code, signal) => { live.delete(proc); resolve({ code, signal }); }));
  track(proc);
  return proc;
}

/**
 * Sends SIGTERM and waits (bounded) for the exit.  Returns {code, signal,
 * output}; throws if the process had to be killed or a sanitizer spoke.
 */
async function terminate(proc, ms) {
  if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
  const res = await Promise.race([proc.exited, sleep(ms).then(() => null)]);
  if (res === null) {
    proc.kill('SIGKILL');
    await proc.exited;
    throw new Error(`did not exit within ${ms} ms of SIGTERM:\n${proc.output()}`);
  }
  if (SAN_REPORT.test(proc.output())) throw new Error(`sanitizer report:\n${proc.output()}`);
  return { ...res, output: proc.output() };
}

/** Starts gyre-mock with the given extra arguments. */
export async function startMock(args = [], { tls = false } = {}) {
  const port = await freePort();
  const proc = launch(bin('gyre-mock'), ['--listen', `127.0.0.1:${port}`, ...args], {});
  const scheme = tls ? 'https' : 'http';
  const url = `${scheme}://127.0.0.1:${port}`;
  if (tls) await waitTcp(port, proc, 5000 * SLOW);
  else await waitReady(`${url}/_mock/stats`, proc, 5000 * SLOW);
  return {
    port, url, proc,
    v1: `${url}/v1`,
    stats: async () => (await fetch(`${url}/_mock/stats`)).json(),
    configure: async (opts) => {
      const r = await fetch(`${url}/_mock/config`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(opts) });
      if (!r.ok) throw new Error(`mock config: ${r.status} ${await r.text()}`);
      return r.json();
    },
    stop: () => terminate(proc, 5000 * SLOW),
  };
}

async function waitTcp(port, proc, ms) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (proc.exitCode !== null) throw new Error(`exited early:\n${proc.output()}`);
    const ok = await new Promise((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => { s.destroy(); resolve(true); });
      s.on('error', () => resolve(false));
    });
    if (ok) return;
    await sleep(25);
  }
  throw new Error(`port ${port} not open after ${ms} ms:\n${proc.output()}`);
}

/**
 * Starts gyre with `config` (a YAML string; `listen` is added when absent) or
 * with no --config at all when config is null.  Returns {url, port, stop}.
 */
export async function startGyre(config, { args = [], env = {}, ready = true, wrap = null } = {}) {
  const port = await freePort();
  const dir = tmpdir();
  const cmd = ['serve'];
  if (config !== null) {
    const file = path.join(dir, 'gyre.yaml');
    let text = /^listen:/m.test(config) ? config : `listen: 127.0.0.1:${port}\n${config}`;
    // Each gyre keeps its traces in its own directory, so that gyres of one test never share a store.
    if (!/^store:/m.test(text)) text = `store: {sqlite: "${path.join(dir, 'gyre.db')}"}\n${text}`;
    fs.writeFileSync(file, text);
    cmd.push('--config', file);
  } else {
    cmd.push('--listen', `127.0.0.1:${port}`);
  }
  // The embedded default's store is ./gyre.db: run that gyre in its own directory.
  // `wrap`: shell commands run first in the process that then becomes gyre (exec), e.g. 'ulimit -n 64'.
  const argv = wrap === null ? [bin('gyre'), [...cmd, ...args]]
    : ['/bin/bash', ['-c', `${wrap}; exec "$0" "$@"`, bin('gyre'), ...cmd, ...args]];
  const proc = launch(argv[0], argv[1], { GYRE_TEST: '1', ...env }, config === null ? dir : undefined);
  const url = `http://127.0.0.1:${port}`;
  if (ready) await waitReady(`${url}/healthz`, proc, 5000 * SLOW);
  const stop = async (ms = 5000 * SLOW) => {
    try {
      return await terminate(proc, ms);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  };
  return { port, url, proc, dir, stop };
}

/** Runs a gyre subcommand to completion (bounded) and returns {code, stdout, stderr}. */
export function runGyre(args, { env = {}, ms = 10000 * SLOW } = {}) {
  return new Promise((resolve, reject) => {
    const proc = spawn(bin('gyre'), args, { env: { ...process.env, ...(SAN ? SAN_ENV : {}), ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '', stderr = '';
    proc.stdout.on('data', (d) => { stdout += d; });
    proc.stderr.on('data', (d) => { stderr += d; });
    const t = setTimeout(() => { proc.kill('SIGKILL'); reject(new Error(`gyre ${args.join(' ')} timed out`)); }, ms);
    proc.on('exit', (code) => {
      clearTimeout(t);
      if (SAN_REPORT.test(stderr)) reject(new Error(`sanitizer report:\n${stderr}`));
      else resolve({ code, stdout, stderr });
    });
  });
}

/** The minimal chat request body the tests send. */
export function chatBody(extra = {}) {
  return { model: 'chat', messages: [{ role: 'user', content: 'Say hello.' }], ...extra };
}

/** POSTs JSON and returns {status, headers, json, text}. */
export async function postJson(url, body, headers = {}) {
  const r = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
    signal: AbortSignal.timeout(15000 * SLOW),
  });
  const text = await r.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { status: r.status, headers: r.headers, json, text };
}

/** Parses an SSE body into the list of `data:` payloads (strings). */
export function sseData(text) {
  const out = [];
  for (const block of text.split(/\r?\n\r?\n/)) {
    const lines = block.split(/\r?\n/).filter((l) => l.startsWith('data:'));
    if (lines.length) out.push(lines.map((l) => l.slice(5).replace(/^ /, '')).join('\n'));
  }
  return out;
}

/**
 * A scripted upstream in this process, for behaviour that gyre-mock does not
 * stage (exact timing, watching the connection close).  `handler(req, res,
 * body)` answers; returns {url, v1, requests, close}.
 */
export async function startUpstream(handler) {
  const http = await import('node:http');
  const requests = [];
  const sockets = new Set();
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => { body += d; });
    req.on('end', () => {
      requests.push({ method: req.method, url: req.url, headers: req.headers, body });
      handler(req, res, body);
    });
  });
  server.on('connection', (s) => { sockets.add(s); s.on('close', () => sockets.delete(s)); });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${server.address().port}`;
  const handle = {
    url, v1: `${url}/v1`, requests, server,
    close: () => new Promise((r) => {
      live.delete(handle);
      for (const s of sockets) s.destroy();
      server.close(() => r());
    }),
  };
  track(handle);
  return handle;
}

/** The config for one openai provider at `base` and routes chat/embed to it. */
export function oneProviderConfig(base, { keys = ['sk-test-a'], extra = '', providerExtra = '' } = {}) {
  return `workers: 1
providers:
  - {name: primary, kind: openai, base_url: "${base}", keys: [${keys.join(', ')}]${providerExtra}}
routes:
  - name: chat
    targets: [{provider: primary, model: gpt-4o-mini, weight: 100}]
  - name: embed
    targets: [{provider: primary, model: text-embedding-3-small}]
${extra}`;
}

/** Sends raw bytes over TCP and returns everything the server sent until it closed (bounded). */
export function rawHttp(port, bytes, ms = 3000) {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => s.write(bytes));
    let out = '';
    s.on('data', (d) => { out += d; });
    const t = setTimeout(() => { s.destroy(); resolve(out); }, ms);
    s.on('close', () => { clearTimeout(t); resolve(out); });
    s.on('error', () => {});
  });
}
