// The proxy benchmark: the upstream alone, nginx proxy_pass, gyre and the
// Portkey gateway, measured with wrk in one run, interleaved round by round so
// that machine drift hits all alike.  Medians across rounds are reported, with
// gyre's ratio to nginx and to Portkey, and memory figures.  See docs/bench.md.
//
//   node bench/proxy/bench.mjs [--json]
//   env: BENCH_SECONDS (10) BENCH_ROUNDS (3) BENCH_CONNS (32) BENCH_WORKERS (1)
//        BENCH_PORTKEY_SECONDS (5) BENCH_SKIP_PORTKEY=1 BENCH_README=0
//        BENCH_SKIP_GYRE=1 (also when build/gyre is missing: the peers only)
//        BENCH_SKIP_TRACES=1 (leaves out "gyre with traces and bodies")
//        GYRE_BUILD (build): the build directory whose gyre is measured
//        BENCH_RESULTS_DIR (bench/results): where the JSON and latest.md go
//        BENCH_QUIET_WAIT (20): seconds each run may wait for the CPUs to be
//        quiet (other work on this shared machine) before it starts; 0: none
//        BENCH_RETRIES (2): runs again, at most this often, a run during which
//        other processes took more than 5% of the CPUs; the least disturbed
//        attempt is kept
//        BENCH_PIN=1 (taskset: the proxy under test on CPU 0, wrk and the
//        upstream on CPU 1; default off, see docs/bench.md)
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

const ROOT = path.resolve(new URL('../..', import.meta.url).pathname);
const env = process.env;
const SECONDS = Number(env.BENCH_SECONDS ?? 10);
const ROUNDS = Number(env.BENCH_ROUNDS ?? 3);
const CONNS = Number(env.BENCH_CONNS ?? 32);
const WORKERS = Number(env.BENCH_WORKERS ?? 1);
const PORTKEY_SECONDS = Number(env.BENCH_PORTKEY_SECONDS ?? 5);
const SKIP_PORTKEY = env.BENCH_SKIP_PORTKEY === '1';
const GYRE = path.join(ROOT, env.GYRE_BUILD || 'build', 'gyre');
const SKIP_TRACES = env.BENCH_SKIP_TRACES === '1';
const SKIP_GYRE = env.BENCH_SKIP_GYRE === '1' || !fs.existsSync(GYRE);
// The command that reproduces a run: make bench, with the knobs that differ
// from their defaults.
const KNOBS = { BENCH_SECONDS: '10', BENCH_ROUNDS: '3', BENCH_CONNS: '32', BENCH_WORKERS: '1', BENCH_PORTKEY_SECONDS: '5',
  BENCH_SKIP_PORTKEY: '0', BENCH_SKIP_GYRE: '0', BENCH_SKIP_TRACES: '0', BENCH_PIN: '0', BENCH_QUIET_WAIT: '20', BENCH_RETRIES: '2' };
const COMMAND = [...Object.entries(KNOBS).filter(([k, d]) => env[k] !== undefined && env[k] !== d).map(([k]) => `${k}=${env[k]}`), 'make bench'].join(' ');
const PIN = env.BENCH_PIN === '1';
const QUIET_WAIT = Number(env.BENCH_QUIET_WAIT ?? 20);
const RETRIES = Number(env.BENCH_RETRIES ?? 2);
const DISTURBED = 0.05; // other processes' share of the CPUs that makes a run disturbed
// With BENCH_PIN=1 every process is started under taskset: the proxies on
// CPU 0, wrk and the upstream on CPU 1.
const pinned = (cpu, cmd, args) => (PIN ? ['taskset', ['-c', String(cpu), cmd, ...args]] : [cmd, args]);
const JSON_OUT = process.argv.includes('--json');
const IDLE_CONNS = 1000;
// The body bench/proxy/chat.lua sends (with model "chat").
const REQUEST_BYTES = Buffer.byteLength('{"model":"chat","messages":[{"role":"system","content":"You are terse."},' +
  '{"role":"user","content":"Say hello to the benchmark, please, in one short line of text."}],' +
  '"max_tokens":16,"temperature":0.2}');

