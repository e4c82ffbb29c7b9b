// scripts/install.ts: runit-ts beside another init (systemd or sysvinit), as runit's
// "running with init" arrangement: the host's init starts one runsvdir on
// /etc/runit-ts/service and restarts it if it dies.
//
//   node scripts/install.ts install --arch ARCH [--destdir DIR] [--prefix /usr/local]
//   node scripts/install.ts deb --arch ARCH [--out FILE]
//
// Nothing is installed under a name Debian's runit package uses: the applets live in
// PREFIX/lib/runit-ts/bin (put it first in PATH, or call them by path), the multi-call
// executable is PREFIX/bin/runit-ts, so the .deb installs beside runit without conflicts.
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { parseArgs } from 'node:util';
import { execa } from 'execa';
import { sourceDateEpoch } from '../image/epoch.ts';
import { repoRoot } from '../image/inputs.ts';
import { ARCHES, DEB_ARCH, type Arch } from '../src/lib/platform.ts';

export const HELP = `usage: node scripts/install.ts install --arch ARCH [--destdir DIR] [--prefix PREFIX] [--sysconfdir DIR]
       node scripts/install.ts deb --arch ARCH [--out FILE]

install: copies out/ARCH/runit-ts and its addon to PREFIX/lib/runit-ts/, links every
applet in PREFIX/lib/runit-ts/bin/ and PREFIX/bin/runit-ts, and adds a systemd unit
(PREFIX/lib/systemd/system/runit-ts.service), an inittab line
(PREFIX/share/runit-ts/inittab) and the scan directory SYSCONFDIR/runit-ts/service.
Defaults: PREFIX /usr/local, SYSCONFDIR /etc, DESTDIR empty (the live system).
deb: the same with PREFIX /usr, packed by dpkg-deb as out/ARCH/runit-ts_VERSION_DEBARCH.deb.
`;

/** The applets that make sense beside another init (no PID 1, no stages, no runit-init). */
export const APPLETS = ['sv', 'runsv', 'runsvdir', 'runsvchdir', 'svlogd', 'chpst', 'envdir', 'envuidgid', 'pgrphack', 'setlock', 'setuidgid', 'softlimit', 'utmpset', 'servicebuilder'];

export interface InstallOptions {
  arch: Arch;
  destdir: string;
  prefix: string;
  sysconfdir: string;
  /** where the built executable and addon are (default out/ARCH) */
  bin?: string;
}

function say(m: string): void {
  process.stderr.write(`[install] ${m}\n`);
}

/** The systemd unit: runsvdir supervises the scan directory; stopping it stops every service. */
export function systemdUnit(prefix: string, sysconfdir: string): string {
  const svdir = `${sysconfdir}/runit-ts/service`;
  return `[Unit]
Description=runit-ts service supervision (runsvdir on ${svdir})
Documentation=man:runsvdir(8) file://${prefix}/share/doc/runit-ts/README.md
After=local-fs.target

[Service]
Environment=SVDIR=${svdir}
ExecStart=${prefix}/lib/runit-ts/bin/runsvdir -P ${svdir}
# runsvdir stops every service on TERM (in parallel, killing what is left after
# RUNSVDIR_STOP_TIMEOUT seconds) and then exits; only then is the rest killed
KillMode=mixed
TimeoutStopSec=15
Restart=always
RestartSec=1

[Install]
WantedBy=multi-user.target
`;
}

/** The inittab line for sysvinit: init respawns runsvdir in the multi-user runlevels. */
export function inittabLine(prefix: string, sysconfdir: string): string {
  return `# add to /etc/inittab, then run: telinit q\nRT:2345:respawn:/usr/bin/env SVDIR=${sysconfdir}/runit-ts/service ${prefix}/lib/runit-ts/bin/runsvdir -P ${sysconfdir}/runit-ts/service\n`;
}

function version(): string {
  return (JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { version: string }).version;
}

function put(path: string, data: string | Buffer, mode: number): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, data);
  chmodSync(path, mode);
}

function link(target: string, path: string): void {
  mkdirSync(dirname(path), { recursive: true });
  rmSync(path, { force: true });
  symlinkSync(target, path);
}

