// runit-ts-image boot: bad requests give one clear line and no QEMU; --help names it.
import t from 'tap';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { repo } from '../lib/host.ts';

const cli = join(repo, 'scripts', 'runit-ts-image');
const dir = mkdtempSync(join(tmpdir(), 'image-cli-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

t.test('boot: what is missing is said in one line', async (t) => {
  let r = await execa(cli, ['boot', dir, '--arch', 'x86_64'], { reject: false });
  t.equal(r.exitCode, 1);
  t.equal(r.stderr.trim(), `[runit-ts-image] error: no image in ${dir}: run make image ARCH=x86_64`);
  r = await execa(cli, ['boot', dir, '--arch', 'x86_64', '--disk', 'direct'], { reject: false });
  t.equal(r.exitCode, 1);
  t.match(r.stderr.trim(), /^\[runit-ts-image\] error: no disk image in .*OUTPUTS=disk/);
  t.equal(r.stderr.trim().split('\n').length, 1, 'one line');
  writeFileSync(join(dir, 'disk.img'), '');
  r = await execa(cli, ['boot', dir, '--arch', 'x86_64', '--disk', 'sideways'], { reject: false });
  t.equal(r.exitCode, 1);
  t.match(r.stderr.trim(), /^\[runit-ts-image\] error: .*sideways/);
  r = await execa(cli, ['boot', dir, '--arch', 'x86_64', '--disk', 'uboot'], { reject: false });
  t.equal(r.exitCode, 1, 'U-Boot is for aarch64 only');
  t.match(r.stderr.trim(), /^\[runit-ts-image\] error: .*uboot/);
});

t.test('--help lists build, check and boot', async (t) => {
  const r = await execa(cli, ['--help']);
  t.match(r.stdout, /runit-ts-image build SPEC/);
  t.match(r.stdout, /runit-ts-image boot DIR/);
});

t.test('boot --exedisk: what is missing is said in one line', async (t) => {
  const r = await execa(cli, ['boot', dir, '--arch', 'x86_64', '--exedisk', 'blk'], { reject: false });
  t.equal(r.exitCode, 1);
  t.match(r.stderr.trim(), /^\[runit-ts-image\] error: no exedisk\.img in .*: run make image OUTPUTS=exedisk ARCH=x86_64$/);
  const p = await execa(cli, ['boot', dir, '--arch', 'aarch64', '--exedisk', 'pmem'], { reject: false });
  t.equal(p.exitCode, 1, 'virtio-pmem is for x86_64 only');
  t.match(p.stderr.trim(), /^\[runit-ts-image\] error: exedisk: pmem is not available on aarch64/);
});

t.test('check: exedisk is an output like the others, from the spec or --outputs', async (t) => {
  const spec = join(dir, 'exedisk.yaml');
  writeFileSync(spec, 'arches: [x86_64]\noutputs: [initramfs, exedisk]\n');
  let r = await execa(cli, ['check', spec]);
  t.equal(r.stdout, `${spec}: ok (runit-ts:latest, x86_64: initramfs, exedisk)`);
  r = await execa(cli, ['check', spec, '--outputs', 'exedisk,tar', '--arch', 'all']);
  t.equal(r.stdout, `${spec}: ok (runit-ts:latest, x86_64, aarch64: exedisk, tar)`);
  const bad = await execa(cli, ['check', spec, '--outputs', 'iso'], { reject: false });
  t.equal(bad.exitCode, 1);
  t.match(bad.stderr, /--outputs: unknown output iso \(expected a comma list of: initramfs, disk, exedisk, tar, oci, docker, overlay\)/);
});