const log = (...a) => console.error('bench:', ...a);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
fs.mkdirSync(path.join(ROOT, 'bench', '.work'), { recursive: true });
const work = fs.mkdtempSync(path.join(ROOT, 'bench', '.work', 'run-'));
const children = [];

function cleanup() {
  // Each server runs in its own process group (detached), so that nginx's
  // workers die with their master instead of living on as orphans.
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

function start(name, cmd, args, opts = {}, cpu = 0) {
  const out = fs.openSync(path.join(work, `${name}.log`), 'a');
  const p = spawn(...pinned(cpu, cmd, args), { stdio: ['ignore', out, out], detached: true, ...opts });
  children.push(p);
  return p;
}

async function waitHttp(url, body, headers = {}, ms = 15000) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    try {
      const r = await fetch(url, { method: 'POST', body, headers: { 'content-type': 'application/json', ...headers }, signal: AbortSignal.timeout(2000) });
      const text = await r.text();
      if (r.ok) return text;
    } catch { /* not up yet */ }
    await sleep(100);
  }
  throw new Error(`${url} did not answer 200 within ${ms} ms (logs in ${work})`);
}

const UPSTREAM_BODY = JSON.stringify({
  id: 'chatcmpl-bench', object: 'chat.completion', created: 1700000000, model: 'gpt-4o-mini',
  choices: [{ index: 0, message: { role: 'assistant', content: 'Hello, benchmark!' }, finish_reason: 'stop' }],
  usage: { prompt_tokens: 24, completion_tokens: 4, total_tokens: 28 },
});

function nginxConf(name, port, workers, location) {
  return `worker_processes ${workers};
daemon off;
pid ${work}/${name}.pid;
error_log ${work}/${name}.err warn;
events { worker_connections 8192; }
http {
  access_log off;
  client_body_temp_path ${work}/${name}-body;
  proxy_temp_path ${work}/${name}-proxy;
  keepalive_requests 10000000;
  ${location.upstream ?? ''}
  server {
    listen 127.0.0.1:${port} reuseport;
    location / { ${location.body} }
  }
}
`;
}

function rss(pid) {
  try { return Number(fs.readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmRSS:\s+(\d+)/)[1]) * 1024; } catch { return NaN; }
}
function childPids(pid) {
  try { return fs.readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number); } catch { return []; }
}

// CPU time (user + system) a set of processes has used, in seconds: the cost
// of a request that the noise of a shared machine does not change much.
const TICK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
function cpuSeconds(pids) {
  let ticks = 0;
  for (const pid of pids) {
    try {
      const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
      ticks += Number(f[11]) + Number(f[12]); // utime, stime (fields 14 and 15)
    } catch { /* gone */ }
  }
  return ticks / TICK;
}

// Clock ticks (user + system) of a set of processes, and of this process with
// the children it waited for (wrk).
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

function toMicros(v) {
  const m = /^([\d.]+)(us|ms|s)$/.exec(v);
  if (!m) return NaN;
  return Math.round(Number(m[1]) * (m[2] === 'us' ? 1 : m[2] === 'ms' ? 1000 : 1e6));
}

function wrk(url, seconds, extraEnv = {}, pids = []) {
  const cpu0 = cpuSeconds(pids);
  const out = execFileSync(...pinned(1, 'wrk', ['-t1', `-c${CONNS}`, `-d${seconds}s`, '--latency', '-s', path.join(ROOT, 'bench/proxy/chat.lua'), url]),
    { env: { ...env, ...extraEnv }, encoding: 'utf8', timeout: (seconds + 30) * 1000 });
  const cpu = cpuSeconds(pids) - cpu0;
  const num = (re) => { const m = re.exec(out); return m ? m[1] : null; };
  const total = Number(num(/(\d+) requests in/));
  return {
    cpu_us_per_req: total > 0 ? (cpu * 1e6) / total : NaN,
    rps: Number(num(/Requests\/sec:\s+([\d.]+)/)),
    p50: toMicros(num(/\n\s+50%\s+(\S+)/)),
    p99: toMicros(num(/\n\s+99%\s+(\S+)/)),
    non2xx: Number(num(/Non-2xx or 3xx responses:\s+(\d+)/) ?? 0),
    socketErrors: num(/Socket errors: (.*)/),
    errors: Number(num(/Non-2xx or 3xx responses:\s+(\d+)/) ?? 0) + (/Socket errors: (.*)/.exec(out)?.[1].match(/\d+/g) ?? []).reduce((a, x) => a + Number(x), 0),
  };
}

