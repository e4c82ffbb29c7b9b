// Helpers for the reliability suite (test/host/reliability-*.test.ts): many services at
// once, processes counted through /proc, a supervisor started and stopped for a test.
import type { Test } from 'tap';
import { mkdirSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { spawnBg, tree, type Bg, type Tree } from './host.ts';

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

/** Our runsvdir on a fresh tree filled by `build`; stopped and removed at the end of `t`. */
export function supervisor(t: Test, build: (tr: Tree) => void, prefix = 'runit-ts-rel-', env: Record<string, string> = {}): Supervisor {
  const tr = tree(prefix);
  build(tr);
  const bg = spawnBg(tr.our('runsvdir'), [tr.sv], { env: { PATH: `${tr.bin}:${process.env.PATH ?? '/usr/bin:/bin'}`, ...env } });
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
