// /etc/runit/3: make sure every service is stopped (in parallel, SVWAIT seconds, then
// KILL), sync, and unmount. Normally the supervisor has stopped them all already on
// runit's TERM; this catches what it could not (a service that ignored TERM, or a
// supervisor killed before it finished).
import { closeSync, constants as C, openSync, readdirSync, readFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { errorStr } from '../src/lib/errstr.ts';
import { MNT_DETACH, MS_RDONLY, MS_REMOUNT, native } from '../src/lib/native.ts';
import { isServiceProcess, processStartTicks } from '../src/lib/proc.ts';
import { decodeStatus } from '../src/lib/status.ts';
import { SERVICE_DIR } from './stage2.ts';

export const HELP = `usage: /etc/runit/3

runit stage 3: stops every service left in /etc/service in parallel (TERM and
CONT, SVWAIT seconds, default 7, then KILL), syncs, unmounts file systems and
remounts / read-only.
`;

interface Victim { name: string; pid: number; started: number }

function say(m: string): void {
  process.stderr.write(`stage 3: ${m}\n`);
}

/** Processes recorded in supervise/ dirs that are still alive (verified by start time). */
export function leftovers(svdir: string): Victim[] {
  const out: Victim[] = [];
  let names: string[] = [];
  try {
    names = readdirSync(svdir).filter((n) => !n.startsWith('.'));
  } catch {
    return out;
  }
  for (const name of names) {
    for (const [label, sup] of [[name, join(svdir, name, 'supervise')], [`${name}/log`, join(svdir, name, 'log', 'supervise')]] as const) {
      try {
        const st = decodeStatus(readFileSync(join(sup, 'status')));
        if (!st.pid) continue;
        const started = processStartTicks(st.pid);
        if (started !== undefined && isServiceProcess(st.pid, Number(st.start.sec), join(sup, '..'))) out.push({ name: label, pid: st.pid, started });
      } catch {
        /* no status: nothing ran */
      }
    }
  }
  return out;
}

/** A runsv (ours or runit's) still serving this directory: ask it to exit, as `sv exit`. */
function askExit(svdir: string): void {
  for (const name of readdirSafe(svdir)) {
    for (const sup of [join(svdir, name, 'supervise'), join(svdir, name, 'log', 'supervise')]) {
      let fd = -1;
      try {
        fd = openSync(join(sup, 'control'), C.O_WRONLY | C.O_NONBLOCK);
        writeSync(fd, 'dx');
      } catch {
        /* no supervisor: ENXIO */
      } finally {
        if (fd >= 0) closeSync(fd);
      }
    }
  }
}

function readdirSafe(d: string): string[] {
  try {
    return readdirSync(d).filter((n) => !n.startsWith('.'));
  } catch {
    return [];
  }
}

export async function stopAll(svdir: string, waitSec: number): Promise<void> {
  askExit(svdir);
  const victims = leftovers(svdir);
  if (!victims.length) return;
  say(`stopping ${victims.map((v) => v.name).join(', ')}`);
  for (const v of victims) {
    for (const sig of ['SIGTERM', 'SIGCONT'] as const) {
      try {
        process.kill(v.pid, sig);
      } catch {
        /* gone */
      }
    }
  }
  const alive = () => victims.filter((v) => processStartTicks(v.pid) === v.started);
  const t0 = Date.now();
  while (alive().length && Date.now() - t0 < waitSec * 1000) await new Promise((r) => setTimeout(r, 100));
  for (const v of alive()) {
    say(`kill: ${v.name} (pid ${v.pid}) ignored TERM for ${waitSec} s`);
    try {
      process.kill(v.pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
}

function unmountAll(): void {
  const n = native();
  let mounts: string[] = [];
  try {
    mounts = readFileSync('/proc/mounts', 'utf8').split('\n').map((l) => l.split(' ')[1] ?? '').filter(Boolean);
  } catch (e) {
    say(`unable to read /proc/mounts: ${errorStr(e)}`);
  }
  const keep = new Set(['/', '/proc', '/sys', '/dev', '/dev/pts', '/run']);
  for (const m of mounts.reverse()) {
    if (keep.has(m)) continue;
    try {
      n.umount(m, 0);
    } catch {
      try {
        n.mount('', m, '', MS_REMOUNT | MS_RDONLY, '');
      } catch {
        try {
          n.umount(m, MNT_DETACH);
        } catch (e) {
          say(`unable to unmount ${m}: ${errorStr(e)}`);
        }
      }
    }
  }
  try {
    n.mount('', '/', '', MS_REMOUNT | MS_RDONLY, '');
  } catch (e) {
    // an initramfs root (rootfs) cannot be remounted: nothing to protect there; a disk
    // root that stays writable is worth a line (its journal still covers it)
    if (!mounts.length || rootIsDisk()) say(`unable to remount / read-only: ${errorStr(e)}`);
  }
  n.sync();
}

function rootIsDisk(): boolean {
  try {
    const root = readFileSync('/proc/mounts', 'utf8').split('\n').filter((l) => l.split(' ')[1] === '/').pop() ?? '';
    return !['rootfs', 'tmpfs', 'ramfs'].includes(root.split(' ')[2] ?? '');
  } catch {
    return true;
  }
}

export async function main(argv: string[]): Promise<number> {
  if (argv[0] === '--help') {
    process.stdout.write(HELP);
    return 0;
  }
  const wait = Number(process.env.SVWAIT ?? 7);
  await stopAll(process.env.RUNIT_TS_SVDIR ?? SERVICE_DIR, Number.isFinite(wait) ? wait : 7);
  native().sync();
  unmountAll();
  return 0;
}
