// The runsv state machine for one service directory and its log service, driven by
// events instead of runsv's blocking loop, so that one process can supervise many
// services. On-disk protocol (supervise/ lock, control, ok, status, stat, pid) is runit's.
// Read it beside runit's src/runsv.c: updateStatus, custom, stopService, startService
// and ctrl are its functions of those names, open() its main() up to the loop, pump()
// its loop, childExited() the reaping in it.
//
// runsv's loop is: start what should run; wait; reap every exited child (sleeping 1 s
// when a process ran less than a second); read one control byte from each FIFO; act on
// SIGTERM; exit when asked to and everything is down. `pump()` below runs exactly that
// loop for one service whenever an event arrives. Every wait inside it (the 1 s throttle,
// control/<c> scripts) holds back only this service, as each runsv is its own process.
//
// Beyond runit, each in a module the state machine calls: report.ts (stats.json and the
// events), gate.ts (declared dependencies, and what dependents see), readiness.ts
// (notification-fd, NOTIFY_SOCKET, ./check, timeout-up), logger.ts (log/run in-process).
//
// A restart after a crash is on the hot path: between a child's exit and the next
// ./run less happens than in runsv: the spawn (a vfork-style clone:
// src/runsv/children.ts) comes first, then runsv's status files, the down state and the
// run state in its order (holdDown()). What is beyond runit (stats.json, the events) is
// held while a pass of the loop runs and written right after the spawn, stats.json
// first, then each event with the time it happened (see release()).
import type { ChildProcess } from 'node:child_process';
import { constants as C, readlinkSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { errLine, Exit, fatalLine, warningLine } from '../lib/diag.ts';
import type { EventSink } from '../lib/events.ts';
import { execFormatError } from '../lib/exec.ts';
import { fileAccess, fileExists, fileKind, fileOpen, fileStat, inDir, isFifo, makeDir, S_IFDIR, type FileStat } from '../lib/files.ts';
import { LOCK_EX, LOCK_NB, native, type FdWatch } from '../lib/native.ts';
import { S_DOWN, S_FINISH, S_RUN, type State, type Status, type Want } from '../lib/status.ts';
import { findLeftover, makeFifo, stopLeftovers, supervisePath, writeStatus, type Leftover } from '../lib/supervise.ts';
import { closeQuiet, errnoOf as code, monotonicMs, outOfFds, readable, signal as kill, signalName, sleep as delay } from '../lib/sys.ts';
import { tainFromMs, taiNow, type Tain } from '../lib/tai.ts';
import type { Prestarted } from '../lib/prestart.ts';
import { monotonicNow } from '../lib/servicemodel.ts';
import type { Svlogd } from '../svlogd/svlogd.ts';
import { adoptWatched, spawnWatched, type ChildEnd } from './children.ts';
import type { Coordinator } from './deps.ts';
import { Gate } from './gate.ts';
import { inProcessLogger, runLogger } from './logger.ts';
import { Readiness, type Stdio } from './readiness.ts';
import { Report, SvdStats, type StatsHold } from './report.ts';
import { Rewrite } from './rewrite.ts';

/** runsv's crash throttle: a process that ran less than this is started again only this long after it ended. */
export const THROTTLE_MS = 1000;
/** runsv's sleep after a failed fork before it tries again (ms). */
export const FORK_RETRY_MS = 5000;
/** How often to try log/supervise/lock while another supervisor holds it (runsv blocks in flock()). */
export const LOG_LOCK_POLL_MS = 100;
/** A dead supervisor's leftover gets TERM, then KILL after this long. */
export const LEFTOVER_GRACE_MS = 5000;
/**
 * While the supervisor is going away (leave()): how long after a change the status files
 * and stats.json are written (ms). A process that stops on its TERM is down sooner, so its
 * stop is written once, as down; one that holds on is seen as stopping after this long.
 */
export const LEAVE_WRITE_DELAY_MS = 50;

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
  /** told of every state change (src/lib/events.ts); beyond runit */
  events?: EventSink;
  /** the other services of the scan directory (dependencies, the timeline); beyond runit */
  coordinator?: Coordinator;
  /** holds back a fresh service's first stats.json (report.ts StatsHold); beyond runit */
  statsHold?: StatsHold;
  /** ./run already started by the boot's prestart (src/lib/prestart.ts): adopted as the first start; beyond runit */
  prestarted?: Prestarted;
  /**
   * Did the supervisor's helper make this supervise/ (the service's; log: its log's)? Then
   * it holds nothing older though this one's mkdir found it there (src/runsvdir's
   * prepareSupervise for a large directory's first pass); beyond runit
   */
  madeForUs?: (log: boolean) => boolean;
}

