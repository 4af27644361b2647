// The routing benchmark: what gyre's failover, circuit breakers and response
// cache cost or save, each figure measured against a route that goes straight
// to a healthy upstream in the same run.  See docs/bench.md ("The routing
// benchmark").
//
//   node bench/routing/bench.mjs [--json] [--append-latest]
//   env: BENCH_ROUTING_CYCLES (10000): latency requests per route per round
//        BENCH_ROUTING_ROUNDS (3)
//        BENCH_ROUTING_SECONDS (5): each wrk run of the cache comparison
//        BENCH_CONNS (32): wrk connections for the cache runs, and the flaky
//        run's concurrency
//        BENCH_ROUTING_REQUESTS (20000): requests of the flaky-upstreams run
//        BENCH_WORKERS (1) BENCH_QUIET_WAIT (20) BENCH_RETRIES (2): as in
//        bench/proxy/bench.mjs
//        BENCH_BUILD (build): where gyre and gyre-mock are taken from
//   --append-latest: also append the routing table to bench/results/latest.md
//   (bench/run.sh passes it when the proxy benchmark has just written that file)
//
// Latency is measured one request at a time, route after route in turn (one
// keep-alive connection per route, the order rotating every cycle), so that
// every route sees the machine in the same moments: on a shared machine the
// spread between separate timed runs is larger than the few tens of
// microseconds a failover costs.  Throughput (the cache) is measured with wrk,
// as the proxy benchmark does.
//
// The upstreams: one nginx (one worker, loopback) with a server per behaviour
// — a fixed chat completion (the healthy target and fallback), the same on a
// port whose requests are counted (the cache routes', to show that hits never
// reach it), a 429 and a 500, both counted — a port where nothing listens
// (connection refused), and two gyre-mocks staging `--fault 500 --fault-rate
// 0.5`.  Counting is an access log of one byte and a newline per request.
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

const ROOT = path.resolve(new URL('../..', import.meta.url).pathname);
const env = process.env;
const SECONDS = Number(env.BENCH_ROUTING_SECONDS ?? 5);
const ROUNDS = Number(env.BENCH_ROUTING_ROUNDS ?? 3);
const CYCLES = Number(env.BENCH_ROUTING_CYCLES ?? 10000);
const CONNS = Number(env.BENCH_CONNS ?? 32);
const REQUESTS = Number(env.BENCH_ROUTING_REQUESTS ?? 20000);
const WORKERS = Number(env.BENCH_WORKERS ?? 1);
const QUIET_WAIT = Number(env.BENCH_QUIET_WAIT ?? 20);
const RETRIES = Number(env.BENCH_RETRIES ?? 2);
const BUILD = env.BENCH_BUILD ?? 'build';
const GYRE = path.join(ROOT, BUILD, 'gyre');
const MOCK = path.join(ROOT, BUILD, 'gyre-mock');
const KNOBS = { BENCH_ROUTING_CYCLES: '10000', BENCH_ROUTING_ROUNDS: '3', BENCH_ROUTING_SECONDS: '5', BENCH_CONNS: '32',
  BENCH_ROUTING_REQUESTS: '20000', BENCH_WORKERS: '1', BENCH_QUIET_WAIT: '20', BENCH_RETRIES: '2', BENCH_BUILD: 'build' };
// bench/run.sh sets BENCH_VIA=make so that the command reads `make bench`.
const COMMAND = [...Object.entries(KNOBS).filter(([k, d]) => env[k] !== undefined && env[k] !== d).map(([k]) => `${k}=${env[k]}`),
  env.BENCH_VIA === 'make' ? 'make bench' : 'node bench/routing/bench.mjs'].join(' ');
const JSON_OUT = process.argv.includes('--json');
const APPEND_LATEST = process.argv.includes('--append-latest');
const DISTURBED = 0.05; // other processes' share of the CPUs that makes a run disturbed
const FAILOVER_P99_TARGET_US = 5000;
const CACHE_TARGET = 1.5;
// Bounds: each request of the flaky run, and that run; a latency lane's
// socket idle (an answer that does not come), and a latency round.
const REQUEST_TIMEOUT_MS = 10000;
const FLAKY_DEADLINE_MS = 120000;
const LANE_IDLE_MS = 5000;
const ROUND_DEADLINE_MS = 120000;

const log = (...a) => console.error('bench routing:', ...a);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
fs.mkdirSync(path.join(ROOT, 'bench', '.work'), { recursive: true });
const work = fs.mkdtempSync(path.join(ROOT, 'bench', '.work', 'routing-'));
const children = [];

function cleanup() {
  // Each server runs in its own process group, so nginx's worker dies with its master.
  for (const c of children) { try { process.kill(-c.pid, 'SIGKILL'); } catch { try { c.kill('SIGKILL'); } catch { /* gone */ } } }
  fs.rmSync(work, { recursive: true, force: true });
}
process.on('exit', cleanup);
process.on('SIGINT', () => process.exit(130));
process.on('SIGTERM', () => process.exit(143));

function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}

function start(name, cmd, args) {
  const out = fs.openSync(path.join(work, `${name}.log`), 'a');
  const p = spawn(cmd, args, { stdio: ['ignore', out, out], detached: true });
  children.push(p);
  return p;
}

function childPids(pid) {
  try { return fs.readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number); } catch { return []; }
}

// The body bench/proxy/chat.lua sends; "model" is the route's name.
const chatBody = (model) => JSON.stringify({ model, messages: [{ role: 'system', content: 'You are terse.' },
  { role: 'user', content: 'Say hello to the benchmark, please, in one short line of text.' }], max_tokens: 16, temperature: 0.2 });

