// Scenario tests of our supervisor (runsvdir running the runsv state machine for every
// service) and sv, on the host, in temporary directories.
import t, { type Test } from 'tap';
import { chmodSync, readdirSync, readFileSync, statSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { alive, BIN, enable, haveBin, readIf, spawnBg, sv, tree, until, type Bg, type Tree } from '../lib/host.ts';
import { pastStatusSecond } from '../lib/runit.ts';
import { readStatusFile } from '../../src/lib/supervise.ts';

if (!haveBin()) t.fail(`${BIN} is missing: run make build`);

const run = (body: string) => `#!/bin/sh\n${body}\n`;

async function withSupervisor(t: Test, setup: (tr: Tree) => void, fn: (tr: Tree, bg: Bg) => Promise<void>, log = true) {
  const tr = tree();
  setup(tr);
  // with a log argument, runsvdir's (and the services') stderr goes to ps, as runit's
  const bg = spawnBg(tr.our('runsvdir'), ['-P', tr.sv, ...(log ? ['log: ..........'] : [])]);
  t.teardown(async () => {
    // TERM stops the services too; KILL if that did not end it
    bg.proc.kill('SIGTERM');
    const timer = setTimeout(() => bg.proc.kill('SIGKILL'), 8000);
    await bg.proc;
    clearTimeout(timer);
    tr.cleanup();
  });
  await fn(tr, bg);
}

function pidOf(tr: Tree, name: string, log = false): number {
  return Number(readIf(join(tr.sv, name, log ? 'log/supervise/pid' : 'supervise/pid')) ?? 0);
}

t.test('services start in parallel and supervise/ is laid out as runit does', async (t) => {
  await withSupervisor(
    t,
    (tr) => {
      for (let i = 0; i < 5; i++) enable(tr, tr.service(`s${i}`, { run: run(`date +%s.%N > started; exec sleep 100`) }), `s${i}`);
      enable(tr, tr.service('.hidden', { run: run('exec sleep 100') }), '.hidden');
    },
    async (tr) => {
      await until(() => [0, 1, 2, 3, 4].every((i) => pidOf(tr, `s${i}`) > 0), 5000, 'all five services running');
      // the pid is written at the spawn: each ./run's date may not have written its line yet
      // (the shell creates the file first), and an empty file would read as 0
      const started = (i: number) => readIf(join(tr.sv, `s${i}`, 'started')) ?? '';
      await until(() => [0, 1, 2, 3, 4].every((i) => started(i).endsWith('\n')), 5000, 'every ./run wrote its start time');
      const starts = [0, 1, 2, 3, 4].map((i) => Number(started(i)));
      t.ok(Math.max(...starts) - Math.min(...starts) < 1, 'all five started within a second of each other');
      const sup = join(tr.sv, 's0', 'supervise');
      t.equal(statSync(sup).mode & 0o777, 0o700, 'supervise is 0700');
      t.ok(statSync(join(sup, 'control')).isFIFO(), 'control is a fifo');
      t.ok(statSync(join(sup, 'ok')).isFIFO(), 'ok is a fifo');
      t.equal(statSync(join(sup, 'control')).mode & 0o777, 0o600);
      t.equal(readFileSync(join(sup, 'stat'), 'utf8'), 'run\n');
      const st = readFileSync(join(sup, 'status'));
      t.equal(st.length, 20);
      t.equal(st.readUInt32LE(12), pidOf(tr, 's0'), 'status carries the pid');
      t.equal(String.fromCharCode(st[17]!), 'u');
      t.equal(st[19], 1, 'state run');
      t.ok(alive(pidOf(tr, 's0')));
      t.notOk(readIf(join(tr.sv, '.hidden', 'supervise', 'pid')), 'dot names are skipped');
    },
  );
});

t.test('sv status/down/up/restart and exit codes', async (t) => {
  await withSupervisor(
    t,
    (tr) => {
      enable(tr, tr.service('a', { run: run('exec sleep 100') }), 'a');
      enable(tr, tr.service('b', { run: run('exec sleep 100'), 'log/run': run('exec cat > ../out.log') }), 'b');
    },
    async (tr) => {
      await until(() => pidOf(tr, 'a') && pidOf(tr, 'b') && pidOf(tr, 'b', true), 5000, 'a, b and b/log running');
      let r = await sv(tr.our('sv'), tr, ['status', 'a', 'b', 'nonexistent']);
      t.match(r.stdout, /^run: a: \(pid \d+\) \d+s\nrun: b: \(pid \d+\) \d+s; run: log: \(pid \d+\) \d+s\nfail: nonexistent: unable to change to service directory: file does not exist\n$/);
      t.equal(r.exitCode, 1, 'one failure');
      const old = pidOf(tr, 'a');
      r = await sv(tr.our('sv'), tr, ['-w', '5', 'down', 'a']);
      t.match(r.stdout, /^ok: down: a: \d+s, normally up\n$/);
      t.equal(r.exitCode, 0);
      t.notOk(alive(old), 'the process is gone');
      t.equal(readFileSync(join(tr.sv, 'a', 'supervise', 'pid'), 'utf8'), '', 'empty pid file when down');
      r = await sv(tr.our('sv'), tr, ['status', 'a']);
      t.match(r.stdout, /^down: a: \d+s, normally up\n$/);
      r = await sv(tr.our('sv'), tr, ['-w', '5', 'up', 'a']);
      t.match(r.stdout, /^ok: run: a: \(pid \d+\) \d+s\n$/);
      const p1 = pidOf(tr, 'a');
      // sv's race: in the second of the last start, restart can be answered from the old status
      await pastStatusSecond([join(tr.sv, 'a', 'supervise')]);
      r = await sv(tr.our('sv'), tr, ['-w', '5', 'restart', 'a']);
      t.match(r.stdout, /^ok: run: a: \(pid \d+\) \d+s\n$/);
      t.not(pidOf(tr, 'a'), p1, 'restart gave a new process');
      r = await sv(tr.our('sv'), tr, ['bogus', 'a']);
      t.equal(r.exitCode, 100, 'usage exits 100');
      t.match(r.stderr, /^usage: sv \[-v\] \[-w sec\] command service \.\.\.$/m);
    },
  );
});

t.test('crash: restarted, throttled to once a second, ./finish gets runit arguments', async (t) => {
  await withSupervisor(
    t,
    (tr) => {
      enable(tr, tr.service('crash', { run: run('echo x >> runs; exit 3'), finish: run('echo "$1 $2" >> finish.log') }), 'crash');
      enable(tr, tr.service('killed', { run: run('exec sleep 100'), finish: run('echo "$1 $2" >> finish.log') }), 'killed');
    },
    async (tr) => {
      await until(() => (readIf(join(tr.sv, 'crash', 'runs')) ?? '').length >= 6, 6000, 'three runs of the crashing service');
      const runs = (readIf(join(tr.sv, 'crash', 'runs')) ?? '').length / 2;
      const t0 = Date.now();
      await until(() => (readIf(join(tr.sv, 'crash', 'runs')) ?? '').length / 2 >= runs + 2, 4000, 'two more runs');
      t.ok(Date.now() - t0 >= 1500, 'crash loop throttled (about one start a second)');
      t.match(readIf(join(tr.sv, 'crash', 'finish.log')), /^3 0\n/, 'finish: exit code, 0');
      const pid = await until(() => pidOf(tr, 'killed'), 3000, 'killed running');
      process.kill(pid, 'SIGKILL');
      await until(() => readIf(join(tr.sv, 'killed', 'finish.log')), 3000, 'finish after kill');
      t.equal(readIf(join(tr.sv, 'killed', 'finish.log')), '-1 9\n', 'finish: -1, signal number');
      // running again: ./run's new pid, not ./finish's (supervise/pid holds it while ./finish runs)
      const again = await until(() => readIf(join(tr.sv, 'killed', 'supervise', 'stat')) === 'run\n' && pidOf(tr, 'killed') !== pid && pidOf(tr, 'killed'), 3000, 'killed restarted');
      t.ok(alive(again));
    },
  );
});

t.test('a crash loop does not delay control of other services', async (t) => {
  const LOOPS = 5;
  await withSupervisor(
    t,
    (tr) => {
      // five loops: a supervisor that slept through each one's 1 s throttle would hold
      // calm's restart for seconds, far beyond the bound below, which leaves room for a
      // loaded machine
      for (let i = 0; i < LOOPS; i++) enable(tr, tr.service(`loop${i}`, { run: run('exit 1') }), `loop${i}`);
      enable(tr, tr.service('calm', { run: run('exec sleep 100') }), 'calm');
    },
    async (tr) => {
      await until(() => pidOf(tr, 'calm'), 5000, 'calm running');
      const t0 = Date.now();
      const r = await sv(tr.our('sv'), tr, ['-w', '8', 'restart', 'calm']);
      t.equal(r.exitCode, 0);
      t.ok(Date.now() - t0 < LOOPS * 700, `restart of calm took ${Date.now() - t0} ms`);
    },
  );
});

t.test('new services are picked up at once, removed ones stopped', async (t) => {
  await withSupervisor(
    t,
    (tr) => {
      enable(tr, tr.service('first', { run: run('exec sleep 100') }), 'first');
    },
    async (tr) => {
      const first = await until(() => pidOf(tr, 'first'), 5000, 'first running');
      const src = tr.service('late', { run: run('exec sleep 100') });
      const t0 = Date.now();
      enable(tr, src, 'late');
      await until(() => pidOf(tr, 'late'), 3000, 'late running');
      t.ok(Date.now() - t0 < 900, `new service started after ${Date.now() - t0} ms (runit: up to 5 s)`);
      unlinkSync(join(tr.sv, 'first'));
      await until(() => !alive(first), 5000, 'removed service stopped');
      t.pass('removed service stopped');
    },
  );
});

t.test('down file, once, and bad services do not stop the others', async (t) => {
  await withSupervisor(
    t,
    (tr) => {
      enable(tr, tr.service('lazy', { run: run('exec sleep 100'), down: '' }), 'lazy');
      enable(tr, tr.service('noexec', { run: run('exec sleep 100') }), 'noexec');
      enable(tr, tr.service('norun', { finish: run('true') }), 'norun');
      enable(tr, tr.service('good', { run: run('exec sleep 100') }), 'good');
      chmodSync(join(tr.root, 'sv-src', 'noexec', 'run'), 0o644);
    },
    async (tr, bg) => {
      await until(() => pidOf(tr, 'good'), 5000, 'good running');
      let r = await sv(tr.our('sv'), tr, ['status', 'lazy']);
      t.match(r.stdout, /^down: lazy: \d+s\n$/, 'normally down: no "normally up" note');
      // sv's check compares whole seconds (runit's race): let the status age past a second
      await new Promise((r) => setTimeout(r, 1100));
      r = await sv(tr.our('sv'), tr, ['-w', '5', 'once', 'lazy']);
      t.match(r.stdout, /^ok: run: lazy: \(pid \d+\) \d+s, normally down, want down\n$/);
      const p = pidOf(tr, 'lazy');
      process.kill(p, 'SIGTERM');
      await until(() => !alive(p), 3000, 'once service ended');
      await new Promise((r) => setTimeout(r, 1200));
      t.equal(pidOf(tr, 'lazy'), 0, 'once: not restarted');
      t.match(bg.output(), /runsv noexec: fatal: unable to start \.\/run: access denied/, 'non-executable run reported');
      t.match(bg.output(), /runsv norun: fatal: unable to start \.\/run: file does not exist/, 'missing run reported');
      t.ok(alive(pidOf(tr, 'good')), 'good still supervised');
    },
    false,
  );
});

t.test('SIGTERM stops every service (finish runs), then runsvdir exits 0', async (t) => {
  const tr = tree();
  t.teardown(() => tr.cleanup());
  for (let i = 0; i < 3; i++) enable(tr, tr.service(`s${i}`, { run: run('exec sleep 100'), finish: run('echo done > finished') }), `s${i}`);
  enable(tr, tr.service('stubborn', { run: run("trap '' TERM; while :; do sleep 0.1; done") }), 'stubborn');
  const { proc } = spawnBg(tr.our('runsvdir'), ['-P', tr.sv], { env: { RUNSVDIR_STOP_TIMEOUT: '2' } });
  await until(() => [0, 1, 2].every((i) => pidOf(tr, `s${i}`)) && pidOf(tr, 'stubborn'), 5000, 'running');
  const pids = [0, 1, 2].map((i) => pidOf(tr, `s${i}`));
  const stubborn = pidOf(tr, 'stubborn');
  const t0 = Date.now();
  proc.kill('SIGTERM');
  const res = await proc;
  t.equal(res.exitCode, 0);
  t.ok(Date.now() - t0 < 4500, 'bounded by the stop timeout');
  for (const [i, p] of pids.entries()) {
    t.notOk(alive(p), `s${i} stopped`);
    t.equal(readIf(join(tr.sv, `s${i}`, 'finished')), 'done\n', `s${i} finish ran`);
  }
  t.notOk(alive(stubborn), 'a service ignoring TERM is killed after the timeout');
});

t.test('supervisor killed: the next one stops the orphans before starting again', async (t) => {
  const tr = tree();
  t.teardown(() => tr.cleanup());
  enable(tr, tr.service('orphan', { run: run('echo $$ >> pids; exec sleep 100') }), 'orphan');
  const first = spawnBg(tr.our('runsvdir'), ['-P', tr.sv]).proc;
  const old = await until(() => pidOf(tr, 'orphan'), 5000, 'orphan running');
  // and its status written: supervise/pid comes first, then stat, then status (what the next
  // supervisor matches it by); a kill between them leaves no record of it, as with runsv
  await until(() => {
    const r = readStatusFile(join(tr.sv, 'orphan'));
    return r.kind === 'ok' && r.status.pid === old;
  }, 5000, 'its status written');
  first.kill('SIGKILL');
  await first;
  t.ok(alive(old), 'with -P the service outlives its supervisor');
  const second = spawnBg(tr.our('runsvdir'), ['-P', tr.sv]).proc;
  t.teardown(async () => {
    second.kill('SIGKILL');
    await second;
  });
  const fresh = await until(() => pidOf(tr, 'orphan') !== old && pidOf(tr, 'orphan'), 8000, 'a new orphan process');
  t.notOk(alive(old), 'the old process was stopped');
  t.ok(alive(fresh), 'the new one runs');
  // its pid is in supervise/pid from the spawn on, in ./pids once ./run has written it
  const pids = () => (readIf(join(tr.sv, 'orphan', 'pids')) ?? '').trim().split('\n').map(Number);
  await until(() => pids().includes(fresh), 5000, 'the new process wrote its pid').catch(() => undefined);
  const all = pids();
  t.equal(all.filter(alive).length, 1, 'exactly one instance alive');
  process.kill(fresh, 'SIGKILL');
});

t.test('log/run "exec svlogd ..." runs inside the supervisor, as a log service', async (t) => {
  const tr = tree();
  t.teardown(() => tr.cleanup());
  enable(tr, tr.service('talk', {
    run: run('i=0; while [ $i -lt 50 ]; do echo "line $i"; i=$((i+1)); done; exec sleep 100'),
    'log/run': run('exec svlogd -tt ./main'),
    'log/main/config': 's2000\nn2\n',
  }), 'talk');
  enable(tr, tr.service('other', { run: run('echo hello; exec sleep 100'), 'log/run': run('exec 2>&1\nexec cat > ../cat.log') }), 'other');
  const bg = spawnBg(tr.our('runsvdir'), ['-P', tr.sv], { env: { PATH: `${tr.bin}:/usr/bin:/bin` } });
  t.teardown(async () => {
    bg.proc.kill('SIGTERM');
    await bg.proc;
  });
  const sup = bg.proc.pid!;
  const logPid = await until(() => pidOf(tr, 'talk', true), 5000, 'the logger running');
  t.equal(logPid, sup, 'the log service has the supervisor pid: no process of its own');
  t.not(pidOf(tr, 'other', true), sup, 'any other log/run is a process');
  const main = join(tr.sv, 'talk', 'log', 'main');
  const count = () => {
    let n = 0;
    for (const f of require_readdir(main)) if (f === 'current' || f.startsWith('@')) n += (readIf(join(main, f)) ?? '').split('\n').filter((l) => / line \d+$/.test(l)).length;
    return n;
  };
  await until(() => count() === 50, 5000, 'fifty lines logged');
  t.pass('all fifty lines logged, across rotations');
  t.match(readIf(join(main, 'current')) ?? '', /^\d{4}-\d\d-\d\d_\d\d:\d\d:\d\d\.\d{5} line \d+$/m, '-tt stamps');
  let r = await sv(tr.our('sv'), tr, ['status', 'talk']);
  t.match(r.stdout, new RegExp(`^run: talk: \\(pid \\d+\\) \\d+s; run: log: \\(pid ${sup}\\) \\d+s\\n$`));
  await new Promise((r) => setTimeout(r, 1100));
  r = await sv(tr.our('sv'), tr, ['-w', '5', 'restart', 'talk/log']);
  t.equal(r.exitCode, 0, 'sv restart on the in-process logger');
  t.ok(alive(sup), 'the supervisor was not signalled');
  r = await sv(tr.our('sv'), tr, ['-w', '5', 'down', 'talk/log']);
  t.match(r.stdout, /^ok: down: talk\/log: \d+s, normally up\n$/);
  r = await sv(tr.our('sv'), tr, ['-w', '5', 'up', 'talk/log']);
  t.match(r.stdout, /^ok: run: talk\/log: \(pid \d+\) \d+s\n$/);
  t.ok(alive(sup), 'still supervising');
});

function require_readdir(d: string): string[] {
  try {
    return readdirSync(d);
  } catch {
    return [];
  }
}
