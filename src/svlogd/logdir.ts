// One log directory of svlogd: lock, config, `current`, rotation, old-file removal and
// the processor. Output is batched: the line engine (svlogd.ts) appends bytes with
// put()/lineDone(), which apply runit's size rules as if every line were written at once,
// and records where rotations fall; drain() then writes and rotates for real.
import type { ChildProcess } from 'node:child_process';
import {
  chmodSync, closeSync, constants as C, fchmodSync, fsyncSync, ftruncateSync, openSync, readdirSync, readSync, renameSync,
  statSync, unlinkSync, writeSync,
} from 'node:fs';
import { LOCK_EX, LOCK_NB, native } from '../lib/native.ts';
import { monotonicMs } from '../lib/sys.ts';
import { fileChmod, fileOpen, fileRead, fileStat, inDir, isDirectory, type FileStat } from '../lib/files.ts';
import { defaultConfig, parseConfig, type LogdirConfig } from './config.ts';
import { pmatch } from './pattern.ts';
import { labelTain, tai64nLabel, tainNext } from '../lib/tai.ts';
import { tai64nName, type WallClock } from './stamp.ts';

/** What a log directory needs from the logger that owns it. */
export interface LogdirHost {
  readonly clock: WallClock;
  readonly linemax: number;
  readonly verbose: number;
  /** the processor's environment and stderr */
  readonly env: NodeJS.ProcessEnv;
  readonly stderrFd: number;
  info(msg: string): void;
  warn(msg: string, e?: unknown): void;
  /** "svlogd: pausing: ...", then the caller waits 3 s and retries */
  pausing(msg: string, e: unknown): void;
  sleep(ms: number): Promise<void>;
  /** false once the logger was killed: stop everything */
  alive(): boolean;
  /** a rotation time changed: re-arm the timer */
  timersChanged(): void;
}

/** output buffer: small while idle (many loggers live in one supervisor), grown for bursts */
const OUT_MIN = 8192;
const OUT_KEEP = 1 << 18;
const APPEND = C.O_WRONLY | C.O_NONBLOCK | C.O_APPEND | C.O_CREAT;
const TRUNC = C.O_WRONLY | C.O_NONBLOCK | C.O_TRUNC | C.O_CREAT;

/** how much of an uncleanly closed current is read at a time, from its end, for its last newline (bytes) */
const CUT_CHUNK = 65536;
/** runit's pause after a failed step before it is tried again (ms) */
const PAUSE_MS = 3000;

/**
 * The "pausing" lines of one step retried until it works: the first failure is said, and
 * again only when the error changes. runit's svlogd says it at every retry, a line every
 * 3 s for as long as a disk stays full; one is enough to tell.
 */
class Pausing {
  private said = '';
  private readonly host: LogdirHost;
  /** host: where the line goes */
  constructor(host: LogdirHost) {
    this.host = host;
  }
  /** The step failed with e: "svlogd: pausing: MSG: ERROR", unless just said. */
  say(msg: string, e: unknown): void {
    const key = `${msg}\0${(e as NodeJS.ErrnoException | null)?.code ?? String(e)}`;
    if (key === this.said) return;
    this.said = key;
    this.host.pausing(msg, e);
  }
}

function isOld(name: string): boolean {
  return name.length === 27 && name.charCodeAt(0) === 0x40; // '@' + 24 hex + '.' + s|u|t
}

export class Logdir {
  /** the name given on the command line (used in messages) */
  readonly name: string;
  /** its absolute path */
  readonly path: string;
  cfg: LogdirConfig = defaultConfig();
  isOpen = false;
  private fdcur = -1;
  private fdlock = -1;
  /** size of current as it will be once everything appended is written */
  size = 0;
  /** bytes really in current */
  private written = 0;
  private out = Buffer.allocUnsafe(OUT_MIN);
  private outLen = 0;
  /** rotations at out offsets, recorded by put()/lineDone()/rotateSoon() */
  private marks: Array<{ at: number; rename: boolean }> = [];
  /**
   * when current is due to be rotated by age (ms on the monotonic clock, monotonicMs(); 0 =
   * no t config): runit's svlogd keeps it on the wall clock, so a clock stepped back an hour
   * held the rotation back an hour, and one stepped forward rotated at once
   */
  trotate = 0;
  /** the last rotated file's name (protected from removal) */
  private fnsave = '';
  /** the running processor and the .u it works on */
  private proc: ChildProcess | undefined;
  private procName = '';
  private procWaiters: Array<() => void> = [];
  /** the processor's fork failing, said once per error until it works */
  private forkPause: Pausing | undefined;
  /** name printed by a verbose close before the first open (runit prints its stale name) */
  private lastName = '';
  private readonly host: LogdirHost;
  /** per line: selected for the file (the rest of a long line goes where its head went) */
  sel = false;

