// What an image's outputs hold that every user may write, or that runs with another's
// rights: world-writable files, directories and device nodes, and setuid or setgid
// files, read back from the packed outputs (not from the entry list they were made
// from): a newc cpio (initramfs.img, early.img), a tar (rootfs.tar), an ext4 image
// (root.ext4, through debugfs), and the allow-lists they are held against, each entry
// with its reason: test/host/security-image.test.ts for our busybox-based images,
// test/lib/debian-suite.ts for the Debian-based one.
import { closeSync, createReadStream, openSync, readSync, writeFileSync } from 'node:fs';
import { execa } from 'execa';
import { extract } from 'tar-stream';

/** One file of an output, as read back: its path (no leading slash), type and permission bits. */
export interface ModeEntry {
  path: string;
  type: 'file' | 'dir' | 'symlink' | 'char' | 'block' | 'fifo' | 'socket';
  /** permission bits, setuid, setgid and sticky included (0o7777) */
  mode: number;
}

/** An entry the image may have although it is world-writable, setuid or setgid, and why. */
export interface Allowed {
  path: string;
  type: ModeEntry['type'];
  mode: number;
  reason: string;
}

/** What every image of ours may hold. */
export const COMMON: Allowed[] = [
  { path: 'tmp', type: 'dir', mode: 0o1777, reason: 'scratch space for every user; sticky: only a file\'s owner removes it' },
  { path: 'dev/null', type: 'char', mode: 0o666, reason: 'the null device, which every process writes to' },
];
/** What the container outputs hold besides. */
export const CONTAINER: Allowed[] = [
  ...COMMON,
  {
    path: 'run/runit-ts',
    type: 'dir',
    mode: 0o1777,
    reason: 'container-init\'s state directory: the container may run as any user (podman --user), who must make its supervise/ copy there; sticky. With container.user in the spec it is that user\'s, 0755',
  },
  { path: 'run/runit-ts/supervise', type: 'dir', mode: 0o1777, reason: 'the parent of the services\' supervise/ links: as run/runit-ts' },
];

/** The setuid and setgid programs of Debian 12's minbase with cron (their packages install them so): who may use them, and why. */
const DEBIAN_PROGRAMS: Array<[string, number, string]> = [
  ['usr/bin/su', 0o4755, 'util-linux: become another user with their password'],
  ['usr/bin/mount', 0o4755, 'util-linux: mounts that /etc/fstab marks user'],
  ['usr/bin/umount', 0o4755, 'util-linux: the same mounts undone'],
  ['usr/bin/passwd', 0o4755, 'passwd: a user changes their own password in /etc/shadow'],
  ['usr/bin/chfn', 0o4755, 'passwd: a user changes their own finger information'],
  ['usr/bin/chsh', 0o4755, 'passwd: a user changes their own login shell'],
  ['usr/bin/gpasswd', 0o4755, 'passwd: group administrators manage /etc/gshadow'],
  ['usr/bin/newgrp', 0o4755, 'login: enter a group with its password'],
  ['usr/bin/chage', 0o2755, 'passwd: group shadow, to show a user their own password ageing'],
  ['usr/bin/expiry', 0o2755, 'passwd: group shadow, to check a password\'s expiry'],
  ['usr/sbin/unix_chkpwd', 0o2755, 'libpam-modules: group shadow, PAM\'s check of the caller\'s own password'],
  ['usr/bin/crontab', 0o2755, 'cron: group crontab, to write /var/spool/cron/crontabs (1730)'],
];
/** The device nodes Debian's base has in /dev before devtmpfs covers it, 0666 as the kernel makes them. */
const DEBIAN_DEVICES = ['console', 'full', 'null', 'ptmx', 'random', 'tty', 'urandom', 'zero'];

/** What the Debian-based image (image/specs/debian.yaml) may hold: ours, Debian's, and container-init's. */
export const DEBIAN: Allowed[] = [
  ...CONTAINER.filter((a) => a.path !== 'dev/null'),
  { path: 'var/tmp', type: 'dir', mode: 0o1777, reason: 'scratch space kept across boots, as /tmp; sticky' },
  { path: 'run/lock', type: 'dir', mode: 0o1777, reason: 'lock files of every user (/var/lock links here); sticky' },
  { path: 'var/local', type: 'dir', mode: 0o2775, reason: 'base-files: group staff, setgid so that what staff adds stays staff\'s' },
  { path: 'var/mail', type: 'dir', mode: 0o2775, reason: 'base-files: group mail, setgid so that mailboxes stay group mail' },
  ...DEBIAN_DEVICES.map((d): Allowed => ({ path: `dev/${d}`, type: 'char', mode: 0o666, reason: 'a device every process may open' })),
  ...DEBIAN_PROGRAMS.map(([path, mode, reason]): Allowed => ({ path, type: 'file', mode, reason })),
];

/** The type of a file from the S_IFMT bits of a mode. */
function typeOf(mode: number): ModeEntry['type'] {
  switch (mode & 0o170000) {
    case 0o040000:
      return 'dir';
    case 0o120000:
      return 'symlink';
    case 0o020000:
      return 'char';
    case 0o060000:
      return 'block';
    case 0o010000:
      return 'fifo';
    case 0o140000:
      return 'socket';
    default:
      return 'file';
  }
}

