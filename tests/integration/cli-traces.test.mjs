// The trace commands (issue 5): `gyre traces`, `gyre traces show`,
// `gyre sessions show` and `gyre stats` read the store that a running gyre
// writes (SQLite in WAL mode, so they read while it writes), as a table for
// people and, with --json, as the store's own JSON (the query API's).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import fs from 'node:fs';
import { startGyre, startMock, postJson, chatBody, runGyre, bin, tmpdir, SLOW } from '../lib/harness.mjs';

const SESSION = 'sess-cli-1';
const PLANNER = { 'x-gyre-session': SESSION, 'x-gyre-agent': 'planner', 'x-gyre-user': 'user-7', 'x-gyre-tags': 'beta, alpha', 'x-gyre-meta-ticket': 'T-42' };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

let mock, gyre, dir, db;
// The four calls of before(), by name, as the query API returns them (bodies included).
const t = {};
// The same four, newest first.
let newest;

async function getJson(p) {
  const r = await fetch(`${gyre.url}${p}`, { signal: AbortSignal.timeout(5000 * SLOW) });
  const text = await r.text();
  return { status: r.status, json: JSON.parse(text), text };
}

// The writer thread stores a trace shortly after the answer; wait for it, bounded.
async function pollTrace(id) {
  const deadline = Date.now() + 3000 * SLOW;
  while (Date.now() < deadline) {
    const r = await getJson(`/api/traces/${id}`);
    if (r.status === 200) return r.json;
    await sleep(50);
  }
  assert.fail(`trace ${id} was not stored within ${3000 * SLOW} ms`);
}

async function call(body, headers) {
  const res = await postJson(`${gyre.url}/v1/chat/completions`, body, headers);
  const id = res.headers.get('x-gyre-trace-id');
  assert.match(id, /^[0-9a-f]{32}$/);
  return { res, trace: await pollTrace(id) };
}

before(async () => {
  mock = await startMock();
  dir = tmpdir('gyre-cli-traces-');
  db = path.join(dir, 'gyre.db');
  gyre = await startGyre(`workers: 1
store: {sqlite: "${db}", traces: true}
providers:
  - {name: mock, kind: openai, base_url: "${mock.v1}", keys: [sk-cli-secret]}
routes:
  - name: chat
    targets: [{provider: mock, model: gpt-4o-mini}]
`);
  // Oldest first: two calls of one session (one streamed), one of another agent, one that fails.
  t.chat = (await call(chatBody(), PLANNER)).trace;
  t.stream = (await call(chatBody({ stream: true, stream_options: { include_usage: true } }), PLANNER)).trace;
  t.critic = (await call(chatBody({ messages: [{ role: 'user', content: 'Find the flaw.' }] }), { 'x-gyre-agent': 'critic' })).trace;
  await mock.configure({ fault: '500', fault_rate: 1 });
  try {
    const r = await call(chatBody(), { 'x-gyre-agent': 'critic' });
    assert.equal(r.res.status, 500);
    t.failed = r.trace;
  } finally {
    await mock.configure({ fault: null, fault_rate: 1 });
  }
  newest = [t.failed, t.critic, t.stream, t.chat];
});

after(async () => {
  assert.equal((await gyre.stop()).code, 0);
  assert.equal((await mock.stop()).code, 0);
  fs.rmSync(dir, { recursive: true, force: true });
});

/** The summary of a trace, as a page carries it. */
function summary(x) {
  const { request_body: _q, response_body: _a, ...rest } = withoutLoop(x);
  return rest;
}

// /api/traces/{id} adds the trace's feedback, scores and cluster (issue 14); pages and sessions do not.
function withoutLoop(x) {
  const { feedback: _f, scores: _s, cluster: _c, ...rest } = x;
  return rest;
}

/** The table's rows as arrays of cells (columns are two or more spaces apart; no cell holds two spaces). */
function rows(stdout) {
  return stdout.trimEnd().split('\n').map((l) => l.trim().split(/ {2,}/));
}

