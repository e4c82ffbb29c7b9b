import t from 'tap';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cleanMappings, LOCK_GRAPH_BYTES, lockGraphMappings } from '../../src/lib/trim.ts';

async function until(ok: () => boolean, what: string): Promise<void> {
  for (const t0 = Date.now(); !ok(); await new Promise((r) => setTimeout(r, 10))) {
    if (Date.now() - t0 > 5000) throw new Error(`timed out waiting for ${what}`);
  }
}

const map = (range: string, perms: string, file: string, fields: Record<string, number>) =>
  `${range} ${perms} 00000000 fe:00 123                            ${file}\n` +
  ['Size', 'Rss', 'Private_Clean', 'Private_Dirty', 'Shared_Dirty', 'Anonymous', 'Swap']
    .map((k) => `${k}:${' '.repeat(16 - k.length)}${fields[k] ?? 0} kB`)
    .join('\n') + '\n';

t.test('only private, read-only mappings of the file without private copies are dropped', async (t) => {
  const exe = '/usr/lib/runit-ts/runit-ts';
  const smaps =
    map('400000-746000', 'r--p', exe, { Rss: 100, Private_Dirty: 8, Anonymous: 8 }) + // RELRO after relocation
    map('74a000-3201000', 'r-xp', exe, { Rss: 20000, Private_Clean: 20000 }) +
    map('3201000-6b51000', 'r--p', exe, { Rss: 5000, Private_Dirty: 5000 }) + // a tmpfs file: dirty, not copied
    map('6b56000-6b7d000', 'rw-p', exe, { Rss: 150, Private_Dirty: 150 }) +
    map('7000000-7001000', 'r--s', exe, {}) +
    map('8000000-8001000', 'r-xp', '/usr/lib/x86_64-linux-gnu/libc.so.6', {}) +
    map('9000000-9001000', 'r-xp', exe, { Anonymous: 4 }) +
    map('a000000-a001000', 'r--p', exe, { Swap: 4 });
  t.same(cleanMappings(smaps, exe), [
    [0x74a000n, 0x3201000n],
    [0x3201000n, 0x6b51000n],
  ]);
});

t.test('without a file: read-only private mappings of any file, never anonymous memory', async (t) => {
  const exe = '/usr/lib/runit-ts/runit-ts';
  const libc = '/lib/x86_64-linux-gnu/libc.so.6';
  const smaps =
    map('74a000-3201000', 'r-xp', exe, { Rss: 20000, Private_Clean: 20000 }) +
    map('8000000-8100000', 'r-xp', libc, { Rss: 1000 }) +
    map('8100000-8104000', 'r--p', libc, { Rss: 16, Anonymous: 16 }) + // RELRO
    map('8104000-8106000', 'rw-p', libc, { Rss: 8, Anonymous: 8 }) +
    map('9000000-9400000', 'rw-p', '[heap]', { Rss: 4000, Anonymous: 4000 }) +
    map('a000000-a001000', 'r--p', '', {}) +
    map('b000000-b002000', 'r-xp', '[vdso]', {}) +
    map('c000000-c100000', 'r--p', '/usr/lib/runit-ts/runit-ts.node', { Rss: 20 });
  t.same(cleanMappings(smaps), [
    [0x74a000n, 0x3201000n],
    [0x8000000n, 0x8100000n],
    [0xc000000n, 0xc100000n],
  ]);
});

