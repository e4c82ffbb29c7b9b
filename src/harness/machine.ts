// boot(): run a guest under QEMU with its serial console on a pipe and QMP on a unix socket.

import { closeSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, renameSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve as resolvePath } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import { execa, type ResultPromise } from 'execa';
import { type Arch, ARCH_INFO, findExecutable, requireQemu } from './arch.ts';
import { restoreKernel } from './kernel.ts';
import { AgentClient, AgentError, DEFAULT_AGENT_TIMEOUT_MS, type ExecOptions, type ExecResult } from './agent.ts';
import type { ServiceEvent } from '../lib/events.ts';
import { type Accel, type ResolvedAccel, resolveAccel } from './kvm.ts';
import { AGENT_CHARDEV_ID, type Drive, type QemuCommand, type QemuOptions, qemuCommand } from './qemu.ts';
import { QmpClient, type QmpEvent, type QmpWaitOptions } from './qmp.ts';
import {
  type ConsoleMatch,
  consoleTail,
  describePattern,
  findPattern,
  parseRunOutput,
  type RunOutput,
  runMarkers,
} from './console.ts';

/**
 * Options of boot(): the QemuOptions of the guest (console, QMP and pausing are the
 * harness's own), plus console logging and the QMP connection timeout.
 */
export interface BootOptions extends Omit<QemuOptions, 'console' | 'qmpSocket' | 'paused' | 'accel' | 'agentSocket' | 'incoming'> {
  /** Default 'auto': RUNIT_TS_ACCEL if set, else KVM when the probe says it works, else TCG. */
  readonly accel?: Accel;
  /** File that receives the raw console output as it arrives (parent dirs created, file truncated; written synchronously). */
  readonly consoleLog?: string;
  /** Called with each decoded console chunk. */
  readonly onConsole?: (chunk: string) => void;
  /** ms to wait for QEMU's QMP socket; default 15000. */
  readonly qmpTimeout?: number;
  /** Name used in error messages (default `${arch}`). */
  readonly name?: string;
  /**
   * Attach the guest agent's virtio-serial port and connect to it in the background:
   * Machine.exec, copyIn, copyOut, mountShare and agentEvents then go through it. The
   * image must run the agent (the harness image, `make vm-image`).
   */
  readonly agent?: boolean;
  /** ms to wait for the agent's first answer (from QEMU start); default 120000. */
  readonly agentTimeout?: number;
  /**
   * Subscribe the agent session to the supervisor's events at once (default true); false
   * leaves it to the first waitForAgentEvent, and the guest does no work for events until
   * then (what a command run in a restored machine has no use for).
   */
  readonly agentEvents?: boolean;
  /**
   * Start from a snapshot Machine.snapshot(file) wrote instead of booting (-incoming);
   * the other options must be those of the machine that was saved (same kernel, initrd,
   * memory, devices, shares). Its disks (restorable) come back as they were saved.
   */
  readonly restore?: string;
  /**
   * Writable drives with snapshot (the default) go through a qcow2 overlay boot() makes in
   * its temporary directory (qemu-img create -b), instead of QEMU's own throw-away one,
   * so that Machine.snapshot() can save the disks with the machine. Needs qemu-img.
   */
  readonly restorable?: boolean;
  /**
   * Keep the guest's RAM in a shared file (on /dev/shm, else the temporary directory) so that
   * Machine.snapshot() leaves it out of the migration stream and saves it beside the state
   * as a sparse file (FILE.ram), which a restore maps instead of reading: for machines that
   * will be saved. Without it a snapshot carries the RAM in the stream (slower to save and
   * to restore), and the guest's RAM is ordinary memory, which a small /dev/shm cannot fail.
   */
  readonly snapshotRam?: boolean;
}

/** Options of Machine.snapshot. */
export interface SnapshotOptions {
  /** After saving: 'continue' (default) lets the guest run on, 'quit' ends QEMU. */
  readonly then?: 'continue' | 'quit';
  /** ms to wait for the migration to complete; default 120000 (MIGRATE_TIMEOUT_MS). */
  readonly timeout?: number;
}

/** What Machine.snapshot wrote and how long it took. */
export interface SnapshotInfo {
  /** The machine's state (a QEMU migration stream). */
  readonly file: string;
  /** The disks' overlays saved beside it (FILE.diskN.qcow2), for restorable drives. */
  readonly disks: readonly string[];
  /**
   * The guest RAM saved beside it (savedRamFile(file): sparse, its pages left out of the
   * stream), or undefined when the RAM is in the stream (a machine itself restored from a
   * snapshot maps its RAM privately, so it has no file to save).
   */
  readonly ram: string | undefined;
  /** Bytes of the state file plus the blocks the RAM file takes. */
  readonly bytes: number;
  /** ms from the request to the saved state. */
  readonly ms: number;
}

/** Default wait (ms) for a snapshot's migration to complete, and for a restore's state to load. */
const MIGRATE_TIMEOUT_MS = 120_000;
/** The fd QEMU reads a restore's stream from (the first after stdio). */
const INCOMING_FD = 3;
/** Where a booted machine's RAM file goes when it exists (tmpfs: the RAM is never written back to a disk). */
const RAM_DIR = '/dev/shm';
/** Default wait (ms) of reconnectAgent for the agent's answer. */
const RECONNECT_TIMEOUT_MS = 30_000;
/** What a console exec waits (ms) beyond the command's own timeout: the typing, the base64 output coming back. */
const CONSOLE_EXEC_SLACK_MS = 30_000;
/** A console exec's wait (ms) when it has no timeout of its own. */
const CONSOLE_EXEC_TIMEOUT_MS = 30_000;
/** How often (ms) a migration's progress is asked for (query-migrate) when no MIGRATION event came first. */
const MIGRATE_POLL_MS = 20;
/** The migration capability that makes QEMU send a MIGRATION event at each change of state (a finished load is seen at once). */
const MIGRATION_EVENTS = { capability: 'events', state: true } as const;
/** Migration bandwidth limit (bytes/s) for snapshots: QEMU's default (128 MiB/s) would make saving 1 GiB take seconds. */
const MIGRATE_BANDWIDTH = 64 * 1024 ** 3;
/** How often (ms) QMP is asked whether QEMU has taken the agent's early connection (a restore). */
const CHARDEV_POLL_MS = 2;
/** How long (ms) a restore waits for QEMU to take the agent's early connection before it lets the guest run anyway. */
const CHARDEV_WAIT_MS = 2000;

