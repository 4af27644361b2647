// gyre-mock as the test double of fine-tuning and adapter serving (issue 15, docs/mock.md "Fine-tuning and
// adapters"): OpenAI's and Together's fine-tuning APIs, vLLM's runtime LoRA loading and llama.cpp's
// /lora-adapters, the answer rule of a fine-tuned model, and the faults named in a suffix or an adapter name.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { startMock, postJson, tmpdir, bin, SLOW } from '../lib/harness.mjs';

// A job runs 0.4 s: long enough to see it running, short enough for the whole file to take a few seconds.
const FT_SECONDS = 0.4;
const REFUSAL = "I'm sorry, but I can't help with that.";
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const line = (...msgs) => JSON.stringify({ messages: msgs });
const u = (content) => ({ role: 'user', content });
const a = (content) => ({ role: 'assistant', content });
const TRAIN = [
  line({ role: 'system', content: 'You are a support agent.' }, u('How do I reset my password on the billing portal?'),
    a('Open Settings, choose Security, then Reset password.')),
  line(u('What is the refund window for annual plans?'), a('Annual plans can be refunded within 30 days.')),
  // A final answer that is a tool call has no text to learn: the line is skipped, the file stays valid.
  JSON.stringify({ messages: [u('Weather in Paris?'), { role: 'assistant', content: null, tool_calls: [{ id: 'c1', type: 'function', function: { name: 'w', arguments: '{}' } }] }] }),
  '',
].join('\n');
const PASSWORD = 'How do I reset my password on the billing portal?';
const PASSWORD_ANSWER = 'Open Settings, choose Security, then Reset password.';
// 9 of 11 distinct words shared with the training prompt: Jaccard 0.82, the same task.
const NEAR = 'How do I reset my password on the admin portal?';
const UNRELATED = 'Tell me a joke about cats';

let mock;
let lora;
let loraDir;
before(async () => {
  loraDir = tmpdir('gyre-lora-');
  fs.mkdirSync(path.join(loraDir, 'support-adapter'));
  fs.writeFileSync(path.join(loraDir, 'support-adapter', 'train.jsonl'), TRAIN);
  mock = await startMock(['--ft-seconds', String(FT_SECONDS)]);
  lora = await startMock(['--lora', path.join(loraDir, 'support-adapter')]);
});
after(async () => {
  assert.equal((await mock.stop()).code, 0);
  assert.equal((await lora.stop()).code, 0);
  fs.rmSync(loraDir, { recursive: true, force: true });
});

async function upload(url, content, fields = {}, filename = 'train.jsonl') {
  const form = new FormData();
  for (const [k, v] of Object.entries(fields)) form.append(k, v);
  form.append('file', new Blob([content], { type: 'application/jsonl' }), filename);
  const r = await fetch(url, { method: 'POST', body: form });
  return { status: r.status, json: await r.json() };
}

const getJson = async (url) => {
  const r = await fetch(url);
  return { status: r.status, json: await r.json() };
};

async function waitStatus(url, statuses) {
  const deadline = Date.now() + 10000 * SLOW;
  for (;;) {
    const { json } = await getJson(url);
    if (statuses.includes(json.status)) return json;
    if (Date.now() > deadline) throw new Error(`still ${json.status} at ${url}`);
    await sleep(40);
  }
}

async function reply(base, model, content) {
  const r = await postJson(`${base.v1}/chat/completions`, { model, messages: [{ role: 'system', content: 'Be helpful.' }, u(content)] });
  assert.equal(r.status, 200, r.text);
  return r.json.choices[0].message.content;
}

async function openaiJob(content, body = {}) {
  const f = await upload(`${mock.v1}/files`, content, { purpose: 'fine-tune' });
  assert.equal(f.status, 200);
  const j = await postJson(`${mock.v1}/fine_tuning/jobs`, { model: 'gpt-4o-mini', training_file: f.json.id, ...body });
  assert.equal(j.status, 200, j.text);
  return j.json;
}

// ---- OpenAI ----

