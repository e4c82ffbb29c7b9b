// runit-init: as PID 1 it becomes /sbin/runit; otherwise `init 0` halts, `init 6` reboots
// (by creating the stopit/reboot files and sending PID 1 a CONT, as runit-init does).
import { chmodSync, closeSync, openSync } from 'node:fs';
import { errLine, errWrite, fatalLine, runTool, usage } from '../lib/diag.ts';

/** Debian's paths (our PID 1 uses them too): /run is writable even on a read-only root. */
export const STOPIT = process.env.RUNIT_STOPIT ?? '/run/runit.stopit';
export const REBOOT = process.env.RUNIT_REBOOT ?? '/run/runit.reboot';
export const RUNIT = '/sbin/runit';

export const HELP = `usage: init 0|6

  0   halt: stop all services, then power off
  6   reboot: stop all services, then reboot
Run as process 1, init starts ${RUNIT} instead. Exit 111 on failure.
`;

/** runit-init's fatal line ("init: fatal: ..."); returns its exit code, 111. */
function die(msg: string, e: unknown): number {
  errLine(fatalLine('init', msg, e));
  return 111;
}

function create(path: string): void {
  closeSync(openSync(path, 'w', 0o644));
}

export function main(argv: string[], argv0: string): number {
  if (process.pid === 1) {
    try {
      process.execve!(RUNIT, ['runit'], process.env as Record<string, string>);
    } catch (e) {
      return die('unable to start runit', e);
    }
  }
  const a = argv[0];
  if (a === '--help') {
    process.stdout.write(HELP);
    return 0;
  }
  if (!a || (a[0] !== '0' && a[0] !== '6')) {
    if (a?.startsWith('-V')) errWrite('$Id: runit-ts init 0.1 $\n');
    return runTool(() => usage(argv0, ' 0|6', 0)); // runit-init's usage exits 0
  }
  const rc = request(a[0] === '6');
  if (rc) return rc;
  try {
    process.kill(1, 'SIGCONT');
  } catch {
    /* runit-init ignores kill's result */
  }
  return 0;
}

/** Leave the files that tell runit's stage 3 to halt (or reboot); 0 or 111. */
export function request(reboot: boolean): number {
  try { create(STOPIT); } catch (e) { return die(`unable to create ${STOPIT}`, e); }
  try { chmodSync(STOPIT, 0o100); } catch (e) { return die(`unable to chmod ${STOPIT}`, e); }
  if (!reboot) {
    try {
      chmodSync(REBOOT, 0);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') return die(`unable to chmod ${REBOOT}`, e);
    }
  } else {
    try { create(REBOOT); } catch (e) { return die(`unable to create ${REBOOT}`, e); }
    try { chmodSync(REBOOT, 0o100); } catch (e) { return die(`unable to chmod ${REBOOT}`, e); }
  }
  return 0;
}
