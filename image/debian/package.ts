// The Debian package runit-ts-init: runit-ts as the runit (and the init) of a Debian 12
// system, in place of Debian's runit, runit-run and runit-init packages. It provides
// them (versioned, so that runit-services, getty-run, socklog-run... accept it), holds
// the multi-call executable at /usr/lib/runit-ts with its applets at Debian's runit paths,
// the C PID 1 at /sbin/runit, and the scripts of image/debian/runit-ts-init/ (invoke-run,
// finish-exec, cpsv, trigger_sv, default-syslog, the shared log service, sulogin, the
// shutdown commands, the maintainer scripts), all written for runit-ts.
//
// The .deb is byte-reproducible: every mode is set here (never the checkout's, which
// follow the umask), every mtime is SOURCE_DATE_EPOCH (image/epoch.ts), owners are root
// (--root-owner-group), and dpkg-deb sorts its members. It is an intermediate that
// mmdebstrap unpacks at once, so it is built uncompressed (-Znone): see DEB_COMPRESSION.
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, lutimesSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { parseArgs } from 'node:util';
import { execa } from 'execa';
import { sourceDateEpoch } from '../epoch.ts';
import { repoRoot } from '../inputs.ts';
import { ADDON, BINARY, STAGE_LINKS, treeEntries } from '../rootfs.ts';
import { entryData, sortEntries, type Entry } from '../../src/lib/entry.ts';
import { DEB_ARCH, parseArch, type Arch } from '../../src/lib/platform.ts';

/** The package's name. */
export const INIT_PACKAGE = 'runit-ts-init';

/** The version of Debian 12's runit packages that this one provides (and so replaces). */
export const DEBIAN_RUNIT_VERSION = '2.1.2-54';

/**
 * dpkg-deb's compression of the package. Measured on x86_64 (the 105 MiB executable
 * inside; 2 shared cores), building / unpacking (dpkg-deb -b / -x) / size:
 * none 0.5 s / 0.3 s / 105 MiB, zstd 1.5 s / 0.7 s / 37 MiB, gzip (dpkg-deb's level 9)
 * 17.7 s / 1.0 s / 38 MiB, xz 56 s / 1.6 s / 26 MiB. The package is an intermediate that
 * mmdebstrap reads from a local directory and unpacks at once, where its size costs
 * nothing: none is the fastest both ways.
 */
export const DEB_COMPRESSION = 'none';

/** The static part of the package: the files and the maintainer scripts. */
export const PACKAGE_SOURCE = join(repoRoot, 'image', 'debian', 'runit-ts-init');

/** Debian's runit packages: provided, conflicted with and replaced. */
const RUNIT_PACKAGES = ['runit', 'runit-run', 'runit-init'];
/**
 * The other inits, as Debian's runit-init conflicts with them (a package that needs
 * systemd as process 1 depends on systemd-sysv, so apt refuses it), and runit-ts's own
 * package for another init (scripts/install.ts), which has the executable at the same path.
 */
const OTHER_INITS = ['systemd-sysv', 'sysvinit-core', 'runit-ts'];

/** The multi-call executable's applets and the links that call them, at Debian's runit paths. */
export const DEB_APPLET_LINKS: Readonly<Record<string, string>> = {
  'usr/bin/runit-ts': 'runit-ts',
  'usr/bin/sv': 'sv',
  'usr/bin/runsv': 'runsv',
  'usr/bin/runsvdir': 'runsvdir',
  'usr/bin/svlogd': 'svlogd',
  'usr/bin/chpst': 'chpst',
  'usr/sbin/runsvchdir': 'runsvchdir',
  'usr/sbin/utmpset': 'utmpset',
  ...STAGE_LINKS,
};

/** The shutdown commands, links to one script (as Debian's runit-init ships them). */
const SHUTDOWN_LINKS = ['sbin/halt', 'sbin/poweroff', 'sbin/reboot', 'sbin/shutdown'];
const SHUTDOWN = 'lib/runit/shutdown';

/** Service directories of the package whose supervise/ is a link into /run (Debian's layout). */
const SUPERVISE_LINKS: Readonly<Record<string, string>> = {
  'etc/sv/default-syslog/supervise': '/run/runit/supervise/default-syslog',
  'etc/runit/runsvdir/single/sulogin/supervise': '/run/runit/supervise/sulogin',
};

/** The maintainer scripts (DEBIAN/, mode 0755); the rest of DEBIAN/ is 0644. */
const MAINTAINER_SCRIPTS = new Set(['preinst', 'postinst', 'prerm', 'postrm']);

const KIB = 1024;

/** A line of progress on stderr, as the image builder's. */
function say(m: string): void {
  process.stderr.write(`[${INIT_PACKAGE}] ${m}\n`);
}

