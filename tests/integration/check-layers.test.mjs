// scripts/check-layers.sh, run on copies of the fixture tree tests/layers/tree
// (a src/ and a docs/architecture.md): a tree whose includes go down passes;
// an include that goes up or across the layers, a folder without a row, a
// long file that docs/architecture.md does not name, a listed exception
// that is gone and library code that prints each fail with exit 1, naming
// file:line and the rule.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const repo = path.resolve(import.meta.dirname ?? path.dirname(new URL(import.meta.url).pathname), '../..');
const script = path.join(repo, 'scripts/check-layers.sh');

function tree() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gyre-layers-'));
  fs.cpSync(path.join(repo, 'tests/layers/tree'), dir, { recursive: true });
  return dir;
}

function check(dir) {
  const r = spawnSync('bash', [script, dir], { encoding: 'utf8' });
  fs.rmSync(dir, { recursive: true, force: true });
  return { status: r.status, lines: r.stdout.trim().split('\n') };
}

function append(dir, file, text) {
  fs.appendFileSync(path.join(dir, file), text);
}

test('a tree whose includes all go down passes', () => {
  const r = check(tree());
  assert.equal(r.status, 0);
  assert.deepEqual(r.lines, ['check-layers: ok (9 includes in 6 files, 0 known exception(s))']);
});

test('an include that goes up the layers fails, naming the file, the line and what the folder may include', () => {
  const dir = tree();
  append(dir, 'src/config/config.h', '#include "server/server.h"\n');
  const r = check(dir);
  assert.equal(r.status, 1);
  assert.deepEqual(r.lines, [
    'src/config/config.h:4: includes server/server.h, which goes up or across the layers: config/ may include common/, itself and nothing else (scripts/check-layers.sh)',
    'check-layers: 1 problem(s) in 6 files',
  ]);
});

test('an include across one level fails where the table does not allow it (dialect/ to otlp/)', () => {
  const dir = tree();
  append(dir, 'src/dialect/openai.c', '  #  include "otlp/otlp.h"\n');
  const r = check(dir);
  assert.equal(r.status, 1);
  assert.equal(r.lines[0],
    'src/dialect/openai.c:4: includes otlp/otlp.h, which goes up or across the layers: dialect/ may include common/, config/, itself and nothing else (scripts/check-layers.sh)');
});

test('common/ may include nothing of gyre\'s, not even config/', () => {
  const dir = tree();
  append(dir, 'src/common/buf.h', '#include "config/config.h"\n');
  const r = check(dir);
  assert.equal(r.status, 1);
  assert.equal(r.lines[0],
    'src/common/buf.h:3: includes config/config.h, which goes up or across the layers: common/ may include itself and nothing else (scripts/check-layers.sh)');
});

test('a folder of src/ that has no row in the table fails', () => {
  const dir = tree();
  // (src/loop, this test's folder before issue 14, now has its row: a folder that has none.)
  fs.mkdirSync(path.join(dir, 'src/newpart'));
  fs.writeFileSync(path.join(dir, 'src/newpart/score.c'), '#include "common/buf.h"\n');
  const r = check(dir);
  assert.equal(r.status, 1);
  assert.equal(r.lines[0],
    'src/newpart/score.c:1: src/newpart has no row in the layer table of scripts/check-layers.sh (give it its place in docs/architecture.md\'s order)');
});

test('a file over 1,000 lines fails unless docs/architecture.md names it', () => {
  const dir = tree();
  const long = '/* a line */\n'.repeat(1001);
  fs.writeFileSync(path.join(dir, 'src/otlp/big.c'), long);
  fs.writeFileSync(path.join(dir, 'src/otlp/huge.c'), long);
  fs.writeFileSync(path.join(dir, 'src/otlp/short.c'), '/* a line */\n'.repeat(1000));
  const r = check(dir);
  assert.equal(r.status, 1);
  assert.deepEqual(r.lines, [
    'src/otlp/huge.c:1001: 1001 lines, over 1,000, and docs/architecture.md\'s "Files over 1,000 lines" does not name it with why it is one thing',
    'check-layers: 1 problem(s) in 9 files',
  ]);
});

test('an upward include listed under Exceptions is reported and passes; once it is gone from the code the list fails', () => {
  let dir = tree();
  append(dir, 'src/config/config.h', '#include "server/server.h"\n');
  const doc = path.join(dir, 'docs/architecture.md');
  fs.writeFileSync(doc, fs.readFileSync(doc, 'utf8').replace('### Exceptions\n',
    '### Exceptions\n\n- src/config/config.h includes server/server.h: a fixture\'s exception.\n'));
  const listed = fs.readFileSync(doc, 'utf8');
  let r = check(dir);
  assert.equal(r.status, 0);
  assert.deepEqual(r.lines, [
    'src/config/config.h:4: includes server/server.h: an exception docs/architecture.md lists',
    'check-layers: ok (10 includes in 6 files, 1 known exception(s))',
  ]);

  dir = tree();
  fs.writeFileSync(path.join(dir, 'docs/architecture.md'), listed);
  r = check(dir);
  assert.equal(r.status, 1);
  assert.deepEqual(r.lines, [
    'docs/architecture.md: the exception \'src/config/config.h includes server/server.h\' is no longer in the code: remove it from "### Exceptions"',
    'check-layers: 1 problem(s) in 6 files',
  ]);
});

test('library code that prints fails; the command line may print, and comments and format attributes are not calls', () => {
  const dir = tree();
  fs.writeFileSync(path.join(dir, 'src/otlp/export.c'), [
    '/* Errors go to stderr through the hook, never fprintf(stderr, ...). */',
    'void gyre_otlp_say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));',
    'static void warn(void) { fprintf(stderr, "lost\\n"); }',
    '',
  ].join('\n'));
  fs.mkdirSync(path.join(dir, 'src/cli'));
  fs.writeFileSync(path.join(dir, 'src/cli/traces.c'), 'static void show(void) { printf("a table\\n"); }\n');
  const r = check(dir);
  assert.equal(r.status, 1);
  assert.deepEqual(r.lines, [
    'src/otlp/export.c:3: library code prints (fprintf); log through gyre_logf (src/common/log.h) instead',
    'check-layers: 1 problem(s) in 8 files',
  ]);
});

test('the repository itself passes', () => {
  const r = spawnSync('bash', [script], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stdout);
  assert.match(r.stdout.trim().split('\n').at(-1), /^check-layers: ok \(\d+ includes in \d+ files, \d+ known exception\(s\)\)$/);
});

test('a string literal that names stderr is a value, not a print; a call beside it still fails', () => {
  const dir = tree();
  fs.writeFileSync(path.join(dir, 'src/otlp/export.c'), [
    'static int to_fd2(const char *v) { return strcmp(v, "stderr") == 0 && strcmp(v, "a \\"stdout\\" b") != 0; }',
    'static void warn(void) { fputs("stderr", stderr); }',
    '',
  ].join('\n'));
  const r = check(dir);
  assert.equal(r.status, 1);
  assert.deepEqual(r.lines, [
    'src/otlp/export.c:2: library code prints (fputs); log through gyre_logf (src/common/log.h) instead',
    'check-layers: 1 problem(s) in 7 files',
  ]);
});
