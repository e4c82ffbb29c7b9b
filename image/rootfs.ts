// The root file system of an image, as one list of entries (the packers turn it into
// cpio, tar, ext4, erofs or OCI layers): the system (libraries, busybox, the executable
// and its links, the stages, the services, kernel modules), the spec's users and groups,
// container-init's directories when the image is a container image too, and the spec's
// files last (they can replace anything). Everything comes from the pinned inputs, the
// spec and out/<arch>.
import { existsSync, lstatSync, readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { inputDir, repoRoot, requireInput } from './inputs.ts';
import { TRIPLET, type Arch } from '../src/lib/platform.ts';
import { DEFAULT_STATE, SUPERVISE_SUBDIR, superviseLinkTarget } from '../src/container/paths.ts';
import { resolveModules } from '../src/lib/kmod.ts';
import { SUPERVISE_RUN } from '../stages/debian.ts';
import { prestartPlan, PRESTART_PLAN } from './prestart.ts';
import { entryData, type Entry } from '../src/lib/entry.ts';
import { groupText, homeOf, passwdText, resolveOwner, type GroupDef, type UserDef } from './accounts.ts';
import { reproducibleBuild, sourceDateEpoch } from './epoch.ts';
import { createHash, randomBytes } from 'node:crypto';
import { execaSync } from 'execa';

/**
 * What each arch needs loaded for ctrl-alt-del to reach the guest: x86_64's PS/2 keyboard
 * (i8042, atkbd) is built into the kernel; aarch64's virt machine has none, so the
 * harness gives it a virtio keyboard on virtio-mmio, which needs these two modules.
 */
export const DEFAULT_MODULES: Record<Arch, string[]> = { x86_64: [], aarch64: ['virtio_mmio', 'virtio_input'] };

/** runit's init and stages, at the same paths in every image (the busybox base's and runit-ts-init's). */
export const STAGE_LINKS: Readonly<Record<string, string>> = {
  'sbin/runit-init': 'runit-init',
  'sbin/init': 'init',
  'etc/runit/1': '1',
  'etc/runit/2': '2',
  'etc/runit/3': '3',
  'etc/runit/ctrlaltdel': 'ctrlaltdel',
};

/** Applets of our multi-call binary and where their links go. */
export const APPLET_LINKS: Record<string, string> = {
  'usr/bin/sv': 'sv',
  'usr/bin/runsv': 'runsv',
  'usr/bin/runsvdir': 'runsvdir',
  'usr/bin/runsvchdir': 'runsvchdir',
  'usr/bin/svlogd': 'svlogd',
  'usr/bin/chpst': 'chpst',
  'usr/bin/envdir': 'envdir',
  'usr/bin/envuidgid': 'envuidgid',
  'usr/bin/pgrphack': 'pgrphack',
  'usr/bin/setlock': 'setlock',
  'usr/bin/setuidgid': 'setuidgid',
  'usr/bin/softlimit': 'softlimit',
  'usr/bin/utmpset': 'utmpset',
  'usr/bin/servicebuilder': 'servicebuilder',
  'usr/bin/runit-ts': 'runit-ts',
  ...STAGE_LINKS,
  'sbin/container-init': 'container-init',
  'usr/bin/container-probe': 'container-probe',
};
export const BINARY = 'usr/lib/runit-ts/runit-ts';
export const ADDON = 'usr/lib/runit-ts/runit-ts.node';

/** busybox applets we do not link: ours replace them, or they would fight runit for PID 1. */
const BUSYBOX_SKIP = new Set(['init', 'linuxrc', 'runsv', 'runsvdir', 'sv', 'svlogd', 'svc', 'svok', 'chpst', 'envdir', 'envuidgid', 'setuidgid', 'softlimit', 'halt', 'poweroff', 'reboot']);

/** Services of services/ in the image when the spec names none (`make boot`'s image). */
export const DEFAULT_SERVICES = ['shell', 'syslogd', 'klogd', 'network', 'crond'];
/** The services of the `single` runlevel when the spec names none: a root shell on the console. */
export const SINGLE_SERVICES = ['shell'];
/** What the network service needs on QEMU's virtio NIC (PCI on both arches). */
export const NETWORK_MODULES = ['virtio_pci', 'virtio_net'];
/** root's crontab when the spec gives none: a line in the system log every hour. */
export const DEFAULT_CRONTAB = ['0 * * * * logger -t cron "hourly: $(uptime)"'];

export interface ServiceDef {
  name: string;
  /** files of the service directory: relative path -> contents (scripts get mode 0755) */
  files: Record<string, string>;
  /** linked into /etc/service (default true) */
  enabled?: boolean;
}

export interface ImageSpec {
  arch: Arch;
  hostname?: string;
  /** kernel modules loaded by stage 1 (default: what ctrl-alt-del needs on the arch) */
  modules?: string[];
  /** service directories to copy from the repo's services/, in the default runlevel (default: DEFAULT_SERVICES) */
  services?: string[];
  /** services of the `single` runlevel (default: SINGLE_SERVICES); copied from services/ too */
  single?: string[];
  /** the console login of the getty service: a user logged in without password, or root's password */
  login?: LoginSpec;
  /** root's crontab lines for the crond service (default: DEFAULT_CRONTAB) */
  cron?: string[];
  /** the ntp service's server ("host" or "host:port"); without it the service is down */
  ntp?: { server?: string };
  /** the sshd service: public keys allowed to log in as root */
  ssh?: { authorizedKeys: string[] };
  /** services given inline */
  inline?: ServiceDef[];
  /** extra kernel command line arguments */
  cmdline?: string;
  /** the disk output (make image OUTPUTS=disk): GPT disk with an ESP and an ext4 root */
  disk?: DiskSpec;
  /** users beside root and nobody (/etc/passwd, their home directories) */
  users?: UserDef[];
  /** groups beside root, tty and nogroup (/etc/group) */
  groups?: GroupDef[];
  /** files, directories and symlinks added last (they replace what the image has at their path) */
  files?: FileDef[];
  /** the system under everything else: busybox and our executable (default), or a Debian base (image/debian/) */
  base?: 'busybox' | 'debian';
  /** directory trees of the host copied in (after the services, before `files`), as mkosi's extra trees */
  trees?: TreeDef[];
  /**
   * The image is a container image too: container-init's start-up directory and its state
   * directory /run/runit-ts (owned by `user`, else sticky and world-writable, so it works
   * without a tmpfs on /run for any --user given at run time).
   */
  containerInit?: { user?: string };
  /**
   * The boot's prestart (image/prestart.ts): PID 1 starts the plain services of the default
   * runlevel while Node starts, the supervisor adopts them (default true; a busybox system only)
   */
  prestart?: boolean;
}

export interface FileDef {
  /** path inside the image ("/etc/motd" or "etc/motd") */
  path: string;
  /** file copied from the host (absolute, or relative to the working directory; a spec's are made absolute) */
  source?: string;
  /** inline file contents */
  content?: string;
  type?: 'file' | 'dir' | 'symlink';
  target?: string;
  mode?: string | number;
  /** "uid:gid", "user:group" or "user" (names from users/groups) */
  owner?: string;
}

export interface TreeDef {
  /** a directory of the host (absolute once the spec is resolved) */
  source: string;
  /** where its contents go in the image (default the root) */
  path?: string;
  /** every copied entry's owner ("user[:group]" or numbers); default root: the host's owners are the build's, not the image's */
  owner?: string;
}

export interface LoginSpec {
  /** this user is logged in on the console without a password */
  autologin?: string;
  /** root's password, hashed (SHA-512 crypt) when the image is built */
  password?: string;
  /** root's password as a crypt(3) hash ("$6$salt$..."), for specs that should not hold the password */
  passwordHash?: string;
}

export interface DiskSpec {
  /** the whole disk: "512M" (default), "2G", or bytes */
  size?: string | number;
  /** the EFI system partition (kernel, early initramfs, boot loaders): default 32M, 96M on aarch64 */
  esp?: string | number;
  /**
   * root file system: ext4 (default; read-write, persistent) or erofs (read-only,
   * compressed, with a tmpfs overlay: the system runs as usual, nothing persists)
   */
  rootfs?: 'ext4' | 'erofs';
}

/** A file of the host, read when a packer needs it (mode: the host file's unless given). */
function fileEntry(path: string, src: string, mode?: number): Entry {
  const st = statSync(src);
  return { path, type: 'file', mode: mode ?? st.mode & 0o7777, data: () => readFileSync(src) };
}

/** Copy a tree from disk (files, dirs, symlinks as they are). */
export function treeEntries(src: string, dest: string): Entry[] {
  const out: Entry[] = [];
  const walk = (d: string) => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name);
      const rel = join(dest, relative(src, p));
      const st = lstatSync(p);
      if (st.isSymbolicLink()) out.push({ path: rel, type: 'symlink', mode: 0o777, target: readlinkSync(p) });
      else if (st.isDirectory()) {
        out.push({ path: rel, type: 'dir', mode: st.mode & 0o7777 });
        walk(p);
      } else if (st.isFile()) out.push(fileEntry(rel, p));
    }
  };
  walk(src);
  return out;
}

