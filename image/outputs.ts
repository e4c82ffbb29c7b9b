// Build every output a spec asks for, for each of its arches: the spec resolves once per
// arch to one ResolvedImage (image/resolve.ts) and each output's packer is handed it, so
// every output of a spec carries the same entries. Everything is made in a staging
// directory beside the destination and moved into place only when all of it succeeded,
// so a failure leaves no partial output behind.
//
//   OUT/<arch>/initramfs.img ...  initramfs  with vmlinuz (x86_64: vmlinux) and cmdline
//   OUT/<arch>/disk.img ...       disk       GPT disk, root.ext4 (or root.erofs), early.img, disk.cmdline
//   OUT/<arch>/exedisk.img ...    exedisk    exe.erofs, exedisk.cmdline (x86_64: exedisk-pmem.cmdline)
//   OUT/<arch>/rootfs.tar         tar        rootfs tarball
//   OUT/<arch>/oci/               oci        OCI image layout (one image, tag = spec tag)
//   OUT/<arch>/image.tar          docker     docker-archive (podman load, docker load)
//   OUT/<arch>/overlay.tar        overlay    runit-ts for an existing image: one layer (packers/overlay.ts)
//   OUT/<arch>/overlay-oci/       overlay    ...as a one-layer OCI image layout (tag = spec tag)
//   OUT/<arch>/overlay.spdx.json  overlay    its SBOMs (SPDX 2.3, CycloneDX 1.5)
//   OUT/<arch>/overlay.cdx.json
//   OUT/<arch>/sbom.spdx.json     every output but overlay: SPDX 2.3 of the root file system
//   OUT/<arch>/sbom.cdx.json      ...and CycloneDX 1.5 (Debian base: every locked package)
//   OUT/oci/                      oci with several arches: the multi-arch layout
import { existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Arch } from '../src/lib/platform.ts';
import type { Entry } from '../src/lib/entry.ts';
import { sourceDateEpoch } from './epoch.ts';
import { mib, say as sayImage } from './log.ts';
import { buildDisk, obsoleteRoot } from './packers/disk.ts';
import { dockerArchive } from './packers/docker.ts';
import { buildExeDisk } from './packers/exedisk.ts';
import { buildInitramfs, type Compression } from './packers/initramfs.ts';
import { ociImage, writeOciLayout, type OciImage } from './packers/oci.ts';
import { buildOverlay } from './packers/overlay.ts';
import { blobOf, tarBuffer } from './packers/tar.ts';
import { resolveImage } from './resolve.ts';
import { components, cyclonedx, spdx } from './sbom.ts';
import { debianEntries, readLock } from './debian/image.ts';
import type { LockedPackage } from './debian/lock.ts';
import { BOOT_OUTPUTS, missingBinary, SpecError, type ResolvedSpec } from './spec.ts';

export interface BuildOptions {
  /** where OUT/<arch>/ goes */
  out: string;
  /** the binaries of an arch: binDir(arch)/{runit-ts,runit-ts.node,runit,early} */
  binDir: (arch: Arch) => string;
  /** initramfs compression (packers/initramfs.ts) */
  compress?: Compression;
  say?: (m: string) => void;
}

/** Move staged files into place, replacing what was there (and removing `obsolete` names). */
function install(stage: string, dest: string, names: string[], obsolete: string[] = []): void {
  mkdirSync(dest, { recursive: true });
  for (const n of obsolete) rmSync(join(dest, n), { recursive: true, force: true });
  for (const n of names) {
    rmSync(join(dest, n), { recursive: true, force: true });
    renameSync(join(stage, n), join(dest, n));
  }
}

