// Streams are relayed chunk by chunk, never buffered whole, and never end
// silently: a cut stream ends with an error event; a client that leaves
// cancels the upstream call.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import fs from 'node:fs';
import { startGyre, startUpstream, oneProviderConfig, chatBody, sseData, SLOW, SAN } from '../lib/harness.mjs';

const chunk = (i) => `data: {"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"w${i} "},"finish_reason":null}]}\n\n`;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function openStream(url, body = chatBody({ stream: true })) {
  const ac = new AbortController();
  const r = await fetch(`${url}/v1/chat/completions`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), signal: ac.signal,
  });
  return { r, reader: r.body.getReader(), ac };
}

test('each upstream event reaches the client before the upstream sends the next', async () => {
  let release;
  const gate = new Promise((r) => { release = r; });
  const up = await startUpstream(async (req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.write(chunk(0));
    await gate; // the second event waits until the client has seen the first
    res.write(chunk(1));
    res.end('data: [DONE]\n\n');
  });
  const g = await startGyre(oneProviderConfig(up.v1));
  const { r, reader } = await openStream(g.url);
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('content-type'), 'text/event-stream');
  const first = new TextDecoder().decode((await reader.read()).value);
  assert.equal(first, chunk(0));
  release();
  let rest = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    rest += new TextDecoder().decode(value);
  }
  assert.equal(rest, chunk(1) + 'data: [DONE]\n\n');
  await g.stop();
  await up.close();
});

test('a stream the provider cuts before [DONE] ends with an error event, not a clean end', async () => {
  const up = await startUpstream((req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.write(chunk(0));
    setTimeout(() => req.socket.destroy(), 50);
  });
  const g = await startGyre(oneProviderConfig(up.v1));
  const { reader } = await openStream(g.url);
  let text = '', failed = false;
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      text += new TextDecoder().decode(value);
    }
  } catch {
    failed = true; // the connection was closed without the final chunk
  }
  const events = sseData(text);
  assert.equal(events.length, 2);
  assert.equal(events[0], chunk(0).slice(6, -2));
  const err = JSON.parse(events[1]).error;
  assert.equal(err.code, 'stream_interrupted');
  assert.equal(err.type, 'upstream_error');
  assert.match(err.message, /^provider 'primary' ended the stream before it was complete \(/);
  assert.equal(failed, true, 'the HTTP response must not end cleanly');
  await g.stop();
  await up.close();
});

test('a client that disconnects mid-stream cancels its upstream request', async () => {
  let upstreamClosed;
  const closed = new Promise((r) => { upstreamClosed = r; });
  const up = await startUpstream((req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    let i = 0;
    const t = setInterval(() => res.write(chunk(i++)), 20);
    res.on('close', () => { clearInterval(t); upstreamClosed(Date.now()); });
  });
  const g = await startGyre(oneProviderConfig(up.v1));
  const { reader, ac } = await openStream(g.url);
  await reader.read();
  const t0 = Date.now();
  ac.abort();
  const when = await Promise.race([closed, sleep(3000 * SLOW).then(() => null)]);
  assert.notEqual(when, null, 'the upstream connection was not closed');
  assert.ok(when - t0 < 1000 * SLOW, `upstream closed ${when - t0} ms after the client left`);
  // And the gateway is fine afterwards.
  assert.equal((await fetch(`${g.url}/healthz`)).status, 200);
  const { code } = await g.stop();
  assert.equal(code, 0);
  await up.close();
});

test('SIGTERM lets a request in flight finish, refuses new connections, and exits 0', async () => {
  const up = await startUpstream((req, res) => {
    setTimeout(() => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"slow":true}');
    }, 600);
  });
  const g = await startGyre(oneProviderConfig(up.v1, { extra: 'shutdown_grace_ms: 5000\n' }));
  const inflight = fetch(`${g.url}/v1/chat/completions`, { method: 'POST', body: JSON.stringify(chatBody()) });
  await sleep(200);
  const stopping = g.stop();
  await sleep(100);
  // A new connection is refused (kept-alive ones may still be answered).
  const refused = await new Promise((resolve) => {
    const s = net.connect(g.port, '127.0.0.1', () => { s.destroy(); resolve(false); });
    s.on('error', (e) => resolve(e.code));
  });
  assert.equal(refused, 'ECONNREFUSED');
  const r = await inflight;
  assert.equal(r.status, 200);
  assert.equal(await r.text(), '{"slow":true}');
  const { code, output } = await stopping;
  assert.equal(code, 0);
  assert.match(output, /SIGTERM received/);
  assert.match(output, /gyre: stopped/);
  await up.close();
});

test('SIGTERM with a request that outlives the grace period still exits 0 when the grace ends', async () => {
  const up = await startUpstream(() => { /* never answers */ });
  const g = await startGyre(oneProviderConfig(up.v1, { extra: 'shutdown_grace_ms: 300\n' }));
  const inflight = fetch(`${g.url}/v1/chat/completions`, { method: 'POST', body: JSON.stringify(chatBody()) }).catch((e) => e);
  await sleep(150);
  const t0 = Date.now();
  const { code, output } = await g.stop();
  assert.equal(code, 0);
  assert.ok(Date.now() - t0 < 3000 * SLOW);
  assert.match(output, /grace period over, 1 request\(s\) still in flight are cut/);
  await inflight;
  await up.close();
});

test('a slow client makes gyre stop reading from the provider: memory stays bounded', async () => {
  const MiB = 1024 * 1024;
  const block = Buffer.alloc(MiB, 'x');
  const up = await startUpstream((req, res) => {
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(64 * MiB) });
    let sent = 0;
    const pump = () => {
      while (sent < 64 && res.write(block)) sent++;
      if (sent < 64) res.once('drain', () => { sent++; pump(); });
      else res.end();
    };
    pump();
  });
  const g = await startGyre(oneProviderConfig(up.v1, { extra: 'passthrough: [/v1/files]\n' }));
  const rss = () => Number(fs.readFileSync(`/proc/${g.proc.pid}/status`, 'utf8').match(/VmRSS:\s+(\d+)/)[1]) * 1024;
  const before = rss();
  const r = await fetch(`${g.url}/v1/files/big/content`);
  const reader = r.body.getReader();
  await reader.read();
  await sleep(1000); // the client reads nothing for a second
  const during = rss();
  let total = 0;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    total += value.length;
  }
  assert.ok(total > 60 * MiB, `read ${total}`);
  // ASan keeps freed memory in quarantine and adds shadow memory: a wider
  // bound there, still well under the 64 MiB an unbounded relay would hold.
  assert.ok(during - before < (SAN ? 40 : 16) * MiB, `gyre grew by ${((during - before) / MiB).toFixed(1)} MiB while the client stalled`);
  await g.stop();
  await up.close();
});
