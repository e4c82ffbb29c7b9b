// The typed service-control interface: what a program asks of runit (or of our
// supervisor, which keeps runit's supervise/ protocol), and what it gets back.
// The real client (client.ts) and the test doubles (doubles.ts) implement it.
import type { StateName } from '../lib/status.ts';

/** runit's three process states (supervise/status byte 19), named as src/lib/status.ts names them. */
export type ServiceState = StateName;

/** The state of one supervised process: the service itself or its log. */
export interface ProcessStatus {
  state: ServiceState;
  /** pid of ./run (or ./finish), undefined when none runs */
  pid: number | undefined;
  /** when the state last changed (./run started, or the service went down) */
  since: Date;
  /** whole seconds since then, as `sv status` prints them */
  seconds: number;
  paused: boolean;
  /** what runsv was last told: 'up' (u, o restart) or 'down' (d, x) */
  want: 'up' | 'down';
  /** TERM was sent and the process has not exited yet */
  gotTerm: boolean;
  /** no `down` file: runsv starts it when it starts */
  normallyUp: boolean;
}

/** A service's state as `sv status` knows it, typed. */
export interface ServiceStatus extends ProcessStatus {
  /** the name as given (relative to the scan directory, or a path) */
  name: string;
  /** the service directory */
  dir: string;
  /** the result of ./check when the service has one and runs; undefined when unknown */
  ready: boolean | undefined;
  /** the log service's state, when ./log exists and its runsv answers */
  log: ProcessStatus | undefined;
  /** times ./run was started again after it had run (our supervisor only; undefined under runit's runsv) */
  restarts: number | undefined;
  /** how the last ./run process ended (our supervisor only): exit code (-1 when killed), signal name */
  lastExit: { code: number; signal: string | undefined } | null | undefined;
  /** beyond runit (our supervisor only; undefined under runit's runsv): longrun or oneshot */
  type?: 'longrun' | 'oneshot' | undefined;
  /** how readiness is decided: oneshot, notification-fd, notify-socket, check, started */
  readiness?: string | undefined;
  /** when the service became ready (ISO time), null while it is not */
  readyAt?: string | null | undefined;
  /** the declared dependencies ./run waits for (empty when it does not wait) */
  waitingFor?: Array<{ name: string; hard: boolean; why: string }> | undefined;
  /** why the last start failed, until it is ready; null when it did not */
  failed?: string | null | undefined;
}

// what an event is and the socket's name live with the supervisor's lower layers
// (src/lib/events.ts); they are part of this interface (ServiceControl.events)
export { EVENT_SOCKET, type ServiceEvent } from '../lib/events.ts';

/** Signals runsv forwards (control bytes h a i q 1 2 t k p c). */
export type ServiceSignal = 'HUP' | 'ALRM' | 'INT' | 'QUIT' | 'USR1' | 'USR2' | 'TERM' | 'KILL' | 'STOP' | 'CONT';

/** What a wait waits for, with sv's meaning of each. */
export type WaitCondition =
  /** running, and ./check (if any) passes (sv's meaning of up) */
  | 'up'
  /** running, whatever ./check says */
  | 'run'
  /** no process, state down */
  | 'down'
  /** the runsv has exited (sv exit) */
  | 'exit';

/** How long a waiting verb waits, and what it does when the time is up. */
export interface WaitOptions {
  /** how long to wait, in milliseconds (default: $SVWAIT seconds, else 7000) */
  timeoutMs?: number;
  /** on timeout, kill the service (sv's force-* commands) instead of failing */
  kill?: boolean;
}

/** Why a control request failed. */
export type ServiceErrorReason =
  /** the service directory is not there */
  | 'no-service'
  /** supervise/ok does not exist: runsv never ran here */
  | 'no-supervise'
  /** supervise/ok has no reader: no runsv supervises the service */
  | 'not-running'
  /** the wanted state was not reached in time */
  | 'timeout'
  /** not reached in time, and the service was killed (force-*) */
  | 'killed'
  /** a file could not be read or written */
  | 'io';

/** A failed request, naming the service and why. */
export class ServiceError extends Error {
  readonly service: string;
  readonly reason: ServiceErrorReason;
  /** the last status read, when there was one */
  readonly status: ServiceStatus | undefined;
  constructor(service: string, reason: ServiceErrorReason, message: string, opts: { status?: ServiceStatus; cause?: unknown } = {}) {
    super(`${service}: ${message}`, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'ServiceError';
    this.service = service;
    this.reason = reason;
    this.status = opts.status;
  }
}

/**
 * Control of supervised services, by name (relative to the scan directory) or path.
 * The verbs that wait follow sv's: `start` is `sv start`, and so on; they resolve with
 * the status reached or reject with a ServiceError.
 */
export interface ServiceControl {
  /** The service's status (sv status). */
  status(service: string): Promise<ServiceStatus>;
  /** Want it up; start it if down (sv up). Does not wait. */
  up(service: string): Promise<void>;
  /** Want it down; TERM it if running (sv down). Does not wait. */
  down(service: string): Promise<void>;
  /** Start it once; no restart when it exits (sv once). Does not wait. */
  once(service: string): Promise<void>;
  /** Send a signal through runsv (sv hup, term, kill, pause, cont, ...). */
  signal(service: string, signal: ServiceSignal): Promise<void>;
  /** Start it and wait until it is up and ./check passes (sv start). */
  start(service: string, opts?: WaitOptions): Promise<ServiceStatus>;
  /** Stop it and wait until it is down (sv stop; with kill: sv force-stop). */
  stop(service: string, opts?: WaitOptions): Promise<ServiceStatus>;
  /** TERM, CONT and up, then wait until it runs again (sv restart). */
  restart(service: string, opts?: WaitOptions): Promise<ServiceStatus>;
  /** Stop it and its runsv, and wait for the runsv to exit (sv exit / shutdown). */
  exit(service: string, opts?: WaitOptions): Promise<void>;
  /** Wait, writing nothing, until the condition holds (sv check waits for 'up'). */
  wait(service: string, condition: WaitCondition, opts?: WaitOptions): Promise<ServiceStatus | undefined>;
}
