import t from 'tap';
import { cleanMappings } from '../../src/lib/trim.ts';

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

t.test('a live process is recognised by its directory or its start time', async (t) => {
  const { isServiceProcess, processStartSeconds, processStartTicks } = await import('../../src/lib/proc.ts');
  const { realpathSync } = await import('node:fs');
  const now = Date.now() / 1000;
  const started = processStartSeconds(process.pid)!;
  t.ok(Math.abs(started - now) < 60, 'start time of this process is close to now');
  t.ok(isServiceProcess(process.pid, Math.floor(started), '/nonexistent'), 'start time matches the status time');
  t.notOk(isServiceProcess(process.pid, Math.floor(started) - 3600, '/nonexistent'), 'an hour off: another process');
  t.ok(isServiceProcess(process.pid, 0, realpathSync(process.cwd())), 'or its working directory is the service directory');
  t.equal(processStartTicks(process.pid), processStartTicks(process.pid), 'ticks are a stable identity');
  t.equal(processStartTicks(2 ** 22 + 1), undefined, 'no such process');
});
