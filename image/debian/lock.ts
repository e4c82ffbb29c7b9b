// The lock of a Debian-based spec: every package of the image (the variant's, the spec's
// `packages` and what they depend on), per arch, with its version, sha256, download
// address, source package and licenses. `runit-ts-image lock SPEC` makes it (online: apt
// resolves against Debian's archives, through mmdebstrap); every build reads it and
// installs exactly those .debs from the cache (offline once they are cached), so two
// builds of one lock are the same image.
//
//   SPEC.yaml -> SPEC.lock.json (beside it, committed with it)
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { execa } from 'execa';
import { cacheDir, type Arch } from '../../src/lib/platform.ts';
import { fileSha256 } from '../inputs.ts';
import { archiveSources, ARCHIVES, DebianError, ensureDir, mmdebstrap, SUITE, type Variant } from './mmdebstrap.ts';

export const LOCK_VERSION = 1;

/** What a spec asks of Debian: the lock is valid for exactly this. */
export interface DebianRequest {
  suite: typeof SUITE;
  variant: Variant;
  components: string[];
  packages: string[];
  /**
   * the runit of the image: runit-ts (runit-ts-init, built here) or, for comparisons
   * (bench/), Debian's own C runit (runit-init, from Debian, locked with the rest)
   */
  init: 'runit-ts' | 'debian';
}

/** Debian's package that boots a system with its C runit as PID 1 (init: debian). */
export const DEBIAN_INIT_PACKAGE = 'runit-init';

export interface LockedPackage {
  name: string;
  version: string;
  /** Debian's architecture name: amd64, arm64 or all */
  arch: string;
  sha256: string;
  size: number;
  /** where Debian serves the .deb */
  url: string;
  source: string;
  /** the License: fields of its copyright file (Debian's short names), [] when it has none in that form */
  licenses: string[];
}

export interface LockFile {
  lockVersion: number;
  request: DebianRequest;
  arches: Partial<Record<Arch, LockedPackage[]>>;
}

/** The lock file of a spec file: SPEC.lock.json beside it. */
export function lockPath(specFile: string): string {
  return join(dirname(specFile), basename(specFile).replace(/\.(ya?ml|json)$/, '') + '.lock.json');
}

/** The Debian caches' directory: the .debs and the built bases ($RUNIT_TS_DEBIAN_CACHE, default CACHE/debian). */
export function debianCache(): string {
  return process.env.RUNIT_TS_DEBIAN_CACHE || join(cacheDir(), 'debian');
}

/** The cache of .debs, by their archive file name (shared by every spec and lock). */
export function debCache(): string {
  return join(debianCache(), 'debs');
}

/** The command that makes or refreshes a spec's lock (named by every message about a lock). */
export function relockCommand(specFile: string, arches?: readonly Arch[]): string {
  return `runit-ts-image lock ${specFile}${arches ? ` --arch ${arches.join(',')}` : ''}`;
}

function sameRequest(a: DebianRequest, b: DebianRequest): boolean {
  const norm = (r: DebianRequest) => JSON.stringify({ ...r, packages: [...r.packages].sort(), components: [...r.components].sort() });
  return norm(a) === norm(b);
}

/** The lock of `specFile` for `arches`, checked against the spec's request (else one line naming the command to run). */
export function readLock(specFile: string, request: DebianRequest, arches: readonly Arch[]): LockFile {
  const file = lockPath(specFile);
  const relock = relockCommand(specFile);
  if (!existsSync(file)) throw new DebianError(`${specFile}: no lock file ${file}; make it with: ${relock}`);
  let lock: LockFile;
  try {
    lock = JSON.parse(readFileSync(file, 'utf8')) as LockFile;
  } catch (e) {
    throw new DebianError(`${file}: not a lock file (${(e as Error).message}); make it again with: ${relock}`);
  }
  if (lock.lockVersion !== LOCK_VERSION) throw new DebianError(`${file}: lock version ${lock.lockVersion}, this builder reads ${LOCK_VERSION}; make it again with: ${relock}`);
  if (!sameRequest(lock.request, request)) throw new DebianError(`${file}: the lock was made for other packages or settings than ${specFile} asks for; refresh it with: ${relock}`);
  const missing = arches.filter((a) => !lock.arches[a]?.length);
  if (missing.length) throw new DebianError(`${file}: no packages locked for ${missing.join(', ')}; add them with: ${relockCommand(specFile, missing)}`);
  return lock;
}

interface IndexEntry {
  filename: string;
  sha256: string;
  size: number;
  source: string;
  base: string;
}

