// Issue 10, points 6 and 7: a hostile or broken provider cannot make gyre
// read forever, and a client that leaves cancels everything gyre was doing
// for it.  Each test stages the provider's misbehaviour with a gyre-mock fault
// (docs/mock.md) and checks what the client gets, that gyre stopped reading
// (the mock's bytes_sent stops growing, its `active` request ends), and what
// the trace and /metrics record.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import { startGyre, startMock, startUpstream, postJson, chatBody, tmpdir, SLOW } from '../lib/harness.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const MiB = 1024 * 1024;
// What may sit in the two kernels' socket buffers on loopback when gyre closes: sent by the mock, never read.
const SOCKET_SLACK = 16 * MiB;

const stops = [];
after(async () => {
  for (const stop of stops.reverse()) await stop();
});

/** A directory for a gyre's trace store, removed after the file's tests. */
function storeDir() {
  const dir = tmpdir('gyre-upstream-');
  stops.unshift(async () => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function mockWith(opts = {}) {
  const m = await startMock();
  stops.push(async () => assert.equal((await m.stop()).code, 0));
  if (Object.keys(opts).length) await m.configure(opts);
  return m;
}

async function gyreWith(config) {
  const g = await startGyre(config);
  stops.push(async () => assert.equal((await g.stop()).code, 0));
  return g;
}

function oneRoute(mock, { root = '', provider = '', route = '' } = {}) {
  return `workers: 1
${root}
providers:
  - {name: flaky, kind: openai, base_url: "${mock.v1}", keys: [sk-flaky]${provider}}
routes:
  - name: chat
    targets: [{provider: flaky, model: gpt-4o-mini}]${route}
`;
}

/** CPU time (user + system, in clock ticks) gyre has used so far. */
function cpuTicks(pid) {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]); // utime and stime are fields 14 and 15 of the whole line
}

/** Waits (bounded) until the mock's bytes_sent holds still for 500 ms, and returns it. */
async function settledBytes(mock) {
  let last = (await mock.stats()).bytes_sent;
  const deadline = Date.now() + 5000 * SLOW;
  while (Date.now() < deadline) {
    await sleep(500);
    const now = (await mock.stats()).bytes_sent;
    if (now === last) return now;
    last = now;
  }
  assert.fail(`the mock was still sending after ${5000 * SLOW} ms (${last} bytes): gyre kept reading`);
}

async function waitFor(what, fn, ms) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await fn()) return;
    await sleep(25);
  }
  assert.fail(`${what} did not happen within ${ms} ms`);
}

