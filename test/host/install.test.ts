// Beside another init: `make install` into a DESTDIR and the .deb for both arches,
// installed with dpkg into a throw-away root next to Debian's runit package (dpkg
// itself refuses files that another package owns), then the installed runsvdir, sv and
// servicebuilder run from where they were installed.
import t, { type Test } from 'tap';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { CACHE, repo, spawnBg, until } from '../lib/host.ts';

const NODE = process.execPath;
const root = mkdtempSync(join(tmpdir(), 'runit-ts-install-'));
chmodSync(root, 0o755);
t.teardown(() => rmSync(root, { recursive: true, force: true }));
const hostArch = process.arch === 'arm64' ? 'aarch64' : 'x86_64';
const DEB_ARCH = { x86_64: 'amd64', aarch64: 'arm64' } as const;
const ELF_MACHINE = { x86_64: 'Advanced Micro Devices X86-64', aarch64: 'AArch64' } as const;

/** Start the installed runsvdir on a scan dir with one service; check it with the installed sv. */
async function runInstalled(t: Test, prefixDir: string, label: string): Promise<void> {
  const scan = join(root, `${label}-service`);
  const svc = join(root, `${label}-sv/hello`);
  mkdirSync(scan, { recursive: true });
  mkdirSync(svc, { recursive: true });
  writeFileSync(join(svc, 'run'), '#!/bin/sh\nexec sleep 1000\n', { mode: 0o755 });
  symlinkSync(svc, join(scan, 'hello'));
  const bin = join(prefixDir, 'lib/runit-ts/bin');
  const bg = spawnBg(join(bin, 'runsvdir'), ['-P', scan]);
  try {
    await until(() => existsSync(join(svc, 'supervise/ok')), 15000, `${label}: supervise/ok`);
    const r = await until(async () => {
      const r = await execa(join(bin, 'sv'), ['-w', '5', 'up', 'hello'], { env: { SVDIR: scan }, reject: false });
      return r.exitCode === 0 ? r : undefined;
    }, 15000, `${label}: sv up`);
    t.match(r.stdout, /^ok: run: hello: \(pid \d+\)/, `${label}: the installed sv reports the installed runsvdir's service`);
  } finally {
    bg.proc.kill('SIGTERM');
    await bg.proc;
  }
  t.notOk(existsSync(join(svc, 'supervise/ok')) && (await execa(join(bin, 'sv'), ['status', svc], { reject: false })).stdout.startsWith('run'), `${label}: stopped with runsvdir`);
}

t.test('make install DESTDIR PREFIX', async (t) => {
  const dest = join(root, 'dest');
  await execa('make', ['-s', 'install', `DESTDIR=${dest}`, 'PREFIX=/opt/rt', 'SYSCONFDIR=/etc'], { cwd: repo });
  for (const f of ['opt/rt/lib/runit-ts/runit-ts', 'opt/rt/lib/runit-ts/runit-ts.node', 'opt/rt/bin/runit-ts', 'opt/rt/lib/runit-ts/bin/sv', 'opt/rt/lib/runit-ts/bin/runsvdir', 'opt/rt/lib/runit-ts/bin/servicebuilder', 'opt/rt/lib/systemd/system/runit-ts.service', 'opt/rt/share/runit-ts/inittab', 'etc/runit-ts/service']) {
    t.ok(existsSync(join(dest, f)), f);
  }
  t.notOk(existsSync(join(dest, 'opt/rt/lib/runit-ts/bin/runit-init')), 'no init applets beside another init');
  const unit = readFileSync(join(dest, 'opt/rt/lib/systemd/system/runit-ts.service'), 'utf8');
  const exec = /^ExecStart=(\S+) -P (\S+)$/m.exec(unit);
  t.ok(exec, 'the unit starts runsvdir -P');
  t.ok(existsSync(join(dest, exec![1]!)), 'ExecStart names the installed runsvdir');
  t.equal(exec![2], '/etc/runit-ts/service');
  t.match(unit, /^KillMode=mixed$/m, 'TERM to runsvdir (which stops every service), not to each service');
  const inittab = readFileSync(join(dest, 'opt/rt/share/runit-ts/inittab'), 'utf8');
  const line = /^RT:2345:respawn:.* (\S+\/runsvdir) -P (\S+)$/m.exec(inittab);
  t.ok(line && existsSync(join(dest, line[1]!)), 'the inittab line names the installed runsvdir');
  const v = await execa(join(dest, 'opt/rt/bin/runit-ts'), ['sv', '-V'], { reject: false });
  t.equal(v.exitCode, 100);
  await runInstalled(t, join(dest, 'opt/rt'), 'destdir');
});

