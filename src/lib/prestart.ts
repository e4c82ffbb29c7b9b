// Services started before Node, by PID 1's stage 1 child (image/prestart.c, from the plan
// image/prestart.ts writes at build time): the supervisor adopts them. They are children
// of this process (started before stage 1's exec), so they are reaped here as the
// supervisor's own; each logged one comes with its log pipe, both ends open across the
// exec, the output since its start waiting in it for the logger.
import { closeQuiet, signal } from './sys.ts';

/** The environment variable the prestart hands its services over in. */
export const PRESTART_ENV = 'RUNIT_TS_PRESTART';

/** A service the prestart started. */
export interface Prestarted {
  /** its directory, resolved (as the supervisor's realpath of scandir/NAME) */
  dir: string;
  pid: number;
  /** the log pipe's read and write ends, or -1 (no log service) */
  rfd: number;
  wfd: number;
  /** when it was started: the wall clock in ms, and the monotonic clock in ms (process.hrtime's) */
  realMs: number;
  monoMs: number;
}

/** RUNIT_TS_PRESTART's lines ("DIR PID RFD WFD REALTIME_US MONOTONIC_NS"); a malformed line is left out. */
export function parsePrestart(text: string): Prestarted[] {
  const out: Prestarted[] = [];
  for (const line of text.split('\n')) {
    const m = /^(\/\S*) (\d+) (-1|\d+) (-1|\d+) (\d+) (\d+)$/.exec(line);
    if (!m) continue;
    const [rfd, wfd] = [Number(m[3]), Number(m[4])];
    if ((rfd < 0) !== (wfd < 0)) continue;
    out.push({ dir: m[1]!, pid: Number(m[2]), rfd, wfd, realMs: Number(m[5]) / 1000, monoMs: Number(m[6]) / 1e6 });
  }
  return out;
}

const pending = new Map<string, Prestarted>();

/**
 * Take the prestarted services out of the environment (nothing this process starts may
 * see them), to be adopted. Called at stage 1's start.
 */
export function takePrestartEnv(env: NodeJS.ProcessEnv = process.env): void {
  const text = env[PRESTART_ENV];
  if (text === undefined) return;
  delete env[PRESTART_ENV];
  for (const p of parsePrestart(text)) pending.set(p.dir, p);
}

/** The prestarted service of this directory, handed over once (the supervisor adopts it). */
export function adoptPrestarted(dir: string): Prestarted | undefined {
  const p = pending.get(dir);
  if (p) pending.delete(dir);
  return p;
}

/**
 * The prestarted services nobody adopted (their directory was not supervised after all):
 * TERM and CONT each (it runs in a session of its own, as the supervisor's would), and
 * close its pipe. The caller reaps them (a supervisor reaps its children by pid only:
 * src/runsv/children.ts); once this process is gone, PID 1 does.
 */
export function dropPrestarted(): Prestarted[] {
  const dropped = [...pending.values()];
  for (const p of dropped) {
    signal(p.pid, 'SIGTERM');
    signal(p.pid, 'SIGCONT');
    if (p.rfd >= 0) closeQuiet(p.rfd);
    if (p.wfd >= 0) closeQuiet(p.wfd);
  }
  pending.clear();
  return dropped;
}
