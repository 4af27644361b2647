#!/usr/bin/env node
// agentgen: realistic agent traffic sent through gyre (to gyre-mock), so that
// every trace is a real one, with its ground truth written beside it
// (bench/agentgen/README.md).
//
//   node bench/agentgen/agentgen.mjs --gyre URL --mock URL [--seed N] [--sessions N]
//        [--concurrency N] [--out DIR] [--route R] [--error-route R] [--slow-route R]
//        [--key KEY] [--prefix P] [--no-feedback]
//
// Each session is one agent's trajectory, one call through gyre per step with
// the growing conversation: the system prompt and the user's task with the
// family's tools declared (gyre-mock answers a call to the first tool), the
// tool's result (it answers in text), and in a four-step session a follow-up
// turn that calls the second tool and its result.  Planted failures sit on a
// session's last call: a refusal (the tool result the mock echoes starts with
// a refusal phrase), invalid JSON (JSON asked for with response_format, text
// answered), an error (the call goes to --error-route, whose provider key
// gyre-mock faults with a 500) and a slow call (--slow-route, faulted with
// slow-first-byte: 2 s before the first byte).  It writes DIR/truth.jsonl
// (one line per trace) and DIR/summary.json (the counts).
import fs from 'node:fs';
import path from 'node:path';
import { loadVocab, planSessions, taskText, expand } from './vocab.mjs';

// The provider keys the gyre config gives the error and slow routes' providers (README.md's config):
// gyre-mock faults only requests that carry them.
export const ERROR_KEY = 'sk-agentgen-error';
export const SLOW_KEY = 'sk-agentgen-slow';
// Every call is bounded: the slow fault waits 2 s, so 30 s means something is wrong.
const CALL_TIMEOUT_MS = 30000;

function parseArgs(argv) {
  const o = {
    gyre: null, mock: null, seed: 1, sessions: 100, concurrency: 8, out: 'agentgen-out', route: 'agents',
    errorRoute: 'agents-error', slowRoute: 'agents-slow', key: null, prefix: null, feedback: true,
  };
  const num = (name, v) => {
    if (!/^[0-9]+$/.test(v ?? '')) throw new Error(`${name}: expected a whole number, got ${JSON.stringify(v)}`);
    return Number(v);
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const v = () => { if (i + 1 >= argv.length) throw new Error(`${a}: missing its value`); return argv[++i]; };
    switch (a) {
      case '--gyre': o.gyre = v().replace(/\/+$/, ''); break;
      case '--mock': o.mock = v().replace(/\/+$/, ''); break;
      case '--seed': o.seed = num(a, v()); break;
      case '--sessions': o.sessions = num(a, v()); break;
      case '--concurrency': o.concurrency = Math.max(1, num(a, v())); break;
      case '--out': o.out = v(); break;
      case '--route': o.route = v(); break;
      case '--error-route': o.errorRoute = v(); break;
      case '--slow-route': o.slowRoute = v(); break;
      case '--key': o.key = v(); break;
      case '--prefix': o.prefix = v(); break;
      case '--no-feedback': o.feedback = false; break;
      case '--help': case '-h':
        process.stdout.write(fs.readFileSync(new URL(import.meta.url), 'utf8').split('\n').slice(1, 9).map((l) => l.replace(/^\/\/ ?/, '')).join('\n') + '\n');
        process.exit(0);
        break;
      default: throw new Error(`unknown option ${a} (--help lists them)`);
    }
  }
  if (!o.gyre) throw new Error('--gyre URL is required (gyre\'s listen address, e.g. http://127.0.0.1:8080)');
  if (!o.mock) throw new Error('--mock URL is required (gyre-mock\'s, to stage the error and slow calls)');
  return o;
}

async function mockConfig(mock, body) {
  const r = await fetch(`${mock}/_mock/config`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body),
    signal: AbortSignal.timeout(5000),
  });
  if (!r.ok) throw new Error(`gyre-mock ${mock}/_mock/config answered ${r.status}: ${await r.text()}`);
}

