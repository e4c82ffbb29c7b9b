// svlogd as a class: reads log lines from a stream or a pipe fd and writes them to log
// directories, with runit's svlogd semantics (docs/runit.md, svlogd), checked side
// by side with Debian's 2.1.2 svlogd in test/host/svlogd.test.ts.
//
// Where we differ from runit on purpose:
//  - an unterminated last line at EOF, and the line TERM interrupted, are logged (runit
//    drops them);
//  - old-file removal (n) neither counts nor removes .u files (as Debian's svlogd), and
//    never removes the file just rotated: after the clock stepped back it sorts oldest;
//    on a full disk (N) a .u is never the one deleted either;
//  - a processor killed by a signal has failed (runit's wait_exitcode calls it success);
//    one that cannot even be started is retried after 3 s, not at once in a loop;
//  - a processor running at HUP still gets its .t/.s/state handled (runit forgets it);
//  - -b is only checked: reads and writes are as big as the input allows (a pipe is read
//    64 KiB at a time, and not at all while a write pauses);
//  - a step that fails (a full disk: "pausing: unable to write to current") is said once
//    per error, not again at each 3 s retry (logdir.ts Pausing);
//  - -T: -tt/-ttt stamps in local time;
//  - rotation by age (t) is timed on the monotonic clock: a step of the wall clock neither
//    rotates at once nor holds a rotation back (runit's is on the wall clock);
//  - a current that was not closed cleanly is cut after its last newline before it becomes
//    a .u: after a power loss its end may be NUL bytes (a size committed before the data)
//    or a line cut short, which runit keeps, to run into the next file's first line;
//  - a rotated file (.s, .u) is never named before the newest old file: with the clock
//    behind that name (stepped back, or a boot after a power loss that ran fast), the
//    nanosecond after it, so the files' names keep the order they were written in (runit's
//    name is the clock's alone, and such files sorted before older ones).
//
// Used two ways:
//  - the svlogd applet (main.ts): one process, stdin, signals from the outside;
//  - in-process by the supervisor: for a log service whose ./run is exactly
//    `exec svlogd [opts] dirs` (logrun.ts), one Svlogd per log service in the
//    supervisor's own process. It looks like a ChildProcess to the supervisor:
//    pid, kill(signal) with svlogd's reaction to each signal, and an 'exit' event
//    (code, signal).
//
// Speed: input is taken in whole chunks and every directory gets one write per chunk
// (runit writes each line on its own). Size rotation points are still exactly runit's,
// because they depend only on byte counts and line ends (see Logdir.put/lineDone).
import type dgram from 'node:dgram';
import { EventEmitter } from 'node:events';
import { closeSync, createReadStream, fstatSync, writeSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Readable } from 'node:stream';
import { errorStr } from '../lib/errstr.ts';
import { native, readPipe, type FdWatch } from '../lib/native.ts';
import { monotonicMs, signalName } from '../lib/sys.ts';
import { Logdir, type LogdirHost } from './logdir.ts';
import { defaultSettings, type SvlogdSettings } from './options.ts';
import { STAMP_LEN, Stamper, wallClock } from './stamp.ts';

export interface SvlogdOptions extends Partial<SvlogdSettings> {
  dirs: string[];
  /** directory the log directories are relative to (default: process.cwd()) */
  cwd?: string;
  /** where svlogd's own stderr output goes: messages and lines selected by 'e' */
  stderr?: (data: Buffer) => void;
  /** the processors' stderr (default 2) */
  stderrFd?: number;
  /** the processors' environment (default process.env) */
  env?: NodeJS.ProcessEnv;
}

export interface SvlogdExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

const NL = Buffer.from('\n');
const DOTS = Buffer.from('...');
const UDP_WARNING = Buffer.from('warning: failure sending through udp: ');

/** Signals whose default action does nothing: a logger ignores them too. */
const IGNORED = new Set<string>(['SIGCHLD', 'SIGURG', 'SIGWINCH']);
const STOPS = new Set<string>(['SIGSTOP', 'SIGTSTP', 'SIGTTIN', 'SIGTTOU']);

