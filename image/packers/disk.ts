// Disk output: the resolved image's entries as an ext4 root partition on a GPT disk, with
// an EFI system partition that boots it three ways:
//   direct  QEMU loads the kernel and the early initramfs itself (-kernel/-initrd)
//   uefi    OVMF (x86_64) / AAVMF (aarch64) runs systemd-boot from the ESP, whose loader
//           entry names the kernel, the early initramfs and the command line
//   uboot   (aarch64) U-Boot's distro boot reads extlinux/extlinux.conf from the ESP
// Writes OUT/disk.img, OUT/root.ext4, OUT/early.img, OUT/disk.cmdline (and vmlinuz), all
// built in a temporary directory and renamed into place only when everything worked.
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { parseModulesDep } from '../../stages/stage1.ts';
import type { Entry } from '../../src/lib/entry.ts';
import { sourceDateEpoch } from '../epoch.ts';
import { repoRoot, requireInput, type Arch } from '../inputs.ts';
import { mib, say } from '../log.ts';
import { resolveModules } from '../../src/lib/kmod.ts';
import type { ResolvedImage } from '../resolve.ts';
import { busyboxEntries, type ImageSpec } from '../rootfs.ts';
import { imageCmdline } from '../../src/lib/platform.ts';
import { writeCpio } from '../../src/lib/cpio.ts';
import { DiskError, writeExt4 } from './ext4.ts';
import { writeErofs } from './erofs.ts';
import { writeEsp, type EspFile } from './esp.ts';
import { PART_TYPE, stableUuid, writeGpt } from './gpt.ts';
import { bootKernel, writeKernel } from './kernel.ts';

export { DiskError };

export type BootPath = 'direct' | 'uefi' | 'uboot';
export const BOOT_PATHS: Record<Arch, BootPath[]> = { x86_64: ['direct', 'uefi'], aarch64: ['direct', 'uefi', 'uboot'] };

/** What the early initramfs loads to reach an ext4 root on virtio-blk (PCI on both arches). */
export const EARLY_MODULES: Record<Arch, string[]> = {
  x86_64: ['virtio_pci', 'virtio_blk', 'crc32c_generic', 'ext4', 'erofs', 'overlay'],
  aarch64: ['virtio_pci', 'virtio_blk', 'crc32c_generic', 'ext4', 'erofs', 'overlay'],
};

const MIB = 1048576;
export const DEFAULT_DISK_SIZE = 512 * MIB;
export const DEFAULT_ESP_SIZE: Record<Arch, number> = { x86_64: 32 * MIB, aarch64: 96 * MIB };

/** "512M", "1G", "300000k" or a number of bytes. */
export function parseSize(v: string | number | undefined, dflt: number, what: string): number {
  if (v === undefined) return dflt;
  if (typeof v === 'number' && Number.isInteger(v) && v > 0) return v;
  const m = /^(\d+)\s*([kKmMgG]?)i?[bB]?$/.exec(String(v).trim());
  if (!m) throw new DiskError(`${what}: not a size: ${String(v)} (e.g. 512M, 2G)`);
  const mult = { '': 1, k: 1024, m: MIB, g: 1024 * MIB }[m[2]!.toLowerCase() as '' | 'k' | 'm' | 'g'];
  return Number(m[1]) * mult;
}

export interface DiskIds {
  disk: string;
  esp: string;
  root: string;
  /** ext4 UUID (= its directory hash seed) */
  fs: string;
  /** FAT volume id, 8 hex digits */
  vfat: string;
}

/** What the disk's ids and command line derive from: a ResolvedImage, or these fields of an ImageSpec. */
export type DiskSettings = Pick<ImageSpec, 'arch' | 'hostname' | 'cmdline' | 'disk'>;