/** Reads an OpenAI chat stream into the message it carries (content and tool calls). */
function readStream(text) {
  const msg = { role: 'assistant', content: '' };
  let finish = null;
  for (const line of text.split(/\r?\n/)) {
    if (!line.startsWith('data:')) continue;
    const d = line.slice(5).trim();
    if (d === '[DONE]') break;
    let ev;
    try { ev = JSON.parse(d); } catch { continue; }
    for (const c of ev.choices || []) {
      if (c.delta?.content) msg.content += c.delta.content;
      for (const tc of c.delta?.tool_calls || []) {
        msg.tool_calls ||= [];
        const t = (msg.tool_calls[tc.index] ||= { id: tc.id, type: 'function', function: { name: '', arguments: '' } });
        if (tc.function?.name) t.function.name = tc.function.name;
        if (tc.function?.arguments) t.function.arguments += tc.function.arguments;
      }
      if (c.finish_reason) finish = c.finish_reason;
    }
  }
  if (msg.tool_calls) msg.content = null;
  return { message: msg, finish };
}

/** One call through gyre; {trace_id, status, message, latency_ms}. */
async function call(o, sess, route, body) {
  const headers = {
    'content-type': 'application/json', 'x-gyre-session': sess.id, 'x-gyre-agent': sess.agent,
    'x-gyre-user': sess.user, 'x-gyre-tags': 'agentgen',
  };
  if (o.key) headers.authorization = `Bearer ${o.key}`;
  const t0 = Date.now();
  const r = await fetch(`${o.gyre}/v1/chat/completions`, {
    method: 'POST', headers, body: JSON.stringify({ model: route, ...body }),
    signal: AbortSignal.timeout(CALL_TIMEOUT_MS),
  });
  // Bounded by gyre's own max_response_bytes and by CALL_TIMEOUT_MS.
  const text = await r.text();
  const trace_id = r.headers.get('x-gyre-trace-id');
  if (!trace_id) throw new Error(`session ${sess.id}: gyre answered ${r.status} without x-gyre-trace-id: ${text.slice(0, 200)}`);
  let message = null;
  if (r.status === 200) {
    if (body.stream) message = readStream(text).message;
    else message = JSON.parse(text).choices[0].message;
  }
  return { trace_id, status: r.status, message, latency_ms: Date.now() - t0 };
}

/** Runs one session's steps; returns its truth lines. */
async function runSession(o, vocab, sess) {
  const fam = vocab.families.find((f) => f.name === sess.family);
  const agent = vocab.agentByName.get(sess.agent);
  const tools = fam.tools.map((t) => ({ type: 'function', function: { name: t.name, description: t.description, parameters: t.parameters } }));
  let task = taskText(fam, sess, vocab);
  if (sess.failure === 'invalid_json') task += ' ' + fam.json_ask;
  const messages = [{ role: 'system', content: agent.system }, { role: 'user', content: task }];
  const out = [];
  for (let step = 1; step <= sess.steps; step++) {
    const last = step === sess.steps;
    // Odd steps ask for a tool call (the first tool, then the second by name); even steps carry its result.
    const body = { messages: structuredClone(messages), tools };
    if (step === 3) body.tool_choice = { type: 'function', function: { name: fam.tools[1].name } };
    if (sess.failure === 'invalid_json') body.response_format = { type: 'json_object' };
    if (last && sess.stream) { body.stream = true; body.stream_options = { include_usage: true }; }
    const route = !last ? o.route : sess.failure === 'error' ? o.errorRoute : sess.failure === 'slow' ? o.slowRoute : o.route;
    const res = await call(o, sess, route, body);
    out.push({
      trace_id: res.trace_id, session: sess.id, agent: sess.agent, family: sess.family, user: sess.user, step,
      steps: sess.steps, kind: step % 2 === 1 ? 'tool_call' : 'answer', status: res.status,
      dup_group: sess.dupGroup === null ? null : `${sess.dupGroup}#${step}`, dup_of: sess.dupOf, edit: sess.edit,
      failure: last ? sess.failure : null, latency_ms: res.latency_ms, feedback: null,
    });
    if (res.status !== 200) {
      if (!(last && sess.failure === 'error')) throw new Error(`session ${sess.id} step ${step}: gyre answered ${res.status}`);
      break;
    }
    if (step % 2 === 1) {
      const tc = res.message.tool_calls?.[0];
      if (!tc) throw new Error(`session ${sess.id} step ${step}: expected a tool call, got ${JSON.stringify(res.message)}`);
      messages.push({ role: 'assistant', content: null, tool_calls: res.message.tool_calls });
      const tool = fam.tools[step === 1 ? 0 : 1];
      // A refusal is planted in the result the final answer echoes: gyre-mock answers with its first 64 characters.
      const content = step + 1 === sess.steps && sess.failure === 'refusal'
        ? vocab.refusals[sess.refusal] : expand(tool.result, sess.slots);
      messages.push({ role: 'tool', tool_call_id: tc.id, content });
    } else if (!last) {
      messages.push({ role: 'assistant', content: res.message.content });
      messages.push({ role: 'user', content: expand(fam.followups[sess.followup], sess.slots) });
    }
  }
  return out;
}

