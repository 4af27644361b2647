// `gyre train` (issue 15, point 1): one fine-tuning job in the foreground against gyre-mock's doubles of the OpenAI
// and Together fine-tuning APIs (docs/mock.md "Fine-tuning and adapters"), and the command backend with a real sh.
// Each backend runs to its model with the service's events printed; the faults (mock-fail, mock-hang) end in a
// non-zero exit naming why; --json is one JSON object a line.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { startMock, postJson, tmpdir, runGyre, bin, SLOW } from '../lib/harness.mjs';

// A job runs 0.6 s at the mock: three epochs' events, a few polls at 100 ms.
const FT_SECONDS = 0.6;
const KEY = 'sk-train-secret-4242';
const PROMPT = 'How do I reset my password on the billing portal?';
const ANSWER = 'Open Settings, choose Security, then Reset password.';
const line = (q, a) => JSON.stringify({ messages: [{ role: 'user', content: q }, { role: 'assistant', content: a }] });
const DATASET_ID = '0123456789abcdef0123456789abcdef';

let mock, dir, dsdir, config;
before(async () => {
  mock = await startMock(['--ft-seconds', String(FT_SECONDS)]);
  dir = tmpdir('gyre-train-');
  // The datasets folder of the config, holding one dataset by its id.
  dsdir = path.join(dir, 'datasets', DATASET_ID);
  fs.mkdirSync(dsdir, { recursive: true });
  fs.writeFileSync(path.join(dsdir, 'train.jsonl'), `${line(PROMPT, ANSWER)}\n${line('What is the refund window?', 'Thirty days.')}\n`);
  fs.writeFileSync(path.join(dsdir, 'heldout.jsonl'), `${line('How do I reset my password on the admin portal?', ANSWER)}\n`);
  config = path.join(dir, 'gyre.yaml');
  fs.writeFileSync(config, `datasets: "${path.join(dir, 'datasets')}"
providers:
  - {name: oai, kind: openai, base_url: "${mock.v1}", keys: ["${KEY}"]}
  - {name: tog, kind: openai, base_url: "${mock.v1}", keys: ["${KEY}"]}
routes:
  - name: support
    targets: [{provider: oai, model: gpt-4o-mini}]
`);
});
after(async () => {
  assert.equal((await mock.stop()).code, 0);
  fs.rmSync(dir, { recursive: true, force: true });
});

const train = (args) => runGyre(['train', '--config', config, '--dataset', dsdir, '--poll', '100ms',
  '--work-dir', path.join(dir, 'work'), ...args], { ms: 15000 * SLOW });

// The fine-tuned model answers the training file's prompt with its answer: the upload reached the service whole.
async function answers(model) {
  const r = await postJson(`${mock.v1}/chat/completions`, { model, messages: [{ role: 'user', content: PROMPT }] });
  return r.json.choices[0].message.content;
}

test('gyre train --backend openai uploads the dataset, prints the events oldest first and the fine-tuned model', async () => {
  const r = await train(['--backend', 'openai', '--provider', 'oai', '--base-model', 'gpt-4o-mini', '--suffix', 'support',
    '--epochs', '3']);
  assert.equal(r.code, 0, r.stderr);
  const m = r.stdout.match(/^job (ftjob-mock\d+) succeeded in [\d.]+s: model (ft:gpt-4o-mini:gyre-mock:support:mock\d+)$/m);
  assert.ok(m, r.stdout);
  assert.equal(m[2], `ft:gpt-4o-mini:gyre-mock:support:${m[1].slice('ftjob-'.length)}`);
  const messages = r.stdout.split('\n').filter((l) => / info  /.test(l)).map((l) => l.replace(/^.* info  /, ''));
  assert.deepEqual(messages, [
    `Created fine-tuning job: ${m[1]}`,
    messages[1], // "Validating training file: file-mock..."
    'Files validated, moving job to queued state',
    'Fine-tuning job started',
    'Epoch 1/3 completed',
    'Epoch 2/3 completed',
    'Epoch 3/3 completed',
    `New fine-tuned model created: ${m[2]}`,
    'The job has successfully completed',
  ]);
  assert.match(messages[1], /^Validating training file: file-mock\d+$/);
  // Two uploads (train.jsonl, and heldout.jsonl as the validation file), one job, every call with the provider's key.
  const stats = await mock.stats();
  assert.equal(stats.paths['/v1/files'], 2);
  assert.equal(stats.paths['/v1/fine_tuning/jobs'], 1);
  assert.equal(stats.keys[KEY], stats.requests);
  assert.equal(await answers(m[2]), ANSWER);
  assert.ok(!r.stdout.includes(KEY) && !r.stderr.includes(KEY));
});