/** The disk's GUIDs, file system UUID and FAT volume id, derived from the arch and hostname (reproducible). */
export function diskIds(spec: DiskSettings): DiskIds {
  const base = `runit-ts/${spec.arch}/${spec.hostname ?? 'runit-ts'}`;
  return {
    disk: stableUuid(`${base}/disk`),
    esp: stableUuid(`${base}/esp`),
    root: stableUuid(`${base}/root`),
    fs: stableUuid(`${base}/ext4`),
    vfat: stableUuid(`${base}/vfat`).slice(0, 8),
  };
}

/** The kernel command line of the disk: the root partition by PARTUUID, read-write ext4 or erofs under a tmpfs overlay. */
export function diskCmdline(spec: DiskSettings, ids = diskIds(spec)): string {
  // erofs: read-only, with a tmpfs overlay on top (root.overlay, see image/early-init.sh)
  const fs = spec.disk?.rootfs === 'erofs' ? 'rootfstype=erofs ro root.overlay=tmpfs' : 'rootfstype=ext4 rw';
  return imageCmdline(spec.arch, spec.cmdline, { root: `root=PARTUUID=${ids.root} ${fs} rootwait` });
}

/** Module files, each after everything it needs (depth first over modules.dep's lists). */
export function dependencyOrder(names: string[], dep: ReturnType<typeof parseModulesDep>): string[] {
  const byPath = new Map([...dep.values()].map((e) => [e.path, e.deps]));
  const order: string[] = [];
  const visit = (p: string) => {
    if (order.includes(p)) return;
    for (const d of byPath.get(p) ?? []) visit(d);
    order.push(p);
  };
  for (const n of names) {
    const e = dep.get(n.replace(/-/g, '_'));
    if (!e) throw new DiskError(`early initramfs: module ${n} not found`);
    visit(e.path);
  }
  return order;
}

/** The early initramfs: /init (early-init.sh), e2fsck, busybox and the modules that reach the root. */
function earlyEntries(img: ResolvedImage): Entry[] {
  const { arch } = img;
  const modDir = img.kernel.modulesDir;
  const set = resolveModules(modDir, EARLY_MODULES[arch]);
  const order = dependencyOrder(EARLY_MODULES[arch], parseModulesDep(set.dep));
  const e: Entry[] = [
    { path: 'init', type: 'file', mode: 0o755, data: readFileSync(join(repoRoot, 'image', 'early-init.sh')) },
    { path: 'dev/console', type: 'char', mode: 0o600, major: 5, minor: 1 },
    { path: 'dev/null', type: 'char', mode: 0o666, major: 1, minor: 3 },
    { path: 'sbin/e2fsck', type: 'file', mode: 0o755, data: () => readFileSync(join(requireInput(`e2fsck-${arch}`), 'sbin', 'e2fsck.static')) },
    { path: 'lib/modules/load-order', type: 'file', mode: 0o644, data: Buffer.from(order.map((p) => p + '\n').join('')) },
    ...busyboxEntries(arch),
  ];
  for (const f of set.files) e.push({ path: `lib/modules/${f}`, type: 'file', mode: 0o644, data: () => readFileSync(join(modDir, f)) });
  return e;
}

/** The device trees of the kernel package (what a board's extlinux.conf can point fdtdir at). */
function dtbFiles(img: ResolvedImage): EspFile[] {
  if (img.arch !== 'aarch64') return [];
  const dir = join(img.kernel.dir, 'usr', 'lib', `linux-image-${img.kernel.release}`);
  const out: EspFile[] = [];
  const walk = (d: string) => {
    for (const n of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, n.name);
      if (n.isDirectory()) walk(p);
      else if (n.name.endsWith('.dtb')) out.push({ path: `dtbs/${relative(dir, p)}`, data: readFileSync(p) });
    }
  };
  if (existsSync(dir)) walk(dir);
  return out;
}

