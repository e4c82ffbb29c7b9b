// Machine-readable status and events: runit-ts status --json, the supervisor's event
// stream (runit-ts events and the library's events()), runit-ts wait; against our
// runsvdir, and what they say under Debian's.
import t from 'tap';
import { chmodSync, chownSync, existsSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { BIN, haveBin, publicBin, spawnBg, tree, until } from '../lib/host.ts';
import { debianPath, toolFor } from '../lib/runit.ts';
import { SupervisedServices, type ServiceEvent } from '../../src/index.ts';

if (!haveBin()) t.fail(`${BIN} is missing: run make build`);
const rt = (args: string[], env: Record<string, string> = {}) => execa(BIN, args, { reject: false, env });

t.test('ours: status --json, events, wait', async (t) => {
  const tr = tree('events-');
  const bg = spawnBg(toolFor('ours', tr.bin, 'runsvdir'), ['-P', tr.sv], { env: { PATH: `${tr.bin}:${process.env.PATH}` } });
  t.teardown(async () => {
    bg.proc.kill('SIGTERM');
    await bg.proc;
    tr.cleanup();
  });
  const web = tr.service('web', { run: '#!/bin/sh\nexec sleep 1000\n', 'log/run': '#!/bin/sh\nexec cat >/dev/null\n' });
  const slow = tr.service('slow', { run: '#!/bin/sh\nexec sleep 1000\n', check: '#!/bin/sh\ntest -e ready\n', down: '' });
  await until(() => existsSync(join(tr.sv, '.events')), 10000, 'the events socket');
  symlinkSync(web, join(tr.sv, 'web'));
  symlinkSync(slow, join(tr.sv, 'slow'));
  const env = { SVDIR: tr.sv };

  // wait: up, ready (./check), down, any/all, timeouts
  let r = await rt(['wait', '-t', '10', 'up', 'web'], env);
  t.equal(r.exitCode, 0, r.stderr);
  t.equal(r.stdout, 'ok: web');
  r = await rt(['wait', '-t', '1', 'up', 'web', 'slow'], env);
  t.equal(r.exitCode, 1, 'all: slow is down');
  t.equal(r.stdout, 'ok: web\ntimeout: slow');
  r = await rt(['wait', '-a', '-t', '5', 'up', 'slow', 'web'], env);
  t.equal(r.exitCode, 0, 'any: web is up');
  t.match(r.stdout, /^ok: web$/m);
  await execa(toolFor('ours', tr.bin, 'sv'), ['up', 'slow'], { env });
  r = await rt(['wait', '-t', '5', 'up', 'slow'], env);
  t.equal(r.exitCode, 0, 'up: running is enough');
  r = await rt(['wait', '-t', '1', 'ready', 'slow'], env);
  t.equal(r.exitCode, 1, 'ready: ./check fails');
  writeFileSync(join(slow, 'ready'), '');
  r = await rt(['wait', '-t', '5', 'ready', 'slow'], env);
  t.equal(r.exitCode, 0, 'ready once ./check passes');
  r = await rt(['wait', '-t', '1', 'up', 'nope'], env);
  t.equal(r.exitCode, 2);
  t.match(r.stderr, /nope: unable to change to service directory: file does not exist/);
  t.equal((await rt(['wait', 'sideways', 'web'], env)).exitCode, 100, 'usage');

  // events: what happened before (replayed), then a restart as it happens
  const lines: ServiceEvent[] = [];
  const follow = execa(BIN, ['events', '-c', '4', '-t', '20', '-n', 'web'], { env, reject: false });
  follow.stdout?.on('data', (b: Buffer) => {
    for (const l of String(b).split('\n').filter(Boolean)) lines.push(JSON.parse(l) as ServiceEvent);
  });
  const replay = await rt(['events', '-c', '2', '-t', '10', 'web'], env);
  const old = replay.stdout.split('\n').map((l) => JSON.parse(l) as ServiceEvent);
  t.same(old.map((e) => [e.event, e.service, e.replay]), [['up', 'web', true], ['ready', 'web', true]], 'replayed: web came up and was ready');
  const logs = await rt(['events', '-c', '2', '-t', '10', 'web/log'], env);
  t.same(logs.stdout.split('\n').map((l) => (JSON.parse(l) as ServiceEvent).event), ['up', 'ready'], 'and its log service');
  await new Promise((res) => setTimeout(res, 300));
  const before = JSON.parse((await rt(['status', '--json', 'web'], env)).stdout) as { pid: number; restarts: number };
  t.equal(before.restarts, 0);
  await execa(toolFor('ours', tr.bin, 'sv'), ['-w', '5', 'restart', 'web'], { env });
  await follow;
  t.same(lines.map((e) => e.event), ['exit', 'down', 'up', 'ready'], 'a restart: exit, down, up, ready');
  t.equal(lines[0]?.pid, before.pid);
  t.equal(lines[0]?.code, -1);
  t.equal(lines[0]?.signal, 'SIGTERM');
  t.ok(lines.every((e) => e.service === 'web' && !e.replay && typeof e.monotonic === 'number' && !Number.isNaN(Date.parse(e.time))));
  t.ok(lines[2]!.pid && lines[2]!.pid !== before.pid, 'up carries the new pid');

  // status --json: every field, with what runit's status has no room for
  r = await rt(['status', '--json', 'web', 'slow', 'nope'], env);
  t.equal(r.exitCode, 1, 'one service could not be read');
  const [w, s, n] = r.stdout.split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  t.match(w, { name: 'web', state: 'run', pid: lines[2]!.pid, paused: false, want: 'up', gotTerm: false, normallyUp: true, ready: true, restarts: 1, lastExit: { code: -1, signal: 'SIGTERM' } });
  t.match(w!.log, { state: 'run', want: 'up' });
  t.match(s, { name: 'slow', state: 'run', normallyUp: false, ready: true, restarts: 0, lastExit: null, log: null });
  t.same(n, { name: 'nope', error: { reason: 'no-service', message: 'nope: unable to change to service directory: file does not exist' } });
  t.equal((await rt(['status', 'web'], env)).exitCode, 100, 'status needs --json (sv status is the text form)');

  // the library's events(): connected (the backlog arrives first), then live, aborted by the caller
  const ac = new AbortController();
  const got: string[] = [];
  let connected!: () => void;
  const isConnected = new Promise<void>((r) => (connected = r));
  const it = (async () => {
    for await (const e of new SupervisedServices({ scanDir: tr.sv }).events({ signal: ac.signal })) {
      connected();
      if (e.replay) continue;
      got.push(`${e.event} ${e.service}`);
      if (got.length === 2) ac.abort();
    }
  })();
  await isConnected;
  await execa(toolFor('ours', tr.bin, 'sv'), ['-w', '5', 'down', 'slow'], { env });
  await it;
  t.same(got, ['exit slow', 'down slow']);
});

t.test("Debian's runsvdir: JSON status without our extras; no event stream", async (t) => {
  const tr = tree('events-debian-');
  const bg = spawnBg(toolFor('debian', tr.bin, 'runsvdir'), ['-P', tr.sv], { env: { PATH: debianPath() } });
  t.teardown(async () => {
    bg.proc.kill('SIGHUP');
    await bg.proc;
    tr.cleanup();
  });
  symlinkSync(tr.service('web', { run: '#!/bin/sh\nexec sleep 1000\n' }), join(tr.sv, 'web'));
  const env = { SVDIR: tr.sv };
  const r = await until(async () => {
    const r = await rt(['wait', '-t', '10', 'up', 'web'], env);
    return r.exitCode === 0 ? r : undefined;
  }, 15000, 'web up under runsv');
  t.equal(r.stdout, 'ok: web');
  const st = JSON.parse((await rt(['status', '--json', 'web'], env)).stdout) as Record<string, unknown>;
  t.match(st, { name: 'web', state: 'run', restarts: null, lastExit: null, ready: true });
  const ev = await rt(['events', '-c', '1'], env);
  t.equal(ev.exitCode, 1);
  t.match(ev.stderr, /unable to connect to .*\.events/);
});

t.test('a scan directory the supervisor\'s user may not write: no event stream, one warning, the services run', { skip: process.getuid?.() !== 0 ? 'needs root (runs the supervisor as nobody)' : false }, async (t) => {
  // as container-init run with --user over an image's root-owned /etc/service
  const tr = tree('runit-ts-ev-ro-', publicBin().bin);
  t.teardown(() => tr.cleanup());
  chmodSync(tr.root, 0o755);
  const svc = tr.service('a', { run: '#!/bin/sh\nexec sleep 100000\n' });
  chmodSync(join(tr.root, 'sv-src'), 0o755);
  chownSync(svc, 65534, 65534); // its supervise/ is nobody's to make
  symlinkSync(svc, join(tr.sv, 'a'));
  const bg = spawnBg('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', tr.our('runsvdir'), tr.sv]);
  // HUP: runsvdir stops its service and exits (a SIGKILL would leave the service running)
  t.teardown(async () => {
    bg.proc.kill('SIGHUP');
    const killer = setTimeout(() => bg.proc.kill('SIGKILL'), 10_000);
    await bg.proc;
    clearTimeout(killer);
  });
  await until(() => existsSync(join(svc, 'supervise', 'pid')) && readFileSync(join(svc, 'supervise', 'pid'), 'utf8').trim() !== '', 15_000, 'a running').catch(() => undefined);
  await until(() => /unable to serve \.events/.test(bg.output()), 5_000, 'the warning').catch(() => undefined);
  t.match(bg.output(), /unable to serve \.events: access denied$/m, `one line says why: ${bg.output()}`);
  t.equal(bg.proc.exitCode, null, 'the supervisor still runs');
  t.ok(existsSync(join(svc, 'supervise', 'pid')), 'the service was started');
  t.notOk(existsSync(join(tr.sv, '.events')), 'no event socket');
});