/** Opens a raw HTTP/1.1 request to gyre and resolves with the socket and what it received so far. */
function rawRequest(port, body, headers = {}) {
  const text = JSON.stringify(body);
  const head = [`POST /v1/chat/completions HTTP/1.1`, 'host: gyre', 'content-type: application/json',
    `content-length: ${Buffer.byteLength(text)}`, ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`)];
  const s = net.connect(port, '127.0.0.1', () => s.write(`${head.join('\r\n')}\r\n\r\n${text}`));
  const conn = { socket: s, received: '', closed: false };
  s.on('data', (d) => { conn.received += d; });
  s.on('close', () => { conn.closed = true; });
  s.on('error', () => {});
  return conn;
}

async function traceOf(gyre, requestId) {
  let id;
  await waitFor(`the trace of ${requestId}`, async () => {
    const list = await (await fetch(`${gyre.url}/api/traces?limit=50`)).json();
    id = list.data.find((t) => t.request_id === requestId)?.trace_id;
    return id !== undefined;
  }, 5000 * SLOW);
  return (await fetch(`${gyre.url}/api/traces/${id}`)).json();
}

async function metric(gyre, line) {
  const text = await (await fetch(`${gyre.url}/metrics`)).text();
  const m = text.split('\n').find((l) => l.startsWith(`${line} `));
  return m === undefined ? undefined : Number(m.slice(line.length + 1));
}

test('an error answer whose chunked body never ends is cut at 1 MiB: the client gets 502 naming the provider and gyre closes the connection', async () => {
  const mock = await mockWith({ fault: 'endless-error' });
  const gyre = await gyreWith(oneRoute(mock));
  const started = Date.now();
  const res = await postJson(`${gyre.url}/v1/chat/completions`, chatBody());
  assert.ok(Date.now() - started < 5000 * SLOW, `answered after ${Date.now() - started} ms`);
  assert.equal(res.status, 502);
  assert.equal(res.json.error.code, 'error_body_too_large');
  assert.equal(res.json.error.message,
    "provider 'flaky' sent an error answer (status 500) longer than 1048576 bytes; gyre stopped reading it");
  const sent = await settledBytes(mock);
  assert.ok(sent < MiB + SOCKET_SLACK, `the mock sent ${sent} bytes before gyre closed`);
});

test('a stream whose one SSE line never ends is cut at 1 MiB with a 502 before any byte, without spinning the CPU', async () => {
  const mock = await mockWith({ fault: 'endless-line' });
  const gyre = await gyreWith(oneRoute(mock));
  const started = Date.now();
  // The client did not ask for usage: gyre asks for it and re-makes the stream event by event.
  const res = await postJson(`${gyre.url}/v1/chat/completions`, chatBody({ stream: true }));
  assert.ok(Date.now() - started < 5000 * SLOW, `answered after ${Date.now() - started} ms`);
  assert.equal(res.status, 502);
  assert.equal(res.json.error.code, 'stream_event_too_large');
  assert.equal(res.json.error.message,
    "provider 'flaky' sent a stream line or event longer than 1048576 bytes; gyre stopped reading it");
  const sent = await settledBytes(mock);
  assert.ok(sent < MiB + SOCKET_SLACK, `the mock sent ${sent} bytes before gyre closed`);
  const before = cpuTicks(gyre.proc.pid);
  await sleep(2000);
  const used = cpuTicks(gyre.proc.pid) - before;
  assert.ok(used < 20, `gyre used ${used} clock ticks of CPU in 2 s after answering`);
});

test('a relayed stream (the client asked for usage) whose one SSE line never ends is cut the same way', async () => {
  const mock = await mockWith({ fault: 'endless-line' });
  const gyre = await gyreWith(oneRoute(mock));
  const res = await postJson(`${gyre.url}/v1/chat/completions`,
    chatBody({ stream: true, stream_options: { include_usage: true } }));
  assert.equal(res.status, 502);
  assert.equal(res.json.error.code, 'stream_event_too_large');
  const sent = await settledBytes(mock);
  assert.ok(sent < MiB + SOCKET_SLACK, `the mock sent ${sent} bytes before gyre closed`);
});

/** A provider whose stream sends one good event, then one line that never ends; counts what it wrote. */
async function endlessAfterFirstEvent() {
  const state = { written: 0, open: 0 };
  const fill = Buffer.alloc(16384, 'x');
  const up = await startUpstream((req, res) => {
    state.open++;
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.write('data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":"Hi"},"finish_reason":null}]}\n\n');
    res.write('data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"');
    let closed = false;
    res.on('close', () => { closed = true; state.open--; });
    const pump = () => {
      while (!closed) {
        state.written += fill.length;
        if (!res.write(fill)) { res.once('drain', pump); return; }
      }
    };
    setImmediate(pump);
  });
  stops.push(() => up.close());
  return { up, state };
}

for (const [what, extra] of [['re-made event by event (no usage asked)', {}],
  ['relayed as it comes (usage asked)', { stream_options: { include_usage: true } }]]) {
  test(`a stream ${what} whose line never ends after its first event ends with an SSE error event`, async () => {
    const { up, state } = await endlessAfterFirstEvent();
    const gyre = await gyreWith(oneRoute(up));
    const r = await fetch(`${gyre.url}/v1/chat/completions`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify(chatBody({ stream: true, ...extra })), signal: AbortSignal.timeout(5000 * SLOW),
    });
    assert.equal(r.status, 200);
    // The error event is the stream's last; then the transfer ends without its final chunk, so that a client
    // that does not read SSE errors still sees the answer as cut, not complete.
    let text = '';
    const decoder = new TextDecoder();
    await assert.rejects(async () => {
      for await (const piece of r.body) text += decoder.decode(piece, { stream: true });
    }, /terminated/);
    assert.match(text, /"content":"Hi"/);
    const last = text.trim().split('\n\n').at(-1);
    assert.equal(JSON.parse(last.replace(/^data: /, '')).error.code, 'stream_event_too_large');
    await waitFor('gyre closing the provider\'s connection', () => state.open === 0, 1000 * SLOW);
    assert.ok(state.written < MiB + SOCKET_SLACK, `the provider wrote ${state.written} bytes`);
  });
}

test('a response head that never ends is cut at 64 KiB with a 502 naming the provider', async () => {
  const mock = await mockWith({ fault: 'endless-head' });
  const gyre = await gyreWith(oneRoute(mock));
  const res = await postJson(`${gyre.url}/v1/chat/completions`, chatBody());
  assert.equal(res.status, 502);
  assert.equal(res.json.error.message,
    "provider 'flaky' failed before answering: the response head is larger than 65536 bytes");
  assert.doesNotMatch(res.text, /127\.0\.0\.1/);
  const sent = await settledBytes(mock);
  assert.ok(sent < 64 * 1024 + SOCKET_SLACK, `the mock sent ${sent} bytes before gyre closed`);
});

test('an answer that trickles in for longer than the provider\'s timeout_ms is cut with a 504 at timeout_ms', async () => {
  // A byte every 100 ms: the idle bound between reads (timeout_ms) never fires on its own.
  const timers = new Set();
  const up = await startUpstream((req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    const t = setInterval(() => res.write(' '), 100);
    timers.add(t);
    res.on('close', () => { clearInterval(t); timers.delete(t); });
  });
  stops.push(async () => { for (const t of timers) clearInterval(t); await up.close(); });
  const gyre = await gyreWith(oneRoute(up, { provider: ', timeout_ms: 1000' }));
  const started = Date.now();
  const res = await postJson(`${gyre.url}/v1/chat/completions`, chatBody());
  const took = Date.now() - started;
  assert.equal(res.status, 504);
  assert.equal(res.json.error.message, "provider 'flaky' did not complete its answer in time (timeout_ms 1000)");
  assert.ok(took >= 900 && took < 3000 * SLOW, `answered after ${took} ms`);
  await waitFor('gyre closing the trickling connection', () => timers.size === 0, 1000 * SLOW);
});

test('an answer larger than max_response_bytes (the root\'s, or the provider\'s own) is refused with 502', async () => {
  const mock = await mockWith();
  const gyre = await gyreWith(`workers: 1
max_response_bytes: 65536
providers:
  - {name: small, kind: openai, base_url: "${mock.v1}", keys: [sk-a]}
  - {name: large, kind: openai, base_url: "${mock.v1}", keys: [sk-b], max_response_bytes: 1048576}
routes:
  - name: small
    targets: [{provider: small, model: text-embedding-3-small}]
  - name: large
    targets: [{provider: large, model: text-embedding-3-small}]
`);
  // Four vectors of 4096 numbers: about 150 KB of JSON.
  const big = { input: ['a', 'b', 'c', 'd'], dimensions: 4096 };
  const small = await postJson(`${gyre.url}/v1/embeddings`, { model: 'small', ...big });
  assert.equal(small.status, 502);
  assert.equal(small.json.error.code, 'response_too_large');
  assert.equal(small.json.error.message,
    "provider 'small' answered more than 65536 bytes (max_response_bytes); gyre stopped reading it");
  const large = await postJson(`${gyre.url}/v1/embeddings`, { model: 'large', ...big });
  assert.equal(large.status, 200);
  assert.equal(large.json.data.length, 4);
  const tiny = await postJson(`${gyre.url}/v1/embeddings`, { model: 'small', input: 'a' });
  assert.equal(tiny.status, 200);
});

test('a client that leaves before the first byte cancels the attempt, its retry and the fallback; the trace says 499', async () => {
  const primary = await mockWith({ fault: 'hang' });
  const backup = await mockWith();
  const gyre = await gyreWith(`workers: 1
store: {sqlite: "${storeDir()}/gyre.db", traces: true}
providers:
  - {name: primary, kind: openai, base_url: "${primary.v1}", keys: [sk-p]}
  - {name: backup, kind: openai, base_url: "${backup.v1}", keys: [sk-b]}
routes:
  - name: chat
    targets: [{provider: primary, model: gpt-4o-mini}]
    fallbacks: [{provider: backup, model: gpt-4o-mini}]
    retries: 1
    backoff_ms: 1
    attempt_timeout_ms: 1000
`);
  const conn = rawRequest(gyre.port, chatBody(), { 'x-request-id': 'leave-before-first-byte' });
  await waitFor('the primary receiving the request', async () => (await primary.stats()).active === 1, 3000 * SLOW);
  conn.socket.destroy();
  // gyre closes its connection to the primary at once: the hanging answer ends on the mock's side.
  await waitFor('the primary seeing gyre close', async () => (await primary.stats()).active === 0, 500 * SLOW);
  // Past the attempt timeout (1 s), the retry and the fallback after it would have come.
  await sleep(2500);
  assert.equal((await primary.stats()).requests, 1);
  assert.equal((await backup.stats()).requests, 0);
  const t = await traceOf(gyre, 'leave-before-first-byte');
  assert.equal(t.status, 499);
  assert.equal(t.attempts.length, 1);
  assert.equal(t.attempts[0].provider, 'primary');
  assert.equal(t.attempts[0].error, 'the client closed the request before its answer');
  assert.equal(await metric(gyre, 'gyre_requests_total{route="chat",provider="primary",model="gpt-4o-mini",status="499"}'), 1);
  assert.equal(await metric(gyre, 'gyre_requests_total{route="chat",provider="primary",model="gpt-4o-mini",status="200"}'), undefined);
});

test('an HTTP/2 client that resets its stream before the first byte cancels the attempt and the fallback; the trace says 499', async () => {
  const http2 = await import('node:http2');
  const primary = await mockWith({ fault: 'hang' });
  const backup = await mockWith();
  const gyre = await gyreWith(`workers: 1
store: {sqlite: "${storeDir()}/gyre.db", traces: true}
providers:
  - {name: primary, kind: openai, base_url: "${primary.v1}", keys: [sk-p]}
  - {name: backup, kind: openai, base_url: "${backup.v1}", keys: [sk-b]}
routes:
  - name: chat
    targets: [{provider: primary, model: gpt-4o-mini}]
    fallbacks: [{provider: backup, model: gpt-4o-mini}]
    attempt_timeout_ms: 1000
`);
  // Prior knowledge (h2c): h2o answers the HTTP/2 preface on gyre's plain listener.
  const session = http2.connect(gyre.url);
  session.on('error', () => {});
  const stream = session.request({ ':method': 'POST', ':path': '/v1/chat/completions', 'content-type': 'application/json',
    'x-request-id': 'h2-reset-before-first-byte' });
  stream.on('error', () => {});
  stream.end(JSON.stringify(chatBody()));
  await waitFor('the primary receiving the request', async () => (await primary.stats()).active === 1, 3000 * SLOW);
  stream.close(http2.constants.NGHTTP2_CANCEL);
  await waitFor('the primary seeing gyre close', async () => (await primary.stats()).active === 0, 500 * SLOW);
  await sleep(1500); // past the attempt timeout, when the fallback would have come
  assert.equal((await backup.stats()).requests, 0);
  const t = await traceOf(gyre, 'h2-reset-before-first-byte');
  assert.equal(t.status, 499);
  assert.equal(t.attempts.length, 1);
  assert.equal(t.attempts[0].error, 'the client closed the request before its answer');
  session.close();
});

test('a client that leaves mid-stream closes the provider\'s connection at once, not at its next event; the trace says 499', async () => {
  // Four seconds between the stream's pieces: gyre has nothing to write to the client in that time.
  const mock = await mockWith({ tokens_per_sec: 0.25 });
  const gyre = await gyreWith(`workers: 1
store: {sqlite: "${storeDir()}/gyre.db", traces: true}
providers:
  - {name: slow, kind: openai, base_url: "${mock.v1}", keys: [sk-s]}
routes:
  - name: chat
    targets: [{provider: slow, model: gpt-4o-mini}]
`);
  const conn = rawRequest(gyre.port, chatBody({ stream: true }), { 'x-request-id': 'leave-mid-stream' });
  await waitFor('the first event reaching the client', () => conn.received.includes('data: {'), 3000 * SLOW);
  assert.match(conn.received, /^HTTP\/1\.1 200 /);
  conn.socket.destroy();
  await waitFor('the provider seeing gyre close', async () => (await mock.stats()).active === 0, 1500 * SLOW);
  const t = await traceOf(gyre, 'leave-mid-stream');
  assert.equal(t.status, 499);
  assert.equal(t.attempts.length, 1);
  assert.equal(t.attempts[0].provider, 'slow');
  assert.equal(t.attempts[0].status, 200);
  assert.equal(t.attempts[0].error, 'the client closed the request before its answer');
});

test('the client watch gives the connection back: a keep-alive client gets slow answers one after another, and pipelined ones', async () => {
  const mock = await mockWith({ latency_ms: 150 });
  const gyre = await gyreWith(oneRoute(mock));
  const text = JSON.stringify(chatBody());
  const one = `POST /v1/chat/completions HTTP/1.1\r\nhost: gyre\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(text)}\r\n\r\n${text}`;
  const s = net.connect(gyre.port, '127.0.0.1');
  let got = '';
  s.on('data', (d) => { got += d; });
  const answers = () => (got.match(/HTTP\/1\.1 200 /g) || []).length;
  s.write(one);
  await waitFor('the first answer', () => answers() === 1 && got.includes('Mock reply to'), 3000 * SLOW);
  s.write(one);
  await waitFor('the second answer on the same connection', () => answers() === 2, 3000 * SLOW);
  s.write(one + one);
  await waitFor('two pipelined answers', () => answers() === 4, 3000 * SLOW);
  s.destroy();
  assert.equal((await mock.stats()).requests, 4);
});

test('requests a keep-alive client sends while its answer is pending are answered after it, in order, each from its own body', async () => {
  // gyre polls the client's socket while a call is in flight without reading it (h2o's request points into the
  // socket's buffer): bytes that come then must stay the next request's, untouched.
  const mock = await mockWith({ latency_ms: 300 });
  const gyre = await gyreWith(oneRoute(mock));
  const request = (said) => {
    const text = JSON.stringify(chatBody({ messages: [{ role: 'user', content: said }] }));
    return `POST /v1/chat/completions HTTP/1.1\r\nhost: gyre\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(text)}\r\n\r\n${text}`;
  };
  const s = net.connect(gyre.port, '127.0.0.1');
  let got = '';
  s.on('data', (d) => { got += d; });
  s.write(request('first one'));
  await waitFor('the first call reaching the provider', async () => (await mock.stats()).active === 1, 3000 * SLOW);
  s.write(request('second one'));
  await sleep(50);
  s.write(request('third one'));
  await waitFor('three answers', () => (got.match(/HTTP\/1\.1 200 /g) || []).length === 3, 5000 * SLOW);
  const said = [...got.matchAll(/Mock reply to: ([a-z]+ one)/g)].map((m) => m[1]);
  assert.deepEqual(said, ['first one', 'second one', 'third one']);
  s.destroy();
  assert.equal((await mock.stats()).requests, 3);
});
