// /etc/runit/3: make sure every service is stopped (in parallel, SVWAIT seconds, then
// KILL), sync, and unmount. Normally the supervisor has stopped them all already on
// runit's TERM; this catches what it could not (a service that ignored TERM, or a
// supervisor killed before it finished).
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { errLine } from '../src/lib/diag.ts';
import { errorStr } from '../src/lib/errstr.ts';
import { MNT_DETACH, MS_RDONLY, MS_REMOUNT, native } from '../src/lib/native.ts';
import { findLeftovers, sendControl, stopLeftovers } from '../src/lib/supervise.ts';
import { SERVICE_DIR } from './stage2.ts';

export const HELP = `usage: /etc/runit/3

runit stage 3: stops every service left in /etc/service in parallel (TERM and
CONT, SVWAIT seconds, default 7, then KILL), syncs, unmounts file systems and
remounts / read-only.
`;

/** The interval at which stage 3 looks whether the services it stopped are gone. */
const POLL_MS = 100;

function say(m: string): void {
  errLine(`stage 3: ${m}`);
}

/** A runsv (ours or runit's) still serving a service (or its log): ask it to exit, as `sv exit` after `sv down`. */
function askExit(svdir: string): void {
  let names: string[];
  try {
    names = readdirSync(svdir).filter((n) => !n.startsWith('.'));
  } catch {
    return;
  }
  for (const name of names) {
    for (const dir of [join(svdir, name), join(svdir, name, 'log')]) sendControl(dir, 'dx'); // no runsv: nothing to ask
  }
}

/**
 * Stop every service in svdir and its log: ask their runsv to exit, then TERM + CONT
 * what is still running (as recorded in supervise/status and verified), KILL after waitSec.
 */
export async function stopAll(svdir: string, waitSec: number): Promise<void> {
  askExit(svdir);
  const victims = findLeftovers(svdir);
  if (!victims.length) return;
  say(`stopping ${victims.map((v) => v.label).join(', ')}`);
  await stopLeftovers(victims, {
    graceMs: waitSec * 1000,
    pollMs: POLL_MS,
    onKill: (v) => say(`kill: ${v.label} (pid ${v.pid}) ignored TERM for ${waitSec} s`),
  });
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
  } catch {
    /* initramfs root (rootfs) cannot be remounted: nothing to protect there */
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
