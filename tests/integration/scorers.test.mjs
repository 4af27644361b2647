// Scorers (issue 14, point 2): online scoring after the answer is sent, a
// heuristic and an LLM judge whose calls go through gyre's own route (traced
// as agent gyre-judge, with gyre's internal key under auth:, and never scored
// themselves), a malformed verdict asked again, and `gyre score` offline
// with exact counts.  gyre-mock judges deterministically: a verdict passes
// when the ANSWER section contains the REFERENCE section (docs/mock.md).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import fs from 'node:fs';
import { startGyre, startMock, postJson, runGyre, SLOW } from '../lib/harness.mjs';

const CLIENT_KEY = 'sk-client-scorers-1';
const READ_TOKEN = 'rt-scorers-read-1';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

let mock, gyre;
const ids = {};

before(async () => {
  mock = await startMock();
  gyre = await startGyre(`workers: 1
auth: {keys: [${CLIENT_KEY}], read_token: ${READ_TOKEN}}
providers:
  - {name: mock, kind: openai, base_url: "${mock.v1}", keys: [sk-mock-1]}
routes:
  - name: chat
    targets: [{provider: mock, model: gpt-4o-mini}]
  - name: judge
    targets: [{provider: mock, model: judge-model}]
scorers:
  - {name: short, type: length, max_chars: 30, sample: 1.0, routes: [chat]}
  - {name: correct, type: judge, route: judge, rubric: correctness, sample: 1.0, routes: [chat], retries: 2}
  - {name: serial, type: judge, route: judge, rubric: correctness, sample: 0, concurrency: 1}
  - {name: follows, type: judge, route: judge, rubric: instruction_following, sample: 0, concurrency: 1}
`);
});

after(async () => {
  assert.equal((await gyre.stop()).code, 0);
  assert.equal((await mock.stop()).code, 0);
});

async function api(p) {
  const r = await fetch(`${gyre.url}${p}`, {
    headers: { authorization: `Bearer ${READ_TOKEN}` },
    signal: AbortSignal.timeout(5000 * SLOW),
  });
  return { status: r.status, json: r.status === 200 ? await r.json() : null, text: r.status === 200 ? '' : await r.text() };
}

async function chat(content, reference) {
  const r = await postJson(`${gyre.url}/v1/chat/completions`, { model: 'chat', messages: [{ role: 'user', content }] }, {
    authorization: `Bearer ${CLIENT_KEY}`,
    'x-gyre-agent': 'support',
    'x-gyre-meta-reference': reference,
  });
  assert.equal(r.status, 200, r.text);
  return r.headers.get('x-gyre-trace-id');
}

// Both scorers' scores on a trace, waited for (the scorer threads run after the answer), bounded.
async function scoresOf(id, n) {
  const deadline = Date.now() + 8000 * SLOW;
  let last;
  while (Date.now() < deadline) {
    last = await api(`/api/traces/${id}`);
    if (last.status === 200 && last.json.scores.length >= n) return last.json.scores;
    await sleep(50);
  }
  assert.fail(`trace ${id} did not get ${n} scores within ${8000 * SLOW} ms: ${JSON.stringify(last)}`);
}

// The calls judge `judge` made for trace `id`, once `n` of them are stored (the writer indexes after the answer), bounded.
async function judgeCalls(id, n, judge = 'correct') {
  const deadline = Date.now() + 5000 * SLOW;
  let calls = [];
  while (Date.now() < deadline) {
    const r = await api('/api/traces?agent=gyre-judge&limit=100');
    assert.equal(r.status, 200, r.text);
    calls = r.json.data.filter((t) => t.meta['judged-trace'] === id && t.meta.judge === judge);
    if (calls.length >= n) return calls;
    await sleep(50);
  }
  return calls;
}

