// runsvchdir dir: switch runsvdir's runlevel, as runit's runsvchdir: make
// /etc/runit/runsvdir/current a symlink to dir (the old one becomes "previous").
// $RUNSVDIR overrides /etc/runit/runsvdir (runit 2.3.0; Debian's 2.1.2 has it fixed).
import { renameSync, statSync, symlinkSync, unlinkSync, type Stats } from 'node:fs';
import { join } from 'node:path';
import { errLine, exit, fatal as die, fatalLine, outWrite, runTool, usage } from '../lib/diag.ts';

export const RUNSVDIR = '/etc/runit/runsvdir';

export const HELP = `usage: runsvchdir dir

Makes ${RUNSVDIR}/current a symlink to dir (a directory in ${RUNSVDIR},
not starting with '.'), keeping the old target as ${RUNSVDIR}/previous;
runsvdir on ${RUNSVDIR}/current then starts the new runlevel's services.
Environment: RUNSVDIR overrides ${RUNSVDIR}. Exit codes: 0 ok, 1 usage, 111 error.
`;

export function main(argv: string[], argv0 = 'runsvchdir', env: NodeJS.ProcessEnv = process.env): number {
  if (argv[0] === '--help' || argv[0] === '-h') {
    process.stdout.write(HELP);
    return 0;
  }
  // runit's fatal(): "PROG: fatal: <m1><m2>: <error>"; fatalx() has no error (and no separator)
  const fatal: (m: string, e: unknown) => never = (m, e) => die(argv0, m, e);
  const fatalx: (m: string) => never = (m) => die(argv0, m);
  const say = (s: string) => outWrite(`runsvchdir: ${s}\n`);
  return runTool(() => {
    const neu = argv[0];
    if (neu === undefined) usage(argv0, ' dir', 1);
    const base = env.RUNSVDIR || RUNSVDIR;
    if (neu.startsWith('.')) fatalx(`${neu}: must not start with a dot.`);
    try {
      if (!statSync(base).isDirectory()) throw Object.assign(new Error(), { code: 'ENOTDIR' });
    } catch (e) {
      fatal(`unable to chdir: ${base}`, e);
    }
    const at = (p: string) => join(base, p);
    let st: Stats;
    try {
      st = statSync(at(neu));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') fatal(neu, e);
      fatal(`unable to stat: ${neu}`, e);
    }
    // runsvchdir prints these two without a separator
    if (!st.isDirectory()) fatalx(`${neu}not a directory.`);
    let cur: Stats;
    try {
      cur = statSync(at('current'));
    } catch (e) {
      fatal('unable to stat: current', e);
    }
    if (cur.ino === st.ino && cur.dev === st.dev) {
      say(`${neu}: current.`);
      return 0;
    }
    try {
      unlinkSync(at('current.new'));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') fatal('unable to unlink: current.new', e);
    }
    try {
      symlinkSync(neu, at('current.new'));
    } catch (e) {
      fatal(`unable to create: current.new -> ${neu}`, e);
    }
    try {
      unlinkSync(at('previous'));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') fatal('unable to unlink: previous', e);
    }
    try {
      renameSync(at('current'), at('previous'));
    } catch (e) {
      fatal('unable to copy: current to previous', e);
    }
    try {
      renameSync(at('current.new'), at('current'));
    } catch (e) {
      errLine(fatalLine(argv0, 'unable to move: current.new to current', e));
      try {
        renameSync(at('previous'), at('current'));
      } catch (e2) {
        fatal('unable to move previous back to current', e2);
      }
      exit(111);
    }
    say(`${neu}: now current.`);
    return 0;
  });
}
