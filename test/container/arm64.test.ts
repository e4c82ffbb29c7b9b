// The arm64 image under podman through qemu-user-static (binfmt_misc), where the machine
// lets scripts/setup register it; skipped with the reason otherwise.
import t from 'tap';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { have, haveImage, IMAGE_DIR, logs, podman, until } from '../lib/container.ts';

const BINFMT = '/proc/sys/fs/binfmt_misc/qemu-aarch64';
const binfmt = existsSync(BINFMT) && readFileSync(BINFMT, 'utf8').startsWith('enabled');
const skip =
  haveImage() ||
  (!(await have('podman')) && 'podman is not installed') ||
  (process.arch !== 'arm64' && !binfmt && `qemu-aarch64 is not registered with binfmt_misc (${BINFMT}): this machine does not allow it or scripts/setup has not run`);
if (skip) t.plan(0, skip);
else {
  const IMAGE = 'localhost/runit-ts-test:test-arm64';
  await execa('skopeo', ['copy', '-q', `oci:${join(IMAGE_DIR, 'aarch64', 'oci')}:test`, `containers-storage:${IMAGE}`]);
  const name = 'rtt-arm64';
  t.teardown(async () => void (await podman(['rm', '-f', '-t', '0', name], { reject: false })));

  t.test('arm64: services up, probe, orderly stop, main command exit code', async (t) => {
    await podman(['rm', '-f', '-t', '0', name], { reject: false });
    await podman(['run', '-d', '--name', name, '--arch', 'arm64', '--network', 'none', '-e', 'RUNIT_TS_KILL_GRACETIME=5000', IMAGE]);
    // Node under qemu-user starts slowly
    await until('services up', async () => (await logs(name)).includes('ticker: up'), 120_000);
    t.equal((await podman(['exec', name, 'uname', '-m'])).stdout.trim(), 'aarch64');
    t.equal((await podman(['exec', name, 'container-probe'], { reject: false })).exitCode, 0, 'probe: healthy');
    const t0 = performance.now();
    await podman(['stop', '-t', '10', name]);
    t.comment(`arm64 (qemu-user) podman stop: ${(performance.now() - t0).toFixed(0)} ms`);
    t.equal((await podman(['inspect', name, '--format', '{{.State.ExitCode}}'])).stdout.trim(), '0');
    t.match(await logs(name), /hello-log: hello: finish/);
    const r = await podman(['run', '--rm', '--arch', 'arm64', '--network', 'none', IMAGE, 'sh', '-c', 'exit 5'], { reject: false, timeout: 120_000 });
    t.equal(r.exitCode, 5, 'the main command exit code');
  });
}