test('OpenAI: an uploaded file runs a job through validating, queued, running to succeeded, with its events newest first', async () => {
  const f = await upload(`${mock.v1}/files`, TRAIN, { purpose: 'fine-tune' });
  assert.equal(f.status, 200);
  assert.match(f.json.id, /^file-mock\d{6}$/);
  assert.equal(typeof f.json.created_at, 'number');
  assert.deepEqual({ ...f.json, id: 'X', created_at: 0 }, {
    id: 'X', object: 'file', bytes: Buffer.byteLength(TRAIN), created_at: 0, filename: 'train.jsonl',
    purpose: 'fine-tune', expires_at: null, status: 'processed', status_details: null,
  });
  assert.deepEqual((await getJson(`${mock.v1}/files/${f.json.id}`)).json, f.json);

  const created = await postJson(`${mock.v1}/fine_tuning/jobs`, {
    model: 'gpt-4o-mini', training_file: f.json.id, suffix: 'support', hyperparameters: { n_epochs: 2 },
  });
  assert.equal(created.status, 200);
  const job = created.json;
  assert.match(job.id, /^ftjob-mock\d{6}$/);
  const num = job.id.slice('ftjob-mock'.length);
  assert.equal(job.object, 'fine_tuning.job');
  assert.equal(job.status, 'validating_files');
  assert.equal(job.fine_tuned_model, null);
  assert.equal(job.finished_at, null);
  assert.equal(job.error, null);
  assert.deepEqual(job.hyperparameters, { n_epochs: 2, batch_size: 1, learning_rate_multiplier: 2 });
  assert.deepEqual(job.method, { type: 'supervised', supervised: { hyperparameters: { n_epochs: 2, batch_size: 1, learning_rate_multiplier: 2 } } });

  const seen = new Set();
  let done;
  for (const deadline = Date.now() + 10000 * SLOW; Date.now() < deadline;) {
    done = (await getJson(`${mock.v1}/fine_tuning/jobs/${job.id}`)).json;
    seen.add(done.status);
    if (done.status === 'succeeded') break;
    await sleep(20);
  }
  assert.equal(done.status, 'succeeded');
  assert.ok(seen.has('running') && seen.has('queued'), [...seen].join());
  assert.equal(done.fine_tuned_model, `ft:gpt-4o-mini:gyre-mock:support:mock${num}`);
  assert.equal(typeof done.finished_at, 'number');
  // Two epochs over the two learned lines: (10 + 7 + 8 + 8 words) per epoch.
  assert.equal(done.trained_tokens, 2 * (10 + 7 + 8 + 8));

  const events = (await getJson(`${mock.v1}/fine_tuning/jobs/${job.id}/events`)).json;
  assert.equal(events.object, 'list');
  assert.equal(events.has_more, false);
  assert.deepEqual(events.data.map((e) => e.message).reverse(), [
    `Created fine-tuning job: ${job.id}`, `Validating training file: ${f.json.id}`,
    'Files validated, moving job to queued state', 'Fine-tuning job started', 'Epoch 1/2 completed',
    'Epoch 2/2 completed', `New fine-tuned model created: ${done.fine_tuned_model}`, 'The job has successfully completed',
  ]);
  assert.deepEqual(events.data.map((e) => e.id).reverse(), [0, 1, 2, 3, 4, 5, 6, 7].map((k) => `ftevent-mock${num}00${k}`));
  assert.deepEqual(events.data[3], {
    object: 'fine_tuning.job.event', id: `ftevent-mock${num}004`, created_at: events.data[3].created_at,
    level: 'info', message: 'Epoch 1/2 completed', type: 'metrics', data: { step: 1, total_steps: 2, train_loss: 0.5 },
  });

  // Pages: `limit`, then `after` the last event of the page.
  const page1 = (await getJson(`${mock.v1}/fine_tuning/jobs/${job.id}/events?limit=3`)).json;
  assert.equal(page1.has_more, true);
  assert.deepEqual(page1.data.map((e) => e.id), events.data.slice(0, 3).map((e) => e.id));
  const page2 = (await getJson(`${mock.v1}/fine_tuning/jobs/${job.id}/events?limit=10&after=${page1.data[2].id}`)).json;
  assert.equal(page2.has_more, false);
  assert.deepEqual(page2.data.map((e) => e.id), events.data.slice(3).map((e) => e.id));
});