/** A child's end (children.ts), for the svd it was started by. */
interface ChildExit extends ChildEnd {
  s: Svd;
  /** the start this exit belongs to */
  token: object;
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
  /** start, on the monotonic clock (ms): how long the process ran, whatever the wall clock did */
  startMs = monotonicMs();
  exitCode = 0;
  /** wstat & 0xff of the last exit: ./finish's second argument */
  exitLow = 0;
  /** identifies the current start; exits of older processes are ignored, as runsv does */
  token: object | undefined;
  lockFd = -1;
  controlFd = -1;
  controlWriteFd = -1;
  okFd = -1;
  /** the watch of controlFd (listen) */
  control: FdWatch | undefined;
  /** the log service runs as an in-process svlogd (logger.ts) */
  logger: Svlogd | undefined;
  /** control bytes read from the FIFO, not yet acted on (runsv reads one per loop) */
  readonly bytes: string[] = [];
  /** beyond runit: what its supervise/stats.json says (report.ts) */
  readonly stats = new SvdStats();
  /** beyond runit: its status files written again after a failed write (rewrite.ts); set by Runsv */
  rewrite: Rewrite | undefined;
  /**
   * The down state of a process that ended and is started again at once, written right
   * after that start instead of before it (Runsv.holdDown): runsv's order of records, its
   * ./run a few file replaces sooner.
   */
  heldDown: Status | undefined;
  /** its status files are written and supervise/ok is open (Runsv.announce) */
  announced = false;
  readonly islog: boolean;
  /** the directory ./run runs in */
  readonly cwd: string;
  /** prefix of messages about this svd's files: '' or 'log/' */
  readonly rel: string;
  /** islog: svd[1]; cwd: the directory ./run runs in */
  constructor(islog: boolean, cwd: string) {
    this.islog = islog;
    this.cwd = cwd;
    this.rel = islog ? 'log/' : '';
  }
  /** a file in its supervise/ */
  path(f: string): string {
    return supervisePath(this.cwd, f);
  }
}

export class Runsv {
  readonly dir: string;
  readonly name: string;
  private readonly opts: RunsvOptions;
  private readonly svd: [Svd] | [Svd, Svd];
  private haslog = false;
  private logpipe: [number, number] | undefined;
  /** the boot's prestart started ./run: adopted instead of the first spawn */
  private prestarted: Prestarted | undefined;
  /** runsv keeps one pidchanged flag for both svds (so log/supervise/pid appears only once the log starts) */
  private pidChanged = true;
  private readonly exits: ChildExit[] = [];
  private sigterm = false;
  /** the supervisor is going away (leave()): status files written later, no crash throttle for what stops */
  private leaving = false;
  /** leaving: the svds whose status files wait for writeTimer */
  private readonly unwritten = new Set<Svd>();
  private writeTimer: NodeJS.Timeout | undefined;
  private pumping = false;
  private opened = false;
  private closed = false;
  private resolveDone!: () => void;
  /** beyond runit: supervise/stats.json and the events */
  private readonly report: Report;
  /** beyond runit: the declared dependencies, and what dependents see of this service */
  private readonly gate: Gate;
  /** beyond runit: how ./run tells that it is ready */
  private readonly readiness: Readiness;
  /** resolves when runsv would exit: want exit and the service down (and the log down) */
  readonly done: Promise<void>;