/** The release of the pinned kernel package of `arch` (the one directory under its lib/modules). */
export function kernelRelease(arch: Arch): string {
  const mods = join(requireInput(`kernel-${arch}`), 'lib', 'modules');
  const rels = readdirSync(mods);
  if (rels.length !== 1) throw new Error(`expected one kernel release in ${mods}, found: ${rels.join(', ')}`);
  return rels[0]!;
}

/** The kernel image (bzImage / Image) of the pinned kernel package. */
export function kernelImage(arch: Arch): string {
  return join(requireInput(`kernel-${arch}`), 'boot', `vmlinuz-${kernelRelease(arch)}`);
}

/** The module tree of the pinned kernel package (lib/modules/RELEASE). */
export function kernelModulesDir(arch: Arch): string {
  return join(requireInput(`kernel-${arch}`), 'lib', 'modules', kernelRelease(arch));
}

/** glibc, libstdc++ and libgcc of the pinned Debian packages: what the executable links. */
export function libEntries(arch: Arch): Entry[] {
  const t = TRIPLET[arch];
  const out: Entry[] = [];
  const take = (id: string, rel: string) => {
    const p = join(inputDir(id), rel);
    const st = lstatSync(p);
    out.push(st.isSymbolicLink() ? { path: rel, type: 'symlink', mode: 0o777, target: readlinkSync(p) } : fileEntry(rel, p));
  };
  const ld = arch === 'x86_64' ? 'ld-linux-x86-64.so.2' : 'ld-linux-aarch64.so.1';
  for (const so of [ld, 'libc.so.6', 'libm.so.6', 'libdl.so.2', 'libpthread.so.0']) take(`libc6-${arch}`, `lib/${t}/${so}`);
  take(`libc6-${arch}`, arch === 'x86_64' ? `lib64/${ld}` : `lib/${ld}`);
  take(`libstdcxx-${arch}`, `usr/lib/${t}/libstdc++.so.6`);
  take(`libstdcxx-${arch}`, `usr/lib/${t}/libstdc++.so.6.0.30`);
  take(`libgcc-${arch}`, `lib/${t}/libgcc_s.so.1`);
  return out;
}

