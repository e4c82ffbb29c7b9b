// runit-ts on Debian, the parts that need no Debian: the package's entries and control
// file (image/debian/package.ts), stage 1's reading of /etc/fstab (stages/fstab.ts) and
// stage 2's choice of runlevel (stages/stage2.ts). The package installed by apt and the
// stages run on a Debian tree: test/host/debian-package.test.ts.
import t from 'tap';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { conffiles, controlText, DEB_APPLET_LINKS, DEBIAN_RUNIT_VERSION, INIT_PACKAGE, installedSizeKiB, linkTarget, md5sums, PACKAGE_SOURCE, packageEntries } from '../../image/debian/package.ts';
import { entryData, type Entry } from '../../src/lib/entry.ts';
import { fstabCommands, mountFstab, parseFstab, readOnly } from '../../stages/fstab.ts';
import { chosenRunlevel } from '../../stages/stage2.ts';

const tmp = mkdtempSync(join(tmpdir(), 'runit-ts-debian-unit-'));
t.teardown(() => rmSync(tmp, { recursive: true, force: true }));

/** Stand-ins for out/ARCH: what packageEntries reads, with modes no package should keep. */
function fakeBin(): string {
  const d = join(tmp, 'bin');
  mkdirSync(d, { recursive: true });
  for (const [f, mode] of [['runit-ts', 0o700], ['runit-ts.node', 0o600], ['runit', 0o750]] as const) writeFileSync(join(d, f), `${f} bytes`, { mode });
  return d;
}

t.test('fstab: entries, escapes, options', async (t) => {
  const e = parseFstab(`# a comment
UUID=1234  /            ext4  errors=remount-ro  0 1
/dev/vdb   /srv/my\\040data ext4 defaults,noatime   0 2

tmpfs      /tmp         tmpfs                    # options left out
/dev/vdc   none         swap  sw                 0 0
`);
  t.same(e, [
    { spec: 'UUID=1234', file: '/', type: 'ext4', options: ['errors=remount-ro'] },
    { spec: '/dev/vdb', file: '/srv/my data', type: 'ext4', options: ['defaults', 'noatime'] },
    { spec: 'tmpfs', file: '/tmp', type: 'tmpfs', options: ['defaults'] },
    { spec: '/dev/vdc', file: 'none', type: 'swap', options: ['sw'] },
  ]);
  t.same(parseFstab('# UNCONFIGURED FSTAB FOR BASE SYSTEM\n'), [], "mmdebstrap's fstab has no entries");
  t.equal(readOnly(['defaults']), false, 'rw by default');
  t.equal(readOnly(['ro', 'noatime']), true);
  t.equal(readOnly(['ro', 'rw']), false, 'the last of ro and rw wins, as mount(8) reads them');
  t.equal(readOnly(['rw', 'ro']), true);
});

t.test('fstab: what stage 1 runs', async (t) => {
  const tools = { mount: '/bin/mount', swapon: '/sbin/swapon' };
  const cmds = (text: string) => fstabCommands(parseFstab(text), tools);
  t.same(cmds(''), [], 'no entries: nothing');
  t.same(cmds('/dev/vda2 / ext4 errors=remount-ro 0 1\n'), [['/bin/mount', '-o', 'remount,rw', '/']], 'only a root line: / remounted read-write');
  t.same(cmds('/dev/vda2 / ext4 ro 0 1\n'), [['/bin/mount', '-o', 'remount,ro', '/']], 'a root line that says ro');
  t.same(
    cmds('/dev/vda2 / ext4 defaults 0 1\ntmpfs /tmp tmpfs mode=1777 0 0\n/dev/vdc none swap sw 0 0\n'),
    [['/bin/mount', '-o', 'remount,rw', '/'], ['/bin/mount', '-a'], ['/sbin/swapon', '-a']],
    'remount /, then mount -a, then swapon -a',
  );
  t.same(cmds('/dev/vdb /srv ext4 noauto 0 2\n/dev/vdc none swap noauto 0 0\n'), [], 'noauto lines ask for nothing');
  t.same(cmds('/dev/vdc none swap sw 0 0\n'), [['/sbin/swapon', '-a']], 'swap alone: no mount -a');
  t.same(mountFstab(join(tmp, 'no-fstab')), [], 'a root without /etc/fstab (the busybox images): nothing runs');
});

