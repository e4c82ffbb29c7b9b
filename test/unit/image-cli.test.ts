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
