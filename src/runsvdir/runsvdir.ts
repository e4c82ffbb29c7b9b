// runsvdir's scan loop, running the runsv state machine in-process for every service
// directory (one Node process for all services instead of a runsv process each).
//
// As runsvdir: names starting with '.' and non-directories are skipped, symlinks are
// followed, services are known by (device, inode) so two names for one directory give
// one supervisor; at most 1000 services; a directory that disappears gets its runsv
// TERM (= sv exit) and is forgotten; a runsv that exits (sv exit, fatal error) is
// started again at a later periodic pass, RESTART_DELAY_MS after it ended (runit's
// runsvdir notices at its next 5 s wake-up), so `sv -w N exit` sees "runsv not running".
// The directory is looked at every 5 s (every second while something needs another
// look); SIGALRM forces a scan and records it in DIR/.forced-rescan (Debian's runit).
// Beyond runit: fs.watch picks up new and removed directories at once. Descriptors are
// the one process's (fdreserve.ts): services that cannot be set up for want of them are
// named in one line and tried again every RESTART_DELAY_MS, once a reserve can be taken.
import { accessSync, closeSync, constants as C, openSync, readdirSync, realpathSync, watch, writeSync, type FSWatcher } from 'node:fs';
import { join, resolve } from 'node:path';
import { errLine, Exit, fatalLine, warningLine } from '../lib/diag.ts';
import { errorStr } from '../lib/errstr.ts';
import { monotonicMs, outOfFds } from '../lib/sys.ts';
import { fileStat, inDir, isDirectory, type FileStat } from '../lib/files.ts';
import { taiNow, tai64nLabel } from '../lib/tai.ts';
import { EVENT_SOCKET } from '../lib/events.ts';
import { EventHub } from '../runsv/events.ts';
import { Coordinator } from '../runsv/deps.ts';
import { StatsHold } from '../runsv/report.ts';
import { Runsv } from '../runsv/service.ts';
import { adoptWatched } from '../runsv/children.ts';
import { adoptPrestarted, dropPrestarted } from '../lib/prestart.ts';
import { native } from '../lib/native.ts';
import { fdLimit, FdReserve } from './fdreserve.ts';

export const MAX_SERVICES = 1000;
/**
 * A first pass over at least this many names shares its file system work with a thread of
 * libuv's pool (prepare()): below it the pass is short anyway (a boot's twenty services).
 */
export const PREPARE_MIN = 64;
/** runsvdir's periodic wake-up. */
export const SCAN_INTERVAL_MS = 5000;
/** Its wake-up while something needs another look (and the least time between two passes). */
export const RESCAN_INTERVAL_MS = 1000;
/** How soon a change fs.watch reports is looked at. */
export const WATCH_DELAY_MS = 50;
/**
 * A runsv that ended is started again by the first pass this long after it ended: runit's
 * runsvdir is not woken by its exit and starts it at its next wake-up, up to 5 s later.
 */
export const RESTART_DELAY_MS = SCAN_INTERVAL_MS;

export interface RunsvdirOptions {
  /** -P: every service in a session of its own */
  setsid?: boolean;
  /** where runsvdir's and runsv's messages go (default: a line on fd 2) */
  warn?: (line: string) => void;
  /** pick up new directories at once with fs.watch (the periodic scan stays as fallback) */
  watch?: boolean;
  /** the directory as named in messages (runsvdir's argument; default: dir as given) */
  name?: string;
  /** serve state changes as JSON lines on DIR/.events (default true; see src/runsv/events.ts) */
  events?: boolean;
  /**
   * how long after the first pass the events socket and the watch are set up (default 0:
   * right after it). Stage 2 waits a second: at boot nobody needs them sooner, and the
   * work is then not in the way of the services starting (docs/performance.md). Until
   * then (with the default, until the first pass has spawned every service), a fresh
   * service's first stats.json is held back too (StatsHold).
   */
  serveDelayMs?: number;
}