const HEADER = ['TIME (UTC)', 'TRACE', 'ROUTE', 'PROVIDER/MODEL', 'STATUS', 'LAT_MS', 'TTFT_MS', 'IN', 'OUT', 'COST_USD', 'SESSION/AGENT'];

function utc(us) {
  return new Date(Math.floor(us / 1000)).toISOString().slice(0, 19).replace('T', ' ');
}

// A number printed with `decimals` decimals reads back within half a unit of the last one.
function assertRounded(cell, value, decimals) {
  assert.match(cell, new RegExp(`^\\d+\\.\\d{${decimals}}$`));
  assert.ok(Math.abs(Number(cell) - value) <= 0.5 * 10 ** -decimals + 1e-12, `${cell} is not ${value} to ${decimals} decimals`);
}

// A text cell is the value, or (when the table would pass 120 columns) its start and a '~'.
function assertCut(cell, value) {
  if (cell.endsWith('~') && cell !== value) assert.ok(value.startsWith(cell.slice(0, -1)) && cell.length >= 6, `${cell} is not a cut ${value}`);
  else assert.equal(cell, value);
}

/** Checks one table row against the trace it shows. */
function assertRow(cells, x) {
  assert.equal(cells.length, HEADER.length, `row: ${JSON.stringify(cells)}`);
  assert.equal(cells[0], utc(x.started_us));
  assert.equal(cells[1], x.trace_id.slice(-8));
  assertCut(cells[2], x.route || '-');
  assertCut(cells[3], x.provider ? `${x.provider}/${x.model}` : '-');
  assert.equal(cells[4], String(x.status));
  assertRounded(cells[5], x.latency_us / 1000, 1);
  if (x.ttft_us === null) assert.equal(cells[6], '-');
  else assertRounded(cells[6], x.ttft_us / 1000, 1);
  assert.equal(cells[7], x.prompt_tokens === null ? '-' : String(x.prompt_tokens));
  assert.equal(cells[8], x.completion_tokens === null ? '-' : String(x.completion_tokens));
  if (x.cost_usd === null) assert.equal(cells[9], '-');
  else assertRounded(cells[9], x.cost_usd, 6);
  const who = x.session && x.agent ? `${x.session}/${x.agent}` : x.session || (x.agent ? `-/${x.agent}` : '-');
  assertCut(cells[10], who);
}

// ---- gyre traces ----

test('traces --json prints the store\'s page as the query API gives it: summaries, newest first', async () => {
  const r = await runGyre(['traces', '--db', db, '--json']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr, '');
  const page = JSON.parse(r.stdout);
  assert.deepEqual(page, { data: newest.map(summary), next_cursor: null });
  assert.deepEqual(page, (await getJson('/api/traces')).json);
  assert.doesNotMatch(r.stdout, /sk-cli-secret/);
});

test('traces prints a table that fits 120 columns: one row per trace, newest first, unknowns as -', async () => {
  const r = await runGyre(['traces', '--db', db]);
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trimEnd().split('\n');
  assert.equal(lines.length, 5);
  for (const l of lines) assert.ok(l.length <= 120, `${l.length} columns: ${l}`);
  for (const l of lines) assert.equal(l, l.trimEnd(), 'no trailing spaces');
  const table = rows(r.stdout);
  assert.deepEqual(table[0], HEADER);
  newest.forEach((x, i) => assertRow(table[i + 1], x));
  // Known values, not only consistent ones: the mock's token counts and gpt-4o-mini's price.
  assert.deepEqual(table[4].slice(7, 10), ['6', '5', '0.000004']); // 6 * 0.15e-6 + 5 * 0.60e-6 = 3.9e-6
  assertCut(table[4][10], `${SESSION}/planner`);
  assert.equal(table[1][4], '500');
  assert.equal(table[1][10], '-/critic');
  assert.equal(table[3][6] !== '-', true, 'a stream has a time to first token');
  // Numbers are right-aligned: the LAT_MS column ends where its header ends.
  const end = lines[0].indexOf('LAT_MS') + 'LAT_MS'.length;
  for (const l of lines.slice(1)) assert.match(l.slice(0, end), /\d$/);
});

