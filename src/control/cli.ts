// runit-ts status --json | events | wait: the library's client from the shell.
// Thin commands over SupervisedServices (src/control/client.ts); sv stays runit's.
import { writeSync } from 'node:fs';
import { badUsage, die, note, runToolAsync } from '../lib/diag.ts';
import { Getopt } from '../lib/getopt.ts';
import { SupervisedServices } from './client.ts';
import { ServiceError, type ProcessStatus, type ServiceStatus, type WaitCondition } from './types.ts';

export const STATUS_HELP = `usage: runit-ts status --json [-d scandir] service ...

Prints one JSON object per service, one per line, with what sv status knows, typed:
  name, dir, state (down|run|finish), pid, since (ISO time), seconds, paused,
  want (up|down), gotTerm, normallyUp, ready (./check's verdict while running),
  restarts and lastExit {code, signal} (from our supervisor's supervise/stats.json;
  null under runit's runsv), type (longrun|oneshot), readiness (how it is decided:
  oneshot|notification-fd|notify-socket|check|started), readyAt (ISO time, null while
  not ready), waitingFor ([{name, hard, why}]: declared dependencies ./run waits for),
  failed (why the last start failed, else null), log (the same fields for ./log, or null).
A service that cannot be read gives {"name", "error": {"reason", "message"}}.
  -d scandir   where names are looked up (default $SVDIR, else /etc/service)
Exit code: the number of services that could not be read (at most 99); 100 usage.
`;

export const EVENTS_HELP = `usage: runit-ts events [-d scandir] [-n] [-c count] [-t sec] [service ...]

Follows the state changes our supervisor pushes on SCANDIR/.events, one JSON line each:
  {"event":"up|ready|finish|exit|down","service":"web","pid":312,"code":0,
   "signal":"SIGTERM","time":"...","monotonic":12.4[,"replay":true]}
Events from before it connected come first, marked "replay" (-n leaves them out).
With service names, only their events (NAME/log for a log).
  -c count     exit after this many events     -t sec   exit after sec seconds
Exit codes: 0 done (count reached, timeout, supervisor gone), 1 no supervisor serves
events there (runit's runsvdir does not), 100 usage.
`;

export const WAIT_HELP = `usage: runit-ts wait [-d scandir] [-t sec] [-a] up|ready|down service ...

Waits until every service (with -a: any one) is
  up      running                       ready   running and ./check passes (sv's up)
  down    not running
and prints "ok: NAME" for each that got there. Default timeout $SVWAIT or 7 s.
Exit codes: 0 reached, 1 timed out (prints "timeout: NAME" for each not there),
2 a service could not be read, 100 usage.
`;

function plain(p: ProcessStatus): Record<string, unknown> {
  return { state: p.state, pid: p.pid ?? null, since: p.since.toISOString(), seconds: p.seconds, paused: p.paused, want: p.want, gotTerm: p.gotTerm, normallyUp: p.normallyUp };
}

/** The JSON form of a status: every field present (null where unknown). */
export function statusJson(st: ServiceStatus): Record<string, unknown> {
  return { name: st.name, dir: st.dir, ...plain(st), ready: st.ready ?? null, restarts: st.restarts ?? null, lastExit: st.lastExit ?? null,
    type: st.type ?? null, readiness: st.readiness ?? null, readyAt: st.readyAt ?? null, waitingFor: st.waitingFor ?? null, failed: st.failed ?? null,
    log: st.log ? plain(st.log) : null };
}

/** The options and operands, or undefined when --help printed the help; a bad option ends with the usage line. */
function parseOrUsage(argv: string[], spec: string, help: string, prog: string): { opts: Map<string, string>; rest: string[] } | undefined {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(help);
    return undefined;
  }
  const args = argv.filter((a) => a !== '--json');
  const g = new Getopt(args, spec, prog);
  const opts = new Map<string, string>();
  for (let o = g.next(); o; o = g.next()) {
    if (o.c === '?') badUsage(help);
    opts.set(o.c, o.arg ?? '');
  }
  return { opts, rest: args.slice(g.index) };
}