/** The ESP's files: the kernel, early.img, systemd-boot and its entry (aarch64: extlinux.conf and the device trees too). */
function bootloaderFiles(img: ResolvedImage, kernel: Buffer, early: Buffer, cmdline: string): EspFile[] {
  const { arch } = img;
  const t = (path: string, s: string): EspFile => ({ path, data: Buffer.from(s) });
  const efiName = arch === 'x86_64' ? 'x64' : 'aa64';
  const sdboot = join(requireInput(`systemd-boot-${arch}`), 'usr', 'lib', 'systemd', 'boot', 'efi', `systemd-boot${efiName}.efi`);
  const files: EspFile[] = [
    { path: 'runit-ts/vmlinuz', data: kernel },
    { path: 'runit-ts/early.img', data: early },
    { path: `EFI/BOOT/BOOT${efiName.toUpperCase()}.EFI`, data: readFileSync(sdboot) },
    t('loader/loader.conf', 'default runit-ts.conf\ntimeout 0\neditor no\nrandom-seed-mode off\n'),
    t('loader/entries/runit-ts.conf', `title runit-ts\nlinux /runit-ts/vmlinuz\ninitrd /runit-ts/early.img\noptions ${cmdline}\n`),
  ];
  if (arch === 'aarch64') {
    // U-Boot's distro boot; no fdt line: on QEMU U-Boot hands over the device tree QEMU made.
    // A real board adds "fdtdir /dtbs" (or "fdt /dtbs/<vendor>/<board>.dtb").
    files.push(t('extlinux/extlinux.conf',
      `# read by U-Boot's distro boot (first partition, or the one marked bootable)\n` +
      `default runit-ts\ntimeout 1\n\nlabel runit-ts\n  menu label runit-ts\n  kernel /runit-ts/vmlinuz\n  initrd /runit-ts/early.img\n  append ${cmdline}\n`));
    files.push(...dtbFiles(img));
  }
  return files;
}

