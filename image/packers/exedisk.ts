// Exedisk output: the image with its big executable on a read-only disk instead of in the
// initramfs. The kernel unpacks every byte of an initramfs before PID 1 runs (~112 MiB,
// ~0.5 s under TCG, most of it the Node executable); from a disk the pages Node touches
// are read when it touches them, by QEMU's own (host) code.
//   exedisk.img       the initramfs without /usr/lib/runit-ts's files (~9 MiB, docs/performance.md), plus the
//                     early stage (image/early.c as /sbin/early, which hands anything it
//                     does not do to image/early-init.sh as /sbin/early-init) and the
//                     modules it loads: virtio_pci + virtio_blk + erofs (x86_64 also virtio_pmem)
//   exe.erofs         /usr/lib/runit-ts (the executable and its addon) as an uncompressed
//                     erofs (no tail packing: DAX can map it), padded to 2 MiB
//   exedisk.cmdline   rdinit=/sbin/early early.mount=/dev/vda:/usr/lib/runit-ts:erofs:ro early.ra=2048
//                     transparent_hugepage=madvise (THP_MADVISE, as every image)
//   exedisk-pmem.cmdline  x86_64: the same disk as virtio-pmem, mounted with dax=always
// The early stage mounts the disk on /usr/lib/runit-ts and execs /sbin/runit on the
// initramfs (no switch_root); everything after that is the initramfs image's boot.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import type { Entry } from '../../src/lib/entry.ts';
import { sourceDateEpoch } from '../epoch.ts';
import { repoRoot } from '../inputs.ts';
import { mib, say } from '../log.ts';
import { resolveModules } from '../../src/lib/kmod.ts';
import type { ResolvedImage } from '../resolve.ts';
import { imageCmdline, type Arch } from '../../src/lib/platform.ts';
import { parseModulesDep } from '../../stages/stage1.ts';
import { writeCpio } from '../../src/lib/cpio.ts';
import { dependencyOrder, DiskError, type DiskSettings } from './disk.ts';
import { writeErofs } from './erofs.ts';
import { stableUuid } from './gpt.ts';
import { bootKernel, writeKernel } from './kernel.ts';

/** The directory that goes on the disk (mounted there by the early stage). */
export const EXE_DIR = 'usr/lib/runit-ts';
export const EARLY_INIT = '/sbin/early-init';
/** the early stage's fast path, a small static program (built by make as out/ARCH/early) */
export const EARLY = '/sbin/early';

/** How the disk is attached: virtio-blk (both arches) or virtio-pmem with DAX (x86_64). */
export type ExeDevice = 'blk' | 'pmem';
export const EXE_DEVICES: Record<Arch, ExeDevice[]> = { x86_64: ['blk', 'pmem'], aarch64: ['blk'] };
// erofs needs crc32c (libcrc32c), which needs a crc32c implementation loaded before it
const MODULES: Record<ExeDevice, string[]> = {
  blk: ['virtio_pci', 'virtio_blk', 'crc32c_generic', 'libcrc32c', 'erofs'],
  pmem: ['virtio_pci', 'virtio_pmem', 'nd_pmem', 'crc32c_generic', 'libcrc32c', 'erofs'],
};
// blk: a 2 MiB read-around window (default 128 KiB): Node's start then reads the executable
// in ~16x fewer requests, each costly under TCG (measured in docs/performance.md)
const MOUNT: Record<ExeDevice, string> = {
  blk: `/dev/vda:/${EXE_DIR}:erofs:ro early.ra=2048`,
  pmem: `/dev/pmem0:/${EXE_DIR}:erofs:ro,dax=always`,
};
const CMDLINE_FILE: Record<ExeDevice, string> = { blk: 'exedisk.cmdline', pmem: 'exedisk-pmem.cmdline' };
const MIB = 1048576;

/**
 * x86_64: PCI interrupts routed without ACPI. Enabling the virtio disk's PCI device makes
 * the kernel evaluate the ACPI interrupt link's methods (~0.08 s in its AML interpreter
 * under TCG); virtio uses MSI-X all the same, and a pin interrupt still gets its line from
 * the firmware's table (docs/performance.md). aarch64's virt machine boots without ACPI.
 */
const NO_ACPI_IRQ: Record<Arch, string> = { x86_64: ' acpi=noirq', aarch64: '' };

/** The kernel command line of the exedisk image attached one way. */
export function exeDiskCmdline(spec: Pick<DiskSettings, 'arch' | 'cmdline'>, device: ExeDevice): string {
  return imageCmdline(spec.arch, spec.cmdline, { init: `rdinit=${EARLY} early.modules=exe-${device} early.mount=${MOUNT[device]}${NO_ACPI_IRQ[spec.arch]}` });
}

