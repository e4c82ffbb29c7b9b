// One file of an image: the element of the entry list that the spec resolves to (one list
// per arch, image/resolve.ts) and that every packer (cpio, tar, ext4, erofs, OCI...) takes.
// The list may hold a path more than once: the last one wins (an overlay), and missing
// parent directories are implied.

export type EntryType = 'file' | 'dir' | 'symlink' | 'char' | 'block' | 'fifo';

export interface Entry {
  /** path inside the image, without a leading slash ("etc/runit/1") */
  path: string;
  type: EntryType;
  /** permission bits (0o755 ...) */
  mode: number;
  uid?: number;
  gid?: number;
  /** file contents (type 'file'), read lazily so big files stream */
  data?: Buffer | (() => Buffer);
  /** symlink target */
  target?: string;
  /** device numbers (char/block) */
  major?: number;
  minor?: number;
}

/** The contents of a file entry (empty for anything else), reading a lazy one now. */
export function entryData(e: Entry): Buffer {
  if (e.type !== 'file' || !e.data) return Buffer.alloc(0);
  return typeof e.data === 'function' ? e.data() : e.data;
}

/** Sort so that every directory comes before what it contains, then by name (bytewise). */
export function sortEntries(entries: Entry[]): Entry[] {
  const byPath = new Map<string, Entry>();
  for (const e of entries) {
    const p = e.path.replace(/^\/+|\/+$/g, '');
    byPath.set(p, { ...e, path: p }); // later entries replace earlier ones (overlay)
  }
  // create missing parent directories
  for (const p of [...byPath.keys()]) {
    const parts = p.split('/');
    for (let i = 1; i < parts.length; i++) {
      const d = parts.slice(0, i).join('/');
      if (!byPath.has(d)) byPath.set(d, { path: d, type: 'dir', mode: 0o755 });
    }
  }
  return [...byPath.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}
