// bench/run.ts: every benchmark, each against its reference measured in the same run
// (what `make bench` runs). Each prints its own table: medians of N runs, their spread
// (min-max) and the ratios; the boot benchmark for each arch.
//   node bench/run.ts [--runs N]   (default 5; --runs 1 for a quick look)
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { execa } from 'execa';
import { repoRoot } from '../image/inputs.ts';
import { ARCHES } from '../src/lib/platform.ts';
import { runsOption } from './stats.ts';

const { values } = parseArgs({ options: { runs: { type: 'string' }, help: { type: 'boolean', short: 'h' } } });
if (values.help) {
  process.stdout.write('usage: node bench/run.ts [--runs N]   every benchmark, median of N runs (default 5)\n');
  process.exit(0);
}
const runs = String(runsOption(values.runs));
const benches: Array<[string, string[]]> = [
  ['sv: a short-lived applet', ['bench/sv.ts', '--runs', runs]],
  ['supervisor memory and restart latency', ['bench/supervisor.ts', '--runs', runs]],
  ['svlogd throughput', ['bench/svlogd.ts']],
  ['container start and stop under podman', ['bench/container.ts', '--runs', runs]],
  // both arches, each under emulation (TCG) unless the host has KVM for its own
  ...ARCHES.map((a): [string, string[]] => [`boot, halt and stack memory (${a})`, ['bench/boot.ts', '--arch', a, '--runs', runs]]),
];
let failed = 0;
for (const [title, args] of benches) {
  process.stdout.write(`\n== ${title}\n`);
  const r = await execa(process.execPath, [join(repoRoot, args[0]!), ...args.slice(1)], { cwd: repoRoot, stdio: 'inherit', reject: false });
  if (r.exitCode !== 0) failed++;
}
process.exit(failed ? 1 : 0);
