// Clusters of what the agents do (issue 14, point 3): real calls through gyre
// to gyre-mock from three planted task families, each from its own sessions;
// `gyre clusters --rebuild --json` clusters the stored traces, and the run
// shows on /api/clusters, on every trace (`cluster`) and as a filter
// (/api/traces?cluster=ID).  A family from fewer than min_sessions (5)
// sessions is a hidden cluster: its id and volume only.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { startGyre, startMock, postJson, runGyre, SLOW } from '../lib/harness.mjs';

const PER_FAMILY = 32;
// Each family: three words in every one of its tasks (its name, alphabetically), a pool it draws from, and
// the sessions its calls come from.
const FAMILIES = {
  billing: { sig: ['invoice', 'refund', 'charge'], sessions: 6,
    pool: ['payment', 'card', 'statement', 'receipt', 'subscription', 'overdue', 'credit', 'bank'] },
  travel: { sig: ['flight', 'booking', 'airport'], sessions: 5,
    pool: ['departure', 'luggage', 'passport', 'seat', 'itinerary', 'layover', 'terminal', 'visa'] },
  baking: { sig: ['recipe', 'oven', 'flour'], sessions: 4,
    pool: ['sugar', 'butter', 'dough', 'whisk', 'eggs', 'vanilla', 'yeast', 'grams'] },
};
const SHARED = ['please', 'help', 'with', 'this', 'need', 'could', 'explain', 'question', 'thanks', 'today'];
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

let mock, gyre, config;
const ids = { billing: [], travel: [], baking: [] };
let failedTravel = 0;

// A seeded generator (xorshift32), so that every run sends the same texts.
let seed = 2463534242;
function rand(n) {
  seed ^= seed << 13; seed >>>= 0;
  seed ^= seed >>> 17;
  seed ^= seed << 5; seed >>>= 0;
  return seed % n;
}

function task(f) {
  const words = [...f.sig];
  for (let i = 0; i < 4; i++) words.push(f.pool[rand(f.pool.length)]);
  for (let i = 0; i < 6; i++) words.push(SHARED[rand(SHARED.length)]);
  for (let i = words.length - 1; i > 0; i--) {
    const j = rand(i + 1);
    [words[i], words[j]] = [words[j], words[i]];
  }
  return words.join(' ');
}

async function getJson(p) {
  const r = await fetch(`${gyre.url}${p}`, { signal: AbortSignal.timeout(10000 * SLOW) });
  const text = await r.text();
  return { status: r.status, json: JSON.parse(text), text };
}

before(async () => {
  mock = await startMock();
  gyre = await startGyre(`workers: 1
providers:
  - {name: mock, kind: openai, base_url: "${mock.v1}", keys: [sk-clusters]}
routes:
  - name: chat
    targets: [{provider: mock, model: gpt-4o-mini}]
`);
  config = path.join(gyre.dir, 'gyre.yaml');
  // The families interleaved, as traffic comes; four travel calls fail upstream (a 500 from the mock).
  for (let i = 0; i < PER_FAMILY; i++) {
    for (const [name, f] of Object.entries(FAMILIES)) {
      const fail = name === 'travel' && i % 8 === 0;
      if (fail) await mock.configure({ fault: '500', fault_rate: 1 });
      const res = await postJson(`${gyre.url}/v1/chat/completions`,
        { model: 'chat', messages: [{ role: 'user', content: task(f) }] },
        { 'x-gyre-session': `${name}-${i % f.sessions}` });
      if (fail) {
        await mock.configure({ fault: null, fault_rate: 1 });
        assert.equal(res.status, 500);
        failedTravel++;
      } else {
        assert.equal(res.status, 200);
      }
      ids[name].push(res.headers.get('x-gyre-trace-id'));
    }
  }
  // The writer stores traces in order: once the last is stored, all are.
  const last = ids.baking[PER_FAMILY - 1];
  const deadline = Date.now() + 5000 * SLOW;
  while ((await getJson(`/api/traces/${last}`)).status !== 200) {
    if (Date.now() > deadline) assert.fail('the traces were not stored in time');
    await sleep(50);
  }
});

after(async () => {
  assert.equal((await gyre.stop()).code, 0);
  assert.equal((await mock.stop()).code, 0);
});

/** The leaf cluster that holds the family's traces: every one of them, and nothing else. */
function leafOf(run, family, assigned) {
  const cl = assigned.get(ids[family][0]);
  for (const id of ids[family]) assert.equal(assigned.get(id), cl, `${family}: its traces are in one cluster`);
  return run.clusters.find((c) => c.id === cl);
}

