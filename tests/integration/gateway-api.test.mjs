// The OpenAI-compatible surface: what reaches the provider, and what comes back.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startGyre, startUpstream, oneProviderConfig, postJson, chatBody } from '../lib/harness.mjs';

let up, gyre;
const ANSWER = { id: 'chatcmpl-1', object: 'chat.completion', model: 'gpt-4o-mini', choices: [{ index: 0, message: { role: 'assistant', content: 'Hello!' }, finish_reason: 'stop' }] };

before(async () => {
  up = await startUpstream((req, res) => {
    res.writeHead(200, { 'content-type': 'application/json', 'x-request-id': 'req_upstream_1', 'openai-processing-ms': '12', connection: 'keep-alive' });
    res.end(req.url.startsWith('/v1/chat') ? JSON.stringify(ANSWER) : JSON.stringify({ echo: req.url, method: req.method }));
  });
  process.env.GYRE_TEST_KEY_B = 'sk-test-b';
  // /v1/files is account-changing, so pass-through of it is opt-in (passthrough:); /v1/responses is there by default.
  gyre = await startGyre(oneProviderConfig(up.v1, { keys: ['sk-test-a', 'env:GYRE_TEST_KEY_B'], extra: 'passthrough: [/v1/responses, /v1/files]\n' }), { env: { GYRE_TEST_KEY_B: 'sk-test-b' } });
});
after(async () => {
  assert.equal((await gyre.stop()).code, 0);
  await up.close();
});

const last = () => up.requests[up.requests.length - 1];

test('GET /healthz answers ok', async () => {
  const r = await fetch(`${gyre.url}/healthz`);
  assert.equal(r.status, 200);
  assert.deepEqual(await r.json(), { status: 'ok' });
  assert.match(r.headers.get('x-request-id'), /^[0-9a-f]{32}$/);
});

test('GET /v1/models lists the configured routes', async () => {
  const r = await fetch(`${gyre.url}/v1/models`);
  assert.deepEqual(await r.json(), {
    object: 'list',
    data: [
      { id: 'chat', object: 'model', created: 0, owned_by: 'gyre' },
      { id: 'embed', object: 'model', created: 0, owned_by: 'gyre' },
    ],
  });
});

test('a chat completion goes to the route\'s target with the model rewritten and nothing else changed', async () => {
  const body = '{"model":"chat",  "messages":[{"role":"user","content":"Hi \\"there\\""}],"temperature":0.5}';
  const res = await postJson(`${gyre.url}/v1/chat/completions`, body);
  assert.equal(res.status, 200);
  assert.deepEqual(res.json, ANSWER);
  const r = last();
  assert.equal(r.method, 'POST');
  assert.equal(r.url, '/v1/chat/completions');
  assert.equal(r.body, '{"model":"gpt-4o-mini",  "messages":[{"role":"user","content":"Hi \\"there\\""}],"temperature":0.5}');
  assert.equal(r.headers['content-length'], String(Buffer.byteLength(r.body)));
});

test('provider keys are used in turn; the client\'s credentials never reach the provider', async () => {
  const seen = [];
  for (let i = 0; i < 4; i++) {
    await postJson(`${gyre.url}/v1/chat/completions`, chatBody(), { authorization: 'Bearer client-secret', 'x-api-key': 'client-x', cookie: 'session=1' });
    const h = last().headers;
    seen.push(h.authorization);
    assert.equal(h['x-api-key'], undefined);
    assert.equal(h.cookie, undefined);
  }
  assert.deepEqual(seen.sort(), ['Bearer sk-test-a', 'Bearer sk-test-a', 'Bearer sk-test-b', 'Bearer sk-test-b']);
});

