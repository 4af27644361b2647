// Logs and stored text (issue 10, point 9): a string a client or a provider
// controls cannot forge a log line; failure logging is rate-limited and says
// how much it suppressed; the trace API answers JSON (well-formed UTF-8)
// whatever bytes a body held; and an upstream error body that echoes the
// request head never delivers gyre's own provider key to the client or the
// store.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import fs from 'node:fs';
import net from 'node:net';
import {
  startGyre, startMock, startUpstream, postJson, chatBody, freePort, rawHttp, runGyre, tmpdir, SLOW,
} from '../lib/harness.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const strict = new TextDecoder('utf-8', { fatal: true });

// As src/common/log.h sets them.
const LOG_BURST = 20;
const LOG_PER_SECOND = 10;

/** GETs `p` and returns {status, bytes}. */
async function getBytes(url) {
  const r = await fetch(url, { signal: AbortSignal.timeout(5000 * SLOW) });
  return { status: r.status, bytes: Buffer.from(await r.arrayBuffer()) };
}

/** Waits (bounded) for the writer to store trace `id`; returns the answer's raw bytes. */
async function pollTraceBytes(base, id) {
  const deadline = Date.now() + 3000 * SLOW;
  let last;
  while (Date.now() < deadline) {
    last = await getBytes(`${base}/api/traces/${id}`);
    if (last.status === 200) return last.bytes;
    assert.equal(last.status, 404, last.bytes.toString('latin1'));
    await sleep(50);
  }
  assert.fail(`trace ${id} was not stored within ${3000 * SLOW} ms`);
}

/** Sends raw bytes over TCP and returns every byte the server sent until it closed (bounded), as a Buffer. */
function rawHttpBytes(port, text, ms) {
  return new Promise((resolve) => {
    const chunks = [];
    const s = net.connect(port, '127.0.0.1', () => s.write(text));
    const t = setTimeout(() => { s.destroy(); resolve(Buffer.concat(chunks)); }, ms);
    s.on('data', (d) => chunks.push(d));
    s.on('close', () => { clearTimeout(t); resolve(Buffer.concat(chunks)); });
    s.on('error', () => {});
  });
}

/** POSTs raw bytes as a JSON body and returns {status, headers, bytes}. */
async function postBytes(url, bytes, headers = {}) {
  const r = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: bytes,
    signal: AbortSignal.timeout(15000 * SLOW),
  });
  return { status: r.status, headers: r.headers, bytes: Buffer.from(await r.arrayBuffer()) };
}

