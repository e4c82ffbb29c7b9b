// The long-running case of the reliability suite, run with counts: many restarts of
// crash-looping services and many log rotations in one supervisor, and what the
// supervisor holds afterwards against what it held after a warm-up.
//
// runsv holds a service that ran less than a second for a second before it starts it
// again (runit's rule), so one service restarts about once a second: the restarts come
// from many services in parallel (their ./run is /bin/true). The loggers are in-process
// svlogd with a tiny size (s4096): each file holds 49 lines of 64 bytes, so a writer of
// 49 x N numbered lines makes N rotations ("a day's worth": 1,440, one a minute).
//
// Measured twice, after a warm-up and after the run, each time with every crashing
// service down and every writer idle: the supervisor's PSS (/proc/PID/smaps_rollup),
// its open descriptors (/proc/PID/fd), and its live timers and other asynchronous
// resources, which it writes on SIGUSR2 when RUNIT_TS_RESOURCES names a file
// (src/lib/resources.ts: async_hooks, unref()ed timers included) after its trim (its
// garbage collected, pages given back), with its live heap. Bounds: PSS within
// 10 % of the warm-up's, no descriptor and no timer more.
// test/host/reliability-longrun.test.ts runs a short count (make test),
// test/reliability/longrun.test.ts the full one (make reliability).
import type { Test } from 'tap';
import { readdirSync, readFileSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readIf, until } from './host.ts';
import { pidIn } from './runit.ts';
import { memoryKb, ourSv, serviceDir, sh, sleep, supervisor } from './reliability.ts';
import type { ResourceReport } from '../../src/lib/resources.ts';

export interface LongrunCounts {
  /** crash-looping services */
  crashers: number;
  /** restarts of them in the measured run (after the warm-up) */
  restarts: number;
  /** logged services (in-process svlogd) */
  loggers: number;
  /** rotations of each logger in the measured run */
  rotations: number;
  /** the bound on the whole measured run (ms) */
  boundMs: number;
  /** PSS may grow this much over the run (a fraction of the warm-up's) */
  pssGrowth: number;
}

/**
 * How long the supervisor may take to answer SIGUSR2 (ms): not a bound on anything, but
 * after 500 services were asked down it may still be writing their status files, and on
 * a root file system mounted with `discard` each file replaced waits for the disk
 */
const REPORT_WAIT_MS = 30_000;
/** the warm-up: this long of the crash loop, and this share of the rotations */
const WARM_MS = 15_000;
const WARM_SHARE = 0.2;
/** svlogd's s, and the line the writers write (63 digits and a newline): 49 lines a file */
const SIZE = 4096;
const LINE = 64;
const LINES_PER_FILE = Math.floor((SIZE - 1000) / LINE) + 1;
/** after stopping everything, before measuring (ms): the last exits reaped, their timers done */
const SETTLE_MS = 4000;
/** resource reports taken at each measure, and the time between them (ms) */
const REPORTS = 3;
const REPORT_GAP_MS = 700;

const pad = (i: number, w = 3) => String(i).padStart(w, '0');

