// container-init's PID 1 behaviour without a container runtime: the amd64 rootfs.tar
// unpacked, run in a new PID (and mount) namespace with unshare(1). Also as a child
// subreaper when it is not PID 1.
import t from 'tap';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { haveImage, IMAGE_DIR, until } from '../lib/container.ts';

const skip = haveImage() || (process.getuid?.() !== 0 && 'unshare --pid --mount needs root');
if (skip) t.plan(0, skip);
else {
  const root = mkdtempSync(join(tmpdir(), 'runit-ts-unshare-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  await execa('tar', ['-xf', join(IMAGE_DIR, 'x86_64', 'rootfs.tar'), '-C', root]);
  const PATH = 'PATH=/usr/sbin:/usr/bin:/sbin:/bin';
  const ns = (env: string[], argv: string[]) =>
    execa('unshare', ['--pid', '--fork', '--mount', '--mount-proc', `--root=${root}`, '/bin/env', '-i', PATH, 'GREETING=from unshare', ...env, ...argv], { reject: false, all: true, timeout: 60_000 });

  t.test('as PID 1: services up, SIGTERM stops them in parallel and exits 0', async (t) => {
    const p = ns(['RUNIT_TS_KILL_GRACETIME=3000'], ['/sbin/container-init']);
    let out = '';
    p.all!.on('data', (c: Buffer) => (out += c.toString()));
    await until('services up', async () => out.includes('hello-log: hello: up GREETING=from unshare') && out.includes('ticker: up'));
    // the init: the child of unshare
    const init = Number(readFileSync(`/proc/${p.pid}/task/${p.pid}/children`, 'utf8').trim().split(' ')[0]);
    t.match(readFileSync(`/proc/${init}/status`, 'utf8'), /NSpid:\s+\d+\s+1\n/, 'container-init is PID 1 of its namespace');
    const t0 = performance.now();
    process.kill(init, 'SIGTERM');
    const r = await p;
    const ms = performance.now() - t0;
    t.comment(`SIGTERM to exit, PID namespace: ${ms.toFixed(0)} ms`);
    t.equal(r.exitCode, 0, 'exit 0 after an orderly stop');
    t.ok(ms < 3000, `before the grace time (${ms.toFixed(0)} ms)`);
    t.match(r.all, /hello-log: hello: finish -1 15/, './finish ran');
    t.match(r.all, /hello-log: EOF/, 'the logger stopped after its service');
  });

  t.test('as PID 1 with a main command: grace time for a TERM-ignoring service, orphans reaped, 128+signal', async (t) => {
    const t0 = performance.now();
    const r = await ns(['RUNIT_TS_KILL_GRACETIME=1500'], [
      '/sbin/container-init', 'sh', '-c',
      'sv up stubborn; sleep 1; (sleep 0.3 &); sleep 1; ps -o pid,ppid,stat,comm; kill -TERM 1; sleep 100',
    ]);
    const ms = performance.now() - t0;
    t.match(r.all, /stubborn: up/);
    t.notMatch(r.stdout, /^\s*\d+\s+1\s+Z/m, 'no zombie child of PID 1: the orphaned sleep was reaped');
    t.equal(r.exitCode, 143, 'the main command was stopped by TERM: 143');
    t.ok(ms >= 3400, `the TERM-ignoring service held the stop for the grace time (${ms.toFixed(0)} ms in all)`);
    t.ok(ms < 9000, `then was killed (${ms.toFixed(0)} ms in all)`);
  });

  t.test('not PID 1: it becomes the child subreaper and still propagates the exit code', async (t) => {
    const r = await ns(['RUNIT_TS_KILL_GRACETIME=1500'], [
      '/bin/sh', '-c',
      `/sbin/container-init sh -c 'echo init=$PPID; (sleep 30 &); sleep 1; ps -o pid,ppid,comm; exit 5'; echo init-exit=$?`,
    ]);
    const init = /init=(\d+)/.exec(r.stdout)?.[1];
    t.ok(init && init !== '1', `container-init is not PID 1 (pid ${init})`);
    t.notMatch(r.all, /not PID 1|refus/i, 'no refusal');
    t.match(r.stdout, new RegExp(`^\\s*\\d+\\s+${init}\\s+sleep`, 'm'), 'the orphaned sleep was reparented to container-init, not PID 1');
    t.match(r.stdout, /init-exit=5/, 'exit code of the main command');
  });
}
