// Small system-call wrappers, with the error handling runit's tools use around them.
import { closeSync, constants as C, openSync, readlinkSync, writeSync } from 'node:fs';

/**
 * Linux's signal names by number, the first name os.constants.signals gives each (6 is
 * SIGABRT, not SIGIOT; 29 SIGIO, not SIGPOLL); x86_64 and arm64 number them alike. A table
 * of our own: node:os, loaded by the supervisor's first use of it (a service's first
 * death by a signal), comes after the supervisor changed V8's flags and so is compiled
 * from source: 0.47 ms of a fresh supervisor's first restart (3.4 ms) natively, more under
 * emulation (docs/performance.md). test/unit/sys.test.ts holds it against os.constants.signals.
 */
const SIGNAL_NAMES: ReadonlyArray<NodeJS.Signals | undefined> = [
  undefined, 'SIGHUP', 'SIGINT', 'SIGQUIT', 'SIGILL', 'SIGTRAP', 'SIGABRT', 'SIGBUS', 'SIGFPE', 'SIGKILL', 'SIGUSR1',
  'SIGSEGV', 'SIGUSR2', 'SIGPIPE', 'SIGALRM', 'SIGTERM', 'SIGSTKFLT', 'SIGCHLD', 'SIGCONT', 'SIGSTOP', 'SIGTSTP',
  'SIGTTIN', 'SIGTTOU', 'SIGURG', 'SIGXCPU', 'SIGXFSZ', 'SIGVTALRM', 'SIGPROF', 'SIGWINCH', 'SIGIO', 'SIGPWR', 'SIGSYS',
];
/** the names Linux also has for a number named above */
const SIGNAL_ALIASES: Readonly<Record<string, number>> = { SIGIOT: 6, SIGPOLL: 29 };

/** The name of a signal number ('SIGTERM' for 15), or undefined for 0 or a number Linux has no name for. */
export function signalName(n: number): NodeJS.Signals | undefined {
  return Number.isInteger(n) ? SIGNAL_NAMES[n] : undefined;
}

/** The number of a signal name ('SIGTERM': 15), or 0 for a name Linux does not have. */
export function signalNumber(name: string): number {
  const i = SIGNAL_NAMES.indexOf(name as NodeJS.Signals);
  return i > 0 ? i : (SIGNAL_ALIASES[name] ?? 0);
}

/**
 * This process's executable, as /proc/self/exe names it now. process.execPath was fixed
 * at start: in a process started before /proc was mounted (stage 1, and the stage 2 it
 * goes on as) it is only argv[0], e.g. /etc/runit/1.
 */
let self: string | undefined;
export function selfExe(): string {
  if (self) return self;
  try {
    // a process's executable never changes: read once /proc can tell
    return (self = readlinkSync('/proc/self/exe'));
  } catch {
    return process.execPath;
  }
}

/**
 * Milliseconds on the monotonic clock, fractional. Not performance.now(): the global
 * `performance` loads Node's perf_hooks modules when first used, ~20 ms of a start under
 * emulation (docs/performance.md).
 */
export function monotonicMs(): number {
  const [s, ns] = process.hrtime();
  return s * 1e3 + ns / 1e6;
}

const pad = (n: number, w: number) => String(n).padStart(w, '0');

/**
 * `new Date(ms).toISOString()`, as the same string, without it: V8's first toISOString
 * in a process costs ~0.2 ms on a fast machine and tens of milliseconds under emulation,
 * on the supervisor's first pass (docs/performance.md); the getUTC* methods do not.
 */
export function isoTime(ms: number = Date.now()): string {
  const d = new Date(ms);
  const y = d.getUTCFullYear();
  const year = y >= 0 && y <= 9999 ? pad(y, 4) : (y < 0 ? '-' : '+') + pad(Math.abs(y), 6);
  return `${year}-${pad(d.getUTCMonth() + 1, 2)}-${pad(d.getUTCDate(), 2)}T${pad(d.getUTCHours(), 2)}:${pad(d.getUTCMinutes(), 2)}:${pad(d.getUTCSeconds(), 2)}.${pad(d.getUTCMilliseconds(), 3)}Z`;
}

/** The errno name of a failed call ('ENOENT'...), if it has one. */
export function errnoOf(e: unknown): string | undefined {
  return (e as NodeJS.ErrnoException | null)?.code;
}

/**
 * Did this error come from running out of descriptors (EMFILE: the process's ulimit -n,
 * ENFILE: the system's)? An error, an errno name, or an error whose cause is one.
 */
export function outOfFds(e: unknown): boolean {
  const cause = (e as { cause?: unknown } | null)?.cause ?? e;
  const c = typeof cause === 'string' ? cause : errnoOf(cause);
  return c === 'EMFILE' || c === 'ENFILE';
}

/** Resolve after ms milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Send a signal, ignoring the result (the process may be gone), as runit's tools do. */
export function signal(pid: number, sig: NodeJS.Signals): void {
  if (pid <= 0) return;
  try {
    process.kill(pid, sig);
  } catch {
    /* already gone */
  }
}

/** close() a descriptor if open (>= 0), ignoring errors. */
export function closeQuiet(fd: number): void {
  if (fd < 0) return;
  try {
    closeSync(fd);
  } catch {
    /* nothing to do */
  }
}

/** write() ignoring errors, as a process whose output is gone. */
export function writeQuiet(fd: number, b: Buffer | string): void {
  try {
    if (typeof b === 'string') writeSync(fd, b);
    else writeSync(fd, b);
  } catch {
    /* nowhere to write */
  }
}

/** open_read() succeeds (runsv's test for ./finish). */
export function readable(path: string): boolean {
  try {
    closeSync(openSync(path, C.O_RDONLY | C.O_NONBLOCK));
    return true;
  } catch {
    return false;
  }
}