function stderrWriter(data: Buffer): void {
  let off = 0;
  for (let tries = 0; off < data.length && tries < 1000; tries++) {
    try {
      off += writeSync(2, data, off, data.length - off);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') return;
    }
  }
}

export class Svlogd extends EventEmitter implements LogdirHost {
  /** the process the logger runs in (ours: an in-process logger has no pid of its own) */
  readonly pid = process.pid;
  /** the process's wall clock (shared by every logger in it) */
  readonly clock = wallClock();
  readonly linemax: number;
  readonly verbose: number;
  readonly env: NodeJS.ProcessEnv;
  readonly stderrFd: number;
  /** resolves when the logger is gone, as a process's exit */
  readonly done: Promise<SvlogdExit>;
  exitCode: number | null = null;
  signalCode: NodeJS.Signals | null = null;

  private resolveDone!: (e: SvlogdExit) => void;
  private readonly dirs: Logdir[];
  private readonly stamper: Stamper | undefined;
  private readonly xlat: Uint8Array | undefined;
  private readonly writeErr: (data: Buffer) => void;
  /** the first linemax bytes of the line being read (translated by -r/-R) */
  private readonly head: Buffer;
  private headLen = 0;
  /** a line was started (its stamp taken) and not finished */
  private inLine = false;
  /** the line's head is complete and the rest is being copied through */
  private long = false;
  private readonly scratch: Buffer;
  private readonly stampBuf = Buffer.alloc(STAMP_LEN);
  private errChunks: Buffer[] = [];
  private input: Input | undefined;
  private queue: Promise<void> = Promise.resolve();
  private tasks = 0;
  private dead = false;
  private finishing = false;
  private stopped = false;
  private stopWaiters: Array<() => void> = [];
  private rotateAsap = false;
  private reopenAsap = false;
  private exitAsap = false;
  private timer: NodeJS.Timeout | undefined;
  private udp: dgram.Socket | undefined;

  constructor(opts: SvlogdOptions) {
    super();
    const s = { ...defaultSettings(), ...opts };
    this.linemax = s.linemax;
    this.verbose = s.verbose;
    this.env = opts.env ?? process.env;
    this.stderrFd = opts.stderrFd ?? 2;
    this.writeErr = opts.stderr ?? stderrWriter;
    this.stamper = s.timestamp ? new Stamper(s.timestamp, s.localTime) : undefined;
    if (s.repl >= 0) {
      const x = new Uint8Array(256);
      for (let b = 0; b < 256; b++) x[b] = b < 32 || b > 126 || s.replace.includes(b) ? s.repl : b;
      this.xlat = x;
    }
    this.head = Buffer.alloc(this.linemax);
    this.scratch = Buffer.alloc(this.linemax);
    const cwd = opts.cwd ?? process.cwd();
    this.dirs = s.dirs.map((d) => new Logdir(d, resolve(cwd, d), this));
    this.done = new Promise((r) => (this.resolveDone = r));
  }

  // ------------------------------------------------------------------ public API

  /**
   * Open the log directories and start reading. input: a stream (process.stdin), or a
   * file descriptor (a pipe's read end) that is duplicated, so the caller keeps its own.
   */
  start(input: Readable | number): this {
    let source: Input;
    try {
      source = typeof input === 'number' ? fdInput(input) : streamInput(input, false);
    } catch (e) {
      // as a process would: it starts, complains and exits 111
      this.enqueue(() => this.fatal(`unable to read standard input: ${errorStr(e)}`));
      return this;
    }
    this.input = source;
    this.enqueue(async () => {
      let ok = false;
      for (const d of this.dirs) if (await d.open()) ok = true;
      if (!ok) return this.fatal('no functional log directories.');
      this.armTimer();
      // read nothing before the directories are open (as svlogd, which reads only then):
      // what a logger killed before that had read would be lost
      source.begin(
        (chunk) => this.onData(chunk),
        () => this.onEnd(),
        (e) => {
          this.warn('unable to read standard input', e);
          this.onEnd();
        },
      );
      if (this.stopped) source.pause();
    });
    return this;
  }