t.test('stage 2: the runlevel chosen, as Debian chooses it', async (t) => {
  const base = join(tmp, 'runsvdir');
  for (const d of ['default', 'single']) mkdirSync(join(base, d), { recursive: true });
  const file = join(tmp, 'default.runsvdir');
  const none = join(tmp, 'no-default.runsvdir');
  t.equal(chosenRunlevel({ runitdir: 'single' }, false, base, none), 'single', 'runitdir= on the kernel command line');
  t.equal(chosenRunlevel({ runitdir: 'nosuch' }, true, base, none), 'default', 'runitdir= naming no runlevel: as without it');
  writeFileSync(file, 'single\n');
  t.equal(chosenRunlevel({}, true, base, file), 'single', '/etc/runit/default.runsvdir');
  t.equal(chosenRunlevel({ runitdir: 'default' }, true, base, file), 'default', 'the command line before the file');
  t.equal(chosenRunlevel({}, true, base, none), 'default', 'Debian: the default runlevel at every boot');
  t.equal(chosenRunlevel({}, false, base, none), undefined, 'elsewhere (the busybox images): current stays as it is');
});

t.test('package: links by Debian policy, control file', async (t) => {
  t.equal(linkTarget('usr/bin/sv', 'usr/lib/runit-ts/runit-ts'), '../lib/runit-ts/runit-ts', 'relative within /usr');
  t.equal(linkTarget('usr/sbin/runsvchdir', 'usr/lib/runit-ts/runit-ts'), '../lib/runit-ts/runit-ts');
  t.equal(linkTarget('sbin/init', 'usr/lib/runit-ts/runit-ts'), '/usr/lib/runit-ts/runit-ts', 'absolute across top-level directories (/sbin is /usr/sbin on a merged system)');
  const c = controlText('x86_64', 1234, '9.8.7');
  const field = (name: string) => new RegExp(`^${name}: (.*)$`, 'm').exec(c)?.[1];
  t.equal(field('Package'), INIT_PACKAGE);
  t.equal(field('Version'), '9.8.7');
  t.equal(field('Architecture'), 'amd64');
  t.equal(controlText('aarch64', 1).match(/^Architecture: (.*)$/m)?.[1], 'arm64');
  t.equal(field('Installed-Size'), '1234');
  t.equal(field('Provides'), `runit (= ${DEBIAN_RUNIT_VERSION}), runit-run (= ${DEBIAN_RUNIT_VERSION}), runit-init (= ${DEBIAN_RUNIT_VERSION})`);
  const conflicts = field('Conflicts')!.split(', ');
  for (const p of ['runit', 'runit-run', 'runit-init', 'systemd-sysv', 'sysvinit-core', 'runit-ts']) t.ok(conflicts.includes(p), `Conflicts: ${p}`);
  t.same(field('Replaces')!.split(', ').sort(), [...conflicts].sort(), 'Replaces what it conflicts with');
  t.match(field('Depends')!, /runit-helper \(>= 2\.14\.0~\)/, 'runit-helper: its postinst runs it');
  t.match(field('Depends')!, /\bpasswd\b/, 'passwd: useradd for _runit-log');
  t.match(c, /\nDescription: [^\n]+\n( [^\n]+\n)+$/, 'last, a description with an extended part');
});

