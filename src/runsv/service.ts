// The runsv state machine for one service directory and its log service, driven by
// events instead of runsv's blocking loop, so that one process can supervise many
// services. On-disk protocol (supervise/ lock, control, ok, status, stat, pid) is runit's.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, constants as C, existsSync, mkdirSync, openSync, readFileSync, readlinkSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { Socket } from 'node:net';
import { constants as osConstants } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { errorStr } from '../lib/errstr.ts';
import { LOCK_EX, LOCK_NB, native } from '../lib/native.ts';
import { decodeStatus, encodeStatus, pidFile, S_DOWN, S_FINISH, S_RUN, statLine, type State, type Want } from '../lib/status.ts';
import { taiNow, tainSeconds, type Tain } from '../lib/tai.ts';
import { processStartSeconds } from '../lib/proc.ts';

const SIGNALS: Record<string, NodeJS.Signals> = {
  a: 'SIGALRM', h: 'SIGHUP', i: 'SIGINT', q: 'SIGQUIT', '1': 'SIGUSR1', '2': 'SIGUSR2',
};

export interface RunsvOptions {
  /** start each service in its own session (runsvdir -P) */
  setsid?: boolean;
  /** where warnings go (runsvdir routes them into its log pipe) */
  warn?: (line: string) => void;
  /** fd given to children as stderr (default: inherit) */
  stderrFd?: number;
  /** name used in messages: runsv's argument */
  name?: string;
}

/** One supervised process: the service itself (svd[0]) or its log service (svd[1]). */
class Svd {
  state: State = S_DOWN;
  want: Want = 'up';
  paused = false;
  term = false;
  pid = 0;
  pidChanged = true;
  start: Tain = taiNow();
  exitCode = 0;
  exitSignal = 0;
  child: ChildProcess | undefined;
  lockFd = -1;
  controlFd = -1;
  controlWriteFd = -1;
  okFd = -1;
  control: Socket | undefined;
  /** restart held back until this time (runit's 1 s throttle, per service) */
  throttleUntil = 0;
  throttleTimer: NodeJS.Timeout | undefined;
  /** a start was asked for ('u'/'o') while throttled */
  startPending = false;
  readonly islog: boolean;
  /** the directory ./run runs in */
  readonly cwd: string;
  /** prefix of this svd's supervise files */
  readonly sup: string;
  constructor(islog: boolean, cwd: string, sup: string) {
    this.islog = islog;
    this.cwd = cwd;
    this.sup = sup;
  }
}

export class Runsv {
  readonly dir: string;
  readonly name: string;
  private readonly opts: RunsvOptions;
  private readonly svd: [Svd] | [Svd, Svd];
  private haslog = false;
  private logpipe: [number, number] | undefined;
  private queue: Promise<void> = Promise.resolve();
  private closed = false;
  private resolveDone!: () => void;
  /** resolves when runsv would exit: want exit, service and log down */
  readonly done: Promise<void>;

  constructor(dir: string, opts: RunsvOptions = {}) {
    this.dir = resolve(dir);
    this.name = opts.name ?? dir;
    this.opts = opts;
    this.svd = [new Svd(false, this.dir, join(this.dir, 'supervise'))];
    this.done = new Promise((r) => (this.resolveDone = r));
  }

  private warn(msg: string, e?: unknown): void {
    const line = `runsv ${this.name}: warning: ${msg}${e === undefined ? '' : `: ${errorStr(e)}`}`;
    (this.opts.warn ?? ((l: string) => process.stderr.write(l + '\n')))(line);
  }

  private fatal(msg: string, e?: unknown): never {
    throw new RunsvFatal(`runsv ${this.name}: fatal: ${msg}${e === undefined ? '' : `: ${errorStr(e)}`}`);
  }

