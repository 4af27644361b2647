// HTTP/1 at gyre's front door, attacked with raw bytes (issue 10, points 4,
// 5, 8 and 11): framing as RFC 9112 requires (no smuggling through
// Content-Length and Transfer-Encoding, no obs-fold, a bound on the head),
// a 413 that reaches clients still sending their body (lingering close,
// bounded in bytes and time), a connection cap and the fd limit without a
// spinning accept loop, and SIGHUP that does not kill gyre.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import fs from 'node:fs';
import { spawn } from 'node:child_process';
import OpenAI from 'openai';
import { startGyre, oneProviderConfig, chatBody, SLOW } from '../lib/harness.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const MiB = 1024 * 1024;

const COMPLETION = JSON.stringify({
  id: 'chatcmpl-raw', object: 'chat.completion', created: 0, model: 'gpt-4o-mini',
  choices: [{ index: 0, message: { role: 'assistant', content: 'hi' }, finish_reason: 'stop' }],
  usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 },
});

/**
 * A provider on a raw TCP socket: it keeps every byte gyre sends it (so a
 * test sees exactly what was forwarded, malformed lines included) and
 * answers each complete request with one chat completion.
 */
async function startRawUpstream() {
  const received = [];
  const sockets = new Set();
  let answered = 0;
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    let buf = Buffer.alloc(0);
    s.on('data', (d) => {
      received.push(d);
      buf = Buffer.concat([buf, d]);
      for (;;) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = buf.subarray(0, end).toString('latin1');
        const m = /\r\ncontent-length:\s*(\d+)/i.exec(head);
        const total = end + 4 + (m ? Number(m[1]) : 0);
        if (buf.length < total) return;
        buf = buf.subarray(total);
        answered++;
        s.write(`HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: ${COMPLETION.length}\r\n\r\n${COMPLETION}`);
      }
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${server.address().port}`;
  return {
    v1: `${url}/v1`,
    text: () => Buffer.concat(received).toString('latin1'),
    requests: () => answered,
    close: () => new Promise((r) => { for (const s of sockets) s.destroy(); server.close(() => r()); }),
  };
}

/**
 * Writes `bytes` on a new connection and collects what comes back until the
 * server closes (closed: true) or `ms` pass (closed: false).
 */
function exchange(port, bytes, ms = 3000 * SLOW) {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => s.write(bytes));
    let out = Buffer.alloc(0);
    let done = false;
    const finish = (closed) => {
      if (done) return;
      done = true;
      clearTimeout(t);
      s.destroy();
      resolve({ text: out.toString('latin1'), closed });
    };
    s.on('data', (d) => { out = Buffer.concat([out, d]); });
    s.on('close', () => finish(true));
    s.on('error', () => {});
    const t = setTimeout(() => finish(false), ms);
  });
}

/** Splits HTTP/1.1 responses that carry a content-length into {status, headers, body}. */
function responses(text) {
  const out = [];
  let rest = text;
  while (rest.length) {
    const end = rest.indexOf('\r\n\r\n');
    if (end < 0) throw new Error(`a partial head: ${JSON.stringify(rest.slice(0, 200))}`);
    const [line, ...lines] = rest.slice(0, end).split('\r\n');
    const headers = {};
    for (const l of lines) {
      const i = l.indexOf(':');
      headers[l.slice(0, i).toLowerCase()] = l.slice(i + 1).trim();
    }
    const len = Number(headers['content-length']);
    out.push({ status: Number(line.split(' ')[1]), headers, body: rest.slice(end + 4, end + 4 + len) });
    rest = rest.slice(end + 4 + len);
  }
  return out;
}

/** One GET on its own connection (Connection: close), so that no client pool holds a connection afterwards. */
async function rawGet(port, path, ms = 3000 * SLOW) {
  const r = await exchange(port, `GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`, ms);
  return r.text ? responses(r.text)[0] : null;
}

/** A sample of gyre's /metrics, e.g. metric(text, 'gyre_accept_pauses_total{reason="fd_limit"}'). */
function metric(text, series) {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

/** Starts gyre without the harness's readiness fetch (a client pool would keep a connection open). */
async function startQuiet(config, opts = {}) {
  const g = await startGyre(config, { ...opts, ready: false });
  const deadline = Date.now() + 5000 * SLOW;
  for (;;) {
    const r = await rawGet(g.port, '/healthz', 500).catch(() => null);
    if (r && r.status === 200) return g;
    if (Date.now() > deadline) throw new Error(`gyre did not start:\n${g.proc.output()}`);
    await sleep(25);
  }
}

let upstream, gyre;
before(async () => {
  upstream = await startRawUpstream();
  gyre = await startGyre(oneProviderConfig(upstream.v1));
});
after(async () => {
  if (gyre) assert.equal((await gyre.stop()).code, 0);
  if (upstream) await upstream.close();
});

const BODY = JSON.stringify(chatBody());
const chatHead = (extra) => `POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n${extra}\r\n`;

// ---- point 4: framing ----

test('conflicting Content-Length headers get one 400 and a closed connection; the request smuggled behind them is never answered or forwarded', async () => {
  const before = upstream.text().length;
  const smuggled = `${chatHead(`Content-Length: ${BODY.length}\r\n`)}${BODY}`;
  const r = await exchange(gyre.port,
    `${chatHead(`Content-Length: ${BODY.length}\r\nContent-Length: ${BODY.length + smuggled.length}\r\n`)}${BODY}${smuggled}`);
  assert.equal(r.closed, true);
  const res = responses(r.text);
  assert.equal(res.length, 1);
  assert.equal(res[0].status, 400);
  assert.equal(res[0].headers.connection, 'close');
  assert.deepEqual(JSON.parse(res[0].body).error, {
    message: 'the request has Content-Length headers with different values (RFC 9112 section 6.3)',
    type: 'invalid_request_error', param: null, code: 'bad_request',
  });
  assert.equal(upstream.text().length, before, 'nothing reached the provider');
});

test('identical repeated Content-Length headers are one length, and the request is served', async () => {
  const r = await exchange(gyre.port, `${chatHead(`Content-Length: ${BODY.length}\r\nContent-Length: ${BODY.length}\r\nConnection: close\r\n`)}${BODY}`);
  const res = responses(r.text);
  assert.equal(res.length, 1);
  assert.equal(res[0].status, 200);
  assert.equal(JSON.parse(res[0].body).id, 'chatcmpl-raw');
});

test('Content-Length with Transfer-Encoding is read as chunked, answered once, and the connection closed after it', async () => {
  const requestsBefore = upstream.requests();
  const chunked = `${BODY.length.toString(16)}\r\n${BODY}\r\n0\r\n\r\n`;
  const pipelined = 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n';
  const r = await exchange(gyre.port, `${chatHead('Content-Length: 3\r\nTransfer-Encoding: chunked\r\n')}${chunked}${pipelined}`);
  assert.equal(r.closed, true);
  const res = responses(r.text);
  assert.equal(res.length, 1, 'the request pipelined after it is not answered');
  assert.equal(res[0].status, 200);
  assert.equal(res[0].headers.connection, 'close');
  assert.equal(upstream.requests(), requestsBefore + 1);
  // The chunked body, decoded (and the route's name replaced by its target's model).
  assert.ok(upstream.text().endsWith(JSON.stringify(chatBody({ model: 'gpt-4o-mini' }))), upstream.text().slice(-300));
});

test('an obs-fold header line gets a 400 and nothing is forwarded upstream', async () => {
  const before = upstream.text().length;
  const r = await exchange(gyre.port, `${chatHead(`X-Note: first\r\n second line\r\nContent-Length: ${BODY.length}\r\n`)}${BODY}`);
  assert.equal(r.closed, true);
  const res = responses(r.text);
  assert.equal(res.length, 1);
  assert.equal(res[0].status, 400);
  assert.equal(JSON.parse(res[0].body).error.message,
    'a header line starts with a space or a tab (obsolete line folding, RFC 9112 section 5.2); send each header on one line');
  assert.equal(upstream.text().length, before);
});

test('a 40 KB request head gets a 431 in the OpenAI error shape and is not forwarded; 30 KB is served', async () => {
  const before = upstream.text().length;
  const pad = (kb) => Array.from({ length: kb / 4 }, (_, i) => `X-Pad-${i}: ${'a'.repeat(4000)}\r\n`).join('');
  const r = await exchange(gyre.port, `${chatHead(`${pad(40)}Content-Length: ${BODY.length}\r\n`)}${BODY}`);
  assert.equal(r.closed, true);
  const res = responses(r.text);
  assert.equal(res.length, 1);
  assert.equal(res[0].status, 431);
  assert.match(res[0].headers['content-type'], /^application\/json/);
  const err = JSON.parse(res[0].body).error;
  assert.equal(err.type, 'invalid_request_error');
  assert.equal(err.code, 'request_header_fields_too_large');
  assert.match(err.message, /^the request head is \d+ bytes, over this gateway's limit of 32768 bytes \(max_header_bytes\)$/);
  assert.equal(upstream.text().length, before);
  const ok = await exchange(gyre.port, `${chatHead(`${pad(28)}Content-Length: ${BODY.length}\r\nConnection: close\r\n`)}${BODY}`);
  assert.equal(responses(ok.text)[0].status, 200);
});

test('max_header_bytes sets the bound on the head', async () => {
  const g = await startGyre(`${oneProviderConfig(upstream.v1)}max_header_bytes: 2048\n`);
  try {
    const r = await exchange(g.port, `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: ${'a'.repeat(2100)}\r\n\r\n`);
    assert.equal(responses(r.text)[0].status, 431);
    const ok = await exchange(g.port, `GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Pad: ${'a'.repeat(1900)}\r\n\r\n`);
    assert.equal(responses(ok.text)[0].status, 200);
  } finally {
    assert.equal((await g.stop()).code, 0);
  }
});

// ---- point 5: a 413 that reaches the client ----

const HUGE = 9 * MiB; // the default max_body_bytes is 8 MiB
const hugeChat = () => JSON.stringify(chatBody({ messages: [{ role: 'user', content: 'x'.repeat(HUGE) }] }));

function assert413(status, text) {
  assert.equal(status, 413);
  assert.deepEqual(JSON.parse(text).error, {
    message: "the request body is larger than this gateway's limit of 8388608 bytes (max_body_bytes)",
    type: 'invalid_request_error', param: null, code: 'request_too_large',
  });
}

test('a 9 MiB body sent with fetch (undici) gets the 413, not a reset', async () => {
  const r = await fetch(`${gyre.url}/v1/chat/completions`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: hugeChat(),
    signal: AbortSignal.timeout(20000 * SLOW),
  });
  assert413(r.status, await r.text());
});

test('a 9 MiB body sent with Python http.client gets the 413, not a reset', async () => {
  const script = `
import http.client, json, sys
c = http.client.HTTPConnection('127.0.0.1', int(sys.argv[1]), timeout=20)
body = b'{"model":"chat","messages":[{"role":"user","content":"' + b'x' * (9 << 20) + b'"}]}'
try:
    c.request('POST', '/v1/chat/completions', body=body, headers={'Content-Type': 'application/json'})
    r = c.getresponse()
    print(json.dumps({'status': r.status, 'body': r.read().decode()}))
except Exception as e:
    print(json.dumps({'error': repr(e)}))
`;
  const out = await new Promise((resolve, reject) => {
    const p = spawn('python3', ['-c', script, String(gyre.port)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let s = '';
    p.stdout.on('data', (d) => { s += d; });
    const t = setTimeout(() => { p.kill('SIGKILL'); reject(new Error('python timed out')); }, 30000 * SLOW);
    p.on('exit', () => { clearTimeout(t); resolve(s); });
  });
  const r = JSON.parse(out);
  assert.equal(r.error, undefined, `python saw ${r.error}`);
  assert413(r.status, r.body);
});

test('the OpenAI Node SDK gets a 413 APIError at once for a 9 MiB body, with no retry', async () => {
  let calls = 0;
  const client = new OpenAI({
    baseURL: `${gyre.url}/v1`, apiKey: 'sk-client', maxRetries: 2,
    fetch: (...args) => { calls++; return fetch(...args); },
  });
  const err = await client.chat.completions
    .create({ model: 'chat', messages: [{ role: 'user', content: 'x'.repeat(HUGE) }] })
    .then(() => null, (e) => e);
  assert.ok(err instanceof OpenAI.APIError, `got ${err}`);
  assert.equal(err.status, 413);
  assert.equal(err.code, 'request_too_large');
  assert.equal(calls, 1);
});

/**
 * Sends a head announcing a 100 MiB body, then body bytes (`chunk` bytes
 * every `everyMs`, or as fast as the socket takes them when 0) until the
 * connection fails.  Returns what came back, the bytes the kernel took, and
 * the time from the answer's arrival to the failure.
 */
function sendForever(port, { chunk, everyMs }) {
  return new Promise((resolve) => {
    // Half-open: gyre's FIN after its answer must not stop this client from sending.
    const s = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    let answer = '', answeredAt = 0, sent = 0, done = false, timer = null;
    const data = Buffer.alloc(chunk, 'x');
    const finish = () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      s.destroy();
      resolve({ answer, sent, afterAnswerMs: Date.now() - answeredAt });
    };
    const pump = () => {
      if (done) return;
      const more = s.write(data, (e) => { if (!e) sent += chunk; });
      if (everyMs) timer = setTimeout(pump, everyMs);
      else if (more) setImmediate(pump);
      else s.once('drain', pump);
    };
    s.on('connect', () => {
      s.write(chatHead(`Content-Length: ${100 * MiB}\r\n`));
      pump();
    });
    s.on('data', (d) => { if (!answeredAt) answeredAt = Date.now(); answer += d; });
    s.on('error', finish);
    s.on('close', finish);
  });
}

test('after a 413, a client that keeps sending slowly is cut at linger_ms', async () => {
  const g = await startGyre(`${oneProviderConfig(upstream.v1)}linger_ms: 1000\n`);
  try {
    const r = await sendForever(g.port, { chunk: 1024, everyMs: 20 });
    assert.match(r.answer, /^HTTP\/1\.1 413 /);
    assert.match(r.answer, /"code":"request_too_large"/);
    assert.ok(r.afterAnswerMs >= 900 && r.afterAnswerMs < 3000 * SLOW, `cut ${r.afterAnswerMs} ms after the answer`);
  } finally {
    assert.equal((await g.stop()).code, 0);
  }
});

test('after a 413, a client that keeps sending fast is cut at linger_bytes', async () => {
  const g = await startGyre(`${oneProviderConfig(upstream.v1)}linger_bytes: ${24 * MiB}\n`);
  try {
    const t0 = Date.now();
    const r = await sendForever(g.port, { chunk: 64 * 1024, everyMs: 0 });
    assert.match(r.answer, /^HTTP\/1\.1 413 /);
    // gyre read (and dropped) at least linger_bytes before it closed; what the kernels buffer comes on top.
    assert.ok(r.sent >= 24 * MiB && r.sent < 64 * MiB, `the client sent ${r.sent} bytes`);
    assert.ok(Date.now() - t0 < 10000 * SLOW, 'cut by bytes, long before linger_ms (30 s)');
  } finally {
    assert.equal((await g.stop()).code, 0);
  }
});

test('a lingering connection that goes quiet is closed after 5 s without data, and counts as open until then', async () => {
  const g = await startQuiet(`${oneProviderConfig(upstream.v1)}`);
  try {
    const s = net.connect({ port: g.port, host: '127.0.0.1', allowHalfOpen: true });
    s.on('error', () => {});
    let answer = '';
    s.on('data', (d) => { answer += d; });
    s.write(chatHead(`Content-Length: ${100 * MiB}\r\n`));
    const t0 = Date.now();
    while (!answer.includes('request_too_large') && Date.now() - t0 < 3000 * SLOW) await sleep(10);
    assert.match(answer, /^HTTP\/1\.1 413 /);
    await sleep(1000);
    // The scrape's own connection, and the lingering one.
    assert.equal(metric((await rawGet(g.port, '/metrics')).body, 'gyre_connections_open'), 2);
    await sleep(4500);
    assert.equal(metric((await rawGet(g.port, '/metrics')).body, 'gyre_connections_open'), 1);
    s.destroy();
  } finally {
    assert.equal((await g.stop()).code, 0);
  }
});

// ---- point 8: connections and file descriptors ----

/** Opens a connection and has one keep-alive request answered on it; resolves with the open socket. */
function openServed(port) {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => s.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n'));
    s.on('error', reject);
    s.once('data', () => resolve(s));
  });
}

test('with max_connections: 4 the fifth connection is served only once one of the four closes', async () => {
  const g = await startQuiet('workers: 2\nproviders: []\nroutes: []\nmax_connections: 4\n');
  try {
    const four = [];
    for (let i = 0; i < 4; i++) four.push(await openServed(g.port));
    const fifth = net.connect(g.port, '127.0.0.1', () => fifth.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n'));
    fifth.on('error', () => {});
    let answeredAt = 0;
    fifth.on('data', () => { if (!answeredAt) answeredAt = Date.now(); });
    await sleep(500 * SLOW);
    assert.equal(answeredAt, 0, 'the fifth connection waits while four are open');
    const closedAt = Date.now();
    four.pop().destroy();
    while (!answeredAt && Date.now() - closedAt < 2000 * SLOW) await sleep(5);
    assert.ok(answeredAt > 0 && answeredAt - closedAt < 1000 * SLOW, 'served once a connection closed');
    fifth.destroy();
    for (const s of four) s.destroy();
    await sleep(100);
    const m = (await rawGet(g.port, '/metrics')).body;
    assert.ok(metric(m, 'gyre_accept_pauses_total{reason="max_connections"}') >= 1);
    assert.equal(metric(m, 'gyre_connections_max'), 4);
    assert.equal(metric(m, 'gyre_connections_open'), 1); // the scrape's own
  } finally {
    assert.equal((await g.stop()).code, 0);
  }
});

/** utime + stime of a process, in clock ticks (/proc/PID/stat fields 14 and 15). */
function cpuTicks(pid) {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(f[11]) + Number(f[12]);
}

test('at the fd limit gyre pauses accepting instead of spinning, and serves again once connections close', async () => {
  const g = await startQuiet('workers: 1\nproviders: []\nroutes: []\n', { wrap: 'ulimit -n 64' });
  const socks = [];
  try {
    for (let i = 0; i < 120; i++) {
      const s = net.connect(g.port, '127.0.0.1');
      s.on('error', () => {});
      socks.push(s);
    }
    await sleep(300);
    const t0 = cpuTicks(g.proc.pid);
    await sleep(2000);
    const used = cpuTicks(g.proc.pid) - t0; // 100 ticks a second
    assert.ok(used <= 20 * SLOW, `gyre used ${used} ticks of CPU in 2 s at the fd limit`);
    for (const s of socks) s.destroy();
    await sleep(200);
    const t1 = Date.now();
    const health = await rawGet(g.port, '/healthz', 2000);
    assert.equal(health?.status, 200);
    assert.ok(Date.now() - t1 < 500 * SLOW, `/healthz took ${Date.now() - t1} ms`);
    const m = (await rawGet(g.port, '/metrics')).body;
    assert.ok(metric(m, 'gyre_accept_pauses_total{reason="fd_limit"}') > 0);
    assert.match(g.proc.output(), /the open-file limit \(64\) is low for max_connections: 4096/);
  } finally {
    for (const s of socks) s.destroy();
    assert.equal((await g.stop()).code, 0);
  }
});

// ---- point 11: SIGHUP ----

test('SIGHUP reads the configuration again and puts it in force, logged; gyre keeps serving; SIGTERM then exits 0', async () => {
  const g = await startQuiet('workers: 1\nproviders: []\nroutes: []\n');
  g.proc.kill('SIGHUP');
  const t0 = Date.now();
  while (!/generation 2 in force/.test(g.proc.output()) && Date.now() - t0 < 2000 * SLOW) await sleep(10);
  assert.equal(g.proc.exitCode, null);
  assert.equal(g.proc.signalCode, null);
  assert.match(g.proc.output(), /gyre: configuration generation 2 in force \(config\.reload by sighup\): 0 routes, 0 providers\n/);
  assert.equal((await rawGet(g.port, '/healthz')).status, 200);
  const res = await g.stop();
  assert.equal(res.code, 0);
  assert.equal(res.signal, null);
});
