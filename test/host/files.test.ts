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
const { fileAccess, fileChmod, fileExists, fileOpen, fileRead, fileStat, inDir, isDirectory, isFifo, isFile, makeDir } = await import('../../src/lib/files.ts');
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
