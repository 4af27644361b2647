// Datasets (issue 14, point 6): real traffic through gyre (to gyre-mock) becomes a versioned dataset.
// `gyre curate --spec` twice prints the same id (the id is the files' hash), the export passes
// `gyre datasets validate` (OpenAI's fine-tuning format), /api/datasets lists and serves it, POST
// /api/datasets (admin token only) runs the same spec to the same id, and the held-out split shares no
// session with the training split.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import fs from 'node:fs';
import { startGyre, startMock, postJson, runGyre, tmpdir, SLOW } from '../lib/harness.mjs';

const CLIENT = 'sk-client-datasets-1';
const READ = 'read-token-datasets-0123456789';
const ADMIN = 'admin-token-datasets-0123456789';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const WEATHER_TOOL = {
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'The weather in a city now',
    parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
  },
};
const CITIES = ['Oslo', 'Lima', 'Kyoto', 'Quito', 'Perth', 'Dakar', 'Hanoi', 'Tunis', 'Riga', 'Sofia',
  'Accra', 'Cusco', 'Bergen', 'Malmo', 'Porto', 'Turin', 'Davos', 'Cairo', 'Delhi', 'Seoul'];
const TOPICS = ['tax forms', 'bread baking', 'chess openings', 'tide tables', 'violin strings', 'bike gears',
  'tea blends', 'moon phases', 'ant colonies', 'glacier melt', 'jazz chords', 'rose pruning', 'sail knots',
  'coffee roasts', 'bird songs', 'clay firing', 'wool dyeing', 'salt marshes', 'kite design', 'cave maps'];

const SPEC = `source: {routes: [chat]}
unit: session
corrections: true
clusters: {k: 2}
dedup: off
heldout: 0.25
seed: 7
formats: [openai, preference]
`;

let mock, gyre, dir, specFile, configFile;

before(async () => {
  mock = await startMock();
  dir = tmpdir('gyre-datasets-');
  gyre = await startGyre(`workers: 1
store: {sqlite: "${path.join(dir, 'gyre.db')}"}
datasets: "${path.join(dir, 'ds')}"
auth:
  keys: [${CLIENT}]
  read_token: ${READ}
  admin_token: ${ADMIN}
providers:
  - {name: mock, kind: openai, base_url: "${mock.v1}", keys: [sk-mock]}
routes:
  - name: chat
    targets: [{provider: mock, model: gpt-4o-mini}]
feedback:
  metrics:
    - {name: helpful, type: boolean}
`);
  configFile = path.join(gyre.dir, 'gyre.yaml');
  specFile = path.join(dir, 'spec.yaml');
  fs.writeFileSync(specFile, SPEC);
});

after(async () => {
  assert.equal((await gyre.stop()).code, 0);
  assert.equal((await mock.stop()).code, 0);
  fs.rmSync(dir, { recursive: true, force: true });
});

function call(body, session) {
  return postJson(`${gyre.url}/v1/chat/completions`, { model: 'chat', ...body },
    { authorization: `Bearer ${CLIENT}`, 'x-gyre-session': session, 'x-gyre-agent': 'helper' });
}

async function api(p, token = READ, init = {}) {
  const r = await fetch(`${gyre.url}${p}`, {
    ...init,
    headers: { authorization: `Bearer ${token}`, ...(init.headers || {}) },
    signal: AbortSignal.timeout(30000 * SLOW),
  });
  const text = await r.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { status: r.status, json, text, headers: r.headers };
}

const state = {};

const correction = (i) => `${TOPICS[i]}: start small, practise daily, and ask an expert when stuck.`;

test('sixty calls through gyre: twenty tool-using trajectories of two calls, twenty single questions, twelve corrected', async () => {
  for (let i = 0; i < 20; i++) {
    const session = `trip-${i}`;
    const user = { role: 'user', content: `What is the weather in ${CITIES[i]} right now, and should I pack a coat?` };
    const first = await call({ messages: [user], tools: [WEATHER_TOOL] }, session);
    assert.equal(first.status, 200, first.text);
    const msg = first.json.choices[0].message;
    assert.equal(msg.tool_calls.length, 1);
    const second = await call({
      messages: [user, msg, { role: 'tool', tool_call_id: msg.tool_calls[0].id, content: `{"temp_c": ${i}}` }],
      tools: [WEATHER_TOOL],
    }, session);
    assert.equal(second.status, 200, second.text);
    assert.equal(typeof second.json.choices[0].message.content, 'string');
  }
  for (let i = 0; i < 20; i++) {
    const r = await call({
      messages: [{ role: 'system', content: 'You explain hobbies briefly.' },
        { role: 'user', content: `Explain ${TOPICS[i]} to a beginner in two sentences, number ${i}.` }],
    }, `ask-${i}`);
    assert.equal(r.status, 200, r.text);
    if (i < 12) {
      const f = await postJson(`${gyre.url}/v1/feedback`,
        { trace_id: r.headers.get('x-gyre-trace-id'), name: 'helpful', value: false, correction: correction(i) },
        { authorization: `Bearer ${CLIENT}` });
      assert.equal(f.status, 201, f.text);
    }
  }
  // The writer stores traces shortly after their answers: wait for all sixty, bounded.
  const deadline = Date.now() + 5000 * SLOW;
  let n = 0;
  while (Date.now() < deadline) {
    const page = await api('/api/traces?limit=100');
    n = page.json.data.length;
    if (n === 60) break;
    await sleep(50);
  }
  assert.equal(n, 60);
});