// One request with node's http client: status, the x-gyre-* headers, body.
const agent = new http.Agent({ keepAlive: true, maxSockets: CONNS });
function post(port, body, ms = REQUEST_TIMEOUT_MS) {
  return new Promise((resolve) => {
    const req = http.request({ host: '127.0.0.1', port, path: '/v1/chat/completions', method: 'POST', agent,
      headers: { 'content-type': 'application/json', authorization: 'Bearer sk-bench', 'content-length': Buffer.byteLength(body) } }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString() }));
      res.on('error', (e) => resolve({ status: 0, error: e.code ?? e.message }));
    });
    req.setTimeout(ms, () => req.destroy(new Error('timeout')));
    req.on('error', (e) => resolve({ status: 0, error: e.code ?? e.message }));
    req.end(body);
  });
}

async function waitUp(check, what, ms = 15000) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    try { if (await check()) return; } catch { /* not up yet */ }
    await sleep(100);
  }
  throw new Error(`${what} did not come up within ${ms} ms (logs in ${work})`);
}

const UPSTREAM_BODY = JSON.stringify({
  id: 'chatcmpl-bench', object: 'chat.completion', created: 1700000000, model: 'gpt-4o-mini',
  choices: [{ index: 0, message: { role: 'assistant', content: 'Hello, benchmark!' }, finish_reason: 'stop' }],
  usage: { prompt_tokens: 24, completion_tokens: 4, total_tokens: 28 },
});
// OpenAI's error shapes.  The 429 carries no Retry-After on purpose: it shows
// gyre's own default rest of a rate-limited key (1 s).
const ERR_429 = JSON.stringify({ error: { message: 'Rate limit reached for requests (bench).', type: 'requests', param: null, code: 'rate_limit_exceeded' } });
const ERR_500 = JSON.stringify({ error: { message: 'The server had an error while processing your request (bench).', type: 'server_error', param: null, code: null } });

function upstreamConf(p) {
  const server = (port, status, body, counted) => `  server {
    listen 127.0.0.1:${port};
    ${counted ? `access_log ${work}/hits-${counted}.log hit;` : ''}
    location / { default_type application/json; return ${status} '${body}'; }
  }`;
  return `worker_processes 1;
daemon off;
pid ${work}/up.pid;
error_log ${work}/up.err warn;
events { worker_connections 8192; }
http {
  access_log off;
  log_format hit '1';
  client_body_temp_path ${work}/up-body;
  keepalive_requests 10000000;
${server(p.ok, 200, UPSTREAM_BODY)}
${server(p.okCounted, 200, UPSTREAM_BODY, 'cache')}
${server(p.s429, 429, ERR_429, '429')}
${server(p.s500, 500, ERR_500, '500')}
}
`;
}
// Requests a counted nginx server has answered so far ("1\n" each).
function hits(name) { try { return fs.statSync(path.join(work, `hits-${name}.log`)).size / 2; } catch { return 0; } }

function gyreConf(p) {
  const url = (port) => `"http://127.0.0.1:${port}/v1"`;
  return `listen: 127.0.0.1:${p.gyre}
workers: ${WORKERS}
providers:
  - {name: ok, kind: openai, base_url: ${url(p.ok)}, keys: [sk-bench]}
  - {name: okc, kind: openai, base_url: ${url(p.okCounted)}, keys: [sk-bench]}
  - {name: p429, kind: openai, base_url: ${url(p.s429)}, keys: [sk-bench], breaker: off}
  - {name: p500, kind: openai, base_url: ${url(p.s500)}, keys: [sk-bench], breaker: off}
  - {name: refused, kind: openai, base_url: ${url(p.refused)}, keys: [sk-bench], breaker: off}
  - {name: down, kind: openai, base_url: ${url(p.refused)}, keys: [sk-bench]}
  - {name: flaky1, kind: openai, base_url: ${url(p.flaky1)}, keys: [sk-bench], breaker: off}
  - {name: flaky2, kind: openai, base_url: ${url(p.flaky2)}, keys: [sk-bench], breaker: off}
routes:
  - {name: direct, targets: [{provider: ok, model: gpt-4o-mini}]}
  - {name: withfb, targets: [{provider: ok, model: gpt-4o-mini}], fallbacks: [{provider: ok, model: gpt-4o-mini}]}
  - {name: f429, targets: [{provider: p429, model: gpt-4o-mini}], fallbacks: [{provider: ok, model: gpt-4o-mini}]}
  - {name: f500, targets: [{provider: p500, model: gpt-4o-mini}], fallbacks: [{provider: ok, model: gpt-4o-mini}]}
  - {name: frefused, targets: [{provider: refused, model: gpt-4o-mini}], fallbacks: [{provider: ok, model: gpt-4o-mini}]}
  - {name: open, targets: [{provider: down, model: gpt-4o-mini}], fallbacks: [{provider: ok, model: gpt-4o-mini}]}
  - name: flaky
    targets: [{provider: flaky1, model: gpt-4o-mini}, {provider: flaky2, model: gpt-4o-mini}]
    fallbacks: [{provider: ok, model: gpt-4o-mini}]
  - {name: cached, targets: [{provider: okc, model: gpt-4o-mini}], cache: true}
  - {name: uncached, targets: [{provider: okc, model: gpt-4o-mini}]}
`;
}

