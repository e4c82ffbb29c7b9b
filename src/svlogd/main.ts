// The svlogd applet: runit's svlogd on standard input.
import { errLine, fatalLine } from '../lib/diag.ts';
import { HELP, parseArgs } from './options.ts';
import { Svlogd } from './svlogd.ts';

export async function main(argv: string[], argv0: string): Promise<number> {
  if (argv[0] === '--help') {
    process.stdout.write(HELP);
    return 0;
  }
  const settings = parseArgs(argv, argv0);
  if ('code' in settings) return settings.code;
  let logger: Svlogd;
  try {
    logger = new Svlogd(settings);
  } catch {
    errLine(fatalLine('svlogd', 'out of memory.')); // e.g. -l too big to allocate
    return 111;
  }
  for (const sig of ['SIGTERM', 'SIGHUP', 'SIGALRM'] as const) process.on(sig, () => logger.kill(sig));
  logger.start(process.stdin);
  const { code, signal } = await logger.done;
  if (signal) process.kill(process.pid, signal);
  return code ?? 111;
}
