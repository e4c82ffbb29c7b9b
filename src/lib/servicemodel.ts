// Beyond runit: optional files in a service directory that declare dependencies,
// readiness and one-shot tasks (docs/service-model.md). runit's runsv ignores files it
// does not know, so a directory with them still works under runit; one without them
// behaves exactly as in runit under ours.
//
//   dependencies.d/NAME       start only after NAME (in the same scan directory) is ready
//   waits-for.d/NAME          start after NAME is ready or has failed
//   restart-with-dependency   stop (and start again) with a dependencies.d service that goes down
//   notification-fd           a number N: the service writes a newline on fd N when ready
//   notify-socket             $NOTIFY_SOCKET is set; a datagram "READY=1" there means ready;
//                             the file may name the user (or uid[:gid]) the socket is for
//   type                      "oneshot": ./run is a task (ready when it exits 0), or "longrun"
//   timeout-up                milliseconds to become ready, else the start failed (0: no bound)
//
// Readiness is recorded beside supervise/status, which stays runit's 20 bytes: in
// supervise/stats.json ("ready": a ReadyRecord while the service is ready, else null).
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readStats } from './supervise.ts';
import { errnoOf } from './sys.ts';

export const DEPENDENCIES_DIR = 'dependencies.d';
export const WAITS_FOR_DIR = 'waits-for.d';
export const RESTART_WITH_DEPENDENCY = 'restart-with-dependency';
export const NOTIFICATION_FD = 'notification-fd';
export const NOTIFY_SOCKET_FILE = 'notify-socket';
export const TYPE_FILE = 'type';
export const TIMEOUT_UP = 'timeout-up';
/** the socket $NOTIFY_SOCKET names, in supervise/ */
export const NOTIFY_SOCKET_NAME = 'notify';

/** The lowest fd notification-fd may name (0-2 are the service's stdio). */
export const MIN_NOTIFICATION_FD = 3;
/** The highest fd notification-fd may name. */
export const MAX_NOTIFICATION_FD = 1023;

export type ServiceType = 'longrun' | 'oneshot';
/** How readiness is decided: the first that applies, in this order. */
export type ReadinessKind = 'oneshot' | 'notification-fd' | 'notify-socket' | 'check' | 'started';

export interface ServiceModel {
  /** dependencies.d/: names that must be ready first */
  dependencies: string[];
  /** waits-for.d/: names that must be ready or have failed first */
  waitsFor: string[];
  restartWithDependency: boolean;
  type: ServiceType;
  /** notification-fd's number, when the file is there and valid */
  notificationFd: number | undefined;
  notifySocket: boolean;
  /** the user notify-socket names, to whom the socket belongs ('' when it names none: the supervisor's user) */
  notifySocketUser: string;
  hasCheck: boolean;
  /** timeout-up in ms; 0 = no bound */
  timeoutUpMs: number;
  readiness: ReadinessKind;
  /** problems with the files, one line each (reported by the supervisor) */
  problems: string[];
}

/** The names in a directory (no dot files), sorted; none when it is absent (path undefined). */
function names(dir: string | undefined, problems: string[], what: string): string[] {
  if (dir === undefined) return [];
  try {
    return readdirSync(dir).filter((n) => !n.startsWith('.')).sort();
  } catch (e) {
    const c = errnoOf(e);
    if (c !== 'ENOENT' && c !== 'ENOTDIR') problems.push(`unable to read ${what}: ${c ?? String(e)}`);
    return [];
  }
}

