// Planning skips the targets whose provider kind cannot serve a request (issue 11, point 3): embeddings on an
// anthropic provider, /v1/completions on a gemini one.  Such a target is no failure of the route's: were it
// tried as a fallback, gyre's own 400 (unsupported_endpoint) would end the walk and mask what the targets before
// it answered, a 5xx that the client's SDK retries while it never retries a 400.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startGyre, postJson } from '../lib/harness.mjs';
import { startScripted, errorBody } from '../lib/scripted-upstream.mjs';

function via(res) {
  return { status: res.status, provider: res.headers.get('x-gyre-provider'), attempts: res.headers.get('x-gyre-attempts') };
}

/** Route `r`: an openai primary, then a fallback of `kind` that cannot serve the endpoint under test. */
function config(primary, fallback, kind) {
  return `workers: 1
providers:
  - {name: primary, kind: openai, base_url: "${primary.v1}", keys: [sk-a]}
  - {name: other, kind: ${kind}, base_url: "${fallback.url}", keys: [sk-b]}
routes:
  - name: r
    targets: [{provider: primary, model: m}]
    fallbacks: [{provider: other, model: m2}]
`;
}

async function stopAll(t, g, ...ups) {
  t.after(async () => {
    assert.equal((await g.stop()).code, 0);
    for (const u of ups) await u.close();
  });
}

for (const [kind, path, body] of [
  ['anthropic', '/v1/embeddings', { model: 'r', input: 'hello' }],
  ['gemini', '/v1/completions', { model: 'r', prompt: 'hello' }],
]) {
  test(`${path} with an openai primary answering 500 and a fallback of kind ${kind}: the client gets the primary's 500, not gyre's 400`, async (t) => {
    const primary = await startScripted('primary', [{ status: 500 }]);
    const fallback = await startScripted('other', [{ status: 200 }]);
    const g = await startGyre(config(primary, fallback, kind));
    await stopAll(t, g, primary, fallback);
    const res = await postJson(`${g.url}${path}`, body);
    assert.deepEqual(via(res), { status: 500, provider: 'primary', attempts: '1' });
    assert.equal(res.text, JSON.stringify(errorBody(500)));
    assert.equal(primary.seen.length, 1);
    assert.equal(primary.seen[0].path, path);
    assert.equal(fallback.seen.length, 0, `the ${kind} provider got no request`);
  });
}

test('a plan with no target that can serve the endpoint is answered 400 unsupported_endpoint, naming the provider and its kind', async (t) => {
  const up = await startScripted('other', [{ status: 200 }]);
  const g = await startGyre(`workers: 1
providers:
  - {name: claude, kind: anthropic, base_url: "${up.url}", keys: [sk-b]}
routes:
  - name: r
    targets: [{provider: claude, model: m}]
`);
  await stopAll(t, g, up);
  const res = await postJson(`${g.url}/v1/embeddings`, { model: 'r', input: 'hello' });
  assert.equal(res.status, 400);
  assert.equal(res.json.error.code, 'unsupported_endpoint');
  assert.equal(res.json.error.message, "provider 'claude' is of kind anthropic, which does not serve /v1/embeddings");
  assert.equal(up.seen.length, 0);
});
