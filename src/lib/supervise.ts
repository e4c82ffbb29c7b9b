// runit's supervise/ protocol, one typed module for every tool that speaks it (sv, the
// library client, container-probe, the runsv state machine, stage 3): the files a runsv
// keeps in SERVICE/supervise/, how each is read and written, and sv's rule for a request
// runsv already has (alreadyRequested).
//
//   ok       a FIFO runsv holds open for reading: opening it for writing without blocking
//            (O_WRONLY|O_NDELAY) fails with ENXIO when no runsv serves the directory
//   control  a FIFO runsv reads one byte at a time from: u d o p c h a i q 1 2 t k x
//   status   20 bytes (src/lib/status.ts); stat: the state in words; pid: the pid or empty
//   lock     flock()ed by the runsv serving the directory
//
// A log service has its own supervise/ in SERVICE/log/. Every function here takes the
// directory that holds supervise/ (the service, or its log directory). Errors are
// returned as values with runit's words ("unable to open supervise/ok") and the cause,
// so a tool prints them its own way.
import { closeSync, constants as C, existsSync, openSync, readdirSync, readFileSync, readSync, renameSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { errorStr } from './errstr.ts';
import { native, optionalNative } from './native.ts';
import { isServiceProcess, processStartTicks } from './proc.ts';
import { decodeStatus, encodeStatus, pidFile, statLine, STATUS_SIZE, type Status } from './status.ts';
import { monotonicMs, sleep, signal } from './sys.ts';

/** The status record of a service, as read from supervise/status. */
export interface StatusRecord {
  /** the record decoded (state S_DOWN, S_RUN or S_FINISH, pid, want, ...) */
  status: Status;
  /** the 20 bytes as read */
  raw: Buffer;
}

/**
 * A failed step, in runit's words: `message` ("unable to open supervise/ok") and the
 * `reason` sv prints after it (error_str text, or "bad format"; none for a failed write
 * to supervise/control, where sv prints none either).
 */
export interface ProtocolError {
  kind: 'error';
  message: string;
  reason?: string;
  /** the system error, when there was one */
  cause?: unknown;
}

/** readStatus(): a runsv serves the directory and its status was read, no runsv runs, or a step failed. */
export type StatusResult = ({ kind: 'ok' } & StatusRecord) | { kind: 'not-running' } | ProtocolError;

/** sendControl(): the bytes were written, no runsv runs, or a step failed. */
export type ControlResult = { kind: 'ok' } | { kind: 'not-running' } | ProtocolError;

function failure(message: string, cause: unknown, reason: string | undefined = cause === undefined ? undefined : errorStr(cause)): ProtocolError {
  return { kind: 'error', message, ...(reason === undefined ? {} : { reason }), ...(cause === undefined ? {} : { cause }) };
}

/** "MESSAGE[: REASON]", as sv prints a ProtocolError. */
export function describe(e: ProtocolError): string {
  return e.reason === undefined ? e.message : `${e.message}: ${e.reason}`;
}

function errno(e: unknown): string | undefined {
  return (e as NodeJS.ErrnoException | null)?.code;
}

/**
 * open(2) by the addon where it loads, else by Node's fs: errors carry .code either way.
 * One system call through the addon, without Node's fs JavaScript around it, which `sv`
 * and the supervisor run in V8's interpreter: most of their time per service under emulation.
 */
function openFile(path: string, flags: number): number {
  const n = optionalNative();
  return n ? n.open(path, flags, 0o666) : openSync(path, flags);
}

/** sv's words for a failed open of supervise/ok. */
const OK_OPEN = 'unable to open supervise/ok';
/** sv's words for a failed open and a failed (or short) read of supervise/status. */
const STATUS_OPEN = 'unable to open supervise/status';
const STATUS_READ = 'unable to read supervise/status';

/** Is this failure supervise/ok's absence: no runsv has ever served the directory (or none made supervise/ yet)? */
export function neverSupervised(e: ProtocolError): boolean {
  return e.message === OK_OPEN && errno(e.cause) === 'ENOENT';
}

/**
 * Path of a file in dir/supervise/: joined by hand, as path.join's normalising is a good
 * part of a status update's time under emulation (every update names six files).
 */
export function supervisePath(dir: string, file: string): string {
  return `${dir.endsWith('/') ? dir : dir + '/'}supervise/${file}`;
}

/**
 * Is a runsv serving dir? Opens supervise/ok for writing without blocking, as sv does:
 * ENXIO (no reader) means no runsv. 'running' | 'not-running', or the open's error.
 */
export function supervisorRunning(dir: string): { kind: 'running' } | { kind: 'not-running' } | ProtocolError {
  let fd: number;
  try {
    fd = openFile(supervisePath(dir, 'ok'), C.O_WRONLY | C.O_NONBLOCK);
  } catch (e) {
    if (errno(e) === 'ENXIO') return { kind: 'not-running' };
    return failure(OK_OPEN, e);
  }
  closeSync(fd);
  return { kind: 'running' };
}

/**
 * Read supervise/status whether or not a runsv serves dir (what a dead supervisor
 * left, for one). One read() of up to 20 bytes, as sv: a shorter file is "bad format".
 */
export function readStatusFile(dir: string): ({ kind: 'ok' } & StatusRecord) | ProtocolError {
  let fd: number;
  try {
    fd = openFile(supervisePath(dir, 'status'), C.O_RDONLY | C.O_NONBLOCK);
  } catch (e) {
    return failure(STATUS_OPEN, e);
  }
  const raw = Buffer.alloc(STATUS_SIZE);
  let n: number;
  try {
    n = readSync(fd, raw, 0, STATUS_SIZE, null);
  } catch (e) {
    return failure(STATUS_READ, e);
  } finally {
    closeSync(fd);
  }
  if (n !== STATUS_SIZE) return failure(STATUS_READ, undefined, 'bad format');
  return { kind: 'ok', status: decodeStatus(raw), raw };
}

/** The status of the service in dir, as sv reads it: first whether a runsv serves it, then supervise/status. */
export function readStatus(dir: string): StatusResult {
  const n = optionalNative();
  if (n) {
    // the same system calls in one call of the addon (sv's time per service under emulation)
    const raw = Buffer.allocUnsafe(STATUS_SIZE);
    let got: number;
    try {
      got = n.readStatus(dir, raw);
    } catch (e) {
      const step = (e as { step?: string }).step;
      if (step === 'ok') return errno(e) === 'ENXIO' ? { kind: 'not-running' } : failure(OK_OPEN, e);
      return failure(step === 'status' ? STATUS_OPEN : STATUS_READ, e);
    }
    if (got !== STATUS_SIZE) return failure(STATUS_READ, undefined, 'bad format');
    return { kind: 'ok', status: decodeStatus(raw), raw };
  }
  const running = supervisorRunning(dir);
  if (running.kind !== 'running') return running;
  return readStatusFile(dir);
}

/**
 * Does the runsv already have this request, so that sv (and the library client) skip
 * writing it? runit's sv: the first byte is the want byte of the record (status[17]),
 * except that 'd' is sent again unless TERM is pending (status[18] == 1: 'once w/o
 * term'). Read from the bytes as sv reads them, so a corrupt record is treated as sv does.
 */
export function alreadyRequested(rec: StatusRecord, bytes: string): boolean {
  return rec.raw[17] === bytes.charCodeAt(0) && (bytes[0] !== 'd' || rec.raw[18] === 1);
}

/**
 * Send control bytes to the runsv serving dir: one write() to supervise/control, opened
 * O_WRONLY|O_NDELAY as sv does (ENXIO: no runsv). `bytes` are runit's commands, e.g.
 * 'u' (up), 'd' (down), 'x' (exit), 'tcu' (restart).
 */
export function sendControl(dir: string, bytes: string): ControlResult {
  let fd: number;
  try {
    fd = openSync(supervisePath(dir, 'control'), C.O_WRONLY | C.O_NONBLOCK);
  } catch (e) {
    if (errno(e) === 'ENXIO') return { kind: 'not-running' };
    return failure('unable to open supervise/control', e);
  }
  let n = -1;
  try {
    n = writeSync(fd, bytes);
  } catch (e) {
    // sv says no more than this (no error text), whatever write() failed with
    return { kind: 'error', message: 'unable to write to supervise/control', cause: e };
  } finally {
    closeSync(fd);
  }
  if (n !== bytes.length) return failure('unable to write to supervise/control', undefined);
  return { kind: 'ok' };
}

/** Create a FIFO (mode 0600) as runit's fifo_make; an existing one is left, other errors show when it is opened. */
export function makeFifo(path: string): void {
  try {
    native().mkfifo(path, 0o600);
  } catch {
    /* EEXIST, or a failure reported on stat/open */
  }
}

/**
 * dir/supervise/NAME.new written (runit's open_trunc: 0644 & ~umask, then write, close)
 * and renamed over NAME. One call to the addon where it is loaded (four of Node's fs
 * calls otherwise, as in the tests of this module alone): under emulation the calls'
 * own cost is a good part of the supervisor's start (docs/performance.md). Throws the
 * step's error with `step`: 'open' (opening or writing) or 'rename'.
 */
function replaceFile(dir: string, name: string, data: string | Buffer): void {
  const tmp = supervisePath(dir, `${name}.new`);
  const path = supervisePath(dir, name);
  const addon = optionalNative();
  if (addon) return addon.replaceFile(tmp, path, data);
  try {
    writeTrunc(tmp, data);
  } catch (e) {
    throw Object.assign(e as Error, { step: 'open' });
  }
  try {
    renameSync(tmp, path);
  } catch (e) {
    throw Object.assign(e as Error, { step: 'rename' });
  }
}

/** runit's open_trunc (0644 & ~umask) + write + close. */
function writeTrunc(path: string, data: string | Buffer): void {
  const fd = openSync(path, C.O_WRONLY | C.O_NONBLOCK | C.O_TRUNC | C.O_CREAT, 0o644);
  try {
    if (data.length) writeSync(fd, typeof data === 'string' ? Buffer.from(data) : data);
  } finally {
    closeSync(fd);
  }
}

export interface WriteStatusOptions {
  /** write supervise/pid too (runsv does only when the pid changed) */
  pid: boolean;
  /** how messages name dir/supervise/: 'supervise/' or 'log/supervise/' */
  label: string;
  /** runsv's warning for a failed step: "unable to open supervise/stat.new" and the error */
  warn: (message: string, cause: unknown) => void;
}

/**
 * runsv's update_status: supervise/pid (when asked), stat, then status, each written as
 * FILE.new and renamed over FILE, so a reader never sees half a file. A failed step is
 * warned about and ends the update, as runsv's does (a failed rename of stat.new only
 * warns). Returns true when supervise/pid was written (or not asked for).
 */
export function writeStatus(dir: string, st: Status, opts: WriteStatusOptions): boolean {
  const sup = opts.label;
  const renaming = (e: unknown) => (e as { step?: string } | null)?.step === 'rename';
  if (opts.pid) {
    try {
      replaceFile(dir, 'pid', pidFile(st.pid));
    } catch (e) {
      opts.warn(renaming(e) ? `unable to rename pid.new to ${sup}pid` : `unable to open ${sup}pid.new`, e);
      return false;
    }
  }
  try {
    replaceFile(dir, 'stat', statLine(st));
  } catch (e) {
    if (!renaming(e)) {
      opts.warn(`unable to open ${sup}stat.new`, e);
      return true;
    }
    opts.warn(`unable to rename stat.new to ${sup}stat`, e);
  }
  try {
    replaceFile(dir, 'status', encodeStatus(st));
  } catch (e) {
    opts.warn(renaming(e) ? `unable to rename status.new to ${sup}status` : `unable to open ${sup}status.new`, e);
  }
  return true;
}

/**
 * Beyond runit, beside supervise/status (which has no room for them and which runit's
 * tools read byte for byte): supervise/stats.json, written by our supervisor only.
 */
export interface SupervisorStats {
  /** times ./run was started again after it had run */
  restarts: number;
  /** how the last ./run process ended: exit code (-1 when killed) and signal number (0 if none) */
  lastExit: { code: number; signal: number } | null;
  /** beyond runit's files (src/lib/servicemodel.ts): longrun or oneshot */
  type?: 'longrun' | 'oneshot';
  /** how readiness is decided */
  readiness?: string;
  /** how and when the service became ready, while it is (src/lib/servicemodel.ts); else null */
  ready?: { how: string; pid: number; time: string; monotonic: number; afterSpawn: number } | null;
  /** declared dependencies ./run waits for (empty when it does not wait) */
  waitingFor?: Array<{ name: string; hard: boolean; why: string }>;
  /** why the last start failed, until the service is ready; else null */
  failed?: string | null;
}

/** File name of SupervisorStats in supervise/. */
export const STATS_FILE = 'stats.json';

/** Write supervise/stats.json as status is written: .new, then renamed over it. False (warned) when that failed. */
export function writeStats(dir: string, stats: SupervisorStats, warn: (message: string, cause: unknown) => void, label = 'supervise/'): boolean {
  try {
    replaceFile(dir, STATS_FILE, Buffer.from(JSON.stringify(stats) + '\n'));
    return true;
  } catch (e) {
    warn(`unable to write ${label}${STATS_FILE}`, e);
    return false;
  }
}

/** supervise/stats.json, or undefined where none is (runit's runsv, or never started). */
export function readStats(dir: string): SupervisorStats | undefined {
  try {
    const v = JSON.parse(readFileSync(supervisePath(dir, STATS_FILE), 'utf8')) as SupervisorStats;
    return typeof v.restarts === 'number' ? v : undefined;
  } catch {
    return undefined;
  }
}

/** A process a dead supervisor left running, identified by pid and start time (so a recycled pid is never touched). */
export interface Leftover {
  /** how messages name it: the service name, or NAME/log */
  label: string;
  pid: number;
  /** the process's start time in clock ticks after boot (/proc/PID/stat) */
  startTicks: number;
}

/**
 * The process recorded in dir/supervise/status, if it is still alive and still the one
 * a supervisor started in dir (src/lib/proc.ts isServiceProcess). Read it before a new
 * runsv writes its first status over it.
 */
export function findLeftover(dir: string, label: string): Leftover | undefined {
  // a directory never supervised before (every one at boot) has none: no failed open
  if (!existsSync(supervisePath(dir, 'status'))) return undefined;
  const r = readStatusFile(dir);
  if (r.kind !== 'ok' || !r.status.pid || r.status.pid === process.pid) return undefined;
  const pid = r.status.pid;
  const startTicks = processStartTicks(pid);
  if (startTicks === undefined || !isServiceProcess(pid, Number(r.status.start.sec), dir)) return undefined;
  return { label, pid, startTicks };
}

/** findLeftover() for every service in svdir (names starting with '.' skipped) and its log. */
export function findLeftovers(svdir: string): Leftover[] {
  let names: string[];
  try {
    names = readdirSync(svdir).filter((n) => !n.startsWith('.'));
  } catch {
    return [];
  }
  const out: Leftover[] = [];
  for (const name of names) {
    for (const [dir, label] of [[join(svdir, name), name], [join(svdir, name, 'log'), `${name}/log`]] as const) {
      const l = findLeftover(dir, label);
      if (l) out.push(l);
    }
  }
  return out;
}

/** Is this leftover still the same process? */
export function leftoverAlive(l: Leftover): boolean {
  return processStartTicks(l.pid) === l.startTicks;
}

export interface StopOptions {
  /** how long TERM has before KILL, in ms */
  graceMs: number;
  /** how often to look whether they are gone, in ms (default 50) */
  pollMs?: number;
  /** called for each one still alive when KILL is sent */
  onKill?: (l: Leftover) => void;
}

/**
 * Stop leftovers all at once: TERM and CONT to each one still the same process, KILL to
 * those alive after graceMs. Resolves when all are gone or killed.
 */
export async function stopLeftovers(leftovers: Leftover[], opts: StopOptions): Promise<void> {
  const victims = leftovers.filter(leftoverAlive);
  for (const v of victims) {
    signal(v.pid, 'SIGTERM');
    signal(v.pid, 'SIGCONT');
  }
  // the grace is measured on the monotonic clock: a step of the wall clock neither cuts it short nor stretches it
  const t0 = monotonicMs();
  let alive = victims;
  while (alive.length && monotonicMs() - t0 < opts.graceMs) {
    await sleep(opts.pollMs ?? 50);
    alive = alive.filter(leftoverAlive);
  }
  for (const v of alive) {
    if (!leftoverAlive(v)) continue;
    opts.onKill?.(v);
    signal(v.pid, 'SIGKILL');
  }
}
