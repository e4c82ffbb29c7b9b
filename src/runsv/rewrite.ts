// Beyond runit: a supervise/ file the supervisor could not write (a full or read-only
// file system) is written again a moment later, until it works, so that status, stat,
// pid and stats.json are right again once space returns without waiting for the next
// change of state (runsv writes them only at a change: a failed write stays stale).
// Each failure is said once until a write works again: a crash loop on a full file
// system would otherwise print the same warning at every restart.
import { errorStr } from '../lib/errstr.ts';

/** A supervise/ file that could not be written is tried again this long after (ms). */
export const REWRITE_RETRY_MS = 1000;

/** The failed writes of one set of supervise/ files (runsv's status files, or stats.json). */
export class Rewrite {
  private readonly write: () => boolean;
  private readonly warn: (m: string, e?: unknown) => void;
  /** the failures said since the last write that worked */
  private readonly said = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  /** write: writes the files as they should be now, true when every step worked; warn: runsv's warn() */
  constructor(write: () => boolean, warn: (m: string, e?: unknown) => void) {
    this.write = write;
    this.warn = warn;
  }

  /** A step failed: warn, unless this failure was said since the last write that worked. */
  failed(m: string, e?: unknown): void {
    const key = e === undefined ? m : `${m}: ${errorStr(e)}`;
    if (this.said.has(key)) return;
    this.said.add(key);
    this.warn(m, e);
  }

  /** A write ended: ok, and the failures may be said again; or not, and it is tried again later. */
  done(ok: boolean): void {
    if (ok) {
      this.said.clear();
      if (this.timer) clearTimeout(this.timer);
      this.timer = undefined;
      return;
    }
    if (this.timer || this.closed) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (!this.closed) this.done(this.write());
    }, REWRITE_RETRY_MS);
    // the supervisor's life is its services', never this timer's
    this.timer.unref();
  }

  /** runsv exits: nothing more is tried. */
  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }
}