t.test("the lock graph's mappings: anonymous, private, writable, of its size at least", async (t) => {
  const at = (a: bigint, n: bigint, perms: string, name = '') => `${a.toString(16)}-${(a + n).toString(16)} ${perms} 00000000 00:00 0 ${name}\n`;
  const smaps =
    at(0x7f0000000000n, LOCK_GRAPH_BYTES, 'rw-p') +
    'Size:               1088 kB\nRss:                1028 kB\n' +
    at(0x7f0000200000n, LOCK_GRAPH_BYTES, 'r--p') + // not writable
    at(0x7f0000400000n, LOCK_GRAPH_BYTES + 0x1000n, 'rw-p') + // merged with a neighbour
    at(0x7f0000500000n, LOCK_GRAPH_BYTES - 0x1000n, 'rw-p') + // too small
    at(0x7f0000600000n, LOCK_GRAPH_BYTES, 'rw-s') + // shared
    `7f0000800000-7f0000910000 rw-p 00000000 fe:00 123 /usr/lib/runit-ts/runit-ts\n` + // a file's
    at(0x1c00000000n, LOCK_GRAPH_BYTES, 'rw-p');
  t.same(lockGraphMappings(smaps), [
    [0x7f0000000000n, 0x7f0000000000n + LOCK_GRAPH_BYTES],
    [0x7f0000400000n, 0x7f0000400000n + LOCK_GRAPH_BYTES + 0x1000n],
    [0x1c00000000n, 0x1c00000000n + LOCK_GRAPH_BYTES],
  ]);
});

t.test('a live process is recognised by its directory or its start time', async (t) => {
  const { isServiceProcess, processStartSeconds, processStartTicks } = await import('../../src/lib/proc.ts');
  const { realpathSync } = await import('node:fs');
  const now = Date.now() / 1000;
  const started = processStartSeconds(process.pid)!;
  t.ok(Math.abs(started - now) < 60, 'start time of this process is close to now');
  t.ok(isServiceProcess(process.pid, Math.floor(started), '/nonexistent'), 'start time matches the status time');
  t.notOk(isServiceProcess(process.pid, Math.floor(started) - 3600, '/nonexistent'), 'an hour off: another process');
  t.ok(isServiceProcess(process.pid, 0, realpathSync(process.cwd())), 'or its working directory is the service directory');
  t.equal(processStartTicks(2 ** 22 + 1), undefined, 'no such process');
});

t.test('start ticks: past a command name with spaces and parentheses, the time it started, stable', async (t) => {
  const { processStartSeconds, processStartTicks } = await import('../../src/lib/proc.ts');
  const dir = mkdtempSync(join(tmpdir(), 'runit-ts-proc-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  // /proc/PID/stat shows "PID (x) R 1 (y) S PPID ...": only the last ')' ends the name
  const name = 'x) R 1 (y';
  symlinkSync('/bin/sleep', join(dir, name));
  const before = Date.now() / 1000;
  const child = spawn(join(dir, name), ['30'], { stdio: 'ignore' });
  t.teardown(() => void child.kill('SIGKILL'));
  const pid = child.pid!;
  await until(() => readFileSync(`/proc/${pid}/stat`, 'utf8').includes(`(${name})`), 'the exec');
  const after = Date.now() / 1000;
  const ticks = processStartTicks(pid);
  t.type(ticks, 'number');
  t.ok(ticks! >= processStartTicks(process.pid)!, 'a later process, a later start');
  const started = processStartSeconds(pid)!;
  t.ok(started >= before - 0.5 && started <= after + 0.5, `started at ${started.toFixed(2)}, spawned between ${before.toFixed(2)} and ${after.toFixed(2)}`);
  await new Promise((r) => setTimeout(r, 150));
  t.equal(processStartTicks(pid), ticks, 'the same a moment later: a stable identity with the pid');
});

t.test('a zombie has no start time', async (t) => {
  const { processStartTicks } = await import('../../src/lib/proc.ts');
  // sh starts a child that exits at once, then becomes a sleep that never reaps it
  const parent = spawn('/bin/sh', ['-c', 'sleep 0 & echo $!; exec sleep 30'], { stdio: ['ignore', 'pipe', 'ignore'] });
  t.teardown(() => void parent.kill('SIGKILL'));
  const zombie = await new Promise<number>((res) => parent.stdout!.once('data', (d: Buffer) => res(Number(String(d).trim()))));
  const state = () => readFileSync(`/proc/${zombie}/stat`, 'utf8').replace(/^.*\) /s, '')[0];
  await until(() => state() === 'Z', 'the zombie');
  t.equal(processStartTicks(zombie), undefined);
  t.type(processStartTicks(parent.pid!), 'number', 'its parent has one');
});
