// Helpers for the dependency, readiness and one-shot tests: a scan directory run by our
// runsvdir, services written into it, and what the supervisor recorded.
import type { Test } from 'tap';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { execa } from 'execa';
import { spawnBg, tree, until, type Bg, type Tree } from './host.ts';
import { toolFor } from './runit.ts';

export const sh = (body: string) => `#!/bin/sh\n${body}\n`;

export interface Scan {
  tr: Tree;
  bg: Bg | undefined;
  /** write a service's files (run/finish/check get mode 0755; a name ending in / is a directory) */
  add: (name: string, files: Record<string, string>, where?: string) => string;
  start: () => Promise<void>;
  /** run our sv or Debian's with SVDIR set */
  sv: (kind: 'ours' | 'debian', args: string[]) => Promise<{ stdout: string; stderr: string; exitCode: number }>;
  status: (name: string) => Record<string, unknown>;
  stats: (name: string) => Record<string, unknown> | undefined;
  timeline: () => { services: Record<string, Record<string, number | string | string[]>> };
  output: () => string;
}

/** A scan directory for our runsvdir, stopped (TERM) at the end of the test. */
export function scan(t: Test, prefix: string): Scan {
  const tr = tree(prefix);
  const s: Scan = {
    tr,
    bg: undefined,
    add(name, files, where = tr.sv) {
      const d = join(where, name);
      mkdirSync(d, { recursive: true });
      for (const [rel, text] of Object.entries(files)) {
        const p = join(d, rel);
        if (rel.endsWith('/')) {
          mkdirSync(p, { recursive: true });
          continue;
        }
        mkdirSync(dirname(p), { recursive: true });
        writeFileSync(p, text);
        if (/(^|\/)(run|finish|check)$/.test(rel)) chmodSync(p, 0o755);
      }
      return d;
    },
    async start() {
      s.bg = spawnBg(toolFor('ours', tr.bin, 'runsvdir'), ['-P', tr.sv], { env: { PATH: `${tr.bin}:${process.env.PATH}` } });
      await until(() => readIfJson(join(tr.sv, '.timeline.json')), 10000, 'the timeline');
    },
    async sv(kind, args) {
      const r = await execa(toolFor(kind, tr.bin, 'sv'), args, { env: { SVDIR: tr.sv }, reject: false, cwd: tr.root });
      return { stdout: r.stdout, stderr: r.stderr, exitCode: r.exitCode ?? -1 };
    },
    status(name) {
      return JSON.parse(readFileSync(join(tr.sv, name, 'supervise', 'stats.json'), 'utf8')) as Record<string, unknown>;
    },
    stats(name) {
      return readIfJson(join(tr.sv, name, 'supervise', 'stats.json'));
    },
    timeline() {
      return readIfJson(join(tr.sv, '.timeline.json')) as ReturnType<Scan['timeline']>;
    },
    output: () => s.bg?.output() ?? '',
  };
  t.teardown(async () => {
    if (s.bg) {
      s.bg.proc.kill('SIGTERM');
      await s.bg.proc;
    }
    tr.cleanup();
  });
  return s;
}

export function readIfJson(path: string): Record<string, unknown> | undefined {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

/** Lines of a file the run scripts append to (in the order things happened). */
export function lines(path: string): string[] {
  try {
    return readFileSync(path, 'utf8').split('\n').filter(Boolean);
  } catch {
    return [];
  }
}

export { until };
