// runit-ts-init, the Debian package that makes runit-ts the runit of a Debian 12 system
// (image/debian/package.ts), and the stages on such a system:
//   1. the .deb is the same bytes at every build, whatever the umask, with Debian's
//      paths, root owners and SOURCE_DATE_EPOCH times, and md5sums that match
//   2. apt takes it for Debian's runit: mmdebstrap installs it with runit-services, cron
//      and rsyslog from Debian's mirror (Debian's runit stays out; the services are
//      copied to /etc/sv and enabled), and refuses it beside systemd-cron, which needs
//      systemd as process 1; what apt prints then is checked line by line
//   3. that system comes up in a chroot (test/fixtures/debian/boot.sh, in a user namespace
//      whose root is nobody outside, so that nothing reaches the host): stage 1 remounts
//      the read-only root as its fstab says and mounts the rest, makes Debian's runit files;
//      stage 2 makes /run/runit/supervise and runs cron and rsyslog through
//      /lib/runit/invoke-run; our sv and Debian's agree; invoke-run's policy-rc.d,
//      /etc/default, env/ and missing-program rules, finish-exec, default-syslog's check
//      and trigger_sv each do what Debian's do
// Parts 2 and 3 need root, mmdebstrap and deb.debian.org; without them they are skipped
// with the reason. About 70 s in all on an idle machine (mmdebstrap 50-55 s of it, most of
// that downloading and configuring Debian's packages); nearer 2 minutes when other work
// shares the two cores.
import t from 'tap';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { dirname, join } from 'node:path';
import { execa } from 'execa';
import { buildInitDeb, DEBIAN_RUNIT_VERSION, INIT_PACKAGE, initDebName } from '../../image/debian/package.ts';
import { BIN, debianBin, processTempDir, repo } from '../lib/host.ts';
import { requireHostArch } from '../../src/lib/platform.ts';

const arch = requireHostArch();
const EPOCH = '1700000000'; // 2023-11-14 22:13:20 UTC
const SUITE = 'bookworm';
const MIRROR = `deb http://deb.debian.org/debian ${SUITE} main`;
/** a name no Debian suite has */
const UNKNOWN = 'no-such-package-runit-ts';
const root = processTempDir('runit-ts-debian-');
chmodSync(root, 0o755); // apt's _apt and the user namespace's nobody read in here

/** The binaries the package takes, from the executable under test and its neighbours. */
function binDir(): string {
  const d = join(root, 'bin');
  mkdirSync(d);
  const from = dirname(BIN);
  symlinkSync(BIN, join(d, 'runit-ts'));
  symlinkSync(process.env.RUNIT_TS_ADDON ?? join(from, 'runit-ts.node'), join(d, 'runit-ts.node'));
  symlinkSync(process.env.RUNIT_TS_PID1 ?? join(from, 'runit'), join(d, 'runit'));
  return d;
}

async function have(cmd: string): Promise<boolean> {
  return (await execa('sh', ['-c', `command -v ${cmd}`], { reject: false })).exitCode === 0;
}

/** Why parts 2 and 3 cannot run here, or undefined. */
async function whyNotApt(): Promise<string | undefined> {
  if (process.getuid?.() !== 0) return 'needs root (mmdebstrap in root mode, mounts, chroot)';
  for (const c of ['mmdebstrap', 'dpkg-scanpackages', 'unshare', 'setpriv']) if (!(await have(c))) return `needs ${c}`;
  try {
    const r = await fetch(`http://deb.debian.org/debian/dists/${SUITE}/InRelease`, { method: 'HEAD', signal: AbortSignal.timeout(5000) });
    if (!r.ok) return `deb.debian.org answers ${r.status}`;
  } catch (e) {
    return `no network to deb.debian.org (${(e as Error).message})`;
  }
  return undefined;
}

const sha256 = (f: string) => createHash('sha256').update(readFileSync(f)).digest('hex');
let deb: string | undefined;

