// Beyond runit: one service's side of the dependencies (the Coordinator, deps.ts, is the
// scan directory's). It reads the service's optional files (dependencies.d/, waits-for.d/,
// restart-with-dependency, type, readiness: src/lib/servicemodel.ts) before each start of
// ./run and tells runsv's state machine whether ./run may start: not while a declared
// dependency is not met (the service waits, status down and want up; stats.json and a
// 'waiting' event say for what). It keeps what dependents see of the service (ready,
// failed, pending, down: the readiness watchers of readiness.ts report to it) and tells
// the Coordinator when that changes, so that waiting services look again at once.
import { monotonicNow, readServiceModel, type ReadinessKind, type ReadyRecord, type ServiceModel } from '../lib/servicemodel.ts';
import { S_RUN, type State, type Want } from '../lib/status.ts';
import { isoTime } from '../lib/sys.ts';
import type { Blocker, Coordinator, DepState, Mark, Participant } from './deps.ts';
import type { ReadinessOwner } from './readiness.ts';
import type { Report, Reported, ServiceStats } from './report.ts';

/** runsv's svd[0] as the gate reads it: what it wants, what it runs. */
export interface Guarded extends Reported {
  want: Want;
  readonly pid: number;
  readonly state: State;
  /** TERM was sent and ./run has not exited yet (runsv's C_TERM) */
  readonly term: boolean;
}

/** What the gate asks of the runsv it belongs to. */
export interface GateHost {
  /** a line where runsv's messages go */
  say(line: string): void;
  /** runsv's warn() */
  warn(m: string, e?: unknown): void;
  /** look again at whether ./run may start: a pass of runsv's loop */
  look(): void;
  /** the control byte t: stop ./run (it starts again once it may) */
  stop(): void;
}

/** The dependency gate and the standing among its dependents of one service. */
export class Gate implements Participant, ReadinessOwner {
  readonly name: string;
  /** a dependency changed while this service waits: look again (cleared by each pass of the loop) */
  kicked = false;
  private readonly dir: string;
  private readonly coordinator: Coordinator | undefined;
  private readonly report: Report;
  private readonly main: Guarded;
  private readonly host: GateHost;
  /** the optional files (dependencies, readiness, type), read before each start of ./run */
  private model: ServiceModel;
  /** the model was read by the constructor and the first pass of the loop has not ended */
  private modelFresh = true;
  private problemsSaid = '';
  /** declared dependencies not met: ./run waits (status: down, want up) */
  private waitingFor: Blocker[] | undefined;
  private waitKey = '';
  /** set while the service is ready (stats.json's "ready") */
  private readyRec: ReadyRecord | undefined;
  /** why the last start failed, until the service is ready */
  private failedReason: string | undefined;

  /** name: the service's in the scan directory; dir: its directory; main: runsv's svd[0] */
  constructor(name: string, dir: string, coordinator: Coordinator | undefined, report: Report, main: Guarded, host: GateHost) {
    this.name = name;
    this.dir = dir;
    this.coordinator = coordinator;
    this.report = report;
    this.main = main;
    this.host = host;
    this.model = readServiceModel(dir);
  }

  // ---- what the Coordinator asks (Participant) ----

  /** The names in dependencies.d/ and waits-for.d/ as last read. */
  declared(): { dependencies: string[]; waitsFor: string[]; restartWithDependency: boolean } {
    return this.model;
  }

  /** What a dependent sees of this service. */
  depState(): DepState {
    const main = this.main;
    if (this.readyRec) return 'ready';
    if (this.failedReason !== undefined) return 'failed';
    if (main.want !== 'up' && !main.pid) return 'down';
    return 'pending';
  }

  /** Why the last start failed, while it did. */
  failure(): string | undefined {
    return this.failedReason;
  }

  /** A dependency changed: look again at whether ./run may start, if it waits. */
  kick(): void {
    if (!this.waitingFor) return;
    // looked at by the pass running now, or by the next one
    this.kicked = true;
    this.host.look();
  }

  /** A dependencies.d service went down: stop, to start again once it is ready (restart-with-dependency). */
  dependencyLost(dep: string): void {
    const main = this.main;
    if (!main.pid || main.state !== S_RUN || main.want !== 'up') return;
    this.host.say(`runsv ${this.name}: ${dep} went down: stopping, to start again once it is ready`);
    this.host.stop();
  }

  // ---- what runsv's state machine asks ----

  /** Join the scan directory's services (runsv has its supervise/ lock). */
  join(): void {
    this.coordinator?.add(this);
  }

  /** Leave them (runsv exits). */
  leave(): void {
    this.coordinator?.remove(this);
  }

  /** The optional files as read for the start of ./run (readiness.ts sets up what they ask). */
  files(): ServiceModel {
    return this.model;
  }

