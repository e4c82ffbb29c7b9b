// The arm64 image under qemu-user (as arm64.test.ts): sv on /etc/service/NAME (the
// supervise link into /run), a service added while the container runs, and the stop in
// order with the shutdown scripts first. Skipped with the reason where qemu-aarch64 is
// not registered with binfmt_misc.
import t from 'tap';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { have, haveImage, IMAGE_DIR, logs, podman, until } from '../lib/container.ts';

const BINFMT = '/proc/sys/fs/binfmt_misc/qemu-aarch64';
const binfmt = existsSync(BINFMT) && readFileSync(BINFMT, 'utf8').startsWith('enabled');
const skip =
  haveImage() ||
  (!(await have('podman')) && 'podman is not installed') ||
  (process.arch !== 'arm64' && !binfmt && `qemu-aarch64 is not registered with binfmt_misc (${BINFMT})`);
if (skip) t.plan(0, skip);
else {
  const IMAGE = 'localhost/runit-ts-test:test-arm64';
  await execa('skopeo', ['copy', '-q', `oci:${join(IMAGE_DIR, 'aarch64', 'oci')}:test`, `containers-storage:${IMAGE}`]);
  const name = 'rtt-arm64-supervision';
  const dir = mkdtempSync(join(tmpdir(), 'runit-ts-order-arm64-'));
  t.teardown(async () => {
    await podman(['rm', '-f', '-t', '0', name], { reject: false });
    rmSync(dir, { recursive: true, force: true });
  });

  t.test('arm64: sv status /etc/service/NAME, a service added later, the stop in order', async (t) => {
    await podman(['rm', '-f', '-t', '0', name], { reject: false });
    await podman(['run', '-d', '--name', name, '--arch', 'arm64', '--network', 'none', '-v', `${dir}:/out`, '-e', 'RUNIT_TS_KILL_GRACETIME=4000', IMAGE]);
    // Node under qemu-user starts slowly
    await until('services up', async () => (await logs(name)).includes('ticker: up'), 120_000);
    t.match((await podman(['exec', name, 'sv', 'status', '/etc/service/hello'])).stdout, /^run: \/etc\/service\/hello: \(pid \d+\)/, 'sv status /etc/service/hello');
    await podman(['exec', name, 'sh', '-c', `mkdir -p /etc/sv/added && printf '#!/bin/sh\\necho "added: up"\\nexec sleep 100000\\n' > /etc/sv/added/run && chmod 755 /etc/sv/added/run && ln -s /etc/sv/added /etc/service/added`]);
    await until('added: up', async () => (await logs(name)).includes('added: up'), 60_000);
    await podman(['exec', name, 'sv', 'up', 'dep-b', 'dep-a', 'dep-c']);
    await until('dep-a and dep-c up', async () => {
      const l = await logs(name);
      return l.includes('dep-a: up') && l.includes('dep-c: up');
    }, 60_000);
    await podman(['stop', '-t', '10', name]);
    t.equal((await podman(['inspect', name, '--format', '{{.State.ExitCode}}'])).stdout.trim(), '0');
    const order = readFileSync(join(dir, 'order'), 'utf8').trim().split('\n');
    t.comment(`arm64 stop order: ${order.join(' ')}`);
    t.equal(order[0], 'shutdown.d', 'the shutdown scripts first');
    t.ok(order.indexOf('dep-a') < order.indexOf('dep-b'), 'dep-a down before dep-b, which it depends on');
  });
}
