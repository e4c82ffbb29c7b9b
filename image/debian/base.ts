// The Debian base of an image (spec `base: debian`): the locked packages and runit-ts-init
// installed by mmdebstrap into a root file system tar, made reproducible (SOURCE_DATE_EPOCH,
// the few files that carry the install's clock normalised), kept in the cache under the
// digest of everything that went into it, and read back as the image's first entries.
// Everything after it (the kernel's modules, the spec's services, users, trees and files)
// is added by image/rootfs.ts, as for the busybox base.
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, linkSync, copyFileSync, renameSync, rmSync, mkdtempSync } from 'node:fs';
import { basename, join } from 'node:path';
import { extract } from 'tar-stream';
import { hostArch, type Arch } from '../../src/lib/platform.ts';
import type { Entry } from '../../src/lib/entry.ts';
import { mib } from '../log.ts';
import { archiveSources, ensureDir, flatRepo, mmdebstrap } from './mmdebstrap.ts';
import { debianCache, fetchLocked, type DebianRequest, type LockedPackage } from './lock.ts';
import { fileSha256 } from '../inputs.ts';

/**
 * What the base is made by, beyond its inputs: changed whenever this file changes what
 * goes into the tar, so that no cached base of an older recipe is taken.
 */
const RECIPE = 'debian-base-1';

/** Where built bases are kept (one tar per digest of the inputs). */
export function baseCache(): string {
  return join(debianCache(), 'roots');
}

export interface DebianBaseOptions {
  specFile: string;
  request: DebianRequest;
  arch: Arch;
  packages: LockedPackage[];
  /** runit-ts-init's .deb for this arch (built from the arch's binaries); none with init: debian */
  initDeb?: string;
  initPackage: string;
  epoch: number;
  say: (m: string) => void;
}

/** The base's root file system tar (built now, or taken from the cache); returns its path. */
export async function debianBaseTar(o: DebianBaseOptions): Promise<string> {
  const debs = await fetchLocked(o.specFile, o.arch, o.packages, o.say);
  const initSha = o.initDeb ? await fileSha256(o.initDeb) : 'debian';
  const key = createHash('sha256')
    .update(JSON.stringify({ RECIPE, arch: o.arch, epoch: o.epoch, components: o.request.components, packages: o.packages.map((p) => p.sha256), init: initSha }))
    .digest('hex');
  const cached = join(ensureDir(baseCache()), `${key}.tar`);
  if (existsSync(cached)) {
    o.say(`${o.arch}: Debian base ${key.slice(0, 12)} from the cache (${o.packages.length + 1} packages)`);
    return cached;
  }
  const tmp = mkdtempSync(join(ensureDir(debianCache()), 'build-'));
  try {
    const repo = ensureDir(join(tmp, 'repo'));
    for (const f of [...debs, ...(o.initDeb ? [o.initDeb] : [])]) {
      const dest = join(repo, basename(f));
      try {
        linkSync(f, dest);
      } catch {
        copyFileSync(f, dest);
      }
    }
    const source = await flatRepo(repo);
    o.say(`${o.arch}: installing ${o.packages.length} locked packages${o.initDeb ? ` and ${o.initPackage}` : ''} (mmdebstrap, variant custom${o.arch === hostArch() ? '' : ', maintainer scripts under qemu-user'})`);
    const t0 = Date.now();
    const out = join(tmp, 'root.tar');
    await mmdebstrap({
      arch: o.arch,
      // exactly the locked set, from the local repository only: apt has nothing else to choose
      variant: 'custom',
      include: [...new Set([...o.packages.map((p) => p.name), ...(o.initDeb ? [o.initPackage] : [])])],
      sources: [source],
      target: out,
      epoch: o.epoch,
      say: o.say,
    });
    renameSync(out, cached);
    o.say(`${o.arch}: Debian base built in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    return cached;
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

/** Files in a Debian tree that hold the install's wall clock: each gets SOURCE_DATE_EPOCH. */
const CLOCK_FILES = /^etc\/sv\/[^/]+\/\.meta\/wtime$/;

/**
 * A root file system tar as image entries: hard links become copies (an entry list has no
 * links between files), the clock files get the epoch, and /etc/apt/sources.list names
 * Debian's archives (the build's local repository is gone once the image is made).
 */
export async function tarEntries(tarFile: string, o: { epoch: number; components: string[] }): Promise<Entry[]> {
  const entries: Entry[] = [];
  const files = new Map<string, Buffer>();
  const ex = extract();
  const done = new Promise<void>((resolve, reject) => {
    ex.on('entry', (h, stream, next) => {
      const chunks: Buffer[] = [];
      stream.on('data', (c: unknown) => chunks.push(c as Buffer));
      stream.on('end', () => {
        const path = h.name.replace(/^\.\//, '').replace(/\/+$/, '') || '.';
        const mode = (h.mode ?? 0o644) & 0o7777;
        const own = { uid: h.uid ?? 0, gid: h.gid ?? 0 };
        switch (h.type) {
          case 'file': {
            let data = Buffer.concat(chunks);
            if (CLOCK_FILES.test(path)) data = Buffer.from(`${o.epoch}\n`);
            if (path === 'etc/apt/sources.list') data = Buffer.from(archiveSources(o.components).join('\n') + '\n');
            files.set(path, data);
            entries.push({ path, type: 'file', mode, ...own, data });
            break;
          }
          case 'link': {
            const target = (h.linkname ?? '').replace(/^\.\//, '');
            const data = files.get(target);
            if (!data) return reject(new Error(`${tarFile}: hard link ${path} to ${target}, which comes later or not at all`));
            files.set(path, data);
            entries.push({ path, type: 'file', mode, ...own, data });
            break;
          }
          case 'directory':
            entries.push({ path, type: 'dir', mode, ...own });
            break;
          case 'symlink':
            entries.push({ path, type: 'symlink', mode: 0o777, ...own, target: h.linkname ?? '' });
            break;
          case 'character-device':
          case 'block-device':
            entries.push({ path, type: h.type === 'character-device' ? 'char' : 'block', mode, ...own, major: h.devmajor ?? 0, minor: h.devminor ?? 0 });
            break;
          case 'fifo':
            entries.push({ path, type: 'fifo', mode, ...own });
            break;
          default:
            return reject(new Error(`${tarFile}: ${path}: tar entries of type ${h.type} are not supported`));
        }
        next();
      });
      stream.on('error', reject);
    });
    ex.on('finish', resolve);
    ex.on('error', reject);
  });
  // streamed: the entries hold the files' bytes, the tar is not held beside them
  createReadStream(tarFile).on('error', (e) => ex.destroy(e)).pipe(ex);
  await done;
  return entries;
}

/** The Debian base of one arch as entries (built or cached), with a progress line of its size. */
export async function debianBase(o: DebianBaseOptions): Promise<Entry[]> {
  const tar = await debianBaseTar(o);
  const entries = await tarEntries(tar, { epoch: o.epoch, components: o.request.components });
  const bytes = entries.reduce((n, e) => n + (Buffer.isBuffer(e.data) ? e.data.length : 0), 0);
  o.say(`${o.arch}: Debian base: ${entries.length} entries, ${mib(bytes)} of files`);
  return entries;
}
