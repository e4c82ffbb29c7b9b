// scripts/boot.ts: boot out/ARCH in QEMU with the serial console on this terminal
// (what `make boot` runs). Ctrl-a x quits; Ctrl-a c toggles the QEMU monitor.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { execa } from 'execa';
import { bootFiles } from '../image/build.ts';
import { repoRoot } from '../image/inputs.ts';
import { requireHostArch, type Arch } from '../src/lib/platform.ts';
import { qemuCommand, resolveAccel } from '../src/harness/index.ts';

const HELP = `usage: node scripts/boot.ts [--arch x86_64|aarch64] [--dir DIR] [--memory MiB] [--accel auto|kvm|tcg]

Boots DIR (default out/ARCH: vmlinuz or, on x86_64, the faster vmlinux,
initramfs.img and cmdline) with the console on this terminal. A root shell
comes up on the console. Ctrl-a x quits QEMU; 'poweroff' or 'init 0' in the
guest powers it off, 'reboot' or 'init 6' ends QEMU too (-no-reboot).
`;

const { values } = parseArgs({
  options: {
    arch: { type: 'string' },
    dir: { type: 'string' },
    memory: { type: 'string' },
    accel: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  },
});
if (values.help) {
  process.stdout.write(HELP);
  process.exit(0);
}
const arch = (values.arch ?? requireHostArch()) as Arch;
const dir = values.dir ?? join(repoRoot, 'out', arch);
if (!existsSync(join(dir, 'initramfs.img'))) {
  process.stderr.write(`no image in ${dir}: run make image ARCH=${arch}\n`);
  process.exit(1);
}
const { kernel, initrd, append } = bootFiles(dir, arch);
const accel = await resolveAccel(arch, (values.accel ?? 'auto') as 'auto' | 'kvm' | 'tcg');
const cmd = qemuCommand({
  arch,
  kernel,
  initrd,
  append,
  memory: Number(values.memory ?? 1024),
  accel,
  console: 'interactive',
});
process.stderr.write(`[boot] ${arch} (${accel}): Ctrl-a x quits, Ctrl-a c toggles the QEMU monitor\n`);
const r = await execa(cmd.bin, cmd.args, { stdio: 'inherit', reject: false });
process.exit(r.exitCode ?? 1);
