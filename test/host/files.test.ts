// The addon's file calls of the busy paths (src/lib/files.ts): what they answer against
// Node's fs on the same files, a missing file as null/false, other errors thrown with
// Node's .code, and paths that are too long or hold a NUL refused.
import t from 'tap';
import { closeSync, constants as C, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { BIN } from '../lib/host.ts';

// before anything loads the addon: the built one
process.env.RUNIT_TS_ADDON ??= join(dirname(BIN), 'runit-ts.node');
const { fileAccess, fileChmod, fileExists, fileKind, fileOpen, fileRead, fileStat, inDir, isDirectory, isFifo, isFile, makeDir, S_IFDIR } = await import('../../src/lib/files.ts');
const { native } = await import('../../src/lib/native.ts');

const work = mkdtempSync(join(tmpdir(), 'runit-ts-files-'));
t.teardown(() => rmSync(work, { recursive: true, force: true }));

const thrownCode = (fn: () => unknown): string | undefined => {
  try {
    fn();
  } catch (e) {
    return (e as NodeJS.ErrnoException).code;
  }
  return undefined;
};

t.test('fileStat: what Node\'s statSync says, null when nothing is there', async (t) => {
  const file = join(work, 'f');
  writeFileSync(file, 'x'.repeat(1234), { mode: 0o640 });
  const fifo = join(work, 'fifo');
  native().mkfifo(fifo, 0o600);
  for (const p of [file, work, fifo]) {
    const ours = fileStat(p)!;
    const node = statSync(p);
    t.same([ours.mode, ours.size, ours.dev, ours.ino], [node.mode, node.size, node.dev, node.ino], p);
    t.ok(Math.abs(ours.mtimeMs - node.mtimeMs) < 0.001, `${p}: mtimeMs`);
  }
  t.ok(isFile(fileStat(file)!) && !isDirectory(fileStat(file)!));
  t.ok(isDirectory(fileStat(work)!) && !isFile(fileStat(work)!));
  t.ok(isFifo(fileStat(fifo)!));
  t.equal(fileStat(join(work, 'none')), null, 'a missing file: null, no Error');
  symlinkSync(join(work, 'none'), join(work, 'dangling'));
  t.equal(fileStat(join(work, 'dangling')), null, 'a dangling symlink: null (stat follows it)');
  t.equal(thrownCode(() => fileStat(join(file, 'below'))), 'ENOTDIR', 'other errors thrown with their code');
  t.ok(fileExists(file));
  t.notOk(fileExists(join(work, 'none')));
  t.notOk(fileExists(join(file, 'below')), 'fileExists: false for any error');
});

t.test('fileKind: the type bits of Node\'s statSync, 0 when nothing is there', async (t) => {
  const file = join(work, 'k');
  writeFileSync(file, 'x');
  const fifo = join(work, 'kfifo');
  native().mkfifo(fifo, 0o600);
  for (const p of [file, work, fifo, '/dev/null']) t.equal(fileKind(p), statSync(p).mode & 0o170000, p);
  t.equal(fileKind(work), S_IFDIR);
  t.equal(fileKind(join(work, 'none')), 0, 'a missing file: 0, no Error');
  symlinkSync(join(work, 'none'), join(work, 'kdangling'));
  t.equal(fileKind(join(work, 'kdangling')), 0, 'a dangling symlink: 0 (stat follows it)');
  t.equal(thrownCode(() => fileKind(join(file, 'below'))), 'ENOTDIR', 'other errors thrown with their code');
});

t.test('write: all of a string or a Buffer, errors as Node\'s', async (t) => {
  const file = join(work, 'w');
  const fd = fileOpen(file, C.O_WRONLY | C.O_CREAT | C.O_TRUNC, 0o644);
  native().write(fd, 'run: a: (pid 1) 5s; \u00e9\u{1f600}\n');
  native().write(fd, Buffer.from('bytes\0too\n'));
  native().write(fd, 'y'.repeat(4095));
  closeSync(fd);
  t.equal(readFileSync(file, 'utf8'), 'run: a: (pid 1) 5s; \u00e9\u{1f600}\nbytes\0too\n' + 'y'.repeat(4095), 'every byte, in order');
  t.throws(() => native().write(1, 'y'.repeat(4096)), RangeError, 'a string past the buffer refused, never cut short');
  t.equal(thrownCode(() => native().write(fd, 'x')), 'EBADF', 'a closed fd: EBADF');
});

t.test('readStatus: into the caller\'s Buffer, how many bytes read', async (t) => {
  const dir = join(work, 'rs');
  makeDir(dir, 0o755);
  makeDir(join(dir, 'supervise'), 0o755);
  native().mkfifo(join(dir, 'supervise', 'ok'), 0o600);
  const ok = fileOpen(join(dir, 'supervise', 'ok'), C.O_RDONLY | C.O_NONBLOCK);
  t.teardown(() => closeSync(ok));
  writeFileSync(join(dir, 'supervise', 'status'), Buffer.from('0123456789abcdefghijKL'));
  const rec = Buffer.alloc(24, 0x2e);
  t.equal(native().readStatus(dir, rec), 20, 'one read of 20');
  t.equal(rec.toString('latin1'), '0123456789abcdefghij....', 'nothing past the 20th byte');
  writeFileSync(join(dir, 'supervise', 'status'), 'short');
  t.equal(native().readStatus(`${dir}/`, rec), 5, 'a short record: its length (a trailing slash on dir too)');
  t.throws(() => native().readStatus(dir, Buffer.alloc(19)), RangeError, 'a Buffer under 20 bytes refused');
  t.throws(() => native().readStatus(dir, 'x' as unknown as Buffer), 'a string refused');
  t.equal(thrownCode(() => native().readStatus(join(work, 'none'), rec)), 'ENOENT');
});

t.test('paths: too long or with a NUL refused, never cut short', async (t) => {
  t.equal(thrownCode(() => fileStat('/' + 'a/'.repeat(2100))), 'ENAMETOOLONG');
  t.throws(() => fileStat(`${join(work, 'f')}\0/etc/passwd`), TypeError, 'a NUL would name another file');
  t.throws(() => fileOpen(`${join(work, 'f')}\0x`, C.O_RDONLY), TypeError);
});

t.test('fileAccess, fileOpen (close-on-exec), fileRead, fileChmod, makeDir', async (t) => {
  const file = join(work, 'g');
  writeFileSync(file, 'hello', { mode: 0o644 });
  t.ok(fileAccess(file, C.R_OK));
  t.notOk(fileAccess(join(work, 'none'), C.F_OK));
  t.notOk(fileAccess(file, C.X_OK), 'no x bit: not executable, even for root');

  const fd = fileOpen(file, C.O_RDONLY);
  const flags = /flags:\s*(\d+)/.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'))![1]!;
  t.ok(parseInt(flags, 8) & 0o2000000, 'O_CLOEXEC set (the same number on x86_64 and aarch64)');
  fileChmod(fd, 0o600);
  t.equal(statSync(file).mode & 0o777, 0o600, 'fchmod');
  closeSync(fd);
  const made = fileOpen(join(work, 'new'), C.O_WRONLY | C.O_CREAT | C.O_APPEND, 0o600);
  closeSync(made);
  t.equal(statSync(join(work, 'new')).mode & 0o777, 0o600 & ~process.umask(), 'created with the mode given');
  t.equal(thrownCode(() => fileOpen(join(work, 'none'), C.O_RDONLY)), 'ENOENT');

  t.same(fileRead(file), Buffer.from('hello'));
  writeFileSync(join(work, 'empty'), '');
  t.same(fileRead(join(work, 'empty')), Buffer.alloc(0));
  const big = Buffer.alloc(100_000, 'z');
  big.write('start', 0);
  big.write('end', big.length - 3);
  writeFileSync(join(work, 'big'), big);
  t.same(fileRead(join(work, 'big')), big, 'a file larger than the first read');
  t.ok((fileRead('/proc/self/stat')?.length ?? 0) > 0, 'a file whose size stat does not know');
  t.equal(fileRead(join(work, 'none')), null);
  t.equal(thrownCode(() => fileRead(work)), 'EISDIR');

  makeDir(join(work, 'd'), 0o700);
  t.equal(statSync(join(work, 'd')).mode & 0o777, 0o700 & ~process.umask());
  t.equal(thrownCode(() => makeDir(join(work, 'd'), 0o700)), 'EEXIST');
  t.equal(inDir(join(work, 'e'), 'x'), join(work, 'e', 'x'));
  t.equal(inDir('/', 'x'), '/x');
  t.equal(inDir('./main/', 'lock'), './main/lock');
});

t.test('every string argument taken whole or refused, never cut short', async (t) => {
  const n = native();
  t.throws(() => n.mkfifo(`${join(work, 'ff')}\0x`, 0o600), TypeError, 'a FIFO path with a NUL');
  t.notOk(existsSync(join(work, 'ff')), 'and no FIFO made at the path before the NUL');
  // a socket path longer than sun_path would be bound cut short, elsewhere than $NOTIFY_SOCKET says
  const long = join(work, 's'.repeat(120));
  t.throws(() => n.notifySocket(long, -1, -1), RangeError, 'a socket path longer than sun_path');
  t.same(readdirSync(work).filter((f) => f.startsWith('sss')), [], 'nothing bound at the path cut short');
  t.throws(() => n.ifUp('x'.repeat(20)), RangeError, 'an interface name longer than IFNAMSIZ (another interface, cut short)');
  t.throws(() => n.spawn('/bin/true', ['true', 'a\0b'], null, '', [], false), TypeError, 'an argument with a NUL');
});

t.test('errors of system calls as Node\'s: .syscall names the call', async (t) => {
  const e = (() => {
    try {
      native().mkdir(join(work, 'none', 'below'), 0o700);
    } catch (err) {
      return err as NodeJS.ErrnoException;
    }
  })();
  t.match(e, { code: 'ENOENT', errno: -2, syscall: 'mkdir', message: 'mkdir: No such file or directory' });
});