  /** dir: the service directory (runsv's argument); its optional files are read now, supervise/ is set up by open() */
  constructor(dir: string, opts: RunsvOptions = {}) {
    this.dir = resolve(dir);
    this.name = opts.name ?? dir;
    this.opts = opts;
    this.prestarted = opts.prestarted;
    const main = this.newSvd(false, this.dir);
    this.svd = [main];
    this.done = new Promise((r) => (this.resolveDone = r));
    const warn = (m: string, e?: unknown) => this.warn(m, e);
    this.report = new Report(this.name, this.svd, opts.events, opts.statsHold, () => this.gate.stats(), warn);
    this.gate = new Gate(this.name, this.dir, opts.coordinator, this.report, main, { say: (line) => this.say(line), warn, look: () => void this.pump(), stop: () => this.control('t') });
    this.readiness = new Readiness(this.dir, this.gate, warn);
  }

  /** Where runsv's messages go: a line written to fd 2 unless RunsvOptions.warn says. */
  private say(line: string): void {
    (this.opts.warn ?? errLine)(line);
  }

  /** runsv's warn(): "runsv DIR: warning: <m>: <error>" */
  private warn(m: string, e?: unknown): void {
    this.say(warningLine(`runsv ${this.name}`, m, e));
  }

  /** runsv's fatal(): thrown as an Exit (111) whose line the caller prints. */
  private fatal(m: string, e?: unknown): never {
    throw new Exit(111, fatalLine(`runsv ${this.name}`, m, e), e);
  }

  /** An svd whose status files are written again after a failed write (rewrite.ts). */
  private newSvd(islog: boolean, cwd: string): Svd {
    const s = new Svd(islog, cwd);
    s.rewrite = new Rewrite(() => this.writeStatusFiles(s), (m, e) => this.warn(m, e));
    return s;
  }

  /** runsv's update_status: pid (only when changed), stat, status; each written .new then renamed. */
  private updateStatus(s: Svd): void {
    s.heldDown = undefined; // what is written now says more than a held down state
    if (!s.announced) {
      this.announce(s);
      return;
    }
    if (this.leaving) {
      this.unwritten.add(s);
      this.writeLater();
      return;
    }
    s.rewrite!.done(this.writeStatusFiles(s));
  }

  /**
   * Beyond runit, while the supervisor is going away: what changed is written
   * LEAVE_WRITE_DELAY_MS from now, all at once (status files, then stats.json), so that a
   * stop signals first; runsv exiting before then drops it (close()).
   */
  private writeLater(): void {
    this.writeTimer ??= setTimeout(() => {
      this.writeTimer = undefined;
      for (const s of this.unwritten) s.rewrite!.done(this.writeStatusFiles(s));
      this.unwritten.clear();
      this.report.writeDeferred();
    }, LEAVE_WRITE_DELAY_MS).unref();
  }

  /**
   * Beyond runit: the supervisor is going away with every service (container-init's stop).
   * From now on the status files and stats.json are written a little after a change
   * rather than at once (writeLater), nothing when runsv exits first, and a process that
   * ran less than a second and is not wanted up is not followed by the crash throttle's
   * sleep (it is not started again). The protocol is runsv's otherwise: control bytes,
   * signals, ./finish.
   */
  leave(): void {
    this.leaving = true;
    this.report.defer(() => this.writeLater());
  }

  /** The names in dependencies.d/ and waits-for.d/, as read for the last start of ./run. */
  needs(): string[] {
    const d = this.gate.declared();
    return [...d.dependencies, ...d.waitsFor];
  }

  /** The service is down: neither ./run nor ./finish runs. */
  down(): boolean {
    return this.svd[0].state === S_DOWN;
  }

  /**
   * Write s's status files as they are now; true when every step worked (each failure said
   * once: rewrite.ts). setup: runsv is still setting up, and a step that fails for want of
   * descriptors ends it (fatal, with that cause: the supervisor tries it again later and
   * names it with the others in one line) rather than leave a half-made runsv.
   */
  private writeStatusFiles(s: Svd, setup = false, st: Status = this.statusOf(s)): boolean {
    let ok = true;
    const warn = (m: string, e: unknown) => {
      if (setup && outOfFds(e)) this.fatal(m, e);
      ok = false;
      s.rewrite!.failed(m, e);
    };
    const pidWritten = writeStatus(s.cwd, st, { pid: this.pidChanged, label: `${s.rel}supervise/`, warn });
    if (this.pidChanged && pidWritten) this.pidChanged = false;
    return ok;
  }

