// scripts/code-cache.ts: the V8 code cache each arch's executable starts with
// (scripts/sea-loader.cjs), made by a training run of the bundle under that arch's pinned
// Node (the other arch's under qemu-user), started with the executable's V8 options.
//
// The run is the boot's path after Node's start: stage 2 is `runsvdir -P /etc/service`, so
// the training starts `runsvdir -P` on three services, each logging through svlogd (run
// in-process, as in the image), waits until all six are up, kills one service so that
// the restart path runs, and ends the supervisor with SIGHUP; when it exits it writes V8's
// cache of every function compiled by then (scripts/sea-train.cjs). V8 accepts the cache
// only from the same V8 build, arch and flags; code it does not cover is compiled on first
// use, as without a cache.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { repoRoot } from '../image/inputs.ts';

const SERVICES = ['a', 'b', 'c'];
const TIMEOUT_MS = 180_000;

export interface TrainOptions {
  /** the command that runs the target arch's Node (with qemu-user in front for the other arch) */
  node: string[];
  /** the arch's Node binary itself: `svlogd` in the services' PATH links to it, so their loggers run in-process */
  nodeBinary: string;
  /** the executable's V8 options: the cache is stamped with them */
  execArgv: string[];
  bundle: string;
  /** the arch's addon (spawn, locks) */
  addon: string;
  out: string;
  say: (m: string) => void;
}

function read(p: string): string {
  try {
    return readFileSync(p, 'utf8').trim();
  } catch {
    return '';
  }
}

async function until(what: string, ok: () => boolean, deadline: number): Promise<void> {
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`code cache training: timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export async function trainCodeCache(o: TrainOptions): Promise<void> {
  const t0 = Date.now();
  const tmp = mkdtempSync(join(tmpdir(), 'runit-ts-train-'));
  const svdir = join(tmp, 'service');
  let proc: ReturnType<typeof execa> | undefined;
  try {
    const bin = join(tmp, 'bin');
    mkdirSync(bin);
    symlinkSync(o.nodeBinary, join(bin, 'svlogd'));
    for (const s of SERVICES) {
      mkdirSync(join(svdir, s, 'log', 'main'), { recursive: true });
      writeFileSync(join(svdir, s, 'run'), '#!/bin/sh\necho started\nexec sleep 1000\n', { mode: 0o755 });
      writeFileSync(join(svdir, s, 'log', 'run'), '#!/bin/sh\nexec svlogd -tt ./main\n', { mode: 0o755 });
    }
    const cache = join(tmp, 'cache');
    const [cmd, ...pre] = o.node;
    const train = join(repoRoot, 'scripts', 'sea-train.cjs');
    proc = execa(cmd!, [...pre, ...o.execArgv, train, o.bundle, '-', cache, 'runsvdir', '-P', svdir, `log: ${'.'.repeat(40)}`], {
      env: { PATH: `${bin}:/usr/sbin:/usr/bin:/sbin:/bin`, RUNIT_TS_ADDON: o.addon },
      extendEnv: false,
      reject: false,
      all: true,
    });
    const deadline = Date.now() + TIMEOUT_MS;
    const supervise = (s: string) => join(svdir, s, 'supervise');
    const allUp = () => SERVICES.every((s) => read(join(supervise(s), 'stat')) === 'run' && read(join(svdir, s, 'log', 'supervise', 'stat')) === 'run');
    const p = proc;
    await until('the services to be up', () => allUp() || p.exitCode !== null, deadline);
    if (proc.exitCode !== null) throw new Error(`code cache training: the supervisor ended early:\n${(await proc).all}`);
    // the restart path: a service killed and started again
    const pid = Number(read(join(supervise('a'), 'pid')));
    process.kill(pid, 'SIGKILL');
    await until('the killed service to be restarted', () => {
      const now = Number(read(join(supervise('a'), 'pid')));
      return now > 0 && now !== pid && allUp();
    }, deadline);
    proc.kill('SIGHUP');
    const r = await proc;
    // runsvdir ends with 111 on SIGHUP, once its services are down
    if (r.exitCode !== 111 || !existsSync(cache)) throw new Error(`code cache training: the supervisor ended with ${r.exitCode ?? r.signal}:\n${r.all}`);
    renameSync(cache, o.out);
    o.say(`code cache ${o.out} ${(statSync(o.out).size / 1024).toFixed(0)} KiB (training run ${((Date.now() - t0) / 1000).toFixed(1)} s)`);
  } finally {
    // after a failure: nothing of the run left behind
    if (proc && proc.exitCode === null) proc.kill('SIGKILL');
    for (const s of SERVICES) {
      const pid = Number(read(join(svdir, s, 'supervise', 'pid')));
      if (pid > 0) try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
    }
    rmSync(tmp, { recursive: true, force: true });
  }
}
