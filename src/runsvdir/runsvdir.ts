// runsvdir's scan loop, running the runsv state machine in-process for every service
// directory (one Node process for all services instead of a runsv process each).
import { readdirSync, statSync, watch, type FSWatcher } from 'node:fs';
import { join, resolve } from 'node:path';
import { errorStr } from '../lib/errstr.ts';
import { Runsv, RunsvFatal } from '../runsv/service.ts';

export const MAX_SERVICES = 1000;

export interface RunsvdirOptions {
  /** -P: every service in a session of its own */
  setsid?: boolean;
  /** scan at least this often (ms); runit: 5 s, 1 s while something needs another look */
  interval?: number;
  warn?: (line: string) => void;
  /** pick up new directories at once with fs.watch (the periodic scan stays as fallback) */
  watch?: boolean;
}

interface Entry {
  name: string;
  runsv: Runsv;
}

export class Runsvdir {
  readonly dir: string;
  private readonly opts: RunsvdirOptions;
  private readonly services = new Map<string, Entry>();
  private check = true;
  private lastDirKey = '';
  private lastStat = 0;
  private timer: NodeJS.Timeout | undefined;
  private watcher: FSWatcher | undefined;
  private scanning = false;
  private stopped = false;

  constructor(dir: string, opts: RunsvdirOptions = {}) {
    this.dir = resolve(dir);
    this.opts = opts;
  }

  private warn(msg: string, e?: unknown): void {
    const line = `runsvdir ${this.dir}: warning: ${msg}${e === undefined ? '' : `: ${errorStr(e)}`}`;
    (this.opts.warn ?? ((l: string) => process.stderr.write(l + '\n')))(line);
  }

  start(): void {
    if (this.opts.watch !== false) {
      try {
        this.watcher = watch(this.dir, { persistent: false }, () => this.kick());
        this.watcher.on('error', () => {
          this.watcher?.close();
          this.watcher = undefined;
        });
      } catch {
        /* the periodic scan still works */
      }
    }
    this.tick();
  }

  /** Look again soon (something changed). */
  kick(): void {
    this.check = true;
    if (this.stopped) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => this.tick(), 50);
  }

  private tick(): void {
    this.timer = undefined;
    if (this.stopped) return;
    void this.pass().finally(() => {
      if (this.stopped) return;
      const interval = this.opts.interval ?? (this.check ? 1000 : 5000);
      this.timer = setTimeout(() => this.tick(), interval);
    });
  }

  private async pass(): Promise<void> {
    if (this.scanning) return;
    this.scanning = true;
    try {
      const now = Date.now();
      let key = '';
      if (now - this.lastStat >= 1000 || this.check) {
        this.lastStat = now;
        try {
          const st = statSync(this.dir);
          key = `${st.dev}:${st.ino}:${st.mtimeMs}`;
        } catch (e) {
          this.warn('unable to stat ' + this.dir, e);
          return;
        }
      }
      if (this.check || (key && key !== this.lastDirKey)) {
        this.lastDirKey = key || this.lastDirKey;
        this.check = false;
        await this.scan();
      }
    } finally {
      this.scanning = false;
    }
  }

  private async scan(): Promise<void> {
    let names: string[];
    try {
      names = readdirSync(this.dir);
    } catch (e) {
      this.warn('unable to read directory', e);
      this.check = true;
      return;
    }
    const seen = new Set<string>();
    const opening: Array<Promise<void>> = [];
    for (const name of names.sort()) {
      if (name.startsWith('.')) continue;
      const path = join(this.dir, name);
      let st;
      try {
        st = statSync(path);
      } catch (e) {
        this.warn(`unable to stat ${name}`, e);
        continue;
      }
      if (!st.isDirectory()) continue;
      const id = `${st.dev}:${st.ino}`;
      if (seen.has(id)) continue;
      seen.add(id);
      if (this.services.has(id)) continue;
      if (this.services.size >= MAX_SERVICES) {
        this.warn(`unable to start runsv ${name}: too many services (${MAX_SERVICES})`);
        continue;
      }
      opening.push(this.startOne(id, name, path));
    }
    for (const [id, e] of this.services) {
      if (!seen.has(id)) {
        // directory gone: runsvdir sends its runsv a TERM (= sv exit) and forgets it
        e.runsv.terminate();
        this.services.delete(id);
      }
    }
    await Promise.all(opening);
  }

  private async startOne(id: string, name: string, path: string): Promise<void> {
    const runsv = new Runsv(path, { name, setsid: this.opts.setsid, warn: this.opts.warn });
    const entry: Entry = { name, runsv };
    this.services.set(id, entry);
    try {
      await runsv.open();
    } catch (e) {
      this.services.delete(id);
      runsv.close();
      const msg = e instanceof RunsvFatal ? e.message : `runsv ${name}: fatal: ${errorStr(e)}`;
      (this.opts.warn ?? ((l: string) => process.stderr.write(l + '\n')))(msg);
      this.check = true; // runsv exited: runsvdir starts it again on the next pass
      return;
    }
    void runsv.done.then(() => {
      if (this.services.get(id) === entry) {
        this.services.delete(id);
        this.check = true;
      }
    });
  }

  /** Names of the service directories being supervised. */
  names(): string[] {
    return [...this.services.values()].map((e) => e.name).sort();
  }

  /** Every process supervised right now. */
  pids(): number[] {
    return [...this.services.values()].flatMap((e) => e.runsv.pids());
  }

  /**
   * Stop every service as `sv exit` would (TERM + CONT, ./finish, then the logger sees
   * EOF), all in parallel; after `timeoutMs` KILL what is left. Resolves when all are down.
   */
  async stopAll(timeoutMs: number): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.watcher?.close();
    const all = [...this.services.values()];
    for (const e of all) e.runsv.terminate();
    const done = Promise.all(all.map((e) => e.runsv.done));
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<boolean>((r) => (timer = setTimeout(() => r(true), timeoutMs)));
    const late = await Promise.race([done.then(() => false), timedOut]);
    clearTimeout(timer);
    if (late) {
      for (const e of all) {
        for (const pid of e.runsv.pids()) {
          try {
            process.kill(pid, 'SIGKILL');
          } catch {
            /* gone */
          }
        }
      }
      await Promise.race([done, new Promise((r) => setTimeout(r, 1000))]);
    }
    for (const e of all) e.runsv.close();
    this.services.clear();
  }
}
