// /etc/runit/2: run the supervisor on /etc/service. The supervisor runs in this same
// process (what `exec runsvdir` would give, without paying for a second Node start).
// Before it starts, the runlevel Debian's stage 2 would select is made current
// (runsvchdir): runitdir=NAME on the kernel command line (PID 1's environment), else
// /etc/runit/default.runsvdir; on a Debian system "default" otherwise, so that a boot
// always comes up in the default runlevel as Debian's does. On a Debian system it also
// makes /run/runit/supervise first (stages/debian.ts).
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { main as runsvdir } from '../src/runsvdir/main.ts';
import { main as runsvchdir, RUNSVDIR } from '../src/runsvchdir/main.ts';
import { debianStage2, isDebian } from './debian.ts';

export const HELP = `usage: /etc/runit/2

runit stage 2: supervises every service in /etc/service (runsvdir -P), with
PATH set for services. Ends when runit sends TERM (after 'init 0' / 'init 6').
First it makes a runlevel current (runsvchdir) when one is chosen: runitdir=NAME
on the kernel command line, else the name in /etc/runit/default.runsvdir, else
(on a Debian system) default. On a Debian system it also makes
/run/runit/supervise, where Debian's services keep their supervise/.
`;

export const SERVICE_DIR = '/etc/service';
/** the events socket and the directory watch a second after the first pass (src/runsvdir/runsvdir.ts) */
export const SERVE_DELAY_MS = 1000;
export const PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
/** The runlevel a boot starts in, when the kernel command line names none (Debian's stage 2). */
export const DEFAULT_RUNLEVEL_FILE = '/etc/runit/default.runsvdir';

/**
 * The runlevel to make current, as Debian's stage 2 chooses it: runitdir= when it names a
 * directory of `base`, else the default runlevel file's word, else "default" on Debian;
 * undefined: leave current as it is.
 */
export function chosenRunlevel(env: NodeJS.ProcessEnv, debian: boolean, base = RUNSVDIR, file = DEFAULT_RUNLEVEL_FILE): string | undefined {
  const asked = env.runitdir;
  if (asked) {
    try {
      if (statSync(join(base, asked)).isDirectory()) return asked;
    } catch {
      /* not a runlevel: as Debian, fall through */
    }
  }
  try {
    const word = readFileSync(file, 'utf8').trim();
    if (word) return word;
  } catch {
    /* none */
  }
  return debian ? 'default' : undefined;
}

export function main(argv: string[]): Promise<number> | number {
  if (argv[0] === '--help') {
    process.stdout.write(HELP);
    return 0;
  }
  process.env.PATH = PATH;
  const svdir = process.env.RUNIT_TS_SVDIR;
  // the system's runlevels are /etc/service's: a stage 2 given another directory leaves them be
  if (svdir === undefined) {
    const debian = isDebian();
    if (debian) debianStage2();
    const level = chosenRunlevel(process.env, debian);
    // as Debian's `runsvchdir "$runsv_dir" || runsvchdir default`
    if (level !== undefined && runsvchdir([level]) !== 0 && level !== 'default') runsvchdir(['default']);
  }
  return runsvdir(['-P', svdir ?? SERVICE_DIR, 'log: ' + '.'.repeat(395)], 'runsvdir', { serveDelayMs: SERVE_DELAY_MS });
}
