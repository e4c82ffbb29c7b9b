// bench/node-start.ts: what a Node start costs in the guest once it runs, and which V8
// flags change that. One boot of out/ARCH/initramfs.img with the plain pinned Node and the
// bundle added under /opt; from the guest's shell, after the boot has settled, each
// subject runs `--runs` times, interleaved, under busybox `time -v`: wall and CPU time,
// minor page faults, peak RSS (median, min-max). Subjects: our executable's `sv status`,
// then the plain Node running the bundle's `sv status` with no flag and with each of
// `--flags` (';'-separated sets). Also prints when the kernel's CRNG became ready: a Node
// start before that waits for it in getrandom() (docs/performance.md).
//   node bench/node-start.ts [--arch x86_64|aarch64] [--runs N] [--cpu MODEL] [--flags 'A;B C;...']
import { appendFileSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { execa } from 'execa';
import { bootFiles } from '../image/packers/initramfs.ts';
import { cpioBuffer } from '../src/lib/cpio.ts';
import { nodeBinary, repoRoot } from '../image/inputs.ts';
import { parseArch, requireHostArch, TRIPLET } from '../src/lib/platform.ts';
import { boot } from '../src/harness/index.ts';
import { fmt, runsOption, summary } from './stats.ts';

const DEFAULT_FLAGS = '--jitless;--no-opt --no-maglev --no-sparkplug;--max-lazy;--single-threaded;--regexp-interpret-all;--v8-pool-size=0';
const { values } = parseArgs({ options: { arch: { type: 'string' }, runs: { type: 'string' }, cpu: { type: 'string' }, flags: { type: 'string', default: DEFAULT_FLAGS }, help: { type: 'boolean', short: 'h' } } });
if (values.help) {
  process.stdout.write(`usage: node bench/node-start.ts [--arch x86_64|aarch64] [--runs N (5)] [--cpu MODEL] [--flags 'SET;SET...' (${DEFAULT_FLAGS})]\n`);
  process.exit(0);
}
const arch = values.arch ? parseArch(values.arch) : requireHostArch();
const runs = runsOption(values.runs);
const out = join(repoRoot, 'out', arch);
const bundle = join(repoRoot, 'out', 'bundle', 'runit-ts.cjs');
for (const f of [join(out, 'initramfs.img'), bundle]) {
  if (!existsSync(f)) {
    process.stderr.write(`missing ${f}: run make image ARCH=${arch}\n`);
    process.exit(1);
  }
}
const dir = mkdtempSync(join(tmpdir(), 'runit-ts-node-start-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
// the plain Node, stripped as the executable's base is
const node = join(dir, 'node');
copyFileSync(nodeBinary(arch), node);
await execa(`${TRIPLET[arch]}-strip`, ['--strip-all', node]);
const files = bootFiles(out, arch);
const initrd = join(dir, 'initramfs.img');
copyFileSync(files.initrd, initrd);
appendFileSync(
  initrd,
  cpioBuffer([
    { path: 'opt', type: 'dir', mode: 0o755 },
    { path: 'opt/node', type: 'file', mode: 0o755, data: () => readFileSync(node) },
    { path: 'opt/runit-ts.cjs', type: 'file', mode: 0o644, data: () => readFileSync(bundle) },
  ]),
);
rmSync(node);
const SV = 'sv status /etc/service/shell';
const subjects: Array<[string, string]> = [
  ['our executable', `/usr/bin/${SV}`],
  ['Node + bundle, no flag', `/opt/node /opt/runit-ts.cjs ${SV}`],
  ...values.flags.split(';').filter(Boolean).map((f): [string, string] => [`Node + bundle ${f}`, `/opt/node ${f} /opt/runit-ts.cjs ${SV}`]),
];
mkdirSync(join(repoRoot, 'out', 'test-logs'), { recursive: true });
const m = await boot({ arch, kernel: files.kernel, initrd, append: `${files.append} printk.time=1`, memory: 1024, ...(values.cpu ? { cpu: values.cpu } : {}), consoleLog: join(repoRoot, 'out', 'test-logs', `bench-node-start-${arch}.log`) });
const res = subjects.map(() => ({ wall: [] as number[], cpu: [] as number[], minflt: [] as number[], rss: [] as number[] }));
let crng = '';
try {
  await m.waitFor(/# /, { timeout: 180_000 });
  await new Promise((r) => setTimeout(r, 8000)); // let the services settle
  crng = (await m.run("dmesg | grep 'crng init done' | tr -d '[]'", { timeout: 60_000 })).output.trim();
  for (const [, cmd] of subjects) await m.run(`${cmd} >/dev/null 2>&1`, { timeout: 120_000 }); // into the page cache
  for (let r = 0; r < runs; r++) {
    process.stderr.write(`[bench] ${arch} run ${r + 1}/${runs}\n`);
    for (const [i, [name, cmd]] of subjects.entries()) {
      const o = (await m.run(`time -v ${cmd} 2>&1 >/dev/null`, { timeout: 120_000 })).output;
      const num = (re: RegExp) => Number(re.exec(o)?.[1] ?? NaN);
      if (!/Exit status: 0/.test(o) || /Warning|rror/.test(o)) throw new Error(`${name}: failed in the guest:\n${o}`);
      const wall = /Elapsed.*: (\d+)m ([\d.]+)s/.exec(o);
      res[i]!.wall.push(Number(wall?.[1]) * 60 + Number(wall?.[2]));
      res[i]!.cpu.push(num(/User time.*: ([\d.]+)/) + num(/System time.*: ([\d.]+)/));
      res[i]!.minflt.push(num(/Minor.*: (\d+)/));
      res[i]!.rss.push(num(/Maximum resident.*: (\d+)/) / 1024);
    }
  }
} finally {
  await m.dispose();
}
console.log(`Node start in the guest, ${arch}${values.cpu ? ` (-cpu ${values.cpu})` : ''}: \`${SV}\`, warm, median of ${runs} (min-max)`);
console.log(`kernel CRNG ready at: ${crng.split(/\s+/)[0] || 'not in the kernel log'} s`);
console.log(`${''.padEnd(58)} ${'wall s'.padStart(17)} ${'CPU s'.padStart(17)} ${'minor faults'.padStart(12)} ${'peak RSS MiB'.padStart(13)}`);
subjects.forEach(([name], i) => {
  const x = res[i]!;
  console.log(`${name.padEnd(58)} ${fmt(summary(x.wall)).padStart(17)} ${fmt(summary(x.cpu)).padStart(17)} ${summary(x.minflt).median.toFixed(0).padStart(12)} ${summary(x.rss).median.toFixed(0).padStart(13)}`);
});
