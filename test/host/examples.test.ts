// Every file in examples/ runs, against our supervisor where it needs one.
import t from 'tap';
import { existsSync, mkdirSync, readFileSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { BIN, haveBin, repo, spawnBg, tree, until } from '../lib/host.ts';
import { toolFor } from '../lib/runit.ts';

if (!haveBin()) t.fail(`${BIN} is missing: run make build`);
const example = (name: string, args: string[], env: Record<string, string> = {}) =>
  execa(process.execPath, [join(repo, 'examples', name), ...args], { env, reject: false });

const tr = tree('examples-');
const bg = spawnBg(toolFor('ours', tr.bin, 'runsvdir'), ['-P', tr.sv], { env: { PATH: `${tr.bin}:${process.env.PATH}` } });
t.teardown(async () => {
  bg.proc.kill('SIGTERM');
  await bg.proc;
  tr.cleanup();
});

t.test('every example is run by this test', async (t) => {
  t.same(readdirSync(join(repo, 'examples')).sort(), ['builder.ts', 'control.ts', 'doubles.ts']);
});

t.test('control.ts', async (t) => {
  const src = tr.service('app', { run: '#!/bin/sh\nexec sleep 1000\n' });
  symlinkSync(src, join(tr.sv, 'app'));
  await until(() => existsSync(join(src, 'supervise/ok')) && /^\d+$/.test(readFileSync(join(src, 'supervise/pid'), 'utf8').trim()), 15000, 'app up');
  const r = await example('control.ts', ['app'], { SVDIR: tr.sv });
  t.equal(r.exitCode, 0, r.stderr);
  const m = /^app: pid (\d+) -> (\d+), ready: true, log: none$/.exec(r.stdout);
  t.ok(m, r.stdout);
  t.not(m?.[1], m?.[2], 'restarted: a new pid');
  const missing = await example('control.ts', ['nope'], { SVDIR: tr.sv });
  t.equal(missing.exitCode, 1);
  t.equal(missing.stderr.trim(), 'nope: unable to change to service directory: file does not exist (no-service)');
});

t.test('doubles.ts', async (t) => {
  const r = await example('doubles.ts', []);
  t.equal(r.exitCode, 0, r.stderr);
  t.equal(r.stdout.trim(), 'deploy: order checked, failure propagates');
});

t.test('builder.ts', async (t) => {
  const conf = join(tr.root, 'conf');
  const stage = join(tr.root, 'stage');
  mkdirSync(conf);
  writeFileSync(join(conf, 'old.yaml'), 'old:\n  run: [sleep, "1000"]\n  sleep: 0\n');
  let r = await example('builder.ts', [conf, stage, tr.sv]);
  t.equal(r.exitCode, 0, r.stderr);
  t.same(JSON.parse(r.stdout), { staged: ['old', 'web'], activated: ['old', 'web'], pruned: [], errors: [] });
  await until(() => existsSync(join(stage, 'old/supervise/ok')), 15000, 'old supervised');
  writeFileSync(join(conf, 'old.yaml'), '');
  r = await example('builder.ts', [conf, stage, tr.sv]);
  t.same(JSON.parse(r.stdout), { staged: [], activated: [], pruned: ['old'], errors: [] });
  t.equal(readFileSync(join(stage, 'web/env/PORT'), 'utf8'), '8080\n');
});
