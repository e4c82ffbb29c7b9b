// Software bill of materials of an image, as SPDX 2.3 JSON and CycloneDX 1.5 JSON: the
// pinned inputs that went into it (image/inputs.json: Debian packages and the Node
// runtime, with their sha256), on a Debian base every package of its lock (version,
// purl, licenses and the .deb's sha256), the npm packages esbuild bundled into the executable
// (out/bundle/meta.json, versions from their package.json, hashes from package-lock's
// integrity), and the files we build (executable, addon, PID 1 shim) with their sha256.
// Both documents are deterministic: times from SOURCE_DATE_EPOCH, ids from digests.
// Written directly (two plain JSON shapes); test/unit/sbom.test.ts checks them against
// the official schemas.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileSha256, loadManifest, repoRoot, type Input } from './inputs.ts';
import { DEB_ARCH, type Arch } from '../src/lib/platform.ts';
import type { LockedPackage } from './debian/lock.ts';

export interface Component {
  /** stable id, also used for SPDXRef-/bom-ref */
  ref: string;
  name: string;
  version: string;
  type: 'library' | 'application' | 'operating-system' | 'file';
  purl?: string;
  sha256?: string;
  sha512?: string;
  description: string;
  /** Debian's license names of the package (copyright file), when known */
  licenses?: string[];
}

export interface ImageInfo {
  name: string;
  tag: string;
  arch: Arch;
  /** sha256 (hex) of the rootfs tarball */
  rootfsSha256: string;
  epoch: number;
  /** the image contains a kernel (initramfs output) */
  withKernel: boolean;
  /** services of the catalogue in the image (sshd brings tinysshd) */
  services?: string[];
  /** the overlay output (packers/overlay.ts): the executable, its libraries and the launcher, no busybox, no PID 1 shim */
  overlay?: boolean;
  /** a Debian base: its locked packages (they replace busybox and the pinned libraries) */
  debian?: LockedPackage[];
  /** the outputs the document describes (each made from the same root file system) */
  outputs?: string[];
}

const enc = (s: string) => encodeURIComponent(s).replace(/%2F/g, '/');

export function purlOf(i: Input): string {
  if (i.kind === 'deb') return `pkg:deb/debian/${enc(i.package)}@${encodeURIComponent(i.version)}?arch=${i.arch}`;
  return npmPurl(i.package, i.version);
}

function npmPurl(name: string, version: string): string {
  return `pkg:npm/${name.startsWith('@') ? '%40' + name.slice(1) : name}@${encodeURIComponent(version)}`;
}

/** The inputs of image/inputs.json that end up in an image of `arch` (or in its overlay layer). */
export function imageInputs(arch: Arch, withKernel: boolean, services: string[] = [], overlay = false, debian = false): Input[] {
  const system = debian ? [] : [...(overlay ? [] : ['busybox']), 'libc6', 'libstdcxx', 'libgcc'];
  const used = ['node', ...system, ...(withKernel ? ['kernel'] : []), ...(services.includes('sshd') ? ['tinysshd'] : [])];
  return loadManifest().inputs.filter((i) => used.some((u) => i.id === `${u}-${arch}`));
}

/** npm packages esbuild put into the bundle, from its metafile. */
export function bundledPackages(metaFile = join(repoRoot, 'out', 'bundle', 'meta.json')): Component[] {
  if (!existsSync(metaFile)) throw new Error(`${metaFile} is missing: run make build first`);
  const meta = JSON.parse(readFileSync(metaFile, 'utf8')) as { inputs: Record<string, unknown> };
  const lock = JSON.parse(readFileSync(join(repoRoot, 'package-lock.json'), 'utf8')) as { packages: Record<string, { version?: string; integrity?: string }> };
  const names = new Set<string>();
  for (const path of Object.keys(meta.inputs)) {
    const m = /(?:^|\/)node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(path);
    if (m) names.add(m[1]!);
  }
  return [...names].sort().map((name) => {
    const pj = JSON.parse(readFileSync(join(repoRoot, 'node_modules', name, 'package.json'), 'utf8')) as { version: string };
    const integrity = lock.packages[`node_modules/${name}`]?.integrity;
    const sha512 = integrity?.startsWith('sha512-') ? Buffer.from(integrity.slice(7), 'base64').toString('hex') : undefined;
    return { ref: `npm-${name.replace(/[^A-Za-z0-9.-]/g, '-')}`, name, version: pj.version, type: 'library', purl: npmPurl(name, pj.version), sha512, description: 'npm package bundled into the runit-ts executable' };
  });
}

