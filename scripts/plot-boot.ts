// scripts/plot-boot.ts: boot the built default image (out/ARCH) under QEMU, wait until
// every service is up, and write what `runit-ts analyze plot` draws of that boot to
// docs/boot-ARCH.svg; prints `analyze time` and `analyze blame`.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { bootFiles } from '../image/packers/initramfs.ts';
import { repoRoot } from '../image/inputs.ts';
import { parseArch, requireHostArch } from '../src/lib/platform.ts';
import { boot } from '../src/harness/index.ts';

const HELP = `usage: node scripts/plot-boot.ts [--arch x86_64|aarch64] [--out FILE]

Boots out/ARCH (make image ARCH=...) in QEMU, waits for every service to be up,
prints runit-ts analyze time and blame from the guest, and writes the plot of
that boot (runit-ts analyze plot) to FILE (default docs/boot-ARCH.svg).
`;

const { values } = parseArgs({ options: { arch: { type: 'string' }, out: { type: 'string' }, help: { type: 'boolean', short: 'h' } } });
if (values.help) {
  process.stdout.write(HELP);
  process.exit(0);
}
const arch = values.arch ? parseArch(values.arch) : requireHostArch();
const out = values.out ?? join(repoRoot, 'docs', `boot-${arch}.svg`);
const dir = join(repoRoot, 'out', arch);
process.stderr.write(`[plot-boot] booting ${dir} (${arch})\n`);
// the default image's network service gets its lease from QEMU (restrict=on: nothing leaves QEMU)
await using m = await boot({ arch, ...bootFiles(dir, arch), memory: 1024, network: true, consoleLog: join(repoRoot, 'out', `plot-boot-${arch}.log`) });
await m.waitFor(/runit-ts:[^\n]*# /, { timeout: 120_000 });
await m.run('sv -w 60 check /etc/service/*', { timeout: 90_000 });
for (const c of ['time', 'blame']) {
  const r = await m.run(`runit-ts analyze ${c}`, { timeout: 60_000 });
  process.stdout.write(`# runit-ts analyze ${c} (${arch})\n${r.output.trim()}\n`);
}
const r = await m.run('runit-ts analyze plot', { timeout: 60_000 });
const svg = r.output.slice(r.output.indexOf('<?xml'));
if (!svg.trimEnd().endsWith('</svg>')) throw new Error('the guest did not print a whole SVG');
writeFileSync(out, svg.trimEnd() + '\n');
process.stderr.write(`[plot-boot] wrote ${out}\n`);
await m.sendLine('init 0');
await m.waitForExit({ timeout: 60_000 });