test('gyre train --spec with backend together trains a LoRA and prints its output_name', async () => {
  const spec = path.join(dir, 'loop.yaml');
  fs.writeFileSync(spec, `route: support
dataset: ${DATASET_ID}
train:
  backend: together
  provider: tog
  base_model: meta-llama/Llama-3.1-8B-Instruct
  training_type: lora
  lora_rank: 8
  epochs: 2
  suffix: support-v2
  poll: 1s
`);
  // The dataset comes from the spec (its id, under the config's datasets:); the poll from the flag.
  const r = await runGyre(['train', '--spec', spec, '--config', config, '--poll', '100ms', '--work-dir', path.join(dir, 'work')],
    { ms: 15000 * SLOW });
  assert.equal(r.code, 0, r.stderr);
  const m = r.stdout.match(/^job (ft-mock(\d+)) succeeded in [\d.]+s: model (gyre-mock\/Llama-3\.1-8B-Instruct-support-v2-(\d+))$/m);
  assert.ok(m, r.stdout);
  assert.equal(m[4], m[2]);
  const messages = r.stdout.split('\n').filter((l) => / info  /.test(l)).map((l) => l.replace(/^.* info  /, ''));
  assert.deepEqual(messages, ['Fine tune request created', 'Job is queued', 'Fine-tuning job started', 'Epoch 1/2 completed',
    'Epoch 2/2 completed', `New fine-tuned model created: ${m[3]}`, 'The job has successfully completed']);
  assert.equal(await answers(m[3]), ANSWER);
});

test('a job that fails at the service exits 1 with the service\'s error message, openai and together alike', async () => {
  for (const backend of ['openai', 'together']) {
    const r = await train(['--backend', backend, '--provider', 'oai', '--base-model', 'gpt-4o-mini', '--suffix', 'mock-fail']);
    assert.equal(r.code, 1, `${backend}: ${r.stdout}`);
    assert.match(r.stderr, /^gyre train: job (ftjob|ft)-mock\d+ failed: The job failed during training \(gyre-mock fault mock-fail\)\.$/m);
    assert.match(r.stdout, /error The job failed during training \(gyre-mock fault mock-fail\)\./);
  }
});

test('a job that never finishes is cancelled at the service at train.timeout and exits 1', async () => {
  const r = await train(['--backend', 'openai', '--provider', 'oai', '--base-model', 'gpt-4o-mini', '--suffix', 'mock-hang',
    '--timeout', '1s']);
  assert.equal(r.code, 1, r.stdout);
  const m = r.stderr.match(/^gyre train: job (ftjob-mock\d+) failed: the job ran past train\.timeout \(1s\) and was cancelled$/m);
  assert.ok(m, r.stderr);
  const job = await (await fetch(`${mock.v1}/fine_tuning/jobs/${m[1]}`)).json();
  assert.equal(job.status, 'cancelled');
});

test('an unknown provider and a missing dataset fail before any job, saying which', async () => {
  let r = await train(['--backend', 'together', '--provider', 'nope', '--base-model', 'm']);
  assert.equal(r.code, 1);
  assert.equal(r.stderr, 'gyre train: the together job could not start: train.provider: no provider named nope in the configuration\n');
  r = await train(['--backend', 'openai', '--provider', 'oai', '--base-model', 'gpt-4o-mini', '--dataset', path.join(dir, 'none')]);
  assert.equal(r.code, 1);
  assert.equal(r.stderr, `gyre train: no dataset at ${path.join(dir, 'none')}\n`);
});

test('gyre train --json prints each event and then the job, one JSON object a line', async () => {
  const r = await train(['--backend', 'together', '--provider', 'tog', '--base-model', 'Qwen/Qwen2.5-7B-Instruct',
    '--suffix', 'j', '--epochs', '1', '--json']);
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
  const events = lines.slice(0, -1);
  assert.deepEqual(events.map((e) => Object.keys(e)), events.map(() => ['type', 'at_us', 'level', 'message']));
  assert.deepEqual(events.map((e) => e.message).slice(0, 4), ['Fine tune request created', 'Job is queued',
    'Fine-tuning job started', 'Epoch 1/1 completed']);
  const last = lines.at(-1);
  assert.deepEqual(Object.keys(last), ['type', 'job']);
  assert.equal(last.type, 'job');
  const job = last.job;
  assert.deepEqual(Object.keys(job), ['backend', 'id', 'file_id', 'status', 'model', 'error', 'progress', 'cursor',
    'started_us', 'finished_us', 'pid']);
  assert.equal(job.backend, 'together');
  assert.match(job.id, /^ft-mock\d+$/);
  assert.match(job.file_id, /^file-mock\d+$/);
  assert.equal(job.status, 'succeeded');
  assert.equal(job.model, `gyre-mock/Qwen2.5-7B-Instruct-j-${job.id.slice('ft-mock'.length)}`);
  assert.equal(job.error, '');
  assert.equal(job.progress, 1);
  assert.equal(job.cursor, String(events.length));
  assert.ok(job.finished_us >= job.started_us && job.started_us > 1.7e15);
  assert.equal(job.pid, 0);
});

