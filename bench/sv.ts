// bench/sv.ts: how long a short-lived applet takes to answer. `sv status` of one running
// service, on the host, against
//  - a minimal single executable made from the same pinned Node that only prints a line
//    (out/bench/ARCH/hello, bench/hello.ts): the floor any Node applet starts from;
//  - Debian's C sv, as context.
// Each run times every subject `--calls` times, interleaved; a run's figure is the mean of
// its calls. Printed: median of the runs, spread (min-max), ratios of the medians.
//
//   ~/.cache/runit-ts/node-x86_64/package/bin/node bench/sv.ts [--runs 5] [--calls 20]
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { nodeBinary, repoRoot as repo } from '../image/inputs.ts';
import { cacheDir, requireHostArch } from '../src/lib/platform.ts';
import { helloExecutable, machineLine } from './hello.ts';
import { fmt, ratio, runsOption, summary } from './stats.ts';

const arch = requireHostArch();
const cache = cacheDir();
const { values } = parseArgs({ options: { runs: { type: 'string' }, calls: { type: 'string', default: '20' }, help: { type: 'boolean', short: 'h' } } });
if (values.help) {
  process.stdout.write('usage: node bench/sv.ts [--runs N (5)] [--calls N (20)]\n');
  process.exit(0);
}
const RUNS = runsOption(values.runs);
const CALLS = runsOption(values.calls, 20);
const OURS = process.env.RUNIT_TS_BIN ?? join(repo, 'out', arch, 'runit-ts');
const DEBIAN = join(cache, `runit-${arch}`, 'usr', 'bin');
const NODE = nodeBinary(arch);
for (const [what, p] of [['our executable (make build)', OURS], ["Debian's runit (make setup)", join(DEBIAN, 'sv')], ['the pinned Node (make setup)', NODE]] as const) {
  if (!existsSync(p)) {
    process.stderr.write(`missing ${what}: ${p}\n`);
    process.exit(1);
  }
}
const root = mkdtempSync(join(tmpdir(), 'bench-sv-'));
const procs: ChildProcess[] = [];
const services: string[] = [];
process.on('exit', () => {
  // runsv stays on HUP and TERM leaves the service running: stop it, then make runsv exit
  for (const svc of services) {
    spawnSync(join(DEBIAN, 'sv'), ['-w5', 'force-stop', svc], { stdio: 'ignore' });
    spawnSync(join(DEBIAN, 'sv'), ['exit', svc], { stdio: 'ignore' });
  }
  for (const p of procs) if (p.exitCode === null) p.kill('SIGKILL');
  rmSync(root, { recursive: true, force: true });
});
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** one service supervised by `kind`'s runsv; returns its directory once it runs */
async function service(kind: 'ours' | 'debian'): Promise<string> {
  const base = join(root, kind);
  const svc = join(base, 'svc');
  mkdirSync(svc, { recursive: true });
  writeFileSync(join(svc, 'run'), '#!/bin/sh\nexec sleep 100000\n', { mode: 0o755 });
  let cmd = join(DEBIAN, 'runsv');
  if (kind === 'ours') symlinkSync(OURS, (cmd = join(base, 'runsv')));
  const p = spawn(cmd, [svc], { stdio: ['ignore', 'ignore', 'inherit'], detached: false });
  procs.push(p);
  services.push(svc);
  for (let i = 0; i < 200; i++) {
    if (spawnSync(join(DEBIAN, 'sv'), ['status', svc]).stdout?.toString().startsWith('run:')) return svc;
    await sleep(50);
  }
  throw new Error(`${kind}: the service did not come up`);
}

const hello = await helloExecutable(arch);
const ourSv = join(root, 'sv');
symlinkSync(OURS, ourSv);
const subjects: Array<{ name: string; cmd: string; args: string[] }> = [
  { name: 'runit-ts sv status', cmd: ourSv, args: ['status', await service('ours')] },
  { name: 'reference SEA (prints a line)', cmd: hello, args: [] },
  { name: 'Debian C sv status', cmd: join(DEBIAN, 'sv'), args: ['status', await service('debian')] },
];
// each must answer as expected before it is timed
for (const s of subjects) {
  const r = spawnSync(s.cmd, s.args);
  const out = r.stdout.toString();
  if (r.status !== 0 || !(s.cmd === hello ? out === 'hello\n' : out.startsWith('run:'))) throw new Error(`${s.name}: unexpected answer (exit ${r.status}): ${out}${r.stderr}`);
}
const ms: number[][] = subjects.map(() => []);
for (let r = 0; r < RUNS; r++) {
  const sum = subjects.map(() => 0);
  for (let c = 0; c < CALLS; c++) {
    subjects.forEach((s, i) => {
      const t0 = performance.now();
      spawnSync(s.cmd, s.args, { stdio: 'ignore' });
      sum[i]! += performance.now() - t0;
    });
  }
  subjects.forEach((_, i) => ms[i]!.push(sum[i]! / CALLS));
}
const st = ms.map(summary);
const out = (s = '') => process.stdout.write(s + '\n');
out(await machineLine());
out(`sv benchmark, ${arch}: wall time of one call (ms), mean of ${CALLS} calls per run, median of ${RUNS} runs (min-max)`);
subjects.forEach((s, i) => out(`${s.name.padEnd(31)} ${fmt(st[i]!).padStart(22)}`));
out(`runit-ts sv / reference SEA     ${ratio(st[0]!.median, st[1]!.median).padStart(22)}   target: <= 1.0x`);
out(`runit-ts sv / Debian C sv       ${ratio(st[0]!.median, st[2]!.median).padStart(22)}   (context)`);
process.exit(0); // the supervisors' handles keep the loop alive: the exit handler stops them
