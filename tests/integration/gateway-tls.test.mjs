// https providers: certificates are verified by default (system store, or
// the provider's ca_file), SNI is sent, and a failed verification is a 502
// that names the provider.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import https from 'node:https';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { startGyre, oneProviderConfig, postJson, chatBody, tmpdir } from '../lib/harness.mjs';

let dir, server, port, seenServername;
const ANSWER = { id: 'tls', object: 'chat.completion', choices: [] };

function makeCert(name, san) {
  const key = path.join(dir, `${name}.key`), crt = path.join(dir, `${name}.crt`);
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', crt,
    '-subj', '/CN=gyre-test', '-addext', `subjectAltName=${san}`, '-days', '1'], { stdio: 'ignore' });
  return { key, crt };
}

before(async () => {
  dir = tmpdir('gyre-tls-');
  const good = makeCert('good', 'DNS:localhost,IP:127.0.0.1');
  server = https.createServer({ key: fs.readFileSync(good.key), cert: fs.readFileSync(good.crt) }, (req, res) => {
    seenServername = req.socket.servername;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(ANSWER));
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  port = server.address().port;
});
after(() => new Promise((r) => server.close(r)));

test('an https provider whose certificate chains to ca_file is used, with SNI', async () => {
  const g = await startGyre(oneProviderConfig(`https://localhost:${port}/v1`,
    { providerExtra: `, ca_file: "${path.join(dir, 'good.crt')}"` }));
  const res = await postJson(`${g.url}/v1/chat/completions`, chatBody());
  assert.equal(res.status, 200);
  assert.deepEqual(res.json, ANSWER);
  assert.equal(seenServername, 'localhost');
  await g.stop();
});

test('an https provider with an untrusted certificate is a 502 upstream_tls_error', async () => {
  const g = await startGyre(oneProviderConfig(`https://localhost:${port}/v1`));
  const res = await postJson(`${g.url}/v1/chat/completions`, chatBody());
  assert.equal(res.status, 502);
  assert.equal(res.json.error.code, 'upstream_tls_error');
  // The provider's name, never its address (issue 10); the log keeps the address.
  assert.match(res.json.error.message, /^provider 'primary': TLS failed: /);
  const { output } = await g.stop();
  assert.match(output, new RegExp(`provider 'primary' at localhost:${port}: connect: `));
});

test('a certificate for another name is refused even when its issuer is trusted', async () => {
  const other = makeCert('other', 'DNS:other.example');
  const s2 = https.createServer({ key: fs.readFileSync(other.key), cert: fs.readFileSync(other.crt) }, (req, res) => res.end('{}'));
  await new Promise((r) => s2.listen(0, '127.0.0.1', r));
  const g = await startGyre(oneProviderConfig(`https://localhost:${s2.address().port}/v1`,
    { providerExtra: `, ca_file: "${other.crt}"` }));
  const res = await postJson(`${g.url}/v1/chat/completions`, chatBody());
  assert.equal(res.status, 502);
  assert.equal(res.json.error.code, 'upstream_tls_error');
  assert.match(res.json.error.message, /TLS failed: hostname mismatch$/);
  await g.stop();
  await new Promise((r) => s2.close(r));
});

test('an https provider addressed by IP is verified against the certificate\'s IP names', async () => {
  const g = await startGyre(oneProviderConfig(`https://127.0.0.1:${port}/v1`,
    { providerExtra: `, ca_file: "${path.join(dir, 'good.crt')}"` }));
  const res = await postJson(`${g.url}/v1/chat/completions`, chatBody());
  assert.equal(res.status, 200);
  await g.stop();
});

test('tls_verify: false accepts any certificate (an explicit opt-out)', async () => {
  const g = await startGyre(oneProviderConfig(`https://localhost:${port}/v1`, { providerExtra: ', tls_verify: false' }));
  const res = await postJson(`${g.url}/v1/chat/completions`, chatBody());
  assert.equal(res.status, 200);
  await g.stop();
});
