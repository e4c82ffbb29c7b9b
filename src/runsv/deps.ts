// Beyond runit: what the services of one scan directory know of each other. runsvdir
// keeps one Coordinator; each service's gate (gate.ts) asks it, before starting ./run,
// which of its declared dependencies (dependencies.d/, waits-for.d/) are not met yet,
// and tells it when its own readiness changes, so that waiting services are looked at
// again at once (no polling). It also keeps the timeline of the boot (per service:
// wanted, dependencies met, spawned, ready, stop asked, exited, on the monotonic clock),
// written to SCANDIR/.timeline.json for `runit-ts analyze`.
import { renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { monotonicNow, type ReadinessKind, type ServiceType } from '../lib/servicemodel.ts';

/** The timeline file in the scan directory (runsvdir ignores names starting with '.'). */
export const TIMELINE_FILE = '.timeline.json';
/** Changes to the timeline are written at most this often (ms). */
export const TIMELINE_WRITE_DELAY_MS = 200;

/** What a dependent sees of a service. */
export type DepState = 'ready' | 'failed' | 'pending' | 'down';

/** The part of a service the coordinator uses (gate.ts implements it). */
export interface Participant {
  readonly name: string;
  /** the names in dependencies.d/ and waits-for.d/ as last read */
  declared(): { dependencies: string[]; waitsFor: string[]; restartWithDependency: boolean };
  depState(): DepState;
  /** why it failed, when depState() is 'failed' */
  failure(): string | undefined;
  /** look again at whether it can start */
  kick(): void;
  /** a dependencies.d service went down: stop, to start again once it is ready */
  dependencyLost(dep: string): void;
}

/** One service's marks on the monotonic clock (seconds); the first of each since the supervisor started. */
export interface TimelineEntry {
  type: ServiceType;
  readiness: ReadinessKind;
  dependencies: string[];
  waitsFor: string[];
  wanted?: number;
  /** dependencies met (equal to wanted when it had none to wait for) */
  depsMet?: number;
  spawned?: number;
  ready?: number;
  stopAsked?: number;
  exited?: number;
  /** why it failed (a one-shot's exit code, a readiness timeout), when it did */
  failed?: string;
  failedAt?: number;
}

export interface Timeline {
  version: 1;
  scandir: string;
  /** when the supervisor started (monotonic seconds) */
  supervisorStart: number;
  /** when this file was written (monotonic seconds) */
  written: number;
  services: Record<string, TimelineEntry>;
}

export type Mark = 'wanted' | 'depsMet' | 'spawned' | 'ready' | 'stopAsked' | 'exited';

/** A blocker: a declared dependency not met yet, and the words that say why. */
export interface Blocker {
  name: string;
  hard: boolean;
  why: string;
}

export class Coordinator {
  private readonly members = new Map<string, Participant>();
  private readonly reported = new Set<string>();
  private readonly timeline: Timeline;
  private timer: NodeJS.Timeout | undefined;
  private readonly dir: string | undefined;
  private readonly warn: (line: string) => void;

  /** dir: where .timeline.json is written (none: not written); warn: a line about the scan directory */
  constructor(dir: string | undefined, warn: (line: string) => void) {
    this.dir = dir;
    this.warn = warn;
    this.timeline = { version: 1, scandir: dir ?? '', supervisorStart: monotonicNow(), written: 0, services: {} };
  }

  add(p: Participant): void {
    this.members.set(p.name, p);
    // someone may have been waiting for this name
    this.changed(p.name);
  }

  remove(p: Participant): void {
    if (this.members.get(p.name) === p) this.members.delete(p.name);
    this.changed(p.name);
  }

  /** Say something once (per key). */
  once(key: string, line: string): void {
    if (this.reported.has(key)) return;
    this.reported.add(key);
    this.warn(line);
  }

  /** Forget that key was reported, so that it is reported again if it comes back. */
  forget(key: string): void {
    this.reported.delete(key);
  }

  /** Is there a path of declared dependencies from `from` to `to`? Returns it (from ... to). */
  private path(from: string, to: string): string[] | undefined {
    const seen = new Set<string>();
    const walk = (n: string, trail: string[]): string[] | undefined => {
      if (n === to) return [...trail, n];
      if (seen.has(n)) return undefined;
      seen.add(n);
      const m = this.members.get(n);
      if (!m) return undefined;
      const d = m.declared();
      for (const next of [...d.dependencies, ...d.waitsFor]) {
        const r = walk(next, [...trail, n]);
        if (r) return r;
      }
      return undefined;
    };
    return walk(from, []);
  }

  /**
   * The declared dependencies of `name` that are not met. A dependency on a cycle back
   * to `name` is left out (reported once): the services of a cycle start without it.
   */
  blockers(name: string, dependencies: string[], waitsFor: string[]): Blocker[] {
    const out: Blocker[] = [];
    for (const [list, hard] of [[dependencies, true], [waitsFor, false]] as const) {
      for (const dep of list) {
        if (dep === name) {
          this.once(`self:${name}`, `${name}: depends on itself; ignored`);
          continue;
        }
        const cycle = this.path(dep, name);
        if (cycle) {
          const members = [...new Set([name, ...cycle])].sort();
          this.once(`cycle:${members.join(',')}`, `dependency cycle: ${[name, ...cycle].join(' -> ')}; these start without waiting for each other`);
          continue;
        }
        const m = this.members.get(dep);
        if (!m) {
          if (hard) {
            this.once(`unknown:${name}:${dep}`, `${name}: ${dep} in ${hard ? 'dependencies.d' : 'waits-for.d'} is not a service here; waiting for it to appear`);
            out.push({ name: dep, hard, why: 'not a service here' });
          } else {
            this.once(`unknown:${name}:${dep}`, `${name}: ${dep} in waits-for.d is not a service here; not waiting for it`);
          }
          continue;
        }
        const st = m.depState();
        if (st === 'ready') continue;
        if (!hard && (st === 'failed' || st === 'down')) continue;
        const why = st === 'failed' ? `failed: ${m.failure() ?? 'unknown'}` : st === 'down' ? 'down and not wanted up' : 'not ready yet';
        out.push({ name: dep, hard, why });
      }
    }
    return out;
  }

  /** A service's readiness (or failure) changed: every other service looks again. */
  changed(name: string): void {
    for (const m of this.members.values()) if (m.name !== name) m.kick();
  }

  /** `name` went down after it had been ready: dependents that asked to are stopped with it. */
  lost(name: string): void {
    for (const m of this.members.values()) {
      const d = m.declared();
      if (d.restartWithDependency && d.dependencies.includes(name)) m.dependencyLost(name);
    }
  }

  /** Record a mark (the first of its kind only) for a service. */
  mark(name: string, what: Mark, info: Omit<TimelineEntry, Mark | 'failed' | 'failedAt'>, at = monotonicNow()): void {
    const e = (this.timeline.services[name] ??= { ...info });
    // only the first of each mark is kept: nothing to write when this one is known
    if (e[what] !== undefined) return;
    Object.assign(e, { type: info.type, readiness: info.readiness, dependencies: info.dependencies, waitsFor: info.waitsFor });
    e[what] = at;
    this.save();
  }

  failed(name: string, reason: string, at = monotonicNow()): void {
    const e = this.timeline.services[name];
    if (!e || e.failed !== undefined) return;
    e.failed = reason;
    e.failedAt = at;
    this.save();
  }

  snapshot(): Timeline {
    return { ...this.timeline, written: monotonicNow() };
  }

  private save(): void {
    if (!this.dir || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.flush();
    }, TIMELINE_WRITE_DELAY_MS);
    this.timer.unref();
  }

  /** Write .timeline.json now (a read-only scan directory has none; supervision goes on). */
  flush(): void {
    if (!this.dir) return;
    const p = join(this.dir, TIMELINE_FILE);
    try {
      writeFileSync(`${p}.new`, JSON.stringify(this.snapshot()) + '\n');
      renameSync(`${p}.new`, p);
    } catch {
      /* nothing to record it in */
    }
  }
}