test('traces filters map to the store query: session, agent, tag, errors, status, route, model, text', async () => {
  const ids = async (...args) => {
    const r = await runGyre(['traces', '--db', db, '--json', ...args]);
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout).data.map((x) => x.trace_id);
  };
  assert.deepEqual(await ids('--session', SESSION), [t.stream.trace_id, t.chat.trace_id]);
  assert.deepEqual(await ids('--agent', 'critic'), [t.failed.trace_id, t.critic.trace_id]);
  assert.deepEqual(await ids('--tag', 'alpha'), [t.stream.trace_id, t.chat.trace_id]);
  assert.deepEqual(await ids('--user', 'user-7', '--agent=planner'), [t.stream.trace_id, t.chat.trace_id]);
  assert.deepEqual(await ids('--errors'), [t.failed.trace_id]);
  assert.deepEqual(await ids('--status', '500'), [t.failed.trace_id]);
  assert.deepEqual(await ids('--status', '200', '--agent', 'critic'), [t.critic.trace_id]);
  assert.deepEqual(await ids('--route', 'chat', '--provider', 'mock', '--model', 'gpt-4o-mini'), newest.map((x) => x.trace_id));
  assert.deepEqual(await ids('--model', 'gpt-4o'), []);
  assert.deepEqual(await ids('--text', 'find the flaw'), [t.critic.trace_id]);
  assert.deepEqual(await ids('--since', '1h'), newest.map((x) => x.trace_id));
  assert.deepEqual(await ids('--from', String(Math.floor(t.critic.started_us / 1e6) + 3600)), []);
  assert.deepEqual(await ids('--to', new Date(t.chat.started_us / 1000 - 60000).toISOString()), []);
  assert.deepEqual(await ids('--min-latency-ms', '600000'), []);
  assert.deepEqual(await ids('--otel-trace-id', t.chat.otel_trace_id ?? t.chat.trace_id), [t.chat.trace_id]);
});

test('an empty page says so', async () => {
  const r = await runGyre(['traces', '--db', db, '--agent', 'nobody']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'no traces\n');
});

test('a page with more after it ends with the command for the next page, and that command gives it', async () => {
  const first = await runGyre(['traces', '--db', db, '--session', SESSION, '--limit', '1']);
  assert.equal(first.code, 0, first.stderr);
  const lines = first.stdout.trimEnd().split('\n');
  assert.equal(lines.length, 3);
  assertRow(rows(lines[1])[0], t.stream);
  const cursor = `${t.stream.started_us}_${t.stream.trace_id}`;
  assert.equal(lines[2], `more: gyre traces --db ${db} --session ${SESSION} --limit 1 --cursor ${cursor}`);
  const args = lines[2].slice('more: gyre '.length).split(' ');
  const second = await runGyre(args);
  assert.equal(second.code, 0, second.stderr);
  const table = rows(second.stdout);
  assert.equal(table.length, 2, 'the last page has no "more:" line');
  assertRow(table[1], t.chat);
});

