// Readiness (notification-fd, NOTIFY_SOCKET with systemd-notify, ./check polled with
// backoff, timeout-up), one-shots, and what our sv and Debian's sv make of them; then
// `runit-ts analyze` on what the supervisor recorded.
import t from 'tap';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { BIN, haveBin, normalise } from '../lib/host.ts';
import { lines, scan, sh, until } from '../lib/deps.ts';

if (!haveBin()) t.fail(`${BIN} is missing: run make build`);

const json = async (dir: string, name: string) => JSON.parse((await execa(BIN, ['status', '--json', '-d', dir, name])).stdout) as Record<string, unknown>;

t.test('notification-fd: not ready until the newline; both sv wait', async (t) => {
  const s = scan(t, 'ready-fd-');
  const go = join(s.tr.root, 'go');
  // the check script is what lets runit's own sv see the same readiness
  s.add('nfd', {
    run: sh(`while [ ! -e ${go} ]; do sleep 0.05; done\necho >&4\nexec sleep 1000`),
    'notification-fd': '4\n',
    check: sh(`exec grep -q '"ready":{' supervise/stats.json`),
  });
  s.add('plain', { run: sh('exec sleep 1000') });
  await s.start();
  await until(() => s.stats('nfd')?.restarts === 0, 10000, 'nfd to be started');
  for (const kind of ['ours', 'debian'] as const) {
    const r = await s.sv(kind, ['-w', '1', 'check', 'nfd']);
    t.equal(r.exitCode, 1, `${kind} sv check fails while not ready`);
    t.match(r.stdout, /^timeout: run: nfd: \(pid \d+\)/);
  }
  t.equal((await json(s.tr.sv, 'nfd')).ready, false, 'status --json: not ready');
  t.equal((await json(s.tr.sv, 'nfd')).readiness, 'notification-fd');
  const check = Promise.all([s.sv('ours', ['-w', '10', 'check', 'nfd']), s.sv('debian', ['-w', '10', 'check', 'nfd'])]);
  await new Promise((r) => setTimeout(r, 300));
  writeFileSync(go, '');
  for (const r of await check) t.equal(r.exitCode, 0, `sv check passes once ready: ${r.stdout}`);
  const rec = s.stats('nfd')?.ready as Record<string, unknown>;
  t.equal(rec.how, 'notification-fd');
  t.ok((rec.afterSpawn as number) >= 0.3, `ready ${String(rec.afterSpawn)} s after spawn`);
  t.equal(readFileSync(join(s.tr.sv, 'nfd', 'supervise', 'status')).length, 20, 'supervise/status stays 20 bytes');
  const st = await json(s.tr.sv, 'nfd');
  t.equal(st.ready, true);
  t.type(st.readyAt, 'string');
  // a restart is not ready again until it says so
  const r = await s.sv('ours', ['-w', '5', 'restart', 'nfd']);
  t.equal(r.exitCode, 0, r.stdout);
  t.equal((await s.sv('ours', ['-w', '5', 'start', 'plain'])).exitCode, 0, 'a plain service is ready when running');
});

t.test('NOTIFY_SOCKET: READY=1 from systemd-notify', async (t) => {
  const s = scan(t, 'ready-notify-');
  const log = join(s.tr.root, 'env');
  s.add('nsock', { run: sh(`echo "$NOTIFY_SOCKET" > ${log}\nsleep 0.5\nsystemd-notify --ready\nexec sleep 1000`), 'notify-socket': '' });
  s.add('plain', { run: sh(`echo "[\${NOTIFY_SOCKET-unset}]" > ${log}.plain\nexec sleep 1000`) });
  await s.start();
  const r = await s.sv('ours', ['-w', '10', 'start', 'nsock']);
  t.equal(r.exitCode, 0, r.stdout);
  t.equal(lines(log)[0], join(s.tr.sv, 'nsock', 'supervise', 'notify'));
  t.equal(s.stats('nsock')?.readiness, 'notify-socket');
  const rec = s.stats('nsock')?.ready as { how: string; afterSpawn: number };
  t.equal(rec.how, 'notify-socket');
  t.ok(rec.afterSpawn >= 0.45, `ready after the notification (${rec.afterSpawn} s)`);
  await until(() => lines(`${log}.plain`).length, 5000, 'plain to run');
  t.same(lines(`${log}.plain`), ['[unset]'], 'a service without the file gets no NOTIFY_SOCKET');
  t.notOk(existsSync(join(s.tr.sv, 'nsock', 'supervise', 'notify')), 'the socket goes once ready');
});