/** The case, with `c`'s counts. */
export async function longrunSuite(t: Test, c: LongrunCounts): Promise<void> {
  const crashers = Array.from({ length: c.crashers }, (_, i) => `c${pad(i)}`);
  const loggers = Array.from({ length: c.loggers }, (_, i) => `l${pad(i, 2)}`);
  const warmLines = Math.round(c.rotations * WARM_SHARE) * LINES_PER_FILE;
  const runLines = c.rotations * LINES_PER_FILE;
  const sup = supervisor(t, (tr) => {
    writeFileSync(join(tr.root, 'resources'), '');
    for (const n of crashers) {
      serviceDir(join(tr.root, 'later', n), {});
      symlinkSync('/bin/true', join(tr.root, 'later', n, 'run'));
    }
    // the warm-up's lines, then (once ./go is there) the run's
    const writer = sh(
      'exec 2>&1\n' +
        `seq -f '%063.0f' 1 ${warmLines}\ntouch warm\n` +
        'while [ ! -e go ]; do sleep 0.2; done\n' +
        `seq -f '%063.0f' ${warmLines + 1} ${warmLines + runLines}\ntouch done\nexec sleep 100000`,
    );
    for (const n of loggers) serviceDir(join(tr.sv, n), { run: writer, 'log/run': sh('exec svlogd ./main'), 'log/main/config': `s${SIZE}\nn5\n` });
  }, 'runit-ts-rel-long-', (tr) => ({ RUNIT_TS_RESOURCES: join(tr.root, 'resources') }));
  const { tr, bg } = sup;
  const pid = bg.proc.pid!;
  const sv = (n: string) => join(tr.sv, n);
  const restarts = () => crashers.reduce((sum, n) => sum + ((JSON.parse(readIf(join(sv(n), 'supervise', 'stats.json')) ?? '{}') as { restarts?: number }).restarts ?? 0), 0);
  /** everything down or idle, then the supervisor's memory, descriptors and resources */
  const measure = async (): Promise<{ pss: number; heapUsed: number; fds: number; live: Record<string, number> }> => {
    const r = await ourSv(tr, ['-w', '10', 'd', ...crashers.map(sv)]);
    if (r.exitCode !== 0) throw new Error(`sv d on the crashing services: ${r.stdout.slice(-300)}`);
    await sleep(SETTLE_MS);
    // three reports, each kind's fewest: a timer that is only passing through (a logger's
    // flush, a pass planned) is in one of them at most, one that leaked in all three
    const live: Record<string, number> = {};
    // PSS and the live heap each read after a report, so after the supervisor's trim (its
    // heap's garbage collected and its pages given back: a heap grown for garbage showed
    // +40 % in a look without it); the least of the three, as a leak is in all three
    let pss = Infinity;
    let heapUsed = Infinity;
    for (let i = 0; i < REPORTS; i++) {
      if (i) await sleep(REPORT_GAP_MS);
      writeFileSync(join(tr.root, 'resources'), '');
      process.kill(pid, 'SIGUSR2');
      const rep = JSON.parse(await until(() => readIf(join(tr.root, 'resources')) || undefined, REPORT_WAIT_MS, 'the resource report')) as ResourceReport;
      pss = Math.min(pss, memoryKb(pid).pss);
      heapUsed = Math.min(heapUsed, rep.heap.used);
      const got = rep.live;
      for (const k of new Set([...Object.keys(live), ...Object.keys(got)])) live[k] = i ? Math.min(live[k] ?? 0, got[k] ?? 0) : (got[k] ?? 0);
    }
    return { pss, heapUsed, fds: readdirSync(`/proc/${pid}/fd`).length, live };
  };

  await until(() => loggers.every((n) => pidIn(join(sv(n), 'supervise')) > 0), 10_000, 'loggers up');
  for (const n of crashers) renameSync(join(tr.root, 'later', n), sv(n));
  await until(() => crashers.every((n) => readIf(join(sv(n), 'supervise', 'stats.json')) !== undefined), 30_000, 'crashers supervised');
  await sleep(WARM_MS);
  await until(() => loggers.every((n) => readIf(join(sv(n), 'warm')) !== undefined), 60_000, 'the warm-up lines written');
  const warmRestarts = restarts();
  const before = await measure();

  const t0 = performance.now();
  for (const n of loggers) writeFileSync(join(sv(n), 'go'), '');
  const up = await ourSv(tr, ['u', ...crashers.map(sv)]);
  t.equal(up.exitCode, 0, 'the crash loop again');
  const target = warmRestarts + c.restarts;
  await until(() => restarts() >= target && loggers.every((n) => readIf(join(sv(n), 'done')) !== undefined), c.boundMs, `${c.restarts} restarts and ${c.rotations} rotations of each logger`).catch(() => undefined);
  const runS = (performance.now() - t0) / 1000;
  const made = restarts() - warmRestarts;
  t.ok(made >= c.restarts, `${made} restarts in ${runS.toFixed(0)} s (${(made / runS).toFixed(0)} a second; asked ${c.restarts})`);
  const after = await measure();

  // rotations: the lines a logger's newest rotated file ends with, over the lines a file holds
  const rotations = loggers.map((n) => {
    const main = join(sv(n), 'log', 'main');
    const rotated = readdirSync(main).filter((f) => f.startsWith('@')).sort();
    const last = readFileSync(join(main, rotated.at(-1)!), 'latin1').trimEnd().split('\n').at(-1)!;
    return Math.floor(Number(last) / LINES_PER_FILE) - Math.round(c.rotations * WARM_SHARE);
  });
  t.ok(rotations.every((r) => r >= c.rotations - 1), `rotations of each logger in the run: ${rotations.join(', ')} (asked ${c.rotations})`);
  t.equal(bg.proc.exitCode, null, 'the supervisor still runs');
  const growth = (after.pss - before.pss) / before.pss;
  t.ok(growth <= c.pssGrowth, `PSS ${(before.pss / 1024).toFixed(1)} -> ${(after.pss / 1024).toFixed(1)} MiB (${(growth * 100).toFixed(1)} %, bound ${c.pssGrowth * 100} %)`);
  t.ok(after.fds <= before.fds, `open descriptors ${before.fds} -> ${after.fds}`);
  const timers = (l: Record<string, number>) => (l.Timeout ?? 0) + (l.Immediate ?? 0);
  t.ok(timers(after.live) <= timers(before.live), `live timers ${timers(before.live)} -> ${timers(after.live)}`);
  const total = (l: Record<string, number>) => Object.values(l).reduce((a, b) => a + b, 0);
  t.ok(total(after.live) <= total(before.live), `live asynchronous resources ${total(before.live)} -> ${total(after.live)} (${JSON.stringify(after.live)})`);
  t.notMatch(bg.output(), /    at |TypeError|RangeError|Uncaught/, 'no stack trace');
  t.comment(
    `figure: ${made} restarts of ${c.crashers} crash-looping services and ${c.rotations} rotations of each of ${c.loggers} loggers (s${SIZE}) in ${runS.toFixed(0)} s: ` +
      `PSS ${(before.pss / 1024).toFixed(1)} -> ${(after.pss / 1024).toFixed(1)} MiB (${growth >= 0 ? '+' : ''}${(growth * 100).toFixed(1)} %), ` +
      `live heap ${(before.heapUsed / 2 ** 20).toFixed(1)} -> ${(after.heapUsed / 2 ** 20).toFixed(1)} MiB, descriptors ${before.fds} -> ${after.fds}, ` +
      `live timers ${timers(before.live)} -> ${timers(after.live)}, resources ${total(before.live)} -> ${total(after.live)}`,
  );
}