  constructor(name: string, path: string, host: LogdirHost) {
    this.name = name;
    this.path = path;
    this.host = host;
  }

  private p(file: string): string {
    return inDir(this.path, file);
  }

  // ------------------------------------------------------------------ open/close

  /** runit's logdir_open: lock, read config, set up current. false: the dir is unusable. */
  async open(): Promise<boolean> {
    const h = this.host;
    // the busy path of every logger's start: the addon's calls (src/lib/files.ts)
    let isDir = false;
    try {
      const st = fileStat(this.path);
      if (!st) throw Object.assign(new Error('no such file or directory'), { code: 'ENOENT' });
      isDir = isDirectory(st);
    } catch (e) {
      h.warn(`unable to open log directory: ${this.name}`, e);
      return false;
    }
    if (!isDir) {
      if (h.verbose) h.info(`close: ${this.lastName}`);
      h.warn(`unable to change directory: ${this.name}`, 'ENOTDIR');
      return false;
    }
    let locked = false;
    try {
      this.fdlock = fileOpen(this.p('lock'), APPEND, 0o600);
      locked = native().flock(this.fdlock, LOCK_EX | LOCK_NB);
      if (!locked) throw Object.assign(new Error('locked'), { code: 'EAGAIN' });
    } catch (e) {
      if (h.verbose) h.info(`close: ${this.lastName}`);
      if (this.fdlock >= 0) closeSync(this.fdlock);
      this.fdlock = -1;
      h.warn(`unable to lock directory: ${this.name}`, e);
      return false;
    }
    this.lastName = this.name;
    this.size = 0;
    this.sel = false;
    let text: Buffer | undefined;
    try {
      text = fileRead(this.p('config')) ?? undefined;
    } catch (e) {
      h.warn(`unable to read config: ${this.name}`, e);
      text = Buffer.alloc(0);
    }
    if (text) {
      if (h.verbose) h.info(`read: ${this.name}/config`);
      this.cfg = parseConfig(text, (what, t) => h.warn(`${what}: ${t}`));
    } else this.cfg = defaultConfig();
    this.trotate = this.cfg.tmax ? monotonicMs() + this.cfg.tmax * 1000 : 0;

    // a current that was not closed cleanly (no u+x) becomes an unprocessed .u
    let appended = false;
    let st: FileStat | null;
    try {
      st = fileStat(this.p('current'));
    } catch (e) {
      if (h.verbose) h.info(`close: ${this.name}`);
      closeSync(this.fdlock);
      this.fdlock = -1;
      h.warn(`unable to stat current: ${this.name}`, e);
      return false;
    }
    if (st?.size && !(st.mode & 0o100)) st = { ...st, size: this.cutToWholeLines(st.size) };
    if (st) {
      if (st.size && !(st.mode & 0o100)) {
        this.fnsave = this.newName('u');
        await this.retry(`unable to rename current: ${this.name}`, () => renameSync(this.p('current'), this.p(this.fnsave)));
        await this.rmoldest();
      } else {
        this.size = st.size;
        appended = true;
      }
    }
    await this.retry(`unable to open current: ${this.name}`, () => {
      this.fdcur = fileOpen(this.p('current'), APPEND, 0o600);
    });
    await this.retry(`unable to set mode of current: ${this.name}`, () => fileChmod(this.fdcur, 0o644));
    this.written = this.size;
    this.isOpen = true;
    if (h.verbose) h.info(`${appended ? 'append' : 'new'}: ${this.name}/current`);
    return true;
  }

