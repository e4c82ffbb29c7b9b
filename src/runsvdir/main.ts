// runsvdir [-P] dir [log]: supervise every service directory in dir.
import { Runsvdir } from './runsvdir.ts';

export const HELP = `usage: runsvdir [-P] dir [log]

Starts and supervises a runsv state machine for every subdirectory of dir
(names starting with '.' and non-directories are skipped; symlinks are
followed), in this one process. New directories are picked up at once and
by a periodic scan; removed ones are stopped.

  -P    run each service in a new session (setsid)
  log   a placeholder of at least 7 characters shown in ps (runit's status
        "log" argument)

Signals: TERM stops every service (as 'sv exit' on each, all in parallel;
what is left after RUNSVDIR_STOP_TIMEOUT seconds, default 4, is killed) and
exits 0; HUP does the same and exits 111.
Exit codes: 1 usage, 100 fatal.
`;

export async function main(argv: string[]): Promise<number> {
  let setsid = false;
  const args = [...argv];
  if (args[0] === '--help' || args[0] === '-h') {
    process.stdout.write(HELP);
    return 0;
  }
  if (args[0] === '-P') {
    setsid = true;
    args.shift();
  }
  if (args[0] === '--') args.shift();
  const dir = args[0];
  if (!dir || args.length > 2 || dir.startsWith('-')) {
    process.stderr.write('usage: runsvdir [-P] dir [log]\n');
    return 1;
  }
  const log = args[1];
  process.title = `runsvdir ${setsid ? '-P ' : ''}${dir}${log ? ' ' + log : ''}`;
  const rd = new Runsvdir(dir, { setsid });
  rd.start();
  const stopTimeout = Number(process.env.RUNSVDIR_STOP_TIMEOUT ?? 4) * 1000;
  return new Promise<number>((res) => {
    const stop = (code: number) => () => {
      void rd.stopAll(stopTimeout).then(() => res(code));
    };
    process.once('SIGTERM', stop(0));
    process.once('SIGHUP', stop(111));
  });
}
