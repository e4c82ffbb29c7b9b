// ./check, the one runner for everybody who asks a service's ./check whether it is ready:
// sv and container-probe (checkSync: synchronous, container-probe with a time limit), the
// library client and the supervisor's readiness polling (startCheck: asynchronous and
// cancellable). It is run as runit's sv runs it:
//   - no ./check (stat() says ENOENT): ready;
//   - stat() fails otherwise: not ready, "warning: unable to stat NAME/check: ERROR";
//   - execve("check", ["./check"]) in the service directory, stdout closed (a write fails
//     with EBADF), stdin and stderr inherited; exit code 0 is ready, anything else not;
//   - a ./check that cannot be executed (access denied, exec format error, a missing
//     interpreter): not ready, reported with sv's line "warning: unable to run
//     NAME/check: ERROR".
// Where it differs from runit: runit's sv, after that line, has its child exit 0, which
// its parent takes for ready; and it takes a ./check killed by a signal for ready
// (wait_exitcode() of a signal is 0). Here both are not ready; sv alone keeps runit's
// answers, through svVerdict(), as its output must stay runit's.
import { accessSync, closeSync, constants as C, statSync } from 'node:fs';
import type { ChildProcess } from 'node:child_process';
import { errorStr } from './errstr.ts';
import { closedStdout, execFormatError, shebang } from './exec.ts';

/** The file's name in the service directory, and what sv passes it as argv[0]. */
const CHECK = 'check';
const CHECK_ARGV0 = './check';
/** Errors of fork() rather than of execve() (sv: "unable to fork for", not ready even in runit). */
const FORK_ERRORS = new Set(['EAGAIN', 'ENOMEM']);
/** What cancel() sends ./check by default. */
const CANCEL_SIGNAL: NodeJS.Signals = 'SIGTERM';

/** What running ./check came to; `ready` is the verdict. */
export type CheckResult =
  /** no ./check: ready */
  | { ready: true; end: 'absent' }
  /** it exited: ready when code is 0 */
  | { ready: boolean; end: 'exit'; code: number }
  /** it was killed by a signal */
  | { ready: false; end: 'signal'; signal: NodeJS.Signals }
  /** checkSync's time limit passed (it was killed) */
  | { ready: false; end: 'timeout' }
  /** startCheck's cancel() ended it */
  | { ready: false; end: 'cancelled' }
  /**
   * it could not be looked at (step 'stat'), started ('fork') or executed ('run');
   * message is runit's words ("unable to run NAME/check: exec format error"), warning
   * the line sv prints ("warning: " and the message)
   */
  | { ready: false; end: 'failed'; step: 'stat' | 'fork' | 'run'; cause: unknown; message: string; warning: string };

export interface CheckOptions {
  /** how messages name the service, NAME in "NAME/check" (sv: the name as given; default: the directory) */
  name?: string;
}

export interface CheckSyncOptions extends CheckOptions {
  /** kill ./check (SIGTERM) after this many milliseconds and count it not ready (default: no limit, as sv) */
  timeoutMs?: number;
}

/** A ./check started by startCheck(). */
export interface CheckRun {
  /** settles once with the result (never rejects) */
  done: Promise<CheckResult>;
  /** kill ./check (default SIGTERM) if it still runs; done settles at once with end 'cancelled' */
  cancel(signal?: NodeJS.Signals): void;
}

/** How to start ./check: the program, its arguments, and argv[0]. */
interface Launch {
  file: string;
  args: string[];
  argv0: string;
}

/** A failed step in runit's words. */
function failed(step: 'stat' | 'fork' | 'run', name: string, cause: unknown): CheckResult {
  const message = `${step === 'stat' ? 'unable to stat' : step === 'fork' ? 'unable to fork for' : 'unable to run'} ${name}/${CHECK}: ${errorStr(cause)}`;
  return { ready: false, end: 'failed', step, cause, message, warning: `warning: ${message}` };
}

/** A spawn() error: fork's (EAGAIN, ENOMEM) or execve's. */
function spawnFailed(name: string, e: unknown): CheckResult {
  return failed(FORK_ERRORS.has((e as { code?: string } | null)?.code ?? '') ? 'fork' : 'run', name, e);
}

/** How an exited ./check is judged: exit code 0 is ready; a signal is not. */
function ended(code: number | null, signal: NodeJS.Signals | null): CheckResult {
  if (code === null) return { ready: false, end: 'signal', signal: signal ?? 'SIGKILL' };
  return { ready: code === 0, end: 'exit', code };
}

