// Declared dependencies (dependencies.d/, waits-for.d/, restart-with-dependency) under
// our runsvdir, read by our sv and by Debian's: orders, failures, cycles, unknown names,
// and independent services still starting in parallel.
import t from 'tap';
import { rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { BIN, haveBin, normalise } from '../lib/host.ts';
import { lines, scan, sh, until } from '../lib/deps.ts';

if (!haveBin()) t.fail(`${BIN} is missing: run make build`);

t.test('a dependency starts first; the dependent waits, shown as down and wanted up', async (t) => {
  const s = scan(t, 'deps-order-');
  const log = join(s.tr.root, 'order');
  const go = join(s.tr.root, 'go');
  // db is ready only when the test says so (a newline on fd 3)
  s.add('db', { run: sh(`echo db-start >> ${log}\nwhile [ ! -e ${go} ]; do sleep 0.05; done\necho db-ready >> ${log}\necho >&3\nexec sleep 1000`), 'notification-fd': '3\n' });
  s.add('web', { run: sh(`echo web-start >> ${log}\nexec sleep 1000`), 'dependencies.d/db': '' });
  s.add('cache', { run: sh(`echo cache-start >> ${log}\nexec sleep 1000`), 'waits-for.d/db': '' });
  await s.start();
  await until(() => lines(log).includes('db-start'), 10000, 'db to start');
  await until(() => (s.stats('web')?.waitingFor as unknown[] | undefined)?.length, 10000, 'web to wait');
  await new Promise((r) => setTimeout(r, 500));
  t.same(lines(log), ['db-start'], 'neither dependent started while db is not ready');
  for (const kind of ['debian', 'ours'] as const) {
    const r = await s.sv(kind, ['status', 'web']);
    t.equal(normalise(r.stdout), 'down: web: Ns, normally up, want up', `${kind} sv status of a waiting service`);
  }
  const st = JSON.parse((await execa(BIN, ['status', '--json', '-d', s.tr.sv, 'web'])).stdout) as Record<string, unknown>;
  t.same(st.waitingFor, [{ name: 'db', hard: true, why: 'not ready yet' }], 'status --json says what it waits for');
  t.equal(st.state, 'down');
  writeFileSync(go, '');
  await until(() => lines(log).includes('web-start') && lines(log).includes('cache-start'), 10000, 'web and cache to start');
  const l = lines(log);
  t.ok(l.indexOf('db-ready') < l.indexOf('web-start'), 'web after db was ready');
  t.ok(l.indexOf('db-ready') < l.indexOf('cache-start'), 'cache (waits-for) after db was ready');
  for (const kind of ['debian', 'ours'] as const) {
    const r = await s.sv(kind, ['-w', '5', 'check', 'web', 'db']);
    t.equal(r.exitCode, 0, `${kind} sv check passes once all are up: ${r.stdout}`);
  }
  // the event stream has the wait and the readiness
  const ev = await execa(BIN, ['events', '-d', s.tr.sv, '-t', '1', 'web', 'db'], { reject: false });
  const events = ev.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { event: string; service: string; waitingFor?: string[] });
  t.ok(events.some((e) => e.event === 'waiting' && e.service === 'web' && e.waitingFor?.[0] === 'db'), 'a waiting event names db');
  const dbReady = events.findIndex((e) => e.event === 'ready' && e.service === 'db');
  t.ok(dbReady >= 0 && dbReady < events.findIndex((e) => e.event === 'up' && e.service === 'web'), 'db ready before web up');
  await until(() => s.timeline().services.web?.depsMet, 5000, 'the timeline');
  const tl = s.timeline().services;
  t.ok((tl.web!.depsMet as number) >= (tl.db!.ready as number), 'the timeline has web met after db ready');
});

