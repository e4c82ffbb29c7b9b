// container-probe: exit 0 when every service the container init supervises that is
// wanted up is up and its ./check (if any) passes; for Kubernetes exec readiness and
// liveness probes and `podman healthcheck`. Reads runsv's supervise/status records
// (src/lib/supervise.ts) and runs ./check as sv does (src/lib/check.ts), with a time limit.
import { accessSync, constants as C, readdirSync } from 'node:fs';
import { basename, join } from 'node:path';
import { checkSync } from '../lib/check.ts';
import { note, runTool, die } from '../lib/diag.ts';
import { S_RUN } from '../lib/status.ts';
import { readStatusFile } from '../lib/supervise.ts';
import { DEFAULTS } from './init.ts';

/** How this tool names itself in its lines. */
const PROG = 'container-probe';
/** How long ./check may run when RUNIT_TS_PROBE_TIMEOUT does not say, in seconds. */
const PROBE_TIMEOUT_S = 5;

export const HELP = `usage: container-probe [-v] [SERVICE...]

Exit 0 when every service (or each SERVICE named) of the running container init
that is wanted up is running and its ./check, if it has one, exits 0 (within
RUNIT_TS_PROBE_TIMEOUT seconds, default ${PROBE_TIMEOUT_S}). Exit 1 otherwise, one line per
failing service on stderr; -v also prints the good ones. Looks in the first of $SVDIR,
$RUNIT_TS_STATE/service (default /run/runit-ts/service) and /tmp/runit-ts-UID/service
that exists (container-init's state directory and its fallback).
`;

/** Where container-init's supervised copy of the services is. */
function serviceDir(): string {
  const state = process.env.RUNIT_TS_STATE || DEFAULTS.RUNIT_TS_STATE;
  const candidates = [process.env.SVDIR, join(state, 'service'), `/tmp/runit-ts-${process.getuid?.() ?? 0}/service`];
  for (const d of candidates) {
    if (!d) continue;
    try {
      accessSync(d, C.R_OK);
      return d;
    } catch {
      /* next */
    }
  }
  return join(state, 'service');
}

/** null when healthy, else why not; `name` names the service in a ./check that cannot be run. */
export function probeOne(dir: string, name = basename(dir)): string | null {
  const r = readStatusFile(dir);
  if (r.kind !== 'ok') return `no status (${(r.cause as NodeJS.ErrnoException | undefined)?.code ?? r.reason ?? r.message})`;
  const st = r.status;
  if (st.want !== 'up') return null; // wanted down: nothing to check
  if (st.pid === 0 || st.state !== S_RUN) return 'down, want up';
  const c = checkSync(dir, { name, timeoutMs: Number(process.env.RUNIT_TS_PROBE_TIMEOUT ?? PROBE_TIMEOUT_S) * 1000 });
  switch (c.end) {
    case 'absent':
      return null;
    case 'exit':
      return c.ready ? null : `./check exited ${c.code}`;
    case 'signal':
      return `./check exited ${c.signal}`;
    case 'timeout':
      return './check: ETIMEDOUT';
    case 'failed':
      return c.message;
    case 'cancelled':
      return './check: cancelled';
  }
}

/** The probe over every service (or those named): exit 0 healthy, 1 not (a line each on stderr). */
export function main(argv: string[]): number {
  return runTool(() => {
    if (argv[0] === '--help' || argv[0] === '-h') {
      process.stdout.write(HELP);
      return 0;
    }
    const verbose = argv[0] === '-v';
    if (verbose) argv = argv.slice(1);
    const base = serviceDir();
    let names = argv;
    if (names.length === 0) {
      try {
        names = readdirSync(base).filter((n) => !n.startsWith('.')).sort();
      } catch (e) {
        die(PROG, `${base}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, 1);
      }
    }
    let bad = 0;
    for (const n of names) {
      const why = probeOne(join(base, n), n);
      if (why) {
        bad++;
        note(PROG, `${n}: ${why}`);
      } else if (verbose) process.stdout.write(`ok: ${n}\n`);
    }
    return bad ? 1 : 0;
  });
}