interface Entry {
  name: string;
  /** undefined while the runsv is not running (ended; started again RESTART_DELAY_MS later) */
  runsv: Runsv | undefined;
  /** when the runsv ended (monotonicMs()) */
  endedAt: number;
  gone: boolean;
}

const now = monotonicMs;

export class Runsvdir {
  readonly dir: string;
  readonly name: string;
  private readonly opts: RunsvdirOptions;
  private readonly services = new Map<string, Entry>();
  /** services refused for being over the limit (warned once each) */
  private refused = new Set<string>();
  private check = true;
  private forced = false;
  private lastDirKey = '';
  private lastCheck = -Infinity;
  private timer: NodeJS.Timeout | undefined;
  private timerAt = Infinity;
  private watcher: FSWatcher | undefined;
  /** the events socket and the watch are set up (after the first pass) */
  private served = false;
  private stopped = false;
  /** state changes of every service, for clients of DIR/.events */
  readonly events = new EventHub();
  /** declared dependencies between the services, and the timeline (beyond runit) */
  readonly coordinator: Coordinator;
  /** the first stats.json of fresh services, held until serve(): written after the first pass's spawns */
  private readonly statsHold = new StatsHold();
  /** descriptors kept back for the supervisor's own work (fdreserve.ts) */
  private readonly fds = new FdReserve();
  /** services not set up for want of descriptors, tried again later */
  private readonly fdShort = new Set<string>();
  /** the line about them was said (once until every one of them is supervised) */
  private fdSaid = false;
  private passed: () => void = () => {};
  /** the names a helper thread makes supervise/ for in this pass, and its marks (prepare()) */
  private prepared: { index: Map<string, number>; made: Buffer } | undefined;
  /**
   * Settles once the first pass has looked at the directory: every service then has its
   * supervise/ (sv works on it) and its ./run spawned or about to be. container-init starts
   * the main command after it.
   */
  readonly firstPass = new Promise<void>((res) => (this.passed = res));

  constructor(dir: string, opts: RunsvdirOptions = {}) {
    this.dir = resolve(dir);
    this.name = opts.name ?? dir;
    this.opts = opts;
    this.coordinator = new Coordinator(opts.events === false ? undefined : this.dir, (line) => this.warn(line));
  }

  private say(line: string): void {
    (this.opts.warn ?? errLine)(line);
  }

  private warn(m: string, e?: unknown): void {
    this.say(warningLine(`runsvdir ${this.name}`, m, e));
  }

  start(): void {
    this.fds.hold();
    this.schedule(0);
  }

  /**
   * The events socket and the directory watch, set up right after the first pass has
   * started the services: both load parts of Node the pass does not need (net's server
   * loads the cluster module, fs.watch its watchers), 40-50 ms of a start under emulation
   * (docs/performance.md). Events are kept for clients that connect later; a directory
   * made before the watch is set up is picked up by a pass right after it.
   */
  private serve(): void {
    // before any client can connect: stats.json is written before an event is told
    this.statsHold.release();
    if (this.stopped) return;
    if (this.opts.events !== false) {
      // a read-only scan directory has no events socket; supervision goes on without it
      this.events.listen(join(this.dir, EVENT_SOCKET)).catch((e: unknown) => this.warn(`unable to serve ${EVENT_SOCKET}`, e));
    }
    if (this.opts.watch !== false) {
      try {
        this.watcher = watch(this.dir, { persistent: false }, (_ev, file) => {
          // our own .forced-rescan (and any dot name) never changes what runs
          if (typeof file === 'string' && file.startsWith('.')) return;
          this.kick();
        });
        this.watcher.on('error', () => {
          this.watcher?.close();
          this.watcher = undefined;
        });
      } catch {
        /* the periodic scan still works */
      }
      try {
        if (dirKey(this.dir) !== this.lastDirKey) this.kick();
      } catch {
        /* the next pass says why */
      }
    }
  }

  /** Run a pass in `ms` (sooner than planned only). */
  private schedule(ms: number): void {
    if (this.stopped) return;
    const at = now() + ms;
    if (this.timer && this.timerAt <= at) return;
    if (this.timer) clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(() => this.tick(false), Math.max(0, ms));
  }