function text(path: string | undefined): string | undefined {
  if (path === undefined) return undefined;
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

function present(path: string | undefined): boolean {
  return path !== undefined && existsSync(path);
}

/** Read the optional files of a service directory (cheap: one readdir, then only the files present). */
export function readServiceModel(dir: string): ServiceModel {
  const problems: string[] = [];
  // one readdir first (it runs before every start of ./run): most service directories
  // have none of these files, and each absent one would cost a failed open or stat. If
  // the directory cannot be listed, every file is tried and says what is wrong.
  let listed: string[] | undefined;
  try {
    listed = readdirSync(dir);
  } catch {
    /* tried one by one */
  }
  const at = (name: string): string | undefined => (listed === undefined || listed.includes(name) ? join(dir, name) : undefined);
  const dependencies = names(at(DEPENDENCIES_DIR), problems, DEPENDENCIES_DIR);
  const waitsFor = names(at(WAITS_FOR_DIR), problems, WAITS_FOR_DIR).filter((n) => !dependencies.includes(n));
  let type: ServiceType = 'longrun';
  const t = text(at(TYPE_FILE));
  if (t !== undefined) {
    const v = t.trim();
    if (v === 'oneshot' || v === 'longrun') type = v;
    else problems.push(`${TYPE_FILE}: expected oneshot or longrun, not '${v}'; taken as longrun`);
  }
  let notificationFd: number | undefined;
  const nf = text(at(NOTIFICATION_FD));
  if (nf !== undefined) {
    const v = nf.trim();
    const n = /^\d+$/.test(v) ? Number(v) : NaN;
    if (n >= MIN_NOTIFICATION_FD && n <= MAX_NOTIFICATION_FD) notificationFd = n;
    else problems.push(`${NOTIFICATION_FD}: expected a number from ${MIN_NOTIFICATION_FD} to ${MAX_NOTIFICATION_FD}, not '${v}'; ignored`);
  }
  let timeoutUpMs = 0;
  const tu = text(at(TIMEOUT_UP));
  if (tu !== undefined) {
    const v = tu.trim();
    if (/^\d+$/.test(v)) timeoutUpMs = Number(v);
    else problems.push(`${TIMEOUT_UP}: expected milliseconds, not '${v}'; no bound`);
  }
  const notifySocket = present(at(NOTIFY_SOCKET_FILE));
  const notifySocketUser = notifySocket ? (text(at(NOTIFY_SOCKET_FILE)) ?? '').trim() : '';
  const hasCheck = present(at('check'));
  const readiness: ReadinessKind =
    type === 'oneshot' ? 'oneshot' : notificationFd !== undefined ? 'notification-fd' : notifySocket ? 'notify-socket' : hasCheck ? 'check' : 'started';
  return {
    dependencies,
    waitsFor,
    restartWithDependency: present(at(RESTART_WITH_DEPENDENCY)),
    type,
    notificationFd,
    notifySocket,
    notifySocketUser,
    hasCheck,
    timeoutUpMs,
    readiness,
    problems,
  };
}

/** stats.json's "ready" while the service is ready. */
export interface ReadyRecord {
  /** how readiness was known */
  how: ReadinessKind;
  /** the process that became ready (0 for a one-shot that has ended) */
  pid: number;
  /** wall clock, ISO 8601 */
  time: string;
  /** seconds on the monotonic (boot) clock */
  monotonic: number;
  /** seconds from spawning ./run to ready */
  afterSpawn: number;
}

/** The readiness record in supervise/stats.json, or undefined when the service is not ready (or runit's runsv serves it). */
export function readReady(dir: string): ReadyRecord | undefined {
  return (readStats(dir)?.ready as ReadyRecord | null | undefined) ?? undefined;
}

/** Is readiness of this kind told by supervise/stats.json's record (not by the process running, or ./check)? */
export function readinessRecorded(kind: string | undefined): boolean {
  return kind === 'notification-fd' || kind === 'notify-socket' || kind === 'oneshot';
}

/**
 * Does readiness of the service in dir come from supervise/stats.json rather than
 * ./check? True for notification-fd, notify-socket and one-shots under our supervisor
 * (which writes supervise/stats.json; runit's runsv does not).
 */
export function readyFromFile(dir: string): boolean {
  if (!readinessRecorded(readServiceModel(dir).readiness)) return false;
  return present(join(dir, 'supervise', 'stats.json'));
}

/** Seconds on the monotonic clock, which on Linux counts from boot (as /proc/uptime, less suspend). */
export function monotonicNow(): number {
  return Number(process.hrtime.bigint() / 1000n) / 1e6;
}