/** The package URL of a Debian package of a lock (Debian 12). */
export function debianPurl(p: Pick<LockedPackage, 'name' | 'version' | 'arch'>): string {
  return `pkg:deb/debian/${enc(p.name)}@${encodeURIComponent(p.version)}?arch=${p.arch}&distro=debian-12`;
}

/** Debian's short license names (copyright-format 1.0) as SPDX license ids, where there is one. */
const SPDX_OF_DEBIAN: Record<string, string> = {
  'GPL-1': 'GPL-1.0-only', 'GPL-1+': 'GPL-1.0-or-later', 'GPL-2': 'GPL-2.0-only', 'GPL-2+': 'GPL-2.0-or-later', 'GPL-3': 'GPL-3.0-only', 'GPL-3+': 'GPL-3.0-or-later',
  'LGPL-2': 'LGPL-2.0-only', 'LGPL-2+': 'LGPL-2.0-or-later', 'LGPL-2.1': 'LGPL-2.1-only', 'LGPL-2.1+': 'LGPL-2.1-or-later', 'LGPL-3': 'LGPL-3.0-only', 'LGPL-3+': 'LGPL-3.0-or-later',
  'AGPL-3': 'AGPL-3.0-only', 'AGPL-3+': 'AGPL-3.0-or-later', 'GFDL-1.2': 'GFDL-1.2-only', 'GFDL-1.2+': 'GFDL-1.2-or-later', 'GFDL-1.3': 'GFDL-1.3-only', 'GFDL-1.3+': 'GFDL-1.3-or-later',
  'BSD-2-clause': 'BSD-2-Clause', 'BSD-3-clause': 'BSD-3-Clause', 'BSD-4-clause': 'BSD-4-Clause', Expat: 'MIT', MIT: 'MIT', ISC: 'ISC', Zlib: 'Zlib', zlib: 'Zlib',
  'Apache-2.0': 'Apache-2.0', 'MPL-1.1': 'MPL-1.1', 'MPL-2.0': 'MPL-2.0', 'CC0-1.0': 'CC0-1.0', 'CC0': 'CC0-1.0', Artistic: 'Artistic-1.0-Perl', 'Artistic-2.0': 'Artistic-2.0',
  'PSF-2': 'PSF-2.0', OpenSSL: 'OpenSSL', curl: 'curl', 'X11': 'X11', BSL: 'BSL-1.0', 'BSL-1.0': 'BSL-1.0', 'Unicode-DFS-2016': 'Unicode-DFS-2016', 'WTFPL': 'WTFPL',
};

/** A Debian license line ("GPL-2+ or Artistic") as an SPDX expression, or undefined if a part has no SPDX id. */
export function spdxExpression(debian: string): string | undefined {
  const parts = debian.trim().split(/\s+(or|and)\s+/i);
  const out: string[] = [];
  for (let i = 0; i < parts.length; i++) {
    if (i % 2) out.push(parts[i]!.toUpperCase());
    else {
      const id = SPDX_OF_DEBIAN[parts[i]!.replace(/,$/, '')];
      if (!id) return undefined;
      out.push(id);
    }
  }
  return out.length > 1 ? `(${out.join(' ')})` : out[0];
}

