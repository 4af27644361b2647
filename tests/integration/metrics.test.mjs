// GET /metrics (issue 5, point 5): after a known set of calls (a plain
// answer, a stream, a 404 gyre gives itself, a provider's 400, a retry and a
// fallback) every counter has its exact value, summed over two workers;
// Debian's `promtool check metrics` accepts the text with no lint; and the
// Grafana dashboard under contrib/ asks only for families and labels that
// gyre exports, so it cannot drift from them.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { startGyre, startMock, postJson, chatBody, sseData, tmpdir, ROOT, SLOW } from '../lib/harness.mjs';
import { startScripted } from '../lib/scripted-upstream.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const DASHBOARD = path.join(ROOT, 'contrib/grafana/gyre-dashboard.json');

let mock, flaky, down, backup, gyre, dir;
const answers = {};

before(async () => {
  mock = await startMock();
  // m-flaky: 503 the first time, then 200 (the route retries once); status-400: the provider refuses the request.
  const tries = {};
  flaky = await startScripted('flaky', (rec) => {
    if (rec.model === 'status-400') return { status: 400 };
    tries[rec.model] = (tries[rec.model] ?? 0) + 1;
    return tries[rec.model] === 1 ? { status: 503 } : { status: 200 };
  });
  down = await startScripted('down', [{ status: 503 }]);
  backup = await startScripted('backup');
  dir = tmpdir('gyre-metrics-');
  gyre = await startGyre(`workers: 2
store: {sqlite: "${path.join(dir, 'gyre.db')}", traces: true}
providers:
  - {name: mock, kind: openai, base_url: "${mock.v1}", keys: [sk-mock]}
  - {name: flaky, kind: openai, base_url: "${flaky.v1}", keys: [sk-flaky]}
  - {name: down, kind: openai, base_url: "${down.v1}", keys: [sk-down]}
  - {name: backup, kind: openai, base_url: "${backup.v1}", keys: [sk-backup]}
routes:
  - name: chat
    targets: [{provider: mock, model: gpt-4o-mini}]
  - name: retry
    retries: 1
    backoff_ms: 10
    targets: [{provider: flaky, model: m-flaky}]
  - name: bad
    targets: [{provider: flaky, model: status-400}]
  - name: fb
    targets: [{provider: down, model: m-down}]
    fallbacks: [{provider: backup, model: backup-model}]
`);
  const agent = { 'x-gyre-agent': 'planner' };
  const ask = (body, headers = {}) => postJson(`${gyre.url}/v1/chat/completions`, body, headers);
  answers.plain = await ask(chatBody(), agent);
  answers.stream = await ask(chatBody({ stream: true, stream_options: { include_usage: true } }), agent);
  answers.unknown = await ask(chatBody({ model: 'no-such-model' }));
  answers.bad = await ask(chatBody({ model: 'bad' }));
  answers.retry = await ask(chatBody({ model: 'retry' }));
  answers.fb = await ask(chatBody({ model: 'fb' }));
});

after(async () => {
  assert.equal((await gyre.stop()).code, 0);
  assert.equal((await mock.stop()).code, 0);
  for (const u of [flaky, down, backup]) await u.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

async function scrape() {
  const r = await fetch(`${gyre.url}/metrics`, { signal: AbortSignal.timeout(5000 * SLOW) });
  return { status: r.status, type: r.headers.get('content-type'), text: await r.text() };
}

/** {name{labels} -> value} for every sample line, labels as written. */
function samples(text) {
  const out = new Map();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    out.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return out;
}

/** The families a scrape declares: name -> {type, labels: Set}. */
function families(text) {
  const fams = new Map();
  for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) fams.set(m[1], { type: m[2], labels: new Set() });
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? /.exec(line);
    if (!m) continue;
    const base = fams.has(m[1]) ? m[1] : m[1].replace(/_(bucket|sum|count)$/, '');
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="/g)) fams.get(base)?.labels.add(l[1]);
  }
  return fams;
}

// The call is counted when its answer is over, a moment after the client has it: wait, bounded, for all six.
async function settled() {
  const deadline = Date.now() + 3000 * SLOW;
  let s;
  while (Date.now() < deadline) {
    s = samples((await scrape()).text);
    const calls = [...s].filter(([k]) => k.startsWith('gyre_requests_total{')).reduce((a, [, v]) => a + v, 0);
    if (calls === 6 && s.get('gyre_traces_written_total') === 6) return s;
    await sleep(25);
  }
  assert.fail(`the six calls were not all counted and written within ${3000 * SLOW} ms:\n${[...s].join('\n')}`);
}

