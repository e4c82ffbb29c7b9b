// The utmpset applet: runit's utmpset [-w] line, marking a terminal line logged out in
// utmp (and, with -w, appending a logout record to wtmp), for getty services' finish.
import { writeSync } from 'node:fs';
import { errorStr } from '../lib/errstr.ts';
import { Getopt } from '../lib/getopt.ts';
import { hostLayout, UTMP_FILE, utmpLogout, UtmpError, WTMP_FILE, wtmpLogout } from './utmp.ts';

const USAGE = ' [-w] line';
const VERSION = '$Id: runit-ts utmpset $';
export const HELP = `usage: utmpset [-w] line

Marks terminal line (e.g. tty5) logged out in ${UTMP_FILE}: the first entry for it with
a user gets user and host cleared, the time set and type DEAD_PROCESS (runit's utmpset).
  -w  also append a logout record for line to ${WTMP_FILE}
Exit codes: 0 done, 1 usage, 111 no such entry or an error.
`;

function err(s: string): void {
  try {
    writeSync(2, s);
  } catch {
    // stderr closed
  }
}

export function main(argv: string[], argv0: string): number {
  if (argv[0] === '--help') {
    process.stdout.write(HELP);
    return 0;
  }
  const usage = () => {
    err(`usage: ${argv0}${USAGE}\n\n`);
    return 1;
  };
  let wtmp = false;
  const g = new Getopt(argv, 'wV', argv0, err);
  for (let o = g.next(); o; o = g.next()) {
    if (o.c === 'w') wtmp = true;
    else {
      if (o.c === 'V') err(`${VERSION}\n`);
      return usage();
    }
  }
  const [line] = g.rest();
  if (line === undefined) return usage();
  const layout = hostLayout();
  const now = Math.floor(Date.now() / 1000);
  try {
    if (!utmpLogout(UTMP_FILE, line, now, layout, errorStr)) {
      err(`utmpset: warning: unable to logout line ${line} in utmp: no such entry\n`);
      return 111;
    }
    if (wtmp) {
      try {
        wtmpLogout(WTMP_FILE, line, now, layout, errorStr);
      } catch (e) {
        if (e instanceof UtmpError) throw e;
        err(`utmpset: warning: unable to logout line ${line} in wtmp: ${errorStr(e)}\n`);
        return 111;
      }
    }
  } catch (e) {
    if (!(e instanceof UtmpError)) throw e;
    err(`utmpset: ${e.kind}: ${e.message}\n`);
    return 111;
  }
  return 0;
}
