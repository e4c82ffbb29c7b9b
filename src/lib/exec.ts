// What execve() would say about a program, where Node's spawn would hide it: libuv's
// execvp runs a file that has neither "#!" nor an ELF header with /bin/sh (ENOEXEC
// fallback), where runit's execve fails with "exec format error". We look at the first
// bytes first. (A binfmt_misc format would be refused here: no runit service uses one.)
// And execvp's search of PATH, for the programs started with the addon's execve or spawn.
import { accessSync, closeSync, constants as C, openSync, readSync } from 'node:fs';

/** 'ENOEXEC' if execve(path) would fail for the file's format, else undefined (let spawn decide). */
export function execFormatError(path: string): 'ENOEXEC' | undefined {
  let fd: number;
  try {
    accessSync(path, C.X_OK); // execve checks permission first (EACCES): spawn says that
    fd = openSync(path, C.O_RDONLY | C.O_NONBLOCK);
  } catch {
    return undefined; // missing, unreadable, a loop...: spawn reports it
  }
  try {
    const b = Buffer.alloc(4);
    let n: number;
    try {
      n = readSync(fd, b, 0, 4, 0);
    } catch {
      return undefined; // a directory (EISDIR): execve says EACCES, and so does spawn
    }
    if (n >= 2 && b[0] === 0x23 && b[1] === 0x21) return undefined; // #!
    if (n === 4 && b.equals(Buffer.from([0x7f, 0x45, 0x4c, 0x46]))) return undefined; // ELF
    return 'ENOEXEC';
  } finally {
    closeSync(fd);
  }
}

/**
 * An fd opened read-only, for a child's stdout: writing to it fails with EBADF, as writing
 * to a closed fd does. /dev/null, or the root directory where there is no /dev/null (a
 * container's bare root file system).
 */
export function closedStdout(): number {
  try {
    return openSync('/dev/null', C.O_RDONLY);
  } catch {
    return openSync('/', C.O_RDONLY | C.O_DIRECTORY);
  }
}

/**
 * How the kernel runs a "#!" script called by a relative name without a slash (sv runs
 * execve("check", ["./check"])): [interpreter, optional argument, name]. spawn() can only
 * exec a relative name with a slash (or search PATH), and a script sees the name it was
 * exec'd by as $0 (in its error messages). undefined: not a script (run it directly).
 */
export function shebang(path: string, name: string): { file: string; args: string[] } | undefined {
  let fd: number;
  try {
    fd = openSync(path, C.O_RDONLY | C.O_NONBLOCK);
  } catch {
    return undefined;
  }
  let head: string;
  try {
    const b = Buffer.alloc(256); // the kernel reads this much (BINPRM_BUF_SIZE)
    const n = readSync(fd, b, 0, b.length, 0);
    head = b.subarray(0, n).toString('latin1');
  } catch {
    return undefined;
  } finally {
    closeSync(fd);
  }
  if (!head.startsWith('#!')) return undefined;
  const nl = head.indexOf('\n');
  if (nl < 0) return undefined; // too long for us to know: let spawn do it
  const line = head.slice(2, nl).replace(/^[ \t]+/, '').replace(/[ \t]+$/, '');
  const m = /^([^ \t]+)(?:[ \t]+(.*))?$/.exec(line);
  if (!m) return undefined;
  return { file: m[1]!, args: m[2] ? [m[2], name] : [name] };
}

/** The search path when PATH is not set (execvp's and runit's pathexec's default). */
export const DEFAULT_PATH = '/bin:/usr/bin';

/** errno codes after which execvp goes on with the next directory of PATH. */
const SEARCH_ON = new Set(['ENOENT', 'EACCES', 'EPERM', 'EISDIR']);

/**
 * execvp's search (runit's pathexec_run): a name with a '/' is tried as it is; otherwise
 * `attempt` is tried on DIR/name for each directory of `path` in turn (empty: '.'), going
 * on past ENOENT, EACCES, EPERM and EISDIR and stopping at any other error, or at one
 * `stop` names. Returns what the first attempt that does not throw returns; throws the
 * error execvp reports: the last one other than ENOENT, else the last.
 */
export function pathSearch<T>(file: string, path: string, attempt: (file: string) => T, stop: (e: unknown) => boolean = () => false): T {
  if (file.includes('/')) return attempt(file);
  let saved: unknown;
  let last: unknown;
  for (const dir of path.split(':')) {
    try {
      return attempt(`${dir || '.'}/${file}`);
    } catch (e) {
      if (stop(e)) throw e;
      last = e;
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT') {
        saved = e;
        if (!SEARCH_ON.has(code ?? '')) throw e;
      }
    }
  }
  throw saved ?? last;
}
