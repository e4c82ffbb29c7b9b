// The one wait engine: after a request to runsv (sv -v up, sv restart, the library
// client's start, stop, restart, exit and wait), is the wait done, has it failed, or
// does it go on? The caller looks: reads the status (src/lib/supervise.ts readStatus) and
// asks decide(); when the answer hangs on ./check, decide() says 'check', and the caller
// runs it (src/lib/check.ts: synchronously in sv, asynchronously in the client) and asks
// again with the verdict. Between looks it sleeps pollInterval() (runit's sv: 420 ms)
// and gives up once expired() says so. sv and the client keep only their loops and
// their output.
//
// The rules are runit 2.3.0 sv's, one letter (sv's control bytes) at a time, the first
// not met ending the look:
//   u   a process in state run, and ready          d   no process, state down
//   o   the one run started (or never)              p/c paused / not paused (or no process)
//   t k restarted: down and wanted down, or a process started since the wait began, no
//       TERM pending, and ready
//   x   the runsv is gone                           C   (sv check) u, or d when wanted down
//   h a i q 1 2: at once. A runsv not running fails every wait but x's.
// Where it differs from runit:
//   - t and k compare the status's start with the wait's to the nanosecond (runit: whole
//     seconds), so a request in the second the old process started does not pass on that
//     process before runsv has read it; a restart that keeps the pid (the in-process
//     logger has the supervisor's) is still seen;
//   - readiness is ./check's (runit's) or, beyond runit, our supervisor's record in
//     supervise/stats.json for notification-fd, NOTIFY_SOCKET and one-shots
//     (src/lib/servicemodel.ts); a one-shot is up once it has run to success, and after a
//     request (sv start), once a run since the wait began has;
//   - r (the client's wait for 'run'): a process in state run, readiness aside;
//   - the wait's length is measured on the monotonic clock (runit: the wall clock);
//   - untilSupervised (the client): a runsv not running yet, or a supervise/ not made
//     yet, is a state not reached yet rather than a failure.
import { S_DOWN, S_RUN } from './status.ts';
import { readReady, readServiceModel, readyFromFile, type ReadyRecord } from './servicemodel.ts';
import { neverSupervised, type StatusResult } from './supervise.ts';
import { tainBefore, tainSeconds, type Tain } from './tai.ts';

/** How long a wait sleeps between looks, in milliseconds (runit's sv: 420 ms). */
export const POLL_MS = 420;

/** done: every letter is met; wait: look again later; fail: it cannot be met (no runsv, an unreadable status). */
export type Verdict = 'done' | 'wait' | 'fail';
/** A Verdict, or 'check': run ./check for the process in the status and ask again with its verdict. */
export type Decision = Verdict | 'check';

/** What a wait waits for, fixed when it begins. */
export interface WaitSpec {
  /** sv's letters (u d o p c t k x C h a i q 1 2, and r beyond runit), all to be met */
  acts: string;
  /** when the wait began (sv's start time): o compares the status's whole seconds with it, t and k its nanoseconds */
  t0: Tain;
  /**
   * the wait follows a request the caller sent (sv's commands, the client's start and
   * restart): a one-shot is up only once a run since t0 has succeeded. False for a pure
   * wait (sv check, the client's wait()): its last run having succeeded is enough.
   */
  request: boolean;
  /** the client's waits: a runsv not (yet) serving the directory is waited for, not a failure */
  untilSupervised: boolean;
}

/** Readiness beyond runit: our supervisor's record, when it (not ./check) decides; read once per look. */
interface Recorded {
  /** the service is a one-shot */
  oneshot: boolean;
  rec: ReadyRecord | undefined;
}

/** undefined when ./check decides readiness (runit's runsv, or a service declaring no other way). */
function recorded(dir: string): Recorded | undefined {
  if (!readyFromFile(dir)) return undefined;
  return { oneshot: readServiceModel(dir).type === 'oneshot', rec: readReady(dir) };
}

/** Did the one-shot's last run succeed (since `since`, when given)? */
function oneshotSucceeded(rec: ReadyRecord | undefined, since: Tain | undefined): boolean {
  if (rec?.how !== 'oneshot') return false;
  return since === undefined || Date.parse(rec.time) / 1000 >= tainSeconds(since);
}

/**
 * One look: is the wait for `w` done, failed, or still on, given the status just read of
 * the service in dir (the directory holding supervise/)? `check` is ./check's verdict
 * for this look, once decide() has asked for it ('check').
 */
export function decide(w: WaitSpec, read: StatusResult, dir: string, check?: boolean): Decision {
  if (read.kind === 'not-running') return w.acts[0] === 'x' ? 'done' : w.untilSupervised ? 'wait' : 'fail';
  if (read.kind === 'error') return w.untilSupervised && neverSupervised(read) ? 'wait' : 'fail';
  const st = read.status;
  let looked = false;
  let rec: Recorded | undefined;
  const record = (): Recorded | undefined => {
    if (!looked) rec = recorded(dir);
    looked = true;
    return rec;
  };
  /** Is the running process ready: the record's answer, or ./check's ('check' until known)? */
  const ready = (): boolean | 'check' => {
    const r = record();
    if (!r) return check ?? 'check';
    return r.oneshot ? oneshotSucceeded(r.rec, w.t0) : r.rec?.pid === st.pid;
  };
  for (const ch of w.acts) {
    const c = ch === 'C' ? (st.want === 'down' && !record()?.oneshot ? 'd' : 'u') : ch;
    switch (c) {
      case 'x':
        return 'wait';
      case 'u': {
        const r = record();
        // a one-shot that ran to success is up with no process
        if (r?.oneshot) {
          if (!oneshotSucceeded(r.rec, w.request && ch !== 'C' ? w.t0 : undefined)) return 'wait';
          break;
        }
        if (!st.pid || st.state !== S_RUN) return 'wait';
        const ok = ready();
        if (ok !== true) return ok || 'wait';
        break;
      }
      case 'r':
        if (!st.pid || st.state !== S_RUN) return 'wait';
        break;
      case 'd':
        if (st.pid || st.state !== S_DOWN) return 'wait';
        break;
      case 't':
      case 'k': {
        if (!st.pid && st.want === 'down') break;
        if (tainBefore(st.start, w.t0) || !st.pid || st.term) return 'wait';
        const ok = ready();
        if (ok !== true) return ok || 'wait';
        break;
      }
      case 'o':
        if ((!st.pid && w.t0.sec > st.start.sec) || (st.pid && st.want !== 'down')) return 'wait';
        break;
      case 'p':
        if (st.pid && !st.paused) return 'wait';
        break;
      case 'c':
        if (st.pid && st.paused) return 'wait';
        break;
    }
  }
  return 'done';
}

/**
 * Has a wait begun at startMs run out of its waitMs at nowMs (the time of the look)? Both
 * on the monotonic clock (monotonicMs()): a step of the wall clock neither ends a wait
 * early nor makes it last an hour (runit's sv measures the wait on the wall clock). As
 * runit's sv: more than the wait has passed.
 */
export function expired(startMs: number, nowMs: number, waitMs: number): boolean {
  return nowMs - startMs > waitMs;
}

/** The interval between looks: POLL_MS unless the caller asks for another (a positive number of ms). */
export function pollInterval(ms?: number): number {
  if (ms === undefined) return POLL_MS;
  if (!(ms > 0) || !Number.isFinite(ms)) throw new RangeError(`poll interval must be a positive number of milliseconds, not ${ms}`);
  return ms;
}
