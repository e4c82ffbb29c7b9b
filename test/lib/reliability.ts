// Helpers for the reliability suite (test/host/reliability-*.test.ts): many services at
// once, processes counted through /proc, a supervisor started and stopped for a test.
import type { Test } from 'tap';
import { existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { readIf, spawnBg, tree, type Bg, type Tree } from './host.ts';

export const sh = (body: string) => `#!/bin/sh\n${body}\n`;

/** A service directory written straight into the scanned dir (run and finish executable). */
export function serviceDir(dir: string, files: Record<string, string>): string {
  mkdirSync(dir, { recursive: true });
  for (const [rel, text] of Object.entries(files)) {
    mkdirSync(join(dir, rel, '..'), { recursive: true });
    writeFileSync(join(dir, rel), text, { mode: /(^|\/)(run|finish|check)$/.test(rel) ? 0o755 : 0o644 });
  }
  return dir;
}

/** Live (not zombie) processes whose working directory is under `root`: cwd -> pids. */
export function processesUnder(root: string): Map<string, number[]> {
  const out = new Map<string, number[]>();
  for (const n of readdirSync('/proc')) {
    if (!/^\d+$/.test(n)) continue;
    try {
      const cwd = readlinkSync(`/proc/${n}/cwd`);
      if (cwd !== root && !cwd.startsWith(root + '/')) continue;
      const st = readFileSync(`/proc/${n}/stat`, 'utf8');
      if (st[st.lastIndexOf(')') + 2] === 'Z') continue;
      out.set(cwd, [...(out.get(cwd) ?? []), Number(n)]);
    } catch {
      /* gone, or not ours to look at */
    }
  }
  return out;
}

/** Resident and private memory of a process, in kB, from /proc/PID/smaps_rollup. */
export function memoryKb(pid: number): { rss: number; pss: number; privateDirty: number } {
  const s = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
  const f = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(s)?.[1] ?? NaN);
  return { rss: f('Rss'), pss: f('Pss'), privateDirty: f('Private_Dirty') };
}

export interface Supervisor {
  tr: Tree;
  bg: Bg;
  /** SIGTERM (stops every service), KILL after 10 s */
  stop: () => Promise<void>;
}

/**
 * Our runsvdir on a fresh tree filled by `build`; stopped and removed at the end of `t`.
 * `env`: more of its environment (or made from the tree); `wrap`: a command line the
 * supervisor is started through (it ends by exec'ing "$@", the supervisor and its scan
 * directory), e.g. unshare and a mount first.
 */
export function supervisor(
  t: Test,
  build: (tr: Tree) => void,
  prefix = 'runit-ts-rel-',
  env: Record<string, string> | ((tr: Tree) => Record<string, string>) = {},
  wrap: string[] = [],
): Supervisor {
  const tr = tree(prefix);
  build(tr);
  const argv = [...wrap, tr.our('runsvdir'), tr.sv];
  const more = typeof env === 'function' ? env(tr) : env;
  const bg = spawnBg(argv[0]!, argv.slice(1), { env: { PATH: `${tr.bin}:${process.env.PATH ?? '/usr/bin:/bin'}`, ...more } });
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    bg.proc.kill('SIGTERM');
    const timer = setTimeout(() => bg.proc.kill('SIGKILL'), 10_000);
    await bg.proc;
    clearTimeout(timer);
  };
  t.teardown(async () => {
    await stop();
    tr.cleanup();
  });
  return { tr, bg, stop };
}

/** Our sv with SVDIR set; never rejects. */
export function ourSv(tr: Tree, args: string[]) {
  return execa(tr.our('sv'), args, { env: { SVDIR: tr.sv }, reject: false, cwd: tr.sv });
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Where a pids cgroup can be made: cgroup v1's pids hierarchy, or v2's root with the pids controller; undefined if neither (or not root). */
export function pidsCgroupBase(): string | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const v1 = '/sys/fs/cgroup/pids';
  const v2 = '/sys/fs/cgroup';
  if (existsSync(join(v1, 'cgroup.procs'))) return v1;
  if ((readIf(join(v2, 'cgroup.subtree_control')) ?? '').split(/\s+/).includes('pids')) return v2;
  return undefined;
}

export interface PidsCgroup {
  /** its directory */
  path: string;
  /** the command line that moves the process it starts into the group, then exec's "$@" */
  wrap: string[];
  /** pids.max: a number of tasks (threads count), or 'max' */
  setMax: (n: number | 'max') => void;
  /** pids.current: the tasks in it now */
  current: () => number;
}

/**
 * A fresh cgroup of the pids controller (cgroup v1's pids hierarchy, or v2 where the pids
 * controller is enabled), removed at the end of `t`; undefined where neither is there
 * (or it cannot be written: not root).
 */
export function pidsCgroup(t: Test, name: string): PidsCgroup | undefined {
  const base = pidsCgroupBase();
  if (!base) return undefined;
  const path = join(base, `${name}-${process.pid}`);
  try {
    mkdirSync(path);
  } catch {
    return undefined;
  }
  const setMax = (n: number | 'max') => writeFileSync(join(path, 'pids.max'), String(n));
  t.teardown(async () => {
    setMax('max');
    // empty once the supervisor and its services are gone
    for (let i = 0; i < 100; i++) {
      try {
        rmdirSync(path);
        return;
      } catch {
        await sleep(100);
      }
    }
  });
  return {
    path,
    wrap: ['sh', '-c', `echo $$ > ${join(path, 'cgroup.procs')} && exec "$@"`, 'sh'],
    setMax,
    current: () => Number(readFileSync(join(path, 'pids.current'), 'utf8')),
  };
}
