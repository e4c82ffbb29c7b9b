// ext4 packer: the rootfs entries as an ext4 image file, built without mounting anything.
// mke2fs -d copies a staged tree into the new file system; e2fsprogs 1.47.0 takes each
// inode's atime/ctime (and crtime: now) from the host, so debugfs then sets every inode
// time to SOURCE_DATE_EPOCH. With a fixed UUID and directory hash seed, and the tree
// staged in sorted order, two builds are byte-identical.
import { chmodSync, closeSync, openSync, readSync, writeSync, lchownSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync, utimesSync, lutimesSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { execa } from 'execa';
import { entryData, sortEntries, type Entry } from '../../src/lib/entry.ts';

export interface Ext4Options {
  /** size of the file system in bytes */
  size: number;
  /** file system UUID (also the directory hash seed) */
  uuid: string;
  label?: string;
  /** every inode time and the superblock times (default 0) */
  epoch?: number;
  /** where to stage the tree (default: beside the output) */
  tmp?: string;
}

export class DiskError extends Error {}

/** Bytes the entries need at least (data rounded to 4 KiB blocks, plus an inode each). */
export function contentSize(entries: Entry[]): number {
  let n = 0;
  for (const e of entries) {
    n += 256;
    if (e.type === 'file') n += Math.ceil(entryData(e).length / 4096) * 4096;
    else if (e.type === 'dir') n += 4096;
  }
  return n;
}

/** Write the entries as a tree under `root` (owners, modes, device nodes: needs root for those). */
export async function stageTree(root: string, entries: Entry[], epoch: number): Promise<string[]> {
  const paths: string[] = [];
  const sorted = sortEntries(entries);
  for (const e of sorted) {
    const p = join(root, e.path);
    mkdirSync(dirname(p), { recursive: true });
    switch (e.type) {
      case 'dir':
        mkdirSync(p, { recursive: true });
        break;
      case 'file':
        writeFileSync(p, entryData(e));
        break;
      case 'symlink':
        symlinkSync(e.target ?? '', p);
        break;
      case 'char':
      case 'block':
        await execa('mknod', [p, e.type === 'char' ? 'c' : 'b', String(e.major ?? 0), String(e.minor ?? 0)]);
        break;
      case 'fifo':
        await execa('mknod', [p, 'p']);
        break;
    }
    lchownSync(p, e.uid ?? 0, e.gid ?? 0);
    if (e.type !== 'symlink') chmodSync(p, e.mode);
    paths.push('/' + e.path);
  }
  // times last: creating children changes a directory's mtime
  for (const e of sorted) {
    const p = join(root, e.path);
    if (e.type === 'symlink') lutimesSync(p, epoch, epoch);
    else utimesSync(p, epoch, epoch);
  }
  return paths;
}

const TIME_FIELDS = ['atime', 'mtime', 'ctime', 'crtime'];

/** Build `file` (replaced) as an ext4 image holding `entries`. */
export async function writeExt4(file: string, entries: Entry[], o: Ext4Options): Promise<void> {
  const epoch = o.epoch ?? 0;
  const need = contentSize(entries);
  const stage = mkdtempSync(join(o.tmp ?? dirname(file), '.ext4-stage-'));
  try {
    const paths = await stageTree(join(stage, 'root'), entries, epoch);
    rmSync(file, { force: true });
    const env = { E2FSPROGS_FAKE_TIME: String(epoch), LC_ALL: 'C' };
    const mk = await execa(
      'mke2fs',
      ['-q', '-F', '-t', 'ext4', '-b', '4096', '-I', '256', '-m', '0', '-L', o.label ?? 'root', '-U', o.uuid,
        '-E', `hash_seed=${o.uuid},root_owner=0:0,lazy_itable_init=0,lazy_journal_init=0`, '-d', join(stage, 'root'),
        file, `${Math.floor(o.size / 1024)}k`],
      { env, reject: false, all: true },
    );
    if (mk.exitCode !== 0) {
      rmSync(file, { force: true });
      if (/allocate|No space|Could not/i.test(mk.all ?? '') || need > o.size * 0.9) {
        throw new DiskError(`the root file system does not fit: ${(need / 1048576).toFixed(0)} MiB of files in a ${(o.size / 1048576).toFixed(0)} MiB file system (raise disk.size)`);
      }
      throw new DiskError(`mke2fs failed: ${(mk.all ?? '').trim().split('\n').pop()}`);
    }
    // every inode's times (the root, lost+found and each entry) to the epoch
    const cmds: string[] = [];
    // reserved inodes (journal, resize) too
    const inodes = [...Array.from({ length: 10 }, (_, i) => `<${i + 1}>`), '/lost+found', ...paths.map((p) => `"${p}"`)];
    for (const q of inodes) {
      for (const f of TIME_FIELDS) cmds.push(`sif ${q} ${f} ${epoch}`, `sif ${q} ${f}_extra 0`);
    }
        writeFileSync(join(stage, 'times.debugfs'), cmds.join('\n') + '\n');
    const dbg = await execa('debugfs', ['-w', '-f', join(stage, 'times.debugfs'), file], { env, reject: false, all: true });
    const bad = (dbg.all ?? '').split('\n').filter((l) => l && !l.startsWith('debugfs') && !l.startsWith('sif '));
    if (dbg.exitCode !== 0 || bad.length) throw new DiskError(`debugfs could not set inode times: ${bad[0] ?? `exit ${dbg.exitCode}`}`);
    // debugfs stamps the superblocks' last-write time with the clock when it closes
    stampSuperblocks(file, epoch);
  } catch (e) {
    rmSync(file, { force: true });
    throw e;
  } finally {
    rmSync(stage, { recursive: true, force: true });
  }
}

// CRC-32C (Castagnoli), reflected: what ext4's metadata checksums use. A table and a loop;
// no npm dependency for twenty lines.
const CRC32C = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

export function crc32c(buf: Buffer, seed = 0xffffffff): number {
  let c = seed >>> 0;
  for (const b of buf) c = (CRC32C[(c ^ b) & 0xff]! ^ (c >>> 8)) >>> 0;
  return c >>> 0;
}

/**
 * Set the write, last-check and creation times (s_wtime, s_lastcheck, s_mkfs_time) of the
 * primary and every backup superblock to `epoch`
 * and recompute each one's checksum (0x3fc, crc32c(~0) of the bytes before it, when the
 * metadata_csum feature is on). e2fsprogs 1.47.0 has no way to fake its clock.
 */
export function stampSuperblocks(file: string, epoch: number): void {
  const fd = openSync(file, 'r+');
  try {
    const sb = Buffer.alloc(1024);
    readSync(fd, sb, 0, 1024, 1024);
    if (sb.readUInt16LE(0x38) !== 0xef53) throw new DiskError(`${file}: no ext4 superblock`);
    const blocks = sb.readUInt32LE(0x04);
    const firstData = sb.readUInt32LE(0x14);
    const bs = 1024 << sb.readUInt32LE(0x18);
    const perGroup = sb.readUInt32LE(0x20);
    const groups = Math.ceil((blocks - firstData) / perGroup);
    const csum = (sb.readUInt32LE(0x64) & 0x400) !== 0;
    const isPow = (g: number, b: number) => {
      let x = b;
      while (x < g) x *= b;
      return x === g;
    };
    for (let g = 0; g < groups; g++) {
      if (g > 1 && !isPow(g, 3) && !isPow(g, 5) && !isPow(g, 7)) continue;
      const off = g === 0 ? 1024 : (g * perGroup + firstData) * bs;
      const b = Buffer.alloc(1024);
      readSync(fd, b, 0, 1024, off);
      if (b.readUInt16LE(0x38) !== 0xef53) continue;
      for (const [lo, hi] of [[0x30, 0x274], [0x40, 0x277], [0x108, 0x276]] as const) {
        b.writeUInt32LE(epoch >>> 0, lo);
        b.writeUInt8(Math.floor(epoch / 2 ** 32) & 0xff, hi);
      }
      if (csum) b.writeUInt32LE(crc32c(b.subarray(0, 0x3fc)), 0x3fc);
      writeSync(fd, b, 0, 1024, off);
    }
  } finally {
    closeSync(fd);
  }
}
