// A scripted OpenAI-style provider for the routing tests.  Each request it
// gets is answered by a step of a script: a status with its headers and body,
// after a delay, or a hang, a reset, a stream that ends early.  It records
// every request (the key it came with, the model, when it arrived, what was
// answered), so a test can say exactly which attempts reached which provider,
// with which key, in which order and how far apart.
import { startUpstream } from './harness.mjs';

/** A chat.completion whose text names the provider that answered. */
export function completion(name, model) {
  return {
    id: `chatcmpl-${name}`,
    object: 'chat.completion',
    created: 1700000000,
    model,
    choices: [{ index: 0, message: { role: 'assistant', content: `answer from ${name}` }, finish_reason: 'stop' }],
    usage: { prompt_tokens: 3, completion_tokens: 3, total_tokens: 6 },
  };
}

/** The OpenAI-shaped error body a scripted status answers with. */
export function errorBody(status) {
  return {
    error: { message: `scripted ${status}`, type: status >= 500 ? 'server_error' : 'invalid_request_error', param: null, code: `scripted_${status}` },
  };
}

/**
 * Starts a provider called `name` (the text of its answers).  `script` is a
 * function of the request's record ({n, at, key, model, stream, path}; n
 * counts from 0) that returns the step, or an array of steps (n-th, the last
 * repeated); it can be replaced later through `handle.script`.  A step:
 *
 *   {status: 200}            the completion above (any status: errorBody())
 *   {status, headers, body}  exactly that (body: an object or a string)
 *   {delayMs: N, ...}        the same, N ms later
 *   {hang: true}             never answered
 *   {reset: true}            the connection reset before any byte
 *   {sse: [raw, ...], cut}   200 text/event-stream, the raw strings written
 *                            as they are; then the end of the chunked body,
 *                            or with `cut` the connection closed without it,
 *                            or with `hold` nothing more (left open)
 *
 * Returns {url, v1, seen, keys(), models(), script, close}; seen[i].answer is
 * the body text sent (undefined for hangs, resets and streams).
 */
export async function startScripted(name, script = [{ status: 200 }]) {
  const seen = [];
  const handle = { name, seen, script };
  const up = await startUpstream((req, res, body) => {
    let json = null;
    try { json = JSON.parse(body); } catch { /* not JSON */ }
    const rec = {
      n: seen.length,
      at: performance.now(),
      key: (req.headers.authorization || '').replace(/^Bearer /, ''),
      model: json?.model ?? null,
      stream: json?.stream === true,
      path: req.url,
    };
    seen.push(rec);
    const s = handle.script;
    const step = (typeof s === 'function' ? s(rec) : s[Math.min(rec.n, s.length - 1)]) || { status: 200 };
    play(name, step, req, res, rec);
  });
  return Object.assign(handle, {
    url: up.url,
    v1: up.v1,
    keys: () => seen.map((r) => r.key),
    models: () => seen.map((r) => r.model),
    close: up.close,
  });
}

function play(name, step, req, res, rec) {
  if (step.hang) return;
  if (step.reset) {
    req.socket.resetAndDestroy();
    return;
  }
  const go = () => {
    if (res.destroyed) return; // the gateway gave up on this attempt
    if (step.sse) {
      res.writeHead(200, { 'content-type': 'text/event-stream', ...step.headers });
      for (const e of step.sse) res.write(e);
      // Half-closing the socket sends what was written, then FIN: the
      // chunked body never gets its last chunk.
      if (step.cut) res.socket.end();
      else if (!step.hold) res.end();
      return;
    }
    const status = step.status ?? 200;
    const body = step.body ?? (status === 200 ? completion(name, rec.model) : errorBody(status));
    const text = typeof body === 'string' ? body : JSON.stringify(body);
    rec.answer = text;
    res.writeHead(status, { 'content-type': 'application/json', ...step.headers });
    res.end(text);
  };
  if (step.delayMs) setTimeout(go, step.delayMs);
  else go();
}