  /**
   * Deliver a signal, as if svlogd were a process: TERM ends after the current line,
   * HUP reopens, ALRM rotates, STOP/CONT pause and resume; KILL and signals svlogd does
   * not catch end it at once (what was logged so far is still written).
   */
  kill(signal: NodeJS.Signals | number = 'SIGTERM'): boolean {
    if (this.dead) return false;
    // a number with no name is taken as TERM
    const sig = typeof signal === 'number' ? (signal === 0 ? undefined : (signalName(signal) ?? 'SIGTERM')) : signal;
    if (sig === undefined) return true; // signal 0: "are you there"
    if (sig === 'SIGTERM') {
      if (this.verbose) this.info('sigterm received.');
      this.exitAsap = true;
      this.poke();
    } else if (sig === 'SIGHUP') {
      if (this.verbose) this.info('sighangup received.');
      this.reopenAsap = true;
      this.poke();
    } else if (sig === 'SIGALRM') {
      if (this.verbose) this.info('sigalarm received.');
      this.rotateAsap = true;
      this.poke();
    } else if (STOPS.has(sig)) {
      this.stopped = true;
      this.input?.pause();
    } else if (sig === 'SIGCONT') {
      if (this.stopped) {
        this.stopped = false;
        const w = this.stopWaiters;
        this.stopWaiters = [];
        for (const f of w) f();
        if (this.tasks === 0 && !this.finishing) this.input?.resume();
      }
    } else if (!IGNORED.has(sig)) this.abort(sig);
    return true;
  }

  // ------------------------------------------------------------------ LogdirHost

  info(msg: string): void {
    this.flushErr();
    this.writeErr(Buffer.from(`svlogd: info: ${msg}\n`));
  }

  warn(msg: string, e?: unknown): void {
    this.flushErr();
    this.writeErr(Buffer.from(`svlogd: warning: ${msg}${e === undefined ? '' : `: ${errorStr(e)}`}\n`));
  }

  pausing(msg: string, e: unknown): void {
    this.flushErr();
    this.writeErr(Buffer.from(`svlogd: pausing: ${msg}: ${errorStr(e)}\n`));
  }

  sleep(ms: number): Promise<void> {
    return new Promise((r) => setTimeout(r, ms));
  }

  alive(): boolean {
    return !this.dead;
  }

  timersChanged(): void {
    if (!this.dead && !this.finishing) this.armTimer();
  }

  // ------------------------------------------------------------------ event flow

  private enqueue(task: () => Promise<void> | void): void {
    this.tasks++;
    this.queue = this.queue
      .then(async () => {
        if (this.stopped) await new Promise<void>((r) => this.stopWaiters.push(r));
        if (!this.dead) await task();
      })
      .catch((e: unknown) => {
        if (!this.dead) {
          this.writeErr(Buffer.from(`svlogd: fatal: ${e instanceof Error ? e.message : String(e)}\n`));
          this.abandon(111, null);
        }
      })
      .finally(() => {
        this.tasks--;
      });
  }

  private onData(chunk: Buffer): void {
    if (this.dead || this.finishing) return;
    this.input!.pause();
    this.enqueue(async () => {
      if (this.finishing) return;
      this.processChunk(chunk);
      this.flushErr();
      await this.drainAll();
      await this.housekeeping();
      if (!this.dead && !this.finishing && !this.stopped) this.input!.resume();
    });
  }

  private onEnd(): void {
    this.enqueue(async () => {
      if (this.finishing) return;
      // runit drops an unterminated last line (and the line TERM interrupted); we keep it
      if (this.long) this.endLong();
      else if (this.inLine) this.shortLine(this.head, 0, this.headLen, false, false);
      this.inLine = this.long = false;
      this.flushErr();
      await this.drainAll();
      await this.finish();
    });
  }

