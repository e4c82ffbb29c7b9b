// The sv applet: parses sv's command line into an SvPlan (this file) and runs it
// (sv.ts). Called by another name (e.g. /etc/init.d/NAME), sv acts on service NAME in
// LSB mode. Usage errors exit 100 (LSB mode: 2), as runit's sv.
import { basename } from 'node:path';
import { errWrite, runTool, usage } from '../lib/diag.ts';
import { Getopt, scanUlong } from '../lib/getopt.ts';
import { interpreterOnly } from '../lib/trim.ts';
import { runPlan, type SvPlan } from './sv.ts';

export const VERSION = '$Id: runit-ts sv 0.1 $';

export const HELP = `usage: sv [-v] [-w sec] command service ...

Commands (the first letter is enough where runit accepts it):
  status        print the state of each service (and its log)
  up, down      start; stop and keep down          once    start once, no restart
  pause, cont, hup, alarm, interrupt, quit, 1, 2, term, kill
                send that signal (p c h a i q 1 2 t k)
  exit          stop the service and its runsv
  start, stop, restart, shutdown, reload, try-restart, check
                LSB-like: act, then wait up to -w seconds for the result
  force-stop, force-reload, force-restart, force-shutdown
                as above, and kill the service if it does not stop in time
Options:
  -v            wait for up/down/... to take effect and report ok/timeout
  -w sec        wait at most sec seconds (default $SVWAIT or 7); implies -v
  -V            print the version
Environment: SVDIR (default /etc/service/), SVWAIT.
A service name is taken relative to $SVDIR unless it starts with '/' or '.'
or ends with '/'. Called by another name (e.g. /etc/init.d/NAME), sv acts on
service NAME in LSB mode: 'NAME [-w sec] command'.
Exit code: the number of services that failed (at most 99); 100 usage or fatal
(LSB mode: status gives 0 up, 3 down, 4 unknown; usage 2; fatal 151).
`;

/** What each command does: control bytes to send (or a status/check) and whether to wait, as runit's sv decides it. */
interface Command {
  op: SvPlan['op'];
  acts: string;
  /** wait for the result even without -v */
  wait?: boolean;
  /** force-*: kill what did not stop in time */
  kill?: boolean;
}

/** runit's sv reads the first letter, and the whole word only where letters are shared. */
function command(action: string, lsb: boolean): Command | undefined {
  const ctl = (acts: string, more: Partial<Command> = {}): Command => ({ op: 'control', acts, ...more });
  switch (action[0]) {
    case 'x': case 'e':
      return ctl('x');
    case 'X': case 'E':
      return ctl('x', { wait: true, kill: true });
    case 'D':
      return ctl('d', { wait: true, kill: true });
    case 'T':
      return ctl('tc', { wait: true, kill: true });
    case 't':
      return action === 'try-restart' ? ctl('tc', { wait: true }) : ctl('t');
    case 'c':
      return action === 'check' ? { op: 'check', acts: 'C', wait: true } : ctl('c');
    case 'u': case 'd': case 'o': case 'p': case 'h':
    case 'a': case 'i': case 'k': case 'q': case '1': case '2':
      return ctl(action[0]);
    case 's':
      if (action === 'shutdown') return ctl('x', { wait: true });
      if (action === 'start') return ctl('u', { wait: true });
      if (action === 'stop') return ctl('d', { wait: true });
      if (lsb && action !== 'status') return undefined;
      return { op: 'status', acts: 's' };
    case 'r':
      if (action === 'restart') return ctl('tcu', { wait: true });
      if (action === 'reload') return ctl('h', { wait: true });
      return undefined;
    case 'f':
      if (action === 'force-reload') return ctl('tc', { wait: true, kill: true });
      if (action === 'force-restart') return ctl('tcu', { wait: true, kill: true });
      if (action === 'force-shutdown') return ctl('x', { wait: true, kill: true });
      if (action === 'force-stop') return ctl('d', { wait: true, kill: true });
      return undefined;
    default:
      return undefined;
  }
}

/** sv's command line as a plan; usage errors throw Exit (100, LSB mode 2) with runit's usage line. */
export function parseSv(argv: string[], argv0: string, env: NodeJS.ProcessEnv = process.env): SvPlan {
  const progname = basename(argv0);
  const lsb = progname !== 'sv';
  const die = (): never => (lsb ? usage(progname, ' [-w sec] command', 2) : usage(progname, ' [-v] [-w sec] command service ...'));
  let wait = env.SVWAIT !== undefined ? scanUlong(env.SVWAIT)[0] : 7;
  let verbose = false;
  const g = new Getopt(argv, 'w:vV', progname, errWrite);
  for (let o = g.next(); o; o = g.next()) {
    if (o.c === 'w') {
      wait = scanUlong(o.arg!)[0];
      verbose = true;
    } else if (o.c === 'v') verbose = true;
    else {
      if (o.c === 'V') errWrite(`${VERSION}\n`);
      die();
    }
  }
  const [action, ...rest] = g.rest();
  if (action === undefined) return die();
  const services = lsb ? [progname] : rest;
  if (!services.length || !services[0]) die();
  const cmd = command(action, lsb) ?? die();
  return {
    progname,
    lsb,
    svdir: env.SVDIR ?? '/etc/service/',
    waitSec: wait,
    op: cmd.op,
    acts: cmd.acts,
    wait: cmd.op !== 'status' && (cmd.wait === true || verbose),
    kill: cmd.kill === true,
    services,
  };
}

export function main(argv: string[], argv0: string, env: NodeJS.ProcessEnv = process.env): number {
  if (argv[0] === '--help') {
    process.stdout.write(HELP);
    return 0;
  }
  return runTool(() => runPlan(parseSv(argv, argv0, env)));
}

/**
 * sv as the executable runs it (src/main.ts's table, sv's own bundle src/sv/entry.ts): a
 * short run, in V8's interpreter only, where tiering up (QEMU translating V8's compilers,
 * under emulation) costs more than it saves (src/lib/trim.ts).
 */
export function applet(argv: string[], argv0: string): number {
  interpreterOnly();
  return main(argv, argv0);
}