test('gyre curate --spec twice prints the same dataset id, and the second finds it written', async () => {
  const a = await runGyre(['curate', '--spec', specFile, '--config', configFile], { ms: 60000 * SLOW });
  assert.equal(a.code, 0, a.stderr);
  const id = a.stdout.trim();
  assert.match(id, /^[0-9a-f]{32}$/);
  const b = await runGyre(['curate', '--spec', specFile, '--config', configFile, '--json'], { ms: 60000 * SLOW });
  assert.equal(b.code, 0, b.stderr);
  const j = JSON.parse(b.stdout);
  assert.equal(j.id, id);
  assert.equal(j.existed, true);
  // unit: session makes one example of each session's last call: 40 sessions, a quarter of them held out.
  assert.equal(j.counts.train + j.counts.heldout, 40);
  assert.equal(j.counts.heldout, 10);
  // Each corrected call is also a preference pair: the correction over what the model said.
  assert.equal(j.counts.preference, 12);
  assert.deepEqual(j.files.map((f) => f.name), ['train.jsonl', 'heldout.jsonl', 'preference.jsonl']);
  assert.equal(fs.readdirSync(path.join(dir, 'ds')).filter((f) => !f.startsWith('.')).length, 1);
  state.id = id;
});

test('gyre curate --decisions writes one line per source example: its cluster, duplicate, selection and split', async () => {
  const file = path.join(dir, 'decisions.jsonl');
  const r = await runGyre(['curate', '--spec', specFile, '--config', configFile, '--decisions', file], { ms: 60000 * SLOW });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.trim(), state.id);
  const lines = fs.readFileSync(file, 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l));
  assert.equal(lines.length, 40); // unit: session, one example per session
  for (const d of lines) {
    assert.deepEqual(Object.keys(d), ['trace_id', 'cluster', 'dup_of', 'passed', 'selected', 'split']);
    assert.match(d.trace_id, /^[0-9a-f]{32}$/);
    assert.equal(d.dup_of, null); // dedup: off
    assert.equal(d.selected, true);
    assert.ok(d.cluster === 0 || d.cluster === 1, `cluster ${d.cluster}`); // clusters: {k: 2}
  }
  assert.equal(lines.filter((d) => d.split === 'heldout').length, 10);
  const man = JSON.parse(fs.readFileSync(path.join(dir, 'ds', state.id, 'manifest.json'), 'utf8'));
  const sft = man.examples.filter((e) => e.file !== 'preference.jsonl');
  assert.deepEqual(new Set(sft.map((e) => `${e.trace_id} ${e.file === 'heldout.jsonl' ? 'heldout' : 'train'} ${e.cluster}`)),
    new Set(lines.map((d) => `${d.trace_id} ${d.split} ${d.cluster}`)));
});

test('the exported training file passes gyre datasets validate and keeps the trajectories with their tools', async () => {
  const out = path.join(dir, 'export');
  const e = await runGyre(['datasets', 'export', state.id, '--format', 'openai', '--out', out, '--config', configFile]);
  assert.equal(e.code, 0, e.stderr);
  const file = path.join(out, 'train.jsonl');
  const v = await runGyre(['datasets', 'validate', file]);
  assert.equal(v.code, 0, v.stdout + v.stderr);
  assert.match(v.stdout, /: 30 lines, 30 valid examples, 0 errors \(openai chat format/);
  const lines = fs.readFileSync(file, 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l));
  const trips = lines.filter((l) => l.tools !== undefined);
  assert.ok(trips.length > 0);
  for (const t of trips) {
    assert.deepEqual(t.tools, [WEATHER_TOOL]);
    assert.deepEqual(t.messages.map((m) => m.role), ['user', 'assistant', 'tool', 'assistant']);
    assert.equal(t.messages[1].tool_calls[0].function.name, 'get_weather');
    assert.equal(t.messages[2].tool_call_id, t.messages[1].tool_calls[0].id);
  }
  const asks = [...lines, ...fs.readFileSync(path.join(dir, 'ds', state.id, 'heldout.jsonl'), 'utf8').trimEnd()
    .split('\n').map((l) => JSON.parse(l))].filter((l) => l.tools === undefined);
  const corrected = asks.filter((l) => l.messages[2].content.includes('start small'));
  assert.equal(corrected.length, 12);
  for (const l of corrected) {
    const i = TOPICS.findIndex((t) => l.messages[1].content.includes(`Explain ${t} `));
    assert.equal(l.messages[2].content, correction(i));
  }
  const held = await runGyre(['datasets', 'export', state.id, '--format', 'heldout', '--out', out, '--config', configFile]);
  assert.equal(held.code, 0, held.stderr);
  const hv = await runGyre(['datasets', 'validate', path.join(out, 'heldout.jsonl'), '--min-examples', '10']);
  assert.equal(hv.code, 0, hv.stdout + hv.stderr);
});