for (const arch of ['x86_64', 'aarch64'] as const) {
  t.test(`.deb for ${arch}`, async (t) => {
    const deb = join(root, `runit-ts_${arch}.deb`);
    await execa(NODE, [join(repo, 'scripts/install.ts'), 'deb', '--arch', arch, '--out', deb], { cwd: repo });
    t.equal((await execa('dpkg-deb', ['-f', deb, 'Architecture'])).stdout, DEB_ARCH[arch]);
    t.equal((await execa('dpkg-deb', ['-f', deb, 'Package'])).stdout, 'runit-ts');
    const x = join(root, `x-${arch}`);
    await execa('dpkg-deb', ['-x', deb, x]);
    t.match((await execa('readelf', ['-h', join(x, 'usr/lib/runit-ts/runit-ts')])).stdout, new RegExp(`Machine:\\s+${ELF_MACHINE[arch]}`), 'the executable is built for the arch');

    // dpkg into a throw-away root that already has Debian's runit: no file conflicts
    const r = join(root, `root-${arch}`);
    for (const d of ['var/lib/dpkg/info', 'var/lib/dpkg/updates', 'var/lib/dpkg/triggers', 'bin', 'etc']) mkdirSync(join(r, d), { recursive: true });
    writeFileSync(join(r, 'var/lib/dpkg/status'), '');
    // runit's preinst runs in the root (chroot): busybox provides its shell and tools
    const bb = join(CACHE, 'busybox-x86_64/bin/busybox');
    writeFileSync(join(r, 'bin/busybox'), readFileSync(bb), { mode: 0o755 });
    for (const a of ['sh', 'readlink', 'mkdir', 'rm', 'ln', 'mv', 'printf']) symlinkSync('busybox', join(r, 'bin', a));
    const runitDeb = join(CACHE, 'downloads', `runit-${arch}_2.1.2-54.deb`);
    t.ok(existsSync(runitDeb), 'Debian runit package in the cache (scripts/setup)');
    const dpkg = (args: string[]) => execa('dpkg', [`--root=${r}`, '--force-depends', '--force-architecture', ...args], { reject: false, env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' } });
    const a = await dpkg(['--unpack', runitDeb]);
    t.equal(a.exitCode, 0, `Debian's runit unpacks: ${a.stderr}`);
    const b = await dpkg(['--unpack', deb]);
    t.equal(b.exitCode, 0, `runit-ts unpacks beside it: ${b.stderr}`);
    t.notMatch(b.stderr, /trying to overwrite/);
    const c = await dpkg(['--configure', 'runit-ts']);
    t.equal(c.exitCode, 0, `runit-ts configures: ${c.stderr}`);
    const l = await execa('dpkg', [`--root=${r}`, '-s', 'runit-ts']);
    t.match(l.stdout, /^Status: install ok installed$/m);
    t.ok(existsSync(join(r, 'usr/bin/sv')) && existsSync(join(r, 'usr/lib/runit-ts/bin/sv')), "Debian's sv and ours side by side");
    if (arch === hostArch) await runInstalled(t, join(r, 'usr'), `dpkg-${arch}`);
  });
}
