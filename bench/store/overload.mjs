// The trace log under sustained overload (issue 12, point 3): gyre with full
// capture behind wrk flat out for BENCH_OVERLOAD_SECONDS (60), against
// gyre-mock.  Every answered call must be in the log (none dropped), and the
// index must catch up afterwards; the script prints wrk's answers, what gyre
// logged, refused and indexed, the largest index lag seen, and how long the
// index took to catch up after the load stopped.
//
//   GYRE_BUILD=build node bench/store/overload.mjs [--json]
//
// Env: BENCH_OVERLOAD_SECONDS (60), BENCH_CONNS (64), BENCH_WORKERS (1).
import { execFile } from 'node:child_process';
import path from 'node:path';
import { startGyre, startMock, tmpdir, ROOT } from '../../tests/lib/harness.mjs';

const SECONDS = Number(process.env.BENCH_OVERLOAD_SECONDS ?? 60);
const CONNS = Number(process.env.BENCH_CONNS ?? 64);
const WORKERS = Number(process.env.BENCH_WORKERS ?? 1);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function metrics(url) {
  const text = await (await fetch(`${url}/metrics`)).text();
  const get = (name) => {
    const m = new RegExp(`^${name.replace(/[{}"]/g, (c) => `\\${c}`)} (\\S+)$`, 'm').exec(text);
    return m ? Number(m[1]) : null;
  };
  return {
    logged: get('gyre_traces_logged_total'),
    written: get('gyre_traces_written_total'),
    dropped: get('gyre_traces_dropped_total'),
    lag: get('gyre_trace_index_lag_bytes'),
    logBytes: get('gyre_trace_log_bytes'),
  };
}

const mock = await startMock();
const db = path.join(tmpdir('gyre-overload-'), 'gyre.db');
const g = await startGyre(`workers: ${WORKERS}
store: {sqlite: "${db}", traces: true}
providers:
  - {name: mock, kind: openai, base_url: "${mock.v1}", keys: [sk-bench]}
routes:
  - name: chat
    targets: [{provider: mock, model: gpt-4o-mini}]
`);
let maxLag = 0;
let running = true;
const probe = (async () => {
  while (running) {
    maxLag = Math.max(maxLag, (await metrics(g.url)).lag ?? 0);
    await sleep(500);
  }
})();
const wrk = await new Promise((resolve, reject) => {
  execFile('wrk', ['-t1', `-c${CONNS}`, `-d${SECONDS}s`, '-s', path.join(ROOT, 'bench/proxy/chat.lua'),
    `${g.url}/v1/chat/completions`], { maxBuffer: 1 << 20 }, (err, stdout) => (err ? reject(err) : resolve(stdout)));
});
running = false;
await probe;
const requests = Number(/(\d+) requests in/.exec(wrk)[1]);
const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(wrk)?.[1] ?? 0);
await sleep(100);
const atStop = await metrics(g.url);
const t0 = performance.now();
let m = atStop;
while (m.lag !== 0 || m.written < m.logged) {
  await sleep(200);
  m = await metrics(g.url);
}
const catchUp = (performance.now() - t0) / 1000;
const res = {
  seconds: SECONDS, conns: CONNS, workers: WORKERS, wrk_requests: requests, wrk_non2xx: non2xx,
  req_per_s: Math.round(requests / SECONDS), logged: atStop.logged, dropped: atStop.dropped,
  indexed_at_stop: atStop.written, max_index_lag_bytes: maxLag, log_bytes: m.logBytes,
  index_caught_up_s: Number(catchUp.toFixed(1)), indexed: m.written,
};
await g.stop(120000);
await mock.stop();
if (process.argv.includes('--json')) console.log(JSON.stringify(res));
else {
  console.log(`overload: ${requests} calls in ${SECONDS} s (${res.req_per_s}/s, ${non2xx} non-2xx); ` +
    `${atStop.logged} logged, ${atStop.dropped} dropped, ${atStop.written} indexed when the load stopped ` +
    `(lag up to ${maxLag} bytes); the index caught up ${res.index_caught_up_s} s later (${m.written} indexed)`);
}
// wrk may count a call cut at its deadline that gyre still answered and logged: logged >= requests - conns.
process.exit(atStop.dropped === 0 && atStop.logged >= requests - CONNS && m.written === m.logged ? 0 : 1);