  /**
   * A current that was not closed cleanly (a power loss, a killed logger) is cut after its
   * last newline, and its new size returned. We write whole lines only, but after a power
   * loss the file's end is not to be trusted: ext4 may commit a size grown into a block
   * already on disk before the bytes written there, which then read as NULs (seen after
   * power losses of the disk image: a 4 KiB file ending in 2,401 of them), or a size that
   * ends inside a line. runit keeps the file as it is, and `cat @* current` then runs that
   * tail into the next file's first line. When it cannot be cut, it is kept as it is.
   */
  private cutToWholeLines(size: number): number {
    let fd = -1;
    try {
      fd = openSync(this.p('current'), C.O_RDWR | C.O_NONBLOCK);
      const buf = Buffer.allocUnsafe(Math.min(size, CUT_CHUNK));
      let keep = 0;
      for (let end = size; end > 0 && keep === 0; ) {
        const start = Math.max(0, end - buf.length);
        const n = readSync(fd, buf, 0, end - start, start);
        const nl = buf.lastIndexOf(10, n - 1);
        if (nl >= 0) keep = start + nl + 1;
        end = start;
      }
      if (keep < size) ftruncateSync(fd, keep);
      return keep;
    } catch (e) {
      this.host.warn(`unable to cut current to whole lines: ${this.name}`, e);
      return size;
    } finally {
      if (fd >= 0) closeSync(fd);
    }
  }

  /** runit's logdir_close: everything written, current marked complete (0744), lock released. */
  async close(): Promise<void> {
    if (!this.isOpen) return;
    const h = this.host;
    if (h.verbose) h.info(`close: ${this.name}`);
    await this.drain();
    this.isOpen = false;
    await this.retry(`unable to fsync current logfile: ${this.name}`, () => fsyncSync(this.fdcur));
    await this.retry(`unable to set mode of current: ${this.name}`, () => fchmodSync(this.fdcur, 0o744));
    closeSync(this.fdcur);
    this.fdcur = -1;
    closeSync(this.fdlock);
    this.fdlock = -1;
  }

  /**
   * Killed: write what was logged so far, then let go without marking current complete.
   * The lock goes too even when the directory is not open yet (killed while pausing in
   * open()), as a killed process's would: else no logger could take the directory again.
   */
  abandon(): void {
    if (this.isOpen) {
      try {
        let off = 0;
        while (off < this.outLen) off += writeSync(this.fdcur, this.out, off, this.outLen - off);
      } catch {
        // nothing more can be done for a killed logger
      }
    }
    this.isOpen = false;
    this.outLen = 0;
    this.marks.length = 0;
    for (const fd of [this.fdcur, this.fdlock]) {
      if (fd < 0) continue;
      try {
        closeSync(fd);
      } catch {
        // already gone
      }
    }
    this.fdcur = this.fdlock = -1;
  }

  // ------------------------------------------------------------------ line output

  /** The pattern verdicts for a line: [selected for the log, selected for stderr]. */
  logmatch(s: Uint8Array, off: number, len: number): [boolean, boolean] {
    let match = true;
    let err = false;
    for (const ins of this.cfg.inst) {
      switch (ins.kind) {
        case '+':
        case '-':
          if (pmatch(ins.pattern, s, off, len)) match = ins.kind === '+';
          break;
        default:
          if (pmatch(ins.pattern, s, off, len)) err = ins.kind === 'e';
      }
    }
    return [match, err];
  }

  /** Room for n more bytes in the output buffer; returns the offset to write at. */
  reserve(n: number): number {
    if (this.outLen + n > this.out.length) {
      const bigger = Buffer.allocUnsafe(Math.max(this.out.length * 2, this.outLen + n));
      this.out.copy(bigger, 0, 0, this.outLen);
      this.out = bigger;
    }
    return this.outLen;
  }

  /** The output buffer, for the line engine's fast path (after reserve). */
  buffer(): Buffer {
    return this.out;
  }

  /** The fast path wrote n bytes at reserve()'s offset; they fit (see fits()). */
  commit(n: number): void {
    this.outLen += n;
    this.size += n;
  }

  /** Would n bytes go into current without a size rotation before or inside them? */
  fits(n: number): boolean {
    const max = this.cfg.sizemax;
    return max === 0 || (this.size < max && n <= max - this.size);
  }

  /**
   * Append bytes, as runit's buffer_pwrite would write them: a full current (size >= s) is
   * rotated before more goes in, and a write never makes current bigger than s.
   */
  put(src: Uint8Array, off: number, len: number): void {
    const max = this.cfg.sizemax;
    while (len > 0) {
      let l = len;
      if (max) {
        if (this.size >= max) this.markRotate();
        const room = max - this.size;
        if (l > room) l = room;
      }
      const at = this.reserve(l);
      this.out.set(src.subarray(off, off + l), at);
      this.outLen += l;
      this.size += l;
      off += l;
      len -= l;
    }
  }

