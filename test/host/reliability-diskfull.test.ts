// Reliability: the file system under the log directories and under a service's
// supervise/ fills up. The supervisor runs in a private mount namespace (unshare -m) with
// a small tmpfs mounted there; the test fills it with a file (reached through
// /proc/PID/root) and removes the file after a while. Two services write 20,000 numbered
// lines each, one through the in-process svlogd, one through an svlogd process:
//  - each logger says it pauses once (runit's svlogd says so again at each 3 s retry),
//    keeps what it read, and retries; the services are not killed, they block on the
//    full pipe;
//  - once space is back every line is in the log, none twice;
//  - a third service, whose supervise/ is on that file system, is paused meanwhile
//    (sv p: a change that frees no page, unlike a new pid's shorter supervise/pid): the
//    supervisor warns once, does not crash, and supervise/status and stat are right again
//    once space is back, without another change.
import t from 'tap';
import { closeSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { alive, BIN, haveBin, readIf, until } from '../lib/host.ts';
import { pidIn, readStatus } from '../lib/runit.ts';
import { ourSv, serviceDir, sh, sleep, supervisor } from '../lib/reliability.ts';

if (!haveBin()) t.fail(`${BIN} is missing: run make build`);

// 210 kB: more than the pipe (64 KiB) and one read of the logger (64 KiB) hold
const LINES = 30_000;
const WIDTH = 6;
/** the tmpfs's size: room for every line, once the filler is gone */
const FS_SIZE = '512k';
/** how long the file system stays full (ms): runit's svlogd would say "pausing" three times */
const OUTAGE_MS = 8000;
/** once space is back: the loggers retry every 3 s, the supervisor's status within this (ms) */
const CATCH_UP_MS = 10_000;
const STATUS_BACK_MS = 3000;
const LOGGERS = { inproc: 'exec svlogd ./main', proc: 'exec env svlogd ./main' } as const;

const writer = sh(
  'exec 2>&1\nwhile [ ! -e go ]; do sleep 0.1; done\n' +
    `seq -f '%0${WIDTH}.0f' 1 ${LINES}\ntouch wrote\nexec sleep 100000`,
);

/** Every numbered line in a log directory's files: how many are missing, twice, or other. */
function audit(dir: string): { lost: number; dup: number; junk: number } {
  const seen = new Uint8Array(LINES + 1);
  let dup = 0;
  let junk = 0;
  for (const f of readdirSync(dir)) {
    if (f !== 'current' && !f.startsWith('@')) continue;
    for (const l of readFileSync(join(dir, f), 'latin1').split('\n')) {
      if (l === '') continue;
      const n = l.length === WIDTH && /^\d+$/.test(l) ? Number(l) : 0;
      if (n >= 1 && n <= LINES) {
        if (seen[n]!++) dup++;
      } else junk++;
    }
  }
  let lost = 0;
  for (let i = 1; i <= LINES; i++) if (!seen[i]) lost++;
  return { lost, dup, junk };
}

/** A process's state letter (R, S, T, Z...) from /proc/PID/stat. */
function procState(pid: number): string | undefined {
  const st = readIf(`/proc/${pid}/stat`);
  return st === undefined ? undefined : st[st.lastIndexOf(')') + 2];
}

/** Fill the file system under `dir` with one file; returns its size in bytes. */
function fill(path: string): number {
  const fd = openSync(path, 'w');
  const chunk = Buffer.alloc(4096, 0x7a);
  let n = 0;
  try {
    for (;;) n += writeSync(fd, chunk);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOSPC') throw e;
  } finally {
    closeSync(fd);
  }
  return n;
}

t.test('a full file system under the log directories and a supervise/', { skip: process.getuid?.() !== 0 ? 'needs root (unshare -m, tmpfs)' : false }, async (t) => {
  // mounted in the supervisor's own mount namespace, before it starts
  const wrap = [
    'unshare', '-m', '--propagation', 'private', 'sh', '-c',
    // $2 is the scan directory: the tmpfs goes on the tree's full/, beside it
    `f="$(dirname "$2")/full" && mount -t tmpfs -o size=${FS_SIZE} tmpfs "$f" && mkdir "$f/inproc" "$f/proc" "$f/sup" && exec "$@"`, 'sh',
  ];
  const sup = supervisor(t, (tr) => {
    mkdirSync(join(tr.root, 'full'));
    for (const [name, run] of Object.entries(LOGGERS)) {
      serviceDir(join(tr.sv, name), { run: writer, 'log/run': sh(run) });
      // relative links: resolved in the supervisor's namespace when read through /proc/PID/root
      symlinkSync(`../../../full/${name}`, join(tr.sv, name, 'log', 'main'));
    }
    serviceDir(join(tr.sv, 'steady'), { run: sh('exec sleep 100000') });
    symlinkSync('../../full/sup/steady', join(tr.sv, 'steady', 'supervise'));
  }, 'runit-ts-rel-full-', {}, wrap);
  const { tr, bg } = sup;
  const pid = bg.proc.pid!;
  const ns = (p: string) => `/proc/${pid}/root${p}`;
  const fullNs = ns(join(tr.root, 'full'));
  const svNs = (n: string) => ns(join(tr.sv, n));

  await until(() => Object.keys(LOGGERS).every((n) => pidIn(join(tr.sv, n, 'supervise')) > 0 && pidIn(join(tr.sv, n, 'log', 'supervise')) > 0) && pidIn(join(svNs('steady'), 'supervise')) > 0, 15_000, 'services and loggers up');
  const before = Object.fromEntries(Object.keys(LOGGERS).map((n) => [n, [pidIn(join(tr.sv, n, 'supervise')), pidIn(join(tr.sv, n, 'log', 'supervise'))]]));
  const steadyPid = pidIn(join(svNs('steady'), 'supervise'));

  const filled = fill(join(fullNs, 'filler'));
  t.comment(`the file system is full: ${filled} bytes of filler`);
  const out0 = bg.output().length;
  for (const n of Object.keys(LOGGERS)) writeFileSync(join(tr.sv, n, 'go'), '');
  // a change that frees no page (no new pid): runsv's stat.new and status.new cannot be written
  const pause = await ourSv(tr, ['p', svNs('steady')]);
  t.equal(pause.exitCode, 0, `sv p steady while its supervise/ is full: ${pause.stdout.trim()}`);
  await until(() => procState(steadyPid) === 'T', 5000, 'steady stopped (SIGSTOP)');
  await sleep(OUTAGE_MS);

  const during = bg.output().slice(out0);
  t.equal(bg.proc.exitCode, null, 'the supervisor still runs');
  for (const n of Object.keys(LOGGERS)) {
    t.notOk(readIf(join(tr.sv, n, 'wrote')) !== undefined, `${n}: the writer is still blocked on the full pipe`);
    t.same([pidIn(join(tr.sv, n, 'supervise')), pidIn(join(tr.sv, n, 'log', 'supervise'))], before[n], `${n}: service and logger are the same processes`);
    t.ok(before[n]!.every(alive), `${n}: both alive`);
  }
  const pausing = during.split('\n').filter((l) => l.startsWith('svlogd: pausing: unable to write to current: ./main: out of disk space'));
  t.equal(pausing.length, 2, `one "pausing" line per logger in ${OUTAGE_MS / 1000} s: ${JSON.stringify(pausing)}`);
  const warnings = during.split('\n').filter((l) => l.startsWith('runsv steady: warning:'));
  t.ok(warnings.length >= 1, `the supervisor warns: ${JSON.stringify(warnings)}`);
  t.equal(new Set(warnings).size, warnings.length, 'each warning once');
  t.notMatch(during, /    at |TypeError|RangeError|Uncaught/, 'no stack trace');

  rmSync(join(fullNs, 'filler'));
  const t0 = performance.now();
  // the supervisor's files: right again without another change
  const steadySup = join(svNs('steady'), 'supervise');
  await until(() => readStatus(steadySup)?.paused === 1 && readIf(join(steadySup, 'stat')) === 'run, paused\n', STATUS_BACK_MS, 'supervise/status and stat say paused').catch(() => undefined);
  const statusBack = (performance.now() - t0) / 1000;
  const st = readStatus(steadySup);
  t.equal(st?.state, 1, 'supervise/status: run');
  t.equal(st?.paused, 1, 'supervise/status: paused');
  t.equal(st?.pid, steadyPid, 'supervise/status: its pid');
  t.equal(readIf(join(steadySup, 'stat')), 'run, paused\n', 'supervise/stat: run, paused');
  t.equal(readIf(join(steadySup, 'pid')), `${steadyPid}\n`, 'supervise/pid: its pid');
  t.equal(readdirSync(steadySup).filter((f) => f.endsWith('.new')).length, 0, 'no .new file left');
  await until(() => Object.keys(LOGGERS).every((n) => readIf(join(tr.sv, n, 'wrote')) !== undefined), CATCH_UP_MS, 'the writers finished').catch(() => undefined);
  const audits = Object.fromEntries(Object.keys(LOGGERS).map((n) => [n, audit(join(fullNs, n))]));
  // the last lines the loggers read may still be on their way
  await until(() => Object.keys(LOGGERS).every((n) => audit(join(fullNs, n)).lost === 0), 5000, 'every line in the log').catch(() => undefined);
  for (const n of Object.keys(LOGGERS)) audits[n] = audit(join(fullNs, n));
  const caughtUp = (performance.now() - t0) / 1000;
  for (const [n, a] of Object.entries(audits)) {
    t.equal(a.lost, 0, `${n}: no line lost`);
    t.equal(a.dup, 0, `${n}: no line twice`);
    t.equal(a.junk, 0, `${n}: no other line`);
  }
  const down = await ourSv(tr, ['-w', '5', 'd', svNs('steady')]);
  t.equal(down.exitCode, 0, `sv -w 5 d steady afterwards: ${down.stdout.trim()}`);
  const stats = JSON.parse(readIf(join(steadySup, 'stats.json')) ?? 'null') as { lastExit?: { code: number; signal: number } } | null;
  t.same(stats?.lastExit, { code: -1, signal: 15 }, 'supervise/stats.json: the last exit (TERM)');
  const up = await ourSv(tr, ['-w', '5', 'u', svNs('steady')]);
  t.equal(up.exitCode, 0, `sv -w 5 u steady afterwards: ${up.stdout.trim()}`);
  t.comment(
    `figure: log file system full for ${OUTAGE_MS / 1000} s under 2 loggers writing ${LINES} lines each: ${pausing.length} "pausing" lines, ` +
      `lost ${audits.inproc!.lost} (in-process) and ${audits.proc!.lost} (process), duplicated ${audits.inproc!.dup + audits.proc!.dup}, caught up ${caughtUp.toFixed(1)} s after space returned; ` +
      `supervise/ full: ${warnings.length} warning lines, status right ${statusBack.toFixed(1)} s after space returned (bound ${STATUS_BACK_MS / 1000} s)`,
  );
});
