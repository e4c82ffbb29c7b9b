// Working-set trimming for the long-running supervisor.
//
// Starting Node touches tens of MB of the executable's code and read-only data (and the
// kernel maps neighbouring cached pages too), most of which a supervisor never runs again.
// Those pages stay mapped, so they count in its RSS and PSS. Dropping this process's
// mappings of file pages is lossless: whatever is used again comes back from the page
// cache on the next touch. A mapping with any anonymous page, i.e. a page this process
// wrote and so holds a private copy of (RELRO after relocation, patched code), is left
// alone: MADV_DONTNEED would throw that copy away. (Dirty is no guide: pages of a file
// in tmpfs, such as an initramfs root, are always reported dirty.)
import { readFileSync } from 'node:fs';
import { native } from './native.ts';
import { selfExe } from './sys.ts';

/** Mappings of `file` in /proc/self/smaps that hold only the file's own pages. */
export function cleanMappings(smaps: string, file: string): Array<[bigint, bigint]> {
  const out: Array<[bigint, bigint]> = [];
  let cur: { range: [bigint, bigint]; ok: boolean } | undefined;
  const flush = () => {
    if (cur?.ok) out.push(cur.range);
    cur = undefined;
  };
  for (const line of smaps.split('\n')) {
    const head = /^([0-9a-f]+)-([0-9a-f]+) (\S{4}) \S+ \S+ \d+\s*(.*)$/.exec(line);
    if (head) {
      flush();
      const perms = head[3]!;
      // never writable or shared mappings: only private, read-only mappings of the file
      const ok = head[4] === file && perms[1] === '-' && perms[3] === 'p';
      cur = { range: [BigInt('0x' + head[1]), BigInt('0x' + head[2])], ok };
      continue;
    }
    const field = /^(Anonymous|Swap):\s+(\d+) kB$/.exec(line);
    if (field && cur && Number(field[2]) !== 0) cur.ok = false;
  }
  flush();
  return out;
}

/** Drop the executable's file pages from this process; returns the bytes advised. */
export function trimExecutable(): number {
  let total = 0n;
  try {
    for (const [a, b] of cleanMappings(readFileSync('/proc/self/smaps', 'utf8'), selfExe())) {
      native().madviseDontneed(a, b - a);
      total += b - a;
    }
  } catch {
    /* best effort: without /proc or the addon nothing changes */
  }
  return Number(total);
}