  /** A line ended (its '\n' was put): rotate when fewer than linemax bytes are left below s. */
  lineDone(): void {
    const max = this.cfg.sizemax;
    const lm = this.host.linemax;
    if (max && max >= lm && this.size >= max - lm) this.markRotate();
  }

  /** runit's rotate() at this point of the output: rename current if not empty. */
  markRotate(): void {
    this.marks.push({ at: this.outLen, rename: this.size > 0 });
    this.size = 0;
    if (this.cfg.tmax) {
      const now = monotonicMs();
      if (this.trotate < now) {
        this.trotate = now + this.cfg.tmax * 1000;
        this.host.timersChanged();
      }
    }
  }

  /** Anything to write or rotate? */
  pending(): boolean {
    return this.outLen > 0 || this.marks.length > 0;
  }

  /** Write what was appended and perform the rotations recorded in between. */
  async drain(): Promise<void> {
    let start = 0;
    for (let i = 0; i < this.marks.length; i++) {
      const m = this.marks[i]!;
      await this.writeOut(start, m.at);
      start = m.at;
      await this.rotateNow(m.rename);
      if (!this.host.alive()) return;
    }
    await this.writeOut(start, this.outLen);
    this.outLen = 0;
    this.marks.length = 0;
    if (this.out.length > OUT_KEEP) this.out = Buffer.allocUnsafe(OUT_MIN);
  }

