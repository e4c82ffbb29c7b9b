// A Debian-based image's base for one arch, as the image builder asks for it: the spec's
// lock read and checked, runit-ts-init built from the arch's binaries, the locked packages
// and it installed (image/debian/base.ts). And `runit-ts-image lock`: the lock made again.
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import type { Arch } from '../../src/lib/platform.ts';
import type { Entry } from '../../src/lib/entry.ts';
import { sourceDateEpoch } from '../epoch.ts';
import { debianBase, debianBaseTar, type DebianBaseOptions } from './base.ts';
import { makeLock, readLock, type DebianRequest, type LockedPackage, type LockFile } from './lock.ts';
import { flatRepo } from './mmdebstrap.ts';
import { buildInitDeb, INIT_PACKAGE } from './package.ts';

export { INIT_PACKAGE };

/**
 * The options of the Debian base of `arch` for a spec whose lock is `lock` (readLock),
 * runit-ts-init built from the arch's binaries, handed to `use` (the package is removed
 * afterwards).
 */
async function withBase<T>(specFile: string, request: DebianRequest, lock: LockFile, arch: Arch, binDir: string, say: (m: string) => void, use: (o: DebianBaseOptions) => Promise<T>): Promise<T> {
  const packages = lock.arches[arch]!;
  const tmp = mkdtempSync(join(tmpdir(), 'runit-ts-init-'));
  try {
    const initDeb = request.init === 'runit-ts' ? await buildInitDeb(arch, binDir, tmp) : undefined;
    return await use({ specFile, request, arch, packages, ...(initDeb ? { initDeb } : {}), initPackage: INIT_PACKAGE, epoch: sourceDateEpoch(), say });
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

/** The Debian base of `arch` for a spec whose lock is `lock` (readLock), as entries. */
export async function debianEntries(specFile: string, request: DebianRequest, lock: LockFile, arch: Arch, binDir: string, say: (m: string) => void): Promise<{ entries: Entry[]; packages: LockedPackage[] }> {
  const entries = await withBase(specFile, request, lock, arch, binDir, say, debianBase);
  return { entries, packages: lock.arches[arch]! };
}

/**
 * The same base as the root file system tar mmdebstrap wrote, kept in the cache (built
 * now if it is not there): its path. As it was installed, before the image's own
 * entries; the tests put runit-ts's overlay on it.
 */
export async function debianBaseFile(specFile: string, request: DebianRequest, lock: LockFile, arch: Arch, binDir: string, say: (m: string) => void): Promise<string> {
  return withBase(specFile, request, lock, arch, binDir, say, debianBaseTar);
}

/** The lock of a spec made (again) for `arches`: what `runit-ts-image lock SPEC` does. */
export async function lockSpec(specFile: string, request: DebianRequest, arches: Arch[], binDir: (a: Arch) => string, say: (m: string) => void): Promise<LockFile> {
  return makeLock({
    specFile,
    request,
    arches,
    initPackage: INIT_PACKAGE,
    epoch: sourceDateEpoch(),
    say,
    initRepo: async (arch, dir) => {
      await buildInitDeb(arch, binDir(arch), dir);
      return flatRepo(dir);
    },
  });
}

export { readLock };
