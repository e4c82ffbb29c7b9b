// /etc/runit/2: run the supervisor on /etc/service. The supervisor runs in this same
// process (what `exec runsvdir` would give, without paying for a second Node start).
import { main as runsvdir } from '../src/runsvdir/main.ts';

export const HELP = `usage: /etc/runit/2

runit stage 2: supervises every service in /etc/service (runsvdir -P), with
PATH set for services. Ends when runit sends TERM (after 'init 0' / 'init 6').
`;

export const SERVICE_DIR = '/etc/service';
/** the events socket and the directory watch a second after the first pass (src/runsvdir/runsvdir.ts) */
export const SERVE_DELAY_MS = 1000;
export const PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export function main(argv: string[]): Promise<number> | number {
  if (argv[0] === '--help') {
    process.stdout.write(HELP);
    return 0;
  }
  process.env.PATH = PATH;
  return runsvdir(['-P', process.env.RUNIT_TS_SVDIR ?? SERVICE_DIR, 'log: ' + '.'.repeat(395)], 'runsvdir', { serveDelayMs: SERVE_DELAY_MS });
}
