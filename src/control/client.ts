// The real ServiceControl: speaks runit's supervise/ protocol directly (no sv process),
// so it works against our supervisor and against runit's own runsv alike.
import { promises as fsp } from 'node:fs';
import { connect } from 'node:net';
import { createInterface } from 'node:readline';
import { isAbsolute, join } from 'node:path';
import { startCheck, type CheckResult } from '../lib/check.ts';
import { errLine } from '../lib/diag.ts';
import { stateName } from '../lib/status.ts';
import { readReady, readyFromFile } from '../lib/servicemodel.ts';
import { alreadyRequested, describe, neverSupervised, readStats, readStatus, sendControl, type ProtocolError, type StatusRecord, type StatusResult } from '../lib/supervise.ts';
import { EVENT_SOCKET } from '../lib/events.ts';

export { EVENT_SOCKET };
import { monotonicMs, signalName } from '../lib/sys.ts';
import { taiNow, tainSeconds, type Tain } from '../lib/tai.ts';
import { decide, expired, POLL_MS, pollInterval, type WaitSpec } from '../lib/wait.ts';
import { ServiceError, type ServiceEvent, type ProcessStatus, type ServiceControl, type ServiceSignal, type ServiceStatus, type WaitCondition, type WaitOptions } from './types.ts';

/** sv's default wait, in seconds, when neither the options nor $SVWAIT say. */
export const DEFAULT_WAIT_S = 7;
/** How often a wait re-reads the status, in milliseconds: the wait engine's (runit's sv: 420 ms). */
export const DEFAULT_POLL_MS = POLL_MS;

/** How a SupervisedServices finds services and how long it waits. */
export interface ClientOptions {
  /** where names are looked up (default: $SVDIR, else /etc/service) */
  scanDir?: string;
  /** default wait in milliseconds (default: $SVWAIT seconds, else 7 s) */
  timeoutMs?: number;
  /** poll interval of waits, in milliseconds (default DEFAULT_POLL_MS) */
  pollMs?: number;
  /** environment to read SVDIR and SVWAIT from (default process.env) */
  env?: NodeJS.ProcessEnv;
  /**
   * where a ./check that cannot be run is reported, with sv's line ("warning: unable to
   * run NAME/check: exec format error"); default: a line on stderr
   */
  warn?: (line: string) => void;
}

const SIGNAL_BYTE: Record<ServiceSignal, string> = {
  HUP: 'h', ALRM: 'a', INT: 'i', QUIT: 'q', USR1: '1', USR2: '2', TERM: 't', KILL: 'k', STOP: 'p', CONT: 'c',
};

/** A wait's options here: WaitOptions, and a signal that abandons it (a 'timeout' ServiceError, "wait abandoned"). */
export interface ClientWaitOptions extends WaitOptions {
  signal?: AbortSignal;
}

/** The wait engine's letters for the client's wait conditions. */
const WAIT_ACTS: Record<WaitCondition, string> = { up: 'u', run: 'r', down: 'd', exit: 'x' };