  /**
   * Write out[from..to) to current; on an error pause PAUSE_MS and retry (nothing read is
   * dropped), saying so once per error (runit's svlogd says it again at every retry).
   */
  private async writeOut(from: number, to: number): Promise<void> {
    let off = from;
    const pause = new Pausing(this.host);
    while (off < to) {
      if (!this.host.alive()) return;
      try {
        const n = writeSync(this.fdcur, this.out, off, to - off);
        off += n;
        this.written += n;
        continue;
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'EAGAIN' || code === 'EINTR') continue;
        if (code === 'ENOSPC' && this.cfg.nmin < this.cfg.nmax && this.deleteForSpace()) continue;
        pause.say(`unable to write to current: ${this.name}`, e);
      }
      await this.host.sleep(PAUSE_MS);
    }
  }

  /** Disk full: delete the oldest old file if more than N are left. true if one was deleted. */
  private deleteForSpace(): boolean {
    const h = this.host;
    let names: string[];
    try {
      names = readdirSync(this.path);
    } catch (e) {
      h.warn(`unable to read directory, want remove old logfile: ${this.name}`, e);
      return false;
    }
    let count = 0;
    let oldest = '';
    for (const f of names) {
      if (!isOld(f)) continue;
      count++;
      // never an unprocessed .u (runit would take the oldest of any kind)
      if (f[26] === 'u' || this.isProtected(f)) continue;
      if (!oldest || f < oldest) oldest = f;
    }
    if (count <= this.cfg.nmin || !oldest) return false;
    h.warn(`out of disk space, delete: ${this.name}/${oldest}`);
    try {
      unlinkSync(this.p(oldest));
      return true;
    } catch (e) {
      h.warn(`unable to unlink oldest logfile: ${this.name}`, e);
      return false;
    }
  }

  /** The file just rotated is never the one removed (a safeguard: newName() names it after every old file unless it could not read the directory). */
  private isProtected(f: string): boolean {
    return f === this.fnsave;
  }

  /**
   * A fresh name for a rotated file: the TAI64N label of now, not used yet, and never before
   * the newest old file's. runit names it by the clock alone: after the clock stepped back
   * (a board without a real-time clock booting, a clock set back by NTP, a clock that ran
   * fast before a power loss) new files sorted before older ones, so `cat @* current` read
   * the log out of order and n removed new files first. A clock behind the newest name
   * gives the nanosecond after it.
   */
  private newName(suffix: 's' | 'u'): string {
    let newest = this.newestOld();
    for (let i = 0; ; i++) {
      let label = tai64nName(this.host.clock.now());
      if (newest !== undefined && label <= newest) label = tai64nLabel(tainNext(labelTain(newest)!));
      const name = `${label}.${suffix}`;
      try {
        statSync(this.p(name));
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT' || i > 1000) return name;
      }
      // taken: the next try comes after it
      newest = label;
    }
  }

  /** The label of the newest old file (.s, .u or a processor's .t) by name; undefined for none, or when the directory cannot be read. */
  private newestOld(): string | undefined {
    let newest: string | undefined;
    try {
      for (const f of readdirSync(this.path)) {
        if (!isOld(f) || labelTain(f.slice(0, 25)) === undefined) continue;
        const label = f.slice(0, 25);
        if (newest === undefined || label > newest) newest = label;
      }
    } catch {
      // named by the clock alone, as runit does; rmoldest() says why the directory cannot be read
    }
    return newest;
  }

  /** runit's rotate(), the part done on disk. */
  private async rotateNow(rename: boolean): Promise<void> {
    const h = this.host;
    await this.processorIdle();
    if (!rename || !h.alive()) return;
    const name = this.newName(this.cfg.processor ? 'u' : 's');
    await this.retry(`unable to fsync current logfile: ${this.name}`, () => fsyncSync(this.fdcur));
    await this.retry(`unable to set mode of current: ${this.name}`, () => fchmodSync(this.fdcur, 0o744));
    closeSync(this.fdcur);
    this.fdcur = -1;
    if (h.verbose) h.info(`rename: ${this.name}/current ${name} ${this.written}`);
    await this.retry(`unable to rename current: ${this.name}`, () => renameSync(this.p('current'), this.p(name)));
    await this.retry(`unable to create new current: ${this.name}`, () => {
      this.fdcur = openSync(this.p('current'), APPEND, 0o600);
    });
    this.written = 0;
    await this.retry(`unable to set mode of current: ${this.name}`, () => fchmodSync(this.fdcur, 0o644));
    this.fnsave = name;
    await this.rmoldest();
    this.startProcessor(name);
  }

  /** Remove processor leftovers (.t) and, beyond n old files, the oldest one. */
  private async rmoldest(): Promise<void> {
    const h = this.host;
    let names: string[] = [];
    await this.retry(`unable to open directory, want rotate: ${this.name}`, () => {
      names = readdirSync(this.path);
    });
    let count = 0;
    let oldest = '';
    for (const f of names) {
      if (!isOld(f)) continue;
      if (f[26] === 't') {
        if (this.proc && f === this.procName.slice(0, 26) + 't') continue;
        try {
          unlinkSync(this.p(f));
        } catch (e) {
          h.warn(`unable to unlink processor leftover: ${f}`, e);
        }
        continue;
      }
      // Debian's svlogd neither counts nor removes .u files: unprocessed logs stay
      if (f[26] === 'u') continue;
      count++;
      if (this.isProtected(f)) continue;
      if (!oldest || f < oldest) oldest = f;
    }
    if (this.cfg.nmax && count > this.cfg.nmax && oldest) {
      if (h.verbose) h.info(`delete: ${this.name}/${oldest}`);
      try {
        unlinkSync(this.p(oldest));
      } catch (e) {
        h.warn(`unable to unlink oldest logfile: ${this.name}`, e);
      }
    }
  }

  /** Run fn until it works, pausing PAUSE_MS after each failure as runit does (said once per error). */
  private async retry(msg: string, fn: () => void): Promise<void> {
    const pause = new Pausing(this.host);
    for (;;) {
      try {
        fn();
        return;
      } catch (e) {
        if (!this.host.alive()) throw e;
        pause.say(msg, e);
      }
      await this.host.sleep(PAUSE_MS);
      // killed while pausing: abandon() has let go of everything; take nothing new
      if (!this.host.alive()) throw new Error(`${msg}: the logger was killed`);
    }
  }

  // ------------------------------------------------------------------ processor

  /** Resolves once no processor runs for this directory (failed ones are restarted first). */
  processorIdle(): Promise<void> {
    if (!this.proc) return Promise.resolve();
    return new Promise((r) => this.procWaiters.push(r));
  }

  /** sh -c PROCESSOR in the log dir: stdin the .u, stdout the .t, fd 4 state, fd 5 newstate. */
  private startProcessor(uname: string): void {
    const h = this.host;
    if (!this.cfg.processor || !h.alive()) return;
    if (this.proc) {
      h.warn(`processor already running: ${this.name}`);
      return;
    }
    this.procName = uname;
    if (h.verbose) h.info(`processing: ${this.name}/${uname}`);
    const fds: number[] = [];
    const tname = uname.slice(0, 26) + 't';
    let child: ChildProcess;
    try {
      const step = (what: string, f: () => number) => {
        try {
          fds.push(f());
        } catch (e) {
          throw Object.assign(new Error(what), { cause: e });
        }
      };
      step('unable to open input for processor', () => openSync(this.p(uname), C.O_RDONLY));
      step('unable to open output for processor', () => openSync(this.p(tname), TRUNC, 0o644));
      step('unable to open state for processor', () => {
        try {
          return openSync(this.p('state'), C.O_RDONLY);
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
          closeSync(openSync(this.p('state'), TRUNC, 0o644));
          return openSync(this.p('state'), C.O_RDONLY);
        }
      });
      step('unable to open newstate for processor', () => openSync(this.p('newstate'), TRUNC, 0o644));
      child = process.getBuiltinModule('node:child_process').spawn('/bin/sh', ['-c', this.cfg.processor], {
        cwd: this.path,
        env: h.env,
        argv0: 'sh',
        stdio: [fds[0]!, fds[1]!, h.stderrFd, 'ignore', fds[2]!, fds[3]!],
      });
    } catch (e) {
      // runit's child dies with "fatal: ..." and counts as a failed processor
      const cause = (e as { cause?: unknown }).cause ?? e;
      h.warn(`${(e as Error).message}: ${this.name}`, cause);
      for (const fd of fds) closeSync(fd);
      this.proc = undefined;
      this.failLater();
      return;
    }
    for (const fd of fds) closeSync(fd);
    this.proc = child;
    // made: a later fork failure is said again
    if (child.pid !== undefined) this.forkPause = undefined;
    let reported = false;
    const done = (code: number | null, signal: NodeJS.Signals | null) => {
      if (reported) return;
      reported = true;
      this.processorDone(child, code, signal).catch((e: unknown) => this.host.warn(`processor: ${this.name}`, e));
    };
    // no pid: the process was never made (EAGAIN at a process limit): as runit's fork loop,
    // "pausing: unable to fork for processor" and another try 3 s later, not a failed
    // processor started again at once (which would spin while the limit holds)
    child.on('error', (e) => (child.pid === undefined ? this.forkFailed(uname, child, e) : done(111, null)));
    child.on('exit', done);
  }

  /** The processor's process could not be made: say so (once per error) and try again after runit's pause. */
  private forkFailed(uname: string, child: ChildProcess, e: unknown): void {
    if (this.proc !== child) return;
    (this.forkPause ??= new Pausing(this.host)).say(`unable to fork for processor: ${this.name}`, e);
    void this.host.sleep(PAUSE_MS).then(() => {
      if (this.proc !== child) return;
      this.proc = undefined;
      this.startProcessor(uname);
    });
  }

  /** A processor that could not start: retry after runit's pause instead of spinning. */
  private failLater(): void {
    const marker = {} as ChildProcess;
    this.proc = marker;
    void this.host.sleep(PAUSE_MS).then(() => {
      if (this.proc === marker) return this.processorDone(marker, 111, null);
    }).catch((e: unknown) => {
      this.host.warn(`processor: ${this.name}`, e);
    });
  }

  private async processorDone(child: ChildProcess, code: number | null, signal: NodeJS.Signals | null): Promise<void> {
    const h = this.host;
    if (this.proc !== child) return;
    this.proc = undefined;
    if (!h.alive()) return;
    if (h.verbose) h.info('sigchild received.');
    const uname = this.procName;
    const tname = uname.slice(0, 26) + 't';
    if (code !== 0 || signal) {
      h.warn(`processor failed, restart: ${this.name}`);
      try {
        unlinkSync(this.p(tname));
      } catch {
        // runit ignores this too
      }
      this.startProcessor(uname);
      if (this.proc) return;
    } else {
      const sname = uname.slice(0, 26) + 's';
      await this.retry(`unable to rename processed: ${this.name}`, () => renameSync(this.p(tname), this.p(sname)));
      await this.retry(`unable to set mode of processed: ${this.name}`, () => chmodSync(this.p(sname), 0o744));
      try {
        unlinkSync(this.p(uname));
      } catch {
        h.warn(`unable to unlink: ${this.name}/${uname}`);
      }
      await this.retry(`unable to rename state: ${this.name}`, () => renameSync(this.p('newstate'), this.p('state')));
      if (h.verbose) h.info(`processed: ${this.name}/${sname}`);
    }
    const waiters = this.procWaiters;
    this.procWaiters = [];
    for (const w of waiters) w();
  }
}