t.test('./check is polled with backoff only while not ready', async (t) => {
  const s = scan(t, 'ready-check-');
  const count = join(s.tr.root, 'count');
  const go = join(s.tr.root, 'go');
  s.add('chk', { run: sh('exec sleep 1000'), check: sh(`echo x >> ${count}\ntest -e ${go}`) });
  await s.start();
  await new Promise((r) => setTimeout(r, 2500));
  const before = lines(count).length;
  // 20, 40, 80, ... 1000 ms: about 8 runs in 2.5 s, not one every few ms
  t.ok(before >= 3 && before <= 12, `checked ${before} times in 2.5 s`);
  t.equal(s.stats('chk')?.ready, null);
  writeFileSync(go, '');
  await until(() => s.stats('chk')?.ready, 5000, 'readiness from ./check without any sv');
  const after = lines(count).length;
  await new Promise((r) => setTimeout(r, 1500));
  t.equal(lines(count).length, after, 'not run again once ready');
  t.equal((s.stats('chk')?.ready as { how: string }).how, 'check');
});

t.test('a ./check that cannot run: not ready, said once per start, as the library client says it', async (t) => {
  const s = scan(t, 'ready-check-bad-');
  // no #! line: execve fails with ENOEXEC; never run through /bin/sh
  s.add('bad', { run: sh('exec sleep 1000'), check: 'exit 0\n' });
  await s.start();
  await new Promise((r) => setTimeout(r, 3000));
  t.equal(s.stats('bad')?.ready, null, 'not ready after 3 s of polling');
  const said = s.output().split('\n').filter((l) => l.includes('unable to run ./check'));
  t.equal(said.length, 1, `said once: ${JSON.stringify(said)}`);
  t.match(said[0] ?? '', /^runsv bad: warning: unable to run \.\/check: exec format error/);
});

t.test('timeout-up: not ready in time is a failure; the process is stopped and started again', async (t) => {
  const s = scan(t, 'ready-timeout-');
  const starts = join(s.tr.root, 'starts');
  s.add('mute', { run: sh(`echo start >> ${starts}\nexec sleep 1000`), 'notification-fd': '3', 'timeout-up': '400\n' });
  s.add('hard', { run: sh('exec sleep 1000'), 'dependencies.d/mute': '' });
  s.add('soft', { run: sh('exec sleep 1000'), 'waits-for.d/mute': '' });
  await s.start();
  await until(() => s.stats('mute')?.failed, 5000, 'the timeout');
  t.equal(s.stats('mute')?.failed, 'not ready within 400 ms');
  t.match(s.output(), /runsv mute: warning: not ready within 400 ms \(timeout-up\): stopping it/);
  await until(() => lines(starts).length >= 2, 5000, 'a second start');
  await until(() => s.stats('soft')?.ready, 5000, 'soft goes on after the failure');
  t.equal(s.stats('hard')?.ready, null, 'hard waits');
  await until(() => /hard: waiting for mute \(failed: not ready within 400 ms\)/.test(s.output()), 5000, 'hard says why');
});

