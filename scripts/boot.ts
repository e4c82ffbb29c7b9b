// scripts/boot.ts: boot out/ARCH in QEMU with the serial console on this terminal
// (what `make boot` runs). Ctrl-a x quits; Ctrl-a c toggles the QEMU monitor.
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { bootInteractive, BootSetupError } from '../image/boot.ts';
import { repoRoot } from '../image/inputs.ts';
import { parseArch, requireHostArch } from '../src/lib/platform.ts';

const HELP = `usage: node scripts/boot.ts [--arch x86_64|aarch64] [--dir DIR] [--memory MiB] [--accel auto|kvm|tcg]
                           [--disk direct|uefi|uboot] [--write] [--exedisk blk|pmem]

Boots DIR (default out/ARCH: vmlinuz or, on x86_64, the faster vmlinux,
initramfs.img and cmdline) with the console on this terminal. A root shell
comes up on the console. The guest has a NIC on QEMU's user network (restrict=on:
DHCP from QEMU, nothing reachable outside it). Ctrl-a x quits QEMU; 'poweroff' or 'init 0' in the
guest powers it off, 'reboot' or 'init 6' ends QEMU too (-no-reboot).
--disk boots DIR/disk.img (make image OUTPUTS=disk) instead: direct (QEMU loads the
kernel and early.img), uefi (OVMF/AAVMF, systemd-boot) or uboot (aarch64: U-Boot,
extlinux.conf); a reboot then restarts the machine. Writes go to a throw-away
overlay unless --write is given.
--exedisk boots DIR/exedisk.img (make image OUTPUTS=exedisk): the executable on the
read-only erofs DIR/exe.erofs, attached as a virtio-blk disk (blk) or, on x86_64, as
virtio-pmem mounted with DAX (pmem).
`;

const { values } = parseArgs({
  options: {
    arch: { type: 'string' },
    dir: { type: 'string' },
    memory: { type: 'string' },
    accel: { type: 'string' },
    disk: { type: 'string' },
    write: { type: 'boolean' },
    exedisk: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  },
});
if (values.help) {
  process.stdout.write(HELP);
  process.exit(0);
}
const arch = values.arch ? parseArch(values.arch) : requireHostArch();
const dir = values.dir ?? join(repoRoot, 'out', arch);
try {
  process.exit(await bootInteractive({ arch, dir, memory: Number(values.memory ?? 1024), accel: (values.accel ?? 'auto') as 'auto' | 'kvm' | 'tcg', ...(values.disk ? { disk: values.disk } : {}), ...(values.exedisk ? { exedisk: values.exedisk } : {}), write: values.write === true }));
} catch (e) {
  if (!(e instanceof BootSetupError)) throw e;
  process.stderr.write(`[boot] error: ${e.message}\n`);
  process.exit(1);
}