  /** Set up supervise/ (and log/supervise/) as runsv does, then start what wants up. */
  async open(): Promise<void> {
    const main = this.svd[0];
    const dirStat = statOrNull(this.dir);
    if (!dirStat) this.fatal('unable to change to directory', errnoOf(this.dir));
    if (existsSync(join(this.dir, 'down'))) main.want = 'down';
    const logDir = join(this.dir, 'log');
    const ls = statOrNull(logDir, true);
    if (ls) {
      if (!ls.isDirectory()) this.warn('./log: not a directory.');
      else {
        this.haslog = true;
        const log = new Svd(true, logDir, join(logDir, 'supervise'));
        if (existsSync(join(logDir, 'down'))) log.want = 'down';
        this.svd[1] = log;
        this.logpipe = native().pipe();
      }
    }
    makeSuperviseDir(this.dir, 'supervise', (m, e) => this.fatal(m, e));
    main.lockFd = this.openLock(join(main.sup, 'lock'));
    const stale: Array<[Svd, number, Tain]> = [];
    const prev = readPrevious(main.sup);
    if (prev) stale.push([main, prev.pid, prev.start]);
    const log = this.svd[1];
    if (log) {
      makeSuperviseDir(log.cwd, 'supervise', (m, e) => this.fatal(m, e));
      // runsv blocks on log/supervise/lock; a single event loop cannot, so it fails like the main lock
      log.lockFd = this.openLock(join(log.sup, 'lock'));
      const p = readPrevious(log.sup);
      if (p) stale.push([log, p.pid, p.start]);
    }
    for (const s of this.svd) {
      this.openControl(s);
      this.updateStatus(s);
    }
    for (const s of this.svd) {
      const okPath = join(s.sup, 'ok');
      makeFifo(okPath, (m, e) => this.fatal(m, e));
      try {
        s.okFd = openSync(okPath, C.O_RDONLY | C.O_NONBLOCK);
      } catch (e) {
        this.fatal(`unable to read ${s.islog ? 'log/' : ''}supervise/ok`, e);
      }
    }
    // A previous supervisor of this directory died (killed, or stage 2 restarted): its
    // processes are orphans now. Stop them before starting new ones, so none runs twice.
    await Promise.all(stale.map(([s, pid, start]) => stopStale(pid, start, (m) => this.warn(`${s.islog ? 'log: ' : ''}${m}`))));
    this.enqueue(() => this.loop());
  }

  private openLock(path: string): number {
    const rel = path.slice(this.dir.length + 1);
    let fd: number;
    try {
      fd = openSync(path, C.O_WRONLY | C.O_NONBLOCK | C.O_APPEND | C.O_CREAT, 0o600);
    } catch (e) {
      this.fatal(`unable to open ${rel}`, e);
    }
    let got: boolean;
    try {
      got = native().flock(fd, LOCK_EX | LOCK_NB);
    } catch (e) {
      closeSync(fd);
      this.fatal(`unable to lock ${rel}`, e);
    }
    if (!got) {
      closeSync(fd);
      this.fatal(`unable to lock ${rel}`, 'EAGAIN');
    }
    return fd;
  }

  private openControl(s: Svd): void {
    const path = join(s.sup, 'control');
    const rel = `${s.islog ? 'log/' : ''}supervise/control`;
    makeFifo(path, (m, e) => this.fatal(m, e));
    const st = statOrNull(path);
    if (!st) this.fatal(`unable to stat ${rel}`, errnoOf(path));
    if (!st.isFIFO()) this.fatal(`${rel} exists but is not a fifo`);
    try {
      s.controlFd = openSync(path, C.O_RDONLY | C.O_NONBLOCK);
      s.controlWriteFd = openSync(path, C.O_WRONLY | C.O_NONBLOCK);
    } catch (e) {
      this.fatal(`unable to open ${rel}`, e);
    }
    const sock = new Socket({ fd: s.controlFd, readable: true, writable: false });
    sock.on('data', (buf: Buffer) => {
      for (const byte of buf) this.enqueue(() => this.ctrl(s, String.fromCharCode(byte)));
      this.enqueue(() => this.loop());
    });
    sock.on('error', (e) => this.warn(`unable to read ${rel}`, e));
    s.control = sock;
  }