test('client headers that matter upstream pass through; hop-by-hop and gyre\'s own do not', async () => {
  await postJson(`${gyre.url}/v1/chat/completions`, chatBody(), {
    'openai-organization': 'org-1', 'openai-project': 'proj-1', 'user-agent': 'OpenAI/JS 6.0', 'x-stainless-lang': 'js',
    'x-gyre-session': 's1', 'proxy-authorization': 'Basic abc', te: 'trailers', 'accept-encoding': 'gzip',
  });
  const h = last().headers;
  assert.equal(h['openai-organization'], 'org-1');
  assert.equal(h['openai-project'], 'proj-1');
  assert.equal(h['user-agent'], 'OpenAI/JS 6.0');
  assert.equal(h['x-stainless-lang'], 'js');
  assert.equal(h['x-gyre-session'], undefined);
  assert.equal(h['proxy-authorization'], undefined);
  assert.equal(h.te, undefined);
  assert.equal(h['accept-encoding'], undefined);
  assert.equal(h.host, new URL(up.url).host);
});

test('every answer carries x-request-id, which the provider sees too; the provider\'s own id is kept beside it', async () => {
  const res = await postJson(`${gyre.url}/v1/chat/completions`, chatBody());
  const id = res.headers.get('x-request-id');
  assert.match(id, /^[0-9a-f]{32}$/);
  assert.equal(last().headers['x-request-id'], id);
  assert.equal(res.headers.get('x-upstream-request-id'), 'req_upstream_1');
  assert.equal(res.headers.get('openai-processing-ms'), '12');
  // A client's own id is kept.
  const res2 = await postJson(`${gyre.url}/v1/chat/completions`, chatBody(), { 'x-request-id': 'client-trace-42' });
  assert.equal(res2.headers.get('x-request-id'), 'client-trace-42');
  assert.equal(last().headers['x-request-id'], 'client-trace-42');
});

test('provider/model addresses one provider directly, with the model as written', async () => {
  const res = await postJson(`${gyre.url}/v1/chat/completions`, chatBody({ model: 'primary/openai/gpt-4o' }));
  assert.equal(res.status, 200);
  assert.equal(JSON.parse(last().body).model, 'openai/gpt-4o');
});

test('embeddings go to the route\'s target', async () => {
  const res = await postJson(`${gyre.url}/v1/embeddings`, { model: 'embed', input: 'hello' });
  assert.equal(res.status, 200);
  assert.equal(last().url, '/v1/embeddings');
  assert.equal(last().body, '{"model":"text-embedding-3-small","input":"hello"}');
});

test('other /v1 paths pass through untouched, routed by the body\'s model when it has one', async () => {
  let res = await postJson(`${gyre.url}/v1/responses?stream=false`, { model: 'chat', input: 'hi' });
  assert.equal(res.status, 200);
  assert.deepEqual(res.json, { echo: '/v1/responses?stream=false', method: 'POST' });
  assert.equal(last().body, '{"model":"gpt-4o-mini","input":"hi"}');
  // No body at all: the first openai provider takes it.
  const r = await fetch(`${gyre.url}/v1/files/file-abc/content`);
  assert.equal(r.status, 200);
  assert.deepEqual(await r.json(), { echo: '/v1/files/file-abc/content', method: 'GET' });
  // A body that is not JSON (a multipart upload) passes as it is.
  const form = new FormData();
  form.append('purpose', 'fine-tune');
  form.append('file', new Blob(['{"a":1}\n']), 'data.jsonl');
  const r2 = await fetch(`${gyre.url}/v1/files`, { method: 'POST', body: form });
  assert.equal(r2.status, 200);
  assert.match(last().headers['content-type'], /^multipart\/form-data; boundary=/);
  assert.match(last().body, /name="purpose"\r\n\r\nfine-tune/);
  // An unknown model in a pass-through body is a 404 like anywhere else.
  res = await postJson(`${gyre.url}/v1/responses`, { model: 'nope', input: 'hi' });
  assert.equal(res.status, 404);
  assert.equal(res.json.error.code, 'model_not_found');
});

