// Beyond runit: how the supervisor learns that a start of ./run is ready, as the service
// directory's files ask (src/lib/servicemodel.ts): a newline on notification-fd (a pipe
// whose write end is fd N in ./run), READY=1 on the NOTIFY_SOCKET (supervise/notify), or
// ./check exiting 0 (run again after a longer wait each time); with none of these, ready
// once started. timeout-up bounds the wait: a start not ready in time has failed and is
// stopped. runit's runsv knows none of this (sv runs ./check itself, and only to wait).
//
// runsv's state machine calls prepare() before it spawns ./run, then spawned() or
// notSpawned(), and end() when ./run has exited; what is found is told to the owner
// (gate.ts), which keeps what dependents see.
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { startCheck } from '../lib/check.ts';
import { native, readPipe } from '../lib/native.ts';
import { monotonicNow, NOTIFY_SOCKET_NAME, type ReadinessKind, type ServiceModel } from '../lib/servicemodel.ts';
import { closeQuiet } from '../lib/sys.ts';

/** ./check as readiness: first run this long after ./run started (ms)... */
export const CHECK_FIRST_MS = 20;
/** ...then each wait twice the last, up to this (ms); only while the service is not ready. */
export const CHECK_MAX_MS = 1000;
/** How often the NOTIFY_SOCKET is read while the service is not ready (ms). */
export const NOTIFY_POLL_MS = 25;

/**
 * Who the NOTIFY_SOCKET belongs to: the user notify-socket names (an account's uid and
 * primary gid, or a numeric uid[:gid]), or the supervisor's own user ([-1, -1]) when it
 * names none. Only the owner may send to it (mode 0600).
 */
export function socketOwner(user: string): [number, number] {
  if (user === '') return [-1, -1];
  const ids = /^(\d+)(?::(\d+))?$/.exec(user);
  if (ids) return [Number(ids[1]), Number(ids[2] ?? ids[1])];
  const pw = native().getpwnam(user);
  if (!pw) throw new Error(`notify-socket names an unknown user '${user}'`);
  return pw;
}

/** The child's fds 0, 1, 2 and up, as children.ts's spawn takes them. */
export type Stdio = Array<'inherit' | 'ignore' | number>;

/** What readiness tells (gate.ts). */
export interface ReadinessOwner {
  /** ready: how, the pid of ./run, when (monotonic seconds) and how long after the spawn (s) */
  ready(how: ReadinessKind, pid: number, at: number, afterSpawn: number): void;
  /** a one-shot runs again: neither done nor failed until it ends */
  rerun(): void;
  /** not ready within timeout-up (ms): the start failed, ./run is to be stopped */
  timedOut(ms: number): void;
}

/** Readiness watchers of one start of ./run, undone when it is ready or has exited. */
interface Watch {
  spawnedAt: number;
  pid: number;
  /** this start failed (readiness timeout): its exit is not a success even if 0 */
  failed: boolean;
  /** a ./check that cannot run has been reported for this start */
  checkFailSaid?: boolean;
  undo: Array<() => void>;
}

/** The readiness of one service's ./run (never of its log). */
export class Readiness {
  private readonly dir: string;
  private readonly owner: ReadinessOwner;
  private readonly warn: (m: string, e?: unknown) => void;
  /** the watchers of the start of ./run running now */
  private current: Watch | undefined;
  /** the files as read for the spawn prepare() was called for */
  private model: ServiceModel | undefined;
  /** what prepare() made, to start watching once ./run runs */
  private arm: ((w: Watch) => void) | undefined;
  /** what prepare() made, undone if the spawn fails */
  private made: Array<() => void> | undefined;

  /** dir: the service directory; warn: runsv's warn() */
  constructor(dir: string, owner: ReadinessOwner, warn: (m: string, e?: unknown) => void) {
    this.dir = dir;
    this.owner = owner;
    this.warn = warn;
  }

