// The small helpers of src/lib/sys.ts and src/lib/supervise.ts that stand in for Node's
// own on the supervisor's start (docs/performance.md): the same results.
import t from 'tap';
import { join } from 'node:path';
import { constants } from 'node:os';
import { isoTime, monotonicMs, signalName, signalNumber } from '../../src/lib/sys.ts';
import { supervisePath } from '../../src/lib/supervise.ts';

t.test('isoTime gives what toISOString gives', async (t) => {
  const samples = [0, 1, -1, 999, 1000, 86_399_999, Date.UTC(2026, 10, 29, 23, 59, 59, 999), Date.UTC(2000, 1, 29), Date.UTC(1969, 11, 31, 23, 59, 59, 1),
    Date.UTC(9999, 11, 31, 23, 59, 59, 999), Date.UTC(10000, 0, 1), Date.UTC(-1, 0, 1), Date.UTC(-271821, 3, 20), 8.64e15, -8.64e15];
  let seed = 1;
  for (let i = 0; i < 2000; i++) {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    samples.push(Math.floor((seed / 2 ** 31 - 0.5) * 2 * 2 ** 46));
  }
  for (const ms of samples) if (isoTime(ms) !== new Date(ms).toISOString()) t.fail(`${ms}: ${isoTime(ms)} vs ${new Date(ms).toISOString()}`);
  t.match(isoTime(), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/, 'now');
  t.pass(`${samples.length} times compared`);
});

t.test('monotonicMs counts milliseconds on the monotonic clock', async (t) => {
  const a = monotonicMs();
  const b = performance.now();
  await new Promise((r) => setTimeout(r, 50));
  const da = monotonicMs() - a;
  const db = performance.now() - b;
  t.ok(Math.abs(da - db) < 5, `${da.toFixed(2)} ms against performance.now's ${db.toFixed(2)}`);
});

t.test('supervisePath names the same file as path.join', async (t) => {
  for (const dir of ['/etc/sv/x', '/etc/sv/x/', 'x', 'x/log', './x', '/']) t.equal(join(supervisePath(dir, 'stat')), join(dir, 'supervise', 'stat'), dir);
});

t.test('the code cache\'s training run sets back every V8 flag the supervisor changes', async (t) => {
  const { INTERPRETER_ONLY, V8_DEFAULTS } = await import('../../src/lib/trim.ts');
  const { readFileSync } = await import('node:fs');
  const name = (f: string) => f.replace(/^--(no-)?/, '').replace(/=.*/, '');
  t.same(V8_DEFAULTS.split(' ').map(name), INTERPRETER_ONLY.split(' ').map(name), 'the same flags, in order');
  t.ok(readFileSync(join(import.meta.dirname, '../../scripts/sea-train.cjs'), 'utf8').includes(`setFlagsFromString('${V8_DEFAULTS}')`), 'sea-train.cjs restores V8_DEFAULTS');
});

t.test('signal names and numbers are what os.constants.signals says', async (t) => {
  const table = constants.signals as Record<string, number>;
  for (let n = 0; n <= 64; n++) {
    const first = Object.entries(table).find(([, v]) => v === n)?.[0];
    t.equal(signalName(n), first, `signal ${n}`);
  }
  for (const [name, n] of Object.entries(table)) t.equal(signalNumber(name), n, name);
  t.equal(signalNumber('SIGNOPE'), 0, 'an unknown name');
  t.equal(signalName(1.5), undefined, 'not a signal number');
});