test('--wide shows whole trace ids', async () => {
  const r = await runGyre(['traces', '--db', db, '--wide', '--limit', '1']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(rows(r.stdout)[1][1], t.failed.trace_id);
});

test('--config reads the store path from the configuration, as gyre serve does', async () => {
  const file = path.join(dir, 'cli.yaml');
  fs.writeFileSync(file, `store: {sqlite: "${db}"}\nproviders: []\nroutes: []\n`);
  const viaConfig = await runGyre(['traces', '--config', file, '--json']);
  assert.equal(viaConfig.code, 0, viaConfig.stderr);
  assert.deepEqual(JSON.parse(viaConfig.stdout).data.map((x) => x.trace_id), newest.map((x) => x.trace_id));
});

// ---- gyre traces show ----

/** A JSON value as the CLI prints a body: two-space indentation, every line indented two more. */
function bodyBlock(v) {
  return JSON.stringify(v, null, 2).split('\n').map((l) => `  ${l}`).join('\n');
}

test('traces show prints the fields, the attempts, the metadata, then both bodies indented', async () => {
  const x = t.chat;
  const r = await runGyre(['traces', 'show', x.trace_id, '--db', db]);
  assert.equal(r.code, 0, r.stderr);
  const [head, attempts, feedback, scores, cluster, reqBody, respBody] = r.stdout.split('\n\n');
  assert.equal(feedback, 'feedback (0):');
  assert.equal(scores, 'scores (0):');
  assert.equal(cluster, 'cluster        -');
  const fields = Object.fromEntries(head.split('\n').map((l) => [l.slice(0, 15).trimEnd(), l.slice(15)]));
  assert.equal(fields.trace, x.trace_id);
  assert.equal(fields['request id'], x.request_id);
  assert.equal(fields.started, `${utc(x.started_us)}.${String(x.started_us % 1e6).padStart(6, '0')} UTC`);
  assert.equal(fields.ended, `${utc(x.ended_us)}.${String(x.ended_us % 1e6).padStart(6, '0')} UTC`);
  assert.equal(fields.endpoint, '/v1/chat/completions');
  assert.equal(fields.route, 'chat');
  assert.equal(fields.provider, 'mock');
  assert.equal(fields.model, 'gpt-4o-mini');
  assert.equal(fields.status, '200');
  assert.equal(fields['finish reason'], 'stop');
  assert.equal(fields['cache hit'], 'no');
  assert.equal(fields['ttft ms'], '-');
  assert.equal(fields.tokens, 'prompt 6, completion 5, cached -, reasoning -');
  assert.equal(fields['cost usd'], '0.000004');
  assert.equal(fields.session, SESSION);
  assert.equal(fields.agent, 'planner');
  assert.equal(fields.user, 'user-7');
  assert.equal(fields.tags, 'alpha, beta');
  assert.equal(fields.meta, 'ticket=T-42');
  const [title, ahead, arow] = attempts.split('\n');
  assert.equal(title, 'attempts (1):');
  assert.equal(ahead, '#  PROVIDER  MODEL        KEY     STATUS  LAT_MS  ERROR');
  assert.match(arow, /^1  mock      gpt-4o-mini  mock#0     200  [ \d]{4}\.\d  -$/);
  assertRounded(arow.split(/ +/)[5], x.attempts[0].latency_us / 1000, 1);
  assert.equal(reqBody, `request body:\n${bodyBlock(chatBody())}`);
  assert.equal(respBody, `response body:\n${bodyBlock(x.response_body)}\n`);
  assert.doesNotMatch(r.stdout, /sk-cli-secret/);
});

test('traces show of a failed call lists the attempt with its status and error', async () => {
  const r = await runGyre(['traces', 'show', t.failed.trace_id, '--db', db]);
  assert.equal(r.code, 0, r.stderr);
  const attempts = r.stdout.split('\n\n')[1].split('\n');
  assert.equal(attempts[0], `attempts (${t.failed.attempts.length}):`);
  const cells = attempts[2].split(/ {2,}/);
  assert.deepEqual(cells.slice(0, 5), ['1', 'mock', 'gpt-4o-mini', 'mock#0', '500']);
  assert.equal(cells[6], t.failed.attempts[0].error);
  assert.match(cells[6], /^provider 'mock' answered 500: /);
});

test('traces show of a stream prints its reassembled answer and time to first token', async () => {
  const x = t.stream;
  const r = await runGyre(['traces', 'show', x.trace_id, '--db', db]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^endpoint {7}\/v1\/chat\/completions \(stream\)$/m);
  assert.match(r.stdout, /^ttft ms {8}\d+\.\d$/m);
  assert.ok(r.stdout.endsWith(`response body:\n${bodyBlock(x.response_body)}\n`));
});

test('traces show --json prints the store\'s trace as GET /api/traces/{id} does', async () => {
  const r = await runGyre(['traces', 'show', '--json', t.critic.trace_id, '--db', db]);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), t.critic);
});

