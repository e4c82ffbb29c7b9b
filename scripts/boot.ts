// scripts/boot.ts: boot out/ARCH in QEMU with the serial console on this terminal
// (what `make boot` runs). Ctrl-a x quits; Ctrl-a c toggles the QEMU monitor.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { execa } from 'execa';
import { bootFiles } from '../image/build.ts';
import { copyVars, diskBoot } from '../image/packers/disk.ts';
import { repoRoot } from '../image/inputs.ts';
import { requireHostArch, type Arch } from '../src/lib/platform.ts';
import { qemuCommand, resolveAccel } from '../src/harness/index.ts';

const HELP = `usage: node scripts/boot.ts [--arch x86_64|aarch64] [--dir DIR] [--memory MiB] [--accel auto|kvm|tcg]
                           [--disk direct|uefi|uboot] [--write]

Boots DIR (default out/ARCH: vmlinuz or, on x86_64, the faster vmlinux,
initramfs.img and cmdline) with the console on this terminal. A root shell
comes up on the console. The guest has a NIC on QEMU's user network (restrict=on:
DHCP from QEMU, nothing reachable outside it). Ctrl-a x quits QEMU; 'poweroff' or 'init 0' in the
guest powers it off, 'reboot' or 'init 6' ends QEMU too (-no-reboot).
--disk boots DIR/disk.img (make image OUTPUTS=disk) instead: direct (QEMU loads the
kernel and early.img), uefi (OVMF/AAVMF, systemd-boot) or uboot (aarch64: U-Boot,
extlinux.conf); a reboot then restarts the machine. Writes go to a throw-away
overlay unless --write is given.
`;

const { values } = parseArgs({
  options: {
    arch: { type: 'string' },
    dir: { type: 'string' },
    memory: { type: 'string' },
    accel: { type: 'string' },
    disk: { type: 'string' },
    write: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  },
});
if (values.help) {
  process.stdout.write(HELP);
  process.exit(0);
}
const arch = (values.arch ?? requireHostArch()) as Arch;
const dir = values.dir ?? join(repoRoot, 'out', arch);
const accel = await resolveAccel(arch, (values.accel ?? 'auto') as 'auto' | 'kvm' | 'tcg');
const memory = Number(values.memory ?? 1024);
let cmd;
let tmp: string | undefined;
if (values.disk) {
  let b;
  try {
    b = diskBoot(dir, arch, values.disk);
  } catch (e) {
    process.stderr.write(`[boot] error: ${(e as Error).message}\n`);
    process.exit(1);
  }
  let firmware = b.firmware;
  if (firmware !== undefined && 'vars' in firmware) {
    tmp = mkdtempSync(join(tmpdir(), 'runit-ts-boot-'));
    firmware = { code: firmware.code, vars: copyVars(firmware.vars, tmp) };
  }
  cmd = qemuCommand({
    arch,
    ...(b.kernel !== undefined ? { kernel: b.kernel, initrd: b.initrd!, append: b.append! } : {}),
    ...(firmware !== undefined ? { firmware } : {}),
    drives: [{ file: join(dir, 'disk.img'), snapshot: values.write !== true }],
    allowReboot: true,
    network: true,
    memory,
    accel,
    console: 'interactive',
  });
} else {
  if (!existsSync(join(dir, 'initramfs.img'))) {
    process.stderr.write(`no image in ${dir}: run make image ARCH=${arch}\n`);
    process.exit(1);
  }
  const { kernel, initrd, append } = bootFiles(dir, arch);
  cmd = qemuCommand({ arch, kernel, initrd, append, memory, accel, network: true, console: 'interactive' });
}
process.stderr.write(`[boot] ${arch}${values.disk ? ` disk (${values.disk})` : ''} (${accel}): Ctrl-a x quits, Ctrl-a c toggles the QEMU monitor\n`);
const r = await execa(cmd.bin, cmd.args, { stdio: 'inherit', reject: false });
if (tmp) rmSync(tmp, { recursive: true, force: true });
process.exit(r.exitCode ?? 1);