test('the preference export pairs each correction with the answer it corrects, and passes validate', async () => {
  const out = path.join(dir, 'export');
  const e = await runGyre(['datasets', 'export', state.id, '--format', 'preference', '--out', out, '--config', configFile]);
  assert.equal(e.code, 0, e.stderr);
  const file = path.join(out, 'preference.jsonl');
  const v = await runGyre(['datasets', 'validate', file, '--format', 'preference']);
  assert.equal(v.code, 0, v.stdout + v.stderr);
  assert.match(v.stdout, /: 12 lines, 12 valid examples, 0 errors \(preference format/);
  for (const l of fs.readFileSync(file, 'utf8').trimEnd().split('\n').map((x) => JSON.parse(x))) {
    const i = TOPICS.findIndex((t) => l.input.messages[1].content.includes(`Explain ${t} `));
    assert.deepEqual(l.preferred_output, [{ role: 'assistant', content: correction(i) }]);
    assert.equal(l.non_preferred_output[0].role, 'assistant');
    assert.match(l.non_preferred_output[0].content, /^Mock reply to: Explain /);
  }
});

test('a file that breaks the format fails validate with the line and the field', async () => {
  const bad = path.join(dir, 'bad.jsonl');
  const ok = JSON.stringify({ messages: [{ role: 'user', content: 'hi' }, { role: 'assistant', content: 'hello' }] });
  fs.writeFileSync(bad, `${ok}\n`.repeat(10) + `${JSON.stringify({ messages: [{ role: 'bot', content: 'x' }] })}\n`);
  const v = await runGyre(['datasets', 'validate', bad]);
  assert.equal(v.code, 1);
  assert.equal(v.stdout.split('\n')[0],
    `${bad}:11: messages[0].role: 'bot' is not a role of the chat format (system, user, assistant, tool)`);
});

test('the held-out split shares no session with the training split', async () => {
  const m = await api(`/api/datasets/${state.id}`);
  assert.equal(m.status, 200, m.text);
  const sessions = (file) => new Set(m.json.examples.filter((e) => e.file === file).map((e) => e.session));
  const train = sessions('train.jsonl'), held = sessions('heldout.jsonl');
  assert.equal(train.size, 30);
  assert.equal(held.size, 10);
  for (const s of held) assert.equal(train.has(s), false, `session ${s} is on both sides`);
});

test('/api/datasets lists the dataset and serves its manifest and files', async () => {
  const list = await api('/api/datasets');
  assert.equal(list.status, 200, list.text);
  assert.equal(list.json.datasets.length, 1);
  assert.equal(list.json.datasets[0].id, state.id);
  assert.equal(list.json.datasets[0].counts.train, 30);
  assert.equal(list.json.datasets[0].counts.heldout, 10);
  assert.equal(list.json.datasets[0].counts.preference, 12);
  assert.equal(list.json.datasets[0].counts.corrections, 12);
  const man = await api(`/api/datasets/${state.id}`);
  assert.equal(man.json.id, state.id);
  assert.equal(man.json.examples.length, 52); // 40 SFT lines and 12 pairs, each with its trace
  const f = await api(`/api/datasets/${state.id}/files/train.jsonl`);
  assert.equal(f.status, 200);
  assert.equal(f.headers.get('content-type'), 'application/x-ndjson');
  assert.equal(f.text, fs.readFileSync(path.join(dir, 'export', 'train.jsonl'), 'utf8'));
  const missing = await api('/api/datasets/0123456789abcdef0123456789abcdef');
  assert.equal(missing.status, 404);
  assert.equal(missing.json.error.code, 'dataset_not_found');
  const other = await api(`/api/datasets/${state.id}/files/manifest.json`);
  assert.equal(other.status, 404);
});

test('POST /api/datasets needs the admin token, and runs the same spec to the same id', async () => {
  const body = { method: 'POST', headers: { 'content-type': 'application/yaml' }, body: SPEC };
  const denied = await api('/api/datasets', READ, body);
  assert.equal(denied.status, 403, denied.text);
  const r = await api('/api/datasets', ADMIN, body);
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.id, state.id);
  assert.equal(r.json.existed, true);
  // Another seed draws another held-out split: another dataset, written (201), and listed beside the first.
  const other = await api('/api/datasets', ADMIN, { ...body, body: SPEC.replace('seed: 7', 'seed: 8') });
  assert.equal(other.status, 201, other.text);
  assert.equal(other.json.existed, false);
  assert.notEqual(other.json.id, state.id);
  assert.equal(other.json.counts.train + other.json.counts.heldout, 40);
  const list = await api('/api/datasets');
  assert.deepEqual(list.json.datasets.map((d) => d.id).sort(), [state.id, other.json.id].sort());
  const bad = await api('/api/datasets', ADMIN, { ...body, body: 'heldout: 2\n' });
  assert.equal(bad.status, 400, bad.text);
  assert.equal(bad.json.error.code, 'invalid_spec');
});