// CPU accounting, as in bench/proxy/bench.mjs.
const TICK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
function ticksOf(pids) {
  let ticks = 0;
  for (const pid of pids) {
    try { const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' '); ticks += Number(f[11]) + Number(f[12]); } catch { /* gone */ }
  }
  return ticks;
}
function selfTicks() {
  const f = fs.readFileSync('/proc/self/stat', 'utf8').split(') ')[1].split(' ');
  return Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]);
}
function cpuTimes() { return fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number); }
async function busyShare(ms = 1000) {
  const a = cpuTimes(); await sleep(ms); const b = cpuTimes();
  const d = b.map((x, i) => x - a[i]), total = d.reduce((x, y) => x + y, 0);
  return total > 0 ? Math.round((1 - (d[3] + (d[4] ?? 0)) / total) * 100) / 100 : 0;
}

function toMicros(v) {
  const m = /^([\d.]+)(us|ms|s)$/.exec(v ?? '');
  if (!m) return NaN;
  return Math.round(Number(m[1]) * (m[2] === 'us' ? 1 : m[2] === 'ms' ? 1000 : 1e6));
}

function wrk(port, route, conns, seconds, gyrePid) {
  const t0 = ticksOf([gyrePid]);
  const out = execFileSync('wrk', ['-t1', `-c${conns}`, `-d${seconds}s`, '--latency', '-s', path.join(ROOT, 'bench/proxy/chat.lua'),
    `http://127.0.0.1:${port}/v1/chat/completions`], { env: { ...env, BENCH_MODEL: route }, encoding: 'utf8', timeout: (seconds + 30) * 1000 });
  const cpu = (ticksOf([gyrePid]) - t0) / TICK;
  const num = (re) => { const m = re.exec(out); return m ? m[1] : null; };
  const total = Number(num(/(\d+) requests in/));
  const non2xx = Number(num(/Non-2xx or 3xx responses:\s+(\d+)/) ?? 0);
  const socketErrors = (/Socket errors: (.*)/.exec(out)?.[1].match(/\d+/g) ?? []).reduce((a, x) => a + Number(x), 0);
  return {
    requests: total, rps: Number(num(/Requests\/sec:\s+([\d.]+)/)),
    p50: toMicros(num(/\n\s+50%\s+(\S+)/)), p90: toMicros(num(/\n\s+90%\s+(\S+)/)), p99: toMicros(num(/\n\s+99%\s+(\S+)/)),
    gyre_cpu_us_per_req: total > 0 ? (cpu * 1e6) / total : NaN, non2xx, socket_errors: socketErrors, errors: non2xx + socketErrors,
  };
}

const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor((s.length - 1) / 2)]; };

// The flaky run: exactly REQUESTS requests, CONNS at a time, every status
// counted, with who answered and after how many attempts.
async function flakyRun(port, mocks) {
  for (const m of mocks) await fetch(`http://127.0.0.1:${m}/_mock/reset`, { method: 'POST', signal: AbortSignal.timeout(2000) });
  const body = chatBody('flaky');
  const statuses = {}, providers = {}, attempts = {};
  let sent = 0, done = 0, wrong = 0;
  const deadline = Date.now() + FLAKY_DEADLINE_MS;
  const t0 = process.hrtime.bigint();
  const lane = async () => {
    while (sent < REQUESTS && Date.now() < deadline) {
      sent++;
      const r = await post(port, body);
      done++;
      const k = r.status === 0 ? `error ${r.error}` : String(r.status);
      statuses[k] = (statuses[k] ?? 0) + 1;
      if (r.status === 200) {
        let content;
        try { content = JSON.parse(r.body).choices[0].message.content; } catch { /* not a completion */ }
        if (!/^(Hello, benchmark!|Mock reply to: )/.test(content ?? '')) wrong++;
      }
      const pv = r.headers?.['x-gyre-provider'] ?? '-', at = r.headers?.['x-gyre-attempts'] ?? '-';
      providers[pv] = (providers[pv] ?? 0) + 1;
      attempts[at] = (attempts[at] ?? 0) + 1;
    }
  };
  await Promise.all(Array.from({ length: CONNS }, lane));
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const upstream = {};
  for (const [i, m] of mocks.entries()) {
    const s = await (await fetch(`http://127.0.0.1:${m}/_mock/stats`, { signal: AbortSignal.timeout(2000) })).json();
    upstream[`flaky${i + 1}`] = s.requests;
  }
  return { requests: REQUESTS, answered: done, ok: statuses['200'] ?? 0, wrong_body: wrong, statuses, providers, attempts,
    upstream_requests: upstream, seconds, rps: done / seconds, timed_out: done < REQUESTS };
}