/** A package's licenses as one SPDX expression (every one, AND), or NOASSERTION when one has no SPDX id. */
export function declaredLicense(licenses: string[] | undefined): string {
  if (!licenses?.length) return 'NOASSERTION';
  const exprs = licenses.map(spdxExpression);
  if (exprs.some((e) => e === undefined)) return 'NOASSERTION';
  const uniq = [...new Set(exprs as string[])];
  return uniq.length === 1 ? uniq[0]!.replace(/^\((.*)\)$/, '$1') : uniq.join(' AND ');
}

/** Every component of an image's SBOM: pinned inputs, the files we build (hashed as streamed), the lock's packages, the bundle's npm packages. */
export async function components(info: ImageInfo, binDir: string): Promise<Component[]> {
  const version = (JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { version: string }).version;
  const out: Component[] = imageInputs(info.arch, info.withKernel, info.services, info.overlay, info.debian !== undefined).map((i) => ({
    ref: `input-${i.id}`,
    name: i.package,
    version: i.version,
    type: i.id.startsWith('kernel') ? 'operating-system' : i.kind === 'npm' ? 'application' : 'library',
    purl: purlOf(i),
    sha256: i.sha256,
    description: i.kind === 'deb' ? `Debian package (${i.arch}), pinned input ${i.id}` : `npm package, pinned input ${i.id} (the Node runtime of the executable)`,
  }));
  const built: Array<[string, string, string]> = [
    ['runit-ts', 'runit-ts', 'the runit-ts single executable (Node runtime + bundled TypeScript)'],
    ['runit-ts.node', 'runit-ts-addon', 'the runit-ts Node-API addon'],
    info.overlay ? ['launch', 'runit-ts-launch', "the overlay's launcher (runs the executable through its own loader)"] : ['runit', 'runit-ts-pid1', 'the PID 1 shim of bootable images'],
  ];
  for (const [file, name, description] of built)
    out.push({ ref: `built-${name}`, name, version, type: 'file', sha256: await fileSha256(join(binDir, file)), description: `${description} (${DEB_ARCH[info.arch]})` });
  for (const p of info.debian ?? [])
    out.push({ ref: `deb-${p.name}-${p.arch}`, name: p.name, version: p.version, type: 'library', purl: debianPurl(p), sha256: p.sha256, licenses: p.licenses, description: `Debian package (${p.arch}, source ${p.source}) of the lock, ${p.url}` });
  out.push(...bundledPackages());
  return out;
}

const iso = (epoch: number) => new Date(epoch * 1000).toISOString().replace(/\.000Z$/, 'Z');

/** A UUID (version 5 layout) derived from a digest, so the serial number is reproducible. */
function uuidFrom(hex: string): string {
  const h = createHash('sha1').update(hex).digest('hex').split('');
  h[12] = '5';
  h[16] = ((parseInt(h[16]!, 16) & 0x3) | 0x8).toString(16);
  const s = h.join('');
  return `${s.slice(0, 8)}-${s.slice(8, 12)}-${s.slice(12, 16)}-${s.slice(16, 20)}-${s.slice(20, 32)}`;
}