  /** fs.watch saw a change: scan at once (runit would wait for its next pass, up to 5 s). */
  kick(): void {
    this.check = true;
    if (this.stopped) return;
    if (this.timer) clearTimeout(this.timer);
    this.timerAt = now() + WATCH_DELAY_MS;
    this.timer = setTimeout(() => this.tick(true), WATCH_DELAY_MS);
  }

  /** SIGALRM (Debian): scan on the next pass even if nothing changed, and record it. */
  forceRescan(): void {
    this.forced = true;
    this.schedule(Math.max(0, this.lastCheck + RESCAN_INTERVAL_MS - now()));
  }

  private tick(urgent: boolean): void {
    this.timer = undefined;
    this.timerAt = Infinity;
    if (this.stopped) return;
    const t = now();
    // runsvdir looks at the directory at most once a second
    if (urgent || t - this.lastCheck >= RESCAN_INTERVAL_MS) {
      this.lastCheck = t;
      this.pass();
      if (!this.served) {
        this.served = true;
        // what the boot's prestart started for a directory not supervised after all
        for (const p of dropPrestarted()) {
          this.warn(`stopping ${p.dir}/run, started at boot for a service not in ${this.name}`);
          adoptWatched(p.pid, () => {});
        }
        setImmediate(this.passed);
        const delay = this.opts.serveDelayMs ?? 0;
        if (delay > 0) setTimeout(() => this.serve(), delay).unref();
        else setImmediate(() => this.serve());
      }
    }
    const wait = this.check || this.forced ? RESCAN_INTERVAL_MS : SCAN_INTERVAL_MS;
    this.schedule(Math.max(0, this.lastCheck + wait - now()));
  }

  private pass(): void {
    let key: string;
    try {
      key = dirKey(this.dir);
    } catch (e) {
      this.warn(`unable to stat ${this.name}`, e);
      return;
    }
    if (!this.check && !this.forced && key === this.lastDirKey) return;
    try {
      accessSync(this.dir, C.X_OK); // runsvdir chdir()s into it
    } catch (e) {
      this.warn(`unable to change directory to ${this.name}`, e);
      return;
    }
    this.lastDirKey = key;
    this.check = false;
    this.scan();
    if (this.forced) {
      this.forced = false;
      writeForcedRescan(this.dir);
    }
  }

  private scan(): void {
    let names: string[];
    try {
      names = readdirSync(this.dir);
    } catch (e) {
      this.warn(`${code(e) === 'EIO' ? 'unable to read directory' : 'unable to open directory'} ${this.name}`, e);
      this.check = true;
      return;
    }
    if (!this.services.size) this.prepare(names);
    for (const e of this.services.values()) e.gone = true;
    const refused = new Set<string>();
    for (const name of names) {
      if (name.startsWith('.')) continue;
      const path = inDir(this.dir, name);
      let st: FileStat | null;
      try {
        // the addon's stat (src/lib/files.ts): one per service on every pass
        st = fileStat(path);
      } catch (e) {
        this.warn(`unable to stat ${name}`, e);
        continue;
      }
      if (!st) {
        this.warn(`unable to stat ${name}`, 'ENOENT');
        continue;
      }
      if (!isDirectory(st)) continue;
      const id = `${st.dev}:${st.ino}`;
      const known = this.services.get(id);
      if (known) {
        known.gone = false;
        if (!known.runsv) {
          if (now() - known.endedAt >= RESTART_DELAY_MS) this.startOne(known, name);
          else this.check = true; // another look at the next pass
        }
        continue;
      }
      if (this.services.size >= MAX_SERVICES) {
        // runsvdir repeats this on every scan; once per directory is enough
        if (!this.refused.has(id)) this.warn(`unable to start runsv ${name}: too many services.`);
        refused.add(id);
        continue;
      }
      const entry: Entry = { name, runsv: undefined, endedAt: -Infinity, gone: false };
      this.services.set(id, entry);
      this.startOne(entry, name);
      this.check = true;
    }
    this.refused = refused;
    this.prepared = undefined;
    for (const [id, e] of this.services) {
      if (!e.gone) continue;
      // directory gone: runsvdir sends its runsv a TERM (= sv exit) and forgets it
      e.runsv?.terminate();
      this.services.delete(id);
      if (this.fdShort.delete(e.name) && !this.fdShort.size) this.fdSaid = false;
      this.check = true;
    }
  }

