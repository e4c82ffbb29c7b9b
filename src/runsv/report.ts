// Beyond runit: what one runsv reports besides runit's supervise/ files. Per svd,
// supervise/stats.json (restarts, the last exit, and for the service itself its type,
// readiness, what it waits for and why it failed: src/lib/supervise.ts SupervisorStats),
// and the state changes sent to the event sink (src/lib/events.ts).
//
// A restart after a crash is on the hot path: between a child's exit and the next ./run
// only what runsv does happens. So while a pass of runsv's loop runs (hold()), both are
// held: stats.json is only marked to be written (several changes in one pass are one
// write, and none is made between a child's exit and the next spawn) and each event is
// kept with the time it happened. release() writes them right after the spawn (or before
// anything that waits): stats.json first, then the events in order.
import type { EventSink, ServiceEvent, ServiceEventKind } from '../lib/events.ts';
import { fileExists, inDir } from '../lib/files.ts';
import { monotonicNow, readinessRecorded } from '../lib/servicemodel.ts';
import { writeStats, type SupervisorStats } from '../lib/supervise.ts';
import { Rewrite } from './rewrite.ts';

/**
 * Beyond runit: holds back the first stats.json of fresh services until release(). The
 * supervisor holds them through its first pass and releases them when it serves events
 * (before any client can be told of one; at boot a second later, else right after the
 * pass): forty files of a twenty-service boot, ten of a container's ten services, that say
 * nothing yet, written after the services are spawned rather than between the spawns
 * (docs/performance.md).
 * While held, a stats.json that would say only "started once" (and ready on its start) is
 * not written into a supervise/ directory this supervisor made (nothing older to overwrite
 * there); written when the hold ends, or at once when there is more to say.
 */
export class StatsHold {
  private waiting: Array<() => void> | undefined = [];
  /** not released yet */
  get held(): boolean {
    return this.waiting !== undefined;
  }
  /** run fn at release (at once if released) */
  later(fn: () => void): void {
    if (this.waiting) this.waiting.push(fn);
    else fn();
  }
  /** End the hold: what waited for it runs now. */
  release(): void {
    const w = this.waiting ?? [];
    this.waiting = undefined;
    for (const fn of w) fn();
  }
}

/** What stats.json says of one svd beyond runit's files, and when it is written. */
export class SvdStats {
  /** ./run starts so far (stats.json's restarts is this less one) */
  starts = 0;
  /** how the last ./run process ended */
  lastExit: SupervisorStats['lastExit'] = null;
  /** to be written (held while the loop runs: see Report.release()) */
  dirty = false;
  /** supervise/ was made by this supervisor: no stats.json of an older one in it */
  fresh = false;
  /** its first stats.json waits for the StatsHold */
  deferred = false;
}

/** What the report reads of one supervised process (runsv's svd). */
export interface Reported {
  readonly islog: boolean;
  /** the directory its ./run runs in (supervise/ is there) */
  readonly cwd: string;
  /** prefix of messages about its files: '' or 'log/' */
  readonly rel: string;
  readonly stats: SvdStats;
}

/** stats.json's fields about the service itself, not its log (src/runsv/gate.ts knows them). */
export type ServiceStats = Omit<SupervisorStats, 'restarts' | 'lastExit'>;

/** An event held back while a pass of the loop runs, with when it happened. */
type Held = Parameters<EventSink>[0] & { at: number; mono: number };

/** The extra fields of an event about one svd. */
type EventExtra = Partial<Pick<ServiceEvent, 'pid' | 'code' | 'signal' | 'waitingFor' | 'reason'>>;

/** stats.json and the events of one runsv (its service and its log). */
export class Report {
  private readonly name: string;
  private readonly sink: EventSink | undefined;
  private readonly statsHold: StatsHold | undefined;
  private readonly service: () => ServiceStats;
  /** runsv's svd[]: the service, then its log once there is one */
  private readonly svd: readonly Reported[];
  /** stats.json and events are held (set at each pass of the loop, ended by release()) */
  private holding = false;
  /** events held, with when they happened */
  private held: Held[] = [];
  private closed = false;
  /** the supervisor is going away: stats.json is written only by writeDeferred(), and later() is told of a change */
  private later: (() => void) | undefined;
  /** stats.json written again after a failed write, each failure said once (rewrite.ts) */
  private readonly rewrite: Rewrite;

  /**
   * name: the service's (NAME/log for its log); svd: runsv's svd array (the log is added
   * to it later); service: the service's own stats.json fields; warn: runsv's warn()
   */
  constructor(name: string, svd: readonly Reported[], sink: EventSink | undefined, hold: StatsHold | undefined, service: () => ServiceStats, warn: (m: string, e?: unknown) => void) {
    this.name = name;
    this.svd = svd;
    this.sink = sink;
    this.statsHold = hold;
    this.service = service;
    this.rewrite = new Rewrite(() => {
      this.flush();
      return !this.failing();
    }, warn);
  }