t.test('one-shots: a task dependents wait for; runit\'s sv reads the directory too', async (t) => {
  const s = scan(t, 'oneshot-');
  const log = join(s.tr.root, 'log');
  s.add('setup', { run: sh(`echo task >> ${log}\nsleep 0.3\necho done >> ${log}`), type: 'oneshot\n' });
  s.add('daemon', { run: sh(`echo daemon >> ${log}\nexec sleep 1000`), 'dependencies.d/setup': '' });
  await s.start();
  await until(() => lines(log).includes('daemon'), 10000, 'the daemon');
  t.same(lines(log), ['task', 'done', 'daemon'], 'the daemon starts after the task has ended');
  await new Promise((r) => setTimeout(r, 1200));
  t.same(lines(log), ['task', 'done', 'daemon'], 'the task is not started again');
  const deb = await s.sv('debian', ['status', 'setup']);
  t.equal(normalise(deb.stdout), 'down: setup: Ns, normally up', 'runit\'s sv: down (a task ran), not wanted up again');
  for (const kind of ['debian', 'ours'] as const) t.equal((await s.sv(kind, ['-w', '2', 'check', 'setup'])).exitCode, 0, `${kind} sv check passes`);
  const st = await json(s.tr.sv, 'setup');
  t.equal(st.type, 'oneshot');
  t.equal(st.ready, true);
  t.equal(st.failed, null);
  // sv start runs the task again, and -w waits for its end
  const r = await s.sv('ours', ['-w', '5', 'start', 'setup']);
  t.equal(r.exitCode, 0, r.stdout);
  t.same(lines(log).filter((l) => l === 'done'), ['done', 'done'], 'ran twice');
});

t.test('analyze: time, blame, critical-chain, plot, --json on a supervised directory', async (t) => {
  const s = scan(t, 'analyze-');
  s.add('net', { run: sh('sleep 0.4\necho >&3\nexec sleep 1000'), 'notification-fd': '3' });
  s.add('mnt', { run: sh('sleep 0.2'), type: 'oneshot' });
  s.add('app', { run: sh('sleep 0.3\necho >&3\nexec sleep 1000'), 'notification-fd': '3', 'dependencies.d/net': '', 'dependencies.d/mnt': '' });
  await s.start();
  await until(() => s.timeline().services.app?.ready, 10000, 'app ready in the timeline');
  const az = (args: string[]) => execa(BIN, ['analyze', '-d', s.tr.sv, '--boot', join(s.tr.root, 'none'), ...args], { reject: false });
  let r = await az(['time']);
  t.equal(r.exitCode, 0, r.stderr);
  t.match(r.stdout, /All 3 services up at \d+\.\d{3}s \(last: app\)/);
  r = await az(['blame']);
  const rows = r.stdout.split('\n');
  const net = /^ *(\d+\.\d{3})s net \(notification-fd\)$/.exec(rows[0] ?? '');
  t.ok(net && Number(net[1]) >= 0.4, `net took longest: ${r.stdout}`);
  t.match(r.stdout, /app \(notification-fd, waited 0\.\d{3}s for dependencies\)/);
  r = await az(['critical-chain']);
  const chain = /^app @\d+\.\d{3}s \+(\d+\.\d{3})s\n└─net @\d+\.\d{3}s \+(\d+\.\d{3})s$/.exec(r.stdout);
  t.ok(chain && Number(chain[1]) >= 0.3 && Number(chain[2]) >= 0.4, `app waited for net last: ${r.stdout}`);
  r = await az(['critical-chain', '--json']);
  t.equal((JSON.parse(r.stdout) as { after: { name: string } }).after.name, 'net');
  r = await az(['plot']);
  t.match(r.stdout, /^<\?xml/);
  for (const n of ['net', 'mnt', 'app']) t.match(r.stdout, new RegExp(`>${n}</text>`));
  t.match(r.stdout, /app: ready at/);
  r = await az(['time', '--json']);
  t.equal((JSON.parse(r.stdout) as { last: string }).last, 'app');
  t.equal((await az(['sideways'])).exitCode, 100);
  t.equal((await execa(BIN, ['analyze', '-d', s.tr.root], { reject: false })).exitCode, 1, 'no timeline there');
});