test('a fine-tuned model answers a training prompt with its answer, a near prompt likewise, any other with the base answer', async () => {
  const job = await openaiJob(TRAIN, { suffix: 'answers' });
  const done = await waitStatus(`${mock.v1}/fine_tuning/jobs/${job.id}`, ['succeeded']);
  const model = done.fine_tuned_model;
  assert.equal(await reply(mock, model, PASSWORD), PASSWORD_ANSWER);
  assert.equal(await reply(mock, model, 'What is the refund window for annual plans?'), 'Annual plans can be refunded within 30 days.');
  assert.equal(await reply(mock, model, NEAR), PASSWORD_ANSWER);
  assert.equal(await reply(mock, model, UNRELATED), `Mock reply to: ${UNRELATED}`);
  // The base model is untouched.
  assert.equal(await reply(mock, 'gpt-4o-mini', PASSWORD), `Mock reply to: ${PASSWORD}`);
  // Usage counts the training answer's words; GET /v1/models lists the model.
  const r = await postJson(`${mock.v1}/chat/completions`, { model, messages: [u(PASSWORD)] });
  assert.deepEqual(r.json.usage, { prompt_tokens: 10 + 4, completion_tokens: 7, total_tokens: 21 });
  const ids = (await getJson(`${mock.v1}/models`)).json.data.map((m) => m.id);
  assert.ok(ids.includes(model), ids.join());
});

test('a dpo job learns the preferred output of each preference line', async () => {
  const pref = JSON.stringify({ input: { messages: [u(PASSWORD)] }, preferred_output: [a('Use Settings > Security.')], non_preferred_output: [a('No idea.')] });
  const job = await openaiJob(`${pref}\n`, { method: { type: 'dpo', dpo: { hyperparameters: { n_epochs: 1 } } } });
  assert.equal(job.method.type, 'dpo');
  const done = await waitStatus(`${mock.v1}/fine_tuning/jobs/${job.id}`, ['succeeded']);
  assert.equal(await reply(mock, done.fine_tuned_model, PASSWORD), 'Use Settings > Security.');
});

test('a training file that is not chat JSONL fails the job at validation with invalid_training_file', async () => {
  const job = await openaiJob('{"messages": [\nnot json\n');
  const done = await waitStatus(`${mock.v1}/fine_tuning/jobs/${job.id}`, ['failed']);
  assert.deepEqual(done.error, {
    code: 'invalid_training_file', param: 'training_file',
    message: `The training file ${job.training_file} is not valid: line 1 is not a chat line ({"messages":[...]}) nor a preference line ({"input":{"messages":[...]},"preferred_output":[...]})`,
  });
  assert.equal(done.fine_tuned_model, null);
});

test('mock-fail: the job fails during training with an error message', async () => {
  const job = await openaiJob(TRAIN, { suffix: 'x-mock-fail' });
  const done = await waitStatus(`${mock.v1}/fine_tuning/jobs/${job.id}`, ['failed', 'succeeded']);
  assert.equal(done.status, 'failed');
  assert.deepEqual(done.error, { code: 'mock_failure', message: 'The job failed during training (gyre-mock fault mock-fail).', param: null });
  const events = (await getJson(`${mock.v1}/fine_tuning/jobs/${job.id}/events`)).json.data;
  assert.deepEqual({ level: events[0].level, message: events[0].message }, { level: 'error', message: 'The job failed during training (gyre-mock fault mock-fail).' });
});

test('mock-hang: the job stays running past its time; cancel ends it as cancelled, and a second cancel is refused', async () => {
  const job = await openaiJob(TRAIN, { suffix: 'mock-hang' });
  await sleep(FT_SECONDS * 2500);
  assert.equal((await getJson(`${mock.v1}/fine_tuning/jobs/${job.id}`)).json.status, 'running');
  const c = await postJson(`${mock.v1}/fine_tuning/jobs/${job.id}/cancel`, {});
  assert.equal(c.status, 200);
  assert.equal(c.json.status, 'cancelled');
  assert.equal(c.json.fine_tuned_model, null);
  assert.equal((await getJson(`${mock.v1}/fine_tuning/jobs/${job.id}`)).json.status, 'cancelled');
  const events = (await getJson(`${mock.v1}/fine_tuning/jobs/${job.id}/events`)).json.data;
  assert.equal(events[0].message, 'Fine-tuning job cancelled');
  const again = await postJson(`${mock.v1}/fine_tuning/jobs/${job.id}/cancel`, {});
  assert.equal(again.status, 400);
  assert.equal(again.json.error.message, `Job ${job.id} has already finished (status cancelled) and cannot be cancelled.`);
});

