// bench/run.ts: every benchmark, each against its reference measured in the same run
// (what `make bench` runs). Each prints its own table: medians of N runs, their spread
// (min-max) and the ratios, with the machine line (its name, load and the host's Node
// start, bench/hello.ts); the boot benchmark for each arch. At the end, every line that
// carries a target, under its benchmark's title, with the time the run ended.
//   node bench/run.ts [--runs N]   (default 5; --runs 1 for a quick look)
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { execa } from 'execa';
import { repoRoot } from '../image/inputs.ts';
import { ARCHES } from '../src/lib/platform.ts';
import { runsOption } from './stats.ts';
import { machineLine } from './hello.ts';

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
/** the column headers of the benchmarks' tables with targets: boot (ours/ref), supervisor (ours/debian), scale */
const HEADER = /\/ref\s*$|^\s+median of runs|^services\s+ours/;
let failed = 0;
const targets: string[] = [];
process.stdout.write(`make bench, ${runs} runs, started ${new Date().toISOString()}\n${await machineLine()}\n`);
for (const [title, args] of benches) {
  process.stdout.write(`\n== ${title}\n`);
  const child = execa(process.execPath, [join(repoRoot, args[0]!), ...args.slice(1)], { cwd: repoRoot, stdin: 'ignore', stdout: 'pipe', stderr: 'inherit', reject: false });
  child.stdout?.pipe(process.stdout, { end: false });
  const r = await child;
  if (r.exitCode !== 0) failed++;
  const lines = String(r.stdout).split('\n');
  const machine = lines.find((l) => l.startsWith('machine '));
  // the lines with a target, and the column headers above them (which side each column is)
  const hits = lines.filter((l) => l.includes('target:') || HEADER.test(l));
  targets.push(`${title}${r.exitCode !== 0 ? ` (failed: exit ${r.exitCode})` : ''}${machine ? `; ${machine}` : ''}`, ...hits.map((l) => `  ${l.trim()}`));
}
process.stdout.write(`\n== every target with its ratio (ended ${new Date().toISOString()})\n${targets.join('\n')}\n`);
process.exit(failed ? 1 : 0);