  /**
   * Beyond runit, for a large directory's first pass: runit's runsv processes set their
   * supervise/ directories up side by side on every core, one supervisor one after the
   * other (each mkdir, mkfifo and file made costs 0.1-1 ms of kernel time on the machines
   * measured). A thread of libuv's pool makes the same directories, FIFOs and lock files
   * from the last service to the first while the pass sets them up from the first
   * (native prepareSupervise); the pass still makes, opens and checks each itself, so what
   * the helper did not get to or failed at is done, and reported, as runsv would.
   */
  private prepare(names: string[]): void {
    const list = names.filter((n) => !n.startsWith('.')).slice(0, MAX_SERVICES);
    if (list.length < PREPARE_MIN) return;
    const made = Buffer.alloc(list.length * 2);
    try {
      native().prepareSupervise(list.map((n) => inDir(this.dir, n)), made, () => {});
    } catch {
      return; // the pass does it all
    }
    this.prepared = { index: new Map(list.map((n, i) => [n, i])), made };
  }

  /** Did prepare()'s helper make this service's supervise/ (log: its log's)? */
  private madeForUs(name: string, log: boolean): boolean {
    const p = this.prepared;
    const i = p?.index.get(name);
    return i !== undefined && p!.made[2 * i + (log ? 1 : 0)] === 1;
  }

  /**
   * A service could not be set up for want of descriptors: give the reserve back (the
   * running services keep room for their status files) and say so in one line for all
   * of them; it is tried again by a later pass.
   */
  private outOfFds(name: string, e: unknown): void {
    this.fds.release();
    this.fdShort.add(name);
    if (this.fdSaid) return;
    this.fdSaid = true;
    // said once the pass's other failures are in (each open fails after the pass)
    setImmediate(() => {
      const limit = fdLimit();
      this.warn(`out of file descriptors${limit === undefined ? '' : ` (ulimit -n ${limit})`}: ${this.fdShort.size} services not supervised (${[...this.fdShort].slice(0, 3).join(', ')}${this.fdShort.size > 3 ? ', ...' : ''}), trying again every ${RESTART_DELAY_MS / 1000} s`, (e as { cause?: unknown }).cause ?? e);
    });
  }

  private startOne(entry: Entry, name: string): void {
    // short of descriptors: nothing new until the reserve can be taken back
    if (!this.fds.held && !this.fds.hold()) {
      entry.endedAt = now();
      this.check = true;
      return;
    }
    // runit's runsv chdir()s into its directory: it keeps working on that directory when
    // the name goes away (runsvchdir switching /etc/service to another runlevel)
    let dir = inDir(this.dir, name);
    try {
      dir = realpathSync.native(dir); // the kernel's: one system call
    } catch {
      /* runsv reports it */
    }
    const runsv = new Runsv(dir, { name, setsid: this.opts.setsid, warn: this.opts.warn, events: this.events.emit, coordinator: this.coordinator, statsHold: this.statsHold, prestarted: adoptPrestarted(dir), madeForUs: (log) => this.madeForUs(name, log) });
    entry.runsv = runsv;
    const exited = () => {
      if (entry.runsv !== runsv) return;
      // runsv exited: started again by a pass RESTART_DELAY_MS from now (runit's runsvdir
      // is not woken by it either); the pass already planned takes it from there
      entry.runsv = undefined;
      entry.endedAt = now();
      this.check = true;
    };
    runsv.open().then(
      () => {
        if (this.fdShort.delete(name) && !this.fdShort.size) this.fdSaid = false;
        return runsv.done.then(exited);
      },
      (e: unknown) => {
        if (outOfFds(e)) this.outOfFds(name, e);
        else this.say(e instanceof Exit && e.line !== undefined ? e.line : fatalLine(`runsv ${name}`, errorStr(e)));
        exited();
      },
    );
  }

