// Beyond runit: the state changes of supervised services as JSON lines, pushed by the
// supervisor (no polling). runsvdir serves them on a unix socket in the scan directory,
// DIR/.events (mode 0600; runsvdir ignores names starting with '.'); a client connects
// and reads: first the events kept from before it connected (marked "replay": true),
// then each event as it happens.
//
//   {"event":"up","service":"web","pid":312,"time":"2026-11-28T20:31:07.118Z","monotonic":12.402}
//   {"event":"exit","service":"web","pid":312,"code":-1,"signal":"SIGTERM",...}
//
// What an event is and where the socket is: shared by the supervisor that sends them
// (src/runsv/events.ts serves them) and the clients that read them (src/control/).

/** Name of the event socket in the scan directory. */
export const EVENT_SOCKET = '.events';

/** One state change, as our supervisor pushes it on SCANDIR/.events (see ServiceControl.events). */
export interface ServiceEvent {
  /**
   * up: ./run started (pid); ready: known ready (started with nothing to tell readiness,
   * a newline on notification-fd, READY=1 on NOTIFY_SOCKET, ./check passed, a one-shot
   * exited 0); finish: ./finish started; exit: the process ended (code, or -1 and
   * signal); down: the service is down; waiting: ./run waits for declared dependencies
   * (waitingFor); failed: a start failed (reason: a one-shot's exit, a readiness timeout)
   */
  event: 'up' | 'ready' | 'finish' | 'exit' | 'down' | 'waiting' | 'failed';
  /** waiting: the declared dependencies not met yet */
  waitingFor?: string[];
  /** failed: why the start failed */
  reason?: string;
  /** name in the scan directory; NAME/log for a log service */
  service: string;
  pid?: number;
  /** exit: the exit code, -1 when killed by a signal */
  code?: number;
  /** exit: the signal's name (SIGTERM) when killed by one */
  signal?: string;
  /** wall clock, ISO 8601 */
  time: string;
  /** seconds on the monotonic clock */
  monotonic: number;
  /** from the supervisor's backlog: it happened before this client connected */
  replay?: boolean;
}

/** The event kinds (ServiceEvent is the one definition of an event). */
export type ServiceEventKind = ServiceEvent['event'];

/**
 * An event to record: stamped now unless it carries when it happened (one held back a
 * moment): `at`, milliseconds since the epoch, and `monotonic`.
 */
export type EventSink = (e: Omit<ServiceEvent, 'time' | 'monotonic'> & { at?: number; monotonic?: number }) => void;
