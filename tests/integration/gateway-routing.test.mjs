// Routing under failure, I: fallbacks, retries and their backoff, deadlines,
// key pools, circuit breakers, and streams that fail before or after their
// first event.  Each test names the behaviour it pins down and asserts the
// exact outcome: the status, which provider answered after how many attempts
// (x-gyre-provider, x-gyre-attempts), and which upstream saw which requests
// with which key, in which order.  `workers: 1` everywhere: breakers and key
// rests are per worker.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startGyre, startMock, postJson, chatBody, freePort, sseData, SLOW } from '../lib/harness.mjs';
import { startScripted, completion, errorBody } from '../lib/scripted-upstream.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
// Room for scheduling and process hops on top of a computed bound.
const SLACK = 120 * SLOW;

function ask(g, model = 'chat', extra = {}, headers = {}) {
  return postJson(`${g.url}/v1/chat/completions`, chatBody({ model, ...extra }), headers);
}

/** What the routing headers of an answer say. */
function via(res) {
  return { status: res.status, provider: res.headers.get('x-gyre-provider'), attempts: res.headers.get('x-gyre-attempts') };
}

/** Asks and times the answer (ms, client side). */
async function timed(fn) {
  const t0 = performance.now();
  const res = await fn();
  return { res, ms: performance.now() - t0 };
}

/** A stream request's whole body, read to its end (or to the connection's failure). */
async function streamText(url, body) {
  const r = await fetch(url, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body),
    signal: AbortSignal.timeout(10000 * SLOW),
  });
  const reader = r.body.getReader();
  let text = '', broken = false;
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      text += new TextDecoder().decode(value);
    }
  } catch {
    broken = true; // the response did not end cleanly (no last chunk)
  }
  return { status: r.status, headers: r.headers, text, broken };
}

/** What gyre-mock `to` answers, directly, to the body gyre last sent `from`. */
async function mockDirect(from, to = from) {
  const body = (await from.stats()).last_request.body;
  const r = await fetch(`${to.v1}/chat/completions`, {
    method: 'POST', headers: { 'content-type': 'application/json', authorization: 'Bearer direct' }, body,
  });
  const text = await r.text();
  // gyre asks a stream for its usage when the client did not (the trace needs it): the option is spliced in
  // right after the opening brace, and the usage chunk it brings is kept from the client.
  if (!JSON.parse(body).stream) return text;
  assert.ok(body.startsWith('{"stream_options":{"include_usage":true},'), body);
  return text.split('\n\n').filter((e) => !e.includes('"choices":[],"usage"')).join('\n\n');
}

/** Stops gyre (it must exit 0) and the upstreams: gyre-mocks (they must exit 0 too) and scripted ones. */
async function stopAll(g, ...ups) {
  assert.equal((await g.stop()).code, 0);
  for (const u of ups) {
    if (u.proc) assert.equal((await u.stop()).code, 0);
    else await u.close();
  }
}

/** The same, when test `t` ends, passed or failed, so a failure leaves nothing running. */
function stopAtEnd(t, g, ...ups) {
  t.after(() => stopAll(g, ...ups));
}

// ---- 1. the fallback chain ----

