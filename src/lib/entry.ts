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

/** How many symlinks a path may pass through before it is taken as a loop. */
const MAX_LINK_HOPS = 40;

/**
 * A path with every leading component that is a symlink in `links` (path -> target)
 * followed, as the kernel would when the file is written into the tree: a Debian base's
 * /sbin -> usr/sbin makes an entry "sbin/x" land at "usr/sbin/x". The last component is
 * kept (a symlink entry replaces a symlink). Targets leaving the tree stay as they are.
 */
export function resolveParents(path: string, links: ReadonlyMap<string, string>): string {
  let parts = path.split('/');
  for (let i = 0, hops = 0; i < parts.length - 1; i++) {
    const prefix = parts.slice(0, i + 1).join('/');
    const target = links.get(prefix);
    if (target === undefined) continue;
    if (++hops > MAX_LINK_HOPS) return path;
    const base = target.startsWith('/') ? [] : parts.slice(0, i);
    const joined: string[] = [];
    for (const c of [...base, ...target.split('/')]) {
      if (c === '' || c === '.') continue;
      if (c === '..') joined.pop();
      else joined.push(c);
    }
    parts = [...joined, ...parts.slice(i + 1)];
    i = -1; // walk the new path again from the top
  }
  return parts.join('/');
}

/** Sort so that every directory comes before what it contains, then by name (bytewise). */
export function sortEntries(entries: Entry[]): Entry[] {
  const byPath = new Map<string, Entry>();
  const links = new Map<string, string>();
  for (const e of entries) {
    const p = resolveParents(e.path.replace(/^\/+|\/+$/g, ''), links);
    byPath.set(p, { ...e, path: p }); // later entries replace earlier ones (overlay)
    if (e.type === 'symlink') links.set(p, e.target!);
    else links.delete(p);
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
