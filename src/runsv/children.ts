// The supervisor's own children: processes started with native().spawn() (see
// src/native/process.c), which Node does not know of and so does not reap. One SIGCHLD
// listener for the whole process reaps each of them by pid (never waitpid(-1), which
// would take the children Node started) and says how it ended.
import { native } from '../lib/native.ts';

/** How a child ended, from its raw wait status. */
export interface ChildEnd {
  /** exit code, or -1 when killed by a signal (runsv's first ./finish argument) */
  code: number;
  /** the signal that killed it, 0 if none */
  sig: number;
  /** the wait status's low byte: the signal and the core-dump bit (runsv's second ./finish argument) */
  low: number;
}

type OnEnd = (end: ChildEnd) => void;

const watched = new Map<number, OnEnd>();
let listening = false;

/** Decode a wait status (WIFEXITED, WTERMSIG, the core-dump bit). */
export function decodeWaitStatus(status: number): ChildEnd {
  const low = status & 0xff;
  const sig = status & 0x7f;
  return sig === 0 ? { code: (status >> 8) & 0xff, sig: 0, low } : { code: -1, sig, low };
}

/** Look at every watched child: reap those that ended. */
export function reapWatched(): void {
  for (const [pid, onEnd] of watched) {
    let status: number;
    try {
      status = native().reap(pid);
    } catch {
      continue; // waitpid failed (not for want of a child to reap): looked at again at the next SIGCHLD
    }
    if (status === -1) continue;
    watched.delete(pid);
    onEnd(decodeWaitStatus(status));
  }
}

function listen(): void {
  // listening before the spawn: a SIGCHLD with no handler is discarded, and a child can
  // end before spawn() returns
  if (!listening) {
    listening = true;
    process.on('SIGCHLD', reapWatched);
  }
}

/**
 * Watch a child this process already has (started before its exec: src/lib/prestart.ts):
 * onEnd once it has ended and been reaped. It may have ended already, its SIGCHLD gone
 * before anyone listened: looked at right after this turn of the event loop.
 */
export function adoptWatched(pid: number, onEnd: OnEnd): void {
  listen();
  watched.set(pid, onEnd);
  setImmediate(reapWatched);
}

/**
 * Start a child with native().spawn() (same arguments) and call onEnd once it has
 * ended and been reaped. Returns its pid; throws what spawn throws.
 */
export function spawnWatched(path: string, argv: string[], envp: string[] | null, cwd: string, fds: number[], setsid: boolean, onEnd: OnEnd, foreground = false): number {
  listen();
  const pid = native().spawn(path, argv, envp, cwd, fds, setsid, foreground);
  watched.set(pid, onEnd);
  return pid;
}