describe('fallback chain', () => {
  const RETRYABLE = [429, 500, 502, 503, 504, 529];
  const CLIENT = [400, 401, 403, 404];
  let primary, backup, gyre, dead;
  // A provider's own 4xx body, with a field no gateway would invent, to see that it arrives as it was.
  const clientBody = (s) => JSON.stringify({ ...errorBody(s), provider_trace: `trace-${s}` });

  before(async () => {
    primary = await startScripted('primary', (rec) => {
      if (rec.model === 'hang') return { hang: true };
      const s = Number(rec.model.replace('status-', ''));
      return CLIENT.includes(s) ? { status: s, body: clientBody(s) } : { status: s };
    });
    backup = await startScripted('backup');
    dead = await freePort(); // nobody listens there
    // One provider per case, so that no case's failure rests a key or trips
    // a breaker that another case uses.
    const providers = [], routes = [];
    const route = (name, provider, model, extra = '') => routes.push(
      `  - name: ${name}\n${extra}    targets: [{provider: ${provider}, model: ${model}}]\n    fallbacks: [{provider: backup, model: backup-model}]`);
    for (const s of [...RETRYABLE, ...CLIENT]) {
      providers.push(`  - {name: p${s}, kind: openai, base_url: "${primary.v1}", keys: [sk-primary]}`);
      route(`r${s}`, `p${s}`, `status-${s}`);
    }
    providers.push(`  - {name: refused, kind: openai, base_url: "http://127.0.0.1:${dead}/v1", keys: [sk-primary]}`);
    providers.push(`  - {name: refused2, kind: openai, base_url: "http://127.0.0.1:${dead}/v1", keys: [sk-primary]}`);
    providers.push(`  - {name: slow, kind: openai, base_url: "${primary.v1}", keys: [sk-primary]}`);
    providers.push(`  - {name: o503, kind: openai, base_url: "${primary.v1}", keys: [sk-primary]}`);
    providers.push(`  - {name: o429, kind: openai, base_url: "${primary.v1}", keys: [sk-primary]}`);
    providers.push(`  - {name: backup, kind: openai, base_url: "${backup.v1}", keys: [sk-backup]}`);
    providers.push(`  - {name: q503, kind: openai, base_url: "${primary.v1}", keys: [sk-primary]}`);
    providers.push(`  - {name: q502, kind: openai, base_url: "${primary.v1}", keys: [sk-primary]}`);
    routes.push('  - name: allfail\n    targets: [{provider: q503, model: status-503}]\n    fallbacks: [{provider: q502, model: status-502}]');
    route('refused', 'refused', 'm');
    route('timeout', 'slow', 'hang', '    attempt_timeout_ms: 200\n');
    route('only429_503', 'o503', 'status-503', '    fallback_on: [429]\n');
    route('only429_429', 'o429', 'status-429', '    fallback_on: [429]\n');
    route('only429_refused', 'refused2', 'm', '    fallback_on: [429]\n');
    gyre = await startGyre(`workers: 1\nproviders:\n${providers.join('\n')}\nroutes:\n${routes.join('\n')}\n`);
  });
  after(async () => stopAll(gyre, primary, backup));

  /** The route's primary failed in some way; the backup's answer is the client's, after two attempts. */
  async function assertFellBack(route, primaryModel) {
    const before = { p: primary.seen.length, b: backup.seen.length };
    const res = await ask(gyre, route);
    assert.deepEqual(via(res), { status: 200, provider: 'backup', attempts: '2' });
    assert.equal(res.headers.get('x-gyre-route'), route);
    assert.equal(res.headers.get('x-gyre-model'), 'backup-model');
    assert.deepEqual(res.json, completion('backup', 'backup-model'));
    assert.equal(backup.seen.length, before.b + 1);
    assert.equal(backup.seen.at(-1).model, 'backup-model');
    assert.equal(backup.seen.at(-1).key, 'sk-backup');
    if (primaryModel !== null) {
      assert.equal(primary.seen.length, before.p + 1);
      assert.equal(primary.seen.at(-1).model, primaryModel);
    }
    return res;
  }

  for (const s of RETRYABLE) {
    test(`a primary answering ${s} falls back to the next target, which answers`, async () => {
      await assertFellBack(`r${s}`, `status-${s}`);
    });
  }

  test('a primary that refuses connections falls back', async () => {
    const before = primary.seen.length;
    await assertFellBack('refused', null);
    assert.equal(primary.seen.length, before);
  });

  test('a primary that does not answer within attempt_timeout_ms falls back after that long', async () => {
    const { res, ms } = await timed(() => assertFellBack('timeout', 'hang'));
    assert.equal(res.status, 200);
    assert.ok(ms >= 195 && ms < 200 + 4 * SLACK, `answered after ${ms.toFixed(0)} ms`);
  });

  test('fallback_on: [429] still falls back on a 429', async () => {
    await assertFellBack('only429_429', 'status-429');
  });

  test('fallback_on: [429] sends a 503 back to the client as the provider gave it, after one attempt', async () => {
    const b = backup.seen.length;
    const res = await ask(gyre, 'only429_503');
    assert.deepEqual(via(res), { status: 503, provider: 'o503', attempts: '1' });
    assert.equal(res.text, JSON.stringify(errorBody(503)));
    assert.equal(backup.seen.length, b);
  });

  test('fallback_on: [429] does not fall back on a refused connection either (connect is not listed)', async () => {
    const b = backup.seen.length;
    const res = await ask(gyre, 'only429_refused');
    assert.deepEqual(via(res), { status: 502, provider: 'refused2', attempts: '1' });
    assert.equal(res.json.error.code, 'upstream_unreachable');
    assert.equal(backup.seen.length, b);
  });

  test('when the fallback fails too, the client gets the last provider\'s answer, after 2 attempts', async () => {
    const p = primary.seen.length;
    const res = await ask(gyre, 'allfail');
    assert.deepEqual(via(res), { status: 502, provider: 'q502', attempts: '2' });
    assert.equal(res.text, JSON.stringify(errorBody(502)));
    assert.deepEqual(primary.models().slice(p), ['status-503', 'status-502']);
  });

  for (const s of CLIENT) {
    test(`a ${s} never falls back: the client gets the provider's status and body as they are`, async () => {
      const before = { p: primary.seen.length, b: backup.seen.length };
      const res = await ask(gyre, `r${s}`);
      assert.deepEqual(via(res), { status: s, provider: `p${s}`, attempts: '1' });
      assert.equal(res.headers.get('content-type'), 'application/json');
      assert.equal(res.text, clientBody(s));
      assert.equal(primary.seen.length, before.p + 1);
      assert.equal(backup.seen.length, before.b);
    });
  }
});