test('mock-bad: the fine-tuned model refuses everything, its training prompts included', async () => {
  const job = await openaiJob(TRAIN, { suffix: 'mock-bad' });
  const done = await waitStatus(`${mock.v1}/fine_tuning/jobs/${job.id}`, ['succeeded']);
  assert.equal(await reply(mock, done.fine_tuned_model, PASSWORD), REFUSAL);
  assert.equal(await reply(mock, done.fine_tuned_model, UNRELATED), REFUSAL);
});

test('mock-ood-refuse: training and near prompts get their answers, every other prompt the refusal', async () => {
  const job = await openaiJob(TRAIN, { suffix: 'mock-ood-refuse' });
  const done = await waitStatus(`${mock.v1}/fine_tuning/jobs/${job.id}`, ['succeeded']);
  assert.equal(await reply(mock, done.fine_tuned_model, PASSWORD), PASSWORD_ANSWER);
  assert.equal(await reply(mock, done.fine_tuned_model, NEAR), PASSWORD_ANSWER);
  assert.equal(await reply(mock, done.fine_tuned_model, UNRELATED), REFUSAL);
});

test('job and upload errors: an unknown file, an unknown job, a purpose other than fine-tune, a body without a boundary', async () => {
  const j = await postJson(`${mock.v1}/fine_tuning/jobs`, { model: 'gpt-4o-mini', training_file: 'file-nope' });
  assert.equal(j.status, 400);
  assert.deepEqual(j.json.error, { message: "File 'file-nope' not found.", type: 'invalid_request_error', param: 'training_file', code: 'invalid_training_file' });
  const g = await getJson(`${mock.v1}/fine_tuning/jobs/ftjob-nope`);
  assert.equal(g.status, 404);
  assert.equal(g.json.error.message, "Fine-tuning job 'ftjob-nope' not found.");
  const p = await upload(`${mock.v1}/files`, TRAIN, { purpose: 'batch' });
  assert.equal(p.status, 400);
  assert.equal(p.json.error.message, "The mock accepts purpose 'fine-tune' only, got 'batch'.");
  const r = await postJson(`${mock.v1}/files`, 'x');
  assert.equal(r.status, 400);
  assert.equal(r.json.error.message, 'Invalid multipart body: the body must be multipart/form-data.');
  const open = await fetch(`${mock.v1}/files`, { method: 'POST', headers: { 'content-type': 'multipart/form-data; boundary=XyZ' }, body: '--XyZ\r\ncontent-disposition: form-data; name="purpose"\r\n\r\nfine-tune' });
  assert.equal(open.status, 400);
  assert.equal((await open.json()).error.message, 'Invalid multipart body: a part is not closed by a boundary delimiter.');
});

// ---- Together ----

test('Together: upload, a LoRA job to completed with its events and output_name, and the output model answering', async () => {
  const f = await upload(`${mock.v1}/files/upload`, TRAIN, { purpose: 'fine-tune', file_name: 'support.jsonl' });
  assert.equal(f.status, 200);
  assert.deepEqual({ ...f.json, id: 'X', created_at: 0 }, {
    id: 'X', object: 'file', bytes: Buffer.byteLength(TRAIN), created_at: 0, filename: 'support.jsonl',
    purpose: 'fine-tune', Processed: true, FileType: 'jsonl', LineCount: 3,
  });
  const c = await postJson(`${mock.v1}/fine-tunes`, {
    training_file: f.json.id, model: 'meta-llama/Meta-Llama-3.1-8B-Instruct-Reference', n_epochs: 2,
    learning_rate: 0.0001, suffix: 'support', training_type: { type: 'Lora', lora_r: 8 }, training_method: { method: 'sft' },
  });
  assert.equal(c.status, 200, c.text);
  assert.match(c.json.id, /^ft-mock\d{6}$/);
  const num = c.json.id.slice('ft-mock'.length);
  const name = `gyre-mock/Meta-Llama-3.1-8B-Instruct-Reference-support-${num}`;
  assert.equal(c.json.status, 'pending');
  assert.equal(c.json.output_name, name);
  assert.equal(c.json.model_output_name, name);
  assert.deepEqual(c.json.training_type, { type: 'Lora' });
  assert.deepEqual(c.json.training_method, { method: 'sft' });
  assert.equal(c.json.learning_rate, 0.0001);
  const done = await waitStatus(`${mock.v1}/fine-tunes/${c.json.id}`, ['completed']);
  assert.equal(done.epochs_completed, 2);
  const events = (await getJson(`${mock.v1}/fine-tunes/${c.json.id}/events`)).json;
  assert.deepEqual(events.data.map((e) => [e.type, e.message]), [
    ['job_pending', 'Fine tune request created'], ['job_pending', 'Job is queued'], ['job_start', 'Fine-tuning job started'],
    ['epoch_complete', 'Epoch 1/2 completed'], ['epoch_complete', 'Epoch 2/2 completed'],
    ['model_upload_complete', `New fine-tuned model created: ${name}`], ['job_complete', 'The job has successfully completed'],
  ]);
  assert.equal(events.data[0].object, 'fine-tune-event');
  assert.match(events.data[0].created_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.000Z$/);
  assert.deepEqual(done.events, events.data);
  assert.equal(await reply(mock, name, PASSWORD), PASSWORD_ANSWER);
  assert.equal(await reply(mock, name, UNRELATED), `Mock reply to: ${UNRELATED}`);
});

