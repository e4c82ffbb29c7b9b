// runit-ts analyze: what the boot spent its time on, from stage 1's marks and the
// supervisor's timeline (src/analyze/timeline.ts).
import { writeFileSync } from 'node:fs';
import { badUsage, die, runTool } from '../lib/diag.ts';
import { analyse, BOOT_MARKS_FILE, criticalChain, formatBlame, formatChain, formatTime, plotSvg, readBootMarks, readTimeline } from './timeline.ts';

export const HELP = `usage: runit-ts analyze [time|blame|critical-chain [SERVICE]|plot] [--json] [-d scandir] [--boot FILE] [-o FILE]

What the boot spent its time on, from the marks stage 1 writes (${BOOT_MARKS_FILE})
and the ones the supervisor keeps per service (SCANDIR/.timeline.json): wanted,
dependencies met, spawned, ready, stop asked, exited; seconds since boot.
  time            kernel + stage 1 + services = until all are up (the default)
  blame           services by time from spawn to ready, longest first
  critical-chain  the dependencies that made SERVICE (default: the last one up) late
  plot            an SVG, one row per service (waiting, starting, running; ready marked)
  --json          the same as JSON (plot: the whole analysis)
  -d scandir      the supervised directory (default $SVDIR, else /etc/service)
  --boot FILE     stage 1's marks (default ${BOOT_MARKS_FILE}); without them times
                  count from the supervisor's start
  -o FILE         plot: write the SVG to FILE instead of stdout
Exit codes: 0 done, 1 no timeline there, 100 usage.
`;

const COMMANDS = ['time', 'blame', 'critical-chain', 'plot'] as const;
/** How this tool names itself in its lines (src/lib/diag.ts). */
const PROG = 'runit-ts analyze';

/** The applet: its lines and exit code through src/lib/diag.ts. */
export function main(argv: string[]): number {
  return runTool(() => analyze(argv));
}

/** The command line run; bad usage and failures end it through src/lib/diag.ts. */
function analyze(argv: string[]): number {
  let json = false;
  let scandir = process.env.SVDIR ?? '/etc/service';
  let bootFile = BOOT_MARKS_FILE;
  let out: string | undefined;
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const value = () => {
      const v = argv[++i];
      if (v === undefined) badUsage(HELP, { prog: PROG, message: `${a} needs a value` });
      return v;
    };
    if (a === '--help' || a === '-h') {
      process.stdout.write(HELP);
      return 0;
    } else if (a === '--json') json = true;
    else if (a === '-d') scandir = value();
    else if (a === '--boot') bootFile = value();
    else if (a === '-o') out = value();
    else if (a.startsWith('-')) badUsage(HELP, { prog: PROG, message: `unknown option ${a}` });
    else rest.push(a);
  }
  const cmd = (rest[0] ?? 'time') as (typeof COMMANDS)[number];
  if (!COMMANDS.includes(cmd) || (cmd !== 'critical-chain' && rest.length > 1) || rest.length > 2) {
    badUsage(HELP, { prog: PROG, message: `unknown command ${rest.join(' ')}` });
  }
  let a;
  try {
    a = analyse(readTimeline(scandir), readBootMarks(bootFile));
  } catch (e) {
    die(PROG, (e as Error).message, 1);
  }
  let text: string;
  switch (cmd) {
    case 'time':
      text = json
        ? JSON.stringify({ origin: a.origin, kernel: a.kernel ?? null, stage1: a.stage1 ? a.stage1.end - a.stage1.start : null, allUp: a.allUp ?? null, last: a.last ?? null, notReady: a.notReady })
        : formatTime(a);
      break;
    case 'blame':
      text = json ? JSON.stringify(a.services.filter((s) => s.activation !== undefined).sort((x, y) => y.activation! - x.activation!)) : formatBlame(a);
      break;
    case 'critical-chain': {
      const c = criticalChain(a, rest[1] ?? a.last);
      if (rest[1] && !a.services.some((s) => s.name === rest[1])) die(PROG, `${rest[1]}: no such service in the timeline`, 1);
      text = json ? JSON.stringify(c ?? null) : formatChain(c);
      break;
    }
    case 'plot':
      text = json ? JSON.stringify(a) : plotSvg(a);
      break;
  }
  if (json) text += '\n';
  if (out) writeFileSync(out, text);
  else process.stdout.write(text);
  return 0;
}
