// Root file system tarball (ustar, pax headers where a name needs one) from the entry
// list, with tar-stream: sorted with parents first, owners from the entries (root by
// default), every mtime SOURCE_DATE_EPOCH, no atime/ctime, no user or group names.
// Device nodes are left out: container runtimes provide /dev, and an unprivileged
// unpacker (rootless podman, umoci --rootless) cannot create them.
import { createHash } from 'node:crypto';
import { pack as tarPack, type Header } from 'tar-stream';
import { entryData, sortEntries, type Entry } from '../../src/lib/entry.ts';

export interface Blob {
  data: Buffer;
  /** "sha256:<hex>" */
  digest: string;
  size: number;
}

export function blobOf(data: Buffer): Blob {
  return { data, digest: `sha256:${createHash('sha256').update(data).digest('hex')}`, size: data.length };
}

export function header(e: Entry, mtime: Date): (Partial<Header> & { name: string }) | undefined {
  const base = { name: e.path, mode: e.mode & 0o7777, uid: e.uid ?? 0, gid: e.gid ?? 0, uname: '', gname: '', mtime };
  switch (e.type) {
    case 'dir':
      return { ...base, name: `${e.path}/`, type: 'directory' };
    case 'symlink':
      return { ...base, type: 'symlink', linkname: e.target ?? '' };
    case 'file':
      return { ...base, type: 'file' };
    case 'fifo':
      return { ...base, type: 'fifo' };
    default:
      return undefined; // char/block devices: see above
  }
}

/** A tar-stream pack and the whole archive it makes, once finalized, as one buffer. */
export function packToBuffer(): { p: ReturnType<typeof tarPack>; done: Promise<Buffer> } {
  const p = tarPack();
  const chunks: Buffer[] = [];
  p.on('data', (c: unknown) => void chunks.push(c as Buffer));
  const done = new Promise<Buffer>((res, rej) => {
    p.on('end', () => res(Buffer.concat(chunks)));
    p.on('error', rej);
  });
  return { p, done };
}

/** The tar archive of `entries` as one buffer (the rootfs is ~100 MiB: fine in memory). */
export async function tarBuffer(entries: Entry[], epoch: number): Promise<Buffer> {
  // a Date, never a falsy value: tar-stream replaces a falsy mtime with the current time
  const mtime = new Date(epoch * 1000);
  const { p, done } = packToBuffer();
  for (const e of sortEntries(entries)) {
    const h = header(e, mtime);
    if (!h) continue;
    const body = e.type === 'file' ? entryData(e) : undefined;
    await new Promise<void>((res, rej) => {
      if (body) p.entry({ ...h, size: body.length }, body, (err) => (err ? rej(err) : res()));
      else p.entry(h, (err) => (err ? rej(err) : res()));
    });
  }
  p.finalize();
  return done;
}
