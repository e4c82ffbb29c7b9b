// bench/run.ts: every benchmark, each against Debian's runit measured in the same run
// (what `make bench` runs). Each prints its own table with ratios.
import { join } from 'node:path';
import { execa } from 'execa';
import { repoRoot } from '../image/inputs.ts';
import { requireHostArch } from '../src/lib/platform.ts';

const benches: Array<[string, string[]]> = [
  ['supervisor memory and restart latency', ['bench/supervisor.ts']],
  ['svlogd throughput', ['bench/svlogd.ts']],
  [`boot and halt (${requireHostArch()})`, ['bench/boot.ts', '--arch', requireHostArch()]],
];
let failed = 0;
for (const [title, args] of benches) {
  process.stdout.write(`\n== ${title}\n`);
  const r = await execa(process.execPath, [join(repoRoot, args[0]!), ...args.slice(1)], { cwd: repoRoot, stdio: 'inherit', reject: false });
  if (r.exitCode !== 0) failed++;
}
process.exit(failed ? 1 : 0);
