// Beyond runit: file descriptors kept in reserve by the one supervisor process. runit
// runs a runsv process per service, each with its own descriptor table; ours supervises
// every service in one process, whose RLIMIT_NOFILE (ulimit -n) bounds them all, each
// service taking about four descriptors (eight with a log). When a service's supervise/
// cannot be opened for want of descriptors, the supervisor gives back this reserve, so
// the services it does supervise can still write their status, and the scan directory
// can still be read; it tries the others again only once it can take the reserve back.
// (Node opens every file close-on-exec: no service inherits the reserve.)
import { closeSync, constants as C, openSync } from 'node:fs';
import { native, RLIMIT_NOFILE } from '../lib/native.ts';

/** descriptors held back for the supervisor's own work when they run short */
export const RESERVE_FDS = 16;

/** The reserve: held while descriptors suffice, given back when they ran out. */
export class FdReserve {
  private fds: number[] = [];
  /** `/` could not be opened for a reason other than a want of descriptors: no reserve is tried again */
  private unavailable = false;

  /**
   * Hold the reserve (again); false, with nothing held, when the descriptors are not there
   * (EMFILE, ENFILE). The root directory is what is opened: it is there in every root,
   * where /dev/null may not be (an unpacked image run with unshare or chroot). Any other
   * failure holds no reserve, now or later, and does not stop supervision.
   */
  hold(): boolean {
    if (this.unavailable) return true;
    try {
      while (this.fds.length < RESERVE_FDS) this.fds.push(openSync('/', C.O_RDONLY | C.O_DIRECTORY));
      return true;
    } catch (e) {
      this.release();
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'EMFILE' || code === 'ENFILE') return false;
      this.unavailable = true;
      return true;
    }
  }

  /** Is the reserve held (or, where it cannot be had at all, given up)? */
  get held(): boolean {
    return this.unavailable || this.fds.length === RESERVE_FDS;
  }

  /** Give the descriptors back to the process. */
  release(): void {
    for (const fd of this.fds) closeSync(fd);
    this.fds = [];
  }
}

/** The process's soft limit on descriptors (ulimit -n), for messages. */
export function fdLimit(): number | undefined {
  try {
    return native().getrlimit(RLIMIT_NOFILE)[0];
  } catch {
    return undefined;
  }
}
