// The svlogd applet: runit's svlogd on standard input. Its fatal lines go through
// src/lib/diag.ts (options.ts prints the usage line itself, as runit's svlogd does).
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
    logger.start(process.stdin);
    const { code, signal } = await logger.done;
    if (signal) process.kill(process.pid, signal);
    return code ?? 111;
  });
}
