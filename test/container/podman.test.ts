// The amd64 test image under podman (runc, cgroupfs, no network): container-init as
// PID 1, services, podman logs, podman stop within the grace time, exit codes, the main
// command, start-up scripts, non-root and read-only variants, and podman kube play of
// the documented Pod manifest.
import t from 'tap';
import { readFileSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { containerNames, IMAGE, loadImage, logs, podman, podmanSkip, repo, until } from '../lib/container.ts';

const skip = await podmanSkip();
if (skip) {
  t.plan(0, skip);
} else {
  await loadImage();
  const names = containerNames(t);

  /** podman run -d; resolves once the services are up (their lines are in podman logs). */
  async function start(name: string, flags: string[] = [], cmd: string[] = []): Promise<void> {
    names.push(name);
    await podman(['rm', '-f', '-t', '0', name], { reject: false });
    await podman(['run', '-d', '--name', name, '--network', 'none', ...flags, IMAGE, ...cmd]);
    await until(`${name}: services up`, async () => {
      const l = await logs(name);
      return l.includes('hello-log: hello: up') && l.includes('ticker: up');
    });
  }

  async function stopTimed(name: string): Promise<{ ms: number; code: number }> {
    const t0 = performance.now();
    await podman(['stop', '-t', '10', name]);
    const ms = performance.now() - t0;
    const code = Number((await podman(['inspect', name, '--format', '{{.State.ExitCode}}'])).stdout.trim());
    return { ms, code };
  }

  const probe = async (name: string) => (await podman(['exec', name, 'container-probe'], { reject: false }));

  t.test('services come up under container-init as PID 1, logs reach podman logs, probe works', async (t) => {
    const name = 'rtt-basic';
    await start(name, ['-e', 'RUNIT_TS_KILL_GRACETIME=3000']);
    const l = await logs(name);
    t.match(l, /startup: 10-greet uid=0 GREETING=hello from the spec/, 'start-up script with the image env');
    t.ok(l.indexOf('startup: 10-greet') < l.indexOf('startup: 20-second'), 'start-up scripts in name order');
    t.ok(l.indexOf('startup: 20-second') < l.indexOf('ticker: up'), 'start-up scripts before services');
    t.match(l, /hello-log: hello: up GREETING=hello from the spec SVDIR=\/run\/runit-ts\/service/, 'service output through its logger, env reaches it');
    const pid1 = (await podman(['exec', name, 'cat', '/proc/1/cmdline'])).stdout;
    t.match(pid1, /container-init/, 'container-init is PID 1');
    t.match((await podman(['exec', name, 'sv', 'status', 'hello'])).stdout, /^run: hello: \(pid \d+\)/, 'sv works in podman exec');
    t.equal((await probe(name)).exitCode, 0, 'probe: healthy');
    await podman(['exec', name, 'touch', '/tmp/unhealthy']);
    const bad = await probe(name);
    t.equal(bad.exitCode, 1, 'probe: a failing ./check makes it fail');
    t.match(bad.stderr, /ticker: \.\/check exited 1/);
    await podman(['exec', name, 'rm', '/tmp/unhealthy']);
    await podman(['exec', name, 'sv', 'down', 'ticker']);
    t.equal((await probe(name)).exitCode, 0, 'probe: a service wanted down is not a failure');
    await podman(['exec', name, 'sv', 'up', 'ticker']);
    const { ms, code } = await stopTimed(name);
    t.comment(`podman stop (services stop on TERM): ${ms.toFixed(0)} ms`);
    t.equal(code, 0, 'exit code 0 after an orderly stop');
    t.ok(ms < 3000, `stopped before the grace time (${ms.toFixed(0)} ms)`);
    const after = await logs(name);
    t.match(after, /container-init: SIGTERM received: stopping/, 'the stop is logged');
    t.match(after, /hello-log: hello: finish -1 15/, './finish ran (run killed by signal 15)');
    t.ok(after.indexOf('hello-log: EOF') > after.indexOf('hello: finish'), 'the logger saw EOF after ./finish');
  });

  t.test('a service ignoring TERM is killed after RUNIT_TS_KILL_GRACETIME', async (t) => {
    const name = 'rtt-stubborn';
    await start(name, ['-e', 'RUNIT_TS_KILL_GRACETIME=2000']);
    await podman(['exec', name, 'sv', 'up', 'stubborn']);
    await until('stubborn up', async () => (await logs(name)).includes('stubborn: up'));
    const { ms, code } = await stopTimed(name);
    t.comment(`podman stop with a TERM-ignoring service, grace 2000 ms: ${ms.toFixed(0)} ms`);
    t.equal(code, 0, 'exit code 0');
    t.ok(ms >= 1900, `waited for the grace time (${ms.toFixed(0)} ms)`);
    t.ok(ms < 7000, `and not for podman's 10 s timeout (${ms.toFixed(0)} ms)`);
    const l = await logs(name);
    t.match(l, /hello-log: hello: finish/, 'the other services stopped in parallel');
  });

  t.test('the main command: its exit code becomes the container exit code', async (t) => {
    const r = await podman(['run', '--rm', '--network', 'none', IMAGE, 'sh', '-c', 'sleep 1; sv status hello; exit 7'], { reject: false });
    t.equal(r.exitCode, 7, 'exit 7');
    t.match(r.stdout, /run: hello/, 'services run beside the main command');
    t.match(r.stderr, /main command exited with code 7: stopping services/);
    const k = await podman(['run', '--rm', '--network', 'none', IMAGE, 'sh', '-c', 'kill -KILL $$'], { reject: false });
    t.equal(k.exitCode, 137, 'killed by SIGKILL: 128+9');
    const orphans = await podman(['run', '--rm', '--network', 'none', IMAGE, 'sh', '-c', '(sleep 0.3 &); sleep 2; ps -o pid,ppid,stat,comm'], { reject: false });
    t.equal(orphans.exitCode, 0);
    t.notMatch(orphans.stdout, /^\s*\d+\s+1\s+Z/m, 'the orphaned sleep was reaped (no zombie child of PID 1)');
    // podman stop while the main command runs: it gets TERM too, its status is the exit code
    const name = 'rtt-main';
    names.push(name);
    await podman(['rm', '-f', '-t', '0', name], { reject: false });
    await podman(['run', '-d', '--name', name, '--network', 'none', IMAGE, 'sleep', '1000']);
    await until('services', async () => (await logs(name)).includes('ticker: up'));
    const { code } = await stopTimed(name);
    t.equal(code, 143, 'main command killed by TERM: 128+15');
  });

  t.test('a failing start-up script stops the container with its code (configurable)', async (t) => {
    const r = await podman(['run', '--rm', '--network', 'none', '-e', 'FAIL_STARTUP=3', IMAGE], { reject: false, timeout: 30_000 });
    t.equal(r.exitCode, 3, 'exit code of the script');
    t.match(r.stderr, /container-init: fatal: start-up script \/etc\/runit-ts\/startup\.d\/10-greet failed with exit code 3: stopping the container/);
    t.notMatch(r.all, /ticker: up/, 'no service started');
    const go = await podman(['run', '--rm', '--network', 'none', '-e', 'FAIL_STARTUP=3', '-e', 'RUNIT_TS_BEHAVIOUR_IF_STARTUP_FAILS=1', IMAGE, 'sh', '-c', 'sleep 1; sv status ticker'], { reject: false, timeout: 30_000 });
    t.equal(go.exitCode, 0, 'behaviour 1: goes on');
    t.match(go.stderr, /warning: start-up script .*10-greet failed with exit code 3, going on/);
    t.match(go.stdout, /run: ticker/);
  });

  const variants: Array<[string, string[]]> = [
    ['non-root (--user app)', ['--user', 'app']],
    ['read-only root (--read-only)', ['--read-only']],
    ['non-root and read-only', ['--user', 'app', '--read-only']],
  ];
  for (const [label, flags] of variants) {
    t.test(label, async (t) => {
      const name = `rtt-${flags.join('').replace(/[^a-z]/g, '')}`;
      await start(name, ['-e', 'RUNIT_TS_KILL_GRACETIME=3000', ...flags]);
      const l = await logs(name);
      if (flags.includes('app')) t.match(l, /startup: 10-greet uid=1000/, 'runs as uid 1000');
      t.equal((await probe(name)).exitCode, 0, 'probe: healthy');
      const { ms, code } = await stopTimed(name);
      t.comment(`${label}: podman stop ${ms.toFixed(0)} ms`);
      t.equal(code, 0);
      t.match(await logs(name), /hello-log: hello: finish/);
    });
  }

  t.test('podman kube play runs the documented Pod manifest', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'runit-ts-kube-'));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    const doc = readFileSync(join(repo, 'image', 'examples', 'pod.yaml'), 'utf8');
    t.match(doc, /image: localhost\/runit-ts:latest/);
    const file = join(dir, 'pod.yaml');
    // the pod and its emptyDir volume under names of this run (podman 4.3's volume names are global)
    const pod = `rtt-${process.pid}-demo`;
    writeFileSync(file, doc.replace('localhost/runit-ts:latest', IMAGE).replace(/^(  name: )runit-ts-demo$/m, `$1${pod}`).replace(/^(\s+- name: )run$/gm, `$1${pod}-run`));
    await podman(['kube', 'down', file], { reject: false });
    t.teardown(async () => {
      await podman(['kube', 'down', file], { reject: false });
      await podman(['volume', 'rm', '-f', `${pod}-run`], { reject: false });
    });
    await podman(['kube', 'play', '--network', 'none', file]);
    const name = `${pod}-app`;
    await until('pod services', async () => (await logs(name)).includes('ticker: up'));
    t.equal((await probe(name)).exitCode, 0, 'the probe command of the manifest passes');
    const hc = (await podman(['inspect', name, '--format', '{{json .Config.Healthcheck}}'])).stdout;
    t.match(hc, /container-probe/, 'the manifest probe became the healthcheck');
    await podman(['pod', 'stop', '-t', '10', pod]);
    const code = Number((await podman(['inspect', name, '--format', '{{.State.ExitCode}}'])).stdout.trim());
    t.equal(code, 0, 'orderly stop: exit 0');
    t.match(await logs(name), /hello-log: hello: finish/);
  });
}
