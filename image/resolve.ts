// The resolved image of one arch: the one entry list every output of a spec is made from,
// with what the packers need besides (the kernel, the command line words, the disk
// settings, the built binaries). The spec (image/spec.ts) resolves once per arch to this
// (mkosi's model: one resolved config per image, taken by every output step); the packers
// (image/packers/) take it and never compute their own view of the tree.
//
//   spec.ts (spec file -> ResolvedSpec) -> resolve.ts (per arch: ResolvedImage)
//     -> packers/{initramfs,disk,exedisk,tar,oci,docker}.ts, driven by outputs.ts
import type { Arch } from '../src/lib/platform.ts';
import type { Entry } from '../src/lib/entry.ts';
import { requireInput } from './inputs.ts';
import { DEFAULT_SERVICES, imageModules, kernelImage, kernelModulesDir, kernelRelease, rootfs, SINGLE_SERVICES, type DiskSpec, type ImageSpec } from './rootfs.ts';

/** The pinned kernel an image boots: its image file, release and module tree. */
export interface KernelFiles {
  /** the unpacked kernel package */
  dir: string;
  /** vmlinuz (bzImage on x86_64, Image on aarch64) */
  image: string;
  release: string;
  /** lib/modules/RELEASE of the kernel package */
  modulesDir: string;
}

export interface ResolvedImage {
  arch: Arch;
  /** every file of the image: the system, users, groups and the spec's files (image/rootfs.ts) */
  entries: Entry[];
  /** /etc/hostname; the disk's partition and file system ids derive from it too */
  hostname?: string;
  /** the spec's extra kernel command line words (each boot output adds its own) */
  cmdline?: string;
  /** the disk output's settings (size, ESP, root file system) */
  disk?: DiskSpec;
  kernel: KernelFiles;
  /** the kernel modules stage 1 loads (in the entries with their dependencies) */
  modules: string[];
  /** the catalogue's services in the image, both runlevels (the SBOM: sshd brings tinysshd) */
  services: string[];
  /** the built binaries of the arch: runit-ts, runit-ts.node, runit, early */
  binDir: string;
}

/** Resolve an image spec of one arch with the binaries of `binDir` (and a Debian base's entries): what every packer takes. */
export function resolveImage(spec: ImageSpec, binDir: string, base?: Entry[]): ResolvedImage {
  const { arch } = spec;
  return {
    arch,
    entries: rootfs(spec, binDir, base),
    ...(spec.hostname !== undefined ? { hostname: spec.hostname } : {}),
    ...(spec.cmdline !== undefined ? { cmdline: spec.cmdline } : {}),
    ...(spec.disk !== undefined ? { disk: spec.disk } : {}),
    kernel: { dir: requireInput(`kernel-${arch}`), image: kernelImage(arch), release: kernelRelease(arch), modulesDir: kernelModulesDir(arch) },
    modules: imageModules(spec),
    services: [...new Set([...(spec.services ?? DEFAULT_SERVICES), ...(spec.single ?? SINGLE_SERVICES)])],
    binDir,
  };
}