test('a route splits traffic by weight', async () => {
  const a = await startUpstream((req, res) => res.end('{"who":"a"}'));
  const b = await startUpstream((req, res) => res.end('{"who":"b"}'));
  const g = await startGyre(`workers: 1
providers:
  - {name: a, kind: openai, base_url: "${a.v1}"}
  - {name: b, kind: openai, base_url: "${b.v1}"}
  - {name: c, kind: openai, base_url: "${b.v1}"}
routes:
  - name: chat
    targets: [{provider: a, model: m, weight: 3}, {provider: b, model: m, weight: 1}, {provider: c, model: m, weight: 0}]
`);
  const counts = { a: 0, b: 0 };
  for (let i = 0; i < 400; i++) counts[(await postJson(`${g.url}/v1/chat/completions`, chatBody())).json.who]++;
  assert.equal(counts.a + counts.b, 400);
  // 3:1 of 400 is 300:100; the binomial spread (sd 8.7) makes 240..360 a 7-sigma bound.
  assert.ok(counts.a > 240 && counts.a < 360, JSON.stringify(counts));
  await g.stop();
  await a.close();
  await b.close();
});

test('a pooled connection that the provider closed unseen is retried once on a new connection', async () => {
  // The provider serves one request per connection but never says so: the
  // second request on a kept-alive connection is dropped unanswered, as when
  // an idle-timeout close crosses a new request on the wire.
  const served = new WeakMap();
  const up2 = await startUpstream((req, res) => {
    if (served.get(req.socket)) { req.socket.destroy(); return; }
    served.set(req.socket, true);
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('{"ok":true}');
  });
  const g = await startGyre(oneProviderConfig(up2.v1));
  const attempts = [];
  for (let i = 0; i < 3; i++) {
    const res = await postJson(`${g.url}/v1/chat/completions`, chatBody());
    assert.equal(res.status, 200, `request ${i}: ${res.text}`);
    attempts.push(res.headers.get('x-gyre-attempts'));
  }
  assert.deepEqual(attempts, ['1', '2', '2']);
  // 3 answered + 2 dropped on reused connections.
  assert.equal(up2.requests.length, 5);
  await g.stop();
  await up2.close();
});

test('a provider answering with conflicting content-lengths is a 502, not a guess', async () => {
  const net = await import('node:net');
  const srv = net.createServer((s) => s.once('data', () => s.end('HTTP/1.1 200 OK\r\ncontent-length: 5\r\ncontent-length: 6\r\n\r\nhello!')));
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  const g = await startGyre(oneProviderConfig(`http://127.0.0.1:${srv.address().port}/v1`));
  const res = await postJson(`${g.url}/v1/chat/completions`, chatBody());
  assert.equal(res.status, 502);
  assert.equal(res.json.error.code, 'upstream_error');
  assert.match(res.json.error.message, /failed before answering: the response is not valid HTTP\/1\.1$/);
  await g.stop();
  srv.close();
});

test('a body rebuilt because "model" is spelled with escapes still reaches the provider with the target model', async () => {
  // Numbers such as 1e14 come back as 100000000000000: the rebuilt body is
  // much longer than the one the client sent.
  const nums = Array(40).fill('1e14').join(',');
  const body = `{"mod\\u0065l":"chat","messages":[{"role":"user","content":"hi"}],"metadata":{"n":[${nums}]}}`;
  const res = await postJson(`${gyre.url}/v1/chat/completions`, body);
  assert.equal(res.status, 200);
  const sent = JSON.parse(last().body);
  assert.equal(sent.model, 'gpt-4o-mini');
  assert.deepEqual(sent.metadata.n, Array(40).fill(1e14));
});

test('every proxied answer says which route, provider and model answered, after how many attempts', async () => {
  let res = await postJson(`${gyre.url}/v1/chat/completions`, chatBody());
  assert.equal(res.headers.get('x-gyre-route'), 'chat');
  assert.equal(res.headers.get('x-gyre-provider'), 'primary');
  assert.equal(res.headers.get('x-gyre-model'), 'gpt-4o-mini');
  assert.equal(res.headers.get('x-gyre-attempts'), '1');
  res = await postJson(`${gyre.url}/v1/chat/completions`, chatBody({ model: 'primary/some-model-x' }));
  assert.equal(res.headers.get('x-gyre-route'), null);
  assert.equal(res.headers.get('x-gyre-provider'), 'primary');
  assert.equal(res.headers.get('x-gyre-model'), 'some-model-x');
  // gyre's own answers before routing carry none of them.
  res = await postJson(`${gyre.url}/v1/chat/completions`, chatBody({ model: 'nope' }));
  assert.equal(res.headers.get('x-gyre-provider'), null);
});
