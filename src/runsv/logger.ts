// Beyond runit: a log service whose log/run is exactly `exec svlogd ...` and whose svlogd
// is this executable (src/svlogd/logrun.ts decides) runs as an Svlogd in the supervisor's
// process instead of a Node process of its own. To runsv's state machine it is a started
// child: it has the supervisor's pid (in log/supervise/), takes the same signals through
// kill(), reads the log pipe and ends as a process would, told as a reaped child is.
import { inDir } from '../lib/files.ts';
import { signalNumber, writeQuiet } from '../lib/sys.ts';
import { recogniseLogRun } from '../svlogd/logrun.ts';
import { Svlogd } from '../svlogd/svlogd.ts';

/** How a logger ended, as a reaped child's (children.ts ChildEnd): exit code or -1, signal, wait status's low byte. */
export type LoggerEnd = (code: number, sig: number, low: number) => void;

/** The in-process logger for the log service in logDir, or undefined: its ./run runs as a process. */
export function inProcessLogger(logDir: string): Svlogd | undefined {
  const run = recogniseLogRun(inDir(logDir, 'run'));
  if (!run) return undefined;
  const out = run.stderrToStdout ? 1 : 2;
  return new Svlogd({
    ...run.settings,
    cwd: logDir,
    stderrFd: out,
    stderr: out === 1 ? (b) => writeQuiet(1, b) : undefined,
  });
}

/** Start the logger on the log pipe's read end (duplicated: runsv keeps its own); onEnd is told once it is gone. */
export function runLogger(lg: Svlogd, input: number, onEnd: LoggerEnd): void {
  lg.once('exit', (status: number | null, signal: NodeJS.Signals | null) => {
    const sig = signal ? signalNumber(signal) : 0;
    onEnd(sig ? -1 : (status ?? 0), sig, sig);
  });
  lg.start(input);
}