// ---- 2. retries ----

/** One provider `primary` at `up` (its keys, and `provider` appended to its settings) and one route `chat` to it with the lines `route`. */
function oneRoute(up, { keys = ['sk-a'], route = '', provider = '' } = {}) {
  return `workers: 1
providers:
  - {name: primary, kind: openai, base_url: "${up.v1}", keys: [${keys.join(', ')}]${provider}}
routes:
  - name: chat
${route}    targets: [{provider: primary, model: m}]
`;
}

test('retries: 2 on a target that answers 503, 503, 200 gives 200 after 3 attempts, each wait within its full-jitter ceiling', async (t) => {
  const up = await startScripted('primary', [{ status: 503 }, { status: 503 }, { status: 200 }]);
  const g = await startGyre(oneRoute(up, { route: '    retries: 2\n    backoff_ms: 200\n' }));
  stopAtEnd(t, g, up);
  const { res, ms } = await timed(() => ask(g));
  assert.deepEqual(via(res), { status: 200, provider: 'primary', attempts: '3' });
  assert.deepEqual(res.json, completion('primary', 'm'));
  assert.equal(up.seen.length, 3);
  // Full jitter: the n-th retry waits uniformly in [0, backoff_ms * 2^n].
  const gap1 = up.seen[1].at - up.seen[0].at, gap2 = up.seen[2].at - up.seen[1].at;
  assert.ok(gap1 <= 200 + SLACK, `first retry after ${gap1.toFixed(0)} ms (ceiling 200)`);
  assert.ok(gap2 <= 400 + SLACK, `second retry after ${gap2.toFixed(0)} ms (ceiling 400)`);
  assert.ok(ms <= 600 + 2 * SLACK, `answered after ${ms.toFixed(0)} ms`);
});

test('retries run out: the last 503 goes back to the client after 1 + retries attempts', async (t) => {
  const up = await startScripted('primary', [{ status: 503 }]);
  const g = await startGyre(oneRoute(up, { route: '    retries: 2\n    backoff_ms: 10\n' }));
  stopAtEnd(t, g, up);
  const res = await ask(g);
  assert.deepEqual(via(res), { status: 503, provider: 'primary', attempts: '3' });
  assert.equal(res.text, JSON.stringify(errorBody(503)));
  assert.equal(up.seen.length, 3);
});

