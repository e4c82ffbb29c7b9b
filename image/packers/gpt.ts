// GPT packer: a partitioned disk image from partition images, without loop devices.
// sfdisk writes the tables into a sparse file (fixed disk and partition GUIDs, so the
// result is reproducible); the partition images are then copied in at their offsets.
import { closeSync, openSync, readSync, statSync, writeSync, ftruncateSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { execa } from 'execa';

export const SECTOR = 512;
const MIB = 1048576;

/** GPT partition type GUIDs (the Discoverable Partitions Specification's for roots). */
export const PART_TYPE = {
  esp: 'C12A7328-F81F-11D2-BA4B-00A0C93EC93B',
  'root-x86_64': '4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709',
  'root-aarch64': 'B921B045-1DF0-41C3-AF44-4C6F280D3FAE',
} as const;

export interface Partition {
  name: string;
  type: string;
  uuid: string;
  /** the partition's contents */
  image: string;
  /** the partition's size (default: the image's), rounded up to 1 MiB */
  size?: number;
  /** GPT attribute names, e.g. LegacyBIOSBootable (U-Boot's distro boot looks for it) */
  attrs?: string[];
}

/** A stable UUID (version 4 layout) derived from a name, so builds need no randomness. */
export function stableUuid(seed: string): string {
  const h = createHash('sha256').update(seed).digest();
  h[6] = (h[6]! & 0x0f) | 0x40;
  h[8] = (h[8]! & 0x3f) | 0x80;
  const x = h.subarray(0, 16).toString('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20, 32)}`;
}

/** Where each partition starts (bytes), for a disk laid out by writeGpt. */
export function layout(parts: { size: number }[]): { offsets: number[]; total: number } {
  let at = MIB; // first partition at 1 MiB, every partition 1 MiB aligned
  const offsets: number[] = [];
  for (const p of parts) {
    offsets.push(at);
    at += Math.ceil(p.size / MIB) * MIB;
  }
  return { offsets, total: at + MIB }; // the backup table in the last MiB
}

/** Copy `src` into `fd` at `offset`, skipping all-zero blocks (the target is sparse). */
function copyInto(fd: number, src: string, offset: number): void {
  const inFd = openSync(src, 'r');
  const buf = Buffer.alloc(4 * MIB);
  try {
    let pos = 0;
    for (;;) {
      const n = readSync(inFd, buf, 0, buf.length, pos);
      if (n <= 0) break;
      for (let o = 0; o < n; o += 65536) {
        const len = Math.min(65536, n - o);
        const chunk = buf.subarray(o, o + len);
        if (chunk.some((b) => b !== 0)) writeSync(fd, chunk, 0, len, offset + pos + o);
      }
      pos += n;
    }
  } finally {
    closeSync(inFd);
  }
}

export async function writeGpt(file: string, diskUuid: string, parts: Partition[]): Promise<void> {
  const sizes = parts.map((p) => ({ size: Math.max(p.size ?? 0, statSync(p.image).size) }));
  const { offsets, total } = layout(sizes);
  const fd = openSync(file, 'w');
  try {
    ftruncateSync(fd, total);
  } finally {
    closeSync(fd);
  }
  const lines = ['label: gpt', `label-id: ${diskUuid}`, 'unit: sectors', 'first-lba: 2048', `sector-size: ${SECTOR}`];
  parts.forEach((p, i) => {
    const size = Math.ceil(sizes[i]!.size / MIB) * MIB;
    lines.push(
      `start=${offsets[i]! / SECTOR}, size=${size / SECTOR}, type=${p.type}, uuid=${p.uuid}, name="${p.name}"` +
        (p.attrs?.length ? `, attrs="${p.attrs.join(' ')}"` : ''),
    );
  });
  const r = await execa('sfdisk', ['--no-reread', '--no-tell-kernel', '-q', '--wipe', 'always', file], {
    input: lines.join('\n') + '\n', reject: false, all: true, env: { LC_ALL: 'C' },
  });
  if (r.exitCode !== 0) throw new Error(`sfdisk: ${(r.all ?? '').trim().split('\n').pop()}`);
  const out = openSync(file, 'r+');
  try {
    parts.forEach((p, i) => copyInto(out, p.image, offsets[i]!));
  } finally {
    closeSync(out);
  }
}
