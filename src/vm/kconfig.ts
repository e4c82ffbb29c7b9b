// What a kernel needs to boot the harness initramfs and run commands with shares, and
// the check of a user's kernel against it: read its config (a .config or config-VERSION
// beside it, or the IKCONFIG it embeds) and name every option that is missing, or a
// module whose .ko is not in the modules tree.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import type { Arch } from '../lib/platform.ts';

/** A config option the harness needs, and the module that provides it when it is =m (undefined: must be =y). */
export interface Requirement {
  readonly option: string;
  readonly module?: string;
  /** Why it is needed (for the docs). */
  readonly why: string;
}

/** Options every arch needs. */
const COMMON: readonly Requirement[] = [
  { option: 'BLK_DEV_INITRD', why: 'the harness is an initramfs' },
  { option: 'DEVTMPFS', why: 'stage 1 mounts /dev as devtmpfs' },
  { option: 'TMPFS', why: 'stage 1 mounts /run as tmpfs' },
  { option: 'BINFMT_ELF', why: 'the executables' },
  { option: 'BINFMT_SCRIPT', why: 'service scripts (#!)' },
  { option: 'UNIX', why: 'the supervisor\'s control sockets' },
  { option: 'VIRTIO_PCI', module: 'virtio_pci', why: 'the transport of the 9p shares and the agent\'s port' },
  { option: 'VIRTIO_CONSOLE', module: 'virtio_console', why: 'the agent\'s virtio-serial port' },
  { option: 'NET_9P', module: '9pnet', why: 'shares' },
  { option: 'NET_9P_VIRTIO', module: '9pnet_virtio', why: 'shares (9p over virtio)' },
  { option: '9P_FS', module: '9p', why: 'shares (the 9p file system)' },
];

/** Options per arch: the serial console of QEMU's machine (pc: 8250 UART; virt: PL011). */
const PER_ARCH: Readonly<Record<Arch, readonly Requirement[]>> = {
  x86_64: [
    { option: 'SERIAL_8250', why: 'the console UART (ttyS0)' },
    { option: 'SERIAL_8250_CONSOLE', why: 'the kernel console on ttyS0' },
  ],
  aarch64: [
    { option: 'SERIAL_AMBA_PL011', why: 'the console UART (ttyAMA0)' },
    { option: 'SERIAL_AMBA_PL011_CONSOLE', why: 'the kernel console on ttyAMA0' },
  ],
};

/** Everything `arch`'s kernel needs for the harness. */
export function requirements(arch: Arch): readonly Requirement[] {
  return [...COMMON, ...PER_ARCH[arch]];
}

/** Modules to load in the guest (those requirements that are =m), in dependency order of need. */
export const HARNESS_MODULES: readonly string[] = ['virtio_pci', 'virtio_console', '9pnet_virtio', '9p'];
/** Modules the arch's machine needs besides (aarch64: virtio-mmio for the keyboard the harness gives it). */
export const ARCH_MODULES: Readonly<Record<Arch, readonly string[]>> = { x86_64: [], aarch64: ['virtio_mmio', 'virtio_input'] };
/** Module for an attached --disk. */
export const DISK_MODULES: readonly string[] = ['virtio_blk'];

/** Parses a kernel .config text into option (without CONFIG_) -> value ('y', 'm', a string). */
export function parseKconfig(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^CONFIG_([A-Za-z0-9_]+)=(.*)$/.exec(line.trim());
    if (m !== null) out.set(m[1]!, m[2]!);
  }
  return out;
}

/** Start and end markers around the gzip'd config that CONFIG_IKCONFIG embeds. */
const IKCFG_START = Buffer.from('IKCFG_ST');
const IKCFG_END = Buffer.from('IKCFG_ED');

/** The config embedded in an uncompressed kernel image (CONFIG_IKCONFIG), if there. */
export function embeddedConfig(image: Buffer): string | undefined {
  const at = image.indexOf(IKCFG_START);
  if (at < 0) return undefined;
  const end = image.indexOf(IKCFG_END, at);
  if (end < 0) return undefined;
  try {
    return gunzipSync(image.subarray(at + IKCFG_START.length, end)).toString('utf8');
  } catch {
    return undefined;
  }
}

/** Where a kernel's config was found and its text. */
export interface FoundConfig {
  readonly path: string;
  readonly text: string;
}

/**
 * Finds the config of a kernel image: config-VERSION beside it (vmlinuz-VERSION), a .config
 * beside it or up to three folders up (arch/x86/boot/bzImage in a build tree), or its
 * embedded IKCONFIG (readable in an uncompressed image, e.g. vmlinux or arm64 Image).
 */
export function findKernelConfig(kernel: string): FoundConfig | undefined {
  const dir = dirname(kernel);
  const version = /^(?:vmlinuz|vmlinux|bzImage|Image)-(.+)$/.exec(basename(kernel))?.[1];
  const candidates: string[] = [];
  if (version !== undefined) candidates.push(join(dir, `config-${version}`));
  let d = dir;
  for (let i = 0; i < 4; i++) {
    candidates.push(join(d, '.config'));
    d = dirname(d);
  }
  for (const c of candidates) if (existsSync(c)) return { path: c, text: readFileSync(c, 'utf8') };
  try {
    const configs = readdirSync(dir).filter((n) => n.startsWith('config-'));
    if (configs.length === 1) return { path: join(dir, configs[0]!), text: readFileSync(join(dir, configs[0]!), 'utf8') };
  } catch {
    // no folder listing: no config
  }
  const embedded = embeddedConfig(readFileSync(kernel));
  return embedded === undefined ? undefined : { path: `${kernel} (IKCONFIG)`, text: embedded };
}

/** The module names a lib/modules/VERSION tree holds, from its file names. */
function moduleFiles(modulesDir: string | undefined): Set<string> {
  const out = new Set<string>();
  if (modulesDir === undefined) return out;
  const walk = (d: string): void => {
    let entries;
    try {
      entries = readdirSync(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      if (e.isDirectory()) walk(join(d, e.name));
      else {
        const m = /^(.+)\.ko(\.(xz|zst|gz))?$/.exec(e.name);
        if (m !== null) out.add(m[1]!.replace(/-/g, '_'));
      }
    }
  };
  walk(join(modulesDir, 'kernel'));
  return out;
}

/**
 * The requirements a kernel config does not meet: not set; =m without a module allowed; or
 * =m with its module absent from `modulesDir`. Each as "CONFIG_X" or "CONFIG_X=m (no X.ko)".
 */
export function missingOptions(config: Map<string, string>, arch: Arch, modulesDir?: string): string[] {
  const mods = moduleFiles(modulesDir);
  const missing: string[] = [];
  for (const r of requirements(arch)) {
    const v = config.get(r.option);
    if (v === 'y') continue;
    if (v === 'm' && r.module !== undefined && mods.has(r.module)) continue;
    if (v === 'm' && r.module !== undefined) missing.push(`CONFIG_${r.option}=m (no ${r.module}.ko${modulesDir === undefined ? ': give --modules' : ` in ${modulesDir}`})`);
    else missing.push(`CONFIG_${r.option}${v === 'm' ? ' (=m, must be built in)' : ''}`);
  }
  return missing;
}