test('a 429 with Retry-After on the only key: the retry waits for the Retry-After', async (t) => {
  const up = await startScripted('primary', [{ status: 429, headers: { 'retry-after': '1' } }, { status: 200 }]);
  const g = await startGyre(oneRoute(up, { route: '    retries: 1\n    backoff_ms: 10\n' }));
  stopAtEnd(t, g, up);
  const res = await ask(g);
  assert.deepEqual(via(res), { status: 200, provider: 'primary', attempts: '2' });
  assert.deepEqual(up.keys(), ['sk-a', 'sk-a']);
  const gap = up.seen[1].at - up.seen[0].at;
  assert.ok(gap >= 1000 - 15, `retried after ${gap.toFixed(0)} ms, before the Retry-After of 1 s`);
  assert.ok(gap <= 1000 + SLACK, `retried after ${gap.toFixed(0)} ms`);
});

test('a 429 on key A with key B usable: the retry goes on B without waiting out A\'s Retry-After, and later calls avoid A until it passes', async (t) => {
  let rested = false;
  const up = await startScripted('primary', (rec) => {
    if (rec.key === 'sk-a' && !rested) {
      rested = true;
      return { status: 429, headers: { 'retry-after': '1' } };
    }
    return { status: 200 };
  });
  const g = await startGyre(oneRoute(up, { keys: ['sk-a', 'sk-b'], route: '    retries: 1\n    backoff_ms: 10\n' }));
  stopAtEnd(t, g, up);
  const res = await ask(g);
  assert.deepEqual(via(res), { status: 200, provider: 'primary', attempts: '2' });
  assert.deepEqual(up.keys(), ['sk-a', 'sk-b']);
  const gap = up.seen[1].at - up.seen[0].at;
  assert.ok(gap <= 10 + SLACK, `the retry on key B came ${gap.toFixed(0)} ms after the 429 (backoff ceiling 10 ms, Retry-After 1 s)`);
  for (let i = 0; i < 2; i++) assert.deepEqual(via(await ask(g)), { status: 200, provider: 'primary', attempts: '1' });
  assert.deepEqual(up.keys(), ['sk-a', 'sk-b', 'sk-b', 'sk-b']);
  // Once A's Retry-After has passed, round robin comes back to it.
  await sleep(Math.max(0, up.seen[0].at + 1000 + 50 * SLOW - performance.now()));
  assert.deepEqual(via(await ask(g)), { status: 200, provider: 'primary', attempts: '1' });
  assert.deepEqual(up.keys(), ['sk-a', 'sk-b', 'sk-b', 'sk-b', 'sk-a']);
});

// After a 429 on one key, the retry on another usable key goes at once: a
// Retry-After binds only its own key.  With backoff_ms 1000 a retry that
// wrongly waited would sleep a uniform 0-1000 ms, so three of them all under
// the slack by chance is about one run in 600.
test('a retry on another key after a 429 goes at once, not after a backoff', async (t) => {
  const up = await startScripted('primary', (rec) => (rec.n % 2 === 0
    ? { status: 429, headers: { 'retry-after-ms': '50' } } : { status: 200 }));
  const g = await startGyre(oneRoute(up, { keys: ['sk-a', 'sk-b'], route: '    retries: 1\n    backoff_ms: 1000\n' }));
  stopAtEnd(t, g, up);
  const gaps = [];
  for (let i = 0; i < 3; i++) {
    assert.deepEqual(via(await ask(g)), { status: 200, provider: 'primary', attempts: '2' });
    gaps.push(Math.round(up.seen.at(-1).at - up.seen.at(-2).at));
    await sleep(60 * SLOW); // key A's 50 ms rest passes
  }
  assert.deepEqual(up.keys(), ['sk-a', 'sk-b', 'sk-a', 'sk-b', 'sk-a', 'sk-b']);
  assert.ok(gaps.every((ms) => ms < SLACK), `retries on key B came ${gaps.join(', ')} ms after the 429s`);
});

// ---- 3. deadlines and first-byte timeouts ----