describe('log lines', () => {
  test('an upstream error message with CR LF cannot forge a log line: the line is escaped as a whole', async () => {
    // An Anthropic provider whose stream fails after its first event, with a message that carries a
    // whole forged log line, an ESC sequence and a byte above 0x7e.
    const forged = 'boom\r\ngyre: worker 0: FAKE LOG LINE\u001b[2J\u00ff';
    const up = await startUpstream((req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      const ev = (name, data) => res.write(`event: ${name}\ndata: ${JSON.stringify(data)}\n\n`);
      ev('message_start', { type: 'message_start', message: { id: 'msg_1', type: 'message', role: 'assistant', model: 'claude-x', content: [], usage: { input_tokens: 3, output_tokens: 0 } } });
      ev('content_block_start', { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } });
      ev('content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: 'Hi' } });
      ev('error', { type: 'error', error: { type: 'overloaded_error', message: forged } });
      res.end();
    });
    const gyre = await startGyre(`workers: 1
providers:
  - {name: anth, kind: anthropic, base_url: "${up.v1}", keys: [sk-ant-logs-0123456789], breaker: off}
routes:
  - name: chat
    targets: [{provider: anth, model: claude-x}]
`);
    try {
      // Raw bytes: the stream ends with an error event and a cut, which fetch reports as a failure.
      const body = JSON.stringify(chatBody({ stream: true }));
      const text = await rawHttp(gyre.port, `POST /v1/chat/completions HTTP/1.1\r\nhost: gyre\r\ncontent-type: application/json\r\n` +
        `content-length: ${body.length}\r\nconnection: close\r\n\r\n${body}`, 5000 * SLOW);
      assert.match(text, /^HTTP\/1\.1 200 /);
      assert.match(text, /FAKE LOG LINE/, 'the client sees the provider\'s error event');
      await sleep(100);
    } finally {
      const { output } = await gyre.stop();
      await up.close();
      const lines = output.split('\n');
      assert.deepEqual(lines.filter((l) => l.startsWith('gyre: worker 0: FAKE')), []);
      assert.equal(lines.filter((l) => l.includes('FAKE LOG LINE')).length, 1, output);
      const line = lines.find((l) => l.includes('FAKE LOG LINE'));
      assert.ok(line.endsWith(': boom\\r\\ngyre: worker 0: FAKE LOG LINE\\x1b[2J\\xc3\\xbf'), line);
      assert.match(line, /^gyre: request [0-9a-f]{32}: /);
    }
  });

  test('a request path with %0d%0a cannot forge a log line, and every answer naming the path is UTF-8 JSON', async () => {
    // A /v1 path with an encoded CR LF is refused before routing (point 10), so it never reaches a log line; a path
    // outside /v1 gets a 404 that names the path as h2o decoded it (CR LF, ESC and 0xff included): the answer is
    // strict UTF-8 JSON and nothing of it starts a line in gyre's log.
    const mock = await startMock();
    const gyre = await startGyre(`workers: 1
providers:
  - {name: anth, kind: anthropic, base_url: "${mock.v1}", keys: [sk-ant-logs-0123456789]}
routes:
  - name: chat
    targets: [{provider: anth, model: claude-x}]
`);
    let refused, unknown;
    try {
      const body = JSON.stringify({ model: 'chat', input: 'x' });
      refused = await rawHttpBytes(gyre.port, 'POST /v1/x%0d%0agyre:%20worker%200:%20FAKE%20LOG%20LINE%1b%ff HTTP/1.1\r\nhost: gyre\r\n' +
        `content-type: application/json\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n${body}`, 5000 * SLOW);
      unknown = await rawHttpBytes(gyre.port, 'GET /x%0d%0agyre:%20worker%200:%20FAKE%20LOG%20LINE%1b%ff HTTP/1.1\r\nhost: gyre\r\n' +
        'connection: close\r\n\r\n', 5000 * SLOW);
    } finally {
      const forwarded = (await mock.stats()).requests;
      const { output } = await gyre.stop();
      await mock.stop();
      const lines = output.split('\n');
      assert.deepEqual(lines.filter((l) => l.startsWith('gyre: worker 0: FAKE')), [], output);
      assert.deepEqual(lines.filter((l) => l.includes('FAKE LOG LINE')), [], output);
      assert.equal(forwarded, 0);
    }
    assert.match(refused.toString('latin1'), /^HTTP\/1\.1 400 /);
    const err = JSON.parse(strict.decode(refused.subarray(refused.indexOf('\r\n\r\n') + 4)));
    assert.equal(err.error.code, 'invalid_path');
    assert.match(unknown.toString('latin1'), /^HTTP\/1\.1 404 /);
    // The bytes as gyre sent them: a strict decoder refuses anything that is not UTF-8.
    const nf = JSON.parse(strict.decode(unknown.subarray(unknown.indexOf('\r\n\r\n') + 4)));
    assert.ok(nf.error.message.startsWith('unknown path /x\r\ngyre: worker 0: FAKE LOG LINE\u001b\uFFFD;'), nf.error.message);
  });

  test('2000 failing requests log at most the bucket and its refill, and every other line is counted as suppressed', async () => {
    const dead = await freePort(); // nothing listens there: every attempt fails to connect
    const gyre = await startGyre(`workers: 1
providers:
  - {name: gone, kind: openai, base_url: "http://127.0.0.1:${dead}/v1", keys: [sk-gone-0123456789], breaker: off}
routes:
  - name: chat
    targets: [{provider: gone, model: gpt-4o-mini}]
`);
    const started = Date.now();
    const requestLines = (out) => out.split('\n').filter((l) => l.startsWith('gyre: request '));
    // One request first: how many lines one failure writes, with the bucket still full.
    const one = await postJson(`${gyre.url}/v1/chat/completions`, chatBody());
    assert.equal(one.status, 502);
    await sleep(50);
    const perRequest = requestLines(gyre.proc.output()).length;
    assert.ok(perRequest >= 1 && perRequest <= 3, `lines for one failure: ${perRequest}`);
    let i = 0;
    const worker = async () => {
      while (i < 2000) {
        i++;
        const r = await postJson(`${gyre.url}/v1/chat/completions`, chatBody());
        assert.equal(r.status, 502);
      }
    };
    await Promise.all(Array.from({ length: 20 }, worker));
    const { output } = await gyre.stop(); // the exit flush reports what is still counted
    const elapsed = (Date.now() - started) / 1000;
    const logged = requestLines(output).length;
    const summaries = output.split('\n').filter((l) => l.startsWith('gyre: ') && l.includes(' suppressed: request '));
    const suppressed = summaries.reduce((n, l) => n + Number(l.match(/^gyre: (\d+) similar lines? suppressed: request %\.\*s: .*$/)[1]), 0);
    assert.ok(summaries.length >= 1, output.slice(-2000));
    assert.equal(logged + suppressed, 2001 * perRequest, 'every failure is either written or counted');
    // Each line one failure writes has its own call site, and each site its own bucket.
    assert.ok(logged <= perRequest * (LOG_BURST + Math.ceil(elapsed * LOG_PER_SECOND)),
      `${logged} lines in ${elapsed} s: more than the bucket allows`);
  });
});

