// What runit-ts-vm boots: the harness image of this checkout (or an image directory, or a
// user's kernel with the harness initramfs and that kernel's modules appended as a second
// cpio archive), with shares as 9p devices and a disk on virtio-blk.
import { appendFileSync, closeSync, copyFileSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Drive, Share as HarnessShare } from '../harness/qemu.ts';
import { cpioBuffer } from '../lib/cpio.ts';
import type { Entry } from '../lib/entry.ts';
import { indexModules, resolveModules } from '../lib/kmod.ts';
import { type Arch, cacheDir, kernelCmdline } from '../lib/platform.ts';
import type { BootSource, Share } from './args.ts';
import { VmError } from './errors.ts';
import { ARCH_MODULES, DISK_MODULES, findKernelConfig, HARNESS_MODULES, missingOptions, parseKconfig } from './kconfig.ts';

/** Environment variable naming the default image directory (instead of this checkout's). */
export const IMAGE_ENV = 'RUNIT_TS_VM_IMAGE';
/** The make target that builds the harness image in a checkout. */
export const IMAGE_TARGET = 'vm-image';

/** The files QEMU gets: kernel, initramfs, command line, disks, and the 9p devices of the shares. */
export interface BootInputs {
  readonly arch: Arch;
  readonly kernel: string;
  readonly initrd: string;
  readonly append: string;
  readonly drives: readonly Drive[];
  /** The shares as the harness's boot() takes them (tags share0, share1, ...). */
  readonly shares: readonly HarnessShare[];
  /** The initramfs runs the guest agent (else commands go through the console's shell). */
  readonly agent: boolean;
  /** A runit-ts image with a shell on the console (false: the user's own initramfs). */
  readonly harness: boolean;
}

/** The root of the checkout this file is in (src/vm/ or dist/vm/ under it), if it is one. */
export function checkoutRoot(): string | undefined {
  const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
  return existsSync(join(root, 'Makefile')) && existsSync(join(root, 'image')) ? root : undefined;
}

/** The default image directory of an arch: $RUNIT_TS_VM_IMAGE, else the checkout's harness image, out/harness/ARCH. */
export function defaultImageDir(arch: Arch): string {
  const env = process.env[IMAGE_ENV];
  if (env !== undefined && env !== '') return env;
  const root = checkoutRoot();
  if (root === undefined) {
    throw new VmError('boot', `no harness image: give --image DIR (a directory made by 'make ${IMAGE_TARGET}' in a runit-ts checkout) or set ${IMAGE_ENV}`);
  }
  return join(root, 'out', 'harness', arch);
}

/** The kernel of an image directory: on x86_64 the extracted vmlinux when there (it boots faster under TCG). */
function imageKernel(dir: string, arch: Arch): string {
  const vmlinux = join(dir, 'vmlinux');
  return arch === 'x86_64' && existsSync(vmlinux) ? vmlinux : join(dir, 'vmlinuz');
}

/** The only VERSION folder of a lib/modules folder, if there is exactly one. */
function onlyVersion(modulesRoot: string): string | undefined {
  try {
    const vs = readdirSync(modulesRoot).filter((v) => existsSync(join(modulesRoot, v, 'kernel')));
    return vs.length === 1 ? join(modulesRoot, vs[0]!) : undefined;
  } catch {
    return undefined;
  }
}

/** A kernel's lib/modules/VERSION tree beside it: DIR/lib/modules/V, DIR/../lib/modules/V, DIR/modules/V. */
export function modulesBeside(kernel: string): string | undefined {
  const d = dirname(kernel);
  for (const root of [join(d, 'lib', 'modules'), join(d, '..', 'lib', 'modules'), join(d, 'modules')]) {
    const v = onlyVersion(root);
    if (v !== undefined) return resolve(v);
  }
  return undefined;
}

/** The modules of the pinned kernel the checkout's images are made with (scripts/setup's cache). */
function pinnedModules(arch: Arch): string | undefined {
  return onlyVersion(join(cacheDir(), `kernel-${arch}`, 'lib', 'modules'));
}

/** The cpio entries of the modules the harness loads, from a lib/modules/VERSION tree (built-in ones skipped). */
export function moduleEntries(modulesDir: string, arch: Arch, disk: boolean): Entry[] {
  const version = modulesDir.replace(/\/+$/, '').split('/').pop()!;
  const have = indexModules(modulesDir);
  const wanted = [...ARCH_MODULES[arch], ...HARNESS_MODULES, ...(disk ? DISK_MODULES : [])].filter((m) => have.has(m));
  const set = resolveModules(modulesDir, wanted);
  const base = `lib/modules/${version}`;
  return [
    ...set.files.map((f): Entry => ({ path: `${base}/${f}`, type: 'file', mode: 0o644, data: () => readFileSync(join(modulesDir, f)) })),
    { path: `${base}/modules.dep`, type: 'file', mode: 0o644, data: Buffer.from(set.dep) },
    { path: 'etc/modules', type: 'file', mode: 0o644, data: Buffer.from(wanted.map((m) => `${m}\n`).join('')) },
  ];
}