test('deadline_ms stops the attempts: a hanging primary gives 504 deadline_exceeded naming the route, the fallback is never tried', async (t) => {
  const up = await startScripted('primary', [{ hang: true }]);
  const backup = await startScripted('backup');
  const g = await startGyre(`workers: 1
providers:
  - {name: primary, kind: openai, base_url: "${up.v1}", keys: [sk-a]}
  - {name: backup, kind: openai, base_url: "${backup.v1}", keys: [sk-b]}
routes:
  - name: slowroute
    deadline_ms: 300
    targets: [{provider: primary, model: m}]
    fallbacks: [{provider: backup, model: m}]
`);
  stopAtEnd(t, g, up, backup);
  const { res, ms } = await timed(() => ask(g, 'slowroute'));
  assert.deepEqual(via(res), { status: 504, provider: 'primary', attempts: '1' });
  assert.deepEqual(res.json, {
    error: {
      message: "route 'slowroute' ran past its deadline (deadline_ms 300) after 1 attempt",
      type: 'upstream_error', param: null, code: 'deadline_exceeded',
    },
  });
  assert.ok(ms >= 295 && ms < 300 + 2 * SLACK, `answered after ${ms.toFixed(0)} ms`);
  assert.equal(up.seen.length, 1);
  assert.equal(backup.seen.length, 0);
});

test('deadline_ms cuts a run of retries short: 150 ms attempts under a 400 ms deadline make exactly 3 attempts', async (t) => {
  const up = await startScripted('primary', [{ status: 503, delayMs: 150 }]);
  const g = await startGyre(oneRoute(up, { route: '    retries: 5\n    backoff_ms: 0\n    deadline_ms: 400\n' }));
  stopAtEnd(t, g, up);
  const { res, ms } = await timed(() => ask(g));
  assert.deepEqual(via(res), { status: 504, provider: 'primary', attempts: '3' });
  assert.equal(res.json.error.code, 'deadline_exceeded');
  assert.equal(res.json.error.message, "route 'chat' ran past its deadline (deadline_ms 400) after 3 attempts");
  assert.ok(ms >= 395 && ms < 400 + 2 * SLACK, `answered after ${ms.toFixed(0)} ms`);
  await sleep(200); // a fourth attempt, had one been made, would have arrived by now
  assert.equal(up.seen.length, 3);
});

test('first_byte_timeout_ms: a stream whose primary sends nothing for 2 s falls back, and the client gets the fallback\'s stream', async (t) => {
  const slow = await startMock(['--fault', 'slow-first-byte']);
  const backup = await startMock();
  const g = await startGyre(`workers: 1
providers:
  - {name: primary, kind: openai, base_url: "${slow.v1}", keys: [sk-a]}
  - {name: backup, kind: openai, base_url: "${backup.v1}", keys: [sk-b]}
routes:
  - name: chat
    first_byte_timeout_ms: 500
    targets: [{provider: primary, model: gpt-4o-mini}]
    fallbacks: [{provider: backup, model: gpt-4o-mini}]
`);
  stopAtEnd(t, g, slow, backup);
  const { res, ms } = await timed(() => streamText(`${g.url}/v1/chat/completions`, chatBody({ stream: true })));
  assert.deepEqual(via(res), { status: 200, provider: 'backup', attempts: '2' });
  assert.equal(res.broken, false);
  assert.ok(ms >= 495 && ms < 2000, `answered after ${ms.toFixed(0)} ms`);
  assert.equal(res.text, await mockDirect(backup));
  assert.equal(sseData(res.text).at(-1), '[DONE]');
  assert.equal((await slow.stats()).requests, 1);
});

// ---- 4. key pools ----

test('round robin uses three keys in turn, in order', async (t) => {
  const up = await startScripted('primary');
  const g = await startGyre(oneRoute(up, { keys: ['sk-a', 'sk-b', 'sk-c'] }));
  stopAtEnd(t, g, up);
  for (let i = 0; i < 7; i++) assert.equal((await ask(g)).status, 200);
  assert.deepEqual(up.keys(), ['sk-a', 'sk-b', 'sk-c', 'sk-a', 'sk-b', 'sk-c', 'sk-a']);
});

test('weighted keys 3:1 follow smooth weighted round robin: a a b a, twice', async (t) => {
  const up = await startScripted('primary');
  const g = await startGyre(oneRoute(up, {
    keys: ['{key: sk-a, weight: 3}', '{key: sk-b, weight: 1}'], provider: ', key_strategy: weighted',
  }));
  stopAtEnd(t, g, up);
  for (let i = 0; i < 8; i++) assert.equal((await ask(g)).status, 200);
  assert.deepEqual(up.keys(), ['sk-a', 'sk-a', 'sk-b', 'sk-a', 'sk-a', 'sk-a', 'sk-b', 'sk-a']);
});