const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor((s.length - 1) / 2)]; };

// How busy the machine is before we start (the load average lags by a
// minute): the share of CPU time not idle over one second, from /proc/stat.
function cpuTimes() { return fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number); }
async function busyShare(ms = 1000) {
  const a = cpuTimes(); await sleep(ms); const b = cpuTimes();
  const d = b.map((x, i) => x - a[i]), total = d.reduce((x, y) => x + y, 0);
  return total > 0 ? Math.round((1 - (d[3] + (d[4] ?? 0)) / total) * 100) / 100 : 0; // idle + iowait
}
function versions() {
  // nginx -v writes to stderr; wrk -v exits 1: take the first line either way.
  const first = (cmd, args) => {
    let out;
    try { out = execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }); } catch (e) { out = `${e.stdout ?? ''}${e.stderr ?? ''}`; }
    return out.trim().split('\n')[0].trim() || null;
  };
  let portkey = null;
  try { portkey = JSON.parse(fs.readFileSync(path.join(ROOT, 'bench/node_modules/@portkey-ai/gateway/package.json'), 'utf8')).version; } catch { /* not installed */ }
  return {
    gyre: SKIP_GYRE ? null : first('git', ['-C', ROOT, 'describe', '--always', '--dirty']),
    nginx: first('sh', ['-c', 'nginx -v 2>&1']), wrk: first('wrk', ['-v'])?.replace(/\s+Copyright.*/, ''), node: process.version, portkey: SKIP_PORTKEY ? null : portkey,
  };
}