test('traces show takes the short id the table prints', async () => {
  const r = await runGyre(['traces', 'show', t.critic.trace_id.slice(-8), '--db', db, '--json']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(JSON.parse(r.stdout).trace_id, t.critic.trace_id);
});

test('traces show of an unknown id is "not found", exit 1', async () => {
  const id = '0123456789abcdef0123456789abcdef';
  const r = await runGyre(['traces', 'show', id, '--db', db]);
  assert.equal(r.code, 1);
  assert.equal(r.stdout, '');
  assert.equal(r.stderr, `gyre traces show: trace ${id}: not found\n`);
  const short = await runGyre(['traces', 'show', 'ffffff0', '--db', db]);
  assert.equal(short.code, 1);
  assert.equal(short.stderr, 'gyre traces show: trace ffffff0: not found\n');
});

// ---- gyre sessions show ----

test('sessions show prints the session\'s calls oldest first, then the totals', async () => {
  const r = await runGyre(['sessions', 'show', SESSION, '--db', db]);
  assert.equal(r.code, 0, r.stderr);
  const [title, table, total] = r.stdout.trimEnd().split('\n\n');
  assert.equal(title, `session ${SESSION}: 2 calls, oldest first`);
  const cells = rows(table);
  assert.deepEqual(cells[0], HEADER);
  assertRow(cells[1], t.chat);
  assertRow(cells[2], t.stream);
  const cost = (t.chat.cost_usd + t.stream.cost_usd).toFixed(6);
  const span = ((t.stream.ended_us - t.chat.started_us) / 1000).toFixed(1);
  assert.match(total, new RegExp(`^total: 2 calls, 0 errors, tokens in 12 out ${t.chat.completion_tokens + t.stream.completion_tokens}, cost_usd ${cost}, \\d+\\.\\d ms first start to last end$`));
  assertRounded(total.match(/(\d+\.\d) ms/)[1], Number(span), 1);
});

test('sessions show --json prints the store\'s session', async () => {
  const r = await runGyre(['sessions', 'show', SESSION, '--db', db, '--json']);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), { session: SESSION, traces: [t.chat, t.stream].map(withoutLoop) });
  const missing = await runGyre(['sessions', 'show', 'no-such-session', '--db', db]);
  assert.equal(missing.code, 1);
  assert.equal(missing.stderr, 'gyre sessions show: session no-such-session: not found\n');
});

// ---- gyre stats ----

test('stats --json prints the store\'s answer: the totals over the four calls', async () => {
  const r = await runGyre(['stats', '--db', db, '--json']);
  assert.equal(r.code, 0, r.stderr);
  const s = JSON.parse(r.stdout);
  assert.equal(s.total.requests, 4);
  assert.equal(s.total.errors, 1);
  assert.equal(s.total.error_rate, 0.25);
  assert.equal(s.total.prompt_tokens, newest.reduce((n, x) => n + (x.prompt_tokens ?? 0), 0));
  assert.equal(s.total.completion_tokens, newest.reduce((n, x) => n + (x.completion_tokens ?? 0), 0));
  assert.equal(s.bucket_us, null);
  assert.deepEqual(s.groups, []);
  assert.deepEqual(s.buckets, []);
  assert.equal(s.to_us - s.from_us, 24 * 3600 * 1e6, 'the default range is the last 24 h');
});

