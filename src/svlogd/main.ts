// The svlogd applet: runit's svlogd on standard input. Its fatal lines go through
// src/lib/diag.ts (options.ts prints the usage line itself, as runit's svlogd does).
import { fstatSync } from 'node:fs';
import { fatal, runToolAsync } from '../lib/diag.ts';
import { HELP, parseArgs } from './options.ts';
import { Svlogd } from './svlogd.ts';

/** The applet: options (options.ts), then the logger until the end of its input. */
export async function main(argv: string[], argv0: string): Promise<number> {
  if (argv[0] === '--help') {
    process.stdout.write(HELP);
    return 0;
  }
  const settings = parseArgs(argv, argv0);
  if ('code' in settings) return settings.code;
  return runToolAsync(async () => {
    let logger: Svlogd;
    try {
      logger = new Svlogd(settings);
    } catch {
      fatal('svlogd', 'out of memory.'); // e.g. -l too big to allocate
    }
    for (const sig of ['SIGTERM', 'SIGHUP', 'SIGALRM'] as const) process.on(sig, () => logger.kill(sig));
    // a pipe (the usual input, from runsv) is read by the addon's poll, which stops
    // reading while the logger pauses (a full disk): process.stdin would read on into
    // its buffer, holding lines in memory that a killed logger loses (runit's svlogd
    // holds one buffer); anything else (a file, a terminal) as a stream
    logger.start(inputIsPipe() ? 0 : process.stdin);
    const { code, signal } = await logger.done;
    if (signal) process.kill(process.pid, signal);
    return code ?? 111;
  });
}

/** Is standard input a pipe, FIFO or socket? */
function inputIsPipe(): boolean {
  try {
    const st = fstatSync(0);
    return st.isFIFO() || st.isSocket();
  } catch {
    return false;
  }
}