/** The package's version: the project's (package.json). */
export function packageVersion(): string {
  return (JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { version: string }).version;
}

/** The .deb's file name, as Debian names packages. */
export function initDebName(arch: Arch): string {
  return `${INIT_PACKAGE}_${packageVersion()}_${DEB_ARCH[arch]}.deb`;
}

/** A link's target by Debian policy 10.5: relative within a top-level directory, else absolute. */
export function linkTarget(from: string, to: string): string {
  return from.split('/')[0] === to.split('/')[0] ? relative(dirname(from), to) : `/${to}`;
}

/** A static file's mode: scripts (#!) 0755, anything else 0644; never the checkout's bits. */
function fixedMode(e: Entry): Entry {
  if (e.type === 'dir') return { ...e, mode: 0o755 };
  if (e.type !== 'file') return e;
  return { ...e, mode: entryData(e).subarray(0, 2).toString() === '#!' ? 0o755 : 0o644 };
}

/** Every file system object of the package (paths without a leading slash), parents first. */
export function packageEntries(binDir: string): Entry[] {
  const exe = (name: string) => {
    const p = join(binDir, name);
    if (!existsSync(p)) throw new Error(`${p} is missing: run make build (${INIT_PACKAGE} needs runit-ts, runit-ts.node and runit)`);
    return p;
  };
  // read once: the size, the md5sums and the tree all need the executable's bytes
  const file = (path: string, src: string, mode: number): Entry => ({ path, type: 'file', mode, data: readFileSync(src) });
  const link = (path: string, to: string): Entry => ({ path, type: 'symlink', mode: 0o777, target: linkTarget(path, to) });
  const e: Entry[] = treeEntries(join(PACKAGE_SOURCE, 'files'), '').map(fixedMode);
  e.push(file(BINARY, exe('runit-ts'), 0o755), file(ADDON, exe('runit-ts.node'), 0o644), file('sbin/runit', exe('runit'), 0o755));
  for (const path of Object.keys(DEB_APPLET_LINKS)) e.push(link(path, BINARY));
  for (const path of SHUTDOWN_LINKS) e.push(link(path, SHUTDOWN));
  for (const [path, target] of Object.entries(SUPERVISE_LINKS)) e.push({ path, type: 'symlink', mode: 0o777, target });
  // /etc/service -> the runlevel in use (current is made by postinst: runsvchdir moves it)
  e.push({ path: 'etc/service', type: 'symlink', mode: 0o777, target: 'runit/runsvdir/current' });
  e.push({ path: 'etc/runit/runsvdir/default', type: 'dir', mode: 0o755 });
  e.push({ path: 'var/log/runit', type: 'dir', mode: 0o755 });
  e.push({ path: `usr/share/doc/${INIT_PACKAGE}/copyright`, type: 'file', mode: 0o644, data: Buffer.from(COPYRIGHT) });
  return sortEntries(e);
}

const COPYRIGHT = `Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: runit-ts

Files: *
License: BSD-3-Clause
`;

/** Installed-Size as dpkg-gencontrol counts it: each file's KiB rounded up, 1 for anything else. */
export function installedSizeKiB(entries: Entry[]): number {
  let kb = 0;
  for (const e of entries) kb += e.type === 'file' ? Math.max(1, Math.ceil(entryData(e).length / KIB)) : 1;
  return kb;
}

/**
 * The control file. Depends: what the executable (Node: glibc 2.28, GLIBCXX_3.4.21), its
 * addon (glibc 2.34) and the maintainer scripts (runit-helper; useradd of passwd) need.
 */
export function controlText(arch: Arch, installedSize: number, version = packageVersion()): string {
  const provided = RUNIT_PACKAGES.map((p) => `${p} (= ${DEBIAN_RUNIT_VERSION})`).join(', ');
  const others = [...RUNIT_PACKAGES, ...OTHER_INITS].join(', ');
  return `Package: ${INIT_PACKAGE}
Version: ${version}
Architecture: ${DEB_ARCH[arch]}
Maintainer: runit-ts <runit-ts@localhost>
Installed-Size: ${installedSize}
Depends: libc6 (>= 2.34), libstdc++6 (>= 5.2), libgcc-s1, runit-helper (>= 2.14.0~), passwd
Provides: ${provided}
Conflicts: ${others}
Replaces: ${others}
Section: admin
Priority: optional
Description: runit-compatible init and service supervision (runit-ts)
 runit-ts as the system's init: runit (process 1), its three stages, runsvdir,
 runsv, sv, svlogd, chpst, runsvchdir and utmpset, in one executable, keeping
 runit's supervise/ protocol. It takes the place of Debian's runit, runit-run and
 runit-init packages: Debian's run scripts (runit-services, packages built with
 dh-runit) run through its /lib/runit/invoke-run, runit-helper enables services
 in /etc/runit/runsvdir/default, and /sbin/init is runit-init.
`;
}

