// Build every output a spec asks for, for each of its arches, from one entry list per
// arch. Everything is made in a staging directory beside the destination and moved into
// place only when all of it succeeded, so a failure leaves no partial output behind.
//
//   OUT/<arch>/rootfs.tar         tar     rootfs tarball
//   OUT/<arch>/oci/               oci     OCI image layout (one image, tag = spec tag)
//   OUT/<arch>/image.tar          docker  docker-archive (podman load, docker load)
//   OUT/<arch>/sbom.spdx.json     any of tar/oci/docker: SPDX 2.3
//   OUT/<arch>/sbom.cdx.json      ...and CycloneDX 1.5
//   OUT/<arch>/initramfs.img ...  initramfs (with vmlinuz, cmdline; see build.ts)
//   OUT/oci/                      oci with several arches: the multi-arch layout
import { existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Arch } from './inputs.ts';
import { dockerArchive } from './packers/docker.ts';
import { ociImage, writeOciLayout, type OciImage } from './packers/oci.ts';
import { blobOf, sourceDateEpoch, tarBuffer } from './packers/tar.ts';
import { components, cyclonedx, spdx } from './sbom.ts';
import { missingBinary, specEntries, SpecError, type ResolvedSpec } from './spec.ts';

export interface BuildOptions {
  /** where OUT/<arch>/ goes */
  out: string;
  /** the binaries of an arch: binDir(arch)/{runit-ts,runit-ts.node,runit} */
  binDir: (arch: Arch) => string;
  /** initramfs compression (see build.ts) */
  compress?: import('./build.ts').Compression;
  say?: (m: string) => void;
}

const mib = (n: number) => `${(n / 1048576).toFixed(1)} MiB`;

/** Move staged files into place, replacing what was there. */
function install(stage: string, dest: string, names: string[]): void {
  mkdirSync(dest, { recursive: true });
  for (const n of names) {
    rmSync(join(dest, n), { recursive: true, force: true });
    renameSync(join(stage, n), join(dest, n));
  }
}

export async function buildOutputs(spec: ResolvedSpec, opts: BuildOptions): Promise<void> {
  const say = opts.say ?? ((m: string) => process.stderr.write(`[image] ${m}\n`));
  // everything checked before anything is written
  for (const arch of spec.arches) {
    const missing = missingBinary(opts.binDir(arch));
    if (missing) throw new SpecError(`${spec.file}: arch ${arch} is not built (${missing} is missing; run: make build ARCH=${arch})`);
  }
  const epoch = sourceDateEpoch();
  const stage = join(opts.out, `.staging-${process.pid}`);
  rmSync(stage, { recursive: true, force: true });
  const installs: Array<[string, string, string[]]> = [];
  try {
    const images: OciImage[] = [];
    const container = spec.outputs.some((o) => o !== 'initramfs' && o !== 'disk');
    for (const arch of spec.arches) {
      const t0 = Date.now();
      const dir = join(stage, arch);
      mkdirSync(dir, { recursive: true });
      const entries = specEntries(spec, arch, opts.binDir(arch));
      const names: string[] = [];
      if (spec.outputs.includes('initramfs')) {
        const { buildImage } = await import('./build.ts');
        await buildImage({ ...spec.image, arch }, dir, opts.compress ?? 'none', opts.binDir(arch), entries);
        names.push('initramfs.img', 'vmlinuz', 'cmdline', ...(arch === 'x86_64' ? ['vmlinux'] : []));
      }
      if (spec.outputs.includes('disk')) {
        const { buildDisk } = await import('./packers/disk.ts');
        await buildDisk({ ...spec.image, arch }, dir, opts.binDir(arch));
        const erofs = spec.image.disk?.rootfs === 'erofs';
        for (const n of ['disk.img', erofs ? 'root.erofs' : 'root.ext4', 'early.img', 'disk.cmdline', 'vmlinuz', ...(arch === 'x86_64' ? ['vmlinux'] : [])]) if (!names.includes(n)) names.push(n);
      }
      if (!container) {
        installs.push([dir, join(opts.out, arch), names]);
        continue;
      }
      say(`${arch}: packing ${entries.length} entries into a tarball`);
      const tar = await tarBuffer(entries, epoch);
      const rootfsSha = blobOf(tar).digest.slice('sha256:'.length);
      if (spec.outputs.includes('tar')) {
        writeFileSync(join(dir, 'rootfs.tar'), tar);
        names.push('rootfs.tar');
      }
      say(`${arch}: rootfs.tar ${mib(tar.length)} sha256:${rootfsSha.slice(0, 12)}; compressing the layer (${spec.compression})`);
      const im = ociImage(spec, arch, tar, epoch);
      images.push(im);
      if (spec.outputs.includes('oci')) {
        writeOciLayout(join(dir, 'oci'), [im], spec.tag);
        names.push('oci');
      }
      if (spec.outputs.includes('docker')) {
        writeFileSync(join(dir, 'image.tar'), await dockerArchive(im, `${spec.name}:${spec.tag}`, epoch));
        names.push('image.tar');
      }
      const info = { name: spec.name, tag: spec.tag, arch, rootfsSha256: rootfsSha, epoch, withKernel: spec.outputs.includes('initramfs'), services: [...(spec.image.services ?? []), ...(spec.image.single ?? [])] };
      const comps = components(info, opts.binDir(arch));
      writeFileSync(join(dir, 'sbom.spdx.json'), JSON.stringify(spdx(info, comps), null, 2) + '\n');
      writeFileSync(join(dir, 'sbom.cdx.json'), JSON.stringify(cyclonedx(info, comps), null, 2) + '\n');
      names.push('sbom.spdx.json', 'sbom.cdx.json');
      say(`${arch}: layer ${mib(im.layer.size)} (${im.layer.digest.slice(0, 19)}), manifest ${im.manifest.digest.slice(0, 19)}, ${comps.length} SBOM components, ${((Date.now() - t0) / 1000).toFixed(1)} s`);
      installs.push([dir, join(opts.out, arch), names]);
    }
    if (spec.outputs.includes('oci') && images.length > 1) {
      writeOciLayout(join(stage, 'oci'), images, spec.tag);
      installs.push([stage, opts.out, ['oci']]);
      say(`multi-arch layout: ${images.map((i) => i.arch).join(' + ')} (tags ${spec.tag}, ${images.map((i) => `${spec.tag}-${i.descriptor.platform!.architecture}`).join(', ')})`);
    }
    for (const [from, to, names] of installs) install(from, to, names);
  } finally {
    if (existsSync(stage)) rmSync(stage, { recursive: true, force: true });
  }
}