export function spdx(info: ImageInfo, comps: Component[]): Record<string, unknown> {
  const imageId = 'SPDXRef-Image';
  const spdxId = (c: Component) => `SPDXRef-${c.ref.replace(/[^A-Za-z0-9.-]/g, '-')}`;
  const pkg = (c: Component) => ({
    SPDXID: spdxId(c),
    name: c.name,
    versionInfo: c.version,
    downloadLocation: 'NOASSERTION',
    filesAnalyzed: false,
    ...(c.sha256 || c.sha512
      ? { checksums: [...(c.sha256 ? [{ algorithm: 'SHA256', checksumValue: c.sha256 }] : []), ...(c.sha512 ? [{ algorithm: 'SHA512', checksumValue: c.sha512 }] : [])] }
      : {}),
    licenseConcluded: 'NOASSERTION',
    licenseDeclared: declaredLicense(c.licenses),
    ...(c.licenses?.length ? { licenseComments: `Debian copyright file: ${c.licenses.join('; ')}` } : {}),
    copyrightText: 'NOASSERTION',
    description: c.description,
    ...(c.purl ? { externalRefs: [{ referenceCategory: 'PACKAGE-MANAGER', referenceType: 'purl', referenceLocator: c.purl }] } : {}),
    primaryPackagePurpose: c.type === 'operating-system' ? 'OPERATING_SYSTEM' : c.type === 'file' ? 'FILE' : c.type === 'application' ? 'APPLICATION' : 'LIBRARY',
  });
  const image = {
    SPDXID: imageId,
    name: info.name,
    versionInfo: info.tag,
    downloadLocation: 'NOASSERTION',
    filesAnalyzed: false,
    checksums: [{ algorithm: 'SHA256', checksumValue: info.rootfsSha256 }],
    licenseConcluded: 'NOASSERTION',
    licenseDeclared: 'NOASSERTION',
    copyrightText: 'NOASSERTION',
    description: `runit-ts image for ${DEB_ARCH[info.arch]}${info.outputs ? ` (${info.outputs.join(', ')})` : ''} (checksum: its root file system as a tarball, rootfs.tar)`,
    primaryPackagePurpose: info.outputs && !info.outputs.some((o) => ['tar', 'oci', 'docker', 'overlay'].includes(o)) ? 'OPERATING_SYSTEM' : 'CONTAINER',
  };
  return {
    spdxVersion: 'SPDX-2.3',
    dataLicense: 'CC0-1.0',
    SPDXID: 'SPDXRef-DOCUMENT',
    name: `${info.name}-${info.tag}-${DEB_ARCH[info.arch]}`,
    documentNamespace: `https://spdx.org/spdxdocs/runit-ts/${info.name}-${info.tag}-${DEB_ARCH[info.arch]}-${info.rootfsSha256}`,
    creationInfo: { created: iso(info.epoch), creators: ['Tool: runit-ts-image'] },
    documentDescribes: [imageId],
    packages: [image, ...comps.map(pkg)],
    relationships: [
      { spdxElementId: 'SPDXRef-DOCUMENT', relationshipType: 'DESCRIBES', relatedSpdxElement: imageId },
      ...comps.map((c) => ({ spdxElementId: imageId, relationshipType: 'CONTAINS', relatedSpdxElement: spdxId(c) })),
    ],
  };
}

export function cyclonedx(info: ImageInfo, comps: Component[]): Record<string, unknown> {
  const imageRef = `image-${info.name}-${info.tag}-${DEB_ARCH[info.arch]}`;
  return {
    bomFormat: 'CycloneDX',
    specVersion: '1.5',
    serialNumber: `urn:uuid:${uuidFrom(info.rootfsSha256 + info.arch)}`,
    version: 1,
    metadata: {
      timestamp: iso(info.epoch),
      tools: { components: [{ type: 'application', name: 'runit-ts-image' }] },
      component: {
        type: 'container',
        'bom-ref': imageRef,
        name: info.name,
        version: info.tag,
        hashes: [{ alg: 'SHA-256', content: info.rootfsSha256 }],
        properties: [{ name: 'architecture', value: DEB_ARCH[info.arch] }],
      },
    },
    components: comps.map((c) => ({
      type: c.type,
      'bom-ref': c.ref,
      name: c.name,
      version: c.version,
      description: c.description,
      ...(c.sha256 || c.sha512
        ? { hashes: [...(c.sha256 ? [{ alg: 'SHA-256', content: c.sha256 }] : []), ...(c.sha512 ? [{ alg: 'SHA-512', content: c.sha512 }] : [])] }
        : {}),
      ...(c.purl ? { purl: c.purl } : {}),
      // license objects only (1.5 takes either those or one expression): an id where Debian's name is one, else the name
      ...(c.licenses?.length ? { licenses: c.licenses.map((l) => { const id = spdxExpression(l); return id && !id.includes(' ') ? { license: { id } } : { license: { name: l } }; }) } : {}),
    })),
    dependencies: [{ ref: imageRef, dependsOn: comps.map((c) => c.ref) }, ...comps.map((c) => ({ ref: c.ref }))],
  };
}
