// Platform facts, defined once for the image builder (image/), the stages (stages/), the
// QEMU harness (src/harness/), the tools in scripts/ and the benchmarks: the arches we
// build for, the host's, the cache of pinned inputs, the serial console and kernel
// command line, and how kernel module files are named.
import { basename, join } from 'node:path';

/** The guest and host architectures runit-ts builds for. */
export type Arch = 'x86_64' | 'aarch64';

/** Every arch, in the order builds and tests take them. */
export const ARCHES: readonly Arch[] = ['x86_64', 'aarch64'];

/** Debian's names for our arches (package architectures). */
export const DEB_ARCH: Readonly<Record<Arch, string>> = { x86_64: 'amd64', aarch64: 'arm64' };

/** GNU triplets: where Debian puts each arch's libraries (/lib/TRIPLET). */
export const TRIPLET: Readonly<Record<Arch, string>> = { x86_64: 'x86_64-linux-gnu', aarch64: 'aarch64-linux-gnu' };

/** binutils' strip for an arch's binaries (Debian's binutils-TRIPLET). */
export function stripTool(arch: Arch): string {
  return `${TRIPLET[arch]}-strip`;
}

/** qemu-user for running an arch's binaries on another host (Debian's qemu-user-static). */
export function qemuUser(arch: Arch): string {
  return `qemu-${arch}-static`;
}

/** Is name one of ARCHES? */
export function isArch(name: string | undefined): name is Arch {
  return (ARCHES as readonly (string | undefined)[]).includes(name);
}

/** The guest's first serial port, its console, on QEMU's machines (pc / virt). */
export const CONSOLE: Readonly<Record<Arch, string>> = { x86_64: 'ttyS0', aarch64: 'ttyAMA0' };

/** Accepts the usual spellings (x86_64/amd64/x64, aarch64/arm64). */
export function parseArch(name: string): Arch {
  switch (name.toLowerCase()) {
    case 'x86_64':
    case 'x86-64':
    case 'amd64':
    case 'x64':
      return 'x86_64';
    case 'aarch64':
    case 'arm64':
      return 'aarch64';
    default:
      throw new Error(`unknown architecture '${name}' (expected x86_64 or aarch64)`);
  }
}

/** The host's architecture, or undefined when it is neither x86_64 nor aarch64. */
export function hostArch(): Arch | undefined {
  if (process.arch === 'x64') return 'x86_64';
  if (process.arch === 'arm64') return 'aarch64';
  return undefined;
}

/** The host's architecture; a clear error on any other host. */
export function requireHostArch(): Arch {
  const a = hostArch();
  if (a === undefined) throw new Error(`unsupported host architecture ${process.arch} (x86_64 or aarch64 needed)`);
  return a;
}

/** Where scripts/setup keeps the pinned inputs: $RUNIT_TS_CACHE, default ~/.cache/runit-ts. */
export function cacheDir(): string {
  return process.env.RUNIT_TS_CACHE || join(process.getBuiltinModule('node:os').homedir(), '.cache', 'runit-ts');
}

/** Options of the kernel command line built by kernelCmdline (defaultCmdline in the harness). */
export interface CmdlineOptions {
  /** Words naming the root file system (`root=... rootfstype=... rootwait`), right after the console. */
  readonly root?: string;
  /** Add `quiet` (kernel log level 4 on the console; userspace output stays visible). Default false. */
  readonly quiet?: boolean;
  /** Extra words appended, e.g. 'rdinit=/sbin/init'. */
  readonly extra?: string;
}

/**
 * A kernel command line for booting under QEMU: the serial console, and panic=-1 so that
 * a kernel panic (e.g. init exiting) reboots at once, which QEMU's -no-reboot turns into
 * QEMU exiting.
 */
export function kernelCmdline(arch: Arch, opts: CmdlineOptions = {}): string {
  const words = [`console=${CONSOLE[arch]}`];
  if (opts.root !== undefined && opts.root.trim() !== '') words.push(opts.root.trim());
  words.push('panic=-1');
  if (opts.quiet === true) words.push('quiet');
  if (opts.extra !== undefined && opts.extra.trim() !== '') words.push(opts.extra.trim());
  return words.join(' ');
}

/** Process 1 of runit-ts images: the C runit, started by the kernel from the initramfs. */
export const IMAGE_INIT = '/sbin/runit';

/**
 * Transparent huge pages only on request, from the kernel's first process on: on every
 * command line of an image (initramfs, exedisk, disk). Under "always" (Debian's default)
 * a process that touches a few KiB of a fresh anonymous region gets a whole 2 MiB page:
 * an image whose command line left it to stage 1 kept such pages from Node's start on
 * (the exedisk image's stack PSS 16.5 MiB against 13.9 on aarch64; docs/performance.md).
 */
export const THP_MADVISE = 'transparent_hugepage=madvise';

/** How an image's boot starts, for imageCmdline: its first process, or its root file system. */
export interface ImageBoot {
  /** words that start the boot from the initramfs (default `rdinit=/sbin/runit`, IMAGE_INIT) */
  readonly init?: string;
  /** the root file system's words instead (a disk image; its early initramfs's /init runs) */
  readonly root?: string;
}

/**
 * The command line an image is booted with (out/ARCH/cmdline, disk.cmdline,
 * exedisk.cmdline): the console, the root when on a disk, quiet, how the boot starts,
 * transparent huge pages only on request (THP_MADVISE), and the spec's `extra` words.
 */
export function imageCmdline(arch: Arch, extra = '', boot: ImageBoot = {}): string {
  const start = boot.root !== undefined ? '' : `${boot.init ?? `rdinit=${IMAGE_INIT}`} `;
  return kernelCmdline(arch, { ...(boot.root !== undefined ? { root: boot.root } : {}), quiet: true, extra: `${start}${THP_MADVISE}${extra.trim() ? ' ' + extra.trim() : ''}` });
}

/** File names of kernel modules, plain or compressed as Debian ships them. */
export const MODULE_FILE = /\.ko(\.(xz|zst|gz))?$/;

/** The name the kernel knows a module by: '-' and '_' are the same, so names use '_'. */
export function canonicalModuleName(name: string): string {
  return name.replace(/-/g, '_');
}

/** A module's name from its file's path: kernel/drivers/net/virtio-net.ko.xz -> virtio_net. */
export function moduleName(path: string): string {
  return canonicalModuleName(basename(path).replace(MODULE_FILE, ''));
}
