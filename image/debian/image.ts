// A Debian-based image's base for one arch, as the image builder asks for it: the spec's
// lock read and checked, runit-ts-init built from the arch's binaries, the locked packages
// and it installed (image/debian/base.ts). And `runit-ts-image lock`: the lock made again.
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import type { Arch } from '../../src/lib/platform.ts';
import type { Entry } from '../../src/lib/entry.ts';
import { sourceDateEpoch } from '../epoch.ts';
import { debianBase } from './base.ts';
import { makeLock, readLock, type DebianRequest, type LockedPackage, type LockFile } from './lock.ts';
import { flatRepo } from './mmdebstrap.ts';
import { buildInitDeb, INIT_PACKAGE } from './package.ts';

export { INIT_PACKAGE };

/** The Debian base of `arch` for a spec whose lock is `lock` (readLock), as entries. */
export async function debianEntries(specFile: string, request: DebianRequest, lock: LockFile, arch: Arch, binDir: string, say: (m: string) => void): Promise<{ entries: Entry[]; packages: LockedPackage[] }> {
  const packages = lock.arches[arch]!;
  const tmp = mkdtempSync(join(tmpdir(), 'runit-ts-init-'));
  try {
    const initDeb = request.init === 'runit-ts' ? await buildInitDeb(arch, binDir, tmp) : undefined;
    const entries = await debianBase({ specFile, request, arch, packages, ...(initDeb ? { initDeb } : {}), initPackage: INIT_PACKAGE, epoch: sourceDateEpoch(), say });
    return { entries, packages };
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
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