/**
 * Everything before the fork: the result when there is nothing to run (no ./check, or
 * one execve() would refuse), else how to run it. spawn() would hide what execve() says:
 * libuv runs a file without "#!" or ELF header with /bin/sh, and a script's interpreter
 * with the script's x bit unchecked; and it runs a relative name only with a slash,
 * where sv's execve("check") gives a script "check" as its name.
 */
function prepare(dir: string, name: string): CheckResult | Launch {
  const path = `${dir.endsWith('/') ? dir : dir + '/'}${CHECK}`;
  try {
    statSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { ready: true, end: 'absent' };
    return failed('stat', name, e);
  }
  try {
    accessSync(path, C.X_OK);
  } catch (e) {
    return failed('run', name, e);
  }
  const enoexec = execFormatError(path);
  if (enoexec) return failed('run', name, enoexec);
  const script = shebang(path, CHECK);
  return script ? { file: script.file, args: script.args, argv0: script.file } : { file: CHECK_ARGV0, args: [], argv0: CHECK_ARGV0 };
}

/** node:child_process, loaded only when a ./check runs (sv status never needs it). */
function childProcess(): typeof import('node:child_process') {
  return process.getBuiltinModule('node:child_process');
}

/**
 * Run dir/check and wait for it (sv, container-probe). The process blocks meanwhile;
 * with timeoutMs, a ./check still running then is killed and not ready.
 */
export function checkSync(dir: string, opts: CheckSyncOptions = {}): CheckResult {
  const name = opts.name ?? dir;
  const how = prepare(dir, name);
  if (!('file' in how)) return how;
  const out = closedStdout();
  try {
    const r = childProcess().spawnSync(how.file, how.args, {
      cwd: dir,
      stdio: ['inherit', out, 'inherit'],
      argv0: how.argv0,
      ...(opts.timeoutMs === undefined ? {} : { timeout: opts.timeoutMs }),
    });
    if (r.error) return (r.error as NodeJS.ErrnoException).code === 'ETIMEDOUT' ? { ready: false, end: 'timeout' } : spawnFailed(name, r.error);
    return ended(r.status, r.signal);
  } finally {
    closeSync(out);
  }
}

/**
 * Start dir/check without waiting for it (the library client, the supervisor). `done`
 * settles with the result; cancel() kills ./check and settles it as 'cancelled'.
 *
 * The supervisor's readiness polling (src/runsv/readiness.ts) runs every ./check through
 * it, cancelling the run when the start it watches ends.
 *
 * As sv runs it: a ./check that cannot be executed is reported (and never run through
 * /bin/sh as libuv would), stdin is inherited and stdout closed, and a script sees
 * "check" as its name.
 */
export function startCheck(dir: string, opts: CheckOptions = {}): CheckRun {
  const name = opts.name ?? dir;
  const how = prepare(dir, name);
  if (!('file' in how)) return { done: Promise.resolve(how), cancel: () => undefined };
  let settle!: (r: CheckResult) => void;
  const done = new Promise<CheckResult>((res) => (settle = res));
  let over = false;
  const finish = (r: CheckResult): void => {
    if (over) return;
    over = true;
    settle(r);
  };
  const out = closedStdout();
  let child: ChildProcess;
  try {
    child = childProcess().spawn(how.file, how.args, { cwd: dir, stdio: ['inherit', out, 'inherit'], argv0: how.argv0 });
  } catch (e) {
    finish(spawnFailed(name, e));
    return { done, cancel: () => undefined };
  } finally {
    closeSync(out); // the child has its own copy once spawn() returns
  }
  child.once('error', (e) => finish(spawnFailed(name, e)));
  child.once('exit', (code, signal) => finish(ended(code, signal)));
  return {
    done,
    cancel: (signal = CANCEL_SIGNAL) => {
      if (over) return;
      finish({ ready: false, end: 'cancelled' });
      child.kill(signal);
    },
  };
}

/**
 * runit's sv's own verdict, for sv alone: its child exits 0 after a failed execve()
 * (after printing the warning), and it reads a ./check killed by a signal as exit code
 * 0, so both count as ready there. Everybody else takes `ready`.
 */
export function svVerdict(r: CheckResult): boolean {
  return r.ready || r.end === 'signal' || (r.end === 'failed' && r.step === 'run');
}