  /** Serialise every event of this service, as runsv's single loop does. */
  private enqueue(task: () => void | Promise<void>): void {
    this.queue = this.queue.then(task).catch((e: unknown) => this.warn('internal error', e instanceof Error ? e.message : e));
  }

  /** The top of runsv's loop: start what should run; leave when asked to exit. */
  private loop(): void {
    if (this.closed) return;
    const [main, log] = this.svd;
    if (log && !log.pid && log.want === 'up') this.startService(log);
    if (!main.pid && (main.want === 'up' || main.state === S_FINISH || main.startPending)) this.startService(main);
    if (main.want === 'exit' && main.state === S_DOWN && !main.pid) {
      if (!log || !log.pid) {
        this.close();
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

  /** runsv's update_status: pid (when changed), stat, status; each written .new then renamed. */
  private updateStatus(s: Svd): void {
    const rel = s.islog ? 'log/supervise/' : 'supervise/';
    if (s.pidChanged) {
      if (!writeAtomic(join(s.sup, 'pid'), pidFile(s.pid), (m, e) => this.warn(`${m}${rel}pid${m.startsWith('unable to rename') ? '' : '.new'}`, e))) return;
      s.pidChanged = false;
    }
    const st = { start: s.start, pid: s.pid, paused: s.paused, want: s.want, term: s.term, state: s.state };
    writeAtomic(join(s.sup, 'stat'), statLine(st), (m, e) => this.warn(`${m}${rel}stat${m.startsWith('unable to rename') ? '' : '.new'}`, e));
    writeAtomic(join(s.sup, 'status'), encodeStatus(st), (m, e) => this.warn(`${m}${rel}status${m.startsWith('unable to rename') ? '' : '.new'}`, e));
  }

  /** Run control/<c> if it is there and executable; true when it exited 0 (signal suppressed). */
  private async custom(s: Svd, c: string): Promise<boolean> {
    if (s.islog) return false;
    const path = join(this.dir, 'control', c);
    let st;
    try {
      st = statSync(path);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') this.warn(`unable to stat control/${c}`, e);
      return false;
    }
    if (!(st.mode & 0o100)) return false;
    return new Promise((res) => {
      const child = spawn(path, [], {
        cwd: this.dir,
        argv0: `control/${c}`,
        stdio: ['inherit', this.haslog && this.logpipe ? this.logpipe[1] : 'inherit', this.opts.stderrFd ?? 'inherit'],
      });
      child.on('error', (e) => {
        this.warn(`unable to run control/${c}`, e);
        res(false);
      });
      child.on('exit', (code) => res(code === 0));
    });
  }

  private stopService(s: Svd): Promise<void> | void {
    return (async () => {
      if (s.pid && !(await this.custom(s, 't'))) {
        kill(s.pid, 'SIGTERM');
        s.term = true;
        this.updateStatus(s);
      }
      if (s.want === 'down') {
        if (s.pid) kill(s.pid, 'SIGCONT');
        await this.custom(s, 'd');
        return;
      }
      if (s.want === 'exit') {
        if (s.pid) kill(s.pid, 'SIGCONT');
        await this.custom(s, 'x');
      }
    })();
  }

  private startService(s: Svd): void {
    if (this.closed) return;
    const now = Date.now();
    if (now < s.throttleUntil) {
      if (!s.throttleTimer) {
        s.throttleTimer = setTimeout(() => {
          s.throttleTimer = undefined;
          this.enqueue(() => this.loop());
        }, s.throttleUntil - now);
      }
      return;
    }
    s.startPending = false;
    const finishing = s.state === S_FINISH;
    let argv: string[];
    if (finishing) {
      argv = ['./finish', s.exitSignal ? '-1' : String(s.exitCode), String(s.exitSignal)];
    } else {
      argv = ['./run'];
      // runsv runs control/u before ./run and ignores its result; it must not delay the others
      void this.custom(s, 'u');
    }
    const pipe = this.logpipe;
    const stdio: Array<'inherit' | number> = ['inherit', 'inherit', this.opts.stderrFd ?? 'inherit'];
    if (this.haslog && pipe) {
      if (s.islog) stdio[0] = pipe[0];
      else stdio[1] = pipe[1];
    }
    let child: ChildProcess;
    try {
      child = spawn(argv[0]!, argv.slice(1), { cwd: s.cwd, stdio, detached: !!this.opts.setsid, argv0: argv[0] });
    } catch (e) {
      this.failedStart(s, argv[0]!, e);
      return;
    }
    if (!finishing) {
      s.start = taiNow();
      s.state = S_RUN;
    }
    s.child = child;
    s.pid = child.pid ?? 0;
    s.pidChanged = true;
    s.paused = false;
    s.term = false;
    this.updateStatus(s);
    child.on('error', (e) => {
      if (child.pid === undefined) this.enqueue(() => this.failedStart(s, argv[0]!, e));
    });
    child.on('exit', (code, signal) => this.enqueue(() => this.childExited(s, child, code, signal)));
  }

  /** ./run could not be executed: runsv's child prints this and exits 111. */
  private failedStart(s: Svd, prog: string, e: unknown): void {
    process.stderr.write(`runsv ${this.name}: fatal: unable to start ${s.islog ? 'log/' : ''}${prog}: ${errorStr(e)}\n`);
    this.childExited(s, undefined, 111, null);
  }

  private childExited(s: Svd, child: ChildProcess | undefined, code: number | null, signal: NodeJS.Signals | null): void {
    if (child && s.child !== child) return;
    s.child = undefined;
    s.pid = 0;
    s.pidChanged = true;
    s.term = false;
    if (!s.islog) {
      s.exitCode = code ?? 0;
      s.exitSignal = signal ? (osConstants.signals[signal] ?? 0) : 0;
      if (s.state !== S_FINISH && existsSync(join(this.dir, 'finish'))) {
        s.state = S_FINISH;
        this.updateStatus(s);
        this.loop();
        return;
      }
    }
    s.state = S_DOWN;
    const deadline = tainSeconds(s.start) + 1;
    s.start = taiNow();
    this.updateStatus(s);
    // runsv sleeps 1 s here, blocking everything; we hold back only this service
    if (tainSeconds(s.start) < deadline) s.throttleUntil = Date.now() + 1000;
    this.loop();
  }

  /** One control byte, as runsv's ctrl(). */
  private async ctrl(s: Svd, c: string): Promise<void> {
    if (this.closed) return;
    switch (c) {
      case 'd':
        s.want = 'down';
        s.startPending = false;
        this.updateStatus(s);
        if (s.state === S_RUN) await this.stopService(s);
        break;
      case 'u':
        s.want = 'up';
        this.updateStatus(s);
        if (s.state === S_DOWN && !s.pid) this.startService(s);
        break;
      case 'x':
        if (s.islog) break;
        s.want = 'exit';
        s.startPending = false;
        this.updateStatus(s);
        if (s.state === S_RUN) await this.stopService(s);
        break;
      case 't':
        if (s.state === S_RUN) await this.stopService(s);
        break;
      case 'k':
        if (s.state === S_RUN && !(await this.custom(s, c))) kill(s.pid, 'SIGKILL');
        s.state = S_DOWN;
        break;
      case 'p':
        if (s.state === S_RUN && !(await this.custom(s, c))) kill(s.pid, 'SIGSTOP');
        s.paused = true;
        this.updateStatus(s);
        break;
      case 'c':
        if (s.state === S_RUN && !(await this.custom(s, c))) kill(s.pid, 'SIGCONT');
        s.paused = false;
        this.updateStatus(s);
        break;
      case 'o':
        s.want = 'down';
        this.updateStatus(s);
        if (s.state === S_DOWN && !s.pid) {
          s.startPending = true;
          this.startService(s);
        }
        break;
      default: {
        const sig = SIGNALS[c];
        if (sig && s.state === S_RUN && !(await this.custom(s, c))) kill(s.pid, sig);
      }
    }
  }

  /** runsv's SIGTERM: as the control byte 'x'. */
  terminate(): void {
    this.enqueue(() => this.ctrl(this.svd[0], 'x'));
    this.enqueue(() => this.loop());
  }

  /** Send a control byte from inside the process (tests, runsvdir). */
  control(c: string): void {
    this.enqueue(() => this.ctrl(this.svd[0], c));
    this.enqueue(() => this.loop());
  }

  /** Pids of the processes this runsv has running now (service, log). */
  pids(): number[] {
    return this.svd.map((s) => s.pid).filter((p) => p > 0);
  }

  /** Give up everything without touching the processes (runsvdir's own exit). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const s of this.svd) {
      if (s.throttleTimer) clearTimeout(s.throttleTimer);
      s.control?.destroy();
      for (const fd of [s.controlWriteFd, s.okFd, s.lockFd]) closeQuiet(fd);
    }
    if (this.logpipe) for (const fd of this.logpipe) closeQuiet(fd);
    this.resolveDone();
  }
}

export class RunsvFatal extends Error {}

function kill(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    /* already gone: runsv ignores kill's result too */
  }
}

function closeQuiet(fd: number): void {
  if (fd < 0) return;
  try {
    closeSync(fd);
  } catch {
    /* nothing to do */
  }
}

function statOrNull(path: string, lstatFallback = false) {
  try {
    return statSync(path);
  } catch (e) {
    if (lstatFallback && (e as NodeJS.ErrnoException).code !== 'ENOENT') return statSync(path);
    return null;
  }
}

function errnoOf(path: string): unknown {
  try {
    statSync(path);
    return undefined;
  } catch (e) {
    return e;
  }
}

/** mkdir supervise 0700; a dangling symlink gets its target created (relative to base). */
function makeSuperviseDir(base: string, name: string, fatal: (m: string, e?: unknown) => never): void {
  const path = join(base, name);
  try {
    mkdirSync(path, 0o700);
    return;
  } catch {
    /* exists, or a symlink: look below */
  }
  let target: string;
  try {
    target = readlinkSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT' && code !== 'EINVAL') fatal(`unable to readlink ./${name}`, e);
    return;
  }
  try {
    mkdirSync(isAbsolute(target) ? target : join(base, target), 0o700);
  } catch {
    /* as runsv: the result is checked when the lock is opened */
  }
}

function makeFifo(path: string, fatal: (m: string, e?: unknown) => never): void {
  try {
    native().mkfifo(path, 0o600);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') fatal(`unable to create ${path}`, e);
  }
}

function writeAtomic(path: string, data: string | Buffer, warn: (m: string, e: unknown) => void): boolean {
  try {
    writeFileSync(`${path}.new`, data, { mode: 0o644 });
  } catch (e) {
    warn('unable to open ', e);
    return false;
  }
  try {
    renameSync(`${path}.new`, path);
  } catch (e) {
    warn('unable to rename ', e);
    return false;
  }
  return true;
}

/** The pid and start time a previous supervisor left in supervise/status, if any. */
function readPrevious(sup: string): { pid: number; start: Tain } | undefined {
  try {
    const b = readFileSync(join(sup, 'status'));
    if (b.length !== 20) return undefined;
    const st = decodeStatus(b);
    return st.pid ? { pid: st.pid, start: st.start } : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Stop an orphan left by a dead supervisor: only if that pid is alive and started
 * within 2 s of the time recorded in status (so a recycled pid is never touched).
 * TERM + CONT, then KILL after 5 s.
 */
export async function stopStale(pid: number, start: Tain, warn: (m: string) => void): Promise<void> {
  if (pid === process.pid) return;
  const started = processStartSeconds(pid);
  if (started === undefined || Math.abs(started - Number(start.sec)) > 2) return;
  warn(`stopping pid ${pid} left by a previous supervisor`);
  kill(pid, 'SIGTERM');
  kill(pid, 'SIGCONT');
  const t0 = Date.now();
  while (processStartSeconds(pid) === started) {
    if (Date.now() - t0 > 5000) {
      kill(pid, 'SIGKILL');
      break;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}
