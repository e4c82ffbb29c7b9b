// runsv dir: supervise one service directory (and its log service).
import { runToolAsync, usage } from '../lib/diag.ts';
import { Runsv } from './service.ts';

export const HELP = `usage: runsv dir

Starts and supervises dir/run (and dir/log/run with a pipe between them),
keeping runit's control and status files in dir/supervise/. Control it with sv.
TERM acts as 'sv exit'. Exit codes: 1 usage, 111 fatal, 0 after 'exit'.
`;

export async function main(argv: string[], argv0 = 'runsv'): Promise<number> {
  if (argv[0] === '--help' || argv[0] === '-h') {
    process.stdout.write(HELP);
    return 0;
  }
  return runToolAsync(async () => {
    // runsv: exactly one argument (an empty one is taken, and fails at chdir)
    if (argv.length !== 1) usage(argv0, ' dir', 1);
    const runsv = new Runsv(argv[0]!);
    process.on('SIGTERM', () => runsv.terminate());
    await runsv.open(); // a fatal error throws Exit(111) with runsv's line
    await runsv.done;
    return 0;
  });
}
