// The real ServiceControl: speaks runit's supervise/ protocol directly (no sv process),
// so it works against our supervisor and against runit's own runsv alike.
import { spawn } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import { connect } from 'node:net';
import { createInterface } from 'node:readline';
import { isAbsolute, join } from 'node:path';
import { S_DOWN, S_FINISH, S_RUN, type RawStatus } from '../lib/status.ts';
import { readReady, readyFromFile, type ReadyRecord } from '../lib/servicemodel.ts';
import { describe, readStats, readStatus, sendControl } from '../lib/supervise.ts';
import { EVENT_SOCKET } from '../lib/events.ts';

export { EVENT_SOCKET };
import { signalName } from '../lib/sys.ts';
import { taiNow, tainSeconds } from '../lib/tai.ts';
import { ServiceError, type ServiceEvent, type ProcessStatus, type ServiceControl, type ServiceSignal, type ServiceStatus, type WaitCondition, type WaitOptions } from './types.ts';

/** sv's default wait, in seconds, when neither the options nor $SVWAIT say. */
export const DEFAULT_WAIT_S = 7;
/** How often a wait re-reads the status, in milliseconds (sv polls every 420 ms). */
export const DEFAULT_POLL_MS = 100;

/** How a SupervisedServices finds services and how long it waits. */
export interface ClientOptions {
  /** where names are looked up (default: $SVDIR, else /etc/service) */
  scanDir?: string;
  /** default wait in milliseconds (default: $SVWAIT seconds, else 7 s) */
  timeoutMs?: number;
  /** poll interval of waits, in milliseconds */
  pollMs?: number;
  /** environment to read SVDIR and SVWAIT from (default process.env) */
  env?: NodeJS.ProcessEnv;
}

const SIGNAL_BYTE: Record<ServiceSignal, string> = {
  HUP: 'h', ALRM: 'a', INT: 'i', QUIT: 'q', USR1: '1', USR2: '2', TERM: 't', KILL: 'k', STOP: 'p', CONT: 'c',
};

const STATE = { [S_DOWN]: 'down', [S_RUN]: 'run', [S_FINISH]: 'finish' } as const;

function code(e: unknown): string | undefined {
  return (e as { code?: string } | null)?.code;
}



