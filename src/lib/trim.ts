// Working-set trimming for the long-running supervisor.
//
// Starting Node touches tens of MB of the executable's code and read-only data (and the
// kernel maps neighbouring cached pages too), most of which a supervisor never runs again;
// the same goes for the C libraries it loads. Those pages stay mapped, so they count in its
// RSS and PSS. Dropping this process's mappings of file pages is lossless: whatever is used
// again comes back from the page cache on the next touch. A mapping with any anonymous
// page, i.e. a page this process wrote and so holds a private copy of (RELRO after
// relocation, patched code), is left alone: MADV_DONTNEED would throw that copy away.
// (Dirty is no guide: pages of a file in tmpfs, such as an initramfs root, are always
// reported dirty.)
//
// V8 keeps its heap as the start left it: both halves of the young generation touched and
// its freed pages pooled; a low-memory notification collects all garbage and gives those
// back (a forced gc() does not: docs/performance.md). The C library's malloc keeps what
// it freed after the start-up peak, more after that collection; malloc_trim(0) gives
// those pages back.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { MNT_DETACH, MS_NODEV, MS_NOEXEC, MS_NOSUID, native } from './native.ts';

/**
 * Mappings in /proc/self/smaps that hold only a file's own pages: of `file`, or when it is
 * not given, of any file (a path; not [heap], [stack], [vdso] or anonymous memory).
 */
export function cleanMappings(smaps: string, file?: string): Array<[bigint, bigint]> {
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
      const name = head[4]!;
      const ok = (file === undefined ? name.startsWith('/') : name === file) && perms[1] === '-' && perms[3] === 'p';
      cur = { range: [BigInt('0x' + head[1]), BigInt('0x' + head[2])], ok };
      continue;
    }
    const field = /^(Anonymous|Swap):\s+(\d+) kB$/.exec(line);
    if (field && cur && Number(field[2]) !== 0) cur.ok = false;
  }
  flush();
  return out;
}

/**
 * Abseil's lock graph (src/native/runtime.c, ignoreLockOrder): made at Node's start in an
 * anonymous mapping of this size (the kernel may merge it with a neighbour), a hash table
 * of 262,139 slots (1 MiB) filled with -1, which no lock touches once the checking is off.
 * Its pages of nothing but empty slots are given back (dropLockGraph: only from a mapping
 * that holds 128 or more such pages, nothing else). The loader turns the checking off at
 * the start, long before this runs, so no lock is inside the graph when its pages go.
 */
export const LOCK_GRAPH_BYTES = 0x110000n;

/** The anonymous, private, writable mappings in /proc/self/smaps that can hold the lock graph. */
export function lockGraphMappings(smaps: string): Array<[bigint, bigint]> {
  const out: Array<[bigint, bigint]> = [];
  for (const m of smaps.matchAll(/^([0-9a-f]+)-([0-9a-f]+) rw-p 0+ 00:00 0 *$/gm)) {
    const a = BigInt('0x' + m[1]);
    const b = BigInt('0x' + m[2]);
    if (b - a >= LOCK_GRAPH_BYTES) out.push([a, b]);
  }
  return out;
}

let lockGraphDropped = false;

/**
 * Shrink V8's heap, drop the file pages of the executable and the libraries from this
 * process, give the C library's free heap pages back, and the lock graph's empty pages
 * (the first time); returns the bytes advised.
 */
export function trimExecutable(): number {
  let total = 0n;
  try {
    native().lowMemory();
    native().mallocTrim();
    const smaps = readFileSync('/proc/self/smaps', 'utf8');
    // once: the graph's empty pages stay empty. Before the file pages are dropped: the code
    // this runs would stay mapped after
    if (!lockGraphDropped && native().ignoreLockOrder()) {
      lockGraphDropped = true;
      for (const [a, b] of lockGraphMappings(smaps)) total += BigInt(native().dropLockGraph(a, b - a));
    }
    for (const [a, b] of cleanMappings(smaps)) {
      native().madviseDontneed(a, b - a);
      total += b - a;
    }
  } catch {
    /* best effort: without /proc or the addon nothing changes */
  }
  return Number(total);
}

