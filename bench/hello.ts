// bench/hello.ts: what every benchmark's ratios are read against besides its reference:
//  - the minimal single executable of an arch (out/bench/ARCH/hello): the pinned Node of
//    that arch with a blob that only prints a line, made the way scripts/build.ts makes
//    ours (the blob from the pinned Node, postjected into a stripped copy of the Node
//    binary, the same execArgv): the floor any Node applet starts from, on the host
//    (bench/sv.ts) and in the guest (bench/boot.ts);
//  - the machine line printed with every table of ratios: the machine's name, its CPU
//    and load, and how long the host's minimal single executable takes to start right
//    now (the machine is shared: the absolute figures move with the load, the ratios less).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, hostname, loadavg } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { nodeBinary, repoRoot as repo } from '../image/inputs.ts';
import { requireHostArch, type Arch } from '../src/lib/platform.ts';
import { seaExecutable } from '../scripts/sea.ts';
import { summary } from './stats.ts';

/** calls of the host's minimal single executable timed for the machine line */
const START_CALLS = 10;

/** out/bench/ARCH/hello: the minimal single executable of `arch`; rebuilt when its Node changes */
export async function helloExecutable(arch: Arch): Promise<string> {
  // each checked to be in the cache, with the command that puts it there
  const node = nodeBinary(arch);
  const host = nodeBinary(requireHostArch());
  const dir = join(repo, 'out', 'bench', arch);
  const target = join(dir, 'hello');
  const stamp = join(dir, 'hello.node');
  if (existsSync(target) && existsSync(stamp) && readFileSync(stamp, 'utf8') === node) return target;
  mkdirSync(dir, { recursive: true });
  process.stderr.write(`[bench] building the minimal single executable ${target}\n`);
  writeFileSync(join(dir, 'hello.cjs'), "process.stdout.write('hello\\n');\n");
  // no snapshot and no code cache: the blob holds only the script, the same for any arch
  // of the same Node version, so the host's Node makes it
  const config = {
    main: join(dir, 'hello.cjs'),
    output: join(dir, 'hello.blob'),
    disableExperimentalSEAWarning: true,
    useSnapshot: false,
    useCodeCache: false,
    execArgv: ['--disable-sigusr1', '--v8-pool-size=1'],
    execArgvExtension: 'none',
  };
  writeFileSync(join(dir, 'hello-sea.json'), JSON.stringify(config));
  await execa(host, ['--experimental-sea-config', join(dir, 'hello-sea.json')], { cwd: dir });
  await seaExecutable(arch, join(dir, 'hello.blob'), target);
  writeFileSync(stamp, node);
  return target;
}

/** "machine NAME (CPU, N cores, load L), Node start M ms": measured now, printed with every ratio */
export async function machineLine(): Promise<string> {
  const hello = await helloExecutable(requireHostArch());
  const ms: number[] = [];
  for (let i = 0; i < START_CALLS; i++) {
    const t0 = performance.now();
    spawnSync(hello, [], { stdio: 'ignore' });
    ms.push(performance.now() - t0);
  }
  const s = summary(ms);
  const cpu = cpus();
  return `machine ${hostname()} (${cpu[0]?.model.trim() ?? 'unknown CPU'}, ${cpu.length} cores, load ${loadavg()[0]!.toFixed(2)}), ` +
    `Node start ${s.median.toFixed(1)} ms (${s.min.toFixed(1)}-${s.max.toFixed(1)}; the minimal single executable on the host, median of ${START_CALLS}), ` +
    `fresh memory ${freshPageMicros().toFixed(2)} µs a page (the first touch of ${FRESH_MIB} MiB, over the second)`;
}

const FRESH_MIB = 256;
/**
 * What memory the host has not handed out yet costs on first touch, in µs per 4 KiB page:
 * the time to touch every page of a fresh FRESH_MIB MiB buffer once, less the time to touch
 * it again. A machine that is itself a VM backing its memory lazily (and taking freed memory
 * back) makes this dear (1.5-1.9 µs a page on the one of docs/performance.md's runs of
 * 2026-12-07), and QEMU pays it for every page of guest RAM, translated code and heap it
 * touches: there a guest that touches more memory boots slower than its CPU time alone says.
 */
function freshPageMicros(): number {
  const page = 4096;
  const b = Buffer.allocUnsafeSlow(FRESH_MIB << 20);
  const touch = (): number => {
    const t0 = performance.now();
    for (let i = 0; i < b.length; i += page) b[i] = 1;
    return performance.now() - t0;
  };
  const first = touch();
  const again = touch();
  return ((first - again) * 1000) / (b.length / page);
}