/** Build the disk outputs of `img` into `out`; the names written. */
export async function buildDisk(img: ResolvedImage, out: string): Promise<string[]> {
  const t0 = Date.now();
  const { arch } = img;
  const d = img.disk ?? {};
  if (d.rootfs !== undefined && d.rootfs !== 'ext4' && d.rootfs !== 'erofs') throw new DiskError(`disk.rootfs: unknown root file system ${String(d.rootfs)} (ext4, erofs)`);
  const erofs = d.rootfs === 'erofs';
  const size = parseSize(d.size, DEFAULT_DISK_SIZE, 'disk.size');
  const espSize = parseSize(d.esp, DEFAULT_ESP_SIZE[arch], 'disk.esp');
  const rootSize = size - espSize - 2 * MIB;
  if (rootSize < 16 * MIB) throw new DiskError(`disk.size ${mib(size)} leaves no room for the root partition after a ${mib(espSize)} ESP`);
  const epoch = sourceDateEpoch();
  const ids = diskIds(img);
  const cmdline = diskCmdline(img, ids);
  mkdirSync(out, { recursive: true });
  const tmp = mkdtempSync(join(out, '.disk-'));
  try {
    say(`${arch}: root file system (${erofs ? 'erofs' : 'ext4'}, ${mib(rootSize)})`);
    const rootImage = join(tmp, erofs ? 'root.erofs' : 'root.ext4');
    if (erofs) await writeErofs(rootImage, img.entries, { size: rootSize, uuid: ids.fs, epoch, tmp });
    else await writeExt4(rootImage, img.entries, { size: rootSize, uuid: ids.fs, label: 'root', epoch, tmp });
    say(`${arch}: early initramfs and boot partition`);
    await writeCpio(join(tmp, 'early.img'), earlyEntries(img), epoch);
    const kernel = readFileSync(img.kernel.image);
    await writeEsp(join(tmp, 'esp.vfat'), bootloaderFiles(img, kernel, readFileSync(join(tmp, 'early.img')), cmdline), espSize, ids.vfat, epoch);
    say(`${arch}: GPT disk`);
    await writeGpt(join(tmp, 'disk.img'), ids.disk, [
      { name: 'esp', type: PART_TYPE.esp, uuid: ids.esp, image: join(tmp, 'esp.vfat'), attrs: ['LegacyBIOSBootable'] },
      { name: 'root', type: PART_TYPE[`root-${arch}`], uuid: ids.root, image: rootImage, size: rootSize },
    ]);
    writeFileSync(join(tmp, 'disk.cmdline'), cmdline + '\n');
    const names = ['disk.img', erofs ? 'root.erofs' : 'root.ext4', 'early.img', 'disk.cmdline', ...(await writeKernel(img, tmp))];
    // the other root image of a previous build would no longer match disk.img
    rmSync(join(out, obsoleteRoot(img)), { force: true });
    for (const f of names) renameSync(join(tmp, f), join(out, f));
    say(`${arch}: disk.img ${mib(statSync(join(out, 'disk.img')).size)} (ESP ${mib(espSize)}, root ${mib(rootSize)}), ` +
      `early.img ${mib(statSync(join(out, 'early.img')).size)} in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    return names;
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

/** The root image a build of `img` does not write: one left by an earlier build with the other root file system. */
export function obsoleteRoot(img: DiskSettings): string {
  return img.disk?.rootfs === 'erofs' ? 'root.ext4' : 'root.erofs';
}

/** QEMU settings for booting a built disk one way (used by `make boot DISK=...` and the tests). */
export interface DiskBoot {
  kernel?: string;
  initrd?: string;
  append?: string;
  firmware?: { bios: string } | { code: string; vars: string };
}

const FIRMWARE: Record<Arch, { code: string; vars: string; pkg: string }> = {
  x86_64: { code: '/usr/share/OVMF/OVMF_CODE_4M.fd', vars: '/usr/share/OVMF/OVMF_VARS_4M.fd', pkg: 'ovmf' },
  aarch64: { code: '/usr/share/AAVMF/AAVMF_CODE.fd', vars: '/usr/share/AAVMF/AAVMF_VARS.fd', pkg: 'qemu-efi-aarch64' },
};
const UBOOT = '/usr/lib/u-boot/qemu_arm64/u-boot.bin';

export interface FirmwareFiles {
  uefi: { code: string; vars: string; pkg: string };
  uboot: string;
}

export function diskBoot(dir: string, arch: Arch, path: string, files: FirmwareFiles = { uefi: FIRMWARE[arch], uboot: UBOOT }): DiskBoot {
  const paths = BOOT_PATHS[arch];
  if (!paths.includes(path as BootPath)) throw new DiskError(`unknown boot path ${path} for ${arch} (${paths.join(', ')})`);
  if (!existsSync(join(dir, 'disk.img'))) throw new DiskError(`no disk image in ${dir}: run make image OUTPUTS=disk ARCH=${arch}`);
  if (path === 'direct') {
    return {
      kernel: bootKernel(dir, arch),
      initrd: join(dir, 'early.img'),
      append: readFileSync(join(dir, 'disk.cmdline'), 'utf8').trim(),
    };
  }
  if (path === 'uefi') {
    const fw = files.uefi;
    for (const f of [fw.code, fw.vars]) if (!existsSync(f)) throw new DiskError(`UEFI firmware ${f} is missing: install the Debian package ${fw.pkg} (scripts/setup)`);
    return { firmware: { code: fw.code, vars: fw.vars } };
  }
  if (!existsSync(files.uboot)) throw new DiskError(`U-Boot ${files.uboot} is missing: install the Debian package u-boot-qemu (scripts/setup)`);
  return { firmware: { bios: files.uboot } };
}

/** A writable copy of a firmware variable store (never the packaged one). */
export function copyVars(vars: string, dir: string): string {
  const dest = join(dir, 'efivars.fd');
  copyFileSync(vars, dest);
  return dest;
}
