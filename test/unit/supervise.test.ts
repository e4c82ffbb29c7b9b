// src/lib/supervise.ts, the supervise/ protocol library, against files and FIFOs made
// here (mkfifo(1)) and a child process standing in for a dead supervisor's leftover.
import t from 'tap';
import { spawn } from 'node:child_process';
import { closeSync, constants as C, mkdirSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { encodeStatus, S_DOWN, S_RUN, type Status } from '../../src/lib/status.ts';
import { describe, findLeftover, findLeftovers, leftoverAlive, readStatus, readStatusFile, sendControl, stopLeftovers, supervisorRunning, writeStatus } from '../../src/lib/supervise.ts';
import { taiNow } from '../../src/lib/tai.ts';

const work = mkdtempSync(join(tmpdir(), 'supervise-lib-'));
t.teardown(() => rmSync(work, { recursive: true, force: true }));

let n = 0;
async function serviceDir(): Promise<string> {
  const dir = join(work, `svc${++n}`);
  mkdirSync(join(dir, 'supervise'), { recursive: true });
  await execa('mkfifo', ['-m', '600', join(dir, 'supervise', 'ok'), join(dir, 'supervise', 'control')]);
  return dir;
}

const up = (pid: number): Status => ({ start: taiNow(), pid, paused: false, want: 'up', term: false, state: S_RUN });

t.test('no supervise/: an error in sv\'s words', async (t) => {
  const r = readStatus(join(work, 'nosuch'));
  t.equal(r.kind, 'error');
  if (r.kind === 'error') t.equal(describe(r), 'unable to open supervise/ok: file does not exist');
  const c = sendControl(join(work, 'nosuch'), 'u');
  t.equal(c.kind === 'error' && describe(c), 'unable to open supervise/control: file does not exist');
});

t.test('ok FIFO without a reader: runsv not running', async (t) => {
  const dir = await serviceDir();
  t.same(supervisorRunning(dir), { kind: 'not-running' });
  t.same(readStatus(dir), { kind: 'not-running' });
  t.same(sendControl(dir, 'x'), { kind: 'not-running' });
});

t.test('a runsv holding ok and control: status read, control bytes in one write', async (t) => {
  const dir = await serviceDir();
  const ok = openSync(join(dir, 'supervise', 'ok'), C.O_RDONLY | C.O_NONBLOCK);
  const ctl = openSync(join(dir, 'supervise', 'control'), C.O_RDONLY | C.O_NONBLOCK);
  t.teardown(() => [ok, ctl].forEach((fd) => closeSync(fd)));
  const none = readStatus(dir);
  t.equal(none.kind === 'error' && describe(none), 'unable to open supervise/status: file does not exist', 'runsv there, no status yet');
  const warnings: string[] = [];
  const st = up(4242);
  t.ok(writeStatus(dir, st, { pid: true, label: 'supervise/', warn: (m) => warnings.push(m) }), 'pid written');
  t.same(warnings, []);
  t.equal(readFileSync(join(dir, 'supervise', 'pid'), 'utf8'), '4242\n');
  t.equal(readFileSync(join(dir, 'supervise', 'stat'), 'utf8'), 'run\n');
  t.equal((statSync(join(dir, 'supervise', 'status')).mode & 0o777) & ~0o644, 0, 'status at most 0644');
  const r = readStatus(dir);
  t.equal(r.kind, 'ok');
  if (r.kind === 'ok') {
    t.same(r.raw, encodeStatus(st), 'the 20 bytes as written');
    t.same([r.status.pid, r.status.state, r.status.want], [4242, S_RUN, 'up']);
  }
  t.same(sendControl(dir, 'tcu'), { kind: 'ok' });
  const b = Buffer.alloc(16);
  t.equal(b.toString('latin1', 0, readSync(ctl, b)), 'tcu', 'the bytes, in order');
  // down: stat and status follow, pid left alone when not asked for
  writeStatus(dir, { ...st, pid: 0, state: S_DOWN }, { pid: false, label: 'supervise/', warn: (m) => warnings.push(m) });
  t.equal(readFileSync(join(dir, 'supervise', 'pid'), 'utf8'), '4242\n', 'pid only when asked');
  t.equal(readFileSync(join(dir, 'supervise', 'stat'), 'utf8'), 'down\n');
  // a short status file: bad format
  writeFileSync(join(dir, 'supervise', 'status'), 'short');
  const bad = readStatus(dir);
  t.equal(bad.kind === 'error' && describe(bad), 'unable to read supervise/status: bad format');
});

t.test('writeStatus reports each failed step as runsv words it', async (t) => {
  const warnings: string[] = [];
  t.notOk(writeStatus(join(work, 'nosuch'), up(1), { pid: true, label: 'log/supervise/', warn: (m, e) => warnings.push(`${m}: ${(e as NodeJS.ErrnoException).code}`) }));
  t.same(warnings, ['unable to open log/supervise/pid.new: ENOENT']);
});

t.test('leftovers: found by status and start time, stopped with TERM then KILL', async (t) => {
  const dir = await serviceDir();
  const svdir = join(work, 'svdir');
  mkdirSync(svdir);
  symlinkSync(dir, join(svdir, 'left'));
  // a process that ignores TERM, started in the service directory as runsv starts ./run
  const child = spawn('/bin/sh', ['-c', "trap '' TERM; while :; do sleep 0.05; done"], { cwd: dir, stdio: 'ignore' });
  const gone = new Promise((r) => child.on('exit', r));
  writeStatus(dir, up(child.pid!), { pid: true, label: 'supervise/', warn: () => undefined });
  const l = findLeftover(dir, 'left');
  t.ok(l, 'found');
  t.same(findLeftovers(svdir).map((x) => [x.label, x.pid]), [['left', child.pid]], 'found by scanning the service directory');
  const killed: string[] = [];
  const t0 = Date.now();
  await stopLeftovers([l!], { graceMs: 300, onKill: (v) => killed.push(v.label) });
  await gone;
  t.same(killed, ['left'], 'TERM ignored: killed after the grace time');
  t.ok(Date.now() - t0 >= 300, 'not before it');
  t.notOk(leftoverAlive(l!), 'gone');
  t.equal(findLeftover(dir, 'left'), undefined, 'nothing left');
  // a pid that is not a process started there is never a leftover
  writeStatus(dir, { ...up(process.pid), start: { sec: 1n, nano: 0 } }, { pid: true, label: 'supervise/', warn: () => undefined });
  t.equal(findLeftover(dir, 'left'), undefined, 'our own pid is never one');
  t.equal(readStatusFile(dir).kind, 'ok');
});
