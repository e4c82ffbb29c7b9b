// runsvdir [-P] dir [log]: supervise every service directory in dir.
import { takePrestartEnv } from '../lib/prestart.ts';
import { errLine, runTool, usage as diagUsage } from '../lib/diag.ts';
import { psLogFits, setComm, setupPsLog, type PsLog } from './log.ts';
import { interpreterOnly, scheduleTrims, trimExecutable } from '../lib/trim.ts';
import { watchResources } from '../lib/resources.ts';
import { Runsvdir, type RunsvdirOptions } from './runsvdir.ts';

export const HELP = `usage: runsvdir [-P] dir [log]

Starts and supervises a runsv state machine for every subdirectory of dir
(names starting with '.' and non-directories are skipped; symlinks are
followed), in this one process. New directories are picked up at once and
by a periodic scan; removed ones are stopped.

  -P    run each service in a new session (setsid)
  log   at least 7 characters: runsvdir's and the services' stderr go to a
        pipe whose bytes scroll through this argument, shown by ps (runit's
        status "log"). Needs the argument on this process's own command line
        (Node can only rewrite its original argv): run in-process by another
        applet (stage 2), stderr stays where it is.

Signals: TERM stops every service (as 'sv exit' on each, all in parallel;
what is left after RUNSVDIR_STOP_TIMEOUT seconds, default 4, is killed; a
value that is not a number of seconds is warned about and 4 used) and exits
0; HUP does the same and exits 111; ALRM forces a scan now and writes its
TAI64N time to dir/.forced-rescan (Debian's runit).
Exit codes: 1 usage, 100 fatal.
`;

/** How long TERM gives the services before KILL when RUNSVDIR_STOP_TIMEOUT is not set. */
export const DEFAULT_STOP_TIMEOUT_SEC = 4;

/**
 * RUNSVDIR_STOP_TIMEOUT in ms: seconds, 0 or more (a fraction is allowed). Unset or empty
 * gives the default; anything else is warned about and the default is used.
 */
export function stopTimeoutMs(value: string | undefined, warn: (m: string) => void): number {
  if (value === undefined || value.trim() === '') return DEFAULT_STOP_TIMEOUT_SEC * 1000;
  if (/^\s*\d+(\.\d*)?\s*$/.test(value)) return Number(value) * 1000;
  warn(`RUNSVDIR_STOP_TIMEOUT must be a number of seconds (0 or more), not '${value}': using ${DEFAULT_STOP_TIMEOUT_SEC}`);
  return DEFAULT_STOP_TIMEOUT_SEC * 1000;
}

/** `more`: options of the supervisor beyond runsvdir's command line (stage 2's) */
export async function main(argv: string[], argv0 = 'runsvdir', more: Pick<RunsvdirOptions, 'serveDelayMs'> = {}): Promise<number> {
  if (argv[0] === '--help' || argv[0] === '-h') {
    process.stdout.write(HELP);
    return 0;
  }
  interpreterOnly();
  // services started before this process's exec, to be adopted (stage 1 took them already)
  takePrestartEnv();
  // RUNIT_TS_RESOURCES=FILE: live timers and handles, on SIGUSR2 after a trim (a debugging aid for leaks)
  watchResources(process.env, trimExecutable);
  const usage = () => runTool(() => diagUsage(argv0, ' [-P] dir', 1));
  let i = 0;
  let setsid = false;
  if (argv[i] === undefined) return usage();
  // runsvdir looks at one option only: -P (or anything starting with -P) and --
  if (argv[i]!.startsWith('-')) {
    const c = argv[i]![1];
    if (c === 'P') setsid = true;
    if (c === 'P' || c === '-') i++;
    if (argv[i] === undefined) return usage();
  }
  const dir = argv[i]!;
  const warn = (m: string) => errLine(`runsvdir ${dir}: warning: ${m}`);
  const stopTimeout = stopTimeoutMs(process.env.RUNSVDIR_STOP_TIMEOUT, warn);
  let psLog: PsLog | undefined;
  const logIndex = i + 1;
  const log = argv[logIndex];
  if (log !== undefined) {
    if (Buffer.byteLength(log) < 7) {
      warn('log must have at least seven characters.');
      warn('log service disabled.');
    } else if (!psLogFits(argv, logIndex)) {
      // run in-process by another applet (stage 2): no room in our argv for ps to show
      // the log, so stderr stays where it is
    } else {
      try {
        psLog = setupPsLog(argv, logIndex, warn);
      } catch (e) {
        warn(e instanceof Error ? e.message : String(e));
        warn('log service disabled.');
      }
    }
  }
  setComm('runsvdir');
  const rd = new Runsvdir(dir, { setsid, ...more });
  rd.start();
  // once started, most of the executable's and libraries' pages are never used again, and
  // malloc keeps the start-up peak: let them go
  scheduleTrims();
  process.on('SIGALRM', () => rd.forceRescan());
  return new Promise<number>((res) => {
    let stopping = false;
    const stop = (code: number) => () => {
      if (stopping) return;
      stopping = true;
      void rd.stopAll(stopTimeout).then(() => {
        psLog?.close();
        res(code);
      });
    };
    process.on('SIGTERM', stop(0));
    process.on('SIGHUP', stop(111));
  });
}
