// The kernel beside each boot output (initramfs, disk, exedisk): vmlinuz copied from the
// pinned package and, on x86_64, the ELF vmlinux inside it, which QEMU boots through its
// PVH entry, skipping firmware and in-guest decompression (measured 3.6 s vs 9.4 s to
// stage 1, TCG); and which of the two a built directory is booted with.
import { copyFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { extractVmlinux } from '../../src/harness/kernel.ts';
import type { Arch } from '../../src/lib/platform.ts';
import type { ResolvedImage } from '../resolve.ts';

/** Write DIR/vmlinuz (and DIR/vmlinux on x86_64); the names written. */
export async function writeKernel(img: ResolvedImage, dir: string): Promise<string[]> {
  copyFileSync(img.kernel.image, join(dir, 'vmlinuz'));
  if (img.arch !== 'x86_64') return ['vmlinuz'];
  await extractVmlinux(join(dir, 'vmlinuz'), join(dir, 'vmlinux'));
  return ['vmlinuz', 'vmlinux'];
}

/** The kernel to boot from a built directory: on x86_64 the PVH vmlinux when present. */
export function bootKernel(dir: string, arch: Arch): string {
  const vmlinux = join(dir, 'vmlinux');
  return arch === 'x86_64' && existsSync(vmlinux) ? vmlinux : join(dir, 'vmlinuz');
}
