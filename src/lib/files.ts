// The file calls of the supervisor's and svlogd's busy paths, through the addon. Setting
// up a service (its supervise/ files, ./down, ./log), a log directory (lock, config,
// current) and recognising a log/run script take about thirty calls each; through Node's
// fs every call also runs its argument checks and builds a Stats object or, for the
// usual missing file, an Error with its stack, in JavaScript that the supervisor runs in
// V8's interpreter: most of each call's time under emulation (docs/performance.md).
// Here each is one system call, and a missing file is an answer (null/false), not an
// Error. Errors that are thrown carry .code (the errno name) as Node's do, so runit's
// messages (src/lib/errstr.ts) read the same.
import { statSync } from 'node:fs';
import { native, optionalNative } from './native.ts';

const S_IFMT = 0o170000;
export const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFIFO = 0o010000;

/** what the busy paths look at of stat(2) */
export interface FileStat {
  mode: number;
  size: number;
  dev: number;
  ino: number;
  mtimeMs: number;
}

/** stat(2) (following symlinks), or null when nothing is there; throws for any other error. */
export function fileStat(path: string): FileStat | null {
  const r = native().stat(path);
  return r && { mode: r[0], size: r[1], dev: r[2], ino: r[3], mtimeMs: r[4] };
}

/**
 * What is at path, where the addon loads: stat(2)'s file type bits (S_IFDIR, ...), 0 when
 * nothing is there; other errors thrown with .code. Else Node's stat (for code that also runs
 * without the addon, as `sv`'s does in the library's tests). For the paths where the type
 * is all that is asked (sv's look at a service, runsv's ./down): one small number costs a
 * quarter of fileStat's five under emulation.
 */
export function fileKind(path: string): number {
  const n = optionalNative();
  if (n) return n.kind(path);
  const st = statSync(path, { throwIfNoEntry: false });
  return st ? st.mode & S_IFMT : 0;
}

export const isDirectory = (st: FileStat): boolean => (st.mode & S_IFMT) === S_IFDIR;
export const isFile = (st: FileStat): boolean => (st.mode & S_IFMT) === S_IFREG;
export const isFifo = (st: FileStat): boolean => (st.mode & S_IFMT) === S_IFIFO;

/** stat() succeeds (runsv's test for ./down): false for any error. */
export function fileExists(path: string): boolean {
  const n = native();
  try {
    return n.kind(path) !== 0;
  } catch {
    return false;
  }
}

/** access(2) allows `mode` (fs.constants.X_OK, ...). */
export function fileAccess(path: string, mode: number): boolean {
  return native().access(path, mode);
}

/** open(2), close-on-exec: the fd; throws (.code). */
export function fileOpen(path: string, flags: number, mode = 0o666): number {
  return native().open(path, flags, mode);
}

/** The whole file, or null when there is none; throws (.code) for any other error. */
export function fileRead(path: string): Buffer | null {
  return native().readFile(path);
}

export function fileChmod(fd: number, mode: number): void {
  native().fchmod(fd, mode);
}

export function makeDir(path: string, mode: number): void {
  native().mkdir(path, mode);
}

/**
 * `name` in `dir`, joined by hand (path.join normalises, a good part of a short call's
 * time in the interpreter): for a name without '/' in a directory already as wanted.
 */
export function inDir(dir: string, name: string): string {
  return dir.endsWith('/') ? dir + name : `${dir}/${name}`;
}