// Before measuring: each route must behave as the figures assume, as seen in
// x-gyre-attempts and x-gyre-provider (and x-gyre-cache).  What it saw goes
// into the results, so that "circuit open" is a measured fact, not a guess.
async function verify(port) {
  const one = async (route, expect) => {
    const r = await post(port, chatBody(route));
    const seen = { status: r.status, provider: r.headers?.['x-gyre-provider'] ?? null, attempts: Number(r.headers?.['x-gyre-attempts'] ?? NaN),
      cache: r.headers?.['x-gyre-cache'] ?? null };
    let content;
    try { content = JSON.parse(r.body).choices[0].message.content; } catch { /* not a completion */ }
    if (r.status !== 200 || content !== 'Hello, benchmark!') throw new Error(`route ${route}: ${r.status} ${String(r.body ?? r.error).slice(0, 200)}`);
    for (const [k, v] of Object.entries(expect)) {
      if (seen[k] !== v) throw new Error(`route ${route}: ${k} ${seen[k]}, expected ${v} (${JSON.stringify(seen)})`);
    }
    return seen;
  };
  const v = {};
  v.direct = await one('direct', { provider: 'ok', attempts: 1 });
  v.withfb = await one('withfb', { provider: 'ok', attempts: 1 });
  // The 429 rests the primary's key: the next request skips it.
  const h0 = hits('429');
  v.f429 = [await one('f429', { provider: 'ok', attempts: 2 }), await one('f429', { provider: 'ok' })];
  v.f429_primary_hits = hits('429') - h0;
  v.f500 = [await one('f500', { provider: 'ok', attempts: 2 }), await one('f500', { provider: 'ok', attempts: 2 })];
  v.frefused = [await one('frefused', { provider: 'ok', attempts: 2 }), await one('frefused', { provider: 'ok', attempts: 2 })];
  // Five failures in a row open the breaker (the default); the sixth request goes to the fallback alone.
  v.open = [];
  for (let i = 0; i < 6; i++) v.open.push(await one('open', { provider: 'ok' }));
  if (v.open[5].attempts !== 1) throw new Error(`route open: the breaker did not open after 5 failures (${JSON.stringify(v.open)})`);
  v.cached = [await one('cached', { provider: 'okc', cache: 'miss' }), await one('cached', { cache: 'hit' })];
  v.uncached = await one('uncached', { provider: 'okc', attempts: 1 });
  return v;
}