/** The image's entries split in two: the initramfs (with the early stage) and the disk's. */
export function exeDiskEntries(img: ResolvedImage): { initramfs: Entry[]; exe: Entry[] } {
  const { arch, binDir } = img;
  const all = img.entries;
  const exe: Entry[] = [{ path: '.', type: 'dir', mode: 0o755 }];
  const initramfs: Entry[] = [];
  for (const e of all) {
    if (e.path.startsWith(EXE_DIR + '/')) exe.push({ ...e, path: e.path.slice(EXE_DIR.length + 1) });
    else if (e.path !== EXE_DIR) initramfs.push(e);
  }
  if (exe.length === 1) throw new DiskError(`exedisk: nothing under /${EXE_DIR} in the image`);
  initramfs.push({ path: EXE_DIR, type: 'dir', mode: 0o755 });
  initramfs.push({ path: EARLY_INIT.slice(1), type: 'file', mode: 0o755, data: readFileSync(join(repoRoot, 'image', 'early-init.sh')) });
  const early = join(binDir, 'early');
  if (!existsSync(early)) throw new DiskError(`exedisk: no ${early} (make out/${arch}/early builds it from image/early.c)`);
  initramfs.push({ path: EARLY.slice(1), type: 'file', mode: 0o755, data: () => readFileSync(early) });
  const rel = img.kernel.release;
  const modDir = img.kernel.modulesDir;
  const have = new Set(initramfs.map((e) => e.path));
  for (const device of EXE_DEVICES[arch]) {
    const set = resolveModules(modDir, MODULES[device]);
    const order = dependencyOrder(MODULES[device], parseModulesDep(set.dep));
    for (const f of set.files) {
      const path = `lib/modules/${rel}/${f}`;
      if (have.has(path)) continue;
      have.add(path);
      initramfs.push({ path, type: 'file', mode: 0o644, data: () => readFileSync(join(modDir, f)) });
    }
    // early-init.sh reads it (early.modules=exe-DEVICE): paths relative to /lib/modules
    initramfs.push({ path: `lib/modules/exe-${device}`, type: 'file', mode: 0o644, data: Buffer.from(order.map((p) => `${rel}/${p}\n`).join('')) });
  }
  return { initramfs, exe };
}

/** Where a file's data starts in an uncompressed erofs image (bytes), from dump.erofs. */
export async function dataOffset(image: string, path: string): Promise<number> {
  const r = await execa('dump.erofs', [`--path=${path}`, '-e', image], { reject: false, all: true, env: { LC_ALL: 'C' } });
  const m = /^\s*0:\s+0\.\.\s*\d+\s*\|\s*\d+\s*:\s*(\d+)\.\./m.exec(r.all ?? '');
  if (r.exitCode !== 0 || !m) throw new DiskError(`dump.erofs ${path} ${image}: no extent found (${(r.all ?? '').trim().split('\n').pop()})`);
  return Number(m[1]);
}

/**
 * The executable's data starts on a 2 MiB boundary of the disk: its ELF segments are
 * 2 MiB-congruent (file offset and address), so with DAX the kernel can map Node's text
 * with 2 MiB pages. mkfs.erofs lays files out in name order: a zero-filled ".align" before
 * "runit-ts" moves it there.
 */
async function writeAlignedErofs(disk: string, exe: Entry[], o: Parameters<typeof writeErofs>[2]): Promise<boolean> {
  const ALIGN = 2 * MIB;
  const target = '/' + BINARY_NAME;
  await writeErofs(disk, exe, o);
  const off = await dataOffset(disk, target);
  if (off % ALIGN === 0) return true;
  await writeErofs(disk, [...exe, { path: '.align', type: 'file', mode: 0o444, data: Buffer.alloc(ALIGN - (off % ALIGN)) }], o);
  return (await dataOffset(disk, target)) % ALIGN === 0;
}
const BINARY_NAME = 'runit-ts';

/** Build the exedisk outputs of `img` into `out` (all made aside, renamed into place at the end); the names written. */
export async function buildExeDisk(img: ResolvedImage, out: string): Promise<string[]> {
  const t0 = Date.now();
  const { arch } = img;
  const epoch = sourceDateEpoch();
  mkdirSync(out, { recursive: true });
  const tmp = mkdtempSync(join(out, '.exedisk-'));
  try {
    const { initramfs, exe } = exeDiskEntries(img);
    await writeCpio(join(tmp, 'exedisk.img'), initramfs, epoch);
    const disk = join(tmp, 'exe.erofs');
    const aligned = await writeAlignedErofs(disk, exe, { size: 4096 * MIB, uuid: stableUuid(`runit-ts/${arch}/${img.hostname ?? 'runit-ts'}/exe`), epoch, tmp, plain: true });
    // virtio-pmem maps the file in whole 2 MiB blocks; erofs ignores what follows its blocks
    truncateSync(disk, Math.ceil(statSync(disk).size / (2 * MIB)) * 2 * MIB);
    const names = ['exedisk.img', 'exe.erofs'];
    for (const device of EXE_DEVICES[arch]) {
      writeFileSync(join(tmp, CMDLINE_FILE[device]), exeDiskCmdline(img, device) + '\n');
      names.push(CMDLINE_FILE[device]);
    }
    names.push(...(await writeKernel(img, tmp)));
    for (const n of names) renameSync(join(tmp, n), join(out, n));
    const size = (n: string) => mib(statSync(join(out, n)).size);
    say(`${arch}: exedisk.img ${size('exedisk.img')}, exe.erofs ${size('exe.erofs')} (uncompressed${aligned ? ', executable 2 MiB-aligned' : ', the executable could not be 2 MiB-aligned'}) in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    return names;
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

/** What QEMU needs to boot a built exedisk image one way (make boot EXE=..., tests, bench). */
export interface ExeDiskBoot {
  kernel: string;
  initrd: string;
  append: string;
  disk: string;
  device: ExeDevice;
}

export function exeDiskBoot(dir: string, arch: Arch, device: ExeDevice = 'blk'): ExeDiskBoot {
  if (!EXE_DEVICES[arch].includes(device)) throw new DiskError(`exedisk: ${device} is not available on ${arch} (${EXE_DEVICES[arch].join(', ')})`);
  for (const f of ['exedisk.img', 'exe.erofs', CMDLINE_FILE[device]]) {
    if (!existsSync(join(dir, f))) throw new DiskError(`no ${f} in ${dir}: run make image OUTPUTS=exedisk ARCH=${arch}`);
  }
  return {
    kernel: bootKernel(dir, arch),
    initrd: join(dir, 'exedisk.img'),
    append: readFileSync(join(dir, CMDLINE_FILE[device]), 'utf8').trim(),
    disk: join(dir, 'exe.erofs'),
    device,
  };
}