  /** Is a stats.json marked to be written that could not be (flush() marks a failed one again)? */
  private failing(): boolean {
    return !this.holding && this.svd.some((s) => s.stats.dirty);
  }

  /** A pass of runsv's loop starts: hold what is written until release(). */
  hold(): void {
    this.holding = true;
  }

  /**
   * Tell the event sink; the service's name, or NAME/log. While a pass of the loop runs,
   * the event is held with the time it happened (release() sends it), and stats.json is
   * always written before an event is sent.
   */
  event(s: Reported, event: ServiceEventKind, extra: EventExtra = {}): void {
    if (!this.sink) return;
    const e = { event, service: s.islog ? `${this.name}/log` : this.name, ...extra };
    if (this.holding) this.held.push({ ...e, at: Date.now(), mono: monotonicNow() });
    else {
      this.flush();
      this.sink(e);
    }
  }

  /** Write the stats.json held back, then send the events held back (in order, with their times). */
  release(): void {
    this.holding = false;
    this.flush();
    if (!this.held.length) return;
    const held = this.held;
    this.held = [];
    for (const { mono, ...e } of held) this.sink?.({ ...e, monotonic: mono });
  }

  /** ./run started: count it, tell the sink (and 'ready' too for a log with no ./check to decide it). */
  started(s: Reported, pid: number): void {
    s.stats.starts++;
    this.stats(s);
    this.event(s, 'up', { pid });
    if (s.islog && !fileExists(inDir(s.cwd, 'check'))) this.event(s, 'ready', { pid });
  }

  /** ./run ended: how, for stats.json (written by the stats() that follows). */
  exited(s: Reported, code: number, sig: number): void {
    s.stats.lastExit = { code, signal: sig };
  }

  /**
   * supervise/stats.json (written .new then renamed, as status): restarts and the last
   * exit. While a pass of the loop runs, only marked: several changes in one pass are
   * one write, and none is made between a child's exit and the next spawn.
   */
  stats(s: Reported): void {
    s.stats.dirty = true;
    if (!this.holding) this.flush();
  }

  /**
   * The supervisor is going away (Runsv.leave()): from now on stats.json is not written when
   * it changes, but when `later` (told of each change) calls writeDeferred(); events are
   * sent at once all the same, so that stats.json may lag behind them.
   */
  defer(later: () => void): void {
    this.later = later;
  }

  /** Write the stats.json held back by defer(). */
  writeDeferred(): void {
    if (this.closed) return;
    const later = this.later;
    this.later = undefined;
    this.flush();
    this.later = later;
  }

  /** runsv exits: a stats.json still waiting for the StatsHold is not written. */
  close(): void {
    this.closed = true;
    this.rewrite.close();
  }

  /** Write every stats.json marked; one that fails stays marked and is tried again (rewrite.ts). */
  private flush(): void {
    if (this.later) {
      if (this.svd.some((s) => s.stats.dirty)) this.later();
      return;
    }
    let failed = false;
    for (const s of this.svd) {
      if (!s.stats.dirty) continue;
      s.stats.dirty = false;
      if (!this.write(s)) failed = s.stats.dirty = true;
    }
    this.rewrite.done(!failed);
  }

  /** Write one svd's stats.json now, unless the StatsHold keeps it back; false when the write failed. */
  private write(s: Reported): boolean {
    const st = s.stats;
    const extra: ServiceStats = s.islog ? {} : this.service();
    const hold = this.statsHold;
    // ready on its start ('started', the default) is what supervise/stat says too: readers
    // look at stats.json's "ready" only for notifications and one-shots, and for those
    // a missing file would be read as runit's runsv (ready once running): written at once
    const readyOnStart = !readinessRecorded(extra.readiness) && (!extra.ready || extra.ready.how === 'started');
    if (hold?.held && st.fresh && st.starts <= 1 && !st.lastExit && readyOnStart && !extra.failed && !extra.waitingFor?.length) {
      // only "started once" to say, and no older file to overwrite: when the hold ends
      if (!st.deferred) {
        st.deferred = true;
        hold.later(() => {
          if (st.deferred && !this.closed && !this.write(s)) {
            st.dirty = true;
            this.rewrite.done(false);
          }
        });
      }
      return true;
    }
    st.deferred = false;
    return writeStats(s.cwd, { restarts: Math.max(0, st.starts - 1), lastExit: st.lastExit, ...extra }, (m, e) => this.rewrite.failed(m, e), `${s.rel}supervise/`);
  }
}