test('gyre clusters shows nothing before the first run, and --rebuild clusters the planted families exactly', async () => {
  const none = await runGyre(['clusters', '--config', config]);
  assert.equal(none.code, 1);
  assert.equal(none.stderr, 'gyre clusters: no clustering has run yet; run gyre clusters --rebuild\n');
  const noneApi = await getJson('/api/clusters');
  assert.equal(noneApi.status, 404);
  assert.equal(noneApi.json.error.code, 'no_clusters');

  const r = await runGyre(['clusters', '--rebuild', '--k', '3', '--json', '--config', config], { ms: 30000 * SLOW });
  assert.equal(r.code, 0, r.stderr);
  const run = JSON.parse(r.stdout);
  assert.equal(run.examples, 3 * PER_FAMILY);
  assert.equal(run.k, 3);
  assert.equal(run.k_auto, false);
  assert.equal(run.parents, 1);
  assert.equal(run.min_sessions, 5);
  assert.equal(run.featurizer, 'local');
  assert.match(run.run_id, /^cr_[0-9a-f]{16}$/);

  // Each trace shows its cluster; each family is one leaf of 32.
  const assigned = new Map();
  for (const family of Object.keys(ids))
    for (const id of ids[family]) {
      const t = await getJson(`/api/traces/${id}`);
      assert.equal(t.status, 200);
      assert.equal(t.json.cluster.run, run.run_id);
      assigned.set(id, t.json.cluster.id);
    }
  const billing = leafOf(run, 'billing', assigned), travel = leafOf(run, 'travel', assigned);
  const baking = leafOf(run, 'baking', assigned);
  assert.equal(new Set([billing.id, travel.id, baking.id]).size, 3);

  // Named by the words every task of the family has and no other family's does.
  assert.equal(billing.name, 'charge, invoice, refund');
  assert.deepEqual(billing.terms.slice(0, 3), ['charge', 'invoice', 'refund']);
  assert.equal(travel.name, 'airport, booking, flight');
  assert.equal(billing.volume, PER_FAMILY);
  assert.equal(billing.sessions, 6);
  assert.equal(billing.shown, true);
  assert.equal(billing.level, 0);
  assert.equal(billing.failure_rate, 0);
  assert.equal(billing.examples.length, 5);
  for (const e of billing.examples) assert.ok(ids.billing.includes(e), `example ${e} is a billing trace`);
  assert.equal(travel.sessions, 5);
  assert.equal(travel.failure_rate, failedTravel / PER_FAMILY);
  assert.equal(failedTravel, 4);

  // Four sessions: hidden, its id and volume only.
  assert.deepEqual(baking, { id: baking.id, volume: PER_FAMILY, hidden: true });

  // The one parent holds all three.
  const parent = run.clusters.find((c) => c.level === 1);
  assert.equal(parent.volume, 3 * PER_FAMILY);
  assert.equal(parent.sessions, 15);
  assert.equal(billing.parent, parent.id);
  assert.equal(travel.parent, parent.id);

  // /api/clusters is the same run; the cluster filter gives the family's traces, exactly.
  const api = await getJson('/api/clusters');
  assert.equal(api.status, 200);
  assert.deepEqual(api.json, run);
  for (const [family, c] of [['billing', billing], ['travel', travel], ['baking', baking]]) {
    const page = await getJson(`/api/traces?cluster=${c.id}&limit=100`);
    assert.equal(page.status, 200);
    assert.deepEqual(page.json.data.map((t) => t.trace_id).sort(), [...ids[family]].sort());
  }

  // The text form: the table, the hidden cluster's row without its name.
  const text = await runGyre(['clusters', '--config', config]);
  assert.equal(text.code, 0, text.stderr);
  assert.match(text.stdout, new RegExp(`^run +${run.run_id}$`, 'm'));
  assert.match(text.stdout, /charge, invoice, refund +32 +6 /);
  assert.match(text.stdout, /\(hidden: fewer than 5 sessions\) +32 +- /);
  assert.doesNotMatch(text.stdout, /recipe|oven|flour/);
});

test('POST /api/clusters/rebuild clusters on the server and its run becomes the newest; GET is refused there', async () => {
  const r = await postJson(`${gyre.url}/api/clusters/rebuild`, '');
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.examples, 3 * PER_FAMILY);
  assert.equal(r.json.k_auto, true); // the config's k: 0, chosen by the silhouette
  const api = await getJson('/api/clusters');
  assert.equal(api.json.run_id, r.json.run_id);
  const t = await getJson(`/api/traces/${ids.billing[0]}`);
  assert.equal(t.json.cluster.run, r.json.run_id);

  const get = await getJson('/api/clusters/rebuild');
  assert.equal(get.status, 405);
  assert.equal(get.json.error.code, 'method_not_allowed');
  const post = await postJson(`${gyre.url}/api/clusters`, '');
  assert.equal(post.status, 405);
});

test('gyre clusters refuses --k without --rebuild and a --k out of range', async () => {
  const a = await runGyre(['clusters', '--k', '3', '--config', config]);
  assert.equal(a.code, 2);
  assert.equal(a.stderr, 'gyre clusters: --since and --k choose what --rebuild clusters; pass --rebuild with them\n');
  const b = await runGyre(['clusters', '--rebuild', '--k', '0', '--config', config]);
  assert.equal(b.code, 2);
  assert.equal(b.stderr, "gyre clusters: --k must be a number from 1 to 256, got '0'\n");
});