/** The static busybox and a link for each of its applets that runit-ts does not replace. */
export function busyboxEntries(arch: Arch): Entry[] {
  const bb = join(requireInput(`busybox-${arch}`), 'bin', 'busybox');
  const out: Entry[] = [fileEntry('bin/busybox', bb, 0o755)];
  // the applet list of the static busybox (same build for both arches)
  const list = readFileSync(join(repoRoot, 'image', 'busybox-applets.txt'), 'utf8').split('\n').filter(Boolean);
  for (const a of list) if (!BUSYBOX_SKIP.has(a) && a !== 'busybox') out.push({ path: `bin/${a}`, type: 'symlink', mode: 0o777, target: 'busybox' });
  return out;
}

/** Where runsvdir looks: /etc/service -> /etc/runit/runsvdir/current -> default (runsvchdir moves current). */
export const RUNSVDIR = 'etc/runit/runsvdir';

/** A service directory of the catalogue (services/NAME) as /etc/sv/NAME, once. */
function copyService(name: string, seen: Set<string>): Entry[] {
  if (seen.has(name)) return [];
  seen.add(name);
  const src = join(repoRoot, 'services', name);
  if (!existsSync(src)) throw new Error(`no service ${name} in services/`);
  return [{ path: `etc/sv/${name}`, type: 'dir', mode: 0o755 }, ...treeEntries(src, `etc/sv/${name}`)];
}