t.test('failures: a hard dependent waits and says so once; a soft one goes on', async (t) => {
  const s = scan(t, 'deps-fail-');
  s.add('mount', { run: sh('echo mounting; exit 3'), type: 'oneshot\n' });
  s.add('app', { run: sh('exec sleep 1000'), 'dependencies.d/mount': '' });
  s.add('opt', { run: sh('exec sleep 1000'), 'waits-for.d/mount': '' });
  await s.start();
  await until(() => s.stats('opt')?.ready, 10000, 'opt (waits-for) to be ready despite the failure');
  await until(() => /app: waiting for mount \(failed: exited 3\)/.test(s.output()), 10000, 'the message');
  await new Promise((r) => setTimeout(r, 1500));
  t.equal(s.stats('app')?.ready, null, 'app never started');
  t.same(s.stats('app')?.waitingFor, [{ name: 'mount', hard: true, why: 'failed: exited 3' }]);
  t.equal(s.stats('mount')?.failed, 'exited 3');
  t.equal(s.output().match(/app: waiting for mount/g)?.length, 1, 'said once');
  t.equal(s.output().match(/one-shot failed: exited 3/g)?.length, 1, 'the one-shot is not retried');
  const r = await s.sv('ours', ['-w', '1', 'start', 'app']);
  t.equal(r.exitCode, 1, 'our sv -w start times out on a service that cannot start');
  t.match(r.stdout, /^timeout: down: app: \d+s, normally up, want up/);
  // the task fixed and run again: app follows
  writeFileSync(join(s.tr.sv, 'mount', 'run'), sh('exit 0'));
  const up = await s.sv('ours', ['-w', '5', 'start', 'mount']);
  t.equal(up.exitCode, 0, `sv -w start reruns the one-shot and waits for its success: ${up.stdout}`);
  await until(() => s.stats('app')?.ready, 10000, 'app to start once mount succeeded');
});

t.test('cycles and unknown names are reported once and block nothing else', async (t) => {
  const s = scan(t, 'deps-cycle-');
  s.add('f', { run: sh('exec sleep 1000'), 'dependencies.d/g': '' });
  s.add('g', { run: sh('exec sleep 1000'), 'dependencies.d/f': '' });
  s.add('lost', { run: sh('exec sleep 1000'), 'dependencies.d/nosuch': '' });
  s.add('soft', { run: sh('exec sleep 1000'), 'waits-for.d/nosuch': '' });
  s.add('free', { run: sh('exec sleep 1000') });
  s.add('off', { run: sh('exec sleep 1000'), down: '' });
  s.add('needsoff', { run: sh('exec sleep 1000'), 'dependencies.d/off': '' });
  await s.start();
  await until(() => ['f', 'g', 'soft', 'free'].every((n) => s.stats(n)?.ready), 10000, 'f, g, soft and free to be ready');
  await new Promise((r) => setTimeout(r, 1000));
  const out = s.output();
  t.equal(out.match(/dependency cycle: /g)?.length, 1, `the cycle is reported once: ${out}`);
  t.match(out, /dependency cycle: (f -> g -> f|g -> f -> g); these start without waiting for each other/);
  t.equal(out.match(/lost: nosuch in dependencies.d is not a service here; waiting for it to appear/g)?.length, 1);
  t.equal(out.match(/soft: nosuch in waits-for.d is not a service here; not waiting for it/g)?.length, 1);
  t.equal(s.stats('lost')?.ready, null, 'lost waits');
  t.equal(out.match(/needsoff: waiting for off \(down and not wanted up\)/g)?.length, 1, 'a dependency wanted down is said once');
  t.equal(s.stats('needsoff')?.ready, null, 'needsoff waits');
  t.equal((await s.sv('debian', ['-w', '5', 'start', 'off'])).exitCode, 0);
  await until(() => s.stats('needsoff')?.ready, 10000, 'needsoff to start once off is up');
  // the missing service appears: lost follows it
  s.add('nosuch', { run: sh('exec sleep 1000') }, join(s.tr.root, 'later'));
  symlinkSync(join(s.tr.root, 'later', 'nosuch'), join(s.tr.sv, 'nosuch'));
  await until(() => s.stats('lost')?.ready, 15000, 'lost to start once nosuch is there');
});