test('stats prints the totals, then a row per group', async () => {
  const r = await runGyre(['stats', '--db', db, '--by', 'agent']);
  assert.equal(r.code, 0, r.stderr);
  const j = JSON.parse((await runGyre(['stats', '--db', db, '--by', 'agent', '--json'])).stdout);
  const [total, groups] = r.stdout.trimEnd().split('\n\n');
  const lines = total.split('\n');
  assert.match(lines[0], /^range {8}\d{4}-\d\d-\d\d \d\d:\d\d:\d\d to \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$/);
  assert.equal(lines[1], 'requests     4');
  assert.equal(lines[2], 'errors       1 (25.0%)');
  assert.match(lines[3], /^latency ms {3}p50 \d+\.\d, p95 \d+\.\d, p99 \d+\.\d$/);
  assert.match(lines[4], /^ttft ms {6}p50 \d+\.\d, p95 \d+\.\d, p99 \d+\.\d$/);
  assert.equal(lines[5], `tokens       prompt ${j.total.prompt_tokens}, completion ${j.total.completion_tokens}, cached ${j.total.cached_tokens ?? '-'}, reasoning ${j.total.reasoning_tokens ?? '-'}`);
  const table = rows(groups);
  assert.equal(table[0][0], `groups (${j.groups.length}):`);
  assert.deepEqual(table[1], ['AGENT', 'REQS', 'ERRS', 'ERR_%', 'P50_MS', 'P95_MS', 'P99_MS', 'TTFT_P50', 'TTFT_P95', 'IN', 'OUT', 'COST_USD']);
  const byAgent = Object.fromEntries(table.slice(2).map((c) => [c[0], c]));
  assert.deepEqual(Object.keys(byAgent).sort(), ['critic', 'planner']);
  assert.deepEqual(byAgent.critic.slice(1, 4), ['2', '1', '50.0']);
  assert.deepEqual(byAgent.planner.slice(1, 4), ['2', '0', '0.0']);
  assert.equal(byAgent.critic[8], '-', 'no stream among the critic\'s calls: no TTFT');
  assert.equal(byAgent.planner[9], String(t.chat.prompt_tokens + t.stream.prompt_tokens));
});

test('stats --bucket prints a row per time bucket', async () => {
  const r = await runGyre(['stats', '--db', db, '--since', '2h', '--bucket', '1h', '--json']);
  assert.equal(r.code, 0, r.stderr);
  const s = JSON.parse(r.stdout);
  assert.equal(s.bucket_us, 3600e6);
  const text = await runGyre(['stats', '--db', db, '--since', '2h', '--bucket', '1h']);
  assert.equal(text.code, 0, text.stderr);
  const table = rows(text.stdout.trimEnd().split('\n\n')[1]);
  assert.equal(table[0][0], `buckets (${s.buckets.length}):`);
  assert.equal(table[1][0], 'START (UTC)');
  assert.deepEqual(table.slice(2).map((c) => [c[0], c[1]]), s.buckets.map((b) => [utc(b.start_us), String(b.requests)]));
  assert.equal(s.buckets.reduce((n, b) => n + b.requests, 0), 4);
});

// ---- errors ----

test('an unknown flag is named, with the usage, exit 2', async () => {
  for (const [args, msg] of [
    [['traces', '--colour'], "gyre traces: unknown option '--colour'\n"],
    [['traces', 'show', 'abc', '--colour'], "gyre traces show: unknown option '--colour'\n"],
    [['stats', '--colour'], "gyre stats: unknown option '--colour'\n"],
    [['sessions', 'show', SESSION, '--colour'], "gyre sessions show: unknown option '--colour'\n"],
  ]) {
    const r = await runGyre([...args, '--db', db]);
    assert.equal(r.code, 2, args.join(' '));
    assert.equal(r.stdout, '');
    assert.ok(r.stderr.startsWith(`${msg}\nusage: gyre `), r.stderr);
  }
});

test('a bad flag value is named, exit 2', async () => {
  for (const [args, msg] of [
    [['traces', '--status', 'abc'], "gyre traces: --status must be an HTTP status from 100 to 599, got 'abc'"],
    [['traces', '--limit', '0'], "gyre traces: --limit must be a whole number from 1 to 1000, got '0'"],
    [['traces', '--since', '5x'], "gyre traces: --since must be a duration such as 30s, 15m, 1h, 24h or 7d, got '5x'"],
    [['traces', '--from', 'yesterday'], "gyre traces: --from must be an RFC 3339 time (2026-12-01T10:00:00Z) or unix seconds, got 'yesterday'"],
    [['traces', '--cursor', 'nonsense'], 'gyre traces: --cursor: "nonsense" is not one this API returned (expected <started_us>_<trace_id>)'],
    [['traces', '--route'], 'gyre traces: --route needs a value'],
    [['stats', '--by', 'colour'], "gyre stats: --by: unknown dimension 'colour' (known: route, provider, model, agent, user, key, team)"],
  ]) {
    const r = await runGyre([args[0], '--db', db, ...args.slice(1)]);
    assert.equal(r.code, 2, args.join(' '));
    assert.equal(r.stderr, `${msg}\n`);
  }
});

