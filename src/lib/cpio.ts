// A deterministic newc ("070701") cpio writer: the initramfs format the kernel reads.
// Hand-written because it is tiny (one fixed header per entry) and must be exact about
// ordering, owners and mtimes for reproducible images; no npm library offers newc output
// with device nodes and fixed metadata.
import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import { entryData, sortEntries, type Entry, type EntryType } from './entry.ts';

const TYPE_BITS: Record<EntryType, number> = {
  file: 0o100000, dir: 0o040000, symlink: 0o120000, char: 0o020000, block: 0o060000, fifo: 0o010000,
};

/** A header field: eight hex digits. */
function hex8(n: number): string {
  return (n >>> 0).toString(16).padStart(8, '0');
}

/** Bytes of padding that bring `n` to a multiple of 4 (newc aligns names and data). */
function pad4(n: number): number {
  return (4 - (n % 4)) % 4;
}

/** The 110-byte newc header of one entry. */
function header(ino: number, e: Entry, size: number, mtime: number, nameLen: number): string {
  return (
    '070701' +
    hex8(ino) +
    hex8(TYPE_BITS[e.type] | (e.mode & 0o7777)) +
    hex8(e.uid ?? 0) +
    hex8(e.gid ?? 0) +
    hex8(e.type === 'dir' ? 2 : 1) +
    hex8(mtime) +
    hex8(size) +
    hex8(0) + hex8(0) + // device of the archive's file system: none
    hex8(e.major ?? 0) +
    hex8(e.minor ?? 0) +
    hex8(nameLen) +
    hex8(0)
  );
}

/** Serialise entries (already sorted) into newc chunks. */
export function* cpioChunks(entries: Entry[], mtime = 0): Generator<Buffer> {
  let ino = 1;
  const one = (name: string, e: Entry, body: Buffer) => {
    const nameBuf = Buffer.from(name + '\0');
    const head = Buffer.from(header(ino++, e, body.length, mtime, nameBuf.length), 'ascii');
    const headPad = pad4(head.length + nameBuf.length);
    return [head, nameBuf, Buffer.alloc(headPad), body, Buffer.alloc(pad4(body.length))];
  };
  for (const e of entries) {
    const body = e.type === 'symlink' ? Buffer.from(e.target ?? '') : entryData(e);
    yield* one(e.path, e, body);
  }
  yield* one('TRAILER!!!', { path: '', type: 'file', mode: 0 }, Buffer.alloc(0));
}

/** The whole archive in memory (small archives: test images, the benchmark's reference). */
export function cpioBuffer(entries: Entry[], mtime = 0): Buffer {
  return Buffer.concat([...cpioChunks(sortEntries(entries), mtime)]);
}

/** The archive streamed to `file` (the ~110 MiB initramfs). */
export async function writeCpio(file: string, entries: Entry[], mtime = 0): Promise<void> {
  const out = createWriteStream(file);
  for (const chunk of cpioChunks(sortEntries(entries), mtime)) {
    if (!out.write(chunk)) await once(out, 'drain');
  }
  out.end();
  await once(out, 'close');
}