function code(e: unknown): string | undefined {
  return (e as { code?: string } | null)?.code;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** A failed status read as the client's error. */
function readError(name: string, r: { kind: 'not-running' } | ProtocolError): ServiceError {
  if (r.kind === 'not-running') return new ServiceError(name, 'not-running', 'runsv not running');
  return new ServiceError(name, neverSupervised(r) ? 'no-supervise' : 'io', describe(r), { cause: r.cause });
}

/** One read of a (service or log) directory's status, through the protocol library. */
function readSupervise(name: string, dir: string): StatusRecord {
  const r = readStatus(dir);
  if (r.kind !== 'ok') throw readError(name, r);
  return r;
}

async function exists(path: string): Promise<boolean> {
  try {
    await fsp.stat(path);
    return true;
  } catch (e) {
    if (code(e) === 'ENOENT') return false;
    throw e;
  }
}

/** Run ./check as sv does (src/lib/check.ts): exit 0 = ready; no ./check = ready; one that cannot be run is not. */
export async function runCheck(dir: string): Promise<boolean> {
  return (await startCheck(dir).done).ready;
}

/** Where a ./check that could not be run is reported: once per message for a wait, each time for a status. */
type Reporter = (r: CheckResult & { end: 'failed' }) => void;

/**
 * Services supervised by runsv (ours or runit's), driven through their supervise/
 * directories. Names are relative to the scan directory unless they start with '/'
 * or '.', as sv takes them.
 */
export class SupervisedServices implements ServiceControl {
  readonly scanDir: string;
  /** how long a wait lasts when its options do not say (ms) */
  readonly defaultTimeoutMs: number;
  private readonly pollMs: number;
  private readonly warnLine: (line: string) => void;

  constructor(opts: ClientOptions = {}) {
    const env = opts.env ?? process.env;
    this.scanDir = opts.scanDir ?? env.SVDIR ?? '/etc/service';
    const svwait = env.SVWAIT !== undefined && /^\d+/.test(env.SVWAIT) ? Number(/^\d+/.exec(env.SVWAIT)![0]) : DEFAULT_WAIT_S;
    this.defaultTimeoutMs = opts.timeoutMs ?? svwait * 1000;
    this.pollMs = pollInterval(opts.pollMs);
    this.warnLine = opts.warn ?? errLine;
  }

  /** The service directory a name stands for. */
  dir(service: string): string {
    return isAbsolute(service) || service.startsWith('.') ? service : join(this.scanDir, service);
  }

  /** The service's directory, or a 'no-service' ServiceError as sv's "unable to change to service directory". */
  private async enter(service: string): Promise<string> {
    const dir = this.dir(service);
    try {
      if (!(await fsp.stat(dir)).isDirectory()) throw Object.assign(new Error('not a directory'), { code: 'ENOTDIR' });
    } catch (e) {
      throw new ServiceError(service, 'no-service', `unable to change to service directory: ${code(e) === 'ENOENT' ? 'file does not exist' : (e as Error).message}`, { cause: e });
    }
    return dir;
  }

  /** One supervised process's status (the service's or its log's), typed. */
  private async process(rec: StatusRecord, dir: string): Promise<ProcessStatus> {
    const st = rec.status;
    const since = new Date(tainSeconds(st.start) * 1000);
    const nowSec = this.now().sec;
    return {
      // a corrupt record's unknown state reads as down
      state: stateName(st.state) ?? 'down',
      pid: st.pid || undefined,
      since,
      seconds: nowSec < st.start.sec ? 0 : Number(nowSec - st.start.sec),
      paused: st.paused,
      want: st.want === 'up' ? 'up' : 'down',
      gotTerm: st.term,
      normallyUp: !(await exists(join(dir, 'down'))),
    };
  }

  /** ./check in dir, its failure to run told to `report`. */
  private async checkNow(service: string, dir: string, report: Reporter): Promise<boolean> {
    const r = await startCheck(dir, { name: service }).done;
    if (r.end === 'failed') report(r);
    return r.ready;
  }

  /**
   * Is the running service ready? ./check's verdict (as sv), or beyond runit, stats.json's
   * "ready" for notification-fd, NOTIFY_SOCKET and one-shots (the wait engine's rule, as a
   * wait for up sees it).
   */
  private async ready(service: string, dir: string, rec: StatusRecord, report: Reporter): Promise<boolean> {
    const spec: WaitSpec = { acts: 'u', t0: this.now(), request: false, untilSupervised: false };
    const read: StatusResult = { kind: 'ok', ...rec };
    const d = decide(spec, read, dir);
    return (d === 'check' ? decide(spec, read, dir, await this.checkNow(service, dir, report)) : d) === 'done';
  }

  /** The status, a ./check that cannot be run reported each time. */
  async status(service: string): Promise<ServiceStatus> {
    return this.statusWith(service, (r) => this.warnLine(r.warning));
  }

  /** The status, a ./check that cannot be run told to `report`. */
  private async statusWith(service: string, report: Reporter): Promise<ServiceStatus> {
    const dir = await this.enter(service);
    const rec = readSupervise(service, dir);
    const main = await this.process(rec, dir);
    let log: ProcessStatus | undefined;
    const logDir = join(dir, 'log');
    if (await exists(logDir)) {
      try {
        log = await this.process(readSupervise(`${service}/log`, logDir), logDir);
      } catch (e) {
        if (!(e instanceof ServiceError)) throw e;
      }
    }
    // a one-shot that has run to success is ready with no process; otherwise only a running one is asked
    const oneshotDone = readyFromFile(dir) && readReady(dir)?.how === 'oneshot';
    const ready = oneshotDone ? true : main.state === 'run' && main.pid ? await this.ready(service, dir, rec, report) : undefined;
    const stats = readStats(dir);
    const lastExit = stats?.lastExit ? { code: stats.lastExit.code, signal: signalName(stats.lastExit.signal) } : stats ? null : undefined;
    return {
      name: service, dir, ...main, ready, log, restarts: stats?.restarts, lastExit,
      type: stats?.type, readiness: stats?.readiness, readyAt: stats?.ready ? stats.ready.time : stats ? null : undefined,
      waitingFor: stats?.waitingFor, failed: stats ? (stats.failed ?? null) : undefined,
    };
  }

  /** Write control bytes in one write(2), as sv does, unless runsv already has the request; returns the status read before. */
  private async control(service: string, bytes: string): Promise<StatusRecord> {
    const dir = await this.enter(service);
    const rec = readSupervise(service, dir);
    if (alreadyRequested(rec, bytes)) return rec;
    const r = sendControl(dir, bytes);
    if (r.kind === 'not-running') throw new ServiceError(service, 'not-running', 'runsv not running');
    if (r.kind === 'error') throw new ServiceError(service, 'io', describe(r), { cause: r.cause });
    return rec;
  }

  up(service: string): Promise<void> {
    return this.control(service, 'u').then(() => undefined);
  }
  down(service: string): Promise<void> {
    return this.control(service, 'd').then(() => undefined);
  }
  once(service: string): Promise<void> {
    return this.control(service, 'o').then(() => undefined);
  }
  signal(service: string, signal: ServiceSignal): Promise<void> {
    return this.control(service, SIGNAL_BYTE[signal]).then(() => undefined);
  }

  /**
   * Look until the wait engine (src/lib/wait.ts) says the wait for `spec` is done (the
   * status reached; undefined for exit), it failed (a ServiceError), or the time is up
   * (a 'timeout' ServiceError, or 'killed' after sending k with opts.kill), or
   * opts.signal abandons it (looked at between looks).
   */
  private async waitFor(service: string, spec: WaitSpec, opts: ClientWaitOptions = {}): Promise<ServiceStatus | undefined> {
    const dir = await this.enter(service);
    const waitMs = opts.timeoutMs ?? this.defaultTimeoutMs;
    // a ./check that cannot be run is said once per wait, and named in a timeout
    const said = new Set<string>();
    const report: Reporter = (r) => {
      if (said.has(r.message)) return;
      said.add(r.message);
      this.warnLine(r.warning);
    };
    const began = monotonicMs();
    for (;;) {
      const now = monotonicMs();
      const read = readStatus(dir);
      let d = decide(spec, read, dir);
      if (d === 'check') d = decide(spec, read, dir, await this.checkNow(service, dir, report));
      if (d === 'done') return spec.acts === 'x' ? undefined : this.statusWith(service, report);
      // (decide() fails only a read that is not ok: no runsv, or an unreadable status)
      if (d === 'fail' && read.kind !== 'ok') throw readError(service, read);
      if (expired(began, now, waitMs)) {
        let st: ServiceStatus | undefined;
        try {
          st = await this.statusWith(service, report);
        } catch {
          /* gone meanwhile */
        }
        const what = spec.acts === 'x' ? 'exited' : spec.acts === 'd' ? 'down' : spec.acts === 'r' ? 'running' : 'up';
        const why = said.size ? ` (${[...said].join('; ')})` : '';
        const not = `not ${what} within ${waitMs} ms${why}`;
        if (opts.kill) {
          await this.control(service, 'k').catch(() => undefined);
          throw new ServiceError(service, 'killed', `${not}: killed`, { status: st });
        }
        throw new ServiceError(service, 'timeout', not, { status: st });
      }
      if (opts.signal?.aborted) throw new ServiceError(service, 'timeout', 'wait abandoned');
      await sleep(this.pollMs);
    }
  }

  /** Now, as status times are compared (sv's one-second resolution: the whole seconds). */
  private now(): Tain {
    return taiNow();
  }

  /** A wait for `acts` beginning now (before the request it follows, if any). */
  private spec(acts: string, request: boolean): WaitSpec {
    return { acts, t0: this.now(), request, untilSupervised: true };
  }

  async start(service: string, opts?: WaitOptions): Promise<ServiceStatus> {
    const spec = this.spec('u', true);
    await this.control(service, 'u');
    return (await this.waitFor(service, spec, opts))!;
  }
  async stop(service: string, opts?: WaitOptions): Promise<ServiceStatus> {
    const spec = this.spec('d', true);
    await this.control(service, 'd');
    return (await this.waitFor(service, spec, opts))!;
  }
  async restart(service: string, opts?: WaitOptions): Promise<ServiceStatus> {
    const spec = this.spec('tcu', true);
    await this.control(service, 'tcu');
    return (await this.waitFor(service, spec, opts))!;
  }
  async exit(service: string, opts?: WaitOptions): Promise<void> {
    const spec = this.spec('x', true);
    try {
      await this.control(service, 'x');
    } catch (e) {
      // sv exit on a runsv that is gone: "ok: runsv not running"
      if (e instanceof ServiceError && e.reason === 'not-running') return;
      throw e;
    }
    await this.waitFor(service, spec, opts);
  }
  async wait(service: string, condition: WaitCondition, opts?: ClientWaitOptions): Promise<ServiceStatus | undefined> {
    return this.waitFor(service, this.spec(WAIT_ACTS[condition], false), opts);
  }

  /**
   * Follow the state changes our supervisor pushes (SCANDIR/.events): first those it
   * kept from before (replay: true), then each as it happens, until `signal` aborts or
   * the supervisor goes away. Runit's runsvdir has no such socket: rejects with 'not-running'.
   */
  async *events(opts: { signal?: AbortSignal } = {}): AsyncGenerator<ServiceEvent> {
    const path = join(this.scanDir, EVENT_SOCKET);
    const sock = connect(path);
    await new Promise<void>((res, rej) => {
      sock.once('connect', res);
      sock.once('error', (e) => rej(new ServiceError(this.scanDir, code(e) === 'ENOENT' || code(e) === 'ECONNREFUSED' ? 'not-running' : 'io', `unable to connect to ${path}: ${(e as Error).message}`, { cause: e })));
    });
    const rl = createInterface({ input: sock, crlfDelay: Infinity });
    // closing the interface is what ends the iteration (a destroyed socket alone does not)
    const onAbort = () => {
      rl.close();
      sock.destroy();
    };
    if (opts.signal?.aborted) onAbort();
    opts.signal?.addEventListener('abort', onAbort);
    sock.once('close', () => rl.close());
    try {
      for await (const line of rl) {
        if (line) yield JSON.parse(line) as ServiceEvent;
      }
    } catch (e) {
      if (!opts.signal?.aborted) throw e;
    } finally {
      opts.signal?.removeEventListener('abort', onAbort);
      rl.close();
      sock.destroy();
    }
  }
}