/**
 * SHA-512 crypt(3) of a password, by the pinned busybox's mkpasswd (x86_64: it runs on
 * the build host). The salt is random, or derived from the password when
 * $SOURCE_DATE_EPOCH asks for a reproducible build.
 */
export function hashPassword(password: string): string {
  const bb = join(requireInput('busybox-x86_64'), 'bin', 'busybox');
  const raw = reproducibleBuild() ? createHash('sha256').update(`runit-ts salt\0${password}`).digest().subarray(0, 12) : randomBytes(12);
  const salt = raw.toString('base64').replace(/\+/g, '.');
  const r = execaSync(bb, ['mkpasswd', '-m', 'sha512', '-S', salt], { input: password, reject: false });
  if (r.exitCode !== 0 || !/^\$6\$/.test(r.stdout)) throw new Error(`unable to hash the login password: ${r.stderr || r.stdout}`);
  return r.stdout.trim();
}

/** The service directories, the runlevels and what the catalogue's services read from the spec (`debian`: root's password is set by debianSystem). */
export function serviceEntries(spec: ImageSpec, debian = false): Entry[] {
  const out: Entry[] = [];
  const seen = new Set<string>();
  const services = spec.services ?? DEFAULT_SERVICES;
  const single = spec.single ?? SINGLE_SERVICES;
  for (const [level, names] of [['default', services], ['single', single]] as const) {
    out.push({ path: `${RUNSVDIR}/${level}`, type: 'dir', mode: 0o755 });
    for (const name of names) {
      out.push(...copyService(name, seen));
      out.push({ path: `${RUNSVDIR}/${level}/${name}`, type: 'symlink', mode: 0o777, target: `/etc/sv/${name}` });
    }
  }
  out.push({ path: `${RUNSVDIR}/current`, type: 'symlink', mode: 0o777, target: 'default' });
  out.push({ path: 'etc/service', type: 'symlink', mode: 0o777, target: `/${RUNSVDIR}/current` });
  const all = [...services, ...single];
  if (all.includes('getty')) {
    const login = spec.login;
    if (!login || (!login.autologin && login.password === undefined && !login.passwordHash))
      throw new Error('service getty needs login: {autologin: USER} or {password: ...} in the image spec');
    if (login.autologin) out.push({ path: 'etc/sv/getty/autologin', type: 'file', mode: 0o644, data: Buffer.from(login.autologin + '\n') });
  }
  // root's password: locked unless the spec gives one (login -f and su from root need none)
  if (!debian) {
    const hash = spec.login?.passwordHash ?? (spec.login?.password !== undefined ? hashPassword(spec.login.password) : '*');
    out.push({ path: 'etc/shadow', type: 'file', mode: 0o600, data: Buffer.from(`root:${hash}:0:0:99999:7:::\n`) });
  }
  if (all.includes('crond')) {
    out.push({ path: 'var/spool/cron/crontabs', type: 'dir', mode: 0o755 });
    out.push({ path: 'var/spool/cron/crontabs/root', type: 'file', mode: 0o600, data: Buffer.from((spec.cron ?? DEFAULT_CRONTAB).map((l) => l + '\n').join('')) });
  }
  if (all.includes('sshd')) {
    const keys = spec.ssh?.authorizedKeys ?? [];
    if (!keys.length) throw new Error('service sshd needs ssh: {authorizedKeys: [...]} in the image spec (public-key logins only)');
    const bin = join(requireInput(`tinysshd-${spec.arch}`), 'usr', 'sbin', 'tinysshd');
    out.push(fileEntry('usr/sbin/tinysshd', bin, 0o755));
    for (const l of ['tinysshd-makekey', 'tinysshd-printkey']) out.push({ path: `usr/sbin/${l}`, type: 'symlink', mode: 0o777, target: 'tinysshd' });
    out.push({ path: 'etc/tinyssh', type: 'dir', mode: 0o755 });
    out.push({ path: 'root/.ssh', type: 'dir', mode: 0o700 });
    out.push({ path: 'root/.ssh/authorized_keys', type: 'file', mode: 0o600, data: Buffer.from(keys.map((k) => k.trim() + '\n').join('')) });
  }
  if (all.includes('ntp')) {
    if (spec.ntp?.server) out.push({ path: 'etc/sv/ntp/server', type: 'file', mode: 0o644, data: Buffer.from(spec.ntp.server + '\n') });
    else out.push({ path: 'etc/sv/ntp/down', type: 'file', mode: 0o644, data: Buffer.alloc(0) });
  }
  if (all.includes('network')) out.push({ path: 'etc/resolv.conf', type: 'symlink', mode: 0o777, target: '/run/network/resolv.conf' });
  for (const s of spec.inline ?? []) out.push(...inlineService(s));
  return out;
}