/** Options of Machine.waitForIdle. */
export interface IdleOptions {
  /** ms of quiet needed; default 1000. */
  readonly window?: number;
  /** Most CPU time (ms) QEMU may use in that window and still be idle; default 50 (5% of the default window). */
  readonly busyMs?: number;
  /** ms after which it gives up waiting and resolves false; default 30000. */
  readonly timeout?: number;
}
/** How often (ms) waitForIdle reads QEMU's CPU time. */
const IDLE_SAMPLE_MS = 100;
/** The glibc tunable qemuEnv gives QEMU: malloc's memory in transparent huge pages where the host allows them (madvise). */
const QEMU_MALLOC_TUNABLE = 'glibc.malloc.hugetlb=1';
/** Linux's USER_HZ: the unit of /proc/PID/stat's CPU times (100 on every arch Linux runs QEMU on). */
const CLOCK_TICKS_PER_S = 100;

/** Options of Machine.waitFor. */
export interface WaitOptions {
  /** ms; default 30000. */
  readonly timeout?: number;
  /** Console offset to search from (default 0: the whole console). Use a previous match's `end`, or mark(). */
  readonly from?: number;
}

/** A console match from Machine.waitFor, with the time its text arrived. */
export interface TimedMatch extends ConsoleMatch {
  /** performance.now() when the console chunk completing the match arrived. */
  readonly at: number;
  /** Seconds from QEMU start (spawn) to `at`. */
  readonly elapsed: number;
}

/** Options of Machine.run. */
export interface RunOptions {
  /** ms; default 30000. */
  readonly timeout?: number;
  /** Throw when the exit status is not 0. Default false. */
  readonly check?: boolean;
  /**
   * Longest line (command plus ~90 characters of markers) to type; longer ones throw at once.
   * Default 1000: busybox ash's line editor drops lines over 1023 characters.
   */
  readonly maxLine?: number;
}

/** Result of Machine.run: the command's output and exit status, and how long it took. */
export interface RunResult extends RunOutput {
  /** Seconds the command took, from typing the line to its END marker. */
  readonly seconds: number;
}

/** QEMU's ShutdownCause names, as found in SHUTDOWN events' data.reason. */
export type ShutdownReason =
  | 'none'
  | 'host-error'
  | 'host-qmp-quit'
  | 'host-qmp-system-reset'
  | 'host-signal'
  | 'host-ui'
  | 'guest-shutdown'
  | 'guest-reset'
  | 'guest-panic'
  | 'subsystem-reset'
  | 'snapshot-load';

/** How QEMU ended (Machine.waitForExit, quit, kill, exitInfo): shutdown reason, exit status, panic, timing. */
export interface ExitInfo {
  /** data.reason of the last SHUTDOWN event; 'no-shutdown-event' if QEMU died without one (e.g. SIGKILL). */
  readonly reason: ShutdownReason | 'no-shutdown-event';
  /** data.guest of that event: true when the guest asked for it. */
  readonly guest: boolean | undefined;
  /** QEMU's exit status; undefined when it was killed by a signal. */
  readonly exitCode: number | undefined;
  /** Signal that ended QEMU (e.g. 'SIGKILL'), if any. */
  readonly signal: string | undefined;
  /** The console shows a kernel panic (with panic=-1 that becomes reason guest-reset). */
  readonly panicked: boolean;
  /** Seconds from QEMU start to its exit. */
  readonly elapsed: number;
  /** QEMU's stderr (last 4 KB). */
  readonly stderr: string;
}

/** Options of Machine.waitForExit and Machine.quit. */
export interface ExitWaitOptions {
  /** ms; default 30000 (waitForExit), 5000 (quit). */
  readonly timeout?: number;
}

/**
 * Error of boot() and Machine: a missing input file, QEMU exiting early, a timeout of
 * waitFor/run/waitForExit (their messages carry the last console output and QEMU's stderr).
 */
export class BootError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'BootError';
  }
}

// Every live machine, so a dying test process never leaves QEMU behind (execa's cleanup sends SIGTERM too).
const live = new Set<Machine>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const m of live) m.killSync();
  });
}

/** Kills every machine still running in this process. */
export async function killAll(): Promise<void> {
  await Promise.all([...live].map((m) => m.kill()));
}

function checkFile(what: string, path: string): void {
  let st;
  try {
    st = statSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new BootError(`${what} not found: ${path}${code !== undefined && code !== 'ENOENT' ? ` (${code})` : ''}`);
  }
  if (!st.isFile()) throw new BootError(`${what} is not a regular file: ${path}`);
}

interface Waiter {
  readonly pattern: string | RegExp;
  readonly from: number;
  readonly resolve: (m: TimedMatch) => void;
  readonly reject: (e: Error) => void;
  readonly timer: NodeJS.Timeout;
}

const PANIC = /Kernel panic - not syncing/;
let runCounter = 0;

/** A running QEMU guest. Create with boot(); dispose with `await using` or kill(). */
export class Machine implements AsyncDisposable {
  readonly arch: Arch;
  readonly accel: ResolvedAccel;
  readonly command: QemuCommand;
  readonly name: string;
  /** performance.now() just before QEMU was spawned ("QEMU start"). */
  readonly startedAt: number;
  /** performance.now() when the guest CPUs were let run (after QMP was connected; boot() starts QEMU paused). */
  resumedAt: number | undefined;
  readonly #proc: ResultPromise<{ stdio: readonly ['pipe', 'pipe', 'pipe']; buffer: false; reject: false }>;
  readonly #dir: string;
  readonly #decoder = new TextDecoder('utf-8');
  #console = '';
  // [console length after chunk, performance.now() at arrival], for match timing
  readonly #chunks: [number, number][] = [];
  #stderr = '';
  #logFd: number | undefined;
  readonly #onConsole: ((chunk: string) => void) | undefined;
  readonly #waiters = new Set<Waiter>();
  #qmp: QmpClient | undefined;
  #exitInfo: ExitInfo | undefined;
  readonly #exited: Promise<ExitInfo>;
  #disposed = false;
  #agent: Promise<AgentClient> | undefined;
  #agentClient: AgentClient | undefined;
  #agentSocket: string | undefined;
  #agentEvents = true;
  // restorable drives: index -> the overlay boot() made; volatile: drives whose writes QEMU keeps in its own overlay
  readonly #overlays: ReadonlyMap<number, string>;
  // the guest RAM's file when QEMU maps it shared (a booted machine), in a directory of its own
  readonly #ramFile: string | undefined;
  readonly #volatileDrives: boolean;