test('the command backend runs the template on the dataset and registers the artifact it prints', async () => {
  const r = await train(['--backend', 'command', '--run', 'r1', '--command',
    'wc -l < {train}; cp {train} {out}/; echo GYRE_ARTIFACT: http://gpu-1:8000/v1']);
  assert.equal(r.code, 0, r.stderr);
  const out = path.join(dir, 'work', 'out');
  assert.match(r.stdout, /^job cmd-r1 succeeded in [\d.]+s: model http:\/\/gpu-1:8000\/v1$/m);
  assert.match(r.stdout, / info  2\n/);
  assert.equal(fs.readFileSync(path.join(out, 'train.jsonl'), 'utf8'), fs.readFileSync(path.join(dsdir, 'train.jsonl'), 'utf8'));
  const bad = await train(['--backend', 'command', '--run', 'r2', '--command', 'echo starting; echo "no GPU found" >&2; exit 3']);
  assert.equal(bad.code, 1);
  assert.equal(bad.stderr, 'gyre train: job cmd-r2 failed: the command exited with status 3: no GPU found\n');
});

test('gyre train --job: killed mid-job and run again, it follows the same job to its model without a second upload', async () => {
  // A slower service of its own, so that the job is surely running when the first gyre train is killed.
  const slow = await startMock(['--ft-seconds', '2']);
  try {
    const cfg = path.join(dir, 'slow.yaml');
    fs.writeFileSync(cfg, `providers:\n  - {name: oai, kind: openai, base_url: "${slow.v1}", keys: ["${KEY}"]}\n`);
    const jobFile = path.join(dir, 'job.json');
    const args = ['train', '--config', cfg, '--dataset', dsdir, '--poll', '100ms', '--job', jobFile, '--backend', 'openai',
      '--provider', 'oai', '--base-model', 'gpt-4o-mini', '--suffix', 'resume'];
    const first = spawn(bin('gyre'), args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    await new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no start event: ${out}`)), 5000 * SLOW);
      first.stdout.on('data', (d) => {
        out += d;
        if (out.includes('Fine-tuning job started')) { clearTimeout(t); resolve(); }
      });
    });
    first.kill('SIGKILL');
    await new Promise((r) => first.on('exit', r));
    const saved = JSON.parse(fs.readFileSync(jobFile, 'utf8'));
    // Saved after each poll: a poll's events may be printed before its save, so the job read back is at most one
    // poll behind what was printed (those events are reported again: at least once, never lost).
    assert.ok(['queued', 'running'].includes(saved.status), saved.status);
    const id = out.match(/^job (ftjob-mock\d+) started \(openai\)$/m)[1];
    assert.equal(saved.id, id);

    const again = await runGyre(args, { ms: 15000 * SLOW });
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, new RegExp(`^job ${id} resumed \\(openai\\)$`, 'm'));
    assert.match(again.stdout, new RegExp(`^job ${id} succeeded in [\\d.]+s: model ft:gpt-4o-mini:gyre-mock:resume:`, 'm'));
    const messages = again.stdout.split('\n').filter((l) => / info  /.test(l)).map((l) => l.replace(/^.* info  /, ''));
    assert.ok(!messages.some((m) => m.startsWith('Created fine-tuning job')), again.stdout);
    assert.deepEqual(messages.slice(-5), ['Epoch 1/3 completed', 'Epoch 2/3 completed', 'Epoch 3/3 completed',
      messages.at(-2), 'The job has successfully completed']);
    const stats = await slow.stats();
    assert.equal(stats.paths['/v1/files'], 2);
    assert.equal(stats.paths['/v1/fine_tuning/jobs'], 1);
    assert.equal(JSON.parse(fs.readFileSync(jobFile, 'utf8')).status, 'succeeded');
  } finally {
    assert.equal((await slow.stop()).code, 0);
  }
});