/** Kernel modules of the image: the spec's (or the arch's default), and what its services need. */
export function imageModules(spec: ImageSpec): string[] {
  const modules = [...(spec.modules ?? DEFAULT_MODULES[spec.arch])];
  if ([...(spec.services ?? DEFAULT_SERVICES), ...(spec.single ?? SINGLE_SERVICES)].includes('network'))
    for (const m of NETWORK_MODULES) if (!modules.includes(m)) modules.push(m);
  return modules;
}

/** A service given inline (files and their contents), enabled in the default runlevel unless said otherwise. */
export function inlineService(s: ServiceDef): Entry[] {
  const out: Entry[] = [];
  for (const [rel, text] of Object.entries(s.files)) {
    const script = text.startsWith('#!') || /(^|\/)(run|finish|check)$/.test(rel) || rel.startsWith('control/');
    out.push({ path: `etc/sv/${s.name}/${rel}`, type: 'file', mode: script ? 0o755 : 0o644, data: Buffer.from(text) });
  }
  if (s.enabled !== false) out.push({ path: `${RUNSVDIR}/default/${s.name}`, type: 'symlink', mode: 0o777, target: `/etc/sv/${s.name}` });
  return out;
}

// busybox-static's ash runs its own applets before searching PATH (standalone mode), so
// its init/halt/poweroff/reboot would shadow runit's: shell functions take precedence.
const PROFILE = `export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export SVDIR=/etc/service
export PS1='\\h:\\w# '
init() { /sbin/runit-init "$@"; }
halt() { /sbin/runit-init 0; }
poweroff() { /sbin/runit-init 0; }
reboot() { /sbin/runit-init 6; }
`;

/** Everything in the image for this spec. `outDir` holds the built binaries (out/<arch>); `base` a Debian base's entries (image/debian/base.ts). */
export function rootfs(spec: ImageSpec, outDir: string, base?: Entry[]): Entry[] {
  const e: Entry[] = base ? debianSystem(spec, base) : busyboxSystem(spec, outDir);
  const text = (path: string, s: string, mode = 0o644) => e.push({ path, type: 'file', mode, data: Buffer.from(s) });
  text('etc/hostname', `${spec.hostname ?? 'runit-ts'}\n`);
  const modules = imageModules(spec);
  const rel = kernelRelease(spec.arch);
  if (modules.length || !base) text('etc/modules', modules.map((m) => m + '\n').join(''));
  if (modules.length) {
    const modDir = kernelModulesDir(spec.arch);
    const set = resolveModules(modDir, modules);
    for (const f of set.files) e.push(fileEntry(`lib/modules/${rel}/${f}`, join(modDir, f), 0o644));
    text(`lib/modules/${rel}/modules.dep`, set.dep);
  }
  e.push(...serviceEntries(spec, base !== undefined));
  const accounts = base ? baseAccounts(base, spec) : { users: spec.users ?? [], groups: spec.groups ?? [] };
  e.push(...userEntries(spec, accounts));
  if (spec.containerInit) e.push(...superviseLinks(e, base !== undefined));
  // last: the plan looks at the whole tree, the spec's own files included
  const plan = !base && spec.prestart !== false ? prestartPlan(e, rel) : undefined;
  if (plan) text(PRESTART_PLAN, plan);
  return e;
}

