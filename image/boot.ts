// Boot a built image directory in QEMU with the serial console on this terminal: what
// `make boot` (scripts/boot.ts) and `runit-ts-image boot` run.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { bootFiles } from './packers/initramfs.ts';
import { copyVars, diskBoot } from './packers/disk.ts';
import { exeDiskBoot, type ExeDevice } from './packers/exedisk.ts';
import type { Arch } from '../src/lib/platform.ts';
import { qemuCommand, resolveAccel, type QemuCommand } from '../src/harness/index.ts';

export interface InteractiveBoot {
  arch: Arch;
  /** the image directory: vmlinuz/vmlinux, initramfs.img, cmdline (and disk.img for disk) */
  dir: string;
  /** MiB (default 1024) */
  memory?: number;
  accel?: 'auto' | 'kvm' | 'tcg';
  /** boot dir/disk.img this way instead of the initramfs */
  disk?: string;
  /** let the guest write to disk.img (default: a throw-away overlay) */
  write?: boolean;
  /** boot dir/exedisk.img with dir/exe.erofs attached this way (blk, or pmem on x86_64) */
  exedisk?: string;
}

/** A problem with what was asked (no image there, unknown boot path, missing firmware). */
export class BootSetupError extends Error {}

/** Run QEMU on the terminal until it ends; resolves with its exit code. */
export async function bootInteractive(o: InteractiveBoot): Promise<number> {
  const accel = await resolveAccel(o.arch, o.accel ?? 'auto');
  const memory = o.memory ?? 1024;
  let cmd: QemuCommand;
  let tmp: string | undefined;
  if (o.disk) {
    let b;
    try {
      b = diskBoot(o.dir, o.arch, o.disk);
    } catch (e) {
      throw new BootSetupError((e as Error).message);
    }
    let firmware = b.firmware;
    if (firmware !== undefined && 'vars' in firmware) {
      // the firmware's variable store is written at boot: a private copy each time
      tmp = mkdtempSync(join(tmpdir(), 'runit-ts-boot-'));
      firmware = { code: firmware.code, vars: copyVars(firmware.vars, tmp) };
    }
    cmd = qemuCommand({
      arch: o.arch,
      ...(b.kernel !== undefined ? { kernel: b.kernel, initrd: b.initrd!, append: b.append! } : {}),
      ...(firmware !== undefined ? { firmware } : {}),
      drives: [{ file: join(o.dir, 'disk.img'), snapshot: o.write !== true }],
      allowReboot: true,
      // the catalogue's network service gets DHCP from QEMU (restrict=on: nothing leaves QEMU)
      network: true,
      memory,
      accel,
      console: 'interactive',
    });
  } else if (o.exedisk) {
    if (o.exedisk !== 'blk' && o.exedisk !== 'pmem') throw new BootSetupError(`unknown exedisk device ${o.exedisk} (blk, pmem)`);
    let b;
    try {
      b = exeDiskBoot(o.dir, o.arch, o.exedisk as ExeDevice);
    } catch (e) {
      throw new BootSetupError((e as Error).message);
    }
    cmd = qemuCommand({
      arch: o.arch, kernel: b.kernel, initrd: b.initrd, append: b.append, memory, accel, network: true, console: 'interactive',
      ...(b.device === 'blk' ? { drives: [{ file: b.disk, readOnly: true }] } : { pmem: [b.disk] }),
    });
  } else {
    if (!existsSync(join(o.dir, 'initramfs.img'))) throw new BootSetupError(`no image in ${o.dir}: run make image ARCH=${o.arch}`);
    const { kernel, initrd, append } = bootFiles(o.dir, o.arch);
    cmd = qemuCommand({ arch: o.arch, kernel, initrd, append, memory, accel, network: true, console: 'interactive' });
  }
  process.stderr.write(`[boot] ${o.arch}${o.disk ? ` disk (${o.disk})` : ''}${o.exedisk ? ` exedisk (${o.exedisk})` : ''} (${accel}): Ctrl-a x quits, Ctrl-a c toggles the QEMU monitor\n`);
  try {
    const r = await execa(cmd.bin, cmd.args, { stdio: 'inherit', reject: false });
    return r.exitCode ?? 1;
  } finally {
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  }
}
