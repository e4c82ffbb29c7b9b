// runit-ts sntp: set the clock from an NTP server (SNTP client), once or every N seconds
// in the foreground (the catalogue's ntp service), or answer SNTP queries (--serve).
import { spawnSync } from 'node:child_process';
import { parseArgs } from 'node:util';
import { errLine, outWrite } from '../lib/diag.ts';
import { parseServer, query, serve, type SntpResult } from './sntp.ts';

export const HELP = `usage: runit-ts sntp [-s] [-i SECONDS] [-t SECONDS] SERVER[:PORT]
       runit-ts sntp --serve [--offset SECONDS] [ADDRESS:]PORT

Asks SERVER (port 123 by default) for the time (SNTP, RFC 4330) and prints the
offset of the local clock and the round trip.
  -s          set the clock when it is off by more than 0.128 s (stepped at a
              whole second, with date -s)
  -i SECONDS  stay in the foreground and ask again every SECONDS (a failed query
              is reported and retried after 5 s); without it: one query
  -t SECONDS  how long to wait for an answer (default 5)
--serve answers clients with this machine's clock (plus --offset), stratum 2:
for tests and small networks.
Exit codes: 0 ok, 1 usage, 111 no answer or an error.
`;

const STEP = 0.128;
/** ms before asking again after a failed query (the server may not be reachable yet) */
const RETRY = 5000;

function line(r: SntpResult): string {
  const sign = r.offset >= 0 ? '+' : '-';
  return `sntp: ${r.server}: offset ${sign}${Math.abs(r.offset).toFixed(3)} s, delay ${r.delay.toFixed(3)} s, stratum ${r.stratum}`;
}

/** Step the clock by `offset` seconds, at the next whole second of the corrected time. */
async function step(offset: number): Promise<void> {
  const target = Date.now() + offset * 1000;
  const wait = 1000 - (target % 1000);
  await new Promise((ok) => setTimeout(ok, wait));
  const sec = Math.round((Date.now() + offset * 1000) / 1000);
  const r = spawnSync('date', ['-u', '-s', `@${sec}`], { encoding: 'utf8' });
  if (r.error || r.status !== 0) throw new Error(`unable to set the clock: ${r.error?.message ?? r.stderr.trim()}`);
}

export async function main(argv: string[]): Promise<number> {
  if (argv[0] === '--help' || argv[0] === '-h') {
    process.stdout.write(HELP);
    return 0;
  }
  let values, positionals;
  try {
    ({ values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: { set: { type: 'boolean', short: 's' }, interval: { type: 'string', short: 'i' }, timeout: { type: 'string', short: 't' }, serve: { type: 'boolean' }, offset: { type: 'string' } },
    }));
  } catch (e) {
    errLine(`sntp: ${(e as Error).message}`);
    process.stderr.write(HELP);
    return 1;
  }
  const num = (v: string | undefined, what: string, dflt: number, min: number): number => {
    const n = v === undefined ? dflt : Number(v);
    if (!Number.isFinite(n) || n < min) throw new Error(`${what} must be a number >= ${min}, got ${v}`);
    return n;
  };
  if (positionals.length !== 1) {
    process.stderr.write(HELP);
    return 1;
  }
  try {
    if (values.serve) {
      const spec = positionals[0]!;
      const { host, port } = /^\d+$/.test(spec) ? { host: '0.0.0.0', port: Number(spec) } : parseServer(spec);
      await serve(port, host, num(values.offset, '--offset', 0, -Infinity) * 1000);
      outWrite(`sntp: serving on ${host}:${port}\n`);
      return await new Promise<number>(() => {});
    }
    const server = positionals[0]!;
    parseServer(server);
    const timeout = num(values.timeout, '-t', 5, 0.1) * 1000;
    const interval = values.interval === undefined ? 0 : num(values.interval, '-i', 0, 1) * 1000;
    for (;;) {
      let failed = false;
      try {
        const r = await query(server, timeout);
        outWrite(line(r) + '\n');
        if (values.set && Math.abs(r.offset) > STEP) {
          await step(r.offset);
          outWrite(`sntp: clock stepped by ${r.offset.toFixed(3)} s\n`);
        }
      } catch (e) {
        errLine(`sntp: ${(e as Error).message}`);
        if (!interval) return 111;
        failed = true;
      }
      if (!interval) return 0;
      await new Promise((ok) => setTimeout(ok, failed ? Math.min(interval, RETRY) : interval));
    }
  } catch (e) {
    errLine(`sntp: ${(e as Error).message}`);
    return 111;
  }
}