/** Install into destdir; returns the paths written (relative to destdir). */
export function install(o: InstallOptions): string[] {
  const bin = o.bin ?? join(repoRoot, 'out', o.arch);
  for (const f of ['runit-ts', 'runit-ts.node']) {
    if (!existsSync(join(bin, f))) throw new Error(`${join(bin, f)} is missing: run make build ARCH=${o.arch}`);
  }
  const root = (p: string) => join(o.destdir || '/', p);
  const written: string[] = [];
  const lib = `${o.prefix}/lib/runit-ts`;
  for (const f of ['runit-ts', 'runit-ts.node']) {
    mkdirSync(root(lib), { recursive: true });
    copyFileSync(join(bin, f), root(`${lib}/${f}`));
    chmodSync(root(`${lib}/${f}`), 0o755);
    written.push(`${lib}/${f}`);
  }
  for (const a of APPLETS) {
    link('../runit-ts', root(`${lib}/bin/${a}`));
    written.push(`${lib}/bin/${a}`);
  }
  link(relative(`${o.prefix}/bin`, `${lib}/runit-ts`), root(`${o.prefix}/bin/runit-ts`));
  written.push(`${o.prefix}/bin/runit-ts`);
  put(root(`${o.prefix}/lib/systemd/system/runit-ts.service`), systemdUnit(o.prefix, o.sysconfdir), 0o644);
  put(root(`${o.prefix}/share/runit-ts/inittab`), inittabLine(o.prefix, o.sysconfdir), 0o644);
  put(root(`${o.prefix}/share/doc/runit-ts/README.md`), readFileSync(join(repoRoot, 'README.md')), 0o644);
  written.push(`${o.prefix}/lib/systemd/system/runit-ts.service`, `${o.prefix}/share/runit-ts/inittab`, `${o.prefix}/share/doc/runit-ts/README.md`);
  mkdirSync(root(`${o.sysconfdir}/runit-ts/service`), { recursive: true });
  written.push(`${o.sysconfdir}/runit-ts/service/`);
  return written;
}

/** Build the .deb of one arch with dpkg-deb; returns its path. */
export async function deb(arch: Arch, out?: string): Promise<string> {
  const v = version();
  const file = out ?? join(repoRoot, 'out', arch, `runit-ts_${v}_${DEB_ARCH[arch]}.deb`);
  const tree = mkdtempSync(join(tmpdir(), 'runit-ts-deb-'));
  try {
    install({ arch, destdir: tree, prefix: '/usr', sysconfdir: '/etc' });
    put(join(tree, 'usr/share/doc/runit-ts/copyright'), `Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\nUpstream-Name: runit-ts\n\nFiles: *\nLicense: BSD-3-Clause\n`, 0o644);
    const kb = Math.ceil(Number((await execa('du', ['-sk', '--apparent-size', tree])).stdout.split('\t')[0]));
    // the executable is Node's official binary: glibc >= 2.28, libstdc++ and libgcc_s
    put(
      join(tree, 'DEBIAN/control'),
      `Package: runit-ts
Version: ${v}
Architecture: ${DEB_ARCH[arch]}
Maintainer: runit-ts <runit-ts@localhost>
Installed-Size: ${kb}
Depends: libc6 (>= 2.28), libstdc++6, libgcc-s1
Section: admin
Priority: optional
Description: runit-compatible service supervision in TypeScript
 runsvdir, runsv, sv, svlogd, chpst and friends in one executable, keeping runit's
 supervise/ protocol, so runit's own sv works against it and its sv against runit.
 Installed beside the system's init: a systemd unit (runit-ts.service) or an
 inittab line starts runsvdir on /etc/runit-ts/service. The applets are in
 /usr/lib/runit-ts/bin, so the package installs beside Debian's runit.
`,
      0o644,
    );
    mkdirSync(dirname(file), { recursive: true });
    await execa('dpkg-deb', ['--root-owner-group', '-Zgzip', '--build', tree, file], { env: { SOURCE_DATE_EPOCH: String(sourceDateEpoch()) } });
    say(`${file} ${(statSync(file).size / 1048576).toFixed(1)} MiB`);
    return file;
  } finally {
    rmSync(tree, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { arch: { type: 'string' }, destdir: { type: 'string', default: '' }, prefix: { type: 'string', default: '/usr/local' }, sysconfdir: { type: 'string', default: '/etc' }, out: { type: 'string' }, help: { type: 'boolean' } },
  });
  const cmd = positionals[0];
  if (values.help) {
    process.stdout.write(HELP);
    process.exit(0);
  }
  const arch = values.arch as Arch | undefined;
  if (!arch || !ARCHES.includes(arch) || (cmd !== 'install' && cmd !== 'deb') || positionals.length !== 1) {
    process.stderr.write(HELP);
    process.exit(2);
  }
  try {
    if (cmd === 'install') {
      const w = install({ arch, destdir: values.destdir!, prefix: values.prefix!, sysconfdir: values.sysconfdir! });
      say(`installed ${w.length} files into ${values.destdir || '/'}${values.prefix}`);
    } else await deb(arch, values.out);
  } catch (e) {
    process.stderr.write(`install: ${(e as Error).message}\n`);
    process.exit(1);
  }
}