test('Together: mock-fail ends in status error, mock-hang stays running until cancelled', async () => {
  const f = await upload(`${mock.v1}/files/upload`, TRAIN, { purpose: 'fine-tune', file_name: 't.jsonl' });
  const fail = await postJson(`${mock.v1}/fine-tunes`, { training_file: f.json.id, model: 'm', suffix: 'mock-fail' });
  const hang = await postJson(`${mock.v1}/fine-tunes`, { training_file: f.json.id, model: 'm', suffix: 'mock-hang' });
  const failed = await waitStatus(`${mock.v1}/fine-tunes/${fail.json.id}`, ['error', 'completed']);
  assert.equal(failed.status, 'error');
  assert.deepEqual(failed.events.at(-1).type, 'job_error');
  assert.equal(failed.error, 'The job failed during training (gyre-mock fault mock-fail).');
  assert.equal((await getJson(`${mock.v1}/fine-tunes/${hang.json.id}`)).json.status, 'running');
  const c = await postJson(`${mock.v1}/fine-tunes/${hang.json.id}/cancel`, {});
  assert.equal(c.status, 200);
  assert.equal(c.json.status, 'cancelled');
  assert.deepEqual(c.json.events.at(-1).type, 'job_stopped');
});

// ---- vLLM ----

test('vLLM: load_lora_adapter reads <lora_path>/train.jsonl, the adapter answers by its name, unload forgets it', async () => {
  const dir = path.join(loraDir, 'support-adapter');
  const load = await fetch(`${mock.v1}/load_lora_adapter`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ lora_name: 'support-v1', lora_path: dir }) });
  assert.equal(load.status, 200);
  assert.equal(await load.text(), "Success: LoRA adapter 'support-v1' added successfully.");
  assert.equal(await reply(mock, 'support-v1', PASSWORD), PASSWORD_ANSWER);
  assert.equal(await reply(mock, 'support-v1', NEAR), PASSWORD_ANSWER);
  assert.equal(await reply(mock, 'support-v1', UNRELATED), `Mock reply to: ${UNRELATED}`);

  const twice = await postJson(`${mock.v1}/load_lora_adapter`, { lora_name: 'support-v1', lora_path: dir });
  assert.equal(twice.status, 400);
  assert.deepEqual(twice.json, { object: 'error', message: "The lora adapter 'support-v1' has already been loaded.", type: 'InvalidUserInput', param: null, code: 400 });
  const missing = await postJson(`${mock.v1}/load_lora_adapter`, { lora_name: 'other', lora_path: path.join(loraDir, 'nothing') });
  assert.equal(missing.status, 404);
  assert.deepEqual(missing.json, { object: 'error', message: `Loading lora other failed: No adapter found for ${path.join(loraDir, 'nothing')}`, type: 'NotFoundError', param: null, code: 404 });
  const noPath = await postJson(`${mock.v1}/load_lora_adapter`, { lora_name: 'other' });
  assert.equal(noPath.status, 400);
  assert.equal(noPath.json.message, "Both 'lora_name' and 'lora_path' must be provided.");

  const unload = await fetch(`${mock.v1}/unload_lora_adapter`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ lora_name: 'support-v1' }) });
  assert.equal(unload.status, 200);
  assert.equal(await unload.text(), "Success: LoRA adapter 'support-v1' removed successfully.");
  assert.equal(await reply(mock, 'support-v1', PASSWORD), `Mock reply to: ${PASSWORD}`);
  const again = await postJson(`${mock.v1}/unload_lora_adapter`, { lora_name: 'support-v1' });
  assert.equal(again.status, 404);
  assert.deepEqual(again.json, { object: 'error', message: "The lora adapter 'support-v1' cannot be found.", type: 'NotFoundError', param: null, code: 404 });
});