  /**
   * Before ./run is spawned: the notification-fd pipe (its write end at fd N in the
   * child: stdio grows to it), or the NOTIFY_SOCKET. Returns the child's environment
   * when it is not the supervisor's (null: inherited).
   */
  prepare(m: ServiceModel, stdio: Stdio): string[] | null {
    this.model = m;
    this.arm = undefined;
    this.made = undefined;
    if (m.readiness === 'notification-fd' && m.notificationFd !== undefined) {
      try {
        const [rd, wr] = native().pipe();
        while (stdio.length < m.notificationFd) stdio.push('ignore');
        stdio[m.notificationFd] = wr;
        // the write end is the child's only: closed here right after the spawn
        this.made = [() => closeQuiet(wr), () => closeQuiet(rd)];
        this.arm = (w) => {
          closeQuiet(wr);
          let seen = '';
          const pipe = readPipe(rd, (b) => {
            if (!b) return pipe.close(); // end of file or an error: nothing more to read
            seen += b.toString('latin1');
            if (seen.includes('\n') && this.current === w) this.becomeReady('notification-fd', w);
          });
          w.undo.push(() => pipe.close());
        };
      } catch (e) {
        this.warn('unable to create the notification-fd pipe', e);
      }
    } else if (m.readiness === 'notify-socket') {
      const path = join(this.dir, 'supervise', NOTIFY_SOCKET_NAME);
      try {
        const [uid, gid] = socketOwner(m.notifySocketUser);
        const fd = native().notifySocket(path, uid, gid);
        const env: NodeJS.ProcessEnv = { ...process.env, NOTIFY_SOCKET: path };
        const close = () => {
          closeQuiet(fd);
          rmSync(path, { force: true });
        };
        this.made = [close];
        this.arm = (w) => {
          const timer = setInterval(() => {
            for (let msg = native().recvDatagram(fd); msg !== null; msg = native().recvDatagram(fd)) {
              if (msg.split('\n').includes('READY=1') && this.current === w) {
                this.becomeReady('notify-socket', w);
                return;
              }
            }
          }, NOTIFY_POLL_MS);
          w.undo.push(() => {
            clearInterval(timer);
            close();
          });
        };
        return Object.entries(env)
          .filter(([, v]) => v !== undefined)
          .map(([k, v]) => `${k}=${v}`);
      } catch (e) {
        this.warn(`unable to create supervise/${NOTIFY_SOCKET_NAME}`, e);
      }
    }
    return null;
  }

  /** ./run runs (pid, spawned at `at`, monotonic seconds): watch it as prepare() set up; bound it by timeout-up. */
  spawned(pid: number, at = monotonicNow()): void {
    this.end();
    const m = this.model!;
    const arm = this.arm;
    this.arm = undefined;
    this.made = undefined;
    const w: Watch = { spawnedAt: at, pid, failed: false, undo: [] };
    this.current = w;
    if (m.type === 'oneshot') this.owner.rerun();
    if (arm) arm(w);
    else if (m.readiness === 'check') this.poll(w, CHECK_FIRST_MS);
    else if (m.readiness === 'started') {
      this.becomeReady('started', w);
      return;
    }
    if (m.timeoutUpMs > 0) {
      const t = setTimeout(() => {
        if (this.current !== w) return;
        w.failed = true;
        this.owner.timedOut(m.timeoutUpMs);
      }, m.timeoutUpMs);
      w.undo.push(() => clearTimeout(t));
    }
  }

  /** ./run could not be spawned: undo what prepare() made. */
  notSpawned(): void {
    const made = this.made;
    this.arm = undefined;
    this.made = undefined;
    if (made) for (const u of made) u();
  }

  /** ./run has exited (or runsv exits): stop watching. True when this start was not ready within timeout-up. */
  end(): boolean {
    const w = this.current;
    if (!w) return false;
    this.current = undefined;
    for (const u of w.undo) u();
    return w.failed;
  }

  /** The start being watched is ready: stop watching, and tell. */
  private becomeReady(how: ReadinessKind, w: Watch): void {
    const now = monotonicNow();
    this.end();
    this.owner.ready(how, w.pid, now, Math.round((now - w.spawnedAt) * 1000) / 1000);
  }

  /** ./check as readiness (no notification): run it, again after a longer wait each time, until it passes. */
  private poll(w: Watch, waitMs: number): void {
    const t = setTimeout(() => {
      if (this.current !== w) return;
      // the one ./check runner (src/lib/check.ts): killed with the start it watches
      const run = startCheck(this.dir, { name: '.' });
      w.undo.push(() => run.cancel());
      void run.done.then((res) => {
        if (this.current !== w || res.end === 'cancelled') return;
        if (res.ready) return this.becomeReady('check', w);
        // a ./check that cannot run is not ready, said once per start: it will not change by itself
        if (res.end === 'failed' && !w.checkFailSaid) {
          w.checkFailSaid = true;
          this.warn(res.message);
        }
        this.poll(w, Math.min(waitMs * 2, CHECK_MAX_MS));
      });
    }, waitMs);
    w.undo.push(() => clearTimeout(t));
  }
}
