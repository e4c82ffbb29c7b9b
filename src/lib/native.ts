// The Node-API addon (src/native/, one file per concern) with the system calls Node lacks.
// Loaded on first use, from $RUNIT_TS_ADDON or beside the executable.
import { closeSync, existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { selfExe } from './sys.ts';

export interface Native {
  mkfifo(path: string, mode: number): void;
  // File calls of the busy paths (a service's or log directory's setup), one system call
  // each without Node's fs JavaScript around it (used through src/lib/files.ts); a
  // missing file is null, not an Error.
  /** stat(2): [mode, size, dev, ino, mtimeMs], or null when nothing is there (ENOENT) */
  stat(path: string): [number, number, number, number, number] | null;
  /** stat(2)'s file type bits (mode & S_IFMT), or 0 when nothing is there (ENOENT) */
  kind(path: string): number;
  /** access(2) allows it */
  access(path: string, mode: number): boolean;
  /** open(2) with O_CLOEXEC added (as every fd Node opens): the fd */
  open(path: string, flags: number, mode: number): number;
  /** write(2) all of data (a string: up to 4095 bytes in UTF-8), again after a short write or EINTR */
  write(fd: number, data: string | Buffer): void;
  /** the whole file, or null when there is none (ENOENT) */
  readFile(path: string): Buffer | null;
  fchmod(fd: number, mode: number): void;
  mkdir(path: string, mode: number): void;
  /**
   * Write `data` (a Buffer, or a string under 510 bytes) to `tmp` (0644, created or
   * truncated) and rename it over `path`. Throws an errno error with `step`: 'open'
   * (opening or writing) or 'rename'.
   */
  replaceFile(tmp: string, path: string, data: string | Buffer): void;
  /**
   * sv's look at the runsv serving dir: open dir/supervise/ok for writing without blocking
   * (then closed), then one read() of up to 20 bytes of dir/supervise/status into rec (a
   * Buffer of 20 or more): how many it read. Throws an errno error with `step`: 'ok'
   * (ENXIO: no runsv), 'status' or 'read'.
   */
  readStatus(dir: string, rec: Buffer): number;
  /**
   * On a thread of libuv's pool, from the last directory to the first: dir/supervise/ with
   * its control and ok FIFOs and an empty lock file, where this makes supervise/ (and the
   * same in dir/log/ when that is a directory); made[2i] (made[2i+1] for the log) set to 1
   * once it made that supervise/. done() when all are made. Failures are left to the caller.
   */
  prepareSupervise(dirs: string[], made: Buffer, done: () => void): void;
  /** false when LOCK_NB was given and another holder has the lock */
  flock(fd: number, op: number): boolean;
  setsid(): number;
  /** [read, write], close-on-exec */
  pipe(): [number, number];
  mount(source: string, target: string, fstype: string, flags: number, data: string): void;
  umount(target: string, flags: number): void;
  sethostname(name: string): void;
  finitModule(fd: number, params: string): void;
  ifUp(name: string): void;
  sync(): void;
  /** V8's low-memory notification (every garbage collected, the heap shrunk): false when this Node does not export it */
  lowMemory(): boolean;
  /** malloc_trim(0): true if memory went back to the system */
  mallocTrim(): boolean;
  /** madvise(MADV_DONTNEED) on [start, start+length): read-only file mappings only */
  madviseDontneed(start: bigint, length: bigint): void;
  /** a close-on-exec duplicate of fd */
  dup(fd: number): number;
  /** set (true) or clear (false) FD_CLOEXEC */
  setCloexec(fd: number, on: boolean): void;
  /** [soft, hard]; RLIM_INFINITY is Infinity */
  getrlimit(resource: number): [number, number];
  setrlimit(resource: number, soft: number, hard: number): void;
  chroot(path: string): void;
  /** nice(2): add inc to the nice value; returns the new one */
  nice(inc: number): number;
  /** [uid, gid] of a user, null if unknown (C library lookup, NSS included) */
  getpwnam(name: string): [number, number] | null;
  /** gid of a group, null if unknown */
  getgrnam(name: string): number | null;
  /**
   * execve(2): returns only by throwing (.code = errno name, .message starting with the
   * failed call: "execve", "getrlimit" or "setrlimit"). Before the exec: fds 0-2 made
   * inheritable, SIGPIPE/SIGXFSZ to default, no signal blocked, and the soft limits in
   * limits ([resource, soft, ...]) set, all undone if the exec fails.
   */
  execve(path: string, argv: string[], envp: string[], limits?: number[]): never;
  /** prctl(PR_SET_CHILD_SUBREAPER, 1) */
  setChildSubreaper(): void;
  /** waitpid(pid, WNOHANG): the raw wait status, -1 if nothing was reaped */
  reap(pid: number): number;
  /** an AF_UNIX datagram socket at path, mode 0600 and uid:gid's (-1: ours) from the first moment, non-blocking: its fd */
  notifySocket(path: string, uid: number, gid: number): number;
  /** the next datagram waiting on fd, or null when none is */
  recvDatagram(fd: number): string | null;
  /**
   * Start path (as execve takes it, relative to cwd) without copying this process
   * (clone with CLONE_VM|CLONE_VFORK): argv; envp, or null for our environment; cwd, or
   * '' for ours; fds[i] becomes the child's fd i (-1: /dev/null for 0-2, nothing above);
   * a session of its own if setsid; if foreground (and not setsid), a process group of
   * its own, made the terminal's foreground group when fd 0 is our controlling terminal
   * (a shell's job: the tty's INT, QUIT and WINCH go to it, not to us). Every signal at
   * its default, none blocked. Returns the pid; throws (.code) when the exec failed, or
   * with .syscall 'fork' when no child could be made (EAGAIN at a process limit). Node
   * does not reap it: reap() does.
   */
  spawn(path: string, argv: string[], envp: string[] | null, cwd: string, fds: number[], setsid: boolean, foreground?: boolean): number;
  /**
   * Watch a pipe or FIFO (made non-blocking): onData gets what each read() (up to 64 KiB)
   * gives when it becomes readable, then (null, error) once at end of file (error null)
   * or on a read error, and the watch stops. A libuv poll handle, no stream. The fd stays
   * the caller's; keep the watch referenced while it is wanted.
   */
  watchFd(fd: number, onData: (data: Buffer | null, error?: (Error & { code?: string }) | null) => void): FdWatch;
  /**
   * V8's flags, set as node:v8's setFlagsFromString sets them, without loading node:v8.
   * False when this Node does not export V8's function (nothing was set).
   */
  v8Flags(flags: string): boolean;
  /** Abseil's lock-order checking of V8's mutexes turned off (src/native/runtime.c): false when this Node has none to turn off */
  ignoreLockOrder(): boolean;
  /** the pages of [start, start+length) holding only 0xff given back (the dead lock graph's), once ignoreLockOrder() has turned it off: how many bytes */
  dropLockGraph(start: bigint, length: bigint): number;
  /** a string over the buffer's bytes (never to change or go away), not copied; undefined when this Node cannot make one */
  externalLatin1(bytes: ArrayBuffer): string | undefined;
  /** _exit(2) with code (its low 8 bits): no 'exit' event, none of Node's teardown (quickExit) */
  exit(code: number): never;
}

/** A watch of an fd (Native.watchFd); its methods must be called on it. */
export interface FdWatch {
  /** stop for good (twice is harmless) */
  close(): void;
  /** read nothing until resume(); what comes meanwhile stays in the pipe */
  pause(): void;
  resume(): void;
  /** the watch alone does not keep the process running (a net.Socket's unref()) */
  unref(): void;
}

export const LOCK_SH = 1;
export const LOCK_EX = 2;
export const LOCK_NB = 4;
export const LOCK_UN = 8;
export const MS_RDONLY = 1;
export const MS_NOSUID = 2;
export const MS_NODEV = 4;
export const MS_NOEXEC = 8;
export const MS_REMOUNT = 32;
export const MNT_DETACH = 2;
/** resource numbers (asm-generic: the same on x86_64 and aarch64) */
export const RLIMIT_CPU = 0;
export const RLIMIT_FSIZE = 1;
export const RLIMIT_DATA = 2;
export const RLIMIT_STACK = 3;
export const RLIMIT_CORE = 4;
export const RLIMIT_RSS = 5;
export const RLIMIT_NPROC = 6;
export const RLIMIT_NOFILE = 7;
export const RLIMIT_MEMLOCK = 8;
export const RLIMIT_AS = 9;

let loaded: Native | undefined;

export function addonPath(): string {
  const candidates = [
    process.env.RUNIT_TS_ADDON,
    join(dirname(selfExe()), 'runit-ts.node'),
    '/usr/lib/runit-ts/runit-ts.node',
  ].filter((p): p is string => !!p);
  const found = candidates.find((p) => existsSync(p));
  if (!found) throw new Error(`cannot find runit-ts.node (looked in: ${candidates.join(', ')}); set RUNIT_TS_ADDON`);
  return found;
}

/**
 * Where the executable's loader (scripts/sea-loader.cjs) leaves the addon it loaded at the
 * start, so that it is not loaded a second time.
 */
export const LOADED_ADDON = Symbol.for('runit-ts.addon');

/** The addon if something loaded it already (the executable's loader does at every start), else undefined: never loads it. */
export function loadedNative(): Native | undefined {
  return (loaded ??= (globalThis as { [LOADED_ADDON]?: Native })[LOADED_ADDON]);
}

export function native(): Native {
  const got = loadedNative();
  if (got) return got;
  const mod = { exports: {} as Native };
  process.dlopen(mod, addonPath());
  return (loaded = mod.exports);
}

let missing = false;

/**
 * The addon where it loads (our executable loads it at every start), else null (the
 * library in a program of its own, whose callers then use Node's fs): looked for once.
 */
export function optionalNative(): Native | null {
  if (loaded || missing) return loaded ?? null;
  try {
    return native();
  } catch {
    missing = true;
    return null;
  }
}

/**
 * End this process with `code` once its work is done. With the addon loaded and no
 * 'exit' listener (the code cache's training has one, scripts/sea-train.cjs), at once
 * (Native.exit): Node's own exit would first tear itself down (a SIGTERM handler that calls
 * process.exit ends 3 ms later than one that has the process killed, on the host), a part of
 * every `podman stop`. Otherwise process.exit: loading the addon only to exit was not
 * measurably cheaper for `sv`, under emulation either (docs/performance.md).
 */
export function quickExit(code: number): never {
  if (loaded && process.listenerCount('exit') === 0) loaded.exit(code);
  process.exit(code);
}

/**
 * Read a pipe this watch owns (Native.watchFd): close() stops the watch and closes the fd,
 * once, however often it is called; onData as watchFd's (null: the end, or an error).
 */
export function readPipe(fd: number, onData: (data: Buffer | null, error?: (Error & { code?: string }) | null) => void): FdWatch {
  const watch = native().watchFd(fd, onData);
  let open = true;
  return {
    close() {
      if (!open) return;
      open = false;
      watch.close();
      try {
        closeSync(fd);
      } catch {
        /* closed already */
      }
    },
    pause: () => watch.pause(),
    resume: () => watch.resume(),
    unref: () => watch.unref(),
  };
}