async function main() {
  const busy0 = await busyShare();
  if (busy0 > 0.2) log(`the CPUs were ${Math.round(busy0 * 100)}% busy before the start: something else is running; the figures will be noisy`);
  log(`work dir ${work}; ${ROUNDS} rounds × ${SECONDS}s, wrk -t1 -c${CONNS}, ${WORKERS} worker(s) each${PIN ? ', pinned (proxy CPU 0, wrk + upstream CPU 1)' : ', unpinned'}`);
  const [upPort, pxPort, gyPort, pkPort, memPort, trPort] = await Promise.all([freePort(), freePort(), freePort(), freePort(), freePort(), freePort()]);
  const chat = JSON.stringify({ model: 'chat', messages: [{ role: 'user', content: 'hi' }] });

  fs.writeFileSync(path.join(work, 'up.conf'), nginxConf('up', upPort, 1, {
    body: `default_type application/json; return 200 '${UPSTREAM_BODY}';`,
  }));
  fs.writeFileSync(path.join(work, 'px.conf'), nginxConf('px', pxPort, WORKERS, {
    upstream: `upstream up { server 127.0.0.1:${upPort}; keepalive 64; }`,
    body: 'proxy_pass http://up; proxy_http_version 1.1; proxy_set_header Connection "";',
  }));
  // store: the same gyre with every trace stored, bodies included (full capture, issue 5's target).
  const gyreConf = (port, store = '') => `listen: 127.0.0.1:${port}
workers: ${WORKERS}
${store}providers:
  - {name: up, kind: openai, base_url: "http://127.0.0.1:${upPort}/v1", keys: [sk-bench]}
routes:
  - name: chat
    targets: [{provider: up, model: gpt-4o-mini}]
`;
  fs.writeFileSync(path.join(work, 'gyre.yaml'), gyreConf(gyPort));
  fs.writeFileSync(path.join(work, 'gyre-mem.yaml'), gyreConf(memPort));
  fs.writeFileSync(path.join(work, 'gyre-traces.yaml'), gyreConf(trPort, `store: {sqlite: "${path.join(work, 'traces.db')}", traces: true}\n`));

  const up = start('up', 'nginx', ['-p', work, '-c', path.join(work, 'up.conf')], {}, 1);
  const px = start('px', 'nginx', ['-p', work, '-c', path.join(work, 'px.conf')]);
  const gy = SKIP_GYRE ? null : start('gyre', GYRE, ['serve', '--config', path.join(work, 'gyre.yaml')]);
  const gt = SKIP_GYRE || SKIP_TRACES ? null : start('gyre-traces', GYRE, ['serve', '--config', path.join(work, 'gyre-traces.yaml')]);
  if (SKIP_GYRE) log(fs.existsSync(GYRE) ? 'BENCH_SKIP_GYRE=1: gyre skipped' : 'build/gyre is missing: gyre skipped (run make first)');
  let pk = null;
  const targets = [
    { name: 'upstream alone (nginx return)', key: 'upstream', url: `http://127.0.0.1:${upPort}/v1/chat/completions`, pids: () => [up.pid, ...childPids(up.pid)] },
    { name: `nginx proxy_pass (${WORKERS} worker)`, key: 'nginx', url: `http://127.0.0.1:${pxPort}/v1/chat/completions`, pids: () => [px.pid, ...childPids(px.pid)] },
  ];
  if (gy) targets.push({ name: `gyre (${WORKERS} worker)`, key: 'gyre', url: `http://127.0.0.1:${gyPort}/v1/chat/completions`, pids: () => [gy.pid] });
  // Its CPU time includes the writer thread's (compression, SQLite): one process.
  if (gt) targets.push({ name: `gyre with traces and bodies (${WORKERS} worker)`, key: 'gyre_traces', url: `http://127.0.0.1:${trPort}/v1/chat/completions`, pids: () => [gt.pid] });
  // Every proxy must hand back the upstream's completion, or it is not
  // proxying what we think it is.
  const fromUpstream = (who, text) => {
    let content;
    try { content = JSON.parse(text).choices[0].message.content; } catch { /* not a completion */ }
    if (content !== 'Hello, benchmark!') throw new Error(`${who} did not return the upstream's completion: ${text.slice(0, 200)}`);
  };
  fromUpstream('the upstream', await waitHttp(targets[0].url, chat));
  fromUpstream('nginx proxy_pass', await waitHttp(targets[1].url, chat));
  if (gy) fromUpstream('gyre', await waitHttp(targets[2].url, chat));
  if (gt) fromUpstream('gyre with traces', await waitHttp(targets[3].url, chat));
  if (!SKIP_PORTKEY) {
    const entry = path.join(ROOT, 'bench/node_modules/@portkey-ai/gateway/build/start-server.js');
    pk = start('portkey', 'node', [entry, `--port=${pkPort}`, '--headless'], { env: { ...env, NODE_ENV: 'production' } });
    const pkUrl = `http://127.0.0.1:${pkPort}/v1/chat/completions`;
    fromUpstream('Portkey', await waitHttp(pkUrl, JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }),
      { 'x-portkey-provider': 'openai', 'x-portkey-custom-host': `http://127.0.0.1:${upPort}/v1`, authorization: 'Bearer sk-bench' }, 30000));
    targets.push({ name: 'Portkey gateway (node)', key: 'portkey', url: pkUrl, seconds: PORTKEY_SECONDS, pids: () => [pk.pid],
      env: { BENCH_MODEL: 'gpt-4o-mini', BENCH_PORTKEY_HOST: `http://127.0.0.1:${upPort}/v1` } });
  }

  const runs = Object.fromEntries(targets.map((t) => [t.key, []]));
  for (let r = 0; r < ROUNDS; r++) {
    const order = targets.map((_, i) => targets[(i + r) % targets.length]);
    for (const t of order) {
      // This machine is shared: give whatever else runs on it (a build, a
      // fuzzer) a bounded chance to finish before a run, so that a run does
      // not start into someone else's burst. The share is recorded per run.
      // The share of the CPUs that processes other than ours (wrk, the target,
      // the upstream, this script) used during a run: user + system time from
      // /proc/stat less our processes' own. Interrupt time is left out of both
      // (loopback traffic is accounted there, to no process).
      const upPids = [up.pid, ...childPids(up.pid)];
      let res = null, busy = 0;
      for (let attempt = 0; attempt <= RETRIES; attempt++) {
        busy = await busyShare(500);
        const deadline = Date.now() + QUIET_WAIT * 1000;
        if (busy > 0.15 && QUIET_WAIT > 0) {
          log(`CPUs ${Math.round(busy * 100)}% busy: waiting up to ${QUIET_WAIT} s for them to quiet down`);
          while (busy > 0.15 && Date.now() < deadline) busy = await busyShare(500);
        }
        const ours = [...new Set([...t.pids(), ...upPids])];
        const s0 = cpuTimes(), o0 = ticksOf(ours) + selfTicks();
        const r1 = wrk(t.url, t.seconds ?? SECONDS, t.env, t.pids());
        const s1 = cpuTimes(), o1 = ticksOf(ours) + selfTicks();
        const d = s1.map((x, i) => x - s0[i]), total = d.reduce((a, x) => a + x, 0);
        r1.cpu_busy_before = busy;
        r1.foreign_cpu_share = total > 0 ? Math.round(Math.max(0, d[0] + d[1] + d[2] - (o1 - o0)) / total * 100) / 100 : 0;
        r1.attempt = attempt + 1;
        if (!res || r1.foreign_cpu_share < res.foreign_cpu_share) res = r1;
        if (r1.foreign_cpu_share <= DISTURBED) break;
        log(`round ${r + 1}/${ROUNDS} ${t.key}: other processes took ${Math.round(r1.foreign_cpu_share * 100)}% of the CPUs (${r1.rps.toFixed(0)} req/s)${attempt < RETRIES ? ': again' : ': keeping the least disturbed attempt'}`);
      }
      runs[t.key].push(res);
      log(`round ${r + 1}/${ROUNDS} ${t.key.padEnd(8)} ${res.rps.toFixed(0).padStart(7)} req/s  p50 ${res.p50.toFixed(0)} µs  p99 ${res.p99.toFixed(0)} µs  cpu ${res.cpu_us_per_req.toFixed(1)} µs/req${res.non2xx ? `  NON-2XX ${res.non2xx}` : ''}${res.socketErrors ? `  socket errors ${res.socketErrors}` : ''}${res.foreign_cpu_share > DISTURBED ? `  (disturbed: others took ${Math.round(res.foreign_cpu_share * 100)}% of the CPUs)` : ''}`);
    }
  }
  const summary = {};
  for (const t of targets) {
    const rs = runs[t.key];
    summary[t.key] = {
      name: t.name, rps: median(rs.map((x) => x.rps)), p50_us: median(rs.map((x) => x.p50)), p99_us: median(rs.map((x) => x.p99)),
      cpu_us_per_req: median(rs.map((x) => x.cpu_us_per_req)),
      rounds: rs, non2xx: rs.reduce((a, x) => a + x.non2xx, 0), errors: rs.reduce((a, x) => a + x.errors, 0),
    };
  }
  const portkeyRss = pk ? rss(pk.pid) : null;

  // Memory: a fresh gyre, warmed up, idle; then 1000 idle client connections.
  log('memory: idle RSS and RSS per idle connection');
  const perConn = async (pidsOf, port) => {
    const before = pidsOf().reduce((a, p) => a + rss(p), 0);
    const holder = spawn('node', [path.join(ROOT, 'bench/proxy/idle.mjs'), String(port), String(IDLE_CONNS), '4000'], { stdio: ['ignore', 'pipe', 'inherit'] });
    children.push(holder);
    await new Promise((resolve) => holder.stdout.once('data', resolve));
    await sleep(500);
    const during = pidsOf().reduce((a, p) => a + rss(p), 0);
    await new Promise((resolve) => holder.on('exit', resolve));
    return (during - before) / IDLE_CONNS;
  };
  let gyreIdle = null, gyrePerConn = null;
  if (gy) {
    const gm = start('gyre-mem', GYRE, ['serve', '--config', path.join(work, 'gyre-mem.yaml')]);
    const memUrl = `http://127.0.0.1:${memPort}/v1/chat/completions`;
    await waitHttp(memUrl, chat);
    execFileSync('wrk', ['-t1', '-c8', '-d1s', '-s', path.join(ROOT, 'bench/proxy/chat.lua'), memUrl], { encoding: 'utf8' });
    await sleep(2500); // idle pooled upstream connections close after 2 s
    gyreIdle = rss(gm.pid);
    gyrePerConn = await perConn(() => [gm.pid], memPort);
  }
  const nginxPerConn = await perConn(() => [px.pid, ...childPids(px.pid)], pxPort);

  const g = summary.gyre, n = summary.nginx, p = summary.portkey, gtr = summary.gyre_traces;
  const result = {
    date: new Date().toISOString(), machine: { nproc: os.cpus().length, kernel: os.release(), cpu: os.cpus()[0]?.model, cpu_busy_before: busy0 },
    versions: versions(), command: COMMAND, pinned: PIN, seconds: SECONDS, rounds: ROUNDS, conns: CONNS, workers: WORKERS,
    targets: summary,
    ratios: {
      gyre_vs_nginx_rps: g ? g.rps / n.rps : null,
      // Within a round the two run back to back: their ratio there drifts
      // less than the ratio of the medians when the machine's load changes.
      gyre_vs_nginx_rps_per_round: g ? g.rounds.map((x, i) => x.rps / n.rounds[i].rps) : null,
      gyre_p99_minus_nginx_p99_us: g ? g.p99_us - n.p99_us : null,
      gyre_vs_portkey_rps: g && p ? g.rps / p.rps : null,
      gyre_vs_nginx_cpu_per_req: g ? g.cpu_us_per_req / n.cpu_us_per_req : null,
      // Full capture against plain gyre (target: >= 0.90, i.e. capture costs < 10 % of the req/s); round by
      // round as well, since the two run back to back.
      gyre_traces_vs_gyre_rps: g && gtr ? gtr.rps / g.rps : null,
      gyre_traces_vs_gyre_rps_per_round: g && gtr ? gtr.rounds.map((x, i) => x.rps / g.rounds[i].rps) : null,
      gyre_traces_minus_gyre_cpu_us_per_req: g && gtr ? gtr.cpu_us_per_req - g.cpu_us_per_req : null,
    },
    memory: { gyre_idle_rss_bytes: gyreIdle, gyre_bytes_per_idle_conn: gyrePerConn, nginx_bytes_per_idle_conn: nginxPerConn, portkey_rss_bytes: portkeyRss },
  };
  const resultsDir = env.BENCH_RESULTS_DIR ? path.resolve(env.BENCH_RESULTS_DIR) : path.join(ROOT, 'bench/results');
  fs.mkdirSync(resultsDir, { recursive: true });
  const stamp = result.date.replace(/[:]/g, '').replace(/\..*/, 'Z');
  fs.writeFileSync(path.join(resultsDir, `proxy-${stamp}.json`), JSON.stringify(result, null, 2) + '\n');
  const md = markdown(result);
  fs.writeFileSync(path.join(resultsDir, 'latest.md'), md);
  const errors = Object.values(summary).reduce((a, s) => a + s.errors, 0);
  // The README shows a full comparison only: not one without gyre or with errors.
  if (env.BENCH_README === '0') log('BENCH_README=0: README.md left alone');
  else if (!gy || errors) log(`README.md left alone (${!gy ? 'gyre not measured' : 'errors'})`);
  else updateReadme(md);
  if (JSON_OUT) process.stdout.write(JSON.stringify(result, null, 2) + '\n');
  else process.stdout.write('\n' + md);
  if (errors) { log(`${errors} non-2xx responses or socket errors: the figures above are not valid`); process.exitCode = 1; }
}