  /** A signal arrived: act on it now if no chunk is being handled, else after it. */
  private poke(): void {
    this.enqueue(() => this.housekeeping());
  }

  /** What runit's svlogd does before each read: pending rotation, exit, reopen, age rotation. */
  private async housekeeping(): Promise<void> {
    if (this.dead || this.finishing) return;
    if (this.rotateAsap) {
      this.rotateAsap = false;
      for (const d of this.dirs) if (d.isOpen) d.markRotate();
      await this.drainAll();
    }
    if (this.exitAsap && !this.inLine) return this.finish();
    if (this.reopenAsap) {
      this.reopenAsap = false;
      let ok = false;
      for (const d of this.dirs) {
        await d.close();
        if (await d.open()) ok = true;
      }
      if (!ok) return this.fatal('no functional log directories.');
    }
    const now = monotonicMs();
    let due = false;
    for (const d of this.dirs) {
      if (d.isOpen && d.cfg.tmax && d.trotate < now) {
        d.markRotate();
        due = true;
      }
    }
    if (due) await this.drainAll();
    this.armTimer();
  }

  private armTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    let next = Infinity;
    for (const d of this.dirs) if (d.isOpen && d.cfg.tmax && d.trotate < next) next = d.trotate;
    if (next === Infinity) return;
    const wait = Math.min(Math.max(0, next - monotonicMs()) + 1, 2 ** 31 - 1);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.poke();
    }, wait);
    this.timer.unref();
  }

  private async drainAll(): Promise<void> {
    for (const d of this.dirs) if (d.pending()) await d.drain();
  }

  /** End of input or TERM: wait for processors, close every directory, exit 0. */
  private async finish(): Promise<void> {
    this.finishing = true;
    this.stopInput();
    for (const d of this.dirs) {
      await d.processorIdle();
      await d.close();
    }
    this.exit(0, null);
  }

  private fatal(msg: string): void {
    this.writeErr(Buffer.from(`svlogd: fatal: ${msg}\n`));
    this.abandon(111, null);
  }

  private abort(signal: NodeJS.Signals): void {
    this.abandon(null, signal);
  }

  /** Gone at once (fatal error, KILL): current files stay 0644, as after a crash. */
  private abandon(code: number | null, signal: NodeJS.Signals | null): void {
    if (this.dead) return;
    this.flushErr();
    this.stopInput();
    for (const d of this.dirs) d.abandon();
    this.exit(code, signal);
  }

  private stopInput(): void {
    this.input?.stop();
  }

  private exit(code: number | null, signal: NodeJS.Signals | null): void {
    this.dead = true;
    if (this.timer) clearTimeout(this.timer);
    this.udp?.close();
    this.udp = undefined;
    this.exitCode = code;
    this.signalCode = signal;
    this.emit('exit', code, signal);
    this.resolveDone({ code, signal });
  }

  // ------------------------------------------------------------------ lines

  private takeStamp(): void {
    this.stamper?.write(this.clock.now(), this.stampBuf, 0);
  }

  private processChunk(buf: Buffer): void {
    const n = buf.length;
    const lm = this.linemax;
    let pos = 0;
    this.clock.check();
    while (pos < n) {
      if (this.long) {
        const nl = buf.indexOf(10, pos);
        const end = nl < 0 ? n : nl;
        if (end > pos) this.rest(buf, pos, end - pos);
        if (nl < 0) return;
        this.endLong();
        this.long = this.inLine = false;
        pos = nl + 1;
        continue;
      }
      if (!this.inLine) {
        const nl = buf.indexOf(10, pos);
        this.takeStamp();
        if (nl >= 0 && nl - pos < lm) {
          this.shortLine(buf, pos, nl - pos, true, true);
          pos = nl + 1;
          continue;
        }
        this.inLine = true;
        this.headLen = 0;
      }
      // a line continued from an earlier chunk, or one reaching linemax
      const nl = buf.indexOf(10, pos);
      const end = nl < 0 ? n : nl;
      const take = Math.min(end - pos, lm - this.headLen);
      const x = this.xlat;
      const head = this.head;
      if (x) for (let i = 0; i < take; i++) head[this.headLen + i] = x[buf[pos + i]!]!;
      else buf.copy(head, this.headLen, pos, pos + take);
      this.headLen += take;
      pos += take;
      if (this.headLen === lm) {
        this.beginLong();
        this.long = true;
        continue;
      }
      if (nl < 0) return;
      this.shortLine(head, 0, this.headLen, false, false);
      this.inLine = false;
      pos = nl + 1;
    }
  }

  /**
   * A whole line shorter than linemax: len bytes at src[off]; nlFollows: src[off+len] is
   * its '\n'; raw: -r/-R not applied yet.
   */
  private shortLine(src: Buffer, off: number, len: number, nlFollows: boolean, raw: boolean): void {
    let s = src;
    let o = off;
    let withNl = nlFollows;
    const x = this.xlat;
    if (x && raw) {
      const t = this.scratch;
      for (let i = 0; i < len; i++) t[i] = x[src[off + i]!]!;
      s = t;
      o = 0;
      withNl = false;
    }
    const stamped = this.stamper !== undefined;
    const sb = this.stampBuf;
    for (const d of this.dirs) {
      if (!d.isOpen) continue;
      const cfg = d.cfg;
      if (cfg.inst.length) {
        const [m, e] = d.logmatch(s, o, len);
        if (e) this.errLine(d, s, o, len, false);
        if (!m) continue;
      }
      if (cfg.udpPort) this.udpLine(d, s, o, len, false);
      if (cfg.udpOnly) continue;
      const pfx = cfg.prefix;
      const total = (stamped ? STAMP_LEN : 0) + pfx.length + len + 1;
      if (d.fits(total)) {
        let at = d.reserve(total);
        const out = d.buffer();
        if (stamped) {
          for (let i = 0; i < STAMP_LEN; i++) out[at + i] = sb[i]!;
          at += STAMP_LEN;
        }
        if (pfx.length) at += pfx.copy(out, at);
        if (withNl) s.copy(out, at, o, o + len + 1);
        else {
          s.copy(out, at, o, o + len);
          out[at + len] = 10;
        }
        d.commit(total);
      } else {
        if (stamped) d.put(sb, 0, STAMP_LEN);
        if (pfx.length) d.put(pfx, 0, pfx.length);
        d.put(s, o, len);
        d.put(NL, 0, 1);
      }
      d.lineDone();
    }
  }

  /** The first linemax bytes of a longer line are in head: send them where they go. */
  private beginLong(): void {
    const s = this.head;
    const len = this.headLen;
    for (const d of this.dirs) {
      d.sel = false;
      if (!d.isOpen) continue;
      const cfg = d.cfg;
      if (cfg.inst.length) {
        const [m, e] = d.logmatch(s, 0, len);
        if (e) this.errLine(d, s, 0, len, true);
        if (!m) continue;
      }
      if (cfg.udpPort) this.udpLine(d, s, 0, len, true);
      if (cfg.udpOnly) continue;
      if (this.stamper) d.put(this.stampBuf, 0, STAMP_LEN);
      if (cfg.prefix.length) d.put(cfg.prefix, 0, cfg.prefix.length);
      d.put(s, 0, len);
      d.sel = true;
    }
  }

  /** More of a long line: only to the files its head went to, untranslated (as runit). */
  private rest(buf: Buffer, off: number, len: number): void {
    for (const d of this.dirs) if (d.sel && d.isOpen) d.put(buf, off, len);
  }

  private endLong(): void {
    for (const d of this.dirs) {
      if (!d.sel) continue;
      d.sel = false;
      if (!d.isOpen) continue;
      d.put(NL, 0, 1);
      d.lineDone();
    }
  }

  /** The line as stderr and UDP get it: stamp, prefix, at most linemax bytes, "..." if cut. */
  private shortForm(d: Logdir, s: Buffer, off: number, len: number, cut: boolean): Buffer {
    const parts: Buffer[] = [];
    if (this.stamper) parts.push(Buffer.from(this.stampBuf));
    if (d.cfg.prefix.length) parts.push(d.cfg.prefix);
    parts.push(s.subarray(off, off + len));
    if (cut) parts.push(DOTS);
    parts.push(NL);
    return Buffer.concat(parts);
  }

  private errLine(d: Logdir, s: Buffer, off: number, len: number, cut: boolean): void {
    this.errChunks.push(this.shortForm(d, s, off, len, cut));
  }

  private flushErr(): void {
    if (this.errChunks.length === 0) return;
    const data = this.errChunks.length === 1 ? this.errChunks[0]! : Buffer.concat(this.errChunks);
    this.errChunks = [];
    this.writeErr(data);
  }

  private udpLine(d: Logdir, s: Buffer, off: number, len: number, cut: boolean): void {
    const msg = this.shortForm(d, s, off, len, cut);
    if (!this.udp) {
      this.udp = process.getBuiltinModule('node:dgram').createSocket('udp4');
      this.udp.on('error', () => {});
      this.udp.unref();
    }
    const failed = (err: Error | null) => {
      if (!err || this.dead) return;
      // runit writes the failed datagram into the log, marked as such
      this.enqueue(async () => {
        if (!d.isOpen || this.finishing) return;
        d.put(UDP_WARNING, 0, UDP_WARNING.length);
        d.put(msg, 0, msg.length);
        d.lineDone();
        await d.drain();
      });
    };
    try {
      this.udp.send(msg, d.cfg.udpPort, d.cfg.udpAddress, failed);
    } catch (e) {
      failed(e as Error);
    }
  }
}

