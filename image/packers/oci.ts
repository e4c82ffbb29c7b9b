// OCI image layout (image-spec 1.0): oci-layout, index.json, blobs/sha256/<hex> for the
// layer, the config and the manifest of each arch; with several arches an image index
// too. One layer per image: the rootfs tarball, gzip-compressed with fflate (pure
// JavaScript, so the bytes do not depend on the machine's zlib; header mtime 0),
// zstd-compressed by the pinned Node's zlib (its bundled libzstd: the bytes depend on
// the Node version only; one thread, fixed level, content size and checksum in the
// frame), or left uncompressed.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { constants as zlib, zstdCompressSync } from 'node:zlib';
import { gzipSync } from 'fflate';
import type { Arch } from '../inputs.ts';
import type { LayerCompression, ResolvedSpec } from '../spec.ts';
import { blobOf, type Blob } from './tar.ts';

export const OCI_ARCH: Record<Arch, { architecture: string; variant?: string }> = {
  x86_64: { architecture: 'amd64' },
  aarch64: { architecture: 'arm64', variant: 'v8' },
};
export const MT = {
  index: 'application/vnd.oci.image.index.v1+json',
  manifest: 'application/vnd.oci.image.manifest.v1+json',
  config: 'application/vnd.oci.image.config.v1+json',
  layer: 'application/vnd.oci.image.layer.v1.tar',
  layerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  layerZstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
} as const;
/** Each compression's layer media type. */
const LAYER_MT: Record<LayerCompression, string> = { gzip: MT.layerGzip, zstd: MT.layerZstd, none: MT.layer };
/**
 * zstd level (1-19): 10 makes a ~100 MiB rootfs about 17% smaller than gzip -9 in a few
 * seconds; 19 saves 4 MiB more but takes ~25x as long (figures: docs/performance.md).
 */
export const ZSTD_LEVEL = 10;
export const REF_NAME = 'org.opencontainers.image.ref.name';

const json = (v: unknown) => Buffer.from(JSON.stringify(v));
/** The image's PATH when the spec's env sets none. */
export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: { architecture: string; os: string; variant?: string };
  annotations?: Record<string, string>;
}

/** One arch's image: its blobs and the manifest descriptor that names them. */
export interface OciImage {
  arch: Arch;
  layer: Blob;
  /** sha256 of the uncompressed layer (the rootfs tarball) */
  diffId: string;
  config: Blob;
  manifest: Blob;
  descriptor: Descriptor;
}

/** The layer blob of a tarball, compressed as the spec says. */
export function compressLayer(tar: Buffer, how: LayerCompression): Blob {
  if (how === 'none') return blobOf(tar);
  if (how === 'zstd')
    return blobOf(zstdCompressSync(tar, { params: { [zlib.ZSTD_c_compressionLevel]: ZSTD_LEVEL, [zlib.ZSTD_c_checksumFlag]: 1, [zlib.ZSTD_c_contentSizeFlag]: 1, [zlib.ZSTD_c_nbWorkers]: 0 } }));
  return blobOf(Buffer.from(gzipSync(tar, { level: 9, mtime: 0 })));
}

export function imageConfig(spec: ResolvedSpec, arch: Arch, diffId: string, epoch: number): Record<string, unknown> {
  const created = new Date(epoch * 1000).toISOString().replace(/\.000Z$/, 'Z');
  const c = spec.container;
  // SVDIR: where container-init supervises (its default state directory), for sv in podman exec
  const env = { PATH: DEFAULT_PATH, SVDIR: '/run/runit-ts/service', ...spec.env };
  const config: Record<string, unknown> = {
    Env: Object.entries(env).map(([k, v]) => `${k}=${v}`),
    Entrypoint: c.entrypoint,
  };
  if (c.cmd.length) config.Cmd = c.cmd;
  if (c.user !== undefined) config.User = c.user;
  config.WorkingDir = c.workdir;
  if (c.ports?.length) config.ExposedPorts = Object.fromEntries(c.ports.map((p) => [p.includes('/') ? p : `${p}/tcp`, {}]));
  config.Labels = { 'org.opencontainers.image.title': spec.name, ...(c.labels ?? {}) };
  config.StopSignal = c.stopSignal;
  return {
    created,
    architecture: OCI_ARCH[arch].architecture,
    ...(OCI_ARCH[arch].variant ? { variant: OCI_ARCH[arch].variant } : {}),
    os: 'linux',
    config,
    rootfs: { type: 'layers', diff_ids: [diffId] },
    history: [{ created, created_by: 'runit-ts-image build', comment: `runit-ts base image (${arch})` }],
  };
}

export function ociImage(spec: ResolvedSpec, arch: Arch, tar: Buffer, epoch: number): OciImage {
  const diffId = blobOf(tar).digest;
  const layer = compressLayer(tar, spec.compression);
  const config = blobOf(json(imageConfig(spec, arch, diffId, epoch)));
  const manifest = blobOf(
    json({
      schemaVersion: 2,
      mediaType: MT.manifest,
      config: { mediaType: MT.config, digest: config.digest, size: config.size },
      layers: [{ mediaType: LAYER_MT[spec.compression], digest: layer.digest, size: layer.size }],
    }),
  );
  const { architecture, variant } = OCI_ARCH[arch];
  return {
    arch,
    layer,
    diffId,
    config,
    manifest,
    descriptor: { mediaType: MT.manifest, digest: manifest.digest, size: manifest.size, platform: { architecture, os: 'linux', ...(variant ? { variant } : {}) } },
  };
}

function writeBlob(dir: string, b: Blob): void {
  writeFileSync(join(dir, 'blobs', 'sha256', b.digest.slice('sha256:'.length)), b.data);
}

/**
 * Write a layout to `dir` (must not exist yet). One image: index.json names its
 * manifest, tagged `tag`. Several: an image index tagged `tag`, and each manifest
 * tagged `tag-<architecture>` as well (umoci and `skopeo oci:DIR:tag` need one
 * manifest per name).
 */
export function writeOciLayout(dir: string, images: OciImage[], tag: string): void {
  mkdirSync(join(dir, 'blobs', 'sha256'), { recursive: true });
  writeFileSync(join(dir, 'oci-layout'), json({ imageLayoutVersion: '1.0.0' }));
  for (const im of images) for (const b of [im.layer, im.config, im.manifest]) writeBlob(dir, b);
  let manifests: Descriptor[];
  if (images.length === 1) manifests = [{ ...images[0]!.descriptor, annotations: { [REF_NAME]: tag } }];
  else {
    const index = blobOf(json({ schemaVersion: 2, mediaType: MT.index, manifests: images.map((im) => im.descriptor) }));
    writeBlob(dir, index);
    manifests = [
      { mediaType: MT.index, digest: index.digest, size: index.size, annotations: { [REF_NAME]: tag } },
      ...images.map((im) => ({ ...im.descriptor, annotations: { [REF_NAME]: `${tag}-${im.descriptor.platform!.architecture}` } })),
    ];
  }
  writeFileSync(join(dir, 'index.json'), json({ schemaVersion: 2, mediaType: MT.index, manifests }));
}
