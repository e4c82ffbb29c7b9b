// struct utmp as the GNU C library lays it out on our two architectures (checked with
// offsetof against the glibc headers), and runit's utmpset logout of a line.
//
//                 x86_64 (384 bytes)        aarch64 (400 bytes)
//   ut_type       0   short                 0   short
//   ut_pid        4   int                   4   int
//   ut_line       8   char[32]              8   char[32]
//   ut_id         40  char[4]               40  char[4]
//   ut_user       44  char[32]              44  char[32]
//   ut_host       76  char[256]             76  char[256]
//   ut_exit       332 short, short          332 short, short
//   ut_session    336 int32                 336 long (8)
//   ut_tv         340 int32 sec, int32 usec 344 long sec, long usec
//   ut_addr_v6    348 int32[4]              360 int32[4]
//   reserved      364 char[20]              376 char[20] (+4 padding)
// x86_64 keeps 32-bit times for compatibility with i386 (__WORDSIZE_TIME64_COMPAT32).
import { Exit, fatalLine } from '../lib/diag.ts';
import { closeSync, constants as C, fstatSync, ftruncateSync, openSync, readSync, writeSync } from 'node:fs';
import { LOCK_EX, native } from '../lib/native.ts';

export interface UtmpLayout {
  size: number;
  line: number;
  user: number;
  host: number;
  tvSec: number;
  /** width of tv_sec: 4 or 8 */
  timeBytes: 4 | 8;
}

export const LAYOUTS: Record<'x86_64' | 'aarch64', UtmpLayout> = {
  x86_64: { size: 384, line: 8, user: 44, host: 76, tvSec: 340, timeBytes: 4 },
  aarch64: { size: 400, line: 8, user: 44, host: 76, tvSec: 344, timeBytes: 8 },
};

export const LINE_SIZE = 32;
export const USER_SIZE = 32;
export const HOST_SIZE = 256;
export const DEAD_PROCESS = 8;
/** _PATH_UTMP and _PATH_WTMP */
export const UTMP_FILE = '/var/run/utmp';
export const WTMP_FILE = '/var/log/wtmp';

export function hostLayout(): UtmpLayout {
  return process.arch === 'arm64' ? LAYOUTS.aarch64 : LAYOUTS.x86_64;
}

/** utmpset's fatal error: "utmpset: fatal: <message>", exit 111. */
function failure(message: string): Exit {
  return new Exit(111, fatalLine('utmpset', message));
}

function setTime(rec: Buffer, l: UtmpLayout, sec: number): void {
  if (l.timeBytes === 4) rec.writeInt32LE(sec | 0, l.tvSec);
  else rec.writeBigInt64LE(BigInt(sec), l.tvSec);
}

/** ut_line compared as C's string compare does: up to the first NUL. */
function lineIs(rec: Buffer, l: UtmpLayout, line: Buffer): boolean {
  for (let i = 0; ; i++) {
    const a = l.line + i < rec.length ? rec[l.line + i]! : 0;
    const b = i < line.length ? line[i]! : 0;
    if (a !== b) return false;
    if (a === 0) return true;
  }
}

/** Open file and take an exclusive lock on it, failing with runit's messages. */
function openLocked(file: string, flags: number, mode: number | undefined, lockMsg: string, errstr: (e: unknown) => string): number {
  let fd: number;
  try {
    fd = openSync(file, flags, mode);
  } catch (e) {
    throw failure(`unable to open ${file}: ${errstr(e)}`);
  }
  try {
    native().flock(fd, LOCK_EX);
  } catch (e) {
    closeSync(fd);
    throw failure(`${lockMsg}: ${errstr(e)}`);
  }
  return fd;
}

/**
 * runit's utmp_logout: the first record for line with a user gets its user and host
 * cleared, the time set and type DEAD_PROCESS. false: no such entry.
 * errstr: how system errors are worded.
 */
export function utmpLogout(file: string, line: string, now: number, l: UtmpLayout, errstr: (e: unknown) => string): boolean {
  // runit's message has a colon after "lock" here and not in wtmp_logout
  const fd = openLocked(file, C.O_RDWR, undefined, `unable to lock: ${file}`, errstr);
  try {
    const want = Buffer.from(line);
    const rec = Buffer.alloc(l.size);
    for (let pos = 0; ; pos += l.size) {
      let got: number;
      try {
        got = readSync(fd, rec, 0, l.size, pos);
      } catch {
        return false;
      }
      if (got !== l.size) return false;
      if (rec[l.user] === 0 || !lineIs(rec, l, want)) continue;
      rec.fill(0, l.user, l.user + USER_SIZE);
      rec.fill(0, l.host, l.host + HOST_SIZE);
      setTime(rec, l, now);
      rec.writeInt16LE(DEAD_PROCESS, 0);
      try {
        return writeSync(fd, rec, 0, l.size, pos) === l.size;
      } catch {
        return false;
      }
    }
  } finally {
    closeSync(fd);
  }
}

/** runit's wtmp_logout: append a DEAD_PROCESS record for line. Throws the write error. */
export function wtmpLogout(file: string, line: string, now: number, l: UtmpLayout, errstr: (e: unknown) => string): void {
  const fd = openLocked(file, C.O_WRONLY | C.O_NONBLOCK | C.O_APPEND | C.O_CREAT, 0o600, `unable to lock ${file}`, errstr);
  try {
    const size = fstatSync(fd).size;
    const rec = Buffer.alloc(l.size);
    let name = Buffer.from(line);
    // runit copies at most 30 bytes of a line longer than ut_line
    if (name.length > LINE_SIZE) name = name.subarray(0, LINE_SIZE - 2);
    name.copy(rec, l.line);
    setTime(rec, l, now);
    rec.writeInt16LE(DEAD_PROCESS, 0);
    let n = 0;
    try {
      n = writeSync(fd, rec, 0, l.size);
    } catch (e) {
      ftruncateSync(fd, size);
      throw e;
    }
    if (n !== l.size) {
      ftruncateSync(fd, size);
      throw Object.assign(new Error('short write'), { code: 'EIO' });
    }
  } finally {
    closeSync(fd);
  }
}