/** The busybox system: libraries, busybox, our executable and its links, PID 1, the accounts. */
function busyboxSystem(spec: ImageSpec, outDir: string): Entry[] {
  const { arch } = spec;
  const e: Entry[] = [];
  const dir = (path: string, mode = 0o755) => e.push({ path, type: 'dir', mode });
  const text = (path: string, s: string, mode = 0o644) => e.push({ path, type: 'file', mode, data: Buffer.from(s) });
  // the root itself: without this entry / keeps the mode the kernel gave rootfs (tmpfs:
  // 1777, writable by anyone); the kernel applies a directory entry's mode to an existing one
  dir('.');
  for (const d of ['bin', 'sbin', 'usr/bin', 'usr/sbin', 'etc/runit', 'etc/sv', RUNSVDIR, 'proc', 'sys', 'dev', 'dev/pts', 'run', 'var/log', 'var/lib', 'root', 'home', 'mnt']) dir(d);
  dir('tmp', 0o1777);
  e.push({ path: 'dev/console', type: 'char', mode: 0o600, major: 5, minor: 1 });
  e.push({ path: 'dev/null', type: 'char', mode: 0o666, major: 1, minor: 3 });
  e.push({ path: 'var/run', type: 'symlink', mode: 0o777, target: '/run' });
  e.push(...libEntries(arch), ...busyboxEntries(arch));
  e.push(fileEntry(BINARY, join(outDir, 'runit-ts'), 0o755));
  e.push(fileEntry(ADDON, join(outDir, 'runit-ts.node'), 0o755));
  e.push({ path: 'usr/bin/runit-ts', type: 'symlink', mode: 0o777, target: `/${BINARY}` });
  for (const [link] of Object.entries(APPLET_LINKS)) e.push({ path: link, type: 'symlink', mode: 0o777, target: `/${BINARY}` });
  e.push(fileEntry('sbin/runit', join(outDir, 'runit'), 0o755));
  e.push({ path: 'init', type: 'symlink', mode: 0o777, target: '/sbin/runit' });
  text('etc/passwd', passwdText(spec.users ?? []));
  text('etc/group', groupText(spec.users ?? [], spec.groups ?? []));
  text('etc/profile', PROFILE);
  text('etc/os-release', 'NAME="runit-ts"\nID=runit-ts\nPRETTY_NAME="runit-ts"\n');
  return e;
}

/** runit-ts's names a Debian base gets beside runit-ts-init's Debian paths: the initramfs's /init, container-init. */
const DEBIAN_LINKS: Record<string, string> = {
  init: '/sbin/runit',
  'sbin/container-init': `/${BINARY}`,
  'usr/bin/container-probe': `/${BINARY}`,
};

/**
 * A Debian base (its packages and runit-ts-init, image/debian/base.ts) with the spec's
 * users and groups added to Debian's accounts (a name or id Debian has is an error) and
 * root's password when the spec gives one.
 */