/** /etc files that are not links: dpkg keeps an admin's changes to them (conffiles). */
export function conffiles(entries: Entry[]): string[] {
  return entries.filter((e) => e.type === 'file' && e.path.startsWith('etc/')).map((e) => `/${e.path}`);
}

/** DEBIAN/md5sums: every file that is not a conffile, as dh_md5sums writes it. */
export function md5sums(entries: Entry[]): string {
  const conf = new Set(conffiles(entries));
  return entries
    .filter((e) => e.type === 'file' && !conf.has(`/${e.path}`))
    .map((e) => `${createHash('md5').update(entryData(e)).digest('hex')}  ${e.path}\n`)
    .join('');
}

/** Write the entries under root with their modes, and every mtime (links too) set to `time`. */
function writeTree(root: string, entries: Entry[], time: number): void {
  for (const e of entries) {
    const p = join(root, e.path);
    if (e.type === 'dir') mkdirSync(p, { recursive: true });
    else if (e.type === 'file') writeFileSync(p, entryData(e));
    else if (e.type === 'symlink') symlinkSync(e.target!, p);
    else throw new Error(`${e.path}: a ${e.type} has no place in ${INIT_PACKAGE}`);
    if (e.type !== 'symlink') chmodSync(p, e.mode);
  }
  // deepest first, so that setting a directory's time is not undone by what goes in it
  const walk = (d: string): void => {
    for (const name of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, name.name);
      if (name.isDirectory()) walk(p);
      lutimesSync(p, time, time);
    }
  };
  walk(root);
  lutimesSync(root, time, time);
}

/**
 * Build runit-ts-init for `arch` from the executable, its addon and the C PID 1 in binDir
 * (runit-ts, runit-ts.node, runit: out/ARCH), into outDir; returns the .deb's path.
 */
export async function buildInitDeb(arch: Arch, binDir: string, outDir: string): Promise<string> {
  const entries = packageEntries(binDir);
  const epoch = sourceDateEpoch();
  const tree = mkdtempSync(join(tmpdir(), `${INIT_PACKAGE}-`));
  try {
    chmodSync(tree, 0o755); // the archive's "./" (mkdtemp makes it 0700)
    const debian = join(tree, 'DEBIAN');
    const control: Entry[] = [
      { path: 'DEBIAN', type: 'dir', mode: 0o755 },
      { path: 'DEBIAN/control', type: 'file', mode: 0o644, data: Buffer.from(controlText(arch, installedSizeKiB(entries))) },
      { path: 'DEBIAN/conffiles', type: 'file', mode: 0o644, data: Buffer.from(conffiles(entries).map((f) => f + '\n').join('')) },
      { path: 'DEBIAN/md5sums', type: 'file', mode: 0o644, data: Buffer.from(md5sums(entries)) },
    ];
    for (const name of readdirSync(join(PACKAGE_SOURCE, 'DEBIAN')).sort()) {
      const src = join(PACKAGE_SOURCE, 'DEBIAN', name);
      control.push({ path: `DEBIAN/${name}`, type: 'file', mode: MAINTAINER_SCRIPTS.has(name) ? 0o755 : 0o644, data: () => readFileSync(src) });
    }
    writeTree(tree, [...entries, ...control], epoch);
    if (!statSync(debian).isDirectory()) throw new Error(`${debian} was not made`);
    mkdirSync(outDir, { recursive: true });
    const deb = join(outDir, initDebName(arch));
    rmSync(deb, { force: true });
    await execa('dpkg-deb', ['--root-owner-group', `-Z${DEB_COMPRESSION}`, '--build', tree, deb], { env: { SOURCE_DATE_EPOCH: String(epoch) } });
    say(`${deb} ${(statSync(deb).size / 1048576).toFixed(1)} MiB`);
    return deb;
  } finally {
    rmSync(tree, { recursive: true, force: true });
  }
}

// node image/debian/package.ts --arch ARCH [--bin DIR] [--out DIR]: build the package by hand
if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({ options: { arch: { type: 'string' }, bin: { type: 'string' }, out: { type: 'string' } } });
  try {
    if (!values.arch) throw new Error('usage: node image/debian/package.ts --arch x86_64|aarch64 [--bin out/ARCH] [--out out/ARCH]');
    const arch = parseArch(values.arch);
    const deb = await buildInitDeb(arch, values.bin ?? join(repoRoot, 'out', arch), values.out ?? join(repoRoot, 'out', arch));
    process.stdout.write(deb + '\n');
  } catch (e) {
    process.stderr.write(`${INIT_PACKAGE}: ${(e as Error).message}\n`);
    process.exit(1);
  }
}