/** apt's Packages lists (as mmdebstrap left them) -> "name version arch" -> where and what the .deb is. */
export function readIndexes(listsDir: string): Map<string, IndexEntry> {
  const out = new Map<string, IndexEntry>();
  for (const f of readdirSync(listsDir)) {
    if (!f.endsWith('_Packages')) continue;
    const archive = ARCHIVES.find((a) => f.startsWith(a.uri.replace(/^https?:\/\//, '').replace(/\//g, '_') + '_dists_'));
    if (!archive) continue; // the local repository of runit-ts-init
    for (const para of readFileSync(join(listsDir, f), 'utf8').split(/\n\n+/)) {
      const field = (k: string) => new RegExp(`^${k}: (.*)$`, 'm').exec(para)?.[1]?.trim();
      const name = field('Package');
      if (!name) continue;
      const version = field('Version')!;
      const src = field('Source');
      const key = `${name} ${version} ${field('Architecture')}`;
      // the same .deb in several archives: the earliest of ARCHIVES (the main archive) is kept
      const prev = out.get(key);
      if (prev && ARCHIVES.findIndex((a) => a.uri === prev.base) <= ARCHIVES.findIndex((a) => a.uri === archive.uri)) continue;
      out.set(key, {
        filename: field('Filename')!,
        sha256: field('SHA256')!,
        size: Number(field('Size')),
        // "Source: name (version)" when the binary's version differs from its source's
        source: src ? src.split(' ')[0]! : name,
        base: archive.uri,
      });
    }
  }
  return out;
}

/** The License: names of a package's copyright file (machine-readable format), in order, each once. */
export function copyrightLicenses(text: string): string[] {
  if (!/^Format:\s*\S*copyright-format/m.test(text)) return [];
  const names = [...text.matchAll(/^License:[ \t]*(\S[^\n]*)$/gm)].map((m) => m[1]!.trim());
  return [...new Set(names)];
}

/** The copyright file a .deb ships (its own, else the first under usr/share/doc). */
async function debCopyright(deb: string, name: string): Promise<string> {
  const list = await execa('dpkg-deb', ['-c', deb], { reject: false });
  const paths = [...list.stdout.matchAll(/ \.\/(usr\/share\/doc\/[^/]+\/copyright)$/gm)].map((m) => m[1]!);
  const path = paths.find((p) => p === `usr/share/doc/${name}/copyright`) ?? paths[0];
  if (!path) return '';
  const r = await execa('sh', ['-c', 'dpkg-deb --fsys-tarfile "$1" | tar -xOf - "./$2"', 'sh', deb, path], { reject: false, encoding: 'utf8' });
  return r.exitCode === 0 ? r.stdout : '';
}

export interface LockOptions {
  specFile: string;
  request: DebianRequest;
  arches: Arch[];
  /** the local repository line that serves runit-ts-init for an arch (init: runit-ts) */
  initRepo: (arch: Arch, dir: string) => Promise<string>;
  initPackage: string;
  epoch: number;
  say: (m: string) => void;
}

/** Resolve the request against Debian's archives for each arch and write the lock (the .debs land in the cache). */
export async function makeLock(o: LockOptions): Promise<LockFile> {
  const file = lockPath(o.specFile);
  let lock: LockFile = { lockVersion: LOCK_VERSION, request: o.request, arches: {} };
  if (existsSync(file)) {
    try {
      const old = JSON.parse(readFileSync(file, 'utf8')) as LockFile;
      // other arches of the same request are kept
      if (old.lockVersion === LOCK_VERSION && sameRequest(old.request, o.request)) lock = { ...old, request: o.request };
    } catch {
      /* replaced */
    }
  }
  for (const arch of o.arches) {
    const tmp = mkdtempSync(join(ensureDir(debianCache()), 'lock-'));
    try {
      const ours = o.request.init === 'runit-ts';
      const local = ours ? [await o.initRepo(arch, ensureDir(join(tmp, 'repo')))] : [];
      o.say(`${arch}: resolving ${o.request.variant} + ${o.request.packages.length} package(s) against Debian ${SUITE} (${o.request.components.join(', ')})`);
      const t0 = Date.now();
      // apt resolves the request first without installing anything (seconds, where the
      // real run below installs the essential packages before it meets a package Debian
      // lacks or one that needs systemd): bad input is told at once
      const request = {
        arch,
        variant: o.request.variant,
        include: [ours ? o.initPackage : DEBIAN_INIT_PACKAGE, ...o.request.packages],
        sources: [...archiveSources(o.request.components), ...local],
        target: '/dev/null',
        epoch: o.epoch,
        say: o.say,
      };
      await mmdebstrap({ ...request, simulate: true });
      await mmdebstrap({
        ...request,
        skip: ['essential/unlink', 'cleanup/apt'],
        customize: [
          `sync-out /var/cache/apt/archives ${tmp}/debs`,
          `sync-out /var/lib/apt/lists ${tmp}/lists`,
          `chroot "$1" dpkg-query -W -f='\${db:Status-Abbrev}\\t\${Package}\\t\${Version}\\t\${Architecture}\\n' > ${tmp}/installed`,
        ],
      });
      const index = readIndexes(join(tmp, 'lists'));
      const pkgs: LockedPackage[] = [];
      const cache = ensureDir(debCache());
      for (const line of readFileSync(join(tmp, 'installed'), 'utf8').split('\n')) {
        const [status, name, version, darch] = line.split('\t');
        if (!name || !status?.startsWith('ii') || name === o.initPackage) continue;
        const ix = index.get(`${name} ${version} ${darch}`);
        if (!ix) throw new DebianError(`${arch}: ${name} ${version} (${darch}) is installed but in no Debian index; cannot lock it`);
        const deb = join(tmp, 'debs', `${name}_${version!.replace(/:/g, '%3a')}_${darch}.deb`);
        if (!existsSync(deb)) throw new DebianError(`${arch}: apt left no ${basename(deb)} to lock`);
        const sha = await fileSha256(deb);
        if (sha !== ix.sha256) throw new DebianError(`${arch}: ${basename(deb)} has sha256 ${sha}, Debian's index says ${ix.sha256}`);
        const cached = join(cache, basename(ix.filename));
        if (!existsSync(cached)) {
          copyFileSync(deb, `${cached}.tmp`);
          renameSync(`${cached}.tmp`, cached);
        }
        pkgs.push({ name, version: version!, arch: darch!, sha256: sha, size: statSync(deb).size, url: `${ix.base}/${ix.filename}`, source: ix.source, licenses: copyrightLicenses(await debCopyright(deb, name)) });
      }
      pkgs.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
      const before = lock.arches[arch] ?? [];
      lock.arches[arch] = pkgs;
      o.say(`${arch}: ${pkgs.length} packages locked (${describeChange(before, pkgs)}) in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  }
  const sorted: LockFile = { lockVersion: LOCK_VERSION, request: lock.request, arches: Object.fromEntries(Object.entries(lock.arches).sort()) };
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(`${file}.tmp`, JSON.stringify(sorted, null, 1) + '\n');
  renameSync(`${file}.tmp`, file);
  return sorted;
}

/** "3 added, 1 changed, 0 removed" between two locks of one arch. */
export function describeChange(before: LockedPackage[], after: LockedPackage[]): string {
  const b = new Map(before.map((p) => [`${p.name}:${p.arch}`, p.version]));
  const a = new Map(after.map((p) => [`${p.name}:${p.arch}`, p.version]));
  const added = [...a.keys()].filter((k) => !b.has(k)).length;
  const removed = [...b.keys()].filter((k) => !a.has(k)).length;
  const changed = [...a].filter(([k, v]) => b.has(k) && b.get(k) !== v).length;
  return `${added} added, ${changed} changed, ${removed} removed`;
}

/** Progress of a download: a line every this many bytes. */
const DOWNLOAD_REPORT_BYTES = 32 * 1048576;

/**
 * The locked .debs of one arch in the cache, each checked by sha256; what is missing is
 * downloaded from Debian. A version Debian no longer serves is one line naming the command
 * that refreshes the lock. Returns the cached files.
 */
export async function fetchLocked(specFile: string, arch: Arch, pkgs: LockedPackage[], say: (m: string) => void): Promise<string[]> {
  const cache = ensureDir(debCache());
  const files: string[] = [];
  const missing = pkgs.filter((p) => !existsSync(join(cache, basename(p.url))));
  if (missing.length) say(`${arch}: downloading ${missing.length} of ${pkgs.length} locked packages (${(missing.reduce((n, p) => n + p.size, 0) / 1048576).toFixed(1)} MiB)`);
  let got = 0;
  let reported = 0;
  for (const p of pkgs) {
    const dest = join(cache, basename(p.url));
    if (!existsSync(dest)) {
      let res: Response;
      try {
        res = await fetch(p.url);
      } catch (e) {
        throw new DebianError(`${arch}: cannot download ${p.name} ${p.version} from ${p.url}: ${(e as Error).cause ?? (e as Error).message} (offline? the lock's .debs are not all cached)`);
      }
      if (res.status === 404)
        throw new DebianError(`${arch}: Debian no longer serves ${p.name} ${p.version} (${p.arch}), which ${lockPath(specFile)} pins; refresh the lock with: ${relockCommand(specFile)}`);
      if (!res.ok) throw new DebianError(`${arch}: downloading ${p.url}: HTTP ${res.status}`);
      const buf = Buffer.from(await res.arrayBuffer());
      writeFileSync(`${dest}.tmp`, buf);
      renameSync(`${dest}.tmp`, dest);
      got += buf.length;
      if (got - reported >= DOWNLOAD_REPORT_BYTES) {
        say(`${arch}: ${(got / 1048576).toFixed(0)} MiB downloaded`);
        reported = got;
      }
    }
    const sha = await fileSha256(dest);
    if (sha !== p.sha256) {
      rmSync(dest, { force: true });
      throw new DebianError(`${arch}: ${basename(dest)} has sha256 ${sha}, the lock says ${p.sha256} (removed from the cache; build again to download it)`);
    }
    files.push(dest);
  }
  return files;
}