t.test("package: entries at Debian's paths, fixed modes", async (t) => {
  const entries = packageEntries(fakeBin());
  const at = (p: string) => entries.find((e) => e.path === p);
  const target = (p: string) => at(p)?.target;
  t.same(at('usr/lib/runit-ts/runit-ts') && { type: at('usr/lib/runit-ts/runit-ts')!.type, mode: at('usr/lib/runit-ts/runit-ts')!.mode }, { type: 'file', mode: 0o755 }, 'the executable, 0755 whatever its mode in binDir');
  t.equal(at('usr/lib/runit-ts/runit-ts.node')?.mode, 0o644, 'the addon');
  t.equal(at('sbin/runit')?.mode, 0o755, 'the C PID 1 at /sbin/runit');
  t.equal(entryData(at('sbin/runit')!).toString(), 'runit bytes', 'from binDir');
  for (const p of ['usr/bin/sv', 'usr/bin/runsv', 'usr/bin/runsvdir', 'usr/bin/svlogd', 'usr/bin/chpst', 'usr/bin/runit-ts', 'usr/sbin/runsvchdir', 'usr/sbin/utmpset'])
    t.equal(target(p), '../lib/runit-ts/runit-ts', `${p}: Debian's path, the executable`);
  for (const p of ['sbin/runit-init', 'sbin/init', 'etc/runit/1', 'etc/runit/2', 'etc/runit/3', 'etc/runit/ctrlaltdel'])
    t.equal(target(p), '/usr/lib/runit-ts/runit-ts', p);
  t.same(Object.keys(DEB_APPLET_LINKS).map((p) => p.split('/').pop()).filter((n) => ['envdir', 'envuidgid', 'setuidgid', 'softlimit', 'setlock', 'pgrphack'].includes(n!)), [], "no chpst alias: Debian's runit ships none, daemontools has those names");
  for (const p of ['sbin/halt', 'sbin/poweroff', 'sbin/reboot', 'sbin/shutdown']) t.equal(target(p), '/lib/runit/shutdown', p);
  t.equal(target('etc/service'), 'runit/runsvdir/current', "/etc/service, as Debian's");
  t.notOk(at('etc/runit/runsvdir/current'), 'current is no file of the package (postinst makes it; runsvchdir moves it)');
  t.equal(at('etc/runit/runsvdir/default')?.type, 'dir');
  t.equal(target('etc/sv/default-syslog/supervise'), '/run/runit/supervise/default-syslog');
  t.equal(target('etc/runit/runsvdir/single/sulogin/supervise'), '/run/runit/supervise/sulogin');
  for (const p of ['lib/runit/invoke-run', 'lib/runit/finish-exec', 'lib/runit/sv_wtime', 'lib/runit/trigger_sv', 'lib/runit/make_svlinks', 'usr/bin/cpsv', 'etc/sv/default-syslog/run', 'etc/sv/default-syslog/check', 'etc/sv/svlogd/run', 'etc/runit/runsvdir/single/sulogin/run'])
    t.equal(at(p)?.mode, 0o755, `${p}: a script, 0755`);
  const programs = new Set(['usr/lib/runit-ts/runit-ts', 'sbin/runit']);
  const bad = entries.filter((e) => !programs.has(e.path)).filter((e) => (e.type === 'dir' && e.mode !== 0o755) || (e.type === 'file' && e.mode !== (entryData(e).subarray(0, 2).toString() === '#!' ? 0o755 : 0o644)));
  t.same(bad.map((e) => `${e.path} ${e.mode.toString(8)}`), [], 'beside the programs, every directory 0755, every file 0755 (#!) or 0644');
  t.same(entries.map((e) => e.path), [...entries.map((e) => e.path)].sort(), 'sorted, parents first');
  t.same(conffiles(entries), ['/etc/runit/runsvdir/single/sulogin/run', '/etc/sv/default-syslog/check', '/etc/sv/default-syslog/run', '/etc/sv/svlogd/run'], 'the /etc files are conffiles (links cannot be)');
  const sums = md5sums(entries);
  t.match(sums, /^[0-9a-f]{32} {2}usr\/lib\/runit-ts\/runit-ts$/m, 'md5sums has the executable');
  t.notMatch(sums, /etc\//, 'but no conffile (as dh_md5sums)');
  const small: Entry[] = [{ path: 'a', type: 'dir', mode: 0o755 }, { path: 'a/b', type: 'file', mode: 0o644, data: Buffer.alloc(1025) }, { path: 'a/c', type: 'file', mode: 0o644, data: Buffer.alloc(0) }, { path: 'a/d', type: 'symlink', mode: 0o777, target: 'b' }];
  t.equal(installedSizeKiB(small), 1 + 2 + 1 + 1, "dpkg-gencontrol's count: KiB rounded up per file, 1 for anything else");
});

t.test('package: every script is POSIX sh that dash reads', async (t) => {
  const scripts: string[] = [];
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile() && readFileSync(p, 'utf8').startsWith('#!/bin/sh')) scripts.push(p);
    }
  };
  walk(PACKAGE_SOURCE);
  t.ok(scripts.length >= 14, `${scripts.length} scripts`);
  for (const s of scripts) {
    const r = await execa('dash', ['-n', s], { reject: false });
    t.equal(r.exitCode, 0, `${s.slice(PACKAGE_SOURCE.length + 1)}: dash -n ${r.stderr}`);
    t.match(readFileSync(s, 'utf8').split('\n')[1] ?? '', /^# /, `${s.slice(PACKAGE_SOURCE.length + 1)} opens with a comment`);
  }
});
