// Reliability: the supervisor at the system's limits.
//  - Processes: a pids cgroup whose pids.max lets the supervisor start only a few of 20
//    services (clone fails with EAGAIN). As runit's runsv: "unable to fork, sleeping"
//    and another try 5 s later; nothing is taken for an exit (no ./finish, no exit in
//    stats.json); once the limit lifts every service starts, none twice.
//  - svlogd's processor under the same limit: its process cannot be made. As runit's
//    svlogd: "pausing: unable to fork for processor" (said once here) and another try 3 s
//    later, not a processor taken for failed and started again at once; once the limit
//    lifts the rotated file is processed and no line is lost.
//  - Descriptors: 500 services under ulimit -n 256 (all the supervisor's in one process,
//    where runit gives each runsv its own table): one clear line, no crash, the services
//    it did start still under control; once descriptors are free again (services
//    removed) the ones waiting are supervised, none twice.
import t from 'tap';
import { mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { alive, BIN, haveBin, readIf, tree, until } from '../lib/host.ts';
import { pidIn } from '../lib/runit.ts';
import { readStats } from '../../src/lib/supervise.ts';
import { ourSv, pidsCgroup, pidsCgroupBase, processesUnder, serviceDir, sh, sleep, supervisor } from '../lib/reliability.ts';

if (!haveBin()) t.fail(`${BIN} is missing: run make build`);

/** the services a pids.max lets start: the supervisor's own tasks (its threads) plus these */
const ALLOWED = 5;
const PROC_SERVICES = 20;
/** runsv's sleep after a failed fork (ms), and the bound on all starting once the limit lifts */
const FORK_RETRY_MS = 5000;
const LIFT_BOUND_MS = FORK_RETRY_MS + 3000;
/** svlogd's pause after a failed step, its processor's fork among them (ms) */
const PROCESSOR_PAUSE_MS = 3000;
const FD_SERVICES = 500;
const FD_LIMIT = 256;
/** supervised services removed to give descriptors back */
const REMOVED = 40;
/** services' worth of descriptors the supervisor keeps in reserve (16 of about 4 each) */
const RESERVE_SERVICES = 5;
/** the supervisor tries services it had no descriptors for again every 5 s */
const RECOVER_BOUND_MS = 5000 + 5000;
const name = (i: number) => `s${String(i).padStart(3, '0')}`;

t.test(`pids.max reached: ${PROC_SERVICES} services, room for ${ALLOWED}`, { skip: pidsCgroupBase() ? false : 'no writable pids cgroup (cgroup v1 pids hierarchy, or v2 with the pids controller)' }, async (t) => {
  const cg = pidsCgroup(t, 'runit-ts-rel-pids');
  if (!cg) throw new Error('unable to make a pids cgroup');
  const names = Array.from({ length: PROC_SERVICES }, (_, i) => name(i));
  const sup = supervisor(t, (tr) => {
    for (const n of names) serviceDir(join(tr.root, 'later', n), { run: sh('echo x >> started\nexec sleep 100000'), finish: sh('echo x >> finished') });
  }, 'runit-ts-rel-pids-', {}, cg.wrap);
  const { tr, bg } = sup;
  const sv = (n: string) => join(tr.sv, n);
  // the supervisor idle, its threads all made (and past its first events and trim)
  await sleep(6000);
  const own = cg.current();
  cg.setMax(own + ALLOWED);
  const out0 = bg.output().length;
  for (const n of names) renameSync(join(tr.root, 'later', n), sv(n));
  await sleep(FORK_RETRY_MS + 2000); // at least one more try for each
  const running = names.filter((n) => pidIn(join(sv(n), 'supervise')) > 0);
  const during = bg.output().slice(out0);
  const forkLines = during.split('\n').filter((l) => /^runsv s\d{3}: warning: unable to fork, sleeping: temporary failure$/.test(l));
  t.equal(bg.proc.exitCode, null, 'the supervisor still runs');
  t.ok(running.length <= ALLOWED && running.length > 0, `${running.length} services started (the supervisor has ${own} tasks, pids.max ${own + ALLOWED})`);
  t.ok(forkLines.length >= PROC_SERVICES - ALLOWED, `runsv's warning for each that could not start: ${forkLines.length} lines`);
  t.same(during.split('\n').filter((l) => l && !forkLines.includes(l)), [], 'no other line (no fatal, no stack trace)');
  const waiting = names.filter((n) => !running.includes(n));
  t.same(waiting.filter((n) => readStats(sv(n))?.lastExit), [], 'no exit recorded for a service that never ran (stats.json lastExit null)');
  t.same(names.filter((n) => readIf(join(sv(n), 'finished')) !== undefined), [], 'no ./finish ran');

  cg.setMax('max');
  const t0 = performance.now();
  await until(() => names.every((n) => alive(pidIn(join(sv(n), 'supervise')))), LIFT_BOUND_MS, 'every service up').catch(() => undefined);
  const upS = (performance.now() - t0) / 1000;
  const up = names.filter((n) => alive(pidIn(join(sv(n), 'supervise'))));
  t.equal(up.length, PROC_SERVICES, `all ${PROC_SERVICES} up ${upS.toFixed(1)} s after the limit lifted (bound ${LIFT_BOUND_MS / 1000} s)`);
  await sleep(1500);
  const procs = processesUnder(tr.sv);
  t.same(names.filter((n) => (procs.get(sv(n)) ?? []).length !== 1), [], 'each runs exactly once (processes counted in /proc)');
  t.same(names.filter((n) => readIf(join(sv(n), 'started')) !== 'x\n'), [], 'each ./run started exactly once');
  t.same(names.filter((n) => readIf(join(sv(n), 'finished')) !== undefined), [], 'still no ./finish');
  t.comment(`figure: pids.max reached (${own} tasks of the supervisor + ${ALLOWED}): ${running.length} of ${PROC_SERVICES} services started, ${forkLines.length} "unable to fork, sleeping" lines in ${(FORK_RETRY_MS + 2000) / 1000} s, all up ${upS.toFixed(1)} s after the limit lifted (bound ${LIFT_BOUND_MS / 1000} s), 0 started twice`);
});

t.test('pids.max reached: svlogd\'s processor cannot be started', { skip: pidsCgroupBase() ? false : 'no writable pids cgroup (cgroup v1 pids hierarchy, or v2 with the pids controller)' }, async (t) => {
  const cg = pidsCgroup(t, 'runit-ts-rel-svlogd');
  if (!cg) throw new Error('unable to make a pids cgroup');
  const tr = tree('runit-ts-rel-svlogd-');
  t.teardown(() => tr.cleanup());
  const dir = join(tr.root, 'log');
  mkdirSync(dir);
  // rotation at 100 bytes; the processor copies the rotated lines through
  writeFileSync(join(dir, 'config'), 's100\n!cat\n');
  const logger = execa(cg.wrap[0]!, [...cg.wrap.slice(1), tr.our('svlogd'), dir], { reject: false, stdin: 'pipe', all: true });
  await sleep(2000); // its threads all made
  cg.setMax(cg.current());
  const line = (i: number) => `line ${String(i).padStart(4, '0')}\n`;
  let written = '';
  for (let i = 0; i < 20; i++) {
    logger.stdin!.write(line(i));
    written += line(i);
  }
  await sleep(PROCESSOR_PAUSE_MS * 2 + 1000); // two more tries at least
  t.equal(logger.exitCode, null, 'svlogd still runs');
  cg.setMax('max');
  const processed = () => readdirSync(dir).filter((f) => /^@[0-9a-f]{24}\.s$/.test(f));
  const t0 = performance.now();
  await until(() => processed().length > 0, PROCESSOR_PAUSE_MS + 5000, 'a rotated file processed once the limit lifted');
  const liftS = (performance.now() - t0) / 1000;
  for (let i = 20; i < 25; i++) {
    logger.stdin!.write(line(i));
    written += line(i);
  }
  logger.stdin!.end();
  const r = await logger;
  t.equal(r.exitCode, 0, 'svlogd exits 0 at the end of its input');
  const lines = (r.all ?? '').split('\n').filter(Boolean);
  const forks = lines.filter((l) => /^svlogd: pausing: unable to fork for processor: .*: temporary failure$/.test(l));
  t.ok(forks.length >= 1 && forks.length <= 2, `the fork failure said (${forks.length} lines, said again only when the error changes)`);
  t.same(lines.filter((l) => !forks.includes(l)), [], `no other line (no "processor failed, restart" loop): ${lines.slice(0, 3).join(' | ')}${lines.length > 3 ? ` ... (${lines.length} lines)` : ''}`);
  const logged = readdirSync(dir).filter((f) => f === 'current' || /^@[0-9a-f]{24}\.[su]$/.test(f)).sort().map((f) => readFileSync(join(dir, f), 'utf8')).join('');
  // current sorts first by name but holds the newest lines: order by content
  t.same(logged.split('\n').filter(Boolean).sort(), written.split('\n').filter(Boolean).sort(), 'every line logged once (the rotated files and current)');
  t.comment(`figure: svlogd under pids.max: ${forks.length} "unable to fork for processor" line(s) in ${(PROCESSOR_PAUSE_MS * 2 + 1000) / 1000} s, the rotated file processed ${liftS.toFixed(1)} s after the limit lifted, 0 lines lost`);
});

t.test(`${FD_SERVICES} services under ulimit -n ${FD_LIMIT}`, async (t) => {
  const names = Array.from({ length: FD_SERVICES }, (_, i) => name(i));
  const sup = supervisor(t, (tr) => {
    for (const n of names) serviceDir(join(tr.sv, n), { run: sh('exec sleep 100000') });
  }, 'runit-ts-rel-fds-', {}, ['prlimit', `--nofile=${FD_LIMIT}:${FD_LIMIT}`, '--']);
  const { tr, bg } = sup;
  const sv = (n: string) => join(tr.sv, n);
  const supervised = () => names.filter((n) => pidIn(join(sv(n), 'supervise')) > 0);
  await until(() => bg.output().includes('out of file descriptors'), 15_000, 'the line about descriptors').catch(() => undefined);
  await sleep(7000); // a retry or two: still one line
  const lines = bg.output().split('\n').filter(Boolean);
  const some = supervised();
  t.equal(bg.proc.exitCode, null, 'the supervisor still runs');
  t.equal(lines.length, 1, `one line: ${JSON.stringify(lines.slice(0, 5))}${lines.length > 5 ? ` and ${lines.length - 5} more` : ''}`);
  t.match(lines[0] ?? '', new RegExp(`^runsvdir .*: warning: out of file descriptors \\(ulimit -n ${FD_LIMIT}\\): \\d+ services not supervised \\(s\\d{3}, s\\d{3}, s\\d{3}, \\.\\.\\.\\), trying again every 5 s: process cannot open more files$`), 'it says what is wrong and what happens');
  t.ok(some.length > 10 && some.length < FD_SERVICES, `${some.length} services supervised`);
  // the ones it supervises are under control: their status can still be written
  const first = some[0]!;
  const d = await ourSv(tr, ['-w', '5', 'd', sv(first)]);
  t.equal(d.exitCode, 0, `sv -w 5 d ${first}: ${d.stdout.trim()}`);
  const u = await ourSv(tr, ['-w', '5', 'u', sv(first)]);
  t.equal(u.exitCode, 0, `sv -w 5 u ${first}: ${u.stdout.trim()}`);
  t.equal(bg.output().split('\n').filter(Boolean).length, 1, 'still the one line');

  // descriptors come back: REMOVED of the supervised services leave the scan directory
  // (raising the limit of the running process would need CAP_SYS_RESOURCE for the hard one)
  const removed = some.slice(0, REMOVED);
  mkdirSync(join(tr.root, 'removed'));
  for (const n of removed) renameSync(sv(n), join(tr.root, 'removed', n));
  const rest = names.filter((n) => !removed.includes(n));
  const restSupervised = () => rest.filter((n) => alive(pidIn(join(sv(n), 'supervise')))).length;
  const before = restSupervised();
  const t0 = performance.now();
  await until(() => restSupervised() - before >= REMOVED - RESERVE_SERVICES, RECOVER_BOUND_MS, 'more services supervised').catch(() => undefined);
  const recoverS = (performance.now() - t0) / 1000;
  const gained = restSupervised() - before;
  t.ok(gained >= REMOVED - RESERVE_SERVICES, `${gained} more services supervised ${recoverS.toFixed(1)} s after ${REMOVED} left (bound ${RECOVER_BOUND_MS / 1000} s)`);
  await sleep(1000);
  const procs = processesUnder(tr.sv);
  t.same(rest.filter((n) => (procs.get(sv(n)) ?? []).length > 1), [], 'none runs twice');
  t.same(removed.filter((n) => (processesUnder(join(tr.root, 'removed')).get(join(tr.root, 'removed', n)) ?? []).length > 0), [], 'the removed ones were stopped');
  t.equal(bg.proc.exitCode, null, 'the supervisor still runs');
  t.comment(`figure: ${FD_SERVICES} services under ulimit -n ${FD_LIMIT}: ${some.length} supervised, ${lines.length} line, no crash; ${REMOVED} removed: ${gained} more supervised ${recoverS.toFixed(1)} s later (bound ${RECOVER_BOUND_MS / 1000} s)`);
});