/** -t's seconds as milliseconds (undefined when not given); not a number ends with the usage line. */
function seconds(v: string | undefined, help: string): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d+(\.\d+)?$/.test(v)) badUsage(help);
  return Number(v) * 1000;
}

/** runit-ts status --json: one JSON line per service. */
export async function status(argv: string[], argv0 = 'status'): Promise<number> {
  return runToolAsync(async () => {
    const p = parseOrUsage(argv, 'd:', STATUS_HELP, argv0);
    if (!p) return 0;
    if (!argv.includes('--json') || !p.rest.length) badUsage(STATUS_HELP);
    const sv = new SupervisedServices({ scanDir: p.opts.get('d') });
    let failed = 0;
    for (const name of p.rest) {
      try {
        writeSync(1, JSON.stringify(statusJson(await sv.status(name))) + '\n');
      } catch (e) {
        if (!(e instanceof ServiceError)) throw e;
        failed++;
        writeSync(1, JSON.stringify({ name, error: { reason: e.reason, message: e.message } }) + '\n');
      }
    }
    return Math.min(failed, 99);
  });
}

/** runit-ts events: the supervisor's state changes as JSON lines. */
export async function events(argv: string[], argv0 = 'events'): Promise<number> {
  return runToolAsync(async () => {
    let count = Infinity;
    const p = parseOrUsage(argv, 'd:nc:t:', EVENTS_HELP, argv0);
    if (!p) return 0;
    if (p.opts.has('c')) {
      if (!/^\d+$/.test(p.opts.get('c')!)) badUsage(EVENTS_HELP);
      count = Number(p.opts.get('c'));
    }
    const timeoutMs = seconds(p.opts.get('t'), EVENTS_HELP);
    const only = new Set(p.rest);
    const sv = new SupervisedServices({ scanDir: p.opts.get('d') });
    const ac = new AbortController();
    const timer = timeoutMs === undefined ? undefined : setTimeout(() => ac.abort(), timeoutMs);
    try {
      for await (const ev of sv.events({ signal: ac.signal })) {
        if (p.opts.has('n') && ev.replay) continue;
        if (only.size && !only.has(ev.service)) continue;
        writeSync(1, JSON.stringify(ev) + '\n');
        if (--count <= 0) break;
      }
    } catch (e) {
      if (!(e instanceof ServiceError)) throw e;
      die(argv0, e.message, 1);
    } finally {
      clearTimeout(timer);
    }
    return 0;
  });
}

/** runit-ts wait: until services are up, ready or down (any one with -a). */
export async function wait(argv: string[], argv0 = 'wait'): Promise<number> {
  return runToolAsync(async () => {
    const p = parseOrUsage(argv, 'd:t:a', WAIT_HELP, argv0);
    if (!p) return 0;
    const timeoutMs = seconds(p.opts.get('t'), WAIT_HELP);
    const [what, ...names] = p.rest;
    const cond: Record<string, WaitCondition> = { up: 'run', ready: 'up', down: 'down' };
    if (!what || !cond[what] || !names.length) badUsage(WAIT_HELP);
    const sv = new SupervisedServices({ scanDir: p.opts.get('d'), ...(timeoutMs === undefined ? {} : { timeoutMs }) });
    const any = p.opts.has('a');
    // with -a the first to get there ends the wait for all
    const ac = new AbortController();
    const results = await Promise.all(
      names.map(async (name) => {
        try {
          await sv.wait(name, cond[what]!, any ? { signal: ac.signal } : {});
          if (any) ac.abort();
          writeSync(1, `ok: ${name}\n`);
          return 'ok' as const;
        } catch (e) {
          if (!(e instanceof ServiceError)) throw e;
          if (e.reason === 'timeout') {
            if (!ac.signal.aborted) writeSync(1, `timeout: ${name}\n`);
            return 'timeout' as const;
          }
          note(argv0, e.message);
          return 'error' as const;
        }
      }),
    );
    if (results.includes('error')) return 2;
    const ok = results.filter((r) => r === 'ok').length;
    return (any ? ok > 0 : ok === names.length) ? 0 : 1;
  });
}