const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** One read of a (service or log) directory's status, through the protocol library. */
function readSupervise(name: string, dir: string): RawStatus {
  const r = readStatus(dir);
  if (r.kind === 'ok') return r.status;
  if (r.kind === 'not-running') throw new ServiceError(name, 'not-running', 'runsv not running');
  const missing = (r.cause as { code?: string } | undefined)?.code === 'ENOENT' && r.message === 'unable to open supervise/ok';
  throw new ServiceError(name, missing ? 'no-supervise' : 'io', describe(r), { cause: r.cause });
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

/** Where readiness of the service in dir is known: ./check (as sv), or beyond runit stats.json's record. */
type ReadinessSource = { fromFile: false } | { fromFile: true; rec: ReadyRecord | undefined };

/** Read once per look: which source decides, and the record when it is stats.json. */
function readinessSource(dir: string): ReadinessSource {
  return readyFromFile(dir) ? { fromFile: true, rec: readReady(dir) } : { fromFile: false };
}

/** A one-shot that has run to success: ready whatever its (absent) process. */
function oneshotDone(src: ReadinessSource): boolean {
  return src.fromFile && src.rec?.how === 'oneshot';
}

/**
 * Is the service in dir, running as pid, ready? ./check's verdict (as sv), or beyond
 * runit, stats.json's "ready" for notification-fd, NOTIFY_SOCKET and one-shots.
 */
async function isReady(dir: string, pid: number | undefined, src: ReadinessSource): Promise<boolean> {
  if (!src.fromFile) return !!pid && runCheck(dir);
  return !!src.rec && (src.rec.how === 'oneshot' || src.rec.pid === pid);
}

/** Run ./check as sv does (stdout closed): exit 0 = ready; no ./check = ready. */
export function runCheck(dir: string): Promise<boolean> {
  return new Promise((resolve) => {
    const p = spawn('./check', [], { cwd: dir, stdio: ['inherit', 'ignore', 'inherit'] });
    // sv: a ./check that cannot be run (absent, not executable) counts as ready
    p.on('error', () => resolve(true));
    p.on('exit', (c) => resolve(c === 0));
  });
}

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

  constructor(opts: ClientOptions = {}) {
    const env = opts.env ?? process.env;
    this.scanDir = opts.scanDir ?? env.SVDIR ?? '/etc/service';
    const svwait = env.SVWAIT !== undefined && /^\d+/.test(env.SVWAIT) ? Number(/^\d+/.exec(env.SVWAIT)![0]) : DEFAULT_WAIT_S;
    this.defaultTimeoutMs = opts.timeoutMs ?? svwait * 1000;
    this.pollMs = opts.pollMs ?? DEFAULT_POLL_MS;
  }

  /** The service directory a name stands for. */
  dir(service: string): string {
    return isAbsolute(service) || service.startsWith('.') ? service : join(this.scanDir, service);
  }

  private async enter(service: string): Promise<string> {
    const dir = this.dir(service);
    try {
      if (!(await fsp.stat(dir)).isDirectory()) throw Object.assign(new Error('not a directory'), { code: 'ENOTDIR' });
    } catch (e) {
      throw new ServiceError(service, 'no-service', `unable to change to service directory: ${code(e) === 'ENOENT' ? 'file does not exist' : (e as Error).message}`, { cause: e });
    }
    return dir;
  }

  private async process(raw: RawStatus, dir: string): Promise<ProcessStatus> {
    const since = new Date(tainSeconds(raw.start) * 1000);
    const nowSec = this.now();
    return {
      state: STATE[raw.state as 0 | 1 | 2] ?? 'down',
      pid: raw.pid || undefined,
      since,
      seconds: nowSec < raw.start.sec ? 0 : Number(nowSec - raw.start.sec),
      paused: raw.paused,
      want: raw.wantChar === 'u' ? 'up' : 'down',
      gotTerm: raw.term,
      normallyUp: !(await exists(join(dir, 'down'))),
    };
  }

  async status(service: string): Promise<ServiceStatus> {
    const dir = await this.enter(service);
    const main = await this.process(readSupervise(service, dir), dir);
    let log: ProcessStatus | undefined;
    const logDir = join(dir, 'log');
    if (await exists(logDir)) {
      try {
        log = await this.process(readSupervise(`${service}/log`, logDir), logDir);
      } catch (e) {
        if (!(e instanceof ServiceError)) throw e;
      }
    }
    const src = readinessSource(dir);
    const ready = oneshotDone(src) ? true : main.state === 'run' && main.pid ? await isReady(dir, main.pid, src) : undefined;
    const stats = readStats(dir);
    const lastExit = stats?.lastExit ? { code: stats.lastExit.code, signal: signalName(stats.lastExit.signal) } : stats ? null : undefined;
    return {
      name: service, dir, ...main, ready, log, restarts: stats?.restarts, lastExit,
      type: stats?.type, readiness: stats?.readiness, readyAt: stats?.ready ? stats.ready.time : stats ? null : undefined,
      waitingFor: stats?.waitingFor, failed: stats ? (stats.failed ?? null) : undefined,
    };
  }

  /** Write control bytes in one write(2), as sv does (skipping a request runsv already has). */
  private async control(service: string, bytes: string): Promise<void> {
    const dir = await this.enter(service);
    const raw = readSupervise(service, dir);
    // sv skips a request runsv already has (a repeated 'd' still goes when no TERM is pending)
    if (raw.wantChar === bytes[0] && (bytes[0] !== 'd' || raw.term)) return;
    const r = sendControl(dir, bytes);
    if (r.kind === 'not-running') throw new ServiceError(service, 'not-running', 'runsv not running');
    if (r.kind === 'error') throw new ServiceError(service, 'io', describe(r), { cause: r.cause });
  }

  up(service: string): Promise<void> {
    return this.control(service, 'u');
  }
  down(service: string): Promise<void> {
    return this.control(service, 'd');
  }
  once(service: string): Promise<void> {
    return this.control(service, 'o');
  }
  signal(service: string, signal: ServiceSignal): Promise<void> {
    return this.control(service, SIGNAL_BYTE[signal]);
  }

  /**
   * Is the condition `c` (one of sv's check letters) met? sv's semantics: u = running
   * and ./check passes; d = no process and down; x = runsv gone; t = a new process since
   * `t0` (or down and wanted down).
   */
  private async met(service: string, dir: string, c: string, t0: bigint, oldPid: number): Promise<boolean> {
    let raw: RawStatus;
    try {
      raw = readSupervise(service, dir);
    } catch (e) {
      // no runsv (yet): a wait goes on, as it does for any state not reached yet
      if (e instanceof ServiceError && (e.reason === 'not-running' || e.reason === 'no-supervise')) return c === 'x' && e.reason === 'not-running';
      throw e;
    }
    switch (c) {
      case 'x':
        return false;
      case 'u': {
        const src = readinessSource(dir);
        if (oneshotDone(src)) return true;
        return !!raw.pid && raw.state === S_RUN && (await isReady(dir, raw.pid, src));
      }
      case 'r':
        return !!raw.pid && raw.state === S_RUN;
      case 'd':
        return !raw.pid && raw.state === S_DOWN;
      case 't':
        if (!raw.pid && raw.wantChar === 'd') return true;
        // sv compares whole seconds only, so a restart within the same second as the
        // request could pass on the old process: the pid must have changed as well
        return raw.start.sec >= t0 && !!raw.pid && raw.pid !== oldPid && !raw.term && (await isReady(dir, raw.pid, readinessSource(dir)));
      case 'c':
        return !(raw.pid && raw.paused);
      default:
        return true;
    }
  }

  private async waitFor(service: string, conds: string, t0: bigint, opts: WaitOptions = {}, oldPid = 0): Promise<ServiceStatus | undefined> {
    const dir = await this.enter(service);
    const deadline = Date.now() + (opts.timeoutMs ?? this.defaultTimeoutMs);
    for (;;) {
      let all = true;
      for (const c of conds) {
        if (await this.met(service, dir, c, t0, oldPid)) continue;
        all = false; // as sv's check: the first condition not met ends the look
        break;
      }
      if (all) return conds === 'x' ? undefined : this.status(service);
      if (Date.now() >= deadline) {
        let st: ServiceStatus | undefined;
        try {
          st = await this.status(service);
        } catch {
          /* gone meanwhile */
        }
        const not = `not ${conds === 'x' ? 'exited' : conds === 'd' ? 'down' : conds === 'r' ? 'running' : 'up'} within ${opts.timeoutMs ?? this.defaultTimeoutMs} ms`;
        if (opts.kill) {
          await this.control(service, 'k').catch(() => undefined);
          throw new ServiceError(service, 'killed', `${not}: killed`, { status: st });
        }
        throw new ServiceError(service, 'timeout', not, { status: st });
      }
      await sleep(this.pollMs);
    }
  }

  /** Now in whole unix seconds, as status times are compared (sv's one-second resolution). */
  private now(): bigint {
    return taiNow().sec;
  }

  async start(service: string, opts?: WaitOptions): Promise<ServiceStatus> {
    const t0 = this.now();
    await this.control(service, 'u');
    return (await this.waitFor(service, 'u', t0, opts))!;
  }
  async stop(service: string, opts?: WaitOptions): Promise<ServiceStatus> {
    const t0 = this.now();
    await this.control(service, 'd');
    return (await this.waitFor(service, 'd', t0, opts))!;
  }
  async restart(service: string, opts?: WaitOptions): Promise<ServiceStatus> {
    const t0 = this.now();
    const before = readSupervise(service, await this.enter(service));
    await this.control(service, 'tcu');
    return (await this.waitFor(service, 'tcu', t0, opts, before.pid))!;
  }
  async exit(service: string, opts?: WaitOptions): Promise<void> {
    const t0 = this.now();
    try {
      await this.control(service, 'x');
    } catch (e) {
      // sv exit on a runsv that is gone: "ok: runsv not running"
      if (e instanceof ServiceError && e.reason === 'not-running') return;
      throw e;
    }
    await this.waitFor(service, 'x', t0, opts);
  }
  async wait(service: string, condition: WaitCondition, opts?: WaitOptions): Promise<ServiceStatus | undefined> {
    const c = { up: 'u', run: 'r', down: 'd', exit: 'x' }[condition];
    return this.waitFor(service, c, this.now(), opts);
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