describe('stored text', () => {
  let mock, gyre, dir, db;
  before(async () => {
    mock = await startMock();
    dir = tmpdir('gyre-seclogs-');
    db = path.join(dir, 'gyre.db');
    gyre = await startGyre(`workers: 1
store: {sqlite: "${db}", traces: true}
providers:
  - {name: mock, kind: openai, base_url: "${mock.v1}", keys: [sk-mock-utf8-0123456789]}
routes:
  - name: chat
    targets: [{provider: mock, model: gpt-4o-mini}]
`);
  });
  after(async () => {
    assert.equal((await gyre.stop()).code, 0);
    assert.equal((await mock.stop()).code, 0);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('a request body with ill-formed UTF-8 reads back from /api/traces/{id} as strict JSON with U+FFFD', async () => {
    // \xff\xfe: never UTF-8; \xc0\xaf: an overlong '/'; \xed\xa0\x80: a surrogate.
    const body = Buffer.concat([
      Buffer.from('{"model":"chat","messages":[{"role":"user","content":"A'),
      Buffer.from([0xff, 0xfe]), Buffer.from(' B'), Buffer.from([0xc0, 0xaf]), Buffer.from(' C'),
      Buffer.from([0xed, 0xa0, 0x80]), Buffer.from('"}]}'),
    ]);
    const r = await postBytes(`${gyre.url}/v1/chat/completions`, body);
    assert.equal(r.status, 200, r.bytes.toString('latin1'));
    const id = r.headers.get('x-gyre-trace-id');
    const bytes = await pollTraceBytes(gyre.url, id);
    const t = JSON.parse(strict.decode(bytes)); // throws on bytes that are not UTF-8
    assert.equal(t.trace_id, id);
    assert.equal(typeof t.request_body, 'string', 'a body that is not UTF-8 is embedded as a string');
    assert.equal(t.request_body,
      '{"model":"chat","messages":[{"role":"user","content":"A\uFFFD\uFFFD B\uFFFD\uFFFD C\uFFFD\uFFFD\uFFFD"}]}');

    // `gyre traces show --json` prints the same rendering.
    const cli = await runGyre(['traces', 'show', id, '--db', db, '--json']);
    assert.equal(cli.code, 0, cli.stderr);
    assert.deepEqual(JSON.parse(cli.stdout), t);
  });
});

describe('provider keys in upstream error bodies', () => {
  const OPENAI_KEY = 'sk-scrub-openai-0123456789abcdef';
  const ANTHROPIC_KEY = 'sk-ant-scrub-0123456789abcdef';
  let mock, gyre, dir;
  before(async () => {
    mock = await startMock(['--fault', 'echo_headers']);
    dir = tmpdir('gyre-scrub-');
    gyre = await startGyre(`workers: 1
store: {sqlite: "${path.join(dir, 'gyre.db')}", traces: true}
providers:
  - {name: oai, kind: openai, base_url: "${mock.v1}", keys: [${OPENAI_KEY}]}
  - {name: ant, kind: anthropic, base_url: "${mock.v1}", keys: [${ANTHROPIC_KEY}]}
routes:
  - name: chat
    targets: [{provider: oai, model: gpt-4o-mini}]
  - name: chat-a
    targets: [{provider: ant, model: claude-sonnet-4-5}]
`);
  });
  after(async () => {
    assert.equal((await gyre.stop()).code, 0);
    assert.equal((await mock.stop()).code, 0);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  for (const [route, key, header] of [['chat', OPENAI_KEY, 'authorization: Bearer '], ['chat-a', ANTHROPIC_KEY, 'x-api-key: ']]) {
    test(`an error body echoing the request head reaches the client and the trace without the key (${route}, ${header.trim()})`, async () => {
      const r = await postJson(`${gyre.url}/v1/chat/completions`, chatBody({ model: route }));
      assert.equal(r.status, 400, r.text);
      assert.ok(!r.text.includes(key), `the client got the provider key: ${r.text}`);
      // The provider did echo the head: the marker stands where the key was.
      assert.ok(r.text.includes(`${header}[REDACTED:provider_key]`), r.text);
      const id = r.headers.get('x-gyre-trace-id');
      const text = strict.decode(await pollTraceBytes(gyre.url, id));
      assert.ok(!text.includes(key), `the trace kept the provider key: ${text}`);
      const t = JSON.parse(text);
      assert.equal(t.status, 400);
      assert.ok(t.attempts[0].error.includes('[REDACTED:provider_key]'), t.attempts[0].error);
    });
  }
});