function fmt(n) { return n >= 10000 ? `${(n / 1000).toFixed(1)}k` : n.toFixed(0); }
function us(n) { return n >= 1000 ? `${(n / 1000).toFixed(2)} ms` : `${n.toFixed(0)} µs`; }

function markdown(r) {
  const rows = Object.values(r.targets).map((t) =>
    `| ${t.name}${t.errors ? ` (**${t.errors} errors**)` : ''} | ${fmt(t.rps)} | ${us(t.p50_us)} | ${us(t.p99_us)} | ${(t.rps / r.targets.nginx.rps).toFixed(2)}× | ${t.cpu_us_per_req.toFixed(1)} µs |`);
  const kib = (b) => `${(b / 1024).toFixed(1)} KiB`;
  const mib = (b) => `${(b / 1048576).toFixed(1)} MiB`;
  const q = r.ratios, m = r.memory;
  const lines = [];
  if (q.gyre_vs_nginx_rps !== null) {
    lines.push(`* gyre / nginx proxy_pass: **${q.gyre_vs_nginx_rps.toFixed(2)}×** req/s (round by round: ${q.gyre_vs_nginx_rps_per_round.map((x) => `${x.toFixed(2)}×`).join(', ')}), **${q.gyre_vs_nginx_cpu_per_req.toFixed(2)}×** the CPU time per request; p99 ${q.gyre_p99_minus_nginx_p99_us >= 0 ? '+' : ''}${q.gyre_p99_minus_nginx_p99_us.toFixed(0)} µs against nginx's (target: ≥ 1.0×, ≤ +100 µs).`);
    if (q.gyre_traces_vs_gyre_rps !== null) lines.push(`* gyre with traces and bodies / gyre: **${q.gyre_traces_vs_gyre_rps.toFixed(2)}×** req/s (round by round: ${q.gyre_traces_vs_gyre_rps_per_round.map((x) => `${x.toFixed(2)}×`).join(', ')}), ${q.gyre_traces_minus_gyre_cpu_us_per_req >= 0 ? '+' : ''}${q.gyre_traces_minus_gyre_cpu_us_per_req.toFixed(1)} µs CPU per request (target: ≥ 0.90×).`);
    if (q.gyre_vs_portkey_rps !== null) lines.push(`* gyre / Portkey: **${q.gyre_vs_portkey_rps.toFixed(0)}×** req/s (target: ≥ 50×).`);
    lines.push(`* gyre idle: **${mib(m.gyre_idle_rss_bytes)}** resident (target < 10 MiB); **${kib(m.gyre_bytes_per_idle_conn)}** per idle client connection (target < 20 KiB; nginx: ${kib(m.nginx_bytes_per_idle_conn)}).`);
  } else {
    lines.push(`* gyre not measured (${SKIP_GYRE && fs.existsSync(GYRE) ? 'BENCH_SKIP_GYRE=1' : 'build/gyre missing'}); nginx: ${kib(m.nginx_bytes_per_idle_conn)} per idle client connection.`);
  }
  if (m.portkey_rss_bytes) lines.push(`* Portkey resident after its runs: ${mib(m.portkey_rss_bytes)}.`);
  const all = Object.values(r.targets).flatMap((t) => t.rounds);
  const disturbed = all.filter((x) => x.foreign_cpu_share > DISTURBED).length;
  lines.push(disturbed ? `* **${disturbed} of ${all.length} runs were disturbed**: other processes took more than ${DISTURBED * 100}% of the CPUs during them, even after retries (the JSON has each run's share).`
    : `* Other processes took at most ${DISTURBED * 100}% of the CPUs during every run.`);
  return `Measured by \`${r.command}\` on ${r.date.slice(0, 10)} (${r.machine.nproc} cores, Linux ${r.machine.kernel}):
\`wrk -t1 -c${r.conns}\`, a ${REQUEST_BYTES}-byte chat request, ${r.workers} worker each, median of ${r.rounds} interleaved rounds of ${r.seconds} s
${r.targets.portkey ? `(Portkey: ${PORTKEY_SECONDS} s rounds)` : '(Portkey skipped)'}, ${r.pinned ? 'pinned with taskset (proxy on CPU 0; wrk and upstream on CPU 1)' : 'not pinned to CPUs'}.
The upstream is nginx returning a fixed chat completion.

| target | req/s | p50 | p99 | req/s vs nginx proxy | CPU per request |
| --- | ---: | ---: | ---: | ---: | ---: |
${rows.join('\n')}

${lines.join('\n')}

Reproduce: \`${r.command}\` (\`BENCH_SECONDS\`, \`BENCH_ROUNDS\`, \`BENCH_WORKERS\` to vary; raw numbers in \`bench/results/\`).
`;
}

function updateReadme(md) {
  const file = path.join(ROOT, 'README.md');
  const text = fs.readFileSync(file, 'utf8');
  const start = '<!-- bench:proxy:start -->', end = '<!-- bench:proxy:end -->';
  const a = text.indexOf(start), b = text.indexOf(end);
  if (a < 0 || b < a) { log('README.md has no bench markers; not updated'); return; }
  fs.writeFileSync(file, text.slice(0, a + start.length) + '\n' + md + text.slice(b));
  log('README.md performance section updated');
}

// The spawned servers keep the event loop alive: exit explicitly, which runs
// cleanup() and kills them.
main().then(() => process.exit(), (e) => { log(e.message); process.exit(1); });