function debianSystem(spec: ImageSpec, base: Entry[]): Entry[] {
  const e: Entry[] = [...base];
  for (const [path, target] of Object.entries(DEBIAN_LINKS)) e.push({ path, type: 'symlink', mode: 0o777, target });
  const read = (path: string) => {
    const f = base.find((x) => x.path === path && x.type === 'file');
    if (!f) throw new Error(`the Debian base has no /${path}`);
    return { entry: f, text: entryData(f).toString('utf8') };
  };
  const users = spec.users ?? [];
  const groups = spec.groups ?? [];
  const passwd = read('etc/passwd');
  const group = read('etc/group');
  const shadow = read('etc/shadow');
  const names = (t: string) => new Map(accountFields(t).map((f) => [f[0]!, Number(f[2])] as const));
  const haveUsers = names(passwd.text);
  const haveGroups = names(group.text);
  for (const u of users) {
    if (haveUsers.has(u.name)) throw new Error(`user ${u.name}: the Debian base has this user already`);
    if ([...haveUsers.values()].includes(u.uid)) throw new Error(`user ${u.name}: uid ${u.uid} is taken in the Debian base`);
  }
  for (const g of groups) {
    if (haveGroups.has(g.name)) throw new Error(`group ${g.name}: the Debian base has this group already`);
    if ([...haveGroups.values()].includes(g.gid)) throw new Error(`group ${g.name}: gid ${g.gid} is taken in the Debian base`);
  }
  const days = Math.floor(sourceDateEpoch() / 86400);
  const add = (f: { entry: Entry; text: string }, lines: string[]) => e.push({ ...f.entry, data: Buffer.from(f.text + lines.map((l) => l + '\n').join('')) });
  add(passwd, users.map((u) => `${u.name}:x:${u.uid}:${u.gid ?? u.uid}:${u.name}:${u.home ?? `/home/${u.name}`}:${u.shell ?? '/bin/sh'}`));
  const own = new Set([...haveGroups.values(), ...groups.map((g) => g.gid)]);
  const userGroups = users.filter((u) => !own.has(u.gid ?? u.uid)).map((u) => `${u.name}:x:${u.gid ?? u.uid}:`);
  add(group, [...groups.map((g) => `${g.name}:x:${g.gid}:${(g.members ?? []).join(',')}`), ...userGroups]);
  const hash = spec.login?.passwordHash ?? (spec.login?.password !== undefined ? hashPassword(spec.login.password) : undefined);
  const shadowText = hash ? shadow.text.replace(/^root:[^:]*:/m, `root:${hash}:`) : shadow.text;
  e.push({ ...shadow.entry, data: Buffer.from(shadowText + users.map((u) => `${u.name}:!:${days}:0:99999:7:::\n`).join('')) });
  return e;
}

/** The colon-separated fields of each line of /etc/passwd or /etc/group. */
function accountFields(text: string): string[][] {
  return text.split('\n').filter(Boolean).map((l) => l.split(':'));
}

/** The accounts an owner may name on a Debian base: Debian's (from the base) and the spec's. */
function baseAccounts(base: Entry[], spec: ImageSpec): { users: UserDef[]; groups: GroupDef[] } {
  const parse = (path: string) => accountFields(entryData(base.find((x) => x.path === path) ?? { path, type: 'file', mode: 0 }).toString('utf8'));
  const users: UserDef[] = parse('etc/passwd').map((f) => ({ name: f[0]!, uid: Number(f[2]), gid: Number(f[3]) }));
  const groups: GroupDef[] = parse('etc/group').map((f) => ({ name: f[0]!, gid: Number(f[2]) }));
  return { users: [...users.filter((u) => u.uid !== 0), ...(spec.users ?? [])], groups: [...groups.filter((g) => g.gid !== 0), ...(spec.groups ?? [])] };
}

/**
 * A container image's root may be read-only: every /etc/sv/NAME/supervise (and
 * log/supervise) is a symlink into container-init's state directory, as Debian does for
 * runit (src/container/paths.ts), so `sv status /etc/service/NAME` works in the container.
 * On a Debian base the links go where Debian's own go, /run/runit/supervise/NAME (and
 * NAME.log), which stage 2 makes when the image boots and container-init when it runs
 * as a container: the same image works both ways.
 */