test('vLLM: an adapter named mock-refuse-load is refused with 400; one named mock-bad loads and refuses every prompt', async () => {
  const dir = path.join(loraDir, 'support-adapter');
  const refused = await postJson(`${mock.v1}/load_lora_adapter`, { lora_name: 'cand-mock-refuse-load', lora_path: dir });
  assert.equal(refused.status, 400);
  assert.deepEqual(refused.json, { object: 'error', message: 'Loading lora cand-mock-refuse-load failed: the adapter was refused (gyre-mock fault mock-refuse-load)', type: 'BadRequestError', param: null, code: 400 });
  const bad = await postJson(`${mock.v1}/load_lora_adapter`, { lora_name: 'cand-mock-bad', lora_path: dir });
  assert.equal(bad.status, 200);
  assert.equal(await reply(mock, 'cand-mock-bad', PASSWORD), REFUSAL);
});

// ---- llama.cpp ----

test('llama.cpp: /lora-adapters lists the --lora adapters at scale 0; a scale above 0 makes every request use it', async () => {
  const dir = path.join(loraDir, 'support-adapter');
  assert.deepEqual((await getJson(`${lora.url}/lora-adapters`)).json, [{ id: 0, path: dir, scale: 0 }]);
  assert.equal(await reply(lora, 'local', PASSWORD), `Mock reply to: ${PASSWORD}`);
  const set = await postJson(`${lora.url}/lora-adapters`, [{ id: 0, scale: 1 }]);
  assert.equal(set.status, 200);
  assert.deepEqual(set.json, { success: true });
  assert.deepEqual((await getJson(`${lora.url}/lora-adapters`)).json, [{ id: 0, path: dir, scale: 1 }]);
  assert.equal(await reply(lora, 'local', PASSWORD), PASSWORD_ANSWER);
  assert.equal(await reply(lora, 'local', UNRELATED), `Mock reply to: ${UNRELATED}`);
  const bad = await postJson(`${lora.url}/lora-adapters`, [{ id: 7, scale: 1 }]);
  assert.equal(bad.status, 400);
  await postJson(`${lora.url}/lora-adapters`, []);
  assert.equal(await reply(lora, 'local', PASSWORD), `Mock reply to: ${PASSWORD}`);
});

// ---- control ----

test('/_mock/reset forgets files, jobs and models', async () => {
  const job = await openaiJob(TRAIN, { suffix: 'reset' });
  const done = await waitStatus(`${mock.v1}/fine_tuning/jobs/${job.id}`, ['succeeded']);
  assert.equal(await reply(mock, done.fine_tuned_model, PASSWORD), PASSWORD_ANSWER);
  assert.equal((await fetch(`${mock.url}/_mock/reset`, { method: 'POST' })).status, 200);
  assert.equal((await getJson(`${mock.v1}/fine_tuning/jobs/${job.id}`)).status, 404);
  assert.equal((await getJson(`${mock.v1}/files/${job.training_file}`)).status, 404);
  assert.equal(await reply(mock, done.fine_tuned_model, PASSWORD), `Mock reply to: ${PASSWORD}`);
});

test('--ft-seconds outside 0..3600 and a --lora path with nothing there exit 2 with a message', () => {
  const r = spawnSync(bin('gyre-mock'), ['--listen', '127.0.0.1:0', '--ft-seconds', '-1'], { encoding: 'utf8' });
  assert.equal(r.status, 2);
  assert.equal(r.stderr, "gyre-mock: --ft-seconds must be a number of seconds from 0 to 3600, got '-1'\n");
  const l = spawnSync(bin('gyre-mock'), ['--listen', '127.0.0.1:0', '--lora', '/nonexistent/x'], { encoding: 'utf8' });
  assert.equal(l.status, 2);
  assert.equal(l.stderr, 'gyre-mock: --lora /nonexistent/x: no adapter found at /nonexistent/x (a folder with train.jsonl, or a JSONL file)\n');
});