  /** Names of the service directories being supervised. */
  names(): string[] {
    return [...this.services.values()].filter((e) => e.runsv).map((e) => e.name).sort();
  }

  /** Every process supervised right now. */
  pids(): number[] {
    return [...this.services.values()].flatMap((e) => e.runsv?.pids() ?? []);
  }

  /**
   * The services supervised now, each with what it needs (dependencies.d/ and waits-for.d/
   * as its supervisor read them for its last start) and whether it is down.
   */
  running(): Array<{ name: string; needs: string[]; down: boolean }> {
    return [...this.services.values()].flatMap((e) => (e.runsv ? [{ name: e.name, needs: e.runsv.needs(), down: e.runsv.down() }] : []));
  }

  /** Give the supervisor of `name` a control byte, as writing it to its supervise/control does; false when none runs. */
  control(name: string, c: string): boolean {
    for (const e of this.services.values()) {
      if (e.name !== name || !e.runsv) continue;
      e.runsv.control(c);
      return true;
    }
    return false;
  }

  /**
   * Beyond runit: the supervisor is going away with its services (container-init's stop,
   * before the services are asked down). No more passes (nothing new is started), and
   * every runsv writes its status files and stats.json a little after a change rather
   * than at once, and not at all once it exits (Runsv.leave()): a stop of many services
   * signals them all first.
   */
  leave(): void {
    this.stopped = true;
    this.passed(); // no pass comes any more
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.watcher?.close();
    this.watcher = undefined;
    for (const e of this.services.values()) e.runsv?.leave();
  }

  /**
   * Stop every service as `sv exit` would (TERM + CONT, ./finish, then the logger sees
   * EOF), all in parallel; after `timeoutMs` KILL what is left. Resolves when all are down.
   */
  async stopAll(timeoutMs: number): Promise<void> {
    this.stopped = true;
    this.passed();
    if (this.timer) clearTimeout(this.timer);
    this.watcher?.close();
    const all = [...this.services.values()].map((e) => e.runsv).filter((r): r is Runsv => !!r);
    for (const r of all) r.terminate();
    const done = Promise.all(all.map((r) => r.done));
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<boolean>((r) => (timer = setTimeout(() => r(true), timeoutMs)));
    const late = await Promise.race([done.then(() => false), timedOut]);
    clearTimeout(timer);
    if (late) {
      for (const r of all) {
        for (const pid of r.pids()) {
          try {
            process.kill(pid, 'SIGKILL');
          } catch {
            /* gone */
          }
        }
      }
      await Promise.race([done, new Promise((r) => setTimeout(r, 1000))]);
    }
    for (const r of all) r.close();
    this.fds.release();
    this.coordinator.flush();
    this.services.clear();
    this.events.close();
  }
}

/** what tells that a directory changed: its device, inode and modification time */
function dirKey(dir: string): string {
  const st = fileStat(dir);
  if (!st) throw Object.assign(new Error('no such file or directory'), { code: 'ENOENT' });
  return `${st.dev}:${st.ino}:${st.mtimeMs}`;
}

function code(e: unknown): string | undefined {
  return (e as NodeJS.ErrnoException | null)?.code;
}

/** Debian's runsvdir records a forced scan: the TAI64N label (25 bytes) in DIR/.forced-rescan. */
function writeForcedRescan(dir: string): void {
  try {
    const fd = openSync(join(dir, '.forced-rescan'), C.O_WRONLY | C.O_CREAT | C.O_TRUNC | C.O_NONBLOCK, 0o644);
    try {
      writeSync(fd, tai64nLabel(taiNow()));
    } finally {
      closeSync(fd);
    }
  } catch {
    /* Debian's runsvdir says nothing either */
  }
}