test('online: a heuristic and a judge score every sampled call, stored with their name, source and version', async () => {
  ids.pass = await chat('Say hello.', 'hello');
  ids.fail = await chat('Say hello.', 'goodbye');
  const pass = await scoresOf(ids.pass, 2);
  const byName = (scores) => Object.fromEntries(scores.map((s) => [s.name, s]));
  const p = byName(pass);
  assert.deepEqual({ source: p.short.source, version: p.short.version, label: p.short.label },
    { source: 'heuristic', version: '1', label: 'pass' });
  assert.deepEqual({ source: p.correct.source, version: p.correct.version, value: p.correct.value, label: p.correct.label,
    comment: p.correct.comment },
  { source: 'judge', version: '1', value: 1, label: 'pass', comment: 'mock: the answer contains the reference' });
  const f = byName(await scoresOf(ids.fail, 2));
  assert.deepEqual({ value: f.correct.value, label: f.correct.label, comment: f.correct.comment },
    { value: 0, label: 'fail', comment: 'mock: the answer does not contain the reference' });
});

test("a judge's calls go through gyre's judge route as agent gyre-judge with the internal key, and are not scored", async () => {
  const judged = await judgeCalls(ids.pass, 1);
  assert.equal(judged.length, 1);
  const j = judged[0];
  assert.deepEqual({ route: j.route, model: j.model, status: j.status, key: j.client_key_id, judge: j.meta.judge },
    { route: 'judge', model: 'judge-model', status: 200, key: 'gyre-internal', judge: 'correct' });
  // Given time to be scored, were it sampled: it is not.
  await sleep(300 * SLOW);
  const full = await api(`/api/traces/${j.trace_id}`);
  assert.deepEqual(full.json.scores, []);
});

test('a malformed verdict is asked again, and the second answer is stored', async () => {
  const id = await chat('MOCK-MALFORMED-VERDICT say hello', 'hello');
  const scores = await scoresOf(id, 2);
  const correct = scores.find((s) => s.name === 'correct');
  assert.deepEqual({ value: correct.value, label: correct.label }, { value: 1, label: 'pass' });
  assert.equal((await judgeCalls(id, 2)).length, 2);
  // The counters move just after the score is written: read them once they have (bounded).
  const want = 'gyre_scores_total{scorer="correct",result="pass"} 2\n';
  const deadline = Date.now() + 5000 * SLOW;
  let text = '';
  while (Date.now() < deadline) {
    const m = await fetch(`${gyre.url}/metrics`, { headers: { authorization: `Bearer ${READ_TOKEN}` } });
    text = await m.text();
    if (text.includes(want)) break;
    await sleep(20);
  }
  assert.match(text, /\ngyre_judge_calls_total\{scorer="correct",outcome="malformed"\} 1\n/);
  assert.match(text, /\ngyre_judge_calls_total\{scorer="correct",outcome="made"\} 4\n/);
  assert.match(text, /\ngyre_scores_total\{scorer="correct",result="pass"\} 2\n/);
  assert.match(text, /\ngyre_scores_total\{scorer="correct",result="fail"\} 1\n/);
  assert.match(text, /\ngyre_scores_dropped_total 0\n/);
});

test('gyre score --json runs a heuristic offline over the stored calls with exact counts', async () => {
  const config = path.join(gyre.dir, 'gyre.yaml');
  const r = await runGyre(['score', '--since', '1h', '--scorer', 'short', '--route', 'chat', '--json', '--config', config]);
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  // "Mock reply to: Say hello." twice (25 characters, at most 30) and the malformed-verdict call's longer answer.
  assert.deepEqual({ scored: out.scored, passed: out.passed, failed: out.failed, errors: out.errors },
    { scored: 3, passed: 2, failed: 1, errors: 0 });
});

for (const scorer of ['correct', 'serial']) {
  test(`gyre score --json runs a judge offline through the running gyre (${scorer}: concurrency ${scorer === 'correct' ? 4 : 1})`, async () => {
    const config = path.join(gyre.dir, 'gyre.yaml');
    const r = await runGyre(['score', '--since', '1h', '--scorer', scorer, '--json', '--config', config,
      '--url', gyre.url, '--key', CLIENT_KEY], { ms: 20000 * SLOW });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), { scorer, scored: 3, passed: 2, failed: 1, errors: 0, mean: 0.666667 });
    // Stored beside the online scores: a score is never replaced, a later one is newer.
    const scores = (await api(`/api/traces/${ids.fail}`)).json.scores.filter((x) => x.name === scorer);
    assert.deepEqual(scores.map((x) => [x.source, x.value, x.label]),
      scorer === 'correct' ? [['judge', 0, 'fail'], ['judge', 0, 'fail']] : [['judge', 0, 'fail']]);
  });
}

