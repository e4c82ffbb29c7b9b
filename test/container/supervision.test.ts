// container-init's supervision under podman with the shared test image: sv on the
// paths runit users type (/etc/service/NAME, /etc/sv/NAME: supervise/ is a link into
// /run, as Debian does), services added while the container runs, waiting for the
// services before the main command, and services that end the container (max-failures,
// the global knob, a ./finish writing exit-container), the stop in order, and what sv status says during it.
import t from 'tap';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { containerNames, IMAGE, loadImage, logs, podman, podmanSkip, until } from '../lib/container.ts';

const skip = await podmanSkip();
if (skip) {
  t.plan(0, skip);
} else {
  await loadImage();
  const names = containerNames(t);

  /** podman run -d; resolves once the services are up. */
  async function start(name: string, flags: string[] = []): Promise<void> {
    names.push(name);
    await podman(['rm', '-f', '-t', '0', name], { reject: false });
    await podman(['run', '-d', '--name', name, '--network', 'none', '-e', 'RUNIT_TS_KILL_GRACETIME=2000', ...flags, IMAGE]);
    await until(`${name}: services up`, async () => {
      const l = await logs(name);
      return l.includes('hello-log: hello: up') && l.includes('ticker: up');
    });
  }

  /** podman run --rm with a main command: its exit code and output. */
  const runMain = (flags: string[], cmd: string) =>
    podman(['run', '--rm', '--network', 'none', '-e', 'RUNIT_TS_KILL_GRACETIME=2000', ...flags, IMAGE, 'sh', '-c', cmd], { reject: false, timeout: 60_000 });

  const variants: Array<[string, string[]]> = [
    ['root', []],
    ['read-only root', ['--read-only']],
    ['non-root', ['--user', 'app']],
  ];
  for (const [label, flags] of variants) {
    t.test(`sv on /etc/service/NAME and /etc/sv/NAME (${label})`, async (t) => {
      const name = `rtt-svpath-${flags.join('').replace(/[^a-z]/g, '') || 'root'}`;
      await start(name, flags);
      for (const dir of ['/etc/service/hello', '/etc/sv/hello', 'hello']) {
        const r = await podman(['exec', name, 'sv', 'status', dir], { reject: false });
        t.match(r.stdout, /^run: .*hello: \(pid \d+\) \d+s; run: log: \(pid \d+\) \d+s$/m, `sv status ${dir}`);
        t.equal(r.exitCode, 0);
      }
      const log = await podman(['exec', name, 'sv', 'status', '/etc/service/hello/log'], { reject: false });
      t.match(log.stdout, /^run: \/etc\/service\/hello\/log: \(pid \d+\)/, 'sv status on the log service');
      t.equal((await podman(['exec', name, 'readlink', '/etc/sv/hello/supervise'])).stdout.trim(), '/run/runit-ts/supervise/hello', 'supervise is a link into /run');
      t.equal((await podman(['exec', name, 'readlink', '/etc/sv/hello/log/supervise'])).stdout.trim(), '/run/runit-ts/supervise/hello.log');
      // control through the path works too: down and up again
      await podman(['exec', name, 'sv', 'down', '/etc/service/ticker']);
      t.match((await podman(['exec', name, 'sv', 'status', 'ticker'])).stdout, /^down: ticker: /, 'sv down through the path reached the supervisor');
      await podman(['exec', name, 'sv', 'up', '/etc/sv/ticker']);
      t.match((await podman(['exec', name, 'sv', 'status', 'ticker'])).stdout, /^run: ticker: /);
      t.notMatch(await logs(name), /supervising a copy/, 'no copy of the services');
      await podman(['stop', '-t', '10', name]);
      t.equal((await podman(['inspect', name, '--format', '{{.State.ExitCode}}'])).stdout.trim(), '0');
    });
  }

  t.test('a service added to /etc/service while the container runs is supervised', async (t) => {
    const name = 'rtt-added';
    await start(name);
    await podman(['exec', name, 'sh', '-c', [
      'mkdir -p /etc/sv/added',
      `printf '#!/bin/sh\\necho "added: up"\\nexec sleep 100000\\n' > /etc/sv/added/run`,
      'chmod 755 /etc/sv/added/run',
      'ln -s /etc/sv/added /etc/service/added',
    ].join(' && ')]);
    await until('added: up', async () => (await logs(name)).includes('added: up'), 15_000);
    t.match((await podman(['exec', name, 'sv', 'status', '/etc/service/added'])).stdout, /^run: \/etc\/service\/added: \(pid \d+\)/, 'supervised');
    t.equal((await podman(['exec', name, 'container-probe', 'added'], { reject: false })).exitCode, 0, 'the probe sees it');
    await podman(['stop', '-t', '10', name]);
    t.equal((await podman(['inspect', name, '--format', '{{.State.ExitCode}}'])).stdout.trim(), '0');
  });

  t.test('RUNIT_TS_CMD_WAIT_FOR_SERVICES_MAXTIME: the main command starts once the services are ready', async (t) => {
    const show = 'runit-ts status --json slowready';
    const nowait = await runMain(['-e', 'READY_DELAY=2'], show);
    t.equal(nowait.exitCode, 0);
    t.match(nowait.stdout, /"ready":false/, 'without the knob the main command does not wait');
    const wait = await runMain(['-e', 'READY_DELAY=2', '-e', 'RUNIT_TS_CMD_WAIT_FOR_SERVICES_MAXTIME=15000'], show);
    t.equal(wait.exitCode, 0);
    t.match(wait.stdout, /"ready":true/, 'with it, slowready (notification-fd after 2 s) was ready first');
    const stop = await runMain(['-e', 'NEVER_READY=1', '-e', 'RUNIT_TS_CMD_WAIT_FOR_SERVICES_MAXTIME=1500'], 'echo main ran');
    t.equal(stop.exitCode, 124, 'not ready in time, behaviour 2 (default): exit 124');
    t.match(stop.stderr, /container-init: services not ready after 1500 ms: slowready: stopping the container with exit code 124/);
    t.notMatch(stop.stdout, /main ran/, 'the main command did not run');
    const goOn = await runMain(['-e', 'NEVER_READY=1', '-e', 'RUNIT_TS_CMD_WAIT_FOR_SERVICES_MAXTIME=1500', '-e', 'RUNIT_TS_BEHAVIOUR_IF_SERVICES_NOT_READY=1'], 'echo main ran');
    t.equal(goOn.exitCode, 0, 'behaviour 1: goes on');
    t.match(goOn.stderr, /container-init: warning: services not ready after 1500 ms: slowready; starting the main command/);
    t.match(goOn.stdout, /main ran/);
  });

  t.test('a failing service ends the container', async (t) => {
    const own = await runMain([], 'sv up flaky; sleep 60');
    t.equal(own.exitCode, 42, 'flaky/max-failures "3 42": exit 42');
    t.match(own.stderr, /container-init: service flaky failed 3 times in a row: stopping the container with exit code 42/);
    t.equal((own.all!.match(/flaky: failing/g) ?? []).length, 3, 'after the third failure');
    const global = await runMain(['-e', 'RUNIT_TS_SERVICE_MAX_FAILURES=2 9'], 'sv up quitter; sleep 60');
    t.equal(global.exitCode, 9, 'RUNIT_TS_SERVICE_MAX_FAILURES="2 9": exit 9');
    t.match(global.stderr, /service quitter failed 2 times in a row/);
    const finish = await runMain(['-e', 'QUIT_CODE=33'], 'sv up quitter; sleep 60');
    t.equal(finish.exitCode, 33, './finish wrote 33 to $RUNIT_TS_STATE/exit-container');
    t.match(finish.stderr, /container-init: quitter asked for it in exit-container: stopping the container with exit code 33/);
    const onPurpose = await runMain(['-e', 'RUNIT_TS_SERVICE_MAX_FAILURES=1 7'], 'sleep 0.5; sv restart ticker; sleep 1.5; sv down ticker; sleep 1.5; echo done');
    t.equal(onPurpose.exitCode, 0, 'sv restart and sv down stop a service on purpose: no failure');
    t.match(onPurpose.stdout, /done/);
  });

  t.test('the stop: shutdown scripts, then dependents before what they depend on, loggers last', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'runit-ts-order-'));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    const name = 'rtt-order';
    await start(name, ['-v', `${dir}:/out`]);
    await podman(['exec', name, 'sv', 'up', 'dep-b', 'dep-a', 'dep-c']);
    await until('dep-a and dep-c up', async () => {
      const l = await logs(name);
      return l.includes('dep-a: up') && l.includes('dep-c: up');
    });
    await podman(['stop', '-t', '10', name]);
    t.equal((await podman(['inspect', name, '--format', '{{.State.ExitCode}}'])).stdout.trim(), '0');
    const order = readFileSync(join(dir, 'order'), 'utf8').trim().split('\n');
    t.comment(`stop order: ${order.join(' ')}`);
    t.equal(order[0], 'shutdown.d', 'the shutdown scripts first');
    t.ok(order.indexOf('dep-a') < order.indexOf('dep-b'), 'dep-a (its ./finish takes 0.3 s) down before dep-b, which it depends on');
    t.ok(order.indexOf('dep-c') < order.indexOf('dep-a'), 'dep-c, on its own, stopped in parallel (its quick ./finish ended first)');
    const l = await logs(name);
    t.ok(l.indexOf('shutdown: 10-bye') < l.indexOf('hello: finish'), 'services stop after the shutdown scripts');
    t.ok(l.indexOf('hello-log: EOF') > l.indexOf('hello: finish'), 'the logger saw everything, then EOF');
  });

  t.test('during a long stop sv status tells the truth: a service that stopped is down, one holding on to its TERM is stopping', async (t) => {
    const name = 'rtt-stopping';
    await start(name, ['-e', 'RUNIT_TS_KILL_GRACETIME=8000']);
    await podman(['exec', name, 'sv', 'up', 'stubborn']);
    await until('stubborn up', async () => (await logs(name)).includes('stubborn: up'));
    // TERM through podman kill: podman stop would refuse podman exec while it waits
    await podman(['kill', '--signal', 'TERM', name]);
    const seen = await until('sv status during the stop', async () => {
      const r = await podman(['exec', name, 'sv', 'status', 'stubborn', 'ticker'], { reject: false });
      return /got TERM/.test(r.stdout) && /^down: ticker:/m.test(r.stdout) ? r.stdout : undefined;
    }, 7000);
    t.match(seen, /^run: stubborn: \(pid \d+\) \d+s, normally down, want down, got TERM$/m, 'stubborn: TERM sent, still running');
    t.match(seen, /^down: ticker: \d+s, normally up$/m, 'ticker: down');
    t.equal((await podman(['wait', name], { timeout: 30_000 })).stdout.trim(), '0', 'then the container exits 0 (stubborn killed after the grace time)');
  });

  t.test('signals: HUP and USR2 are passed on to the main command, RUNIT_TS_STOP_SIGNALS says which stop', async (t) => {
    const name = 'rtt-signals';
    names.push(name);
    await podman(['rm', '-f', '-t', '0', name], { reject: false });
    const loop = 'trap "echo main: got HUP" HUP; trap "echo main: got USR2" USR2; echo main: up; while :; do sleep 0.2; done';
    await podman(['run', '-d', '--name', name, '--network', 'none', IMAGE, 'sh', '-c', loop]);
    await until('main up', async () => (await logs(name)).includes('main: up'));
    for (const sig of ['HUP', 'USR2']) {
      await podman(['kill', '--signal', sig, name]);
      await until(`main: got ${sig}`, async () => (await logs(name)).includes(`main: got ${sig}`), 10_000);
    }
    t.pass('HUP and USR2 reached the main command');
    t.equal((await podman(['inspect', name, '--format', '{{.State.Running}}'])).stdout.trim(), 'true', 'the container still runs');
    await podman(['stop', '-t', '10', name]);
    t.equal((await podman(['inspect', name, '--format', '{{.State.ExitCode}}'])).stdout.trim(), '143', 'TERM stops it: the main command killed by TERM, 128+15');
    // HUP made a stop signal again
    const hup = 'rtt-signals-hup';
    names.push(hup);
    await podman(['rm', '-f', '-t', '0', hup], { reject: false });
    await podman(['run', '-d', '--name', hup, '--network', 'none', '-e', 'RUNIT_TS_STOP_SIGNALS=TERM INT QUIT HUP', IMAGE, 'sleep', '1000']);
    await until('services', async () => (await logs(hup)).includes('ticker: up'));
    await podman(['kill', '--signal', 'HUP', hup]);
    const code = await podman(['wait', hup], { timeout: 20_000 });
    t.equal(code.stdout.trim(), '129', 'RUNIT_TS_STOP_SIGNALS with HUP: HUP stops the container, the main command killed by HUP: 128+1');
    t.match(await logs(hup), /container-init: SIGHUP received: stopping/);
  });
}