/** Feedback on a session's final trace: thumbs, a rating and maybe a correction.  Returns what gyre took. */
async function giveFeedback(o, sess, line) {
  const fb = sess.feedback;
  const posts = [
    { trace_id: line.trace_id, name: 'thumbs', value: fb.thumbs, ...(fb.correction ? { correction: fb.correction } : {}) },
    { trace_id: line.trace_id, name: 'rating', value: fb.rating },
  ];
  const given = [];
  for (const p of posts) {
    const headers = { 'content-type': 'application/json' };
    if (o.key) headers.authorization = `Bearer ${o.key}`;
    const r = await fetch(`${o.gyre}/v1/feedback`, { method: 'POST', headers, body: JSON.stringify(p), signal: AbortSignal.timeout(10000) });
    const text = await r.text();
    if (r.status >= 300) throw new Error(`feedback on ${line.trace_id} (${p.name}): gyre answered ${r.status}: ${text.slice(0, 200)}`);
    given.push({ name: p.name, value: p.value, correction: p.correction ?? null });
  }
  return given;
}

/**
 * Whether this gyre answers POST /v1/feedback: an empty body is a 400 (a field missing) where it does, and
 * 403 path_not_allowed or 404 where it does not (a gyre before issue 14).
 */
async function feedbackSupported(o) {
  const headers = { 'content-type': 'application/json' };
  if (o.key) headers.authorization = `Bearer ${o.key}`;
  const r = await fetch(`${o.gyre}/v1/feedback`, { method: 'POST', headers, body: '{}', signal: AbortSignal.timeout(10000) });
  await r.arrayBuffer();
  return r.status === 400 || r.status === 422;
}

// The feedback metrics the generator gives (gyre refuses a metric its config does not declare).
export const FEEDBACK_CONFIG = `feedback:
  metrics:
    - {name: thumbs, type: boolean}
    - {name: rating, type: number, min: 1, max: 5}
`;

/**
 * The gyre config the generator expects (README.md): three routes on one gyre-mock (`mockV1`, its /v1 URL),
 * each through its own provider key, so that gyre-mock's per-key faults reach only the error and slow routes.
 * `extra` is appended (FEEDBACK_CONFIG for a gyre that takes feedback).
 */
export function gyreConfig(mockV1, extra = '') {
  return `providers:
  - {name: mock, kind: openai, base_url: "${mockV1}", keys: [sk-agentgen]}
  - {name: mock-error, kind: openai, base_url: "${mockV1}", keys: [${ERROR_KEY}]}
  - {name: mock-slow, kind: openai, base_url: "${mockV1}", keys: [${SLOW_KEY}]}
routes:
  - {name: agents, targets: [{provider: mock, model: gpt-4o-mini}]}
  - {name: agents-error, targets: [{provider: mock-error, model: gpt-4o-mini}]}
  - {name: agents-slow, targets: [{provider: mock-slow, model: gpt-4o-mini}]}
${extra}`;
}