/** The world-writable, setuid and setgid entries (a symlink's own mode means nothing: left out). */
export function specialModes(entries: ModeEntry[]): ModeEntry[] {
  return entries.filter((e) => e.type !== 'symlink' && (e.mode & 0o002 || e.mode & 0o6000));
}

/** "path type mode" of each special entry not in the allow-list (mode and type must match exactly). */
export function unexpected(entries: ModeEntry[], allowed: readonly Allowed[]): string[] {
  const show = (e: ModeEntry) => `${e.path} ${e.type} ${e.mode.toString(8).padStart(4, '0')}`;
  return specialModes(entries)
    .filter((e) => !allowed.some((a) => a.path === e.path && a.type === e.type && a.mode === e.mode))
    .map(show);
}

/** Every entry of a newc cpio file (the initramfs the kernel unpacks), from its headers. */
export function cpioModes(file: string): ModeEntry[] {
  const fd = openSync(file, 'r');
  const head = Buffer.alloc(110);
  const out: ModeEntry[] = [];
  const align = (n: number) => (n + 3) & ~3;
  try {
    for (let off = 0; ; ) {
      if (readSync(fd, head, 0, 110, off) !== 110) throw new Error(`${file}: a header cut short at ${off}`);
      if (head.toString('latin1', 0, 6) !== '070701') throw new Error(`${file}: no newc header at ${off}`);
      const field = (i: number) => parseInt(head.toString('latin1', 6 + i * 8, 14 + i * 8), 16);
      const mode = field(1);
      const size = field(6);
      const nameSize = field(11);
      const name = Buffer.alloc(nameSize);
      readSync(fd, name, 0, nameSize, off + 110);
      const path = name.toString('utf8', 0, nameSize - 1);
      if (path === 'TRAILER!!!') return out;
      out.push({ path, type: typeOf(mode), mode: mode & 0o7777 });
      off = align(align(off + 110 + nameSize) + size);
    }
  } finally {
    closeSync(fd);
  }
}

/** Every entry of a tar archive: in memory, or a file (streamed). */
export async function tarModes(tar: Buffer | string): Promise<ModeEntry[]> {
  const out: ModeEntry[] = [];
  const types: Record<string, ModeEntry['type']> = { file: 'file', directory: 'dir', symlink: 'symlink', 'character-device': 'char', 'block-device': 'block', fifo: 'fifo' };
  const x = extract();
  x.on('entry', (h, stream, next) => {
    out.push({ path: h.name.replace(/^\.?\/+|\/+$/g, ''), type: types[h.type ?? 'file'] ?? 'file', mode: (h.mode ?? 0) & 0o7777 });
    stream.on('end', next);
    stream.resume();
  });
  const done = new Promise<void>((res, rej) => {
    x.on('finish', res);
    x.on('error', rej);
  });
  if (Buffer.isBuffer(tar)) x.end(tar);
  else createReadStream(tar).on('error', (e) => x.destroy(e)).pipe(x);
  await done;
  return out;
}

/** debugfs's `ls -l` line: inode, mode (octal, with the type), the entry's type, uid, gid, size, date, time, name. */
const LS_LINE = /^\s*\d+\s+([0-7]+)\s+\(\d+\)\s+\d+\s+\d+\s+\S+\s+\d{1,2}-[A-Za-z]{3}-\d{4} \d\d:\d\d (.*)$/;

/** Every entry of an ext4 image, walked directory by directory with debugfs (nothing mounted). */
export async function ext4Modes(image: string, scratch: string): Promise<ModeEntry[]> {
  const out: ModeEntry[] = [];
  const root = await execa('debugfs', ['-R', 'stat /', image], { env: { LC_ALL: 'C' } });
  const rootMode = /Mode:\s+([0-7]+)/.exec(root.stdout)?.[1];
  out.push({ path: '', type: 'dir', mode: parseInt(rootMode ?? '0', 8) & 0o7777 });
  let dirs = [''];
  while (dirs.length) {
    // one debugfs for a whole level of the tree
    writeFileSync(scratch, dirs.map((d) => `ls -l "/${d}"`).join('\n') + '\n');
    const r = await execa('debugfs', ['-f', scratch, image], { env: { LC_ALL: 'C' } });
    const next: string[] = [];
    let dir: string | undefined;
    for (const line of r.stdout.split('\n')) {
      const cmd = /^debugfs: ls -l "\/(.*)"$/.exec(line);
      if (cmd) {
        dir = cmd[1]!;
        continue;
      }
      const m = LS_LINE.exec(line);
      if (!m || dir === undefined || m[2] === '.' || m[2] === '..') continue;
      const mode = parseInt(m[1]!, 8);
      const path = dir ? `${dir}/${m[2]}` : m[2]!;
      out.push({ path, type: typeOf(mode), mode: mode & 0o7777 });
      if (typeOf(mode) === 'dir') next.push(path);
    }
    dirs = next;
  }
  return out;
}
