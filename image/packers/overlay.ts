// The overlay output: runit-ts for an EXISTING image, as one layer that adds a private
// directory and overwrites nothing of the image under it (glibc- or musl-based, or with
// no libc at all): the executable with glibc's loader and the libraries it links, run by
// a small static launcher (image/launch.c) through that loader, so the image's own
// libraries are neither used nor needed.
//
//   /opt/runit-ts/bin/launch             static launcher (out/<arch>/launch)
//   /opt/runit-ts/bin/<applet>           links to it: container-init (the entry point), sv, ...
//   /opt/runit-ts/lib/ld-linux-*.so.*    glibc's loader, libc, libm, libdl, libpthread,
//                                        libstdc++, libgcc_s (the pinned Debian packages)
//   /opt/runit-ts/lib/runit-ts(.node)    the executable and its addon
//   /run/runit-ts/                       container-init's state directory (sticky, world-
//                                        writable: any --user), the one path outside /opt/runit-ts
//
// Written as OUT/<arch>/overlay.tar (for ADD in a Containerfile) and OUT/<arch>/overlay-oci/
// (an OCI layout of one image holding just this layer, with container-init as its
// Entrypoint: `COPY --from=` it, or append its layer with an OCI tool).
import { basename, join } from 'node:path';
import { readFileSync } from 'node:fs';
import type { Entry } from '../../src/lib/entry.ts';
import { APPLET_LINKS, libEntries } from '../rootfs.ts';
import type { ResolvedImage } from '../resolve.ts';
import type { ResolvedSpec } from '../spec.ts';
import { DEFAULT_PATH, ociImage, type OciImage } from './oci.ts';
import { tarBuffer } from './tar.ts';

/** The private directory the overlay puts everything in. */
export const OVERLAY_PREFIX = 'opt/runit-ts';
/** The launcher's name in PREFIX/bin (the applet links point at it). */
export const LAUNCHER = 'launch';
/** The overlay image's entry point. */
export const OVERLAY_ENTRYPOINT = `/${OVERLAY_PREFIX}/bin/container-init`;
/** container-init's state directory: the overlay's one path outside the prefix. */
export const OVERLAY_STATE = 'run/runit-ts';
/** Applets of a booted system (PID 1 and its stages) that have no place in an overlay. */
const BOOT_APPLETS = new Set(['init', 'runit-init', '1', '2', '3', 'ctrlaltdel']);

/** The applets the overlay links in PREFIX/bin: every one of APPLET_LINKS but the boot stages. */
export function overlayApplets(): string[] {
  return [...new Set(Object.values(APPLET_LINKS))].filter((a) => !BOOT_APPLETS.has(a)).sort();
}

/** A file of the host as an entry of the overlay (read when packed), with a fixed mode: the build's umask must not reach the layer. */
function hostFile(path: string, src: string, mode: number): Entry {
  return { path, type: 'file', mode, data: () => readFileSync(src) };
}

/** Every entry of the overlay of an arch: the tree in this file's header, all owned by root. */
export function overlayEntries(img: ResolvedImage): Entry[] {
  const p = OVERLAY_PREFIX;
  const e: Entry[] = [
    { path: 'opt', type: 'dir', mode: 0o755 },
    { path: p, type: 'dir', mode: 0o755 },
    { path: `${p}/bin`, type: 'dir', mode: 0o755 },
    { path: `${p}/lib`, type: 'dir', mode: 0o755 },
    hostFile(`${p}/bin/${LAUNCHER}`, join(img.binDir, LAUNCHER), 0o755),
    ...overlayApplets().map((a): Entry => ({ path: `${p}/bin/${a}`, type: 'symlink', mode: 0o777, target: LAUNCHER })),
    hostFile(`${p}/lib/runit-ts`, join(img.binDir, 'runit-ts'), 0o755),
    hostFile(`${p}/lib/runit-ts.node`, join(img.binDir, 'runit-ts.node'), 0o755),
    { path: 'run', type: 'dir', mode: 0o755 },
    { path: OVERLAY_STATE, type: 'dir', mode: 0o1777 },
  ];
  // the libraries, flattened into PREFIX/lib (the loader's /lib64 or /lib link is not needed)
  for (const l of libEntries(img.arch)) {
    if (!/(^|\/)(usr\/)?lib\/[^/]+-linux-gnu\//.test(l.path)) continue;
    e.push(l.type === 'symlink' ? { ...l, path: `${p}/lib/${basename(l.path)}`, target: basename(l.target!) } : { ...l, path: `${p}/lib/${basename(l.path)}` });
  }
  return e;
}

/** The overlay of an arch: its layer tarball and the one-layer OCI image around it. */
export async function buildOverlay(spec: ResolvedSpec, img: ResolvedImage, epoch: number): Promise<{ tar: Buffer; image: OciImage }> {
  const tar = await tarBuffer(overlayEntries(img), epoch);
  const image = ociImage(
    {
      ...spec,
      env: { PATH: `/${OVERLAY_PREFIX}/bin:${DEFAULT_PATH}`, ...spec.env },
      container: { ...spec.container, entrypoint: [OVERLAY_ENTRYPOINT] },
    },
    img.arch,
    tar,
    epoch,
  );
  return { tar, image };
}
