// svlogd's command line, parsed as runit's svlogd parses it.
import { errWrite } from '../lib/diag.ts';
import { Getopt, scanUlong } from '../lib/getopt.ts';

export const USAGE = ' [-ttv] [-r c] [-R abc] [-l len] [-b buflen] dir ...';
export const VERSION = '$Id: runit-ts svlogd $';

export const HELP = `usage: svlogd [-ttvT] [-r c] [-R abc] [-l len] [-b buflen] dir ...

Reads log lines from standard input and writes them to the log directories, rotating
them by size (config: s), age (t), on SIGALRM, and keeping n old files (runit's svlogd).
  -t      prefix each line with a TAI64N timestamp (@4000...)
  -tt     prefix with a UTC timestamp YYYY-MM-DD_HH:MM:SS.xxxxx
  -ttt    prefix with an ISO 8601 UTC timestamp YYYY-MM-DDTHH:MM:SS.xxxxx
  -T      with -tt/-ttt: local time instead of UTC (runit-ts extension)
  -r c    replace non-printable characters with c
  -R abc  also replace the characters a, b, c (with c from -r, default _)
  -l len  lines longer than len (default 1000) are cut for patterns, stderr and UDP
  -b n    read buffer size (runit's; must be larger than -l; default 1024)
  -v      verbose: report opens, rotations, processors and signals on stderr
Config lines (DIR/config): s<size>[k|m] n<num> N<num> t<secs>[m|h] !<processor>
  u<a.b.c.d[:port]> U<a.b.c.d[:port]> p<prefix> +<pattern> -<pattern> e<pattern> E<pattern>
Signals: HUP reopens the directories and rereads config, ALRM rotates, TERM ends after
the current line. Exit codes: 0 at the end of input or on TERM, 111 on errors.
`;

export interface SvlogdSettings {
  dirs: string[];
  /** 0 none, 1 TAI64N (-t), 2 -tt, 3 -ttt */
  timestamp: 0 | 1 | 2 | 3;
  /** -T: -tt/-ttt in local time */
  localTime: boolean;
  /** -r: the replacement byte, -1 for none */
  repl: number;
  /** -R: further bytes to replace */
  replace: Buffer;
  /** -l */
  linemax: number;
  /** -b (checked only: our reads and writes are sized by us) */
  buflen: number;
  /** -v, counted */
  verbose: number;
}

export function defaultSettings(dirs: string[] = []): SvlogdSettings {
  return { dirs, timestamp: 0, localTime: false, repl: -1, replace: Buffer.alloc(0), linemax: 1000, buflen: 1024, verbose: 0 };
}

/** Parse svlogd's arguments; on a usage error report it and return the exit code (111). */
export function parseArgs(
  argv: readonly string[],
  argv0: string,
  report: (s: string) => void = errWrite,
): SvlogdSettings | { code: number } {
  const s = defaultSettings();
  const usage = () => {
    report(`usage: ${argv0}${USAGE}\n\n`);
    return { code: 111 };
  };
  const g = new Getopt(argv, 'R:r:l:b:tvVT', argv0, report);
  for (let o = g.next(); o; o = g.next()) {
    switch (o.c) {
      case 'R':
        s.replace = Buffer.from(o.arg!);
        if (s.repl < 0) s.repl = 0x5f; // '_'
        break;
      case 'r': {
        const b = Buffer.from(o.arg!);
        if (b.length !== 1 || b[0] === 0) return usage();
        s.repl = b[0]!;
        break;
      }
      case 'l':
        s.linemax = scanUlong(o.arg!)[0] || 1000;
        break;
      case 'b':
        s.buflen = scanUlong(o.arg!)[0] || 1024;
        break;
      case 't':
        if (s.timestamp < 3) s.timestamp = (s.timestamp + 1) as 1 | 2 | 3;
        break;
      case 'T':
        s.localTime = true;
        break;
      case 'v':
        s.verbose++;
        break;
      case 'V':
        report(`${VERSION}\n`);
        return usage();
      default:
        return usage();
    }
  }
  s.dirs = g.rest();
  if (s.dirs.length === 0) return usage();
  if (s.buflen <= s.linemax) return usage();
  return s;
}