// One keep-alive connection to gyre that sends the same prebuilt request for
// one route and times each answer (a Content-Length body: gyre's answers to
// a non-streaming chat request always have one).
async function openLane(port, route) {
  const body = chatBody(route);
  const request = Buffer.from(`POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Type: application/json\r\n` +
    `Authorization: Bearer sk-bench\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
  const sock = net.connect(port, '127.0.0.1');
  sock.setNoDelay(true);
  let buf = null, pending = null, failure = null;
  // Idle is fine between requests; while one waits for its answer it is not.
  sock.setTimeout(LANE_IDLE_MS, () => { if (pending) sock.destroy(new Error(`route ${route}: no answer within ${LANE_IDLE_MS} ms`)); });
  await new Promise((resolve, reject) => { sock.once('connect', resolve); sock.once('error', reject); });
  const fail = (e) => { failure = failure ?? e; if (pending) { const p = pending; pending = null; p.reject(failure); } };
  sock.on('error', fail);
  sock.on('close', () => fail(new Error(`route ${route}: gyre closed the connection`)));
  sock.on('data', (chunk) => {
    buf = buf ? Buffer.concat([buf, chunk]) : chunk;
    const he = buf.indexOf('\r\n\r\n');
    if (he < 0 || !pending) return;
    const head = buf.toString('latin1', 0, he);
    const cl = /\r\ncontent-length:\s*(\d+)/i.exec(head);
    if (!cl) { fail(new Error(`route ${route}: an answer without Content-Length: ${head.slice(0, 200)}`)); return; }
    const end = he + 4 + Number(cl[1]);
    if (buf.length < end) return;
    const ns = process.hrtime.bigint() - pending.t0;
    buf = buf.length > end ? buf.subarray(end) : null;
    const p = pending; pending = null;
    p.resolve({ status: Number(head.slice(9, 12)), us: Number(ns) / 1000 });
  });
  return {
    route,
    send() {
      if (failure) return Promise.reject(failure);
      return new Promise((resolve, reject) => { pending = { resolve, reject, t0: process.hrtime.bigint() }; sock.write(request); });
    },
    close() { sock.removeAllListeners('close'); sock.destroy(); },
  };
}

// Nearest-rank percentile of an unsorted array.
function pct(xs, p) {
  if (xs.length === 0) return NaN;
  const s = Float64Array.from(xs).sort();
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(p * s.length) - 1))];
}

// One latency round: CYCLES cycles, each one request on every lane, the
// lanes' order rotating by one every cycle.
async function latencyRound(port) {
  // Fresh connections each round: gyre closes idle client connections while
  // the wrk runs in between take their turn.
  const lanes = [];
  for (const l of LANES) lanes.push(await openLane(port, l.route));
  const samples = lanes.map(() => []), errors = lanes.map(() => 0);
  const deadline = Date.now() + ROUND_DEADLINE_MS;
  const t0 = process.hrtime.bigint();
  let cycles = 0;
  for (; cycles < CYCLES && Date.now() < deadline; cycles++) {
    for (let j = 0; j < lanes.length; j++) {
      const i = (j + cycles) % lanes.length;
      const r = await lanes[i].send();
      if (r.status === 200) samples[i].push(r.us); else errors[i]++;
    }
  }
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  for (const l of lanes) l.close();
  return { samples, errors, cycles, seconds };
}

// Waits (bounded) for the CPUs to be quiet, runs `fn`, and measures the share
// of the CPUs that processes other than ours took meanwhile; a disturbed run
// is repeated up to RETRIES times and the least disturbed one kept.
async function undisturbed(label, pids, fn) {
  let best = null;
  for (let attempt = 0; attempt <= RETRIES; attempt++) {
    let busy = await busyShare(500);
    const deadline = Date.now() + QUIET_WAIT * 1000;
    if (busy > 0.15 && QUIET_WAIT > 0) {
      log(`CPUs ${Math.round(busy * 100)}% busy: waiting up to ${QUIET_WAIT} s for them to quiet down`);
      while (busy > 0.15 && Date.now() < deadline) busy = await busyShare(500);
    }
    const ps = pids();
    const s0 = cpuTimes(), o0 = ticksOf(ps) + selfTicks();
    const res = await fn();
    const s1 = cpuTimes(), o1 = ticksOf(ps) + selfTicks();
    const d = s1.map((x, i) => x - s0[i]), total = d.reduce((a, x) => a + x, 0);
    res.cpu_busy_before = busy;
    res.foreign_cpu_share = total > 0 ? Math.round(Math.max(0, d[0] + d[1] + d[2] - (o1 - o0)) / total * 100) / 100 : 0;
    res.attempt = attempt + 1;
    if (!best || res.foreign_cpu_share < best.foreign_cpu_share) best = res;
    if (res.foreign_cpu_share <= DISTURBED) break;
    log(`${label}: other processes took ${Math.round(res.foreign_cpu_share * 100)}% of the CPUs${attempt < RETRIES ? ': again' : ': keeping the least disturbed attempt'}`);
  }
  return best;
}

// The latency lanes: the baseline twice (A/A, the noise), the failovers,
// the open circuit, and a cache hit.
const LANES = [
  { key: 'direct', route: 'direct', name: 'direct to the healthy upstream' },
  { key: 'direct_b', route: 'direct', name: 'direct again (A/A: the noise)' },
  { key: 'frefused', route: 'frefused', name: 'primary refuses connections, breaker off' },
  { key: 'f500', route: 'f500', name: 'primary answers 500, breaker off', counted: '500' },
  { key: 'f429', route: 'f429', name: 'primary answers 429 (no Retry-After), breaker off', counted: '429' },
  { key: 'withfb', route: 'withfb', name: 'healthy primary, a fallback never used' },
  { key: 'open', route: 'open', name: 'primary down, breaker on (open)' },
  { key: 'cached', route: 'cached', name: 'cache hit' },
];
const WRK_RUNS = [
  { key: 'uncached', route: 'uncached', name: 'no cache', counted: 'cache' },
  { key: 'cached', route: 'cached', name: 'cache hit', counted: 'cache' },
];

async function main() {
  for (const f of [GYRE, MOCK]) if (!fs.existsSync(f)) throw new Error(`${f} is missing (run make first)`);
  const busy0 = await busyShare();
  if (busy0 > 0.2) log(`the CPUs were ${Math.round(busy0 * 100)}% busy before the start: something else is running; the figures will be noisy`);
  const names = ['ok', 'okCounted', 's429', 's500', 'refused', 'flaky1', 'flaky2', 'gyre'];
  const ports = {};
  // Distinct ports: freePort() closes each before the next, so ask until none repeats.
  const seen = new Set();
  for (const n of names) { let p; do { p = await freePort(); } while (seen.has(p)); seen.add(p); ports[n] = p; }
  log(`work dir ${work}; ${ROUNDS} rounds: ${CYCLES} latency cycles over ${LANES.length} routes, then wrk -t1 -c${CONNS} ${SECONDS}s ` +
    `without and with the cache; ${WORKERS} gyre worker(s); then ${REQUESTS} requests through flaky upstreams`);

  fs.writeFileSync(path.join(work, 'up.conf'), upstreamConf(ports));
  fs.writeFileSync(path.join(work, 'gyre.yaml'), gyreConf(ports));
  const up = start('up', 'nginx', ['-p', work, '-c', path.join(work, 'up.conf')]);
  const mocks = [start('flaky1', MOCK, ['--listen', `127.0.0.1:${ports.flaky1}`, '--fault', '500', '--fault-rate', '0.5']),
    start('flaky2', MOCK, ['--listen', `127.0.0.1:${ports.flaky2}`, '--fault', '500', '--fault-rate', '0.5'])];
  const gy = start('gyre', GYRE, ['serve', '--config', path.join(work, 'gyre.yaml')]);
  await waitUp(async () => (await post(ports.ok, chatBody('x'), 2000)).status === 200, 'the upstream nginx');
  for (const p of [ports.flaky1, ports.flaky2]) await waitUp(async () => (await fetch(`http://127.0.0.1:${p}/_mock/stats`, { signal: AbortSignal.timeout(2000) })).ok, 'gyre-mock');
  await waitUp(async () => (await post(ports.gyre, chatBody('direct'), 2000)).status === 200, 'gyre');
  // Nothing may listen on the refused port.
  await new Promise((resolve, reject) => {
    const s = net.connect(ports.refused, '127.0.0.1', () => { s.destroy(); reject(new Error(`port ${ports.refused} was meant to refuse connections`)); });
    s.on('error', resolve);
  });
  const verified = await verify(ports.gyre);
  log(`checked: f429 ${verified.f429.map((x) => x.attempts).join(', ')} attempts (the primary got ${verified.f429_primary_hits} of 2), ` +
    `f500 and frefused 2 each, open ${verified.open.map((x) => x.attempts).join(', ')}, cached ${verified.cached.map((x) => x.cache).join(', ')}`);

  const ours = () => [gy.pid, up.pid, ...childPids(up.pid), ...mocks.map((m) => m.pid)];
  const lat = Object.fromEntries(LANES.map((l) => [l.key, { samples: [], rounds: [] }]));
  const thr = Object.fromEntries(WRK_RUNS.map((t) => [t.key, []]));
  for (let r = 0; r < ROUNDS; r++) {
    const h0 = Object.fromEntries(LANES.filter((l) => l.counted).map((l) => [l.key, hits(l.counted)]));
    const res = await undisturbed(`round ${r + 1}/${ROUNDS} latency`, ours, () => {
      for (const l of LANES) if (l.counted) h0[l.key] = hits(l.counted);
      return latencyRound(ports.gyre);
    });
    LANES.forEach((l, i) => {
      const xs = res.samples[i];
      lat[l.key].samples.push(...xs);
      lat[l.key].rounds.push({ requests: xs.length, errors: res.errors[i], p50: pct(xs, 0.5), p90: pct(xs, 0.9), p99: pct(xs, 0.99),
        upstream_hits: l.counted ? hits(l.counted) - h0[l.key] : null, seconds: res.seconds, foreign_cpu_share: res.foreign_cpu_share,
        cpu_busy_before: res.cpu_busy_before, attempt: res.attempt });
    });
    log(`round ${r + 1}/${ROUNDS} latency (${res.cycles} cycles, ${res.seconds.toFixed(1)} s): ` +
      LANES.map((l) => { const x = lat[l.key].rounds[r]; return `${l.key} ${x.p50.toFixed(0)}/${x.p99.toFixed(0)} µs${x.errors ? ` ERRORS ${x.errors}` : ''}`; }).join(', ') +
      ` (p50/p99)${res.foreign_cpu_share > DISTURBED ? `  (disturbed: others took ${Math.round(res.foreign_cpu_share * 100)}%)` : ''}`);
    const order = WRK_RUNS.map((_, i) => WRK_RUNS[(i + r) % WRK_RUNS.length]);
    for (const t of order) {
      const h = { n: 0 };
      const x = await undisturbed(`round ${r + 1}/${ROUNDS} ${t.key}`, ours, async () => {
        h.n = hits(t.counted);
        const w = wrk(ports.gyre, t.route, CONNS, SECONDS, gy.pid);
        w.upstream_hits = hits(t.counted) - h.n;
        return w;
      });
      thr[t.key].push(x);
      log(`round ${r + 1}/${ROUNDS} ${t.key.padEnd(8)} ${x.rps.toFixed(0).padStart(7)} req/s  p50 ${x.p50} µs  p99 ${x.p99} µs  ` +
        `gyre ${x.gyre_cpu_us_per_req.toFixed(1)} µs/req  upstream got ${x.upstream_hits}${x.errors ? `  ERRORS ${x.errors}` : ''}` +
        `${x.foreign_cpu_share > DISTURBED ? `  (disturbed: others took ${Math.round(x.foreign_cpu_share * 100)}%)` : ''}`);
    }
  }

  log(`flaky upstreams: ${REQUESTS} requests, ${CONNS} at a time`);
  const flaky = await flakyRun(ports.gyre, [ports.flaky1, ports.flaky2]);
  log(`flaky upstreams: ${flaky.ok}/${flaky.requests} answered 200 in ${flaky.seconds.toFixed(1)} s (${JSON.stringify(flaky.statuses)})`);

  // Latency: percentiles over every round's samples; "added" is a lane's
  // percentile less the direct lane's.  The noise band is the largest A/A
  // difference of one round (direct against direct again).
  const latency = {};
  for (const l of LANES) {
    const { samples, rounds } = lat[l.key];
    latency[l.key] = { name: l.name, route: l.route, requests: samples.length, errors: rounds.reduce((a, x) => a + x.errors, 0),
      p50_us: pct(samples, 0.5), p90_us: pct(samples, 0.9), p99_us: pct(samples, 0.99),
      upstream_hits: l.counted ? rounds.reduce((a, x) => a + x.upstream_hits, 0) : null, rounds };
  }
  const d = latency.direct;
  for (const l of LANES) {
    const x = latency[l.key];
    x.p50_added_us = x.p50_us - d.p50_us;
    x.p99_added_us = x.p99_us - d.p99_us;
    x.p50_added_per_round_us = x.rounds.map((y, i) => y.p50 - d.rounds[i].p50);
    x.p99_added_per_round_us = x.rounds.map((y, i) => y.p99 - d.rounds[i].p99);
  }
  const aa = latency.direct_b;
  const noise = { p50_us: Math.max(Math.abs(aa.p50_added_us), ...aa.p50_added_per_round_us.map(Math.abs)),
    p99_us: Math.max(Math.abs(aa.p99_added_us), ...aa.p99_added_per_round_us.map(Math.abs)) };
  const throughput = {};
  for (const t of WRK_RUNS) {
    const rs = thr[t.key];
    throughput[t.key] = { name: t.name, route: t.route, conns: CONNS, rps: median(rs.map((x) => x.rps)), p50_us: median(rs.map((x) => x.p50)),
      p99_us: median(rs.map((x) => x.p99)), gyre_cpu_us_per_req: median(rs.map((x) => x.gyre_cpu_us_per_req)),
      requests: rs.reduce((a, x) => a + x.requests, 0), errors: rs.reduce((a, x) => a + x.errors, 0),
      upstream_hits: rs.reduce((a, x) => a + x.upstream_hits, 0), rounds: rs };
  }
  const cacheRatios = thr.cached.map((x, i) => x.rps / thr.uncached[i].rps);
  const pick = (k) => ({ p50_added_us: latency[k].p50_added_us, p99_added_us: latency[k].p99_added_us,
    p99_added_per_round_us: latency[k].p99_added_per_round_us, requests: latency[k].requests, primary_hits: latency[k].upstream_hits });
  const open = latency.open;
  const result = {
    date: new Date().toISOString(), machine: { nproc: os.cpus().length, kernel: os.release(), cpu: os.cpus()[0]?.model, cpu_busy_before: busy0 },
    gyre: execFileSync('git', ['-C', ROOT, 'describe', '--always', '--dirty'], { encoding: 'utf8' }).trim(),
    command: COMMAND, cycles: CYCLES, rounds: ROUNDS, seconds: SECONDS, conns: CONNS, workers: WORKERS,
    checked: verified, latency, throughput,
    figures: {
      failover_refused: pick('frefused'), failover_500: pick('f500'), failover_429: pick('f429'),
      circuit_open: { ...pick('open'), noise_p50_us: noise.p50_us, noise_p99_us: noise.p99_us,
        p50_within_noise: Math.abs(open.p50_added_us) <= noise.p50_us, p99_within_noise: Math.abs(open.p99_added_us) <= noise.p99_us,
        p50_vs_withfb_us: open.p50_us - latency.withfb.p50_us, p99_vs_withfb_us: open.p99_us - latency.withfb.p99_us },
      fallback_unused: pick('withfb'),
      noise_aa: { p50_us: noise.p50_us, p99_us: noise.p99_us, p99_per_round_us: aa.p99_added_per_round_us },
      flaky,
      cache: { ratio: median(cacheRatios), ratio_per_round: cacheRatios, cached_rps: throughput.cached.rps, uncached_rps: throughput.uncached.rps,
        cached_upstream_hits: throughput.cached.upstream_hits, cached_cpu_us_per_req: throughput.cached.gyre_cpu_us_per_req,
        uncached_cpu_us_per_req: throughput.uncached.gyre_cpu_us_per_req, hit_p50_added_us: latency.cached.p50_added_us },
    },
  };
  const resultsDir = path.join(ROOT, 'bench/results');
  fs.mkdirSync(resultsDir, { recursive: true });
  const stamp = result.date.replace(/[:]/g, '').replace(/\..*/, 'Z');
  fs.writeFileSync(path.join(resultsDir, `routing-${stamp}.json`), JSON.stringify(result, null, 2) + '\n');
  const md = markdown(result);
  fs.writeFileSync(path.join(resultsDir, 'routing-latest.md'), md);
  if (APPEND_LATEST) fs.appendFileSync(path.join(resultsDir, 'latest.md'), '\n' + md);
  const bad = [...Object.values(latency), ...Object.values(throughput)].some((x) => x.errors) || flaky.ok !== flaky.requests;
  // The README's routing block (between its bench:routing markers) shows a clean run only.
  if (env.BENCH_README === '0') log('BENCH_README=0: README.md left alone');
  else if (bad) log('README.md left alone (errors)');
  else {
    const readme = path.join(ROOT, 'README.md');
    const text = fs.readFileSync(readme, 'utf8');
    const re = /<!-- bench:routing:start -->\n[\s\S]*?<!-- bench:routing:end -->\n/;
    if (re.test(text)) fs.writeFileSync(readme, text.replace(re, `<!-- bench:routing:start -->\n${md.trim()}\n<!-- bench:routing:end -->\n`));
  }
  if (JSON_OUT) process.stdout.write(JSON.stringify(result, null, 2) + '\n');
  else process.stdout.write('\n' + md);
  const errors = [...Object.values(latency), ...Object.values(throughput)].reduce((a, x) => a + x.errors, 0);
  if (errors) { log(`${errors} answers other than 200: failover did not hold, the figures are not valid`); process.exitCode = 1; }
  if (flaky.ok !== flaky.requests || flaky.wrong_body) { log(`flaky upstreams: ${flaky.requests - flaky.ok} of ${flaky.requests} not answered 200`); process.exitCode = 1; }
}

function us(n) { return Math.abs(n) >= 1000 ? `${(n / 1000).toFixed(2)} ms` : `${n.toFixed(0)} µs`; }
function signed(n) { const r = Math.abs(n) >= 1000 ? n : Math.round(n); return `${r >= 0 ? '+' : '−'}${us(Math.abs(r))}`; }
function fmt(n) { return n >= 10000 ? `${(n / 1000).toFixed(1)}k` : n.toFixed(0); }
const mark = (ok) => (ok ? 'met' : '**missed**');

function markdown(r) {
  const f = r.figures, L = r.latency, T = r.throughput;
  const perRound = (xs) => xs.map(signed).join(', ');
  const latRows = Object.entries(L).map(([key, x]) =>
    `| ${x.name}${x.errors ? ` (**${x.errors} errors**)` : ''} | ${us(x.p50_us)} | ${us(x.p99_us)} | ` +
    `${key === 'direct' ? '' : signed(x.p50_added_us)} | ${key === 'direct' ? '' : `${signed(x.p99_added_us)} (${perRound(x.p99_added_per_round_us)})`} | ` +
    `${x.requests} | ${x.upstream_hits === null ? '' : x.upstream_hits} |`);
  const thrRows = Object.values(T).map((x) =>
    `| ${x.name}${x.errors ? ` (**${x.errors} errors**)` : ''} | ${fmt(x.rps)} | ${us(x.p50_us)} | ${us(x.p99_us)} | ${x.gyre_cpu_us_per_req.toFixed(1)} µs | ${x.requests} | ${x.upstream_hits} |`);
  const fl = f.flaky;
  const share = (n) => `${n} (${((n / fl.answered) * 100).toFixed(1)}%)`;
  const lines = [
    `* **Failover, primary refuses connections** (breaker off, so every request tries it): p50 ${signed(f.failover_refused.p50_added_us)}, ` +
      `p99 **${signed(f.failover_refused.p99_added_us)}** against direct; target p99 < +5 ms: ${mark(f.failover_refused.p99_added_us < FAILOVER_P99_TARGET_US)}.`,
    `* **Failover, primary answers 500** (breaker off; the primary got ${f.failover_500.primary_hits} requests for ${f.failover_500.requests} answers): ` +
      `p50 ${signed(f.failover_500.p50_added_us)}, p99 **${signed(f.failover_500.p99_added_us)}**; target p99 < +5 ms: ${mark(f.failover_500.p99_added_us < FAILOVER_P99_TARGET_US)}.`,
    `* **Primary answers 429** (no Retry-After, breaker off): not a failover per request. The 429 rests the primary's only key for gyre's default 1 s ` +
      `(the breaker setting does not matter), and requests in that second skip it without trying: the primary got ${f.failover_429.primary_hits} of ` +
      `${f.failover_429.requests} requests, so this is the open-circuit case: p50 ${signed(f.failover_429.p50_added_us)}, p99 ${signed(f.failover_429.p99_added_us)}.`,
    `* **Primary circuit open** (breaker on, primary refusing; one probe per 5 s cooldown): p50 ${signed(f.circuit_open.p50_added_us)}, p99 **${signed(f.circuit_open.p99_added_us)}** against direct; ` +
      `noise (direct against direct, the largest A/A difference): p50 ±${us(f.noise_aa.p50_us)}, p99 ±${us(f.noise_aa.p99_us)}; ` +
      `target not measurable above noise: p99 ${f.circuit_open.p99_within_noise ? 'met (inside the band)' : '**outside the band**'}, ` +
      `p50 ${f.circuit_open.p50_within_noise ? 'met (inside the band)' : '**outside the band**'}. Against a healthy route with an unused fallback ` +
      `(${signed(f.fallback_unused.p50_added_us)} / ${signed(f.fallback_unused.p99_added_us)} itself against direct): p50 ${signed(f.circuit_open.p50_vs_withfb_us)}, p99 ${signed(f.circuit_open.p99_vs_withfb_us)}.`,
    `* **Two of three upstreams failing at random** (two gyre-mocks with \`--fault 500 --fault-rate 0.5\` as the pool, nginx as the fallback, breaker off): ` +
      `**${fl.ok} of ${fl.requests}** answered 200${fl.wrong_body ? ` (${fl.wrong_body} with a wrong body)` : ''} (${Object.entries(fl.statuses).map(([k, v]) => `${k}: ${v}`).join(', ')}), ` +
      `${fl.rps.toFixed(0)} req/s with ${r.conns} at a time; answered by ${Object.entries(fl.providers).map(([k, v]) => `${k} ${share(v)}`).join(', ')}; ` +
      `the mocks got ${Object.entries(fl.upstream_requests).map(([k, v]) => `${k} ${v}`).join(', ')} requests, every second one faulted; ` +
      `attempts per answer ${Object.entries(fl.attempts).map(([k, v]) => `${k}: ${v}`).join(', ')}; target 100%: ${mark(fl.ok === fl.requests && !fl.wrong_body)}.`,
    `* **Cache hit / no cache**: **${f.cache.ratio.toFixed(2)}×** req/s (rounds: ${f.cache.ratio_per_round.map((x) => `${x.toFixed(2)}×`).join(', ')}); ` +
      `gyre's CPU per request ${f.cache.cached_cpu_us_per_req.toFixed(1)} µs against ${f.cache.uncached_cpu_us_per_req.toFixed(1)} µs; ` +
      `the upstream got ${f.cache.cached_upstream_hits} of the cache runs' requests; a hit one at a time: p50 ${signed(f.cache.hit_p50_added_us)} against direct; ` +
      `target ≥ ${CACHE_TARGET}×: ${mark(f.cache.ratio >= CACHE_TARGET)}.`,
  ];
  const all = [...L.direct.rounds, ...Object.values(T).flatMap((x) => x.rounds)];
  const disturbed = all.filter((x) => x.foreign_cpu_share > DISTURBED).length;
  lines.push(disturbed ? `* **${disturbed} of ${all.length} runs were disturbed**: other processes took more than ${DISTURBED * 100}% of the CPUs during them, even after retries.`
    : `* Other processes took at most ${DISTURBED * 100}% of the CPUs during every run.`);
  return `### Routing: failover, circuit breakers, cache

Measured by \`${r.command}\` on ${r.date.slice(0, 10)} (${r.machine.nproc} cores, Linux ${r.machine.kernel}), gyre ${r.gyre}, ${r.workers} worker,
the ${Buffer.byteLength(chatBody('chat'))}-byte chat request. Upstreams: nginx returning a fixed completion (or 429, or 500), a port that refuses
connections, two gyre-mocks for the random faults. **Latency**: one request at a time, the routes in turn (${r.cycles} per route in each of
${r.rounds} rounds, one keep-alive connection each), percentiles over all rounds; "added" is the difference to the direct route (per round in brackets).
"upstream got": requests that reached the route's counted upstream (the failing primary, or the cache routes' provider).

| route | p50 | p99 | p50 added | p99 added (per round) | answers | upstream got |
| --- | ---: | ---: | ---: | ---: | ---: | ---: |
${latRows.join('\n')}

**Throughput**: \`wrk -t1 -c${r.conns}\`, the same request every time, median of ${r.rounds} rounds of ${r.seconds} s (wrk leaves a few requests unfinished at the end of a run, so the upstream can get more than wrk counts).

| route | req/s | p50 | p99 | gyre CPU per request | answers | upstream got |
| --- | ---: | ---: | ---: | ---: | ---: | ---: |
${thrRows.join('\n')}

${lines.join('\n')}

Reproduce: \`${r.command}\` (${r.command.endsWith('make bench') ? 'the routing benchmark alone: \`BENCH_SKIP_PROXY=1 make bench\`' : '\`make bench\` runs it after the proxy benchmark'}; raw numbers in \`bench/results/routing-*.json\`).
`;
}

main().then(() => process.exit(), (e) => { log(e.message); process.exit(1); });