test('a 429 on one key moves its traffic to the other keys until its Retry-After passes', async (t) => {
  let limited = false;
  const up = await startScripted('primary', (rec) => {
    if (rec.key === 'sk-b' && !limited) {
      limited = true;
      return { status: 429, headers: { 'retry-after-ms': '500' } };
    }
    return { status: 200 };
  });
  const g = await startGyre(oneRoute(up, { keys: ['sk-a', 'sk-b', 'sk-c'] }));
  stopAtEnd(t, g, up);
  const statuses = [];
  for (let i = 0; i < 6; i++) statuses.push((await ask(g)).status);
  // No retries and no fallback: the 429 itself is the client's answer.
  assert.deepEqual(statuses, [200, 429, 200, 200, 200, 200]);
  assert.deepEqual(up.keys(), ['sk-a', 'sk-b', 'sk-c', 'sk-a', 'sk-c', 'sk-a']);
  await sleep(Math.max(0, up.seen[1].at + 500 + 50 * SLOW - performance.now()));
  for (let i = 0; i < 2; i++) assert.equal((await ask(g)).status, 200);
  assert.deepEqual(up.keys().slice(6), ['sk-b', 'sk-c']);
});

// ---- 5. circuit breakers ----

function breakerConfig(primary, backup, breaker) {
  return `workers: 1
providers:
  - {name: primary, kind: openai, base_url: "${primary.v1}", keys: [sk-a], breaker: ${breaker}}
${backup ? `  - {name: backup, kind: openai, base_url: "${backup.v1}", keys: [sk-b]}\n` : ''}routes:
  - name: chat
    targets: [{provider: primary, model: m}]
${backup ? '    fallbacks: [{provider: backup, model: m}]\n' : ''}`;
}

/** Three 500s in a row: each falls back, and the third opens the breaker. */
async function tripBreaker(g, primary) {
  for (let i = 0; i < 3; i++) assert.deepEqual(via(await ask(g)), { status: 200, provider: 'backup', attempts: '2' });
  assert.equal(primary.seen.length, 3);
  return primary.seen[2].at; // about when it opened
}

test('breaker: after 3 consecutive 500s the provider is skipped; after the cooldown exactly one probe goes, and its success closes it', async (t) => {
  const primary = await startScripted('primary', [{ status: 500 }]);
  const backup = await startScripted('backup');
  const g = await startGyre(breakerConfig(primary, backup, '{failures: 3, cooldown_ms: 300}'));
  stopAtEnd(t, g, primary, backup);
  const opened = await tripBreaker(g, primary);
  // Open: straight to the fallback, one attempt, the primary sees nothing.
  for (let i = 0; i < 3; i++) assert.deepEqual(via(await ask(g)), { status: 200, provider: 'backup', attempts: '1' });
  assert.equal(primary.seen.length, 3);
  // Cooled down, the primary answers again (slowly, so the probe is still out while the others arrive).
  primary.script = [{ status: 200, delayMs: 200 }];
  await sleep(Math.max(0, opened + 300 + 50 * SLOW - performance.now()));
  const answers = await Promise.all([0, 1, 2].map(() => ask(g)));
  assert.deepEqual(answers.map(via).sort((a, b) => a.provider.localeCompare(b.provider)), [
    { status: 200, provider: 'backup', attempts: '1' },
    { status: 200, provider: 'backup', attempts: '1' },
    { status: 200, provider: 'primary', attempts: '1' },
  ]);
  assert.equal(primary.seen.length, 4, 'exactly one probe');
  // The probe succeeded: closed, the traffic is the primary's again.
  for (let i = 0; i < 2; i++) assert.deepEqual(via(await ask(g)), { status: 200, provider: 'primary', attempts: '1' });
  assert.equal(primary.seen.length, 6);
});