test('a missing store is a clear error, exit 1, and is not created', async () => {
  const missing = path.join(dir, 'none.db');
  const r = await runGyre(['traces', '--db', missing]);
  assert.equal(r.code, 1);
  assert.equal(r.stderr, `gyre traces: no trace store at ${missing}: start gyre with store: {sqlite: ${missing}}, or pass --db PATH\n`);
  assert.equal(fs.existsSync(missing), false);
  const s = await runGyre(['stats', '--db', missing]);
  assert.equal(s.code, 1);
  assert.equal(s.stderr, `gyre stats: no trace store at ${missing}: start gyre with store: {sqlite: ${missing}}, or pass --db PATH\n`);
});

test('without --db or --config the store is the embedded default\'s, ./gyre.db', async () => {
  const cwd = tmpdir('gyre-cli-nodb-');
  try {
    const r = await new Promise((resolve) => {
      const p = spawn(bin('gyre'), ['traces'], { cwd, env: { ...process.env, GYRE_MOCK_URL: '' }, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '', stderr = '';
      p.stdout.on('data', (d) => { stdout += d; });
      p.stderr.on('data', (d) => { stderr += d; });
      const timer = setTimeout(() => p.kill('SIGKILL'), 10000 * SLOW);
      p.on('exit', (code) => { clearTimeout(timer); resolve({ code, stdout, stderr }); });
    });
    assert.equal(r.code, 1);
    assert.equal(r.stderr, 'gyre traces: no trace store at ./gyre.db: start gyre with store: {sqlite: ./gyre.db}, or pass --db PATH\n');
    // The store's file and its write-ahead log: a copy of both is the store as it is now.
    fs.copyFileSync(db, path.join(cwd, 'gyre.db'));
    if (fs.existsSync(`${db}-wal`)) fs.copyFileSync(`${db}-wal`, path.join(cwd, 'gyre.db-wal'));
    const again = await new Promise((resolve) => {
      const p = spawn(bin('gyre'), ['traces', '--json', '--limit', '1'], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      p.stdout.on('data', (d) => { stdout += d; });
      p.on('exit', (code) => resolve({ code, stdout }));
    });
    assert.equal(again.code, 0);
    assert.equal(JSON.parse(again.stdout).data.length, 1);
  } finally {
    fs.rmSync(cwd, { recursive: true, force: true });
  }
});

test('each command has --help, exit 0', async () => {
  for (const [args, first] of [
    [['traces', '--help'], 'usage: gyre traces [FILTERS]'],
    [['traces', 'show', '--help'], 'usage: gyre traces [FILTERS]'],
    [['sessions', '--help'], 'usage: gyre sessions show ID'],
    [['stats', '--help'], 'usage: gyre stats '],
    [['help', 'stats'], 'usage: gyre stats '],
  ]) {
    const r = await runGyre(args);
    assert.equal(r.code, 0, args.join(' '));
    assert.ok(r.stdout.startsWith(first), `${args.join(' ')}:\n${r.stdout}`);
  }
});

// Last, since it adds a call that the tests above do not count.
test('a value too long for 120 columns is cut, ending in ~, and the whole of it is in --wide', async () => {
  const session = `run-${'x'.repeat(70)}`;
  const long = (await call(chatBody(), { 'x-gyre-session': session, 'x-gyre-agent': 'planner' })).trace;
  const r = await runGyre(['traces', '--db', db, '--session', session]);
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trimEnd().split('\n');
  assert.equal(lines.length, 2);
  assert.equal(lines[1].length, 120);
  const cells = rows(r.stdout)[1];
  assert.match(cells[10], /^run-x+~$/);
  assertRow(cells, long);
  const wide = await runGyre(['traces', '--db', db, '--session', session, '--wide']);
  assert.equal(rows(wide.stdout)[1][10], `${session}/planner`);
});