t.test('the .deb: the same bytes at every build, whatever the umask', { skip: existsSync(BIN) ? false : `no executable at ${BIN}: make build` }, async (t) => {
  const bins = binDir();
  const saved = { epoch: process.env.SOURCE_DATE_EPOCH, umask: process.umask() };
  process.env.SOURCE_DATE_EPOCH = EPOCH;
  t.teardown(() => {
    if (saved.epoch === undefined) delete process.env.SOURCE_DATE_EPOCH;
    else process.env.SOURCE_DATE_EPOCH = saved.epoch;
    process.umask(saved.umask);
  });
  const built: string[] = [];
  for (const [i, umask] of [0o022, 0o077].entries()) {
    process.umask(umask);
    const start = Date.now();
    built.push(await buildInitDeb(arch, bins, join(root, `build${i}`)));
    t.comment(`built with umask ${umask.toString(8).padStart(3, '0')} in ${Date.now() - start} ms`);
  }
  process.umask(saved.umask);
  deb = built[0]!;
  t.equal(deb.split('/').pop(), initDebName(arch));
  t.equal(sha256(built[1]!), sha256(deb), 'two builds, two umasks: the same bytes');
  const field = async (f: string) => (await execa('dpkg-deb', ['-f', deb!, f])).stdout;
  t.equal(await field('Package'), INIT_PACKAGE);
  t.equal(await field('Provides'), `runit (= ${DEBIAN_RUNIT_VERSION}), runit-run (= ${DEBIAN_RUNIT_VERSION}), runit-init (= ${DEBIAN_RUNIT_VERSION})`);
  const list = (await execa('sh', ['-c', 'dpkg-deb --fsys-tarfile "$1" | tar -tv --full-time', 'sh', deb], { env: { TZ: 'UTC' } })).stdout.split('\n');
  t.same(list.filter((l) => !/^\S+ root\/root +\d+ 2023-11-14 22:13:20 /.test(l)), [], 'every member: root/root, SOURCE_DATE_EPOCH');
  const entry = (path: string) => list.find((l) => l.endsWith(` ./${path}`) || l.includes(` ./${path} -> `));
  t.match(entry('usr/lib/runit-ts/runit-ts'), /^-rwxr-xr-x /, 'the executable, 0755');
  t.match(entry('usr/lib/runit-ts/runit-ts.node'), /^-rw-r--r-- /, 'its addon, 0644');
  t.match(entry('sbin/runit'), /^-rwxr-xr-x /, 'the C PID 1');
  t.match(entry('lib/runit/invoke-run'), /^-rwxr-xr-x /, 'invoke-run');
  t.match(entry('usr/bin/sv'), / -> \.\.\/lib\/runit-ts\/runit-ts$/, 'sv at Debian\'s path');
  t.match(entry('sbin/init'), / -> \/usr\/lib\/runit-ts\/runit-ts$/, '/sbin/init');
  t.match(entry('etc/service'), / -> runit\/runsvdir\/current$/, '/etc/service');
  t.match(list[0], /^drwxr-xr-x .* \.\/$/, 'the root directory, 0755 (not the temporary directory\'s 0700)');
  // the md5sums dpkg --verify and debsums use match the files
  const x = join(root, 'unpacked');
  await execa('dpkg-deb', ['-R', deb, x]);
  const check = await execa('md5sum', ['--quiet', '-c', 'DEBIAN/md5sums'], { cwd: x, reject: false });
  t.equal(check.exitCode, 0, `md5sums ${check.stdout}`);
  rmSync(x, { recursive: true, force: true });
});

const whyNot = existsSync(BIN) ? await whyNotApt() : `no executable at ${BIN}: make build`;