export function superviseLinks(entries: Entry[], debian: boolean): Entry[] {
  const out: Entry[] = [];
  // a Debian service directory has its link already (into /run/runit/supervise, made by
  // stage 2 and container-init alike): kept as Debian made it
  const seen = new Set(entries.filter((e) => e.type === 'symlink' && /^etc\/sv\/[^/]+\/(log\/)?supervise$/.test(e.path)).map((e) => e.path.replace(/supervise$/, 'run')));
  for (const { path } of entries) {
    const m = /^etc\/sv\/([^/]+)\/(log\/)?run$/.exec(path);
    if (!m || seen.has(path)) continue;
    seen.add(path);
    const name = m[1]!;
    const log = m[2] !== undefined;
    const target = debian ? `${SUPERVISE_RUN}/${name}${log ? '.log' : ''}` : superviseLinkTarget(name, log);
    out.push({ path: `etc/sv/${name}/${log ? 'log/' : ''}supervise`, type: 'symlink', mode: 0o777, target });
  }
  return out;
}

/** A file's mode as a spec gives it ("0644", "755" or a number), `dflt` when it gives none. */
function parseMode(m: string | number | undefined, dflt: number): number {
  if (m === undefined) return dflt;
  return typeof m === 'number' ? m : parseInt(m, 8);
}

/**
 * What the spec adds to the system: its users' home directories, container-init's
 * directories (containerInit) and its files, each with its owner. /etc/passwd and
 * /etc/group are in the system part already (rootfs), from the same users and groups.
 */
export function userEntries(spec: Omit<ImageSpec, 'arch'>, accounts: { users: UserDef[]; groups: GroupDef[] } = { users: spec.users ?? [], groups: spec.groups ?? [] }): Entry[] {
  const { users, groups } = accounts;
  const owner = (o: string) => resolveOwner(o, users, groups, (m) => {
    throw new Error(`owner ${o}: ${m}`);
  });
  const e: Entry[] = [];
  if (spec.containerInit) e.push({ path: 'etc/runit-ts/startup.d', type: 'dir', mode: 0o755 });
  for (const u of spec.users ?? []) {
    const home = homeOf(u);
    if (home && home !== 'nonexistent') e.push({ path: home, type: 'dir', mode: 0o755, uid: u.uid, gid: u.gid ?? u.uid });
  }
  if (spec.containerInit) {
    // the state directory and the supervise links' parent (a booted image has no container-init to make it)
    for (const d of [DEFAULT_STATE, `${DEFAULT_STATE}/${SUPERVISE_SUBDIR}`].map((p) => p.slice(1))) {
      e.push({ path: d, type: 'dir', mode: 0o1777 });
      if (spec.containerInit.user !== undefined) {
        const [uid, gid] = owner(spec.containerInit.user);
        e.push({ path: d, type: 'dir', mode: 0o755, uid, gid });
      }
    }
  }
  for (const t of spec.trees ?? []) {
    const [uid, gid] = t.owner ? owner(t.owner) : [0, 0];
    const dest = (t.path ?? '').replace(/^\/+|\/+$/g, '');
    for (const x of treeEntries(t.source, dest || '.')) e.push({ ...x, path: x.path.replace(/^\.\//, ''), uid, gid });
  }
  for (const f of spec.files ?? []) {
    const path = f.path.replace(/^\/+|\/+$/g, '');
    const [uid, gid] = f.owner ? owner(f.owner) : [0, 0];
    const type = f.type ?? (f.target !== undefined ? 'symlink' : 'file');
    if (type === 'dir') e.push({ path, type: 'dir', mode: parseMode(f.mode, 0o755), uid, gid });
    else if (type === 'symlink') e.push({ path, type: 'symlink', mode: 0o777, target: f.target!, uid, gid });
    else {
      const src = f.source;
      const mode = parseMode(f.mode, src ? statSync(src).mode & 0o7777 : 0o644);
      e.push({ path, type: 'file', mode, uid, gid, data: src ? () => readFileSync(src) : Buffer.from(f.content ?? '') });
    }
  }
  return e;
}