test('breaker: a failed probe opens it again for another cooldown', async (t) => {
  const primary = await startScripted('primary', [{ status: 500 }]);
  const backup = await startScripted('backup');
  const g = await startGyre(breakerConfig(primary, backup, '{failures: 3, cooldown_ms: 300}'));
  stopAtEnd(t, g, primary, backup);
  const opened = await tripBreaker(g, primary);
  await sleep(Math.max(0, opened + 300 + 50 * SLOW - performance.now()));
  // The probe fails and falls back...
  assert.deepEqual(via(await ask(g)), { status: 200, provider: 'backup', attempts: '2' });
  assert.equal(primary.seen.length, 4);
  const reopened = primary.seen[3].at;
  // ...and the breaker is open again: one failure was enough.
  for (let i = 0; i < 2; i++) assert.deepEqual(via(await ask(g)), { status: 200, provider: 'backup', attempts: '1' });
  assert.equal(primary.seen.length, 4);
  // Another cooldown, another single probe.
  await sleep(Math.max(0, reopened + 300 + 50 * SLOW - performance.now()));
  assert.deepEqual(via(await ask(g)), { status: 200, provider: 'backup', attempts: '2' });
  assert.equal(primary.seen.length, 5);
});

test('breaker open and no fallback: 503 target_unavailable with Retry-After, at once', async (t) => {
  // A 4th request, had it reached the provider, would take a second.
  const primary = await startScripted('primary', [{ status: 500 }, { status: 500 }, { status: 500 }, { status: 500, delayMs: 1000 }]);
  const g = await startGyre(breakerConfig(primary, null, '{failures: 3, cooldown_ms: 2000}'));
  stopAtEnd(t, g, primary);
  for (let i = 0; i < 3; i++) {
    const res = await ask(g);
    assert.deepEqual(via(res), { status: 500, provider: 'primary', attempts: '1' });
    assert.equal(res.text, JSON.stringify(errorBody(500)));
  }
  const { res, ms } = await timed(() => ask(g));
  assert.equal(res.status, 503);
  assert.equal(res.headers.get('retry-after'), '2');
  assert.equal(res.headers.get('x-gyre-attempts'), '0');
  assert.equal(res.json.error.code, 'target_unavailable');
  assert.match(res.json.error.message, /^provider 'primary' is unavailable \(circuit open or rate-limited\); retry in \d+ ms$/);
  assert.ok(ms < 100 * SLOW, `answered after ${ms.toFixed(0)} ms; the provider would take 1000`);
  assert.equal(primary.seen.length, 3);
});

// ---- 6. streams ----

describe('a stream whose primary fails before its first event falls back invisibly', () => {
  const cases = [
    ['answers 503', { status: 503 }],
    ['resets the connection', { reset: true }],
    ['sends a 200 event-stream head and closes', { sse: [], cut: true }],
    // A relayed stream is committed on its first event, not its first byte:
    // a comment (a keep-alive, as some providers send while they think)
    // alone does not keep the fallback from being invisible.
    ['sends only an SSE comment and closes', { sse: [': keep-alive\n\n'], cut: true }],
  ];
  for (const [what, step] of cases) {
    test(`the primary ${what}: the client gets the fallback's stream alone`, async (t) => {
      const primary = await startScripted('primary', [step]);
      const backup = await startMock();
      const g = await startGyre(`workers: 1
providers:
  - {name: primary, kind: openai, base_url: "${primary.v1}", keys: [sk-a]}
  - {name: backup, kind: openai, base_url: "${backup.v1}", keys: [sk-b]}
routes:
  - name: chat
    targets: [{provider: primary, model: gpt-4o-mini}]
    fallbacks: [{provider: backup, model: gpt-4o-mini}]
`);
      stopAtEnd(t, g, primary, backup);
      const res = await streamText(`${g.url}/v1/chat/completions`, chatBody({ stream: true }));
      assert.deepEqual(via(res), { status: 200, provider: 'backup', attempts: '2' });
      assert.equal(res.broken, false);
      assert.equal(primary.seen.length, 1);
      // Byte for byte what the fallback sends: one role chunk, one [DONE], nothing of the primary's.
      assert.equal(res.text, await mockDirect(backup));
      const events = sseData(res.text);
      assert.equal(events.filter((e) => e.includes('"role":"assistant"')).length, 1);
      assert.deepEqual(events.filter((e) => e === '[DONE]'), ['[DONE]']);
    });
  }
});