  /**
   * The end of runsv's set-up for s, at the first write of its status files: they are
   * written, then supervise/ok is opened (sv sees a supervisor once it can read them).
   * runsv writes a down state when it sets up and the run state right after its first
   * fork; ours writes its first state after the first pass of its loop (its first ./run
   * started, or the service left down), so the down record that would last a moment is
   * not written: on ext4 a file replaced through a rename costs ~0.25 ms and a file
   * written the first time a tenth of that. setup: runsv is still setting up (failures
   * for want of descriptors end it, as writeStatusFiles says); otherwise supervise/ok is
   * tried again with the next write.
   */
  private announce(s: Svd, setup = false): void {
    s.rewrite!.done(this.writeStatusFiles(s, setup));
    // the descriptor set-up kept for it (see setup()) becomes supervise/ok's
    closeQuiet(s.okFd);
    s.okFd = -1;
    try {
      s.okFd = fileOpen(s.path('ok'), C.O_RDONLY | C.O_NONBLOCK);
      s.announced = true;
    } catch (e) {
      if (setup) this.fatal(`unable to read ${s.rel}supervise/ok`, e);
      this.warn(`unable to read ${s.rel}supervise/ok`, e);
    }
  }

  /** What s's status files say of it now. */
  private statusOf(s: Svd): Status {
    return { start: s.start, pid: s.pid, paused: s.paused, want: s.want, term: s.term, state: s.state };
  }

  /**
   * A process ended and is to be started again in this pass (it ran long enough for no
   * throttle, it is wanted up): its down state is written right after that start
   * (writeHeldDown), not before it. runsv writes it first and then forks, so a restart
   * waits for three file replaces (~0.25 ms each on ext4, where a rename over a file
   * flushes the new one); the records and their order are runsv's, and a pass that does
   * not start it after all writes the held state when it ends (release()).
   */
  private holdDown(s: Svd): void {
    s.heldDown = this.statusOf(s);
  }