t.test('restart-with-dependency: opted-in dependents restart with their dependency', async (t) => {
  const s = scan(t, 'deps-restart-');
  s.add('base', { run: sh('exec sleep 1000') });
  s.add('tied', { run: sh('exec sleep 1000'), 'dependencies.d/base': '', 'restart-with-dependency': '' });
  s.add('loose', { run: sh('exec sleep 1000'), 'dependencies.d/base': '' });
  await s.start();
  const pid = (n: string) => (s.stats(n)?.ready as { pid: number } | null)?.pid;
  await until(() => pid('tied') && pid('loose'), 10000, 'both up').catch((e: unknown) => {
    t.comment(JSON.stringify([s.stats('base'), s.stats('tied'), s.stats('loose'), s.output()]));
    throw e;
  });
  const [tied0, loose0] = [pid('tied'), pid('loose')];
  const r = await s.sv('debian', ['restart', 'base']);
  t.equal(r.exitCode, 0);
  await until(() => pid('tied') && pid('tied') !== tied0, 10000, 'tied to be restarted');
  t.match(s.output(), /runsv tied: base went down: stopping, to start again once it is ready/);
  t.equal(pid('loose'), loose0, 'loose (no opt-in file) keeps running');
  await until(() => s.timeline().services.tied?.stopAsked, 5000, 'the timeline to have the stop');
});

// a process that ended after a second or more and is wanted up is started again before its
// down state is written (service.ts holdDown); when it is not started again (here: its
// dependency is not ready), the down state is written at the end of that pass all the same
t.test('a dependent stopped with its dependency, and not started again, is shown down', async (t) => {
  const s = scan(t, 'deps-held-');
  const go = join(s.tr.root, 'go');
  writeFileSync(go, '');
  s.add('base', { run: sh(`while [ ! -e ${go} ]; do sleep 0.05; done\necho >&3\nexec sleep 1000`), 'notification-fd': '3' });
  s.add('tied', { run: sh('exec sleep 1000'), 'dependencies.d/base': '', 'restart-with-dependency': '' });
  await s.start();
  const pid = (n: string) => (s.stats(n)?.ready as { pid: number } | null)?.pid;
  await until(() => pid('tied'), 10000, 'tied up');
  await new Promise((r) => setTimeout(r, 1200)); // past the crash throttle: no sleep before a new start
  rmSync(go);
  t.equal((await s.sv('debian', ['restart', 'base'])).exitCode, 0);
  await until(() => (s.stats('tied')?.waitingFor as unknown[] | undefined)?.length, 10000, 'tied to wait for base');
  for (const kind of ['debian', 'ours'] as const) {
    const r = await s.sv(kind, ['status', 'tied']);
    t.equal(normalise(r.stdout), 'down: tied: Ns, normally up, want up', `${kind} sv status of the stopped dependent`);
  }
  writeFileSync(go, '');
  await until(() => pid('tied'), 10000, 'tied up again once base is ready');
});

t.test('ten independent services are all ready within 2 s of the first', async (t) => {
  const s = scan(t, 'deps-parallel-');
  for (let i = 0; i < 10; i++) s.add(`p${i}`, { run: sh('exec sleep 1000') });
  // and a chain beside them, which must not hold them back
  s.add('slow', { run: sh('sleep 3; echo >&3; exec sleep 1000'), 'notification-fd': '3' });
  s.add('after', { run: sh('exec sleep 1000'), 'dependencies.d/slow': '' });
  await s.start();
  await until(() => [...Array(10).keys()].every((i) => s.stats(`p${i}`)?.ready), 15000, 'all ten ready');
  const ready = [...Array(10).keys()].map((i) => s.timeline().services[`p${i}`]?.ready as number);
  const spread = Math.max(...ready) - Math.min(...ready);
  t.ok(spread < 2, `ready within ${spread.toFixed(3)} s of each other`);
  await until(() => s.stats('after')?.ready, 15000, 'after, once slow is ready');
});
