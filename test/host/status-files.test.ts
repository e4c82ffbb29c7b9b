// The supervisor's status files written through the addon (one call per file: write
// FILE.new, rename it over FILE), as runsv writes them: the same bytes and mode as the
// plain fs path of the unit tests, and runsv's words for a failed step.
import t from 'tap';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { BIN } from '../lib/host.ts';

// before anything loads the addon: the built one
process.env.RUNIT_TS_ADDON ??= join(dirname(BIN), 'runit-ts.node');
const { native } = await import('../../src/lib/native.ts');
const { readStats, writeStats, writeStatus } = await import('../../src/lib/supervise.ts');
const { encodeStatus, pidFile, statLine, S_RUN } = await import('../../src/lib/status.ts');

const work = mkdtempSync(join(tmpdir(), 'runit-ts-status-'));
t.teardown(() => rmSync(work, { recursive: true, force: true }));
const st = { pid: 4242, state: S_RUN as typeof S_RUN, start: { sec: 0x400000006b0137f0n, nano: 5 }, paused: false, want: 'up' as const, term: false };

t.test('the addon is what writes them', async (t) => {
  t.type(native().replaceFile, 'function');
});

t.test('pid, stat and status: the same bytes as runsv, mode 0644 & ~umask', async (t) => {
  const dir = join(work, 'svc');
  mkdirSync(join(dir, 'supervise'), { recursive: true });
  const warnings: string[] = [];
  t.ok(writeStatus(dir, st, { pid: true, label: 'supervise/', warn: (m) => warnings.push(m) }));
  t.same(warnings, []);
  t.equal(readFileSync(join(dir, 'supervise/pid'), 'utf8'), pidFile(st.pid));
  t.equal(readFileSync(join(dir, 'supervise/stat'), 'utf8'), statLine(st));
  t.same(readFileSync(join(dir, 'supervise/status')), encodeStatus(st));
  const umask = process.umask();
  for (const f of ['pid', 'stat', 'status']) t.equal(statSync(join(dir, 'supervise', f)).mode & 0o777, 0o644 & ~umask, `${f} mode`);
  // a second update truncates what was there
  writeStatus(dir, { ...st, pid: 7 }, { pid: true, label: 'supervise/', warn: (m) => warnings.push(m) });
  t.equal(readFileSync(join(dir, 'supervise/pid'), 'utf8'), '7\n');
});

t.test('a failed step in runsv\'s words, with its errno', async (t) => {
  const warnings: string[] = [];
  const warn = (m: string, e: unknown) => warnings.push(`${m}: ${(e as NodeJS.ErrnoException).code}`);
  t.notOk(writeStatus(join(work, 'nosuch'), st, { pid: true, label: 'log/supervise/', warn }));
  t.same(warnings, ['unable to open log/supervise/pid.new: ENOENT']);
  // stat cannot be replaced (a non-empty directory is in its place): warned, status still written
  const dir = join(work, 'blocked');
  mkdirSync(join(dir, 'supervise', 'stat', 'x'), { recursive: true });
  warnings.length = 0;
  t.ok(writeStatus(dir, st, { pid: false, label: 'supervise/', warn }));
  t.match(warnings, [/^unable to rename stat\.new to supervise\/stat: E(ISDIR|NOTEMPTY|EXIST)$/]);
  t.same(readFileSync(join(dir, 'supervise/status')), encodeStatus(st), 'status written after the failed rename');
});

t.test('stats.json of any size', async (t) => {
  const dir = join(work, 'stats');
  mkdirSync(join(dir, 'supervise'), { recursive: true });
  writeFileSync(join(dir, 'supervise', 'stats.json'), 'x'.repeat(5000));
  const big = { restarts: 3, lastExit: null, note: 'y'.repeat(2000) };
  writeStats(dir, big as never, (m) => t.fail(m));
  t.same(readStats(dir), big);
});