// first_byte_timeout_ms waits for the first event: a keep-alive comment does
// not stop it (else the client would wait for the provider's I/O timeout,
// timeout_ms, 120 s by default; 1.5 s here to keep a failure short).
test('first_byte_timeout_ms waits for an event, so a provider sending only a comment is left for the fallback', async (t) => {
  const primary = await startScripted('primary', [{ sse: [': keep-alive\n\n'], hold: true }]);
  const backup = await startMock();
  const g = await startGyre(`workers: 1
providers:
  - {name: primary, kind: openai, base_url: "${primary.v1}", keys: [sk-a], timeout_ms: 1500}
  - {name: backup, kind: openai, base_url: "${backup.v1}", keys: [sk-b]}
routes:
  - name: chat
    first_byte_timeout_ms: 300
    targets: [{provider: primary, model: gpt-4o-mini}]
    fallbacks: [{provider: backup, model: gpt-4o-mini}]
`);
  stopAtEnd(t, g, primary, backup);
  const { res, ms } = await timed(() => streamText(`${g.url}/v1/chat/completions`, chatBody({ stream: true })));
  assert.deepEqual(via(res), { status: 200, provider: 'backup', attempts: '2' });
  assert.equal(res.text, await mockDirect(backup));
  assert.ok(ms < 300 + 2 * SLACK, `answered after ${ms.toFixed(0)} ms`);
});

describe('midstream: error (the default): a stream cut after two pieces', () => {
  let cut, backup, gyre;
  before(async () => {
    cut = await startMock(['--fault', 'truncate']);
    backup = await startMock();
    gyre = await startGyre(`workers: 1
providers:
  - {name: primary, kind: openai, base_url: "${cut.v1}", keys: [sk-a]}
  - {name: backup, kind: openai, base_url: "${backup.v1}", keys: [sk-b]}
routes:
  - name: chat
    targets: [{provider: primary, model: gpt-4o-mini}]
    fallbacks: [{provider: backup, model: gpt-4o-mini}]
`);
  });
  after(async () => stopAll(gyre, cut, backup));

  test('the client gets the two pieces, then an SSE error event stream_interrupted, never [DONE]; no resume', async () => {
    const res = await streamText(`${gyre.url}/v1/chat/completions`, chatBody({ stream: true }));
    assert.deepEqual(via(res), { status: 200, provider: 'primary', attempts: '1' });
    const events = sseData(res.text);
    assert.equal((await cut.stats()).requests, 1);
    // midstream: error never resumes on the fallback.
    assert.equal((await backup.stats()).requests, 0);
    // The role chunk and two content chunks are what an unfaulted mock sends first for the same body.
    const whole = sseData(await mockDirect(cut, backup));
    assert.deepEqual(events.slice(0, 3), whole.slice(0, 3));
    assert.equal(JSON.parse(events[1]).choices[0].delta.content, 'Mock ');
    assert.equal(JSON.parse(events[2]).choices[0].delta.content, 'reply ');
    assert.equal(events.length, 4);
    const err = JSON.parse(events[3]);
    assert.deepEqual(Object.keys(err), ['error']);
    assert.equal(err.error.code, 'stream_interrupted');
    assert.equal(err.error.type, 'upstream_error');
    assert.match(err.error.message, /^provider 'primary' ended the stream before it was complete \(/);
    assert.ok(!events.includes('[DONE]'));
    assert.equal(res.broken, true, 'the HTTP body must not end cleanly');
  });

  test('the OpenAI Node SDK raises on it, after yielding the two pieces', async () => {
    const client = new OpenAI({ baseURL: `${gyre.url}/v1`, apiKey: 'unused', maxRetries: 0, timeout: 10000 * SLOW });
    const stream = await client.chat.completions.create(chatBody({ stream: true }));
    const got = [];
    let raised = null;
    try {
      for await (const c of stream) got.push(c.choices[0]?.delta?.content);
    } catch (e) {
      raised = e;
    }
    assert.deepEqual(got, ['', 'Mock ', 'reply ']);
    assert.ok(raised instanceof OpenAI.APIError, `raised ${raised}`);
    assert.equal(raised.code, 'stream_interrupted');
    assert.equal(raised.type, 'upstream_error');
    assert.match(raised.message, /^provider 'primary' ended the stream before it was complete/);
  });
});