  /** Record a mark of the boot's timeline (deps.ts). */
  mark(what: Mark, at?: number): void {
    this.coordinator?.mark(this.name, what, this.info(), at);
  }

  /** A pass of the loop has written what it held: the optional files are read again at the next start. */
  settle(): void {
    this.modelFresh = false;
  }

  /** May ./run start now? No while declared dependencies are not met (the files are read again first). */
  mayStart(): boolean {
    this.reload();
    const c = this.coordinator;
    this.mark('wanted');
    const blockers = c ? c.blockers(this.name, this.model.dependencies, this.model.waitsFor) : [];
    if (!c && (this.model.dependencies.length || this.model.waitsFor.length)) {
      if (this.problemsSaid !== 'standalone') this.host.warn('dependencies.d and waits-for.d need runsvdir; ignored');
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
        this.report.stats(this.main);
        this.report.event(this.main, 'waiting', { waitingFor: blockers.map((b) => b.name) });
      }
      return false;
    }
    this.unwait();
    this.mark('depsMet');
    return true;
  }

  /** No longer waiting (the dependencies are met, or the service is wanted down). */
  unwait(): void {
    if (!this.waitingFor) return;
    this.waitingFor = undefined;
    this.waitKey = '';
    this.report.stats(this.main);
  }

  /** stats.json's fields about the service itself. */
  stats(): ServiceStats {
    const m = this.model;
    const s = this.main;
    return {
      type: m.type,
      readiness: m.readiness,
      ready: this.readyRec ?? null,
      waitingFor: this.waitingFor && s.want === 'up' && !s.pid ? this.waitingFor.map((b) => ({ name: b.name, hard: b.hard, why: b.why })) : [],
      failed: this.failedReason ?? null,
    };
  }

  /** The service is ready (at: monotonic seconds): record it beside supervise/ and tell the others. */
  ready(how: ReadinessKind, pid: number, at: number, afterSpawn: number): void {
    this.readyRec = { how, pid, time: isoTime(), monotonic: at, afterSpawn };
    this.failedReason = undefined;
    this.report.stats(this.main);
    this.mark('ready');
    this.report.event(this.main, 'ready', { pid });
    this.coordinator?.changed(this.name);
  }

  /** A one-shot runs again: neither done nor failed until it ends. */
  rerun(): void {
    this.readyRec = undefined;
    this.failedReason = undefined;
    this.report.stats(this.main);
  }

  /** Not ready within timeout-up: the start failed, and ./run is stopped. */
  timedOut(ms: number): void {
    this.host.warn(`not ready within ${ms} ms (timeout-up): stopping it`);
    this.fail(`not ready within ${ms} ms`);
    this.host.stop();
  }

  /**
   * ./run ended: a one-shot's result (it is then wanted down: a task is done, whatever the
   * result; runsv would start it again while it wants up), or a longrun no longer ready.
   * timedOut: this start already failed (readiness.ts).
   */
  exited(code: number, sigName: string | undefined, timedOut: boolean): void {
    const s = this.main;
    this.mark('exited');
    const how = sigName ? `killed by ${sigName}` : `exited ${code}`;
    if (this.model.type === 'oneshot') {
      s.want = 'down';
      if (code === 0 && !timedOut) this.ready('oneshot', 0, monotonicNow(), 0);
      else if (!timedOut) {
        this.host.warn(`one-shot failed: ${how}`);
        this.fail(how);
      }
      return;
    }
    const wasReady = !!this.readyRec;
    this.unready();
    if (!wasReady && s.want === 'up' && !timedOut && !s.term) this.fail(`${how} before it was ready`);
  }

  /** This start failed (a one-shot's exit, a readiness timeout): dependents see it. */
  private fail(reason: string): void {
    this.failedReason = reason;
    this.coordinator?.failed(this.name, reason);
    this.report.stats(this.main);
    this.report.event(this.main, 'failed', { reason });
    this.coordinator?.changed(this.name);
  }

  /** No longer ready (./run exited). */
  private unready(): void {
    if (!this.readyRec) return;
    this.readyRec = undefined;
    this.report.stats(this.main);
    this.coordinator?.changed(this.name);
    this.coordinator?.lost(this.name);
  }

  /** Read the optional files again; say once what is wrong with them. */
  private reload(): void {
    // the first start of the first pass uses what the constructor read a moment ago
    if (!this.modelFresh) this.model = readServiceModel(this.dir);
    this.modelFresh = false;
    const said = this.model.problems.join('\n');
    if (said && said !== this.problemsSaid) for (const p of this.model.problems) this.host.warn(p);
    this.problemsSaid = said;
  }

  /** The service's entry of the timeline: its type, readiness and declared dependencies. */
  private info() {
    const m = this.model;
    return { type: m.type, readiness: m.readiness, dependencies: m.dependencies, waitsFor: m.waitsFor };
  }
}