/** After the start: a booted supervisor's first trim, its pass and the boot behind it (ms). */
export const TRIM_AFTER_START_MS = 5000;
/** Then now and then, for pages a rare path brought in (ms). */
export const TRIM_EVERY_MS = 300_000;

/**
 * A long-running supervisor's trims: once TRIM_AFTER_START_MS after its start, when most
 * of the executable's and libraries' pages are never used again and malloc holds the
 * start-up peak, and every TRIM_EVERY_MS after. The timers hold nothing up.
 */
export function scheduleTrims(): void {
  setTimeout(() => trimExecutable(), TRIM_AFTER_START_MS).unref();
  setInterval(() => trimExecutable(), TRIM_EVERY_MS).unref();
}

/**
 * From now on, run this process's JavaScript in V8's interpreter only. The supervisor's code
 * is small and mostly waits: the optimising tiers (Sparkplug, Maglev, TurboFan) would only
 * add compiled code and its metadata to a heap that stays for the machine's lifetime, and
 * under emulation compiling costs more at the start than it saves. Set at run time, for this
 * process alone: in execArgv the same flags would make V8 reject the code cache of Node's
 * built-in modules, and every short-lived applet start slower. Regular expressions alike:
 * V8 compiles one to machine code on its second run (by default); at 100 runs, those of the
 * start (a log/run script's parse for every log service) stay in the regexp interpreter,
 * and a busy one still gets compiled.
 */
export const INTERPRETER_ONLY = '--no-opt --no-sparkplug --no-maglev --regexp-tier-up-ticks=100';
/** what interpreterOnly() changes, at V8's defaults (the code cache's training run sets them back) */
export const V8_DEFAULTS = '--opt --sparkplug --maglev --regexp-tier-up-ticks=1';

export function interpreterOnly(): void {
  setV8Flags(INTERPRETER_ONLY);
}

/**
 * Set V8 flags at run time: through the addon (V8's own function; node:v8 and what it
 * loads are compiled at the start otherwise, a part of the boot under emulation), or
 * node:v8 where the addon cannot.
 */
export function setV8Flags(flags: string): void {
  let done = false;
  try {
    done = native().v8Flags(flags);
  } catch {
    /* no addon */
  }
  if (!done) process.getBuiltinModule('node:v8').setFlagsFromString(flags);
}

const DEBUGFS = '/sys/kernel/debug';
const FAULT_AROUND = `${DEBUGFS}/fault_around_bytes`;
const THP = '/sys/kernel/mm/transparent_hugepage/enabled';

/**
 * The machine-wide memory settings of a runit-ts system, set by stage 1 (best effort: a
 * kernel without them keeps its defaults). On a read fault of a file page the kernel maps
 * a whole 64 KiB window of cached pages around it ("fault-around"), so a long-running
 * process that touches a few scattered pages of a large executable keeps 16 times that
 * mapped; one page (4096) maps only what is touched, and the supervisor's trim then keeps
 * its share of the executable small. Transparent huge pages only where a program asks
 * (madvise): "always" backs a few KiB in use with 2 MiB. Both measured in
 * docs/performance.md. Returns what could not be set, for a warning.
 */
export function systemMemorySettings(): string[] {
  const failed: string[] = [];
  let mounted = false;
  try {
    if (!existsSync(FAULT_AROUND)) {
      native().mount('debugfs', DEBUGFS, 'debugfs', MS_NOSUID | MS_NODEV | MS_NOEXEC, '');
      mounted = true;
    }
    writeFileSync(FAULT_AROUND, '4096');
  } catch {
    failed.push(FAULT_AROUND);
  } finally {
    if (mounted) {
      try {
        native().umount(DEBUGFS, MNT_DETACH);
      } catch {
        /* stays mounted */
      }
    }
  }
  try {
    if (existsSync(THP)) writeFileSync(THP, 'madvise');
  } catch {
    failed.push(THP);
  }
  return failed;
}