/** runit-ts-vm's folder under the system's temporary folder (logs, initramfs copies with modules, snapshots), made if missing. */
export function stateDir(...sub: string[]): string {
  const d = join(tmpdir(), `runit-ts-vm-${process.getuid?.() ?? 'user'}`, ...sub);
  mkdirSync(d, { recursive: true });
  return d;
}

/** The initramfs `initrd` with the modules of `modulesDir` appended as a second archive (cached by inputs). */
export function initrdWithModules(initrd: string, modulesDir: string, arch: Arch, disk: boolean): string {
  const st = statSync(initrd);
  const key = createHash('sha256').update(JSON.stringify([initrd, st.size, st.mtimeMs, modulesDir, statSync(modulesDir).mtimeMs, arch, disk])).digest('hex').slice(0, 16);
  const out = join(stateDir('initrd'), `${key}.img`);
  if (existsSync(out)) return out;
  const tmp = `${out}.tmp-${process.pid}`;
  copyFileSync(initrd, tmp);
  appendFileSync(tmp, cpioBuffer(moduleEntries(modulesDir, arch, disk)));
  renameSync(tmp, out);
  return out;
}

/** QEMU's name for a disk file's format: qcow2 by its magic, else raw. */
function diskFormat(file: string): 'raw' | 'qcow2' {
  const fd = openSync(file, 'r');
  try {
    const b = Buffer.alloc(4);
    readSync(fd, b, 0, 4, 0);
    return b.equals(Buffer.from([0x51, 0x46, 0x49, 0xfb])) ? 'qcow2' : 'raw';
  } finally {
    closeSync(fd);
  }
}

/** The shares as the harness's boot() takes them: tagged share0, share1, ... in order. */
export function harnessShares(shares: readonly Share[]): HarnessShare[] {
  return shares.map((s, i) => ({ host: s.host, tag: `share${i}`, readOnly: !s.rw }));
}

/** The name of the agent's run script in an uncompressed runit-ts initramfs (a cpio name, NUL-terminated). */
const AGENT_ENTRY = Buffer.from('etc/sv/agent/run\0');

/**
 * Whether an initramfs runs the guest agent (the harness image does; a compressed one counts
 * as not). The answer is kept in the state folder by path, size and mtime: reading a 100+ MiB
 * image each run would cost a restored VM a good part of its start.
 */
export function hasAgent(initrd: string): boolean {
  const st = statSync(initrd);
  const key = createHash('sha256').update(JSON.stringify([initrd, st.size, st.mtimeMs])).digest('hex').slice(0, 20);
  const memo = join(stateDir('agent-probe'), key);
  if (existsSync(memo)) return readFileSync(memo, 'utf8') === '1';
  const v = readFileSync(initrd).includes(AGENT_ENTRY);
  writeFileSync(memo, v ? '1' : '0');
  return v;
}

/**
 * Resolves what to boot. A user's kernel is checked against what the harness needs (its
 * config, when one is found) and gets its modules (--modules, or found beside it) appended.
 */
export function bootInputs(src: BootSource, shares: readonly Share[]): BootInputs {
  const arch = src.arch;
  const drives: Drive[] = src.disk !== undefined ? [{ file: src.disk, format: diskFormat(src.disk), snapshot: true }] : [];
  const hs = harnessShares(shares);
  if (src.kernel !== undefined && src.initrd !== undefined) {
    return { arch, kernel: src.kernel, initrd: src.initrd, append: kernelCmdline(arch), drives, shares: hs, agent: false, harness: false };
  }
  const dir = src.image ?? defaultImageDir(arch);
  const baseInitrd = join(dir, 'initramfs.img');
  if (!existsSync(baseInitrd)) {
    const how = src.image === undefined && checkoutRoot() !== undefined ? `build it with 'make ${IMAGE_TARGET} ARCH=${arch}'` : `it must hold initramfs.img, vmlinuz and cmdline`;
    throw new VmError('boot', `no harness image in ${dir}: ${how}`);
  }
  const append = existsSync(join(dir, 'cmdline')) ? readFileSync(join(dir, 'cmdline'), 'utf8').trim() : kernelCmdline(arch);
  let kernel = imageKernel(dir, arch);
  let modulesDir: string | undefined;
  if (src.kernel !== undefined) {
    kernel = src.kernel;
    modulesDir = src.modules ?? modulesBeside(kernel);
    const cfg = findKernelConfig(kernel);
    if (cfg !== undefined) {
      const missing = missingOptions(parseKconfig(cfg.text), arch, modulesDir);
      if (missing.length) throw new VmError('boot', `kernel ${kernel} lacks what the harness needs: ${missing.join(', ')} (config: ${cfg.path})`);
    }
  } else {
    if (!existsSync(kernel)) throw new VmError('boot', `no kernel in ${dir} (vmlinuz)`);
    // the harness image has its modules; a disk needs virtio_blk besides
    modulesDir = src.modules ?? (drives.length > 0 ? (modulesBeside(kernel) ?? pinnedModules(arch)) : undefined);
  }
  const initrd = modulesDir !== undefined ? initrdWithModules(baseInitrd, modulesDir, arch, drives.length > 0) : baseInitrd;
  return { arch, kernel, initrd, append, drives, shares: hs, agent: hasAgent(baseInitrd), harness: true };
}