test('the calls were answered as this file expects (the premises of the counts below)', () => {
  const via = (r) => [r.status, r.headers.get('x-gyre-provider'), r.headers.get('x-gyre-attempts')];
  assert.deepEqual(via(answers.plain), [200, 'mock', '1']);
  assert.deepEqual(via(answers.stream), [200, 'mock', '1']);
  assert.equal(answers.unknown.status, 404);
  assert.deepEqual(via(answers.bad), [400, 'flaky', '1']);
  assert.deepEqual(via(answers.retry), [200, 'flaky', '2']);
  assert.deepEqual(via(answers.fb), [200, 'backup', '2']);
});

test('GET /metrics answers 200 in the Prometheus text format; HEAD has no body; POST is 405', async () => {
  const r = await scrape();
  assert.equal(r.status, 200);
  assert.equal(r.type, 'text/plain; version=0.0.4; charset=utf-8');
  assert.match(r.text, /^# HELP gyre_requests_total /);
  const head = await fetch(`${gyre.url}/metrics`, { method: 'HEAD' });
  assert.equal(head.status, 200);
  assert.equal(await head.text(), '');
  const post = await fetch(`${gyre.url}/metrics`, { method: 'POST', body: '' });
  assert.equal(post.status, 405);
  assert.equal(post.headers.get('allow'), 'GET');
  assert.equal((await post.json()).error.code, 'method_not_allowed');
});

test('requests and errors count each call once, by route, final provider and model, and status, over both workers', async () => {
  const s = await settled();
  const req = (route, provider, model, status) => s.get(`gyre_requests_total{route="${route}",provider="${provider}",model="${model}",status="${status}"}`);
  assert.equal(req('chat', 'mock', 'gpt-4o-mini', 200), 2);
  assert.equal(req('', '', '', 404), 1);
  assert.equal(req('bad', 'flaky', 'status-400', 400), 1);
  assert.equal(req('retry', 'flaky', 'm-flaky', 200), 1);
  assert.equal(req('fb', 'backup', 'backup-model', 200), 1);
  const errors = [...s].filter(([k]) => k.startsWith('gyre_request_errors_total'));
  assert.deepEqual(errors, [
    ['gyre_request_errors_total{route="",provider="",model="",status="404"}', 1],
    ['gyre_request_errors_total{route="bad",provider="flaky",model="status-400",status="400"}', 1],
  ]);
});

test('every upstream attempt is counted with its own status; a retry and a fallback are counted on the target they left', async () => {
  const s = await settled();
  const pick = (prefix) => [...s].filter(([k]) => k.startsWith(prefix));
  assert.deepEqual(pick('gyre_upstream_attempts_total'), [
    ['gyre_upstream_attempts_total{provider="backup",model="backup-model",status="200"}', 1],
    ['gyre_upstream_attempts_total{provider="down",model="m-down",status="503"}', 1],
    ['gyre_upstream_attempts_total{provider="flaky",model="m-flaky",status="200"}', 1],
    ['gyre_upstream_attempts_total{provider="flaky",model="m-flaky",status="503"}', 1],
    ['gyre_upstream_attempts_total{provider="flaky",model="status-400",status="400"}', 1],
    ['gyre_upstream_attempts_total{provider="mock",model="gpt-4o-mini",status="200"}', 2],
  ]);
  assert.deepEqual(pick('gyre_retries_total').filter(([, v]) => v !== 0), [
    ['gyre_retries_total{route="retry",provider="flaky",model="m-flaky"}', 1],
  ]);
  assert.deepEqual(pick('gyre_fallbacks_total').filter(([, v]) => v !== 0), [
    ['gyre_fallbacks_total{route="fb",provider="down",model="m-down"}', 1],
  ]);
});

test('durations count every call; time to first token counts the stream only', async () => {
  const s = await settled();
  const L = '{route="chat",provider="mock",model="gpt-4o-mini"}';
  assert.equal(s.get(`gyre_request_duration_seconds_count${L}`), 2);
  assert.equal(s.get(`gyre_request_duration_seconds_bucket{route="chat",provider="mock",model="gpt-4o-mini",le="+Inf"}`), 2);
  assert.equal(s.get(`gyre_time_to_first_token_seconds_count${L}`), 1);
  assert.ok(s.get(`gyre_time_to_first_token_seconds_sum${L}`) <= s.get(`gyre_request_duration_seconds_sum${L}`));
  assert.equal(s.get('gyre_request_duration_seconds_count{route="retry",provider="flaky",model="m-flaky"}'), 1);
  assert.equal(s.get('gyre_time_to_first_token_seconds_count{route="retry",provider="flaky",model="m-flaky"}'), undefined);
});

test('tokens are what the providers reported; cost is the known cost, and models without a price have no cost sample', async () => {
  const s = await settled();
  const usage = [answers.plain.json.usage,
    sseData(answers.stream.text).filter((d) => d !== '[DONE]').map((d) => JSON.parse(d)).find((c) => c.usage).usage];
  const prompt = usage[0].prompt_tokens + usage[1].prompt_tokens;
  const completion = usage[0].completion_tokens + usage[1].completion_tokens;
  assert.equal(prompt, 12); // the mock counts "Say hello." as 2 words plus 4 per message, twice
  const T = (type) => s.get(`gyre_tokens_total{route="chat",provider="mock",model="gpt-4o-mini",type="${type}"}`);
  assert.equal(T('prompt'), prompt);
  assert.equal(T('completion'), completion);
  assert.equal(T('cached'), 0);
  assert.equal(T('reasoning'), 0);
  assert.equal(s.get('gyre_tokens_total{route="retry",provider="flaky",model="m-flaky",type="prompt"}'), 3);
  // gpt-4o-mini: $0.15 in, $0.60 out per million tokens (data/prices.json).
  const cost = s.get('gyre_cost_usd_total{route="chat",provider="mock",model="gpt-4o-mini"}');
  const want = (prompt * 0.15 + completion * 0.60) / 1e6;
  assert.ok(Math.abs(cost - want) < 1e-15, `cost ${cost}, expected ${want}`);
  assert.equal(s.get('gyre_cost_usd_total{route="retry",provider="flaky",model="m-flaky"}'), undefined);
  assert.equal(s.get('gyre_cache_hits_total{route="chat"}'), 0);
});

test('the agent families count the calls that sent x-gyre-agent', async () => {
  const s = await settled();
  const agent = [...s].filter(([k]) => k.startsWith('gyre_agent_'));
  const prompt = s.get('gyre_tokens_total{route="chat",provider="mock",model="gpt-4o-mini",type="prompt"}');
  const completion = s.get('gyre_tokens_total{route="chat",provider="mock",model="gpt-4o-mini",type="completion"}');
  assert.deepEqual(agent, [
    ['gyre_agent_requests_total{agent="planner",status_class="2xx"}', 2],
    ['gyre_agent_tokens_total{agent="planner",type="prompt"}', prompt],
    ['gyre_agent_tokens_total{agent="planner",type="completion"}', completion],
    ['gyre_agent_tokens_total{agent="planner",type="cached"}', 0],
    ['gyre_agent_tokens_total{agent="planner",type="reasoning"}', 0],
    ['gyre_agent_cost_usd_total{agent="planner"}', s.get('gyre_cost_usd_total{route="chat",provider="mock",model="gpt-4o-mini"}')],
  ]);
});

test('in flight, the writer and the process: nothing in flight or queued, six traces written, none dropped', async () => {
  const s = await settled();
  assert.equal(s.get('gyre_requests_in_flight'), 0);
  assert.equal(s.get('gyre_trace_queue_depth'), 0);
  assert.equal(s.get('gyre_trace_index_lag_bytes'), 0);
  assert.equal(s.get('gyre_traces_logged_total'), 6);
  assert.equal(s.get('gyre_traces_written_total'), 6);
  assert.equal(s.get('gyre_traces_dropped_total'), 0);
  assert.equal(s.get('gyre_trace_store_errors_total'), 0);
  assert.equal(s.get('gyre_metrics_folded_total{table="calls"}'), 0);
  assert.equal(s.get('gyre_build_info{version="0.1.0"}'), 1);
  const start = s.get('gyre_start_time_seconds');
  assert.ok(start > Date.now() / 1000 - 600 && start <= Date.now() / 1000, `start time ${start}`);
});

test('promtool check metrics accepts the scrape with no lint output', async () => {
  await settled();
  const { text } = await scrape();
  const r = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
  assert.ok(!r.error, `promtool could not run (${r.error?.message}); scripts/install-deps.sh installs Debian's prometheus package, which has it`);
  assert.equal(r.status, 0, `promtool: ${r.stdout}${r.stderr}`);
  assert.equal(r.stdout + r.stderr, '');
});

/** Every PromQL expression of the dashboard, its panels' and its variables'. */
function dashboardExprs(d) {
  const out = [];
  const walk = (panels) => {
    for (const p of panels ?? []) {
      for (const t of p.targets ?? []) out.push({ where: p.title, expr: t.expr });
      walk(p.panels);
    }
  };
  walk(d.panels);
  for (const v of d.templating?.list ?? []) if (v.type === 'query') out.push({ where: `$${v.name}`, expr: v.query?.query ?? v.query });
  return out;
}

test('the Grafana dashboard imports as Grafana 10 expects, on a ${DS_PROMETHEUS} input', () => {
  const d = JSON.parse(fs.readFileSync(DASHBOARD, 'utf8'));
  assert.ok(d.schemaVersion >= 36, `schemaVersion ${d.schemaVersion}`);
  assert.deepEqual(d.__inputs.map((i) => [i.name, i.type, i.pluginId]), [['DS_PROMETHEUS', 'datasource', 'prometheus']]);
  assert.equal(d.uid, 'gyre-overview');
  const panels = [];
  const walk = (ps) => { for (const p of ps ?? []) { panels.push(p); walk(p.panels); } };
  walk(d.panels);
  const ids = panels.map((p) => p.id);
  assert.equal(new Set(ids).size, ids.length, 'panel ids are unique');
  for (const p of panels.filter((x) => x.type !== 'row')) {
    assert.deepEqual(p.datasource, { type: 'prometheus', uid: '${DS_PROMETHEUS}' }, p.title);
    assert.ok(p.targets.length > 0, p.title);
    for (const t of p.targets) assert.ok(t.refId && t.expr, `${p.title}: a target without refId or expr`);
  }
  // What the issue asks the dashboard to show, each by a panel title.
  const titles = panels.map((p) => p.title).join('\n');
  for (const want of [/Requests\/s by route/, /Error rate/, /Latency/, /Time to first token/, /Tokens\/s/, /Cost/, /agent/,
    /In flight/, /Trace queue/, /Trace log/]) assert.match(titles, want);
});

test('every PromQL expression of the dashboard names only families gyre exports, with labels they have', async () => {
  await settled();
  const fams = families((await scrape()).text);
  const d = JSON.parse(fs.readFileSync(DASHBOARD, 'utf8'));
  const exprs = dashboardExprs(d);
  assert.ok(exprs.length >= 20, `${exprs.length} expressions`);
  for (const { where, expr } of exprs) {
    const names = [...expr.matchAll(/\bgyre_[a-zA-Z0-9_]+/g)].map((m) => m[0]);
    assert.ok(names.length > 0, `${where}: ${expr} names no gyre family`);
    const used = [];
    for (const n of names) {
      const base = fams.has(n) ? n : n.replace(/_(bucket|sum|count)$/, '');
      const f = fams.get(base);
      assert.ok(f && (base === n || f.type === 'histogram'), `${where}: ${n} is not a family gyre exports`);
      used.push(f);
    }
    // Labels in selectors and in by (...) / without (...) must be labels of a family the expression reads.
    const labels = new Set();
    for (const m of expr.matchAll(/\{([^}]*)\}/g)) for (const l of m[1].matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)/g)) labels.add(l[1]);
    for (const m of expr.matchAll(/\b(?:by|without)\s*\(([^)]*)\)/g)) for (const l of m[1].split(',')) if (l.trim()) labels.add(l.trim());
    for (const m of expr.matchAll(/label_values\([^,]+,\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\)/g)) labels.add(m[1]);
    for (const l of labels) {
      assert.ok(l === 'le' || l === 'instance' || l === 'job' || used.some((f) => f.labels.has(l)),
        `${where}: label ${l} is not a label of ${names.join(', ')}`);
    }
  }
});
