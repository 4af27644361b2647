// bench-api: the query API's latency over a large store (issue 5's targets:
// /api/traces with a filter < 50 ms p99 at 1M traces; /api/stats over 24 h
// of 1M traces < 500 ms).
//
//   node bench/store/bench-api.mjs [--db PATH] [--fill N] [--n REQUESTS] [--seconds S] [--json]
//
// --db     the store to read (default /tmp/gyre-bench-api.db); when it does
//          not exist it is filled first with bench-writer --fill N (default
//          1000000) traces spread over the last 24 h: 5 routes, 4 providers,
//          10 models, 50 agents, 1000 users, 10k sessions, 5 % errors.
// --n      requests per case after 3 warm-up ones (default 100);
// --seconds  the most one case may take (default 20): a slower case stops
//          early and says how many it measured.
// GYRE_BUILD selects the build (default build): its gyre serves the store,
// and its bench-writer fills it (bench/store/run.sh builds both).
// Writes bench/results/store-<UTC time>.json; --json also prints it.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { startGyre, BUILD, ROOT } from '../../tests/lib/harness.mjs';

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : dflt;
};
const JSON_OUT = args.includes('--json');
const DB = opt('--db', '/tmp/gyre-bench-api.db');
const FILL = Number(opt('--fill', 1000000));
const N = Number(opt('--n', 100));
const SECONDS = Number(opt('--seconds', 20));
const log = (...a) => console.error('bench-api:', ...a);

if (!fs.existsSync(DB)) {
  const writer = path.join(ROOT, BUILD, 'bench-writer');
  log(`filling ${DB} with ${FILL} traces (${writer} --fill)`);
  const r = spawnSync(writer, ['--fill', String(FILL), '--db', DB, '--hours', '24'], { stdio: ['ignore', 'inherit', 'inherit'] });
  if (r.status !== 0) throw new Error(`bench-writer --fill failed (${r.status})`);
}

const gyre = await startGyre(`workers: 1
store: {sqlite: "${DB}"}
providers:
  - {name: none, kind: openai, base_url: "http://127.0.0.1:9", keys: [sk-none]}
routes:
  - name: chat
    targets: [{provider: none, model: m}]
`);

async function get(p) {
  const t0 = process.hrtime.bigint();
  const r = await fetch(`${gyre.url}${p}`);
  const text = await r.text();
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 200) throw new Error(`GET ${p}: ${r.status} ${text.slice(0, 300)}`);
  return { ms, json: JSON.parse(text) };
}

function pct(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))];
}

async function measure(name, p) {
  for (let i = 0; i < 3; i++) await get(p);
  const lat = [];
  const deadline = Date.now() + SECONDS * 1000;
  let rows = null;
  while (lat.length < N && Date.now() < deadline) {
    const { ms, json } = await get(p);
    lat.push(ms);
    if (rows === null) rows = Array.isArray(json.data) ? json.data.length : json.total?.requests ?? null;
  }
  lat.sort((a, b) => a - b);
  const r = { name, path: p, requests: lat.length, rows, p50_ms: +pct(lat, 0.5).toFixed(2), p99_ms: +pct(lat, 0.99).toFixed(2), max_ms: +lat[lat.length - 1].toFixed(2) };
  log(`${name.padEnd(24)} p50 ${String(r.p50_ms).padStart(8)} ms  p99 ${String(r.p99_ms).padStart(8)} ms  (${r.requests} requests, ${rows} rows)  ${p}`);
  return r;
}

let results;
try {
  // Values that exist in the store, read from its newest trace and its stats.
  const { json: page } = await get('/api/traces?limit=1');
  const t = page.data[0];
  if (!t) throw new Error(`${DB} holds no traces`);
  const { json: total } = await get('/api/stats');
  log(`store ${DB}: ${total.total.requests} traces in the last 24 h; sample trace ${t.trace_id}`);
  const now = Date.now();
  const enc = encodeURIComponent;
  const traceCases = [
    ['traces (no filter)', '/api/traces'],
    ['traces route', `/api/traces?route=${enc(t.route)}`],
    ['traces provider', `/api/traces?provider=${enc(t.provider)}`],
    ['traces model', `/api/traces?model=${enc(t.model)}`],
    ['traces agent', `/api/traces?agent=${enc(t.agent)}`],
    ['traces session', `/api/traces?session=${enc(t.session)}`],
    ['traces user', `/api/traces?user=${enc(t.user)}`],
    ['traces tag', `/api/traces?tag=${enc(t.tags[0] || 'prod')}`],
    ['traces otel_trace_id', `/api/traces?otel_trace_id=${enc(t.otel_trace_id)}`],
    ['traces status=500', '/api/traces?status=500'],
    ['traces errors', '/api/traces?errors=1'],
    ['traces min_latency 1s', '/api/traces?min_latency_ms=1000'],
    ['traces text (rare)', '/api/traces?q=zeppelin'],
    ['traces text (common)', '/api/traces?q=lighthouse'],
    ['traces time range 1h', `/api/traces?from=${now - 13 * 3600e3}&to=${now - 12 * 3600e3}`],
    ['traces user+range', `/api/traces?user=${enc(t.user)}&from=${now - 12 * 3600e3}`],
  ];
  const statsCases = [
    ['stats 24h', '/api/stats'],
    ['stats 24h by provider', '/api/stats?group_by=provider'],
    ['stats 24h by model 1h', '/api/stats?group_by=model&bucket=1h'],
    ['stats 24h by user', '/api/stats?group_by=user'],
    ['stats 24h 5m buckets', '/api/stats?bucket=5m'],
  ];
  const out = [];
  for (const [name, p] of [...traceCases, ...statsCases]) out.push(await measure(name, p));
  const traces = out.filter((r) => r.name.startsWith('traces') && r.name !== 'traces text (common)');
  // Every 24-h query counts but the 288 five-minute buckets, which the target does not name.
  const stats = out.filter((r) => r.name.startsWith('stats 24h') && r.name !== 'stats 24h 5m buckets');
  results = {
    when: new Date().toISOString(),
    db: DB,
    traces_in_24h: total.total.requests,
    requests_per_case: N,
    cases: out,
    targets: {
      traces_filtered_p99_ms_max: Math.max(...traces.map((r) => r.p99_ms)),
      traces_target_ms: 50,
      stats_p99_ms_max: Math.max(...stats.map((r) => r.p99_ms)),
      stats_target_ms: 500,
    },
  };
} finally {
  await gyre.stop();
}

const stamp = results.when.replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
const file = path.join(ROOT, 'bench', 'results', `store-${stamp}.json`);
fs.mkdirSync(path.dirname(file), { recursive: true });
fs.writeFileSync(file, JSON.stringify(results, null, 2) + '\n');
log(`traces with a filter: worst p99 ${results.targets.traces_filtered_p99_ms_max} ms (target < 50; the common-word text query is reported, not counted)`);
log(`stats over 24 h: worst p99 ${results.targets.stats_p99_ms_max} ms (target < 500; the 5-minute buckets are reported, not counted)`);
log(`wrote ${path.relative(ROOT, file)}`);
if (JSON_OUT) console.log(JSON.stringify(results));
