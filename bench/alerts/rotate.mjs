// From the first 429 on a key to traffic off that key, with `for: 0s` (the control issue's target: < 2 s).
//
// gyre-mock serves one provider with keys A and B; gyre has a rule `rate_limited_rate > 20%` by [provider,
// key] with `for: 0s` and the action rotate_key.  A client sends a call every 10 ms.  At t0 the mock starts
// answering 429 to key A only; the figure is the time from the first 429 a client got (client clock) to the
// firing event's time (`at_us`, gyre's clock: both are this machine's wall clock), which is when the key was
// taken out; then it checks that key A got no call after it.  The run is repeated (--runs N, default 5) and
// every figure is printed, with the worst.  The evaluation runs once a second, so the expected figure lies
// between 0 and 1 s.  The rule's second action is a webhook notifier: a receiver in this script notes when the
// firing body arrives, and the second figure is from the firing event to that arrival (target: < 1 s).
//
// Usage: node bench/alerts/rotate.mjs [--runs N] [--json]   (GYRE_BUILD: the build directory, default build)
import http from 'node:http';
import { startGyre, startMock, chatBody, postJson } from '../../tests/lib/harness.mjs';

const args = process.argv.slice(2);
const runs = Number(args.includes('--runs') ? args[args.indexOf('--runs') + 1] : 5);
const json = args.includes('--json');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const A = 'sk-bench-key-A-0123456789', B = 'sk-bench-key-B-0123456789';

async function once() {
  const mock = await startMock();
  let hookAt = 0;
  const receiver = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => { body += d; });
    req.on('end', () => {
      if (!hookAt && body.includes('"status":"firing"')) hookAt = Date.now();
      res.end('ok');
    });
  });
  await new Promise((r) => receiver.listen(0, '127.0.0.1', r));
  const gyre = await startGyre(`workers: 2
notifiers:
  - {name: ops, kind: webhook, url: "http://127.0.0.1:${receiver.address().port}/hook"}
providers:
  - {name: p, kind: openai, base_url: "${mock.v1}", keys: [${A}, ${B}], breaker: {failures: 0}}
routes:
  - {name: chat, targets: [{provider: p, model: gpt-4o-mini}]}
alerts:
  - {name: limited, condition: rate_limited_rate > 20%, window: 5s, for: 0s, by: [provider, key], actions: [rotate_key, ops]}
`);
  try {
    await mock.configure({ fault: '429', fault_key: A });
    let first429 = 0, firedAt = 0;
    while (!firedAt) {
      const r = await postJson(`${gyre.url}/v1/chat/completions`, chatBody());
      if (r.status === 429 && !first429) first429 = Date.now();
      const a = await (await fetch(`${gyre.url}/api/alerts`)).json();
      const ev = a.events.find((e) => e.state === 'firing');
      if (ev) firedAt = ev.at_us / 1000;
      await sleep(10);
    }
    const before = (await mock.stats()).keys[A] ?? 0;
    for (let i = 0; i < 20; i++) await postJson(`${gyre.url}/v1/chat/completions`, chatBody());
    const after = (await mock.stats()).keys[A] ?? 0;
    for (let i = 0; i < 500 && !hookAt; i++) await sleep(10);
    return { ms: Math.max(0, firedAt - first429), callsOnAAfter: after - before,
      notifyMs: hookAt ? Math.max(0, hookAt - firedAt) : NaN };
  } finally {
    await gyre.stop();
    await mock.stop();
    receiver.close();
  }
}

const results = [];
for (let i = 0; i < runs; i++) results.push(await once());
const worst = Math.max(...results.map((r) => r.ms));
const worstNotify = Math.max(...results.map((r) => r.notifyMs));
if (json) {
  console.log(JSON.stringify({ bench: 'alerts-rotate', runs, ms: results.map((r) => Math.round(r.ms)), worst_ms: Math.round(worst),
    calls_on_key_after: results.map((r) => r.callsOnAAfter),
    notify_ms: results.map((r) => Math.round(r.notifyMs)), worst_notify_ms: Math.round(worstNotify) }));
} else {
  console.log(`alerts-rotate: first 429 on key A to traffic off it (for: 0s): ${results.map((r) => Math.round(r.ms)).join(', ')} ms; ` +
    `worst ${Math.round(worst)} ms (target < 2000 ms); calls on A after: ${results.map((r) => r.callsOnAAfter).join(', ')}; ` +
    `the action to the webhook's arrival: ${results.map((r) => Math.round(r.notifyMs)).join(', ')} ms, worst ` +
    `${Math.round(worstNotify)} ms (target < 1000 ms)`);
}