  /** @internal use boot() */
  constructor(
    command: QemuCommand,
    dir: string,
    opts: { name: string; consoleLog?: string; onConsole?: (chunk: string) => void; overlays?: ReadonlyMap<number, string>; volatileDrives?: boolean; ramFile?: string; incomingFd?: number },
  ) {
    this.#overlays = opts.overlays ?? new Map();
    this.#ramFile = opts.ramFile;
    this.#volatileDrives = opts.volatileDrives ?? false;
    this.arch = command.arch;
    this.accel = command.accel;
    this.command = command;
    this.name = opts.name;
    this.#dir = dir;
    this.#onConsole = opts.onConsole;
    if (opts.consoleLog !== undefined) {
      mkdirSync(dirname(opts.consoleLog), { recursive: true });
      this.#logFd = openSync(opts.consoleLog, 'w');
    }
    installExitHook();
    this.startedAt = performance.now();
    // a restore's stream: QEMU's fd 3 (INCOMING_FD), which it reads itself (no `cat` to start)
    // (execa's types take no fd number beyond stdio; child_process.spawn, which it calls, does)
    const stdio = ['pipe', 'pipe', 'pipe', ...(opts.incomingFd !== undefined ? [opts.incomingFd] : [])] as unknown as readonly ['pipe', 'pipe', 'pipe'];
    this.#proc = execa(command.bin, command.args, {
      stdio,
      env: qemuEnv(),
      buffer: false,
      reject: false,
      cleanup: true,
      forceKillAfterDelay: 3000,
    });
    live.add(this);
    this.#proc.stdout.on('data', (chunk: Buffer) => this.#onStdout(chunk));
    this.#proc.stderr.on('data', (chunk: Buffer) => {
      this.#stderr = (this.#stderr + chunk.toString('utf8')).slice(-4096);
    });
    this.#proc.stdin.on('error', () => {
      // EPIPE after QEMU exited: reported by type()/exit handling instead
    });
    this.#exited = this.#proc.then(async (r) => this.#onExit(r.exitCode, r.signal), async () => this.#onExit(undefined, undefined));
  }

  async #onExit(exitCode: number | undefined, signal: string | undefined): Promise<ExitInfo> {
    const tail = this.#decoder.decode();
    if (tail !== '') this.#append(tail, performance.now());
    const endedAt = performance.now();
    // QMP events can arrive after the process exit is noticed: let the socket drain.
    if (this.#qmp !== undefined) {
      await Promise.race([this.#qmp.closed, new Promise((res) => setTimeout(res, 1000).unref())]);
    }
    const shutdown = [...(this.#qmp?.events ?? [])].reverse().find((e) => e.event === 'SHUTDOWN');
    const reason = shutdown?.data?.['reason'];
    const guest = shutdown?.data?.['guest'];
    const info: ExitInfo = {
      reason: typeof reason === 'string' ? (reason as ShutdownReason) : 'no-shutdown-event',
      guest: typeof guest === 'boolean' ? guest : undefined,
      exitCode,
      signal,
      panicked: PANIC.test(this.#console),
      elapsed: (endedAt - this.startedAt) / 1000,
      stderr: this.#stderr,
    };
    this.#exitInfo = info;
    live.delete(this);
    try {
      this.#closeLog();
    } catch {
      // nothing useful to do
    }
    for (const w of [...this.#waiters]) {
      this.#settle(w);
      w.reject(
        new BootError(
          `${this.name}: QEMU exited (${this.#describeExit(info)}) while waiting for ${describePattern(w.pattern)}\n` +
            `--- last console output ---\n${consoleTail(this.#console)}`,
        ),
      );
    }
    return info;
  }

  #describeExit(info: ExitInfo): string {
    const how = info.signal !== undefined ? `signal ${info.signal}` : `status ${info.exitCode ?? '?'}`;
    const stderr = info.stderr.trim();
    return `${how}, reason ${info.reason}${info.panicked ? ', kernel panic' : ''}${stderr !== '' ? `, stderr: ${stderr.slice(-1000)}` : ''}`;
  }

  #stderrNote(): string {
    const e = this.#stderr.trim();
    return e === '' ? '' : `--- QEMU stderr ---\n${e.slice(-1500)}\n`;
  }

  #onStdout(chunk: Buffer): void {
    const now = performance.now();
    if (this.#logFd !== undefined) writeSync(this.#logFd, chunk);
    const text = this.#decoder.decode(chunk, { stream: true });
    if (text !== '') this.#append(text, now);
  }

  #append(text: string, now: number): void {
    this.#console += text;
    this.#chunks.push([this.#console.length, now]);
    if (this.#onConsole !== undefined) {
      try {
        this.#onConsole(text);
      } catch {
        // a failing callback must not break the harness
      }
    }
    for (const w of [...this.#waiters]) {
      const m = findPattern(this.#console, w.pattern, w.from);
      if (m !== undefined) {
        this.#settle(w);
        w.resolve(this.#timed(m));
      }
    }
  }

  #settle(w: Waiter): void {
    clearTimeout(w.timer);
    this.#waiters.delete(w);
  }

  /** performance.now() when the console reached `offset` characters. */
  timeAt(offset: number): number {
    let lo = 0;
    let hi = this.#chunks.length - 1;
    let best = this.#chunks.length > 0 ? (this.#chunks[hi]?.[1] ?? performance.now()) : performance.now();
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const c = this.#chunks[mid];
      if (c === undefined) break;
      if (c[0] >= offset) {
        best = c[1];
        hi = mid - 1;
      } else {
        lo = mid + 1;
      }
    }
    return best;
  }

  #timed(m: ConsoleMatch): TimedMatch {
    const at = this.timeAt(m.end);
    return { ...m, at, elapsed: (at - this.startedAt) / 1000 };
  }

  /** Seconds since QEMU was spawned (or between spawn and `at`, a performance.now() value). */
  elapsed(at = performance.now()): number {
    return (at - this.startedAt) / 1000;
  }

  /** QEMU's process id. */
  get pid(): number | undefined {
    return this.#proc.pid;
  }

  /**
   * What QEMU has used on the host so far: CPU time in user mode (translating and running
   * guest code) and in the host kernel, and its anonymous memory (the guest RAM it has
   * touched, translated code, its heap). undefined once it has exited or where the host has
   * no /proc.
   */
  hostUsage(): QemuUsage | undefined {
    return qemuUsage(this.pid);
  }

  /** All console output so far (decoded as UTF-8). */
  get console(): string {
    return this.#console;
  }

  /** The current end of the console: pass as `from` to wait only for output that comes later. */
  mark(): number {
    return this.#console.length;
  }

  /** QEMU's stderr so far (last 4 KB). */
  get stderr(): string {
    return this.#stderr;
  }

  /** QMP events received so far. */
  get events(): readonly QmpEvent[] {
    return this.#qmp?.events ?? [];
  }

  /** Set once QEMU has exited. */
  get exitInfo(): ExitInfo | undefined {
    return this.#exitInfo;
  }

  get running(): boolean {
    return this.#exitInfo === undefined;
  }

  /**
   * Waits until the console contains pattern at or after opts.from (default 0).
   * Rejects after opts.timeout ms (default 30000), or at once when QEMU exits, with the
   * pattern and the last ~2 KB of console in the message. Anchor regexps on a line end
   * (e.g. /ready \d+\r?\n/) when a longer match could still be arriving.
   */
  waitFor(pattern: string | RegExp, opts: WaitOptions = {}): Promise<TimedMatch> {
    const from = opts.from ?? 0;
    const found = findPattern(this.#console, pattern, from);
    if (found !== undefined) return Promise.resolve(this.#timed(found));
    if (this.#exitInfo !== undefined) {
      return Promise.reject(
        new BootError(
          `${this.name}: QEMU has exited (${this.#describeExit(this.#exitInfo)}); ${describePattern(pattern)} never appeared\n` +
            `--- last console output ---\n${consoleTail(this.#console)}`,
        ),
      );
    }
    const timeout = opts.timeout ?? 30000;
    const started = performance.now();
    return new Promise<TimedMatch>((resolve, reject) => {
      const w: Waiter = {
        pattern,
        from,
        resolve,
        reject,
        timer: setTimeout(() => {
          this.#settle(w);
          reject(
            new BootError(
              `${this.name}: ${describePattern(pattern)} not seen on the console within ${timeout} ms ` +
                `(searched from offset ${from}; ${this.elapsed().toFixed(1)} s since QEMU start, waited from ${this.elapsed(started).toFixed(1)} s)\n` +
                `${this.#stderrNote()}--- last console output ---\n${consoleTail(this.#console)}`,
            ),
          );
        }, timeout),
      };
      this.#waiters.add(w);
    });
  }

  /** Writes raw text to the serial console (as if typed; no newline added). */
  type(text: string): Promise<void> {
    if (this.#exitInfo !== undefined) return Promise.reject(new BootError(`${this.name}: cannot type: QEMU has exited`));
    const stdin = this.#proc.stdin;
    return new Promise((resolve, reject) => {
      stdin.write(text, (err) => (err ? reject(new BootError(`${this.name}: console write failed: ${err.message}`)) : resolve()));
    });
  }

  /** Types a line and Enter (a carriage return, like a terminal; the tty's ICRNL turns it into a newline). */
  sendLine(line: string): Promise<void> {
    return this.type(`${line}\r`);
  }

  /**
   * Runs a one-line shell command on a shell that reads the console, and returns its
   * output (stdout+stderr, CRs and timestamped kernel messages removed) and exit status.
   * The command is framed with begin/end markers printed by printf from split words, so
   * the console's echo of the typed line can never match them. A shell prompt must be
   * waiting (or about to read) on the console; the command must not read stdin, and must
   * not end with '&' (use `(cmd &)`), and should be printable text (a TAB would trigger the
   * shell's completion). Lines over opts.maxLine (1000) characters are refused.
   */
  async run(cmd: string, opts: RunOptions = {}): Promise<RunResult> {
    const id = `${(++runCounter).toString(36)}${randomBytes(4).toString('hex')}`;
    const markers = runMarkers(cmd, id);
    const maxLine = opts.maxLine ?? 1000;
    if (markers.line.length > maxLine) {
      throw new BootError(
        `${this.name}: run(): the framed command line is ${markers.line.length} characters, over ${maxLine} ` +
          `(the guest's line editor would drop it): write a script into the guest and run that, or raise opts.maxLine`,
      );
    }
    const from = this.mark();
    const t0 = performance.now();
    await this.sendLine(markers.line);
    let m: TimedMatch;
    try {
      m = await this.waitFor(markers.pattern, { from, timeout: opts.timeout ?? 30000 });
    } catch (e) {
      throw new BootError(`${this.name}: run(${JSON.stringify(cmd)}) did not complete: ${(e as Error).message}`, { cause: e });
    }
    const out = parseRunOutput(m);
    if (opts.check === true && out.status !== 0) {
      throw new BootError(`${this.name}: run(${JSON.stringify(cmd)}) exited with status ${out.status}; output:\n${out.output}`);
    }
    return { ...out, seconds: (m.at - t0) / 1000 };
  }

  /** @internal start connecting to the guest agent (boot() with agent: true), on `early` first when given. */
  connectAgent(socket: string, timeout: number, events: boolean, early?: Socket): void {
    this.#agentSocket = socket;
    this.#agentEvents = events;
    const left = Math.max(1000, timeout - (performance.now() - this.startedAt));
    this.#agent = AgentClient.connect(socket, { timeout: left, abort: this.#exited, events, ...(early !== undefined ? { socket: early } : {}) }).then((c) => (this.#agentClient = c));
    this.#agent.catch(() => undefined);
  }

  /** @internal waits (briefly) until QEMU has taken a connection to the chardev `id` (query-chardev no longer says disconnected). */
  async waitChardevConnected(id: string): Promise<boolean> {
    const deadline = performance.now() + CHARDEV_WAIT_MS;
    while (performance.now() < deadline) {
      const all = await this.qmp<{ label: string; filename: string }[]>('query-chardev');
      const c = all.find((x) => x.label === id);
      if (c === undefined) return false;
      if (!c.filename.startsWith('disconnected:')) return true;
      await new Promise((r) => setTimeout(r, CHARDEV_POLL_MS));
    }
    return false;
  }

  /**
   * Waits until the guest has been quiet for opts.window ms: QEMU (whose CPU time under TCG
   * is the guest's) used at most opts.busyMs of CPU in that time. Resolves true then, or
   * false after opts.timeout ms (or at once where the host has no /proc/PID/stat to read).
   * Before a snapshot: a guest saved while busy goes on with that work after every restore,
   * where TCG must first translate its code again.
   */
  async waitForIdle(opts: IdleOptions = {}): Promise<boolean> {
    const window = opts.window ?? 1000;
    const busyMs = opts.busyMs ?? 50;
    const deadline = performance.now() + (opts.timeout ?? 30_000);
    const samples: [number, number][] = [];
    for (;;) {
      const cpu = qemuCpuMs(this.pid);
      if (cpu === undefined || this.#exitInfo !== undefined) return false;
      const now = performance.now();
      samples.push([now, cpu]);
      while (samples.length > 1 && samples[1]![0] <= now - window) samples.shift();
      const [t0, c0] = samples[0]!;
      if (now - t0 >= window && cpu - c0 <= busyMs) return true;
      if (now > deadline) return false;
      await new Promise((r) => setTimeout(r, IDLE_SAMPLE_MS));
    }
  }

  /**
   * Ends the agent session and opens a new one on the same port (the guest's agent keeps
   * running; what it ran for the old session is killed). Resolves with the new session.
   */
  async reconnectAgent(opts: { timeout?: number } = {}): Promise<AgentClient> {
    if (this.#agentSocket === undefined) throw new BootError(`${this.name}: booted without the agent (boot({ agent: true }))`);
    (await this.waitForAgent()).close();
    this.#agentClient = undefined;
    this.#agent = AgentClient.connect(this.#agentSocket, { timeout: opts.timeout ?? RECONNECT_TIMEOUT_MS, abort: this.#exited, events: this.#agentEvents }).then((c) => (this.#agentClient = c));
    return this.#agent;
  }

  /**
   * The guest agent's session, once it has answered (boot() with agent: true). Rejects when
   * the machine has no agent port, the agent did not answer within the boot's
   * agentTimeout, or QEMU exited.
   */
  waitForAgent(): Promise<AgentClient> {
    if (this.#agent === undefined) return Promise.reject(new BootError(`${this.name}: booted without the agent (boot({ agent: true }))`));
    return this.#agent;
  }

  /** The supervisor's events the guest agent forwarded so far (service up, ready, down, ...; the backlog first, marked replay). */
  get agentEvents(): readonly ServiceEvent[] {
    return this.#agentClient?.events ?? [];
  }

  /** Waits for an event of the guest's supervisor, forwarded by the agent (from now on, or opts.past: one seen already counts). */
  async waitForAgentEvent(match: (e: ServiceEvent) => boolean, opts: { timeout?: number; past?: boolean } = {}): Promise<ServiceEvent> {
    return (await this.waitForAgent()).waitForEvent(match, opts);
  }

  /**
   * Runs argv in the guest (no shell) and returns its exit code or signal, stdout and
   * stderr apart; opts.onStdout/onStderr get the output as it comes (the streaming form).
   * Through the agent when the machine has one, else typed on the console (m.run: a
   * shell prompt must be waiting; output comes at the end, base64 through the console;
   * a signal shows as code 128+n; the line must fit run's maxLine; without a timeout it
   * is waited for CONSOLE_EXEC_TIMEOUT_MS + CONSOLE_EXEC_SLACK_MS, 60 s, then a BootError).
   */
  async exec(argv: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
    if (argv.length === 0) throw new BootError(`${this.name}: exec: empty argv`);
    if (opts.via === 'agent' || (opts.via === undefined && this.#agent !== undefined)) return (await this.waitForAgent()).exec(argv, opts);
    return this.#execConsole(argv, opts);
  }

  /** exec() without an agent: the command typed on the console, its output in files sent back in base64. */
  async #execConsole(argv: readonly string[], opts: ExecOptions): Promise<ExecResult> {
    const t0 = performance.now();
    const id = randomBytes(4).toString('hex');
    const o = `/tmp/.rts-o.${id}`;
    const e = `/tmp/.rts-e.${id}`;
    const env = Object.entries(opts.env ?? {}).map(([k, v]) => shq(`${k}=${v}`));
    const secs = opts.timeout !== undefined ? Math.max(1, Math.ceil(opts.timeout / 1000)) : undefined;
    const cmd = [...(env.length ? ['env', ...env] : []), ...(secs !== undefined ? ['timeout', '-s', 'KILL', String(secs)] : []), ...argv.map(shq)].join(' ');
    // stdin: base64 on the line, decoded in the guest (the line's length limits it)
    const feed = opts.stdin === undefined ? '' : `printf %s ${Buffer.from(opts.stdin).toString('base64')} | base64 -d | `;
    const line = `${feed}(cd ${shq(opts.cwd ?? '/')} && ${cmd}) ${feed === '' ? '</dev/null ' : ''}>${o} 2>${e}; s=$?; base64 ${o}; echo :; base64 ${e}; rm -f ${o} ${e}; (exit $s)`;
    const r = await this.run(line, { timeout: (opts.timeout ?? CONSOLE_EXEC_TIMEOUT_MS) + CONSOLE_EXEC_SLACK_MS });
    const [out = '', err = ''] = r.output.split(/^:$/m);
    const decode = (b64: string) => Buffer.from(b64.replace(/\s+/g, ''), 'base64');
    const stdout = decode(out);
    const stderr = decode(err);
    if (stdout.length) opts.onStdout?.(stdout);
    if (stderr.length) opts.onStderr?.(stderr);
    const timedOut = secs !== undefined && r.status === 137;
    return { code: timedOut ? null : r.status, signal: timedOut ? 'SIGKILL' : null, stdout: stdout.toString('utf8'), stderr: stderr.toString('utf8'), timedOut, ms: performance.now() - t0, via: 'console' };
  }

  /** Copies a host file into the guest (through the agent), making the guest's directories; mode defaults to the host file's. */
  async copyIn(hostPath: string, guestPath: string, opts: { mode?: number } = {}): Promise<void> {
    const agent = await this.waitForAgent();
    await agent.writeFile(guestPath, readFileSync(hostPath), { mode: opts.mode ?? statSync(hostPath).mode & 0o7777 });
  }

  /** Copies a guest file to the host (through the agent), making the host's directory. */
  async copyOut(guestPath: string, hostPath: string): Promise<void> {
    const data = await (await this.waitForAgent()).readFile(guestPath);
    mkdirSync(dirname(hostPath), { recursive: true });
    writeFileSync(hostPath, data);
  }

  /**
   * Mounts the 9p share tag (boot({ shares })) at the guest's path, through the agent;
   * readOnly mounts it read-only in the guest (a share with readOnly is read-only whatever
   * the mount says). QEMU refuses to snapshot while a share is mounted: umountShare first.
   */
  async mountShare(tag: string, guestPath: string, opts: { readOnly?: boolean } = {}): Promise<void> {
    await (await this.waitForAgent()).mount(tag, guestPath, opts);
  }

  /** Unmounts a share (or anything) mounted at the guest's path, through the agent. */
  async umountShare(guestPath: string): Promise<void> {
    await (await this.waitForAgent()).umount(guestPath);
  }

  /**
   * Saves the running machine to file (QMP migrate to `exec:cat > FILE`, the CPUs stopped
   * meanwhile), its RAM beside it (FILE.ram, a sparse copy of the file QEMU maps as the
   * guest's RAM, left out of the stream by x-ignore-shared: a restore maps it instead of
   * reading it), and restorable drives' overlays (FILE.diskN.qcow2); then the
   * guest runs on (default) or QEMU quits. boot({ ..., restore: file }) starts from it.
   * Refused by QEMU while a 9p share is mounted in the guest (the guest then runs on), and
   * refused here when a writable drive was not booted restorable (its saved state could
   * not match the disk).
   */
  async snapshot(file: string, opts: SnapshotOptions = {}): Promise<SnapshotInfo> {
    if (this.#volatileDrives) throw new BootError(`${this.name}: snapshot: writable drives need boot({ restorable: true }) (QEMU's own throw-away overlay cannot be saved)`);
    const t0 = performance.now();
    const path = resolvePath(file);
    mkdirSync(dirname(path), { recursive: true });
    const { running } = await this.qmp<{ running: boolean }>('query-status');
    const ram = savedRamFile(path);
    const ramTmp = `${ram}.tmp-${process.pid}`;
    await this.qmp('stop');
    try {
      await this.qmp('migrate-set-capabilities', { capabilities: [{ capability: 'x-ignore-shared', state: this.#ramFile !== undefined }, MIGRATION_EVENTS] });
      await this.qmp('migrate-set-parameters', { 'max-bandwidth': MIGRATE_BANDWIDTH });
      await this.qmp('migrate', { uri: `exec:cat > ${shq(path)}` });
      await this.#waitMigration('snapshot', opts.timeout ?? MIGRATE_TIMEOUT_MS);
      // a new file renamed over the old one: a machine restored from the old one still maps it
      if (this.#ramFile !== undefined) {
        await execa('cp', ['--sparse=always', '--reflink=auto', this.#ramFile, ramTmp]);
        renameSync(ramTmp, ram);
      } else rmSync(ram, { force: true });
    } catch (e) {
      // refused (a 9p share mounted) or failed: the guest runs on as it did
      if (running && this.running) await this.qmp('cont').catch(() => undefined);
      rmSync(path, { force: true });
      rmSync(ramTmp, { force: true });
      throw new BootError(`${this.name}: snapshot to ${path}: ${(e as Error).message}`, { cause: e });
    }
    const disks: string[] = [];
    for (const [i, overlay] of this.#overlays) {
      const saved = `${path}.disk${i}.qcow2`;
      copyFileSync(overlay, saved);
      disks.push(saved);
    }
    const ramSaved = this.#ramFile !== undefined ? ram : undefined;
    const bytes = statSync(path).size + (ramSaved !== undefined ? statSync(ramSaved).blocks * 512 : 0);
    const info: SnapshotInfo = { file: path, disks, ram: ramSaved, bytes, ms: performance.now() - t0 };
    if ((opts.then ?? 'continue') === 'quit') await this.quit();
    else await this.qmp('cont');
    return info;
  }

  /** @internal waits until query-migrate says completed (outgoing, or incoming with -incoming); throws on failed. */
  async #waitMigration(what: string, timeout: number): Promise<void> {
    const deadline = performance.now() + timeout;
    for (;;) {
      const from = this.events.length;
      const st = await this.qmp<{ status?: string; 'error-desc'?: string }>('query-migrate');
      if (st.status === 'completed') return;
      if (st.status === 'failed' || st.status === 'cancelled') throw new BootError(`${this.name}: ${what}: migration ${st.status}${st['error-desc'] ? `: ${st['error-desc']}` : ''}\n${this.#stderrNote()}`);
      if (performance.now() > deadline) throw new BootError(`${this.name}: ${what}: migration not complete within ${timeout} ms (status ${st.status ?? 'none'})`);
      // the next look: at QEMU's MIGRATION event (the events capability is on), else after MIGRATE_POLL_MS
      await Promise.race([this.waitForEvent('MIGRATION', { from, timeout: MIGRATE_POLL_MS }).catch(() => undefined), this.#exited]);
      if (this.#exitInfo !== undefined) throw new BootError(`${this.name}: ${what}: QEMU exited (${this.#describeExit(this.#exitInfo)})`);
    }
  }

  /** @internal boot() with restore: waits for the incoming state to be loaded. */
  waitIncoming(timeout: number): Promise<void> {
    return this.#waitMigration('restore', timeout);
  }

  #requireQmp(): QmpClient {
    if (this.#qmp === undefined) throw new BootError(`${this.name}: QMP is not connected`);
    return this.#qmp;
  }

  /** Runs any QMP command; resolves with its `return` value. */
  qmp<T = unknown>(command: string, args?: Record<string, unknown>, opts: { timeout?: number } = {}): Promise<T> {
    try {
      return this.#requireQmp().execute<T>(command, args, opts);
    } catch (e) {
      return Promise.reject(e as Error);
    }
  }

  /** Waits for a QMP event by name or predicate (by default one that arrives from now on). */
  waitForEvent(match: string | ((e: QmpEvent) => boolean), opts: QmpWaitOptions = {}): Promise<QmpEvent> {
    try {
      return this.#requireQmp().waitForEvent(match, opts);
    } catch (e) {
      return Promise.reject(e as Error);
    }
  }

  /**
   * Presses keys together via QMP send-key. Keys are QEMU qcodes ('ctrl', 'alt', 'delete',
   * 'ret', 'a', 'f1', ...) or raw scancodes (numbers). hold-time defaults to QEMU's 100 ms.
   * A key sent before the guest's keyboard driver is up is silently dropped: wait for a guest
   * marker first. On aarch64 the guest needs virtio_mmio and virtio_input loaded.
   */
  async sendKeys(keys: readonly (string | number)[], opts: { holdTime?: number } = {}): Promise<void> {
    const args: Record<string, unknown> = {
      keys: keys.map((k) => (typeof k === 'number' ? { type: 'number', data: k } : { type: 'qcode', data: k })),
    };
    if (opts.holdTime !== undefined) args['hold-time'] = opts.holdTime;
    await this.qmp('send-key', args);
  }

  /** Ctrl-Alt-Del on the guest keyboard (PS/2 on x86_64, virtio keyboard on aarch64). */
  ctrlAltDel(): Promise<void> {
    return this.sendKeys(['ctrl', 'alt', 'delete']);
  }

  /** Resolves when QEMU has exited; rejects after opts.timeout ms (default 30000) without killing it. */
  waitForExit(opts: ExitWaitOptions = {}): Promise<ExitInfo> {
    if (this.#exitInfo !== undefined) return Promise.resolve(this.#exitInfo);
    const timeout = opts.timeout ?? 30000;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(
          new BootError(
            `${this.name}: QEMU still running after ${timeout} ms (${this.elapsed().toFixed(1)} s since start)\n` +
              `${this.#stderrNote()}--- last console output ---\n${consoleTail(this.#console)}`,
          ),
        );
      }, timeout);
      void this.#exited.then((info) => {
        clearTimeout(timer);
        resolve(info);
      });
    });
  }

  /** Asks QEMU to quit via QMP (reason host-qmp-quit) and waits for it; kills it if that fails. */
  async quit(opts: ExitWaitOptions = {}): Promise<ExitInfo> {
    if (this.#exitInfo !== undefined) return this.#exitInfo;
    try {
      await this.qmp('quit', undefined, { timeout: opts.timeout ?? 5000 });
      return await this.waitForExit({ timeout: opts.timeout ?? 5000 });
    } catch {
      return this.kill();
    }
  }

  /** Kills QEMU (SIGKILL) and waits for it to be gone. */
  async kill(): Promise<ExitInfo> {
    if (this.#exitInfo === undefined) this.#proc.kill('SIGKILL');
    return this.#exited;
  }

  /** @internal synchronous last-resort kill (process exit hook). */
  killSync(): void {
    if (this.#exitInfo === undefined) {
      try {
        this.#proc.kill('SIGKILL');
      } catch {
        // already gone
      }
    }
    this.#removeFiles();
    this.#closeLog();
  }

  /** Removes the temp dir and the RAM file's directory (which lives apart, on tmpfs). */
  #removeFiles(): void {
    rmSync(this.#dir, { recursive: true, force: true });
    if (this.#ramFile !== undefined) rmSync(dirname(this.#ramFile), { recursive: true, force: true });
  }

  #closeLog(): void {
    if (this.#logFd !== undefined) {
      closeSync(this.#logFd);
      this.#logFd = undefined;
    }
  }

  /** @internal */
  async connectQmp(socket: string, timeout: number): Promise<void> {
    const deadline = performance.now() + timeout;
    for (;;) {
      if (this.#exitInfo !== undefined) {
        throw new BootError(
          `${this.name}: QEMU exited before its QMP socket was ready (${this.#describeExit(this.#exitInfo)})\n` +
            `command: ${this.command.bin} ${this.command.args.join(' ')}`,
        );
      }
      let exists = false;
      try {
        exists = statSync(socket).isSocket();
      } catch {
        exists = false;
      }
      if (exists) {
        try {
          this.#qmp = await QmpClient.connect(socket, { timeout: Math.max(1000, deadline - performance.now()) });
          return;
        } catch (e) {
          if (performance.now() > deadline) throw new BootError(`${this.name}: ${(e as Error).message}`, { cause: e });
        }
      }
      if (performance.now() > deadline) {
        throw new BootError(
          `${this.name}: QMP socket ${socket} did not appear within ${timeout} ms` +
            `${this.#stderr.trim() !== '' ? `; QEMU stderr: ${this.#stderr.trim()}` : ''}`,
        );
      }
      await Promise.race([new Promise((res) => setTimeout(res, 10)), this.#exited]);
    }
  }

  /** Kills QEMU if still running, closes QMP and the log, removes the temp dir. Safe to call twice. */
  async dispose(): Promise<void> {
    if (this.#disposed) return;
    this.#disposed = true;
    this.#agentClient?.close();
    await this.kill();
    this.#qmp?.close();
    this.#closeLog();
    this.#removeFiles();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.dispose();
  }
}

/**
 * Boots a guest: checks inputs, resolves the accelerator, starts QEMU with the CPUs stopped,
 * connects QMP (capabilities negotiated), then lets the guest run. Always pair with
 * `await using m = await boot(...)` or `await m.dispose()`.
 */
export async function boot(opts: BootOptions): Promise<Machine> {
  const arch = opts.arch;
  if (ARCH_INFO[arch] === undefined) throw new BootError(`unsupported arch '${String(arch)}'`);
  const bin = requireQemu(arch, opts.qemu);
  if (opts.kernel !== undefined) checkFile('kernel', opts.kernel);
  if (opts.initrd !== undefined) checkFile('initrd', opts.initrd);
  for (const d of opts.drives ?? []) checkFile('drive', d.file);
  for (const f of opts.pmem ?? []) checkFile('pmem', f);
  if (opts.restore !== undefined) checkFile('snapshot', opts.restore);
  const fw = opts.firmware;
  if (fw !== undefined) for (const f of 'bios' in fw ? [fw.bios] : [fw.code, fw.vars]) checkFile('firmware', f);
  const accel = await resolveAccel(arch, opts.accel ?? 'auto', { qemu: bin });
  // Unix socket paths are limited to 107 bytes: fall back to /tmp when TMPDIR is deep.
  const base = join(tmpdir(), 'runit-ts-qemu-XXXXXX', 'qmp.sock').length <= 100 ? tmpdir() : '/tmp';
  const dir = mkdtempSync(join(base, 'runit-ts-qemu-'));
  const qmpSocket = join(dir, 'qmp.sock');
  const agentSocket = opts.agent === true ? join(dir, 'agent.sock') : undefined;
  // RAM: a booted machine's in a shared file (tmpfs when there is one), so that a snapshot
  // can leave it out of the stream; a restored one maps the saved RAM file privately
  const savedRam = opts.restore !== undefined ? savedRamFile(resolvePath(opts.restore)) : undefined;
  const ramFile = opts.restore === undefined && opts.snapshotRam ? join(mkdtempSync(join(existsSync(RAM_DIR) ? RAM_DIR : base, 'runit-ts-ram-')), 'ram') : undefined;
  const incomingFd = opts.restore !== undefined ? openSync(resolvePath(opts.restore), 'r') : undefined;
  const ram: QemuOptions['ram'] =
    ramFile !== undefined ? { file: ramFile, shared: true } : savedRam !== undefined && existsSync(savedRam) ? { file: savedRam, shared: false } : 'anonymous';
  let machine: Machine;
  try {
    const { drives, overlays, volatileDrives } = await prepareDrives(opts, dir);
    // UEFI variables: a private copy, so the packaged store stays untouched
    let firmware = opts.firmware;
    if (firmware !== undefined && 'vars' in firmware) {
      const vars = join(dir, 'efivars.fd');
      copyFileSync(firmware.vars, vars);
      firmware = { code: firmware.code, vars };
    }
    // a restore: the saved RAM holds what the kernel and initramfs brought (restoreKernel)
    const restoreOnly = opts.restore !== undefined && opts.kernel !== undefined ? { kernel: restoreKernel(opts.kernel, dir), initrd: undefined } : {};
    const command = qemuCommand({
      ...opts,
      ...restoreOnly,
      ...(firmware !== undefined ? { firmware } : {}),
      ...(drives !== undefined ? { drives } : {}),
      ...(agentSocket !== undefined ? { agentSocket } : {}),
      ...(opts.restore !== undefined ? { incoming: 'defer' } : {}),
      ram,
      qemu: bin,
      accel,
      console: 'pipe',
      qmpSocket,
      paused: true,
    });
    machine = new Machine(command, dir, {
      name: opts.name ?? arch,
      overlays,
      volatileDrives,
      ...(ramFile !== undefined ? { ramFile } : {}),
      ...(incomingFd !== undefined ? { incomingFd } : {}),
      ...(opts.consoleLog !== undefined ? { consoleLog: opts.consoleLog } : {}),
      ...(opts.onConsole !== undefined ? { onConsole: opts.onConsole } : {}),
    });
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    if (ramFile !== undefined) rmSync(dirname(ramFile), { recursive: true, force: true });
    throw e;
  } finally {
    // QEMU has its own copy
    if (incomingFd !== undefined) closeSync(incomingFd);
  }
  try {
    await machine.connectQmp(qmpSocket, opts.qmpTimeout ?? 15000);
    let early: Socket | undefined;
    if (opts.restore !== undefined) {
      // the agent's host end connected before the guest runs again: a guest saved with a host
      // connected then sees no change of host (QEMU tells the guest only of one), so its agent
      // does not end a session and go looking for the next one (code TCG would translate
      // again), and the new host's hello starts its session
      const connecting = agentSocket !== undefined ? AgentClient.openSocket(agentSocket) : undefined;
      // the stream leaves the RAM out when the snapshot saved it as a file (the format differs)
      await machine.qmp('migrate-set-capabilities', { capabilities: [{ capability: 'x-ignore-shared', state: typeof ram === 'object' }, MIGRATION_EVENTS] });
      await machine.qmp('migrate-incoming', { uri: `fd:${INCOMING_FD}` });
      await machine.waitIncoming(MIGRATE_TIMEOUT_MS);
      early = await connecting;
      if (early !== undefined) await machine.waitChardevConnected(AGENT_CHARDEV_ID);
    }
    await machine.qmp('cont');
    machine.resumedAt = performance.now();
    if (agentSocket !== undefined) machine.connectAgent(agentSocket, opts.agentTimeout ?? DEFAULT_AGENT_TIMEOUT_MS, opts.agentEvents ?? true, early);
  } catch (e) {
    await machine.dispose();
    throw e;
  }
  return machine;
}

/**
 * QEMU's environment additions: glibc's malloc asks for transparent huge pages
 * (MADV_HUGEPAGE) for its heap, so QEMU's start, which fills megabytes of freshly
 * allocated memory, takes ~40% fewer page faults (~5200 to ~3000 here, 20-40 ms less CPU
 * of a restore's ~150). Added to GLIBC_TUNABLES when the environment has some; a glibc
 * before 2.35, or a host with THP off, ignores it.
 */
function qemuEnv(): Record<string, string> {
  const given = process.env['GLIBC_TUNABLES'];
  return { GLIBC_TUNABLES: given !== undefined && given !== '' ? `${given}:${QEMU_MALLOC_TUNABLE}` : QEMU_MALLOC_TUNABLE };
}

/** What Machine.hostUsage returns. */
export interface QemuUsage {
  /** CPU time in user mode, ms */
  readonly userMs: number;
  /** CPU time in the host kernel, ms */
  readonly systemMs: number;
  /** resident anonymous memory (RssAnon), KiB */
  readonly anonKiB: number;
}

/** The process pid's CPU time (user and system, ms), from /proc/PID/stat; undefined when it cannot be read. */
function qemuCpu(pid: number | undefined): { userMs: number; systemMs: number } | undefined {
  if (pid === undefined) return undefined;
  try {
    // the fields after the command name (which may hold spaces): utime and stime are the 12th and 13th, in clock ticks
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return { userMs: (Number(f[11]) * 1000) / CLOCK_TICKS_PER_S, systemMs: (Number(f[12]) * 1000) / CLOCK_TICKS_PER_S };
  } catch {
    return undefined;
  }
}

/** CPU time (user + system, ms) the process pid has used; undefined when it cannot be read (waitForIdle's sample: stat alone). */
function qemuCpuMs(pid: number | undefined): number | undefined {
  const c = qemuCpu(pid);
  return c && c.userMs + c.systemMs;
}

/** The process pid's CPU time and anonymous memory, from /proc/PID/stat and status; undefined when they cannot be read. */
function qemuUsage(pid: number | undefined): QemuUsage | undefined {
  const cpu = qemuCpu(pid);
  if (cpu === undefined) return undefined;
  try {
    const anon = /^RssAnon:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return { ...cpu, anonKiB: anon ? Number(anon[1]) : NaN };
  } catch {
    return undefined;
  }
}

/** Where a snapshot in file keeps the guest's RAM (Machine.snapshot writes it, boot({ restore }) maps it). */
export function savedRamFile(file: string): string {
  return `${file}.ram`;
}

/** A word for sh: single-quoted. */
function shq(word: string): string {
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

/**
 * The drives QEMU gets: with restorable, each writable snapshot drive becomes a qcow2
 * overlay (in dir) over its image, or over the overlay a snapshot saved when restoring.
 */
async function prepareDrives(opts: BootOptions, dir: string): Promise<{ drives: Drive[] | undefined; overlays: Map<number, string>; volatileDrives: boolean }> {
  const overlays = new Map<number, string>();
  if (opts.drives === undefined) return { drives: undefined, overlays, volatileDrives: false };
  const writable = (d: Drive) => d.readOnly !== true && d.snapshot !== false;
  if (opts.restorable !== true) return { drives: [...opts.drives], overlays, volatileDrives: opts.drives.some(writable) };
  const qemuImg = findExecutable('qemu-img');
  if (qemuImg === undefined) throw new BootError('restorable drives need qemu-img (Debian: qemu-utils), not found in PATH');
  const drives = await Promise.all(
    opts.drives.map(async (d, i): Promise<Drive> => {
      if (!writable(d)) return d;
      const saved = opts.restore !== undefined ? `${resolvePath(opts.restore)}.disk${i}.qcow2` : undefined;
      if (saved !== undefined && !existsSync(saved)) throw new BootError(`restore: no saved disk ${saved} for drive ${i} (${d.file})`);
      const [base, fmt] = saved !== undefined ? [saved, 'qcow2'] : [resolvePath(d.file), d.format ?? 'raw'];
      const overlay = join(dir, `disk${i}.qcow2`);
      await execa(qemuImg, ['create', '-q', '-f', 'qcow2', '-b', base, '-F', fmt, overlay]);
      overlays.set(i, overlay);
      return { file: overlay, format: 'qcow2', snapshot: false };
    }),
  );
  return { drives, overlays, volatileDrives: false };
}
