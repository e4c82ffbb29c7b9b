// container-probe: exit 0 when every service the container init supervises that is
// wanted up is up and its ./check (if any) passes; for Kubernetes exec readiness and
// liveness probes and `podman healthcheck`. Reads runsv's supervise/status records.
import { spawnSync } from 'node:child_process';
import { accessSync, constants as C, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { decodeStatus, S_RUN } from '../lib/status.ts';
import { DEFAULTS } from './init.ts';

export const HELP = `usage: container-probe [-v] [SERVICE...]

Exit 0 when every service (or each SERVICE named) of the running container init
that is wanted up is running and its ./check, if it has one, exits 0 (within
RUNIT_TS_PROBE_TIMEOUT seconds, default 5). Exit 1 otherwise, one line per
failing service on stderr; -v also prints the good ones. Looks in the first of $SVDIR,
$RUNIT_TS_STATE/service (default /run/runit-ts/service) and /tmp/runit-ts-UID/service
that exists (container-init's state directory and its fallback).
`;

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

/** null when healthy, else why not. */
export function probeOne(dir: string): string | null {
  let raw;
  try {
    raw = decodeStatus(readFileSync(join(dir, 'supervise', 'status')));
  } catch (e) {
    return `no status (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`;
  }
  if (raw.wantChar !== 'u') return null; // wanted down: nothing to check
  if (raw.pid === 0 || raw.state !== S_RUN) return 'down, want up';
  try {
    accessSync(join(dir, 'check'), C.X_OK);
  } catch {
    return null;
  }
  const timeout = Number(process.env.RUNIT_TS_PROBE_TIMEOUT ?? 5) * 1000;
  const r = spawnSync('./check', [], { cwd: dir, stdio: ['ignore', 'ignore', 'inherit'], timeout });
  if (r.error) return `./check: ${(r.error as NodeJS.ErrnoException).code ?? r.error.message}`;
  if (r.status !== 0) return `./check exited ${r.status ?? r.signal}`;
  return null;
}

export function main(argv: string[]): number {
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
      process.stderr.write(`container-probe: ${base}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}\n`);
      return 1;
    }
  }
  let bad = 0;
  for (const n of names) {
    const why = probeOne(join(base, n));
    if (why) {
      bad++;
      process.stderr.write(`container-probe: ${n}: ${why}\n`);
    } else if (verbose) process.stdout.write(`ok: ${n}\n`);
  }
  return bad ? 1 : 0;
}
