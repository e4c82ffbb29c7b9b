// boot(): run a guest under QEMU with its serial console on a pipe and QMP on a unix socket.

import { closeSync, copyFileSync, mkdirSync, mkdtempSync, openSync, rmSync, statSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { execa, type ResultPromise } from 'execa';
import { type Arch, ARCH_INFO, requireQemu } from './arch.ts';
import { type Accel, type ResolvedAccel, resolveAccel } from './kvm.ts';
import { type QemuCommand, type QemuOptions, qemuCommand } from './qemu.ts';
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
export interface BootOptions extends Omit<QemuOptions, 'console' | 'qmpSocket' | 'paused' | 'accel'> {
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
}

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
  readonly #proc: ResultPromise<{ stdin: 'pipe'; stdout: 'pipe'; stderr: 'pipe'; buffer: false; reject: false }>;
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

  /** @internal use boot() */
  constructor(
    command: QemuCommand,
    dir: string,
    opts: { name: string; consoleLog?: string; onConsole?: (chunk: string) => void },
  ) {
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
    this.#proc = execa(command.bin, command.args, {
      stdin: 'pipe',
      stdout: 'pipe',
      stderr: 'pipe',
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
    rmSync(this.#dir, { recursive: true, force: true });
    this.#closeLog();
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
    await this.kill();
    this.#qmp?.close();
    this.#closeLog();
    rmSync(this.#dir, { recursive: true, force: true });
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
  const fw = opts.firmware;
  if (fw !== undefined) for (const f of 'bios' in fw ? [fw.bios] : [fw.code, fw.vars]) checkFile('firmware', f);
  const accel = await resolveAccel(arch, opts.accel ?? 'auto', { qemu: bin });
  // Unix socket paths are limited to 107 bytes: fall back to /tmp when TMPDIR is deep.
  const base = join(tmpdir(), 'runit-ts-qemu-XXXXXX', 'qmp.sock').length <= 100 ? tmpdir() : '/tmp';
  const dir = mkdtempSync(join(base, 'runit-ts-qemu-'));
  const qmpSocket = join(dir, 'qmp.sock');
  let machine: Machine;
  try {
    // UEFI variables: a private copy, so the packaged store stays untouched
    let firmware = opts.firmware;
    if (firmware !== undefined && 'vars' in firmware) {
      const vars = join(dir, 'efivars.fd');
      copyFileSync(firmware.vars, vars);
      firmware = { code: firmware.code, vars };
    }
    const command = qemuCommand({ ...opts, ...(firmware !== undefined ? { firmware } : {}), qemu: bin, accel, console: 'pipe', qmpSocket, paused: true });
    machine = new Machine(command, dir, {
      name: opts.name ?? arch,
      ...(opts.consoleLog !== undefined ? { consoleLog: opts.consoleLog } : {}),
      ...(opts.onConsole !== undefined ? { onConsole: opts.onConsole } : {}),
    });
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  try {
    await machine.connectQmp(qmpSocket, opts.qmpTimeout ?? 15000);
    await machine.qmp('cont');
    machine.resumedAt = performance.now();
  } catch (e) {
    await machine.dispose();
    throw e;
  }
  return machine;
}