/** Build every output of `spec` for each of its arches into opts.out (all or nothing). */
export async function buildOutputs(spec: ResolvedSpec, opts: BuildOptions): Promise<void> {
  const say = opts.say ?? sayImage;
  // everything checked before anything is written
  for (const arch of spec.arches) {
    const missing = missingBinary(opts.binDir(arch), spec.outputs);
    if (missing) throw new SpecError(`${spec.file}: arch ${arch} is not built (${missing} is missing; run: make build ARCH=${arch}${/\/(early|launch)$/.test(missing) ? ` and make ${missing.slice(missing.lastIndexOf('out/'))}` : ''})`);
  }
  // a Debian base's lock is checked for every arch before anything is built
  const lock = spec.debian ? readLock(spec.file, spec.debian, spec.arches) : undefined;
  const epoch = sourceDateEpoch();
  const stage = join(opts.out, `.staging-${process.pid}`);
  rmSync(stage, { recursive: true, force: true });
  const installs: Array<[string, string, string[], string[]]> = [];
  const wants = (o: (typeof spec.outputs)[number]) => spec.outputs.includes(o);
  try {
    const images: OciImage[] = [];
    for (const arch of spec.arches) {
      const t0 = Date.now();
      const dir = join(stage, arch);
      mkdirSync(dir, { recursive: true });
      let debian: { entries: Entry[]; packages: LockedPackage[] } | undefined;
      if (spec.debian && lock) debian = await debianEntries(spec.file, spec.debian, lock, arch, opts.binDir(arch), say);
      // the one view of the tree every output below takes
      const img = resolveImage({ ...spec.image, arch }, opts.binDir(arch), debian?.entries);
      const names = new Set<string>();
      const obsolete: string[] = [];
      if (wants('initramfs')) for (const n of await buildInitramfs(img, dir, opts.compress ?? 'none')) names.add(n);
      if (wants('disk')) {
        for (const n of await buildDisk(img, dir)) names.add(n);
        obsolete.push(obsoleteRoot(img));
      }
      if (wants('exedisk')) for (const n of await buildExeDisk(img, dir)) names.add(n);
      if (wants('overlay')) {
        const { tar, image } = await buildOverlay(spec, img, epoch);
        writeFileSync(join(dir, 'overlay.tar'), tar);
        writeOciLayout(join(dir, 'overlay-oci'), [image], spec.tag);
        const info = { name: spec.name, tag: spec.tag, arch, rootfsSha256: image.diffId.slice('sha256:'.length), epoch, withKernel: false, overlay: true };
        const comps = await components(info, img.binDir);
        writeFileSync(join(dir, 'overlay.spdx.json'), JSON.stringify(spdx(info, comps), null, 2) + '\n');
        writeFileSync(join(dir, 'overlay.cdx.json'), JSON.stringify(cyclonedx(info, comps), null, 2) + '\n');
        names.add('overlay.tar').add('overlay-oci').add('overlay.spdx.json').add('overlay.cdx.json');
        say(`${arch}: overlay.tar ${mib(tar.length)}, layer ${mib(image.layer.size)} (${spec.compression})`);
      }
      // every output but the overlay is this root file system: the tarball is the container
      // layer and what the SBOM's checksum names (boot outputs get the SBOM too)
      const rootOutputs = spec.outputs.filter((o) => o !== 'overlay');
      if (rootOutputs.length) {
        say(`${arch}: packing ${img.entries.length} entries into a tarball`);
        const tar = await tarBuffer(img.entries, epoch);
        const rootfsSha = blobOf(tar).digest.slice('sha256:'.length);
        if (wants('tar')) {
          writeFileSync(join(dir, 'rootfs.tar'), tar);
          names.add('rootfs.tar');
        }
        if (wants('oci') || wants('docker')) {
          say(`${arch}: rootfs.tar ${mib(tar.length)} sha256:${rootfsSha.slice(0, 12)}; compressing the layer (${spec.compression})`);
          const im = ociImage(spec, arch, tar, epoch);
          images.push(im);
          if (wants('oci')) {
            writeOciLayout(join(dir, 'oci'), [im], spec.tag);
            names.add('oci');
          }
          if (wants('docker')) {
            writeFileSync(join(dir, 'image.tar'), await dockerArchive(im, `${spec.name}:${spec.tag}`, epoch));
            names.add('image.tar');
          }
          say(`${arch}: layer ${mib(im.layer.size)} (${im.layer.digest.slice(0, 19)}), manifest ${im.manifest.digest.slice(0, 19)}`);
        }
        const info = {
          name: spec.name,
          tag: spec.tag,
          arch,
          rootfsSha256: rootfsSha,
          epoch,
          withKernel: spec.outputs.some((o) => BOOT_OUTPUTS.includes(o)),
          services: img.services,
          outputs: rootOutputs,
          ...(debian ? { debian: debian.packages } : {}),
        };
        const comps = await components(info, img.binDir);
        writeFileSync(join(dir, 'sbom.spdx.json'), JSON.stringify(spdx(info, comps), null, 2) + '\n');
        writeFileSync(join(dir, 'sbom.cdx.json'), JSON.stringify(cyclonedx(info, comps), null, 2) + '\n');
        names.add('sbom.spdx.json').add('sbom.cdx.json');
        say(`${arch}: ${comps.length} SBOM components, ${((Date.now() - t0) / 1000).toFixed(1)} s`);
      }
      installs.push([dir, join(opts.out, arch), [...names], obsolete]);
    }
    if (wants('oci') && images.length > 1) {
      writeOciLayout(join(stage, 'oci'), images, spec.tag);
      installs.push([stage, opts.out, ['oci'], []]);
      say(`multi-arch layout: ${images.map((i) => i.arch).join(' + ')} (tags ${spec.tag}, ${images.map((i) => `${spec.tag}-${i.descriptor.platform!.architecture}`).join(', ')})`);
    }
    for (const [from, to, names, obsolete] of installs) install(from, to, names, obsolete);
  } finally {
    if (existsSync(stage)) rmSync(stage, { recursive: true, force: true });
  }
}
