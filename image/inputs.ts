// The pinned binary inputs of the build (image/inputs.json) and where they live in the cache.
// scripts/inputs.ts fetches and verifies them; the image builder only reads them.
import { createHash } from 'node:crypto';
import { createReadStream, readFileSync, existsSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cacheDir, type Arch } from '../src/lib/platform.ts';

/** (the arch type is src/lib/platform.ts's; re-exported for the image builder's users) */
export type { Arch };

export interface DebInput {
  id: string;
  kind: 'deb';
  package: string;
  arch: string;
  version: string;
  sha256: string;
  /** A metapackage whose dependency names the current package (kernels change name with their ABI). */
  track?: string;
}
export interface NpmInput {
  id: string;
  kind: 'npm';
  package: string;
  version: string;
  sha256: string;
}
export type Input = DebInput | NpmInput;

export interface Manifest {
  node: string;
  inputs: Input[];
}

/** The checkout: found upward from this module, so it also works once bundled into out/tools/. */
function findRoot(): string {
  let d = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(d, 'image', 'inputs.json'))) {
    const up = dirname(d);
    if (up === d) throw new Error('cannot find the runit-ts checkout (image/inputs.json) above ' + fileURLToPath(import.meta.url));
    d = up;
  }
  return d;
}
export const repoRoot = findRoot();
export const manifestPath = join(repoRoot, 'image', 'inputs.json');

export function loadManifest(path = manifestPath): Manifest {
  const m = JSON.parse(readFileSync(path, 'utf8')) as Manifest;
  if (!Array.isArray(m.inputs) || typeof m.node !== 'string') throw new Error(`${path}: not an inputs manifest`);
  return m;
}

/** Directory an input is unpacked into (dpkg-deb -x / npm tarball). */
export function inputDir(id: string): string {
  return join(cacheDir(), id);
}

/** The unpacked directory of an input, or a clear error telling how to get it. */
export function requireInput(id: string): string {
  const dir = inputDir(id);
  if (!existsSync(join(dir, '.runit-ts-sha256'))) {
    throw new Error(`input ${id} is not in the cache (${dir}): run scripts/setup (or make setup)`);
  }
  return dir;
}

export function nodeBinary(arch: Arch): string {
  return join(requireInput(`node-${arch}`), 'package', 'bin', 'node');
}

/** A file's sha256 (hex), read as a stream: the pinned inputs and the locked .debs are large. */
export async function fileSha256(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(file)) h.update(chunk as Buffer);
  return h.digest('hex');
}
