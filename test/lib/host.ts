// Helpers for host tests: temporary service trees, our binary under applet names,
// Debian's runit binaries (the reference peer), polling.
import { chmodSync, constants, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa, type ResultPromise } from 'execa';
import { requireHostArch } from '../../src/lib/platform.ts';

export const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const hostArch = requireHostArch();
/** our single executable (make test-host sets RUNIT_TS_BIN) */
export const BIN = process.env.RUNIT_TS_BIN ?? join(repo, 'out', hostArch, 'runit-ts');
export const CACHE = process.env.RUNIT_TS_CACHE ?? join(process.env.HOME ?? '/root', '.cache', 'runit-ts');
/** Debian's runit 2.1.2, unpacked by scripts/setup */
export const DEBIAN = join(CACHE, `runit-${hostArch}`);
export const debianBin = (name: string) => join(DEBIAN, name === 'runit' ? 'sbin' : 'usr/bin', name);

export function haveBin(): boolean {
  return existsSync(BIN);
}

export interface PublicBin {
  /** the mode-0755 directory holding the copies */
  dir: string;
  /** copy of our executable */
  bin: string;
  /** copy of its addon, beside it (where the executable looks first after $RUNIT_TS_ADDON) */
  addon: string;
}

/**
 * A temporary directory removed when the test process exits, however its tests end (a
 * failed assertion included): for what a test file keeps until its last test, such as a
 * boot image of 110 MiB, which would otherwise be left in the temporary directory.
 */
export function processTempDir(prefix: string): string {
  return removeAtExit(mkdtempSync(join(tmpdir(), prefix)));
}

/** what the test process removes when it exits (one listener for all) */
const atExit = new Set<string>();
function removeAtExit(path: string): string {
  if (!atExit.size) process.on('exit', () => { for (const p of atExit) rmSync(p, { recursive: true, force: true }); });
  atExit.add(path);
  return path;
}

let publicCopy: PublicBin | undefined;
/**
 * Our executable as any user can run it: copies of runit-ts and runit-ts.node in a
 * world-readable temporary directory, made on first call and removed when the test
 * process exits. Whatever runs as an unprivileged user must use these, never BIN: the
 * checkout (and so out/) may sit under a directory only its owner can enter.
 */
export function publicBin(): PublicBin {
  if (publicCopy) return publicCopy;
  const dir = processTempDir('runit-ts-public-');
  chmodSync(dir, 0o755);
  const addonSrc = process.env.RUNIT_TS_ADDON ?? join(dirname(BIN), 'runit-ts.node');
  const copy = (src: string, name: string) => {
    const dst = join(dir, name);
    copyFileSync(src, dst, constants.COPYFILE_FICLONE); // a reflink where the file system has them
    chmodSync(dst, 0o755);
    return dst;
  };
  publicCopy = { dir, bin: copy(BIN, 'runit-ts'), addon: copy(addonSrc, 'runit-ts.node') };
  return publicCopy;
}

export interface Tree {
  root: string;
  sv: string;
  bin: string;
  /** path of our applet */
  our: (applet: string) => string;
  service: (name: string, files: Record<string, string>) => string;
  cleanup: () => void;
}

/**
 * A temp dir with bin/<applet> links to our binary and an empty service dir. `target`
 * is what the links point at: BIN, or publicBin().bin for a tree an unprivileged user runs.
 */
export function tree(prefix = 'runit-ts-', target = BIN): Tree {
  const root = mkdtempSync(join(tmpdir(), prefix));
  const sv = join(root, 'service');
  const bin = join(root, 'bin');
  mkdirSync(sv);
  mkdirSync(bin);
  for (const a of ['sv', 'runsv', 'runsvdir', 'runit-init', 'svlogd']) symlinkSync(target, join(bin, a));
  return {
    root,
    sv,
    bin,
    our: (a) => join(bin, a),
    service: (name, files) => {
      const d = join(root, 'sv-src', name);
      for (const [rel, text] of Object.entries(files)) {
        mkdirSync(dirname(join(d, rel)), { recursive: true });
        writeFileSync(join(d, rel), text);
        if (/(^|\/)(run|finish|check)$/.test(rel) || rel.startsWith('control/')) chmodSync(join(d, rel), 0o755);
      }
      return d;
    },
    // retried: processes of a supervisor that was just told to stop may still write in it
    cleanup: () => rmSync(root, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 }),
  };
}

/** Link a service directory into the scanned dir (atomically, as admins do). */
export function enable(t: Tree, src: string, name: string): string {
  const link = join(t.sv, name);
  symlinkSync(src, link);
  return link;
}

export async function until<T>(fn: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs: number, what: string): Promise<T> {
  const t0 = Date.now();
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

export function readIf(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    const st = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/\) Z /.test(st);
  } catch {
    return false;
  }
}

/** Run sv (ours or Debian's) with SVDIR set; never rejects. */
export function sv(path: string, t: Tree, args: string[], env: Record<string, string> = {}) {
  return execa(path, args, { env: { SVDIR: t.sv, ...env }, reject: false, cwd: t.root, stripFinalNewline: false });
}

export interface Bg {
  proc: ResultPromise;
  /** stdout and stderr so far */
  output: () => string;
}

let bgCount = 0;
/**
 * Start a supervisor process in the background. Its output goes to a file, not a pipe:
 * services inherit it, and a pipe would keep the process "running" until they all end.
 */
export function spawnBg(cmd: string, args: string[], opts: { cwd?: string; env?: Record<string, string> } = {}): Bg {
  const log = join(tmpdir(), `runit-ts-bg-${process.pid}-${++bgCount}.log`);
  writeFileSync(log, '');
  // sh redirects and execs, so the file itself (not a pipe through us) is the supervisor's output
  const proc = execa('/bin/sh', ['-c', 'exec "$0" "$@" >>"$LOG" 2>&1', cmd, ...args], {
    cwd: opts.cwd,
    env: { ...opts.env, LOG: log },
    reject: false,
    stdin: 'ignore',
  });
  // kept a while after the end for output() (services may write late), removed at exit anyway
  void proc.finally(() => setTimeout(() => rmSync(log, { force: true }), 60000).unref());
  removeAtExit(log);
  return { proc, output: () => readIf(log) ?? '' };
}

/** Replace seconds and pids so our output and runit's can be compared line for line. */
export function normalise(s: string): string {
  return s.replace(/\(pid \d+\)/g, '(pid N)').replace(/\b\d+s\b/g, 'Ns');
}

/**
 * Every file under dir (paths relative to it, sorted), for comparing two builds' outputs;
 * dot files at its top (make's stamps) left out. A missing dir has none.
 */
export function treeFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const n of readdirSync(d).sort()) {
      const p = join(d, n);
      if (statSync(p).isDirectory()) walk(p);
      else if (!(d === dir && n.startsWith('.'))) out.push(relative(dir, p));
    }
  };
  if (existsSync(dir)) walk(dir);
  return out;
}
