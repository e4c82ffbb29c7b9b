// Debian's own tools do the package work of a Debian-based image: mmdebstrap (apt to
// resolve, dpkg to unpack and configure, maintainer scripts in a chroot, a foreign arch's
// under qemu-user through binfmt_misc) and dpkg-scanpackages for the local repository
// that holds runit-ts-init and, when building from a lock, exactly the locked .debs.
// This module runs them, shows their progress, and turns their failures into one line.
//
// Why mmdebstrap: it is Debian's maintained tool for exactly this job (a root file system
// from a package list, as a tar, reproducible under SOURCE_DATE_EPOCH, any arch), it runs
// the real maintainer scripts, and it takes apt options and hooks; nothing of apt's
// resolution or dpkg's unpacking is written again here.
import { chmodSync, existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { DEB_ARCH, hostArch, type Arch } from '../../src/lib/platform.ts';

/** The Debian release every Debian-based image is made from. */
export const SUITE = 'bookworm';
/** Where the lock is resolved from: Debian's main archive, its updates and its security archive. */
export const ARCHIVES = [
  { uri: 'http://deb.debian.org/debian', suite: SUITE },
  { uri: 'http://deb.debian.org/debian', suite: `${SUITE}-updates` },
  { uri: 'http://deb.debian.org/debian-security', suite: `${SUITE}-security` },
] as const;

/** mmdebstrap's variants a spec may ask for (what is installed before `packages`). */
export const VARIANTS = ['minbase', 'required', 'important', 'standard'] as const;
export type Variant = (typeof VARIANTS)[number];
/** Debian's archive areas a spec may add to main. */
export const COMPONENTS = ['main', 'contrib', 'non-free', 'non-free-firmware'] as const;
export type Component = (typeof COMPONENTS)[number];

/** A failure of the package tools, said in one line (what to do included). */
export class DebianError extends Error {}

/** The sources lines of Debian's archives with `components` (the image's /etc/apt/sources.list too). */
export function archiveSources(components: readonly string[]): string[] {
  return ARCHIVES.map((a) => `deb ${a.uri} ${a.suite} ${components.join(' ')}`);
}

/** A directory of .debs as an apt repository (flat, trusted: its files were checked by sha256 or built here). */
export async function flatRepo(dir: string): Promise<string> {
  const r = await execa('dpkg-scanpackages', ['--multiversion', '.'], { cwd: dir, reject: false });
  if (r.exitCode !== 0) throw new DebianError(`dpkg-scanpackages failed in ${dir}: ${r.stderr.trim().split('\n').pop()}`);
  writeFileSync(join(dir, 'Packages'), r.stdout + '\n');
  // apt fetches as the _apt user: the repository must be readable by anyone
  chmodSync(dir, 0o755);
  for (const f of readdirSync(dir)) chmodSync(join(dir, f), 0o644);
  // copy:// (not file://): apt copies each .deb into the chroot's cache, where dpkg, run
  // inside the chroot, can open it
  return `deb [trusted=yes] copy://${dir} ./`;
}

export interface MmdebstrapRun {
  arch: Arch;
  variant: Variant | 'custom';
  include: string[];
  /** sources lines, e.g. archiveSources(...) and flatRepo(...) */
  sources: string[];
  /** the tar to write, or /dev/null (a chroot that is thrown away) */
  target: string;
  /** mmdebstrap's --customize-hook commands, in order */
  customize?: string[];
  skip?: string[];
  /** apt only simulates: the packages are resolved, nothing is downloaded or installed (no hooks run) */
  simulate?: boolean;
  epoch: number;
  /** progress lines */
  say: (m: string) => void;
}

/** Is there an interpreter for a foreign arch's maintainer scripts (qemu-user through binfmt_misc)? */
export function foreignArchReady(arch: Arch): boolean {
  return arch === hostArch() || existsSync(`/proc/sys/fs/binfmt_misc/qemu-${arch}`);
}

/** mmdebstrap's phases worth a progress line (the rest goes to the log only). */
const PHASES = /^I: (downloading packages|extracting archives|installing essential packages|installing remaining packages|running --customize-hook|creating tarball|success in .*)/;

/** Run mmdebstrap; its progress shown as it goes; a failure thrown as one line (DebianError). */
export async function mmdebstrap(run: MmdebstrapRun): Promise<void> {
  if (!foreignArchReady(run.arch))
    throw new DebianError(`${run.arch}: no qemu-${run.arch} registered with binfmt_misc to run the packages' maintainer scripts (run: make setup)`);
  const args = [
    `--variant=${run.variant}`,
    `--arch=${DEB_ARCH[run.arch]}`,
    `--include=${run.include.join(',')}`,
    '--aptopt=APT::Install-Recommends "false"',
    '--aptopt=Acquire::Retries "3"',
    ...(run.skip ?? []).map((s) => `--skip=${s}`),
    ...(run.simulate
      ? ['--simulate']
      : [
          // the host's resolv.conf and hostname are copied in for debootstrap's sake: not in an image
          '--customize-hook=rm -f "$1/etc/resolv.conf" "$1/etc/hostname"',
          ...(run.customize ?? []).map((h) => `--customize-hook=${h}`),
        ]),
    SUITE,
    run.target,
    ...run.sources,
  ];
  const p = execa('mmdebstrap', args, {
    reject: false,
    all: true,
    env: { SOURCE_DATE_EPOCH: String(run.epoch), LC_ALL: 'C.UTF-8', TMPDIR: process.env.TMPDIR ?? '/tmp' },
    extendEnv: true,
  });
  const lines: string[] = [];
  p.all?.setEncoding('utf8');
  let rest = '';
  p.all?.on('data', (chunk: string) => {
    rest += chunk;
    const parts = rest.split('\n');
    rest = parts.pop()!;
    for (const l of parts) {
      lines.push(l);
      const m = PHASES.exec(l);
      if (m) run.say(`${run.arch}: mmdebstrap: ${m[1]}`);
    }
  });
  const r = await p;
  if (rest) lines.push(rest);
  if (r.exitCode !== 0) throw new DebianError(explainFailure(lines, run));
}

/**
 * apt's and dpkg's failure as one line: an unknown package, a package that needs
 * systemd as PID 1 (it depends on systemd-sysv, which runit-ts-init conflicts with, as
 * Debian's runit-init does), an unsatisfiable dependency, a failed maintainer script.
 */
export function explainFailure(lines: string[], run: Pick<MmdebstrapRun, 'arch' | 'include'>): string {
  const text = lines.join('\n');
  const unknown = [...text.matchAll(/E: Unable to locate package (\S+)/g)].map((m) => m[1]!);
  if (unknown.length) return `${run.arch}: Debian ${SUITE} has no package ${[...new Set(unknown)].join(', ')} (apt: Unable to locate package)`;
  const noCand = /E: (?:Package|Version) '?([^' ]+)'? has no installation candidate/.exec(text);
  if (noCand) return `${run.arch}: Debian ${SUITE} has no installation candidate for ${noCand[1]}`;
  // " cron : Depends: systemd-sysv but it is not going to be installed" (and the like)
  const broken = [...text.matchAll(/^\s*(\S+) : (Depends|PreDepends|Conflicts|Breaks): (.+)$/gm)];
  const needsSystemd = broken.find((m) => /\bsystemd-sysv\b|\blibnss-systemd\b/.test(m[3]!) && m[1] !== 'runit-ts-init');
  if (needsSystemd) return `${run.arch}: package ${needsSystemd[1]} needs systemd as PID 1 (${needsSystemd[2]}: ${needsSystemd[3]!.trim()}), which a runit-ts image cannot give`;
  if (broken.some((m) => m[1] === 'runit-ts-init' && /systemd-sysv|sysvinit-core/.test(m[3]!)))
    return `${run.arch}: the packages asked for need another init as PID 1 (systemd-sysv or sysvinit-core), which a runit-ts image cannot give`;
  if (broken.length) return `${run.arch}: apt cannot install the packages: ${broken.map((m) => `${m[1]} ${m[2]}: ${m[3]!.trim()}`).join('; ')}`;
  const script = /dpkg: error processing package (\S+) \(--configure\):\s*\n\s*(.+)/.exec(text);
  if (script) return `${run.arch}: package ${script[1]} failed to configure: ${script[2]!.trim()}`;
  const last = lines.filter((l) => /^E: /.test(l)).filter((l) => !/mmdebstrap failed|setup failed/.test(l));
  return `${run.arch}: mmdebstrap failed: ${(last.pop() ?? lines.filter(Boolean).pop() ?? 'no output').replace(/^E: /, '')}`;
}

/** A directory made if missing; returns it. */
export function ensureDir(d: string): string {
  mkdirSync(d, { recursive: true });
  return d;
}
