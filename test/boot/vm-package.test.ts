// runit-ts-vm as the npm package installs it, on both LTS lines of Node (the pinned Node 22,
// input node22-x86_64, and the build's Node 24): `make pack`, installed into a fresh
// project, `runit-ts-vm --help`, and a run in the harness image ($RUNIT_TS_VM_IMAGE: an
// installed package has no checkout) whose exit code and output come back.
import t from 'tap';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { execa } from 'execa';
import { hostArch } from '../../src/lib/platform.ts';
import { CACHE, processTempDir, repo } from '../lib/host.ts';

/** The Nodes the package must run on: the LTS lines, by major version. */
const NODES: Record<string, string> = {
  '22': join(CACHE, 'node22-x86_64', 'package', 'bin', 'node'),
  '24': join(CACHE, `node-${hostArch() ?? 'x86_64'}`, 'package', 'bin', 'node'),
};
/** ms for a run (the first boots cold and saves a snapshot). */
const RUN_TIMEOUT_MS = 300_000;

const arch = hostArch() ?? 'x86_64';
const image = join(repo, 'out', 'harness', arch);
const tmp = processTempDir('runit-ts-vm-pkg-');

t.test('the packed runit-ts-vm on Node 22 and 24', async (t) => {
  if (!existsSync(join(image, 'initramfs.img'))) return t.fail(`out/harness/${arch}/initramfs.img is missing: run make vm-image`);
  await execa('make', ['-s', 'lib'], { cwd: repo });
  await execa('npm', ['pack', '--ignore-scripts', '--pack-destination', tmp], { cwd: repo });
  const tgz = readdirSync(tmp).find((f) => /^runit-ts-.*\.tgz$/.test(f));
  t.ok(tgz, 'npm pack made a tarball');
  const app = join(tmp, 'app');
  mkdirSync(app);
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true }));
  await execa('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', join(tmp, tgz!)], { cwd: app });
  const bin = join(app, 'node_modules', '.bin', 'runit-ts-vm');
  const state = join(tmp, 'state');
  mkdirSync(state);
  for (const [major, node] of Object.entries(NODES)) {
    await t.test(`Node ${major}`, { skip: existsSync(node) ? false : `${node} is missing: run scripts/setup` }, async (t) => {
      // the bin's #!/usr/bin/env node finds this Node first
      const env = { PATH: `${dirname(node)}:${process.env.PATH ?? ''}`, TMPDIR: state, RUNIT_TS_VM_IMAGE: image };
      t.equal((await execa(node, ['--version'], { env })).stdout.split('.')[0], `v${major}`);
      const help = await execa(bin, ['--help'], { env, cwd: app });
      t.match(help.stdout, /^usage: runit-ts-vm run /);
      const r = await execa(bin, ['run', '--snapshot', '--', 'sh', '-c', `echo node${major}; exit 5`], { env, cwd: app, reject: false, timeout: RUN_TIMEOUT_MS });
      t.equal(r.exitCode, 5, r.stderr);
      t.equal(r.stdout, `node${major}`);
    });
  }
});