  /**
   * Write a held down state (holdDown), if any, as updateStatus would have when it was
   * held: the pid file (emptied) too, which takes runsv's one pidchanged flag as that
   * write would have.
   */
  private writeHeldDown(s: Svd): void {
    const st = s.heldDown;
    if (!st) return;
    s.heldDown = undefined;
    this.pidChanged = true;
    s.rewrite!.done(this.writeStatusFiles(s, false, st));
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

  /** runsv's stopservice(): TERM (unless control/t did it), then CONT and control/d or x as wanted. */
  private async stopService(s: Svd): Promise<void> {
    if (!s.islog && s.pid) this.gate.mark('stopAsked');
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

  /** runsv's startservice(): ./finish after ./run, else ./run (beyond runit: once its dependencies let it). */
  private async startService(s: Svd): Promise<void> {
    if (!s.islog && s.state !== S_FINISH && this.prestarted) return this.adopt(s, this.prestarted);
    let argv: string[];
    if (s.state === S_FINISH) {
      argv = ['./finish', String(s.exitCode), String(s.exitLow)];
    } else {
      // beyond runit: ./run waits while declared dependencies are not met (gate.ts)
      if (!s.islog && !this.gate.mayStart()) return;
      argv = ['./run'];
      await this.custom(s, 'u');
    }
    if (s.pid) await this.stopService(s); // runsv: "should never happen"
    if (this.closed) return;
    const stdio: Stdio = ['inherit', 'inherit', 'inherit'];
    if (this.haslog && this.logpipe) {
      if (s.islog) stdio[0] = this.logpipe[0];
      else stdio[1] = this.logpipe[1];
    }
    const token = {};
    s.token = token;
    const prog = argv[0]!;
    if (s.islog && prog === './run' && this.logpipe) {
      const lg = inProcessLogger(s.cwd);
      if (lg) {
        this.startLogger(s, lg, this.logpipe[0], token);
        return;
      }
    }
    // beyond runit: what tells that ./run is ready is set up before the spawn (readiness.ts)
    const watch = !s.islog && prog === './run';
    let pid = 0;
    let err: unknown;
    // the timeline's and readiness's spawn time: taken before the status files are written
    let spawnedAt = 0;
    for (;;) {
      const envp = watch ? this.readiness.prepare(this.gate.files(), stdio) : null;
      try {
        // as runsv's fork + execve(./run) in the directory: the exec's own error (ENOENT,
        // EACCES, ENOEXEC for a script without #!) is thrown here
        const fds = stdio.map((f, i) => (f === 'inherit' ? i : f === 'ignore' ? -1 : f));
        pid = spawnWatched(prog, argv, envp, s.cwd, fds, !!this.opts.setsid, (end: ChildEnd) => this.ended(s, token, end.code, end.sig, end.low));
        spawnedAt = monotonicNow();
      } catch (e) {
        err = e;
      }
      if (pid || (err as { syscall?: string } | null)?.syscall !== 'fork') break;
      // runsv: no process could be made (a process limit): "unable to fork, sleeping", 5 s,
      // and again; nothing ran, so nothing ended (no ./finish, no exit told). Only this
      // service waits; control bytes meanwhile are acted on afterwards, as runsv's are.
      if (watch) this.readiness.notSpawned();
      this.warn('unable to fork, sleeping', err);
      this.release();
      await delay(FORK_RETRY_MS);
      if (this.closed || s.token !== token) return;
      err = undefined;
    }
    this.forked(s);
    if (!pid) {
      // runsv's child prints this and exits 111; no process, so status is left alone
      if (watch) this.readiness.notSpawned();
      this.say(fatalLine(`runsv ${this.name}`, `unable to start ${s.rel}${prog}`, err));
      this.exits.push({ s, token, code: 111, sig: 0, low: 0 });
      return;
    }
    this.writeHeldDown(s);
    s.pid = pid;
    this.pidChanged = true;
    this.updateStatus(s);
    if (prog === './finish') this.report.event(s, 'finish', { pid });
    else {
      this.report.started(s, pid);
      if (!s.islog) this.gate.mark('spawned', spawnedAt);
    }
    if (watch) this.readiness.spawned(pid, spawnedAt);
    // runsv's status is written and ./run runs: now what we keep beyond runit
    this.release();
  }

  /**
   * Beyond runit: the prestart's ./run must have the descriptors ours would have: its
   * stdout into the log pipe when there is a log service, else ours. The plan is made so
   * that it does (image/prestart.ts); if the directory changed after all, the process is
   * killed (reaped as a child of ours) and ./run started as usual.
   */
  private checkPrestarted(): void {
    const p = this.prestarted;
    if (!p) return;
    if (this.haslog === p.rfd >= 0) return;
    this.prestarted = undefined;
    this.warn(`./run started by the prestart does not write to the log it has: started again`);
    if (p.rfd >= 0) {
      closeQuiet(p.rfd);
      closeQuiet(p.wfd);
    }
    kill(p.pid, 'SIGKILL');
    adoptWatched(p.pid, () => {});
  }

  /**
   * Beyond runit: the first start of ./run is the one the boot's prestart made (before
   * Node started): what startService() does after its spawn, with the prestart's pid and
   * start time. It may have ended already: then it is reaped and told as any exit.
   */
  private adopt(s: Svd, p: Prestarted): void {
    this.prestarted = undefined;
    // what ./run's start reads (the optional files; no dependencies and no readiness
    // protocol for a prestarted one, so it may start and is ready once started)
    this.gate.mayStart();
    const stdio: Stdio = ['inherit', 'inherit', 'inherit'];
    this.readiness.prepare(this.gate.files(), stdio);
    const token = {};
    s.token = token;
    this.forked(s);
    s.start = tainFromMs(p.realMs);
    s.startMs = p.monoMs;
    s.pid = p.pid;
    this.pidChanged = true;
    this.updateStatus(s);
    this.report.started(s, p.pid);
    this.gate.mark('spawned', p.monoMs / 1000);
    this.readiness.spawned(p.pid);
    adoptWatched(p.pid, (end: ChildEnd) => this.ended(s, token, end.code, end.sig, end.low));
    this.release();
  }

  /** What runsv's startservice() sets once it has forked: the start time (not for ./finish), no pause, no TERM. */
  private forked(s: Svd): void {
    if (s.state !== S_FINISH) {
      s.start = taiNow();
      s.startMs = monotonicMs();
      s.state = S_RUN;
    }
    s.paused = false;
    s.term = false;
  }

  /**
   * Beyond runit: log/run is `exec svlogd ...` and svlogd is this executable, so the
   * logger runs in this process (logger.ts) instead of a Node process for it. It has the
   * supervisor's pid in supervise/, takes the same signals and ends as a process would.
   * What it reports is told with the rest of the pass (no release() before the service's spawn).
   */
  private startLogger(s: Svd, lg: Svlogd, input: number, token: object): void {
    this.forked(s);
    s.pid = lg.pid;
    s.logger = lg;
    this.pidChanged = true;
    this.updateStatus(s);
    runLogger(lg, input, (code, sig, low) => this.ended(s, token, code, sig, low));
    this.report.started(s, s.pid);
  }

  /** Send a signal to what an svd runs: a process, or the in-process logger. */
  private signal(s: Svd, sig: NodeJS.Signals): void {
    if (s.logger) s.logger.kill(sig);
    else kill(s.pid, sig);
  }

  /** One control byte, as runsv's ctrl(); unknown bytes are ignored. */
  private async ctrl(s: Svd, c: string): Promise<void> {
    switch (c) {
      case 'd':
        s.want = 'down';
        this.updateStatus(s);
        if (!s.islog) this.gate.unwait(); // beyond runit: it no longer waits for its dependencies
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

  /** runsv's main() up to its loop: the directory, ./log, supervise/ and its files. */
  private async setup(): Promise<void> {
    const main = this.svd[0];
    // chdir(dir)
    let dk: number;
    try {
      dk = fileKind(this.dir);
    } catch (e) {
      this.fatal('unable to change to directory', e);
    }
    if (!dk) this.fatal('unable to change to directory', 'ENOENT');
    if (dk !== S_IFDIR) this.fatal('unable to change to directory', 'ENOTDIR');
    if (!fileAccess(this.dir, C.X_OK)) this.fatal('unable to change to directory', 'EACCES');
    if (fileExists(inDir(this.dir, 'down'))) main.want = 'down';
    const logDir = inDir(this.dir, 'log');
    let lk = 0;
    try {
      lk = fileKind(logDir);
    } catch (e) {
      this.warn('unable to stat() ./log: ', e);
    }
    if (lk) {
      if (lk !== S_IFDIR) this.warn('./log: not a directory.');
      else {
        this.haslog = true;
        const log = this.newSvd(true, logDir);
        if (fileExists(inDir(logDir, 'down'))) log.want = 'down';
        this.svd[1] = log;
        const p = this.prestarted;
        if (p && p.rfd >= 0) this.logpipe = [p.rfd, p.wfd];
        else {
          try {
            this.logpipe = native().pipe();
          } catch (e) {
            this.fatal('unable to create log pipe', e);
          }
        }
      }
    }
    this.checkPrestarted();
    main.stats.fresh = this.makeSupervise(this.dir, './supervise') || this.opts.madeForUs?.(false) === true;
    main.lockFd = this.openLock(main);
    if (!native().flock(main.lockFd, LOCK_EX | LOCK_NB)) this.fatal('unable to lock supervise/lock', 'EAGAIN');
    this.gate.join();
    // what a previous supervisor recorded is not true of what we start: rewritten with the
    // first pass of the loop (after the spawn, with the start counted), not a write of its own
    main.stats.dirty = true;
    const log = this.svd[1];
    if (log) {
      log.stats.fresh = this.makeSupervise(logDir, './log/supervise') || this.opts.madeForUs?.(true) === true;
      log.lockFd = this.openLock(log);
      // runsv blocks in flock() here; one event loop cannot, so wait for it by polling
      while (!native().flock(log.lockFd, LOCK_EX | LOCK_NB)) {
        await delay(LOG_LOCK_POLL_MS);
        if (this.closed) return;
      }
    }
    // what a previous supervisor left running, read before the first status update overwrites it
    const leftovers = this.svd.map((s) => findLeftover(s.cwd, `${this.name}${s.islog ? '/log' : ''}`));
    // (what the prestart started is ours: never a leftover, whatever an old status says)
    if (leftovers[0]?.pid === this.prestarted?.pid) leftovers[0] = undefined;
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
    }
    // runsv writes the status files here and then opens supervise/ok (from then on sv
    // sees it running); ours does both with the first pass of its loop (announce()). The
    // descriptor supervise/ok will take is taken now (a second one of supervise/lock, never
    // locked), so that a supervisor short of descriptors fails here, as runsv would
    for (const s of this.svd) {
      makeFifo(s.path('ok'));
      try {
        s.okFd = fileOpen(s.path('lock'), C.O_RDONLY);
      } catch (e) {
        this.fatal(`unable to read ${s.rel}supervise/ok`, e);
      }
    }
    // Beyond runit: a previous supervisor of this directory died (killed, or stage 2
    // restarted) and its processes are orphans now. Stop them before starting new ones,
    // so that no service ever runs twice (sv sees this supervisor meanwhile).
    if (leftovers.some(Boolean)) for (const s of this.svd) this.announce(s, true);
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

  /** Open (creating) an svd's supervise/lock, as runsv's open_append(). */
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

  /** Is there something for a pass of the loop to do? */
  private pending(): boolean {
    return this.gate.kicked || this.exits.length > 0 || this.sigterm || this.svd.some((s) => s.bytes.length > 0);
  }

  /** runsv's main loop, run while there is something to do. */
  private async pump(): Promise<void> {
    if (this.pumping || this.closed || !this.opened) return;
    this.pumping = true;
    try {
      for (;;) {
        this.report.hold();
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
    this.gate.kicked = false;
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

  /** A child of this runsv is gone: runsv's reaping code. */
  private async childExited(ex: ChildExit): Promise<void> {
    const s = ex.s;
    if (s.token !== ex.token) return; // not the process this svd is running now
    const sigName = signalName(ex.sig);
    this.report.event(s, 'exit', { ...(s.pid ? { pid: s.pid } : {}), code: ex.code, ...(sigName ? { signal: sigName } : {}) });
    if (s.state !== S_FINISH) {
      // beyond runit: stats.json's last exit; a one-shot's result, or a longrun no longer
      // ready (gate.ts), once readiness stops watching this start
      this.report.exited(s, ex.code, ex.sig);
      if (!s.islog) this.gate.exited(ex.code, sigName, this.readiness.end());
      this.report.stats(s);
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
    const ranMs = monotonicMs() - s.startMs;
    s.start = taiNow();
    const throttled = ranMs < THROTTLE_MS && !(this.leaving && s.want !== 'up');
    if (!throttled && !this.leaving && s.want === 'up') this.holdDown(s);
    else this.updateStatus(s);
    this.report.event(s, 'down');
    // runsv sleeps a second when the process ran less than one (a crash loop's throttle);
    // this holds back this service only, as each runsv is a process of its own. How long
    // it ran is measured on the monotonic clock (runsv: the wall clock, which may step).
    // Not while the supervisor is going away, for a service no longer wanted up: it is not
    // started again
    if (throttled) {
      this.release();
      await delay(THROTTLE_MS);
    }
  }

  /** A child ended (or the in-process logger did): reaped by the next pass of the loop. */
  private ended(s: Svd, token: object, code: number, sig: number, low: number): void {
    this.exits.push({ s, token, code, sig, low });
    void this.pump();
  }

  /**
   * Write what the pass held: the first status record (announce) and a down record not
   * followed by a start (holdDown); beyond runit, stats.json and the events (report.ts).
   * The optional files are read again at the next start.
   */
  private release(): void {
    if (!this.closed) {
      for (const s of this.svd) {
        if (!s.announced) this.announce(s);
        this.writeHeldDown(s);
      }
    }
    this.gate.settle();
    this.report.release();
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
    // a prestarted ./run never adopted (the set-up failed) is not left unsupervised
    const p = this.prestarted;
    if (p) {
      this.prestarted = undefined;
      kill(p.pid, 'SIGTERM');
      kill(p.pid, 'SIGCONT');
      adoptWatched(p.pid, () => {});
    }
    // leaving: what is not written yet never is (the supervisor is going away)
    if (this.writeTimer) clearTimeout(this.writeTimer);
    this.writeTimer = undefined;
    this.report.close();
    this.readiness.end();
    this.gate.leave();
    for (const s of this.svd) {
      s.rewrite?.close();
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