test('gyre score names an unknown scorer', async () => {
  const config = path.join(gyre.dir, 'gyre.yaml');
  const r = await runGyre(['score', '--scorer', 'nope', '--config', config]);
  assert.equal(r.code, 1);
  assert.equal(r.stderr, `gyre score: ${config} has no scorer named nope\n`);
});

test("an instruction-following judge is shown the session's earlier calls, then the call it judges", async () => {
  const step = async (content) => {
    const r = await postJson(`${gyre.url}/v1/chat/completions`, { model: 'chat', messages: [{ role: 'user', content }] },
      { authorization: `Bearer ${CLIENT_KEY}`, 'x-gyre-agent': 'planner', 'x-gyre-session': 'sess-follows' });
    assert.equal(r.status, 200, r.text);
    return r.headers.get('x-gyre-trace-id');
  };
  const first = await step('Step one: list the files.');
  const second = await step('Step two: say done.');
  // The offline scan reads the store: wait for both calls to be indexed (bounded).
  for (const id of [first, second]) {
    const deadline = Date.now() + 5000 * SLOW;
    while ((await api(`/api/traces/${id}`)).status !== 200) {
      assert.ok(Date.now() < deadline, `trace ${id} was not stored`);
      await sleep(20);
    }
  }
  const config = path.join(gyre.dir, 'gyre.yaml');
  const r = await runGyre(['score', '--since', '1h', '--scorer', 'follows', '--agent', 'planner', '--json',
    '--config', config, '--url', gyre.url, '--key', CLIENT_KEY], { ms: 20000 * SLOW });
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), { scorer: 'follows', scored: 2, passed: 2, failed: 0, errors: 0, mean: 1 });
  const [call] = await judgeCalls(second, 1, 'follows');
  const body = (await api(`/api/traces/${call.trace_id}`)).json.request_body;
  const prompt = body.messages[0].content;
  const traj = prompt.slice(prompt.indexOf('=====TRAJECTORY=====\n'), prompt.indexOf('\n=====END TRAJECTORY====='));
  assert.equal(traj, `=====TRAJECTORY=====
--- call 1 (${first})
REQUEST: user: Step one: list the files.
ANSWER: Mock reply to: Step one: list the files.
--- call 2 (this call, ${second})
REQUEST: user: Step two: say done.
ANSWER: Mock reply to: Step two: say done.`);
});

test('a reload puts new scorers in force: the next call is scored by them alone', async () => {
  const file = path.join(gyre.dir, 'gyre.yaml');
  const text = fs.readFileSync(file, 'utf8');
  const from = text.indexOf('scorers:');
  fs.writeFileSync(file, `${text.slice(0, from)}scorers:
  - {name: nonempty, type: length, min_chars: 1, version: "2", sample: 1.0, routes: [chat]}
`);
  gyre.proc.kill('SIGHUP');
  const deadline = Date.now() + 5000 * SLOW;
  while (!gyre.proc.output().includes('generation 2 in force')) {
    assert.ok(Date.now() < deadline, `no reload: ${gyre.proc.output()}`);
    await sleep(20);
  }
  const id = await chat('Say hello.', 'hello');
  const scores = await scoresOf(id, 1);
  await sleep(200 * SLOW); // a score of a scorer no longer in force would have come by now
  const again = (await api(`/api/traces/${id}`)).json.scores;
  assert.deepEqual(again.map((x) => [x.name, x.version, x.label]), [['nonempty', '2', 'pass']]);
  assert.equal(scores[0].name, 'nonempty');
});