/** What a logger reads from: begun once its directories are open, paused while it writes. */
interface Input {
  begin(data: (chunk: Buffer) => void, end: () => void, error: (e: unknown) => void): void;
  pause(): void;
  resume(): void;
  /** no more reading; what the logger owns is closed */
  stop(): void;
}

/** A stream (the svlogd applet's standard input); destroyed at the end if owned. */
function streamInput(r: Readable, owned: boolean): Input {
  return {
    begin(data, end, error) {
      r.on('data', (chunk: Buffer | string) => data(typeof chunk === 'string' ? Buffer.from(chunk) : chunk));
      r.on('end', end);
      r.on('error', error);
    },
    pause: () => r.pause(),
    resume: () => r.resume(),
    stop() {
      r.pause();
      if (owned) r.destroy();
    },
  };
}

/**
 * A file descriptor (a log pipe's read end, an in-process logger's input), duplicated so
 * the caller keeps its own. A pipe, FIFO or socket is watched by the addon's poll handle
 * (no net.Socket: its stream state, made for each of the boot's loggers, was a measurable
 * part of the supervisor's first pass under emulation); anything else is read as a stream.
 */
function fdInput(fd0: number): Input {
  const fd = native().dup(fd0);
  let st;
  try {
    st = fstatSync(fd);
  } catch (e) {
    closeSync(fd);
    throw e;
  }
  if (!st.isFIFO() && !st.isSocket()) return streamInput(createReadStream('', { fd }), true);
  let pipe: FdWatch | undefined;
  let paused = false;
  let stopped = false;
  return {
    begin(data, end, error) {
      if (stopped) return;
      pipe = readPipe(fd, (buf, e) => {
        if (buf) data(buf);
        else if (e) error(e);
        else end();
      });
      if (paused) pipe.pause();
    },
    pause() {
      paused = true;
      pipe?.pause();
    },
    resume() {
      paused = false;
      pipe?.resume();
    },
    stop() {
      if (stopped) return;
      stopped = true;
      if (pipe) pipe.close();
      else closeSync(fd);
    },
  };
}