export async function generate(o) {
  const vocab = loadVocab();
  const plan = planSessions(vocab, o.seed, o.sessions, o.prefix ?? `ag${o.seed}`);
  await mockConfig(o.mock, { fault: '500', fault_key: ERROR_KEY, fault_rate: 1 });
  const lines = new Array(plan.length);
  let next = 0;
  const withFeedback = o.feedback && await feedbackSupported(o);
  if (o.feedback && !withFeedback) process.stderr.write('agentgen: this gyre does not answer POST /v1/feedback: no feedback given\n');
  const slow = plan.filter((s) => s.failure === 'slow');
  // The slow calls run after the rest: gyre-mock stages one fault at a time, so it switches to slow-first-byte
  // (on the slow route's key) once the error route's 500s are done.
  const worker = async (queue) => {
    for (;;) {
      const i = next++;
      if (i >= queue.length) return;
      const s = queue[i];
      lines[s.index] = await runSession(o, vocab, s);
      const last = lines[s.index][lines[s.index].length - 1];
      if (s.feedback && withFeedback) last.feedback = await giveFeedback(o, s, last);
    }
  };
  const runAll = async (queue) => {
    next = 0;
    await Promise.all(Array.from({ length: Math.min(o.concurrency, queue.length) }, () => worker(queue)));
  };
  try {
    await runAll(plan.filter((s) => s.failure !== 'slow'));
    await mockConfig(o.mock, { fault: 'slow-first-byte', fault_key: SLOW_KEY, fault_rate: 1 });
    await runAll(slow);
  } finally {
    await mockConfig(o.mock, { fault: null, fault_key: null, fault_rate: 1 }).catch(() => {});
  }
  const truth = lines.flat();
  const summary = summarise(plan, truth, withFeedback);
  fs.mkdirSync(o.out, { recursive: true });
  fs.writeFileSync(path.join(o.out, 'truth.jsonl'), truth.map((l) => JSON.stringify(l)).join('\n') + '\n');
  fs.writeFileSync(path.join(o.out, 'summary.json'), JSON.stringify(summary, null, 1) + '\n');
  return { truth, summary, plan };
}

/** The counts the truth file holds, from the plan (what was meant) and the lines (what was sent). */
export function summarise(plan, truth, withFeedback) {
  const count = (xs, key) => xs.reduce((m, x) => { const k = key(x); if (k !== null) m[k] = (m[k] || 0) + 1; return m; }, {});
  return {
    sessions: plan.length,
    traces: truth.length,
    families: count(plan, (s) => s.family),
    agents: count(plan, (s) => s.agent),
    failures: count(plan, (s) => s.failure),
    dup_sessions: plan.filter((s) => s.dupOf !== null).length,
    dup_groups: new Set(plan.filter((s) => s.dupGroup !== null).map((s) => s.dupGroup)).size,
    steps: count(plan, (s) => String(s.steps)),
    feedback_supported: withFeedback,
    feedback_traces: truth.filter((l) => l.feedback !== null).length,
  };
}

if (import.meta.url === `file://${process.argv[1]}` || process.argv[1]?.endsWith('agentgen.mjs')) {
  let o;
  try { o = parseArgs(process.argv.slice(2)); } catch (e) { process.stderr.write(`agentgen: ${e.message}\n`); process.exit(2); }
  const t0 = Date.now();
  generate(o).then(({ summary }) => {
    process.stderr.write(`agentgen: ${summary.sessions} sessions, ${summary.traces} traces in ${((Date.now() - t0) / 1000).toFixed(1)} s; truth in ${o.out}/truth.jsonl\n`);
    process.stdout.write(JSON.stringify({ ...summary, seed: o.seed }) + '\n');
  }, (e) => { process.stderr.write(`agentgen: ${e.message}\n`); process.exit(1); });
}
