// The utmpset applet: runit's utmpset [-w] line, marking a terminal line logged out in
// utmp (and, with -w, appending a logout record to wtmp), for getty services' finish.
import { errWrite, Exit, exit, runTool, usage as usageExit, warningLine } from '../lib/diag.ts';
import { errorStr } from '../lib/errstr.ts';
import { Getopt } from '../lib/getopt.ts';
import { hostLayout, UTMP_FILE, utmpLogout, WTMP_FILE, wtmpLogout } from './utmp.ts';

const USAGE = ' [-w] line';
const VERSION = '$Id: runit-ts utmpset $';
export const HELP = `usage: utmpset [-w] line

Marks terminal line (e.g. tty5) logged out in ${UTMP_FILE}: the first entry for it with
a user gets user and host cleared, the time set and type DEAD_PROCESS (runit's utmpset).
  -w  also append a logout record for line to ${WTMP_FILE}
Exit codes: 0 done, 1 usage, 111 no such entry or an error.
`;

export function main(argv: string[], argv0: string): number {
  if (argv[0] === '--help') {
    process.stdout.write(HELP);
    return 0;
  }
  return runTool(() => {
    const usage = (): never => usageExit(argv0, USAGE, 1);
    let wtmp = false;
    const g = new Getopt(argv, 'wV', argv0, errWrite);
    for (let o = g.next(); o; o = g.next()) {
      if (o.c === 'w') wtmp = true;
      else {
        if (o.c === 'V') errWrite(`${VERSION}\n`);
        usage();
      }
    }
    const [line] = g.rest();
    if (line === undefined) usage();
    const layout = hostLayout();
    const now = Math.floor(Date.now() / 1000);
    // a failure to open or lock a file throws utmpset's fatal line (Exit 111)
    if (!utmpLogout(UTMP_FILE, line!, now, layout, errorStr)) exit(111, warningLine('utmpset', `unable to logout line ${line} in utmp: no such entry`));
    if (wtmp) {
      try {
        wtmpLogout(WTMP_FILE, line!, now, layout, errorStr);
      } catch (e) {
        if (e instanceof Exit) throw e;
        exit(111, warningLine('utmpset', `unable to logout line ${line} in wtmp`, e));
      }
    }
    return 0;
  });
}
