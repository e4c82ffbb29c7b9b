// What the stages add on a Debian system (runit-ts-init installed by an image of
// `base: debian`; /etc/debian_version tells it), as Debian's runit stages and the
// initscripts they run do on a minimal system. The busybox images have no
// /etc/debian_version, and none of this happens there.
//   stage 1: /run/runit.stopit and /run/runit.reboot, mode 0 (Debian's stage 1 makes them:
//            runit-helper and trigger_sv take the stopit file as "runit is process 1" and
//            only then start services and signal runsvdir), /run/lock (1777; /var/lock
//            links to it) and /dev/shm (a tmpfs, 1777: POSIX shared memory and semaphores)
//   stage 2: /run/runit/supervise, where the supervise/ links of Debian's service
//            directories point (/etc/sv/NAME/supervise -> /run/runit/supervise/NAME)
// The runlevel stage 2 selects (runitdir=, /etc/runit/default.runsvdir) is in stage2.ts.
import { chmodSync, closeSync, existsSync, mkdirSync, openSync } from 'node:fs';
import { errLine, withCause } from '../src/lib/diag.ts';
import { MS_NODEV, MS_NOSUID, native } from '../src/lib/native.ts';
import { REBOOT, STOPIT } from '../src/init/main.ts';

/** base-files' file: its presence makes the root a Debian system. */
export const DEBIAN_VERSION = '/etc/debian_version';
/** Where Debian's service directories keep their supervise/ (made before runsvdir starts). */
export const SUPERVISE_RUN = '/run/runit/supervise';
const RUN_LOCK = '/run/lock';
const DEV_SHM = '/dev/shm';

/** Is this root a Debian system? */
export function isDebian(versionFile = DEBIAN_VERSION): boolean {
  return existsSync(versionFile);
}

/** Stage 1's failure line: said, and the boot goes on. */
function err(what: string, e: unknown): void {
  errLine(`stage 1: ${withCause(what, e)}`);
}

/** Stage 1's part on Debian: the runit files in /run, /run/lock and /dev/shm. */
export function debianStage1(): void {
  for (const f of [STOPIT, REBOOT]) {
    try {
      closeSync(openSync(f, 'a', 0)); // mode 0: neither halt nor reboot asked for yet
    } catch (e) {
      err(`unable to create ${f}`, e);
    }
  }
  try {
    mkdirSync(RUN_LOCK, { recursive: true });
    chmodSync(RUN_LOCK, 0o1777); // mkdir's mode is cut by the umask
  } catch (e) {
    err(`unable to make ${RUN_LOCK}`, e);
  }
  try {
    mkdirSync(DEV_SHM, { recursive: true });
    native().mount('tmpfs', DEV_SHM, 'tmpfs', MS_NOSUID | MS_NODEV, 'mode=1777');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EBUSY') err(`unable to mount ${DEV_SHM}`, e);
  }
}

/** Stage 2's part on Debian: the directory the supervise/ links point into. */
export function debianStage2(): void {
  try {
    mkdirSync(SUPERVISE_RUN, { recursive: true, mode: 0o755 });
  } catch (e) {
    errLine(`stage 2: ${withCause(`unable to make ${SUPERVISE_RUN}`, e)}`);
  }
}
