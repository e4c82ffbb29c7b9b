// The runsv state machine for one service directory and its log service, driven by
// events instead of runsv's blocking loop, so that one process can supervise many
// services. On-disk protocol (supervise/ lock, control, ok, status, stat, pid) is runit's.
//
// runsv's loop is: start what should run; wait; reap every exited child (sleeping 1 s
// when a process ran less than a second); read one control byte from each FIFO; act on
// SIGTERM; exit when asked to and everything is down. `pump()` below runs exactly that
// loop for one service whenever an event arrives. Every wait inside it (the 1 s throttle,
// control/<c> scripts) holds back only this service, as each runsv is its own process.
//
// A restart after a crash is on the hot path: between a child's exit and the next
// ./run only what runsv does happens (its status files, then the spawn, which is a
// vfork-style clone: src/runsv/children.ts). What is beyond runit (stats.json, the
// events) is held while a pass of the loop runs and written right after the spawn,
// stats.json first, then each event with the time it happened (see release()).
import type { ChildProcess } from 'node:child_process';
import { constants as C, readlinkSync, rmSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { errLine, Exit, fatalLine, warningLine } from '../lib/diag.ts';
import { execFormatError } from '../lib/exec.ts';
import { LOCK_EX, LOCK_NB, native, readPipe, type FdWatch } from '../lib/native.ts';
import { S_DOWN, S_FINISH, S_RUN, type State, type Want } from '../lib/status.ts';
import { findLeftover, makeFifo, stopLeftovers, supervisePath, writeStats, writeStatus, type Leftover, type SupervisorStats } from '../lib/supervise.ts';
import { fileAccess, fileExists, fileOpen, fileStat, inDir, isDirectory, isFifo, makeDir, type FileStat } from '../lib/files.ts';
import { closeQuiet, errnoOf as code, isoTime, readable, signal as kill, signalName, signalNumber, sleep as delay, writeQuiet } from '../lib/sys.ts';
import { taiNow, tainSeconds, type Tain } from '../lib/tai.ts';
import { monotonicNow, NOTIFY_SOCKET_NAME, readServiceModel, type ReadinessKind, type ReadyRecord, type ServiceModel } from '../lib/servicemodel.ts';
import { recogniseLogRun, type InProcessLogger } from '../svlogd/logrun.ts';
import { Svlogd } from '../svlogd/svlogd.ts';
import { spawnWatched, type ChildEnd } from './children.ts';
import type { Blocker, Coordinator, DepState, Mark, Participant } from './deps.ts';
import type { EventSink, ServiceEvent, ServiceEventKind } from './events.ts';

/** runsv's crash throttle: a process that ran less than this is started again only this long after it ended. */
export const THROTTLE_MS = 1000;
/** How often to try log/supervise/lock while another supervisor holds it (runsv blocks in flock()). */
export const LOG_LOCK_POLL_MS = 100;
/** A dead supervisor's leftover gets TERM, then KILL after this long. */
export const LEFTOVER_GRACE_MS = 5000;
/** ./check as readiness: first run this long after ./run started (ms)... */
export const CHECK_FIRST_MS = 20;
/** ...then each wait twice the last, up to this (ms); only while the service is not ready. */
export const CHECK_MAX_MS = 1000;
/** How often the NOTIFY_SOCKET is read while the service is not ready (ms). */
export const NOTIFY_POLL_MS = 25;

const SIGNALS: Record<string, NodeJS.Signals> = {
  a: 'SIGALRM', h: 'SIGHUP', i: 'SIGINT', q: 'SIGQUIT', '1': 'SIGUSR1', '2': 'SIGUSR2',
};

export interface RunsvOptions {
  /** start each service in its own session (runsvdir -P) */
  setsid?: boolean;
  /** where runsv's messages go (default: a line written to fd 2, as runsv does) */
  warn?: (line: string) => void;
  /** name used in messages: runsv's argument (default: dir as given) */
  name?: string;
  /** told of every state change (see events.ts); beyond runit */
  events?: EventSink;
  /** the other services of the scan directory (dependencies, the timeline); beyond runit */
  coordinator?: Coordinator;
  /**
   * While held, a stats.json that would say only "started once" (and ready on its start) is
   * not written into a supervise/ directory this supervisor made (nothing older to overwrite
   * there); written when the hold ends, or at once when there is more to say (beyond runit:
   * runsvdir's serveDelayMs at boot, see StatsHold).
   */
  statsHold?: StatsHold;
}

/**
 * Beyond runit: holds back the first stats.json of fresh services until release(). At boot
 * stage 2's runsvdir holds them through its first pass and releases them when it serves
 * events (before any client can be told of one): forty files of a twenty-service boot
 * that say nothing yet, out of the way of the services starting (docs/performance.md).
 */
export class StatsHold {
  private waiting: Array<() => void> | undefined = [];
  get held(): boolean {
    return this.waiting !== undefined;
  }
  /** run fn at release (at once if released) */
  later(fn: () => void): void {
    if (this.waiting) this.waiting.push(fn);
    else fn();
  }
  release(): void {
    const w = this.waiting ?? [];
    this.waiting = undefined;
    for (const fn of w) fn();
  }
}

/** Readiness watchers of one start of ./run, undone when it is ready or has exited. */
interface Readiness {
  token: object;
  spawnedAt: number;
  pid: number;
  /** this start failed (readiness timeout): its exit is not a success even if 0 */
  failed: boolean;
  undo: Array<() => void>;
}


interface ChildExit {
  s: Svd;
  /** the start this exit belongs to */
  token: object;
  /** exit code, or -1 when killed by a signal (runsv's first ./finish argument) */
  code: number;
  /** signal number, 0 if none */
  sig: number;
  /** the wait status's low byte: signal and core-dump bit (runsv's second ./finish argument) */
  low: number;
}

/** One supervised process: the service itself (svd[0]) or its log service (svd[1]). */
class Svd {
  state: State = S_DOWN;
  want: Want = 'up';
  /** runsv's C_PAUSE */
  paused = false;
  /** runsv's C_TERM */
  term = false;
  pid = 0;
  start: Tain = taiNow();
  exitCode = 0;
  /** wstat & 0xff of the last exit: ./finish's second argument */
  exitLow = 0;
  /** ./run starts so far (stats.json's restarts is this less one) */
  starts = 0;
  /** how the last ./run process ended (supervise/stats.json) */
  lastExit: SupervisorStats['lastExit'] = null;
  /** supervise/stats.json is to be written (held while the loop runs: see Runsv.release()) */
  statsDirty = false;
  /** supervise/ was made by this supervisor: no stats.json of an older one in it */
  freshSupervise = false;
  /** its first stats.json waits for RunsvOptions.statsHold */
  statsDeferred = false;
  /** identifies the current start; exits of older processes are ignored, as runsv does */
  token: object | undefined;
  lockFd = -1;
  controlFd = -1;
  controlWriteFd = -1;
  okFd = -1;
  /** the watch of controlFd (listen) */
  control: FdWatch | undefined;
  /** the log service runs as an in-process svlogd (see src/svlogd/logrun.ts) */
  logger: Svlogd | undefined;
  /** control bytes read from the FIFO, not yet acted on (runsv reads one per loop) */
  readonly bytes: string[] = [];
  readonly islog: boolean;
  /** the directory ./run runs in */
  readonly cwd: string;
  /** prefix of messages about this svd's files: '' or 'log/' */
  readonly rel: string;
  constructor(islog: boolean, cwd: string) {
    this.islog = islog;
    this.cwd = cwd;
    this.rel = islog ? 'log/' : '';
  }
  path(f: string): string {
    return supervisePath(this.cwd, f);
  }
}

export class Runsv implements Participant {
  readonly dir: string;
  readonly name: string;
  private readonly opts: RunsvOptions;
  private readonly svd: [Svd] | [Svd, Svd];
  private haslog = false;
  private logpipe: [number, number] | undefined;
  /** runsv keeps one pidchanged flag for both svds (so log/supervise/pid appears only once the log starts) */
  private pidChanged = true;
  private readonly exits: ChildExit[] = [];
  private sigterm = false;
  private pumping = false;
  private opened = false;
  private closed = false;
  private resolveDone!: () => void;
  /** the optional files (dependencies, readiness, type), read before each start of ./run */
  private model: ServiceModel;
  /** the model was read by the constructor and the first pass of the loop has not ended */
  private modelFresh = false;
  /** declared dependencies not met: ./run waits (status: down, want up) */
  private waitingFor: Blocker[] | undefined;
  private waitKey = '';
  /** set while the service is ready (stats.json's "ready") */
  private readyRec: ReadyRecord | undefined;
  /** why the last start failed, until the service is ready */
  private failedReason: string | undefined;
  private readiness: Readiness | undefined;
  private problemsSaid = '';
  /** a dependency changed while this service waits: look again */
  private kicked = false;
  /** stats.json and events are held (set at each pass of the loop, ended by release()) */
  private holding = false;
  /** events held, with when they happened */
  private held: Array<Parameters<EventSink>[0] & { at: number; mono: number }> = [];
  /** resolves when runsv would exit: want exit and the service down (and the log down) */
  readonly done: Promise<void>;

  constructor(dir: string, opts: RunsvOptions = {}) {
    this.dir = resolve(dir);
    this.name = opts.name ?? dir;
    this.opts = opts;
    this.svd = [new Svd(false, this.dir)];
    this.done = new Promise((r) => (this.resolveDone = r));
    this.model = readServiceModel(this.dir);
    this.modelFresh = true;
  }

  // ---- beyond runit: dependencies and readiness (src/lib/servicemodel.ts) ----

  declared(): { dependencies: string[]; waitsFor: string[]; restartWithDependency: boolean } {
    return this.model;
  }

  depState(): DepState {
    const main = this.svd[0];
    if (this.readyRec) return 'ready';
    if (this.failedReason !== undefined) return 'failed';
    if (main.want !== 'up' && !main.pid) return 'down';
    return 'pending';
  }

  failure(): string | undefined {
    return this.failedReason;
  }

  kick(): void {
    if (!this.waitingFor) return;
    // looked at by the pass running now, or by the next one
    this.kicked = true;
    void this.pump();
  }

  dependencyLost(dep: string): void {
    const main = this.svd[0];
    if (!main.pid || main.state !== S_RUN || main.want !== 'up') return;
    this.say(`runsv ${this.name}: ${dep} went down: stopping, to start again once it is ready`);
    this.control('t');
  }

  private info() {
    const m = this.model;
    return { type: m.type, readiness: m.readiness, dependencies: m.dependencies, waitsFor: m.waitsFor };
  }

  private mark(what: Mark): void {
    this.opts.coordinator?.mark(this.name, what, this.info());
  }

  /** Read the optional files again; say once what is wrong with them. */
  private reload(): void {
    // the first start of the first pass uses what the constructor read a moment ago
    if (!this.modelFresh) this.model = readServiceModel(this.dir);
    this.modelFresh = false;
    const said = this.model.problems.join('\n');
    if (said && said !== this.problemsSaid) for (const p of this.model.problems) this.warn(p);
    this.problemsSaid = said;
  }

  /** May ./run start now? No while declared dependencies are not met (beyond runit). */
  private gate(): boolean {
    const c = this.opts.coordinator;
    this.mark('wanted');
    const blockers = c ? c.blockers(this.name, this.model.dependencies, this.model.waitsFor) : [];
    if (!c && (this.model.dependencies.length || this.model.waitsFor.length)) {
      if (this.problemsSaid !== 'standalone') this.warn('dependencies.d and waits-for.d need runsvdir; ignored');
      this.problemsSaid = 'standalone';
    }
    const key = blockers.map((b) => `${b.name}:${b.why}`).join(',');
    if (blockers.length) {
      if (key !== this.waitKey) {
        this.waitKey = key;
        this.waitingFor = blockers;
        for (const b of blockers) {
          // a dependency that cannot start (failed, or down and not wanted up) is said
          // once; a plain wait for readiness is not
          if (b.hard && (b.why.startsWith('failed') || b.why.startsWith('down'))) c?.once(`failed:${this.name}:${b.name}:${b.why}`, `${this.name}: waiting for ${b.name} (${b.why})`);
        }
        this.writeStats(this.svd[0]);
        this.event(this.svd[0], 'waiting', { waitingFor: blockers.map((b) => b.name) });
      }
      return false;
    }
    if (this.waitingFor) {
      this.waitingFor = undefined;
      this.waitKey = '';
      this.writeStats(this.svd[0]);
    }
    this.mark('depsMet');
    return true;
  }

  /** The service is ready: record it beside supervise/ and tell the others. */
  private becomeReady(how: ReadinessKind, pid: number): void {
    const r = this.readiness;
    const now = monotonicNow();
    this.readyRec = { how, pid, time: isoTime(), monotonic: now, afterSpawn: r ? Math.round((now - r.spawnedAt) * 1000) / 1000 : 0 };
    this.failedReason = undefined;
    this.endReadiness();
    this.writeStats(this.svd[0]);
    this.mark('ready');
    this.event(this.svd[0], 'ready', { pid });
    this.opts.coordinator?.changed(this.name);
  }

  /** This start failed (a one-shot's exit, a readiness timeout): dependents see it. */
  private fail(reason: string): void {
    this.failedReason = reason;
    this.opts.coordinator?.failed(this.name, reason);
    this.writeStats(this.svd[0]);
    this.event(this.svd[0], 'failed', { reason });
    this.opts.coordinator?.changed(this.name);
  }

  /** No longer ready (./run exited). */
  private unready(): void {
    if (!this.readyRec) return;
    this.readyRec = undefined;
    this.writeStats(this.svd[0]);
    this.opts.coordinator?.changed(this.name);
    this.opts.coordinator?.lost(this.name);
  }

  private endReadiness(): void {
    const r = this.readiness;
    if (!r) return;
    this.readiness = undefined;
    for (const u of r.undo) u();
  }

  /**
   * Before ./run is spawned: the notification-fd pipe (its write end at fd N in the
   * child), or the NOTIFY_SOCKET. Returns what spawn needs and what to do after it.
   */
  private prepareReadiness(stdio: Array<'inherit' | 'ignore' | number>): { env?: NodeJS.ProcessEnv; undo: Array<() => void>; after: (pid: number, token: object) => void } {
    const m = this.model;
    const undo: Array<() => void> = [];
    let env: NodeJS.ProcessEnv | undefined;
    let arm: ((r: Readiness) => void) | undefined;
    if (m.readiness === 'notification-fd' && m.notificationFd !== undefined) {
      try {
        const [rd, wr] = native().pipe();
        while (stdio.length < m.notificationFd) stdio.push('ignore');
        stdio[m.notificationFd] = wr;
        // the write end is the child's only: closed here right after the spawn
        undo.push(() => closeQuiet(wr));
        arm = (r) => {
          closeQuiet(wr);
          let seen = '';
          const pipe = readPipe(rd, (b) => {
            if (!b) return pipe.close(); // end of file or an error: nothing more to read
            seen += b.toString('latin1');
            if (seen.includes('\n') && this.readiness === r) this.becomeReady('notification-fd', r.pid);
          });
          r.undo.push(() => pipe.close());
        };
        undo.push(() => closeQuiet(rd));
      } catch (e) {
        this.warn('unable to create the notification-fd pipe', e);
      }
    } else if (m.readiness === 'notify-socket') {
      const path = join(this.dir, 'supervise', NOTIFY_SOCKET_NAME);
      try {
        const fd = native().notifySocket(path);
        env = { ...process.env, NOTIFY_SOCKET: path };
        const close = () => {
          closeQuiet(fd);
          rmSync(path, { force: true });
        };
        undo.push(close);
        arm = (r) => {
          const timer = setInterval(() => {
            for (let msg = native().recvDatagram(fd); msg !== null; msg = native().recvDatagram(fd)) {
              if (msg.split('\n').includes('READY=1') && this.readiness === r) {
                this.becomeReady('notify-socket', r.pid);
                return;
              }
            }
          }, NOTIFY_POLL_MS);
          r.undo.push(() => {
            clearInterval(timer);
            close();
          });
        };
      } catch (e) {
        this.warn(`unable to create supervise/${NOTIFY_SOCKET_NAME}`, e);
      }
    }
    const after = (pid: number, token: object) => {
      const r: Readiness = { token, spawnedAt: monotonicNow(), pid, failed: false, undo: [] };
      this.readiness = r;
      if (m.type === 'oneshot') {
        // a new run of the task: neither done nor failed until it ends
        this.readyRec = undefined;
        this.failedReason = undefined;
        this.writeStats(this.svd[0]);
      }
      if (arm) arm(r);
      else if (m.readiness === 'check') this.pollCheck(r, CHECK_FIRST_MS);
      else if (m.readiness === 'started') {
        this.becomeReady('started', pid);
        return;
      }
      if (m.timeoutUpMs > 0) {
        const t = setTimeout(() => {
          if (this.readiness !== r) return;
          r.failed = true;
          this.warn(`not ready within ${m.timeoutUpMs} ms (timeout-up): stopping it`);
          this.fail(`not ready within ${m.timeoutUpMs} ms`);
          this.control('t');
        }, m.timeoutUpMs);
        r.undo.push(() => clearTimeout(t));
      }
    };
    return { env, undo, after };
  }

  /** ./check as readiness (no notification): run it, again after a longer wait each time, until it passes. */
  private pollCheck(r: Readiness, waitMs: number): void {
    const t = setTimeout(() => {
      if (this.readiness !== r) return;
      let child: ChildProcess;
      try {
        child = process.getBuiltinModule('node:child_process').spawn('./check', [], { cwd: this.dir, stdio: ['ignore', 'ignore', 'inherit'], argv0: './check' });
      } catch {
        this.pollCheck(r, Math.min(waitMs * 2, CHECK_MAX_MS));
        return;
      }
      child.on('error', () => undefined);
      child.on('close', (status) => {
        if (this.readiness !== r) return;
        if (status === 0) this.becomeReady('check', r.pid);
        else this.pollCheck(r, Math.min(waitMs * 2, CHECK_MAX_MS));
      });
    }, waitMs);
    r.undo.push(() => clearTimeout(t));
  }

  private say(line: string): void {
    (this.opts.warn ?? errLine)(line);
  }

  /**
   * Tell the event sink (beyond runit); the service's name, or NAME/log. While a pass of
   * the loop runs, the event is held with the time it happened (release() sends it),
   * and stats.json is always written before an event is sent.
   */
  private event(s: Svd, event: ServiceEventKind, extra: Partial<Pick<ServiceEvent, 'pid' | 'code' | 'signal' | 'waitingFor' | 'reason'>> = {}): void {
    if (!this.opts.events) return;
    const e = { event, service: s.islog ? `${this.name}/log` : this.name, ...extra };
    if (this.holding) this.held.push({ ...e, at: Date.now(), mono: monotonicNow() });
    else {
      this.flushStats();
      this.opts.events(e);
    }
  }

  /** Write the stats.json held back, then send the events held back (in order, with their times). */
  private release(): void {
    this.holding = false;
    this.modelFresh = false;
    this.flushStats();
    if (!this.held.length) return;
    const held = this.held;
    this.held = [];
    for (const { mono, ...e } of held) this.opts.events?.({ ...e, monotonic: mono });
  }

  /** ./run started: count it, tell the sink (and 'ready' too when no ./check decides readiness). */
  private started(s: Svd): void {
    s.starts++;
    this.writeStats(s);
    this.event(s, 'up', { pid: s.pid });
    if (s.islog && !fileExists(inDir(s.cwd, 'check'))) this.event(s, 'ready', { pid: s.pid });
    if (!s.islog) this.mark('spawned');
  }

  /**
   * supervise/stats.json (written .new then renamed, as status): restarts and the last
   * exit. While a pass of the loop runs, only marked: several changes in one pass are
   * one write, and none is made between a child's exit and the next spawn.
   */
  private writeStats(s: Svd): void {
    s.statsDirty = true;
    if (!this.holding) this.flushStats();
  }

  private flushStats(): void {
    for (const s of this.svd) {
      if (!s.statsDirty) continue;
      s.statsDirty = false;
      this.writeStatsNow(s);
    }
  }

  private writeStatsNow(s: Svd): void {
    const extra = s.islog
      ? {}
      : {
          type: this.model.type,
          readiness: this.model.readiness,
          ready: this.readyRec ?? null,
          waitingFor: this.waitingFor && s.want === 'up' && !s.pid ? this.waitingFor.map((b) => ({ name: b.name, hard: b.hard, why: b.why })) : [],
          failed: this.failedReason ?? null,
        };
    const hold = this.opts.statsHold;
    // ready on its start ('started', the default) is what supervise/stat says too: readers
    // look at stats.json's "ready" only for notifications and one-shots
    const readyOnStart = !extra.ready || extra.ready.how === 'started';
    if (hold?.held && s.freshSupervise && s.starts <= 1 && !s.lastExit && readyOnStart && !extra.failed && !extra.waitingFor?.length) {
      // only "started once" to say, and no older file to overwrite: when the hold ends
      if (!s.statsDeferred) {
        s.statsDeferred = true;
        hold.later(() => {
          if (s.statsDeferred && !this.closed) this.writeStatsNow(s);
        });
      }
      return;
    }
    s.statsDeferred = false;
    writeStats(s.cwd, { restarts: Math.max(0, s.starts - 1), lastExit: s.lastExit, ...extra }, (m, e) => this.warn(m, e), `${s.rel}supervise/`);
  }

  /** runsv's warn(): "runsv DIR: warning: <m>: <error>" */
  private warn(m: string, e?: unknown): void {
    this.say(warningLine(`runsv ${this.name}`, m, e));
  }

  /** runsv's fatal(): thrown as an Exit (111) whose line the caller prints. */
  private fatal(m: string, e?: unknown): never {
    throw new Exit(111, fatalLine(`runsv ${this.name}`, m, e));
  }

  /**
   * Set up supervise/ (and log/supervise/) exactly as runsv does, then start what wants up.
   * Throws Exit (runsv's "fatal:" line, exit 111) with everything opened closed again.
   */
  async open(): Promise<void> {
    try {
      await this.setup();
    } catch (e) {
      this.close(false);
      throw e;
    }
    if (this.closed) return;
    for (const s of this.svd) this.listen(s);
    this.opened = true;
    void this.pump();
  }

  private async setup(): Promise<void> {
    const main = this.svd[0];
    // chdir(dir)
    let ds: FileStat | null;
    try {
      ds = fileStat(this.dir);
    } catch (e) {
      this.fatal('unable to change to directory', e);
    }
    if (!ds) this.fatal('unable to change to directory', 'ENOENT');
    if (!isDirectory(ds)) this.fatal('unable to change to directory', 'ENOTDIR');
    if (!fileAccess(this.dir, C.X_OK)) this.fatal('unable to change to directory', 'EACCES');
    if (fileExists(inDir(this.dir, 'down'))) main.want = 'down';
    const logDir = inDir(this.dir, 'log');
    let ls: FileStat | null = null;
    try {
      ls = fileStat(logDir);
    } catch (e) {
      this.warn('unable to stat() ./log: ', e);
    }
    if (ls) {
      if (!isDirectory(ls)) this.warn('./log: not a directory.');
      else {
        this.haslog = true;
        const log = new Svd(true, logDir);
        if (fileExists(inDir(logDir, 'down'))) log.want = 'down';
        this.svd[1] = log;
        try {
          this.logpipe = native().pipe();
        } catch (e) {
          this.fatal('unable to create log pipe', e);
        }
      }
    }
    main.freshSupervise = this.makeSupervise(this.dir, './supervise');
    main.lockFd = this.openLock(main);
    if (!native().flock(main.lockFd, LOCK_EX | LOCK_NB)) this.fatal('unable to lock supervise/lock', 'EAGAIN');
    this.opts.coordinator?.add(this);
    // what a previous supervisor recorded is not true of what we start: rewritten with the
    // first pass of the loop (after the spawn, with the start counted), not a write of its own
    main.statsDirty = true;
    const log = this.svd[1];
    if (log) {
      log.freshSupervise = this.makeSupervise(logDir, './log/supervise');
      log.lockFd = this.openLock(log);
      // runsv blocks in flock() here; one event loop cannot, so wait for it by polling
      while (!native().flock(log.lockFd, LOCK_EX | LOCK_NB)) {
        await delay(LOG_LOCK_POLL_MS);
        if (this.closed) return;
      }
    }
    // what a previous supervisor left running, read before the first status update overwrites it
    const leftovers = this.svd.map((s) => findLeftover(s.cwd, `${this.name}${s.islog ? '/log' : ''}`));
    for (const s of this.svd) {
      // (runit 2.1.2 bug: for the log it stat()ed supervise/control instead of
      // log/supervise/control, so a log/supervise/control that is no FIFO went unnoticed;
      // 2.3.0 checks the right one, and so do we)
      const path = s.path('control');
      const rel = `${s.rel}supervise/control`;
      makeFifo(path);
      let st: FileStat | null;
      try {
        st = fileStat(path);
      } catch (e) {
        this.fatal(`unable to stat ${rel}`, e);
      }
      if (!st) this.fatal(`unable to stat ${rel}`, 'ENOENT');
      if (!isFifo(st)) this.fatal(`${rel} exists but is not a fifo`);
      try {
        s.controlFd = fileOpen(path, C.O_RDONLY | C.O_NONBLOCK);
        s.controlWriteFd = fileOpen(path, C.O_WRONLY | C.O_NONBLOCK);
      } catch (e) {
        this.fatal(`unable to open ${rel}`, e);
      }
      this.updateStatus(s);
    }
    for (const s of this.svd) {
      const path = s.path('ok');
      makeFifo(path);
      try {
        s.okFd = fileOpen(path, C.O_RDONLY | C.O_NONBLOCK);
      } catch (e) {
        this.fatal(`unable to read ${s.rel}supervise/ok`, e);
      }
    }
    // Beyond runit: a previous supervisor of this directory died (killed, or stage 2
    // restarted) and its processes are orphans now. Stop them before starting new ones,
    // so that no service ever runs twice.
    await Promise.all(this.svd.map((s, i) => this.stopLeftover(s, leftovers[i])));
  }

  /** Stop what a dead supervisor of this directory left running: TERM + CONT, KILL after LEFTOVER_GRACE_MS. */
  private async stopLeftover(s: Svd, l: Leftover | undefined): Promise<void> {
    if (!l) return;
    this.warn(`${s.rel}stopping pid ${l.pid} left by a previous supervisor`);
    await stopLeftovers([l], { graceMs: LEFTOVER_GRACE_MS });
  }

  /**
   * mkdir supervise 0700; if it is a dangling symlink, mkdir its target (relative to base).
   * True when this made the directory.
   */
  private makeSupervise(base: string, what: string): boolean {
    const path = inDir(base, 'supervise');
    try {
      makeDir(path, 0o700);
      return true;
    } catch {
      /* exists, or a symlink: as runsv, look at the link */
    }
    let target: string;
    try {
      target = readlinkSync(path);
    } catch (e) {
      const c = code(e);
      if (c !== 'ENOENT' && c !== 'EINVAL') this.fatal(`unable to readlink ${what}`, e);
      return false;
    }
    if (Buffer.byteLength(target) >= 256) this.fatal(`unable to readlink ${what}: name too long`);
    try {
      makeDir(isAbsolute(target) ? target : join(base, target), 0o700);
      return true;
    } catch {
      /* as runsv: a failure shows when the lock is opened */
      return false;
    }
  }

  private openLock(s: Svd): number {
    try {
      return fileOpen(s.path('lock'), C.O_WRONLY | C.O_NONBLOCK | C.O_APPEND | C.O_CREAT, 0o600);
    } catch (e) {
      this.fatal(`unable to open ${s.rel}supervise/lock`, e);
    }
  }

  /**
   * Read control bytes as they come; each is acted on in runsv's loop order. A poll of the
   * FIFO by the addon (no net.Socket: its stream state, made for each of the boot's
   * services, was a measurable part of the supervisor's first pass under emulation). We
   * hold the FIFO's write end too, so it never ends; a read error is told once.
   */
  private listen(s: Svd): void {
    s.control = native().watchFd(s.controlFd, (buf, e) => {
      if (buf) {
        for (const byte of buf) s.bytes.push(String.fromCharCode(byte));
        void this.pump();
      } else if (e) this.warn(`unable to read ${s.rel}supervise/control`, e);
    });
  }

  private pending(): boolean {
    return this.kicked || this.exits.length > 0 || this.sigterm || this.svd.some((s) => s.bytes.length > 0);
  }

  /** runsv's main loop, run while there is something to do. */
  private async pump(): Promise<void> {
    if (this.pumping || this.closed || !this.opened) return;
    this.pumping = true;
    try {
      for (;;) {
        this.holding = true;
        await this.startWanted();
        if (this.closed || !this.pending()) break;
        await this.iteration();
        if (this.closed) break;
      }
    } catch (e) {
      this.warn('internal error', e instanceof Error ? e.message : e);
    } finally {
      this.pumping = false;
      this.release();
    }
    if (!this.closed && this.pending()) setImmediate(() => void this.pump());
  }

  /** Top of runsv's loop: start the log if it wants up, the service if it wants up or must finish. */
  private async startWanted(): Promise<void> {
    this.kicked = false;
    const [main, log] = this.svd;
    if (log && !log.pid && log.want === 'up') await this.startService(log);
    if (this.closed) return;
    if (!main.pid && (main.want === 'up' || main.state === S_FINISH)) await this.startService(main);
  }

  /** One pass of runsv's loop after the wait. */
  private async iteration(): Promise<void> {
    let ex: ChildExit | undefined;
    while ((ex = this.exits.shift())) await this.childExited(ex);
    const [main, log] = this.svd;
    const b0 = main.bytes.shift();
    if (b0 !== undefined) await this.ctrl(main, b0);
    const b1 = log?.bytes.shift();
    if (log && b1 !== undefined) await this.ctrl(log, b1);
    if (this.sigterm) {
      this.sigterm = false;
      await this.ctrl(main, 'x');
    }
    if (main.want === 'exit' && main.state === S_DOWN) {
      if (!log || !log.pid) {
        this.close(true);
        return;
      }
      if (log.want !== 'exit') {
        log.want = 'exit';
        this.updateStatus(log);
        // closing our ends of the log pipe lets the logger see EOF once the service is gone
        if (this.logpipe) {
          for (const fd of this.logpipe) closeQuiet(fd);
          this.logpipe = undefined;
        }
      }
    }
  }

  /** runsv's update_status: pid (only when changed), stat, status; each written .new then renamed. */
  private updateStatus(s: Svd): void {
    const st = { start: s.start, pid: s.pid, paused: s.paused, want: s.want, term: s.term, state: s.state };
    const pidWritten = writeStatus(s.cwd, st, { pid: this.pidChanged, label: `${s.rel}supervise/`, warn: (m, e) => this.warn(m, e) });
    if (this.pidChanged && pidWritten) this.pidChanged = false;
  }

  /**
   * runsv's custom(): run control/<c> if it is there and u+x, stdout to the log pipe,
   * and wait for it; true (signal suppressed) when it exited 0. Never for the log service.
   */
  private async custom(s: Svd, c: string): Promise<boolean> {
    if (s.islog) return false;
    const rel = `control/${c}`;
    const path = inDir(this.dir, rel);
    let st: FileStat | null;
    try {
      // no exception for the usual case, a missing script (one per start)
      st = fileStat(path);
    } catch (e) {
      this.warn(`unable to stat ${rel}`, e);
      return false;
    }
    if (!st || !(st.mode & 0o100)) return false;
    this.release(); // the script may take its time: what happened so far is told first
    const out = this.haslog && this.logpipe ? this.logpipe[1] : 'inherit';
    return new Promise((res) => {
      let child: ChildProcess;
      try {
        const enoexec = execFormatError(path);
        if (enoexec) throw Object.assign(new Error(enoexec), { code: enoexec });
        child = process.getBuiltinModule('node:child_process').spawn(rel, [], { cwd: this.dir, argv0: rel, stdio: ['inherit', out, 'inherit'] });
      } catch (e) {
        // runsv's child fails the same way and exits 111: the signal is sent
        this.say(fatalLine(`runsv ${this.name}`, 'unable to run control/?', e));
        res(false);
        return;
      }
      child.on('error', (e) => {
        this.say(fatalLine(`runsv ${this.name}`, 'unable to run control/?', e));
        res(false);
      });
      // runsv tests wait_exitcode() == 0, and a script killed by a signal has exit code 0
      child.on('exit', (status) => res(!status));
    });
  }

  private async stopService(s: Svd): Promise<void> {
    if (!s.islog && s.pid) this.mark('stopAsked');
    if (s.pid && !(await this.custom(s, 't'))) {
      this.signal(s, 'SIGTERM');
      s.term = true;
      this.updateStatus(s);
    }
    if (s.want === 'down') {
      if (s.pid) this.signal(s, 'SIGCONT');
      await this.custom(s, 'd');
      return;
    }
    if (s.want === 'exit') {
      if (s.pid) this.signal(s, 'SIGCONT');
      await this.custom(s, 'x');
    }
  }

  private async startService(s: Svd): Promise<void> {
    let argv: string[];
    if (s.state === S_FINISH) {
      argv = ['./finish', String(s.exitCode), String(s.exitLow)];
    } else {
      if (!s.islog) {
        this.reload();
        if (!this.gate()) return;
      }
      argv = ['./run'];
      await this.custom(s, 'u');
    }
    if (s.pid) await this.stopService(s); // runsv: "should never happen"
    if (this.closed) return;
    const stdio: Array<'inherit' | 'ignore' | number> = ['inherit', 'inherit', 'inherit'];
    if (this.haslog && this.logpipe) {
      if (s.islog) stdio[0] = this.logpipe[0];
      else stdio[1] = this.logpipe[1];
    }
    const token = {};
    s.token = token;
    const prog = argv[0]!;
    if (s.islog && prog === './run' && this.logpipe) {
      const inproc = recogniseLogRun(inDir(s.cwd, 'run'));
      if (inproc) {
        this.startLogger(s, inproc, this.logpipe[0], token);
        return;
      }
    }
    const ready = !s.islog && prog === './run' ? this.prepareReadiness(stdio) : undefined;
    let pid = 0;
    let err: unknown;
    try {
      // as runsv's fork + execve(./run) in the directory: the exec's own error (ENOENT,
      // EACCES, ENOEXEC for a script without #!) is thrown here
      const envp = ready?.env ? Object.entries(ready.env).filter(([, v]) => v !== undefined).map(([k, v]) => `${k}=${v}`) : null;
      const fds = stdio.map((f, i) => (f === 'inherit' ? i : f === 'ignore' ? -1 : f));
      pid = spawnWatched(prog, argv, envp, s.cwd, fds, !!this.opts.setsid, (end: ChildEnd) => {
        this.exits.push({ s, token, ...end });
        void this.pump();
      });
    } catch (e) {
      err = e;
    }
    if (s.state !== S_FINISH) {
      s.start = taiNow();
      s.state = S_RUN;
    }
    s.paused = false;
    s.term = false;
    if (!pid) {
      // runsv's child prints this and exits 111; no process, so status is left alone
      if (ready) for (const u of ready.undo) u();
      this.say(fatalLine(`runsv ${this.name}`, `unable to start ${s.rel}${prog}`, err));
      this.exits.push({ s, token, code: 111, sig: 0, low: 0 });
      return;
    }
    s.pid = pid;
    this.pidChanged = true;
    this.updateStatus(s);
    if (prog === './finish') this.event(s, 'finish', { pid: s.pid });
    else this.started(s);
    if (ready) {
      this.endReadiness();
      ready.after(pid, token);
    }
    // runsv's status is written and ./run runs: now what we keep beyond runit
    this.release();
  }

  /**
   * log/run is `exec svlogd ...` and svlogd is this executable: run the logger in this
   * process instead of starting a Node process for it. It has the supervisor's pid in
   * supervise/, takes the same signals and ends as a process would.
   */
  private startLogger(s: Svd, run: InProcessLogger, input: number, token: object): void {
    const out = run.stderrToStdout ? 1 : 2;
    const lg = new Svlogd({
      ...run.settings,
      cwd: s.cwd,
      stderrFd: out,
      stderr: out === 1 ? (b) => writeQuiet(1, b) : undefined,
    });
    if (s.state !== S_FINISH) {
      s.start = taiNow();
      s.state = S_RUN;
    }
    s.paused = false;
    s.term = false;
    s.pid = lg.pid;
    s.logger = lg;
    this.pidChanged = true;
    this.updateStatus(s);
    lg.once('exit', (status: number | null, signal: NodeJS.Signals | null) => {
      const sig = signal ? signalNumber(signal) : 0;
      this.exits.push({ s, token, code: sig ? -1 : (status ?? 0), sig, low: sig });
      void this.pump();
    });
    lg.start(input);
    this.started(s);
  }

  /** Send a signal to what an svd runs: a process, or the in-process logger. */
  private signal(s: Svd, sig: NodeJS.Signals): void {
    if (s.logger) s.logger.kill(sig);
    else kill(s.pid, sig);
  }

  /** A child of this runsv is gone: runsv's reaping code. */
  private async childExited(ex: ChildExit): Promise<void> {
    const s = ex.s;
    if (s.token !== ex.token) return; // not the process this svd is running now
    const sigName = signalName(ex.sig);
    this.event(s, 'exit', { ...(s.pid ? { pid: s.pid } : {}), code: ex.code, ...(sigName ? { signal: sigName } : {}) });
    if (s.state !== S_FINISH) {
      s.lastExit = { code: ex.code, signal: ex.sig };
      if (!s.islog) this.ranOut(s, ex, sigName);
      this.writeStats(s);
    }
    s.token = undefined;
    s.logger = undefined;
    s.pid = 0;
    this.pidChanged = true;
    s.term = false;
    if (!s.islog) {
      s.exitCode = ex.code;
      s.exitLow = ex.low;
      // runsv opens ./finish for reading; a stat first spares the common case an exception
      const finish = inDir(this.dir, 'finish');
      if (s.state !== S_FINISH && fileExists(finish) && readable(finish)) {
        s.state = S_FINISH;
        this.updateStatus(s);
        return;
      }
    }
    s.state = S_DOWN;
    const deadline = tainSeconds(s.start) + THROTTLE_MS / 1000;
    s.start = taiNow();
    this.updateStatus(s);
    this.event(s, 'down');
    // runsv sleeps a second when the process ran less than one (a crash loop's throttle);
    // this holds back this service only, as each runsv is a process of its own
    if (tainSeconds(s.start) < deadline) {
      this.release();
      await delay(THROTTLE_MS);
    }
  }

  /** ./run ended (beyond runit): a one-shot's result, or a longrun no longer ready. */
  private ranOut(s: Svd, ex: ChildExit, sigName: string | undefined): void {
    const r = this.readiness;
    const timedOut = r?.failed ?? false;
    this.endReadiness();
    this.mark('exited');
    const how = sigName ? `killed by ${sigName}` : `exited ${ex.code}`;
    if (this.model.type === 'oneshot') {
      // a task: done, whatever the result; runsv would start it again while it wants up
      s.want = 'down';
      if (ex.code === 0 && !timedOut) this.becomeReady('oneshot', 0);
      else if (!timedOut) {
        this.warn(`one-shot failed: ${how}`);
        this.fail(how);
      }
      return;
    }
    const wasReady = !!this.readyRec;
    this.unready();
    if (!wasReady && s.want === 'up' && !timedOut && !s.term) this.fail(`${how} before it was ready`);
  }

  /** One control byte, as runsv's ctrl(); unknown bytes are ignored. */
  private async ctrl(s: Svd, c: string): Promise<void> {
    switch (c) {
      case 'd':
        s.want = 'down';
        this.updateStatus(s);
        if (!s.islog && this.waitingFor) {
          this.waitingFor = undefined;
          this.waitKey = '';
          this.writeStats(s);
        }
        if (s.state === S_RUN) await this.stopService(s);
        break;
      case 'u':
        s.want = 'up';
        this.updateStatus(s);
        if (s.state === S_DOWN) await this.startService(s);
        break;
      case 'x':
        if (s.islog) break;
        s.want = 'exit';
        this.updateStatus(s);
        if (s.state === S_RUN) await this.stopService(s);
        break;
      case 't':
        if (s.state === S_RUN) await this.stopService(s);
        break;
      case 'k':
        if (s.state === S_RUN && !(await this.custom(s, c))) this.signal(s, 'SIGKILL');
        s.state = S_DOWN;
        break;
      case 'p':
        if (s.state === S_RUN && !(await this.custom(s, c))) this.signal(s, 'SIGSTOP');
        s.paused = true;
        this.updateStatus(s);
        break;
      case 'c':
        if (s.state === S_RUN && !(await this.custom(s, c))) this.signal(s, 'SIGCONT');
        s.paused = false;
        this.updateStatus(s);
        break;
      case 'o':
        s.want = 'down';
        this.updateStatus(s);
        if (s.state === S_DOWN) await this.startService(s);
        break;
      default: {
        const sig = SIGNALS[c];
        if (sig && s.state === S_RUN && !(await this.custom(s, c))) this.signal(s, sig);
      }
    }
  }

  /** runsv's SIGTERM: as the control byte 'x'. */
  terminate(): void {
    // runsv blocks TERM while it sets up: acted on at the first pass of the loop
    this.sigterm = true;
    void this.pump();
  }

  /** Send a control byte to the service from inside the process (tests, runsvdir). */
  control(c: string, log = false): void {
    const s = log ? this.svd[1] : this.svd[0];
    if (!s) return;
    s.bytes.push(c);
    void this.pump();
  }

  /** Pids of the processes this runsv has running now (service, log). */
  pids(): number[] {
    // an in-process logger has our own pid: never signal ourselves through it
    return this.svd.map((s) => s.pid).filter((p) => p > 0 && p !== process.pid);
  }

  /** Give up everything without touching the processes (runsv's exit). */
  close(resolveDone = true): void {
    if (this.closed) return;
    this.closed = true;
    this.endReadiness();
    this.opts.coordinator?.remove(this);
    for (const s of this.svd) {
      s.control?.close();
      s.control = undefined;
      closeQuiet(s.controlFd);
      for (const fd of [s.controlWriteFd, s.okFd, s.lockFd]) closeQuiet(fd);
      s.controlFd = s.controlWriteFd = s.okFd = s.lockFd = -1;
    }
    if (this.logpipe) for (const fd of this.logpipe) closeQuiet(fd);
    this.logpipe = undefined;
    if (resolveDone) this.resolveDone();
  }
}