t.test('apt and a chroot', { skip: whyNot ?? false }, async (t) => {
  if (!deb) {
    t.fail('the package was not built (see the first test)');
    return;
  }
  // a flat repository apt (_apt) can read
  const repoDir = join(root, 'repo');
  mkdirSync(repoDir, { mode: 0o755 });
  copyFileSync(deb!, join(repoDir, initDebName(arch)));
  chmodSync(join(repoDir, initDebName(arch)), 0o644);
  writeFileSync(join(repoDir, 'Packages'), (await execa('dpkg-scanpackages', ['.', '/dev/null'], { cwd: repoDir })).stdout + '\n');
  // copy:// (as the image builder's): apt copies the .deb into the chroot, where dpkg runs
  const local = `deb [trusted=yes] copy://${repoDir} ./`;
  const tarball = join(root, 'debian.tar');
  /** mmdebstrap in a mount namespace of its own (a failed run leaves no mount behind) */
  const mmdebstrap = (name: string, options: string[], target: string) => {
    const tmp = join(root, `tmp-${name}`);
    mkdirSync(tmp);
    const args = ['-m', '--propagation', 'private', 'mmdebstrap', '--variant=minbase', ...options, SUITE, target, MIRROR, local];
    return execa('unshare', args, { env: { TMPDIR: tmp }, reject: false, all: true, timeout: 300_000 });
  };
  const start = Date.now();
  const [system, withSystemd, systemdAlone, unknown] = await Promise.all([
    mmdebstrap('system', [`--include=${INIT_PACKAGE},runit-services,cron,rsyslog`], tarball),
    // apt's answer is all these need: --simulate resolves and installs nothing
    mmdebstrap('systemd', ['--simulate', `--include=${INIT_PACKAGE},systemd-cron`], '/dev/null'),
    mmdebstrap('control', ['--simulate', '--include=systemd-cron'], '/dev/null'),
    mmdebstrap('unknown', ['--simulate', `--include=${INIT_PACKAGE},${UNKNOWN}`], '/dev/null'),
  ]);
  t.comment(`mmdebstrap: ${Math.round((Date.now() - start) / 1000)} s`);

  t.test('apt refuses it beside a package that needs systemd, and says so', async (t) => {
    t.equal(systemdAlone.exitCode, 0, `systemd-cron alone is installable ${systemdAlone.exitCode ? systemdAlone.all : ''}`);
    t.not(withSystemd.exitCode, 0, `with ${INIT_PACKAGE} it is not`);
    const lines = withSystemd.all.split('\n');
    t.ok(lines.includes('The following packages have unmet dependencies:'), 'apt\'s heading');
    t.ok(lines.includes(' systemd-cron : Depends: systemd-sysv but it is not installable'), 'apt names the dependency our Conflicts blocks');
    t.ok(lines.includes('E: Unable to correct problems, you have held broken packages.'), 'apt\'s error');
    t.not(unknown.exitCode, 0, 'an unknown package fails');
    t.ok(unknown.all.split('\n').includes(`E: Unable to locate package ${UNKNOWN}`), 'apt names it');
  });

  t.test('apt installs it in place of Debian\'s runit', async (t) => {
    t.equal(system.exitCode, 0, `mmdebstrap ${system.exitCode ? system.all : ''}`);
    if (system.exitCode !== 0) return;
    chmodSync(tarball, 0o644);
    const file = async (p: string) => (await execa('tar', ['-xOf', tarball, `./${p}`])).stdout;
    const status = await file('var/lib/dpkg/status');
    const installed = new Set([...status.matchAll(/^Package: (\S+)\nStatus: install ok installed$/gm)].map((m) => m[1]));
    for (const p of [INIT_PACKAGE, 'runit-services', 'runit-helper', 'cron', 'rsyslog']) t.ok(installed.has(p), `${p} installed`);
    for (const p of ['runit', 'runit-run', 'runit-init', 'systemd-sysv', 'sysvinit-core']) t.notOk(installed.has(p), `${p} not installed`);
    const list = (await execa('tar', ['-tvf', tarball])).stdout.split('\n');
    const link = (p: string) => list.find((l) => l.includes(` ./${p} -> `))?.split(' -> ')[1];
    for (const s of ['cron', 'rsyslog', 'default-syslog']) t.equal(link(`etc/runit/runsvdir/default/${s}`), `/etc/sv/${s}`, `${s} enabled in the default runlevel`);
    t.equal(link('etc/sv/cron/supervise'), '/run/runit/supervise/cron', 'cron\'s supervise/ is in /run');
    t.equal(link('etc/runit/runsvdir/current'), 'default', 'the runlevel in use');
    t.match(await file('etc/passwd'), /^_runit-log:x:\d+:\d+:[^:]*:\/nonexistent:\/usr\/sbin\/nologin$/m, 'the log user');
    t.equal(await file('etc/sv/cron/run').then((s) => s.split('\n')[0]), '#!/usr/bin/env /lib/runit/invoke-run', 'Debian\'s run script, through invoke-run');
  });

  t.test('the system comes up in a chroot', { skip: system.exitCode === 0 ? false : 'no system was made' }, async (t) => {
    const sv = join(root, 'debian-sv');
    copyFileSync(debianBin('sv'), sv);
    chmodSync(sv, 0o755);
    const mnt = join(root, 'mnt');
    mkdirSync(mnt, { mode: 0o755 });
    // nobody runs the script: a copy here, since the checkout may be in a directory nobody cannot enter
    const script = join(root, 'boot.sh');
    copyFileSync(join(repo, 'test/fixtures/debian/boot.sh'), script);
    chmodSync(script, 0o644);
    const r = await execa('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', 'unshare', '-r', '-m', '-p', '-f', '-u', '-n', '--propagation', 'private', 'sh', script, mnt, tarball, sv], { reject: false, all: true, timeout: 120_000 });
    const said = new Map([...r.all.matchAll(/^([a-z0-9-]+): (.*)$/gm)].map((m) => [m[1]!, m[2]!]));
    const logs = r.all.split('\n').filter((l) => /^stage[12]\| /.test(l)).join('\n');
    t.comment(logs);
    const is = (key: string, want: string | RegExp, what: string) => (typeof want === 'string' ? t.equal(said.get(key), want, what) : t.match(said.get(key), want, what));
    is('root-before', 'ro', 'the root was read-only before stage 1');
    is('stage1-exit', '0', 'stage 1 exits 0');
    is('root-after', 'rw', 'stage 1 remounted it read-write, as its fstab line says');
    is('mnt-auto', 'tmpfs', 'and mounted the fstab line without noauto');
    is('mnt-not', '', 'but not the noauto one');
    is('dev-shm', 'tmpfs', '/dev/shm');
    is('stopit', '0', '/run/runit.stopit, mode 0 (runit-helper: runit is process 1)');
    is('reboot', '0', '/run/runit.reboot, mode 0');
    is('run-lock', '1777', '/run/lock');
    is('supervise-dir', 'made', 'stage 2 made /run/runit/supervise');
    is('services-up', 'yes', 'cron, rsyslog and default-syslog run');
    is('current', 'default', 'in the default runlevel');
    is('supervise-link', '/run/runit/supervise/cron', 'through Debian\'s supervise links');
    is('ours', /^run: cron: \(pid \d+\)\|run: rsyslog: \(pid \d+\)\|$/, 'our sv');
    t.equal(said.get('debian'), said.get('ours'), 'Debian\'s sv says the same');
    is('cron-comm', 'cron', 'cron is cron');
    is('rsyslog-comm', 'rsyslogd', 'rsyslog is rsyslogd');
    is('cron-name', 'NAME=cron', 'started through invoke-run (it exports NAME)');
    is('rsyslog-name', 'NAME=rsyslog', 'rsyslog too');
    is('syslog-ready', 'yes', 'default-syslog is ready while rsyslog listens on /dev/log');
    is('syslog-down', 'not-ready', 'and not once rsyslog is stopped');
    is('envtest', 'env-dir default', 'invoke-run: /etc/default/NAME exported, env/ wins over it');
    is('ghost', 'down', 'invoke-run: a program that is not installed, and the service is wanted down');
    is('badconf', /^invoke-run: ERROR 162 in badconf: /, 'finish-exec: exit 162 said and the service wanted down');
    is('policy', 'down', 'invoke-run: policy-rc.d 101 starts nothing and wants the service down');
    is('policy-gone', 'up', 'without it, sv up starts it');
    is('cron-gone', 'disabled', 'trigger_sv: a service whose program went away is disabled');
    is('cron-back', 'enabled', 'and enabled again when it is back');
    is('stage2-exit', '0', 'stage 2 stops on TERM and exits 0');
    t.notMatch(logs, /stage 1: .*(fstab|mount -|\/bin\/mount|\/run\/lock|\/dev\/shm|stopit|reboot)/, 'stage 1 reported no failure of its Debian part');
  });
});
