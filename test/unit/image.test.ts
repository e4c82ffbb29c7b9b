import t from 'tap';
import { sortEntries, type Entry } from '../../src/lib/entry.ts';
import { cpioBuffer } from '../../src/lib/cpio.ts';
import { loadOrder, moduleName, parseModulesDep } from '../../stages/stage1.ts';
import { join } from 'node:path';
import { execa } from 'execa';
import { requireInput } from '../../image/inputs.ts';

/** Parse a newc archive back (the kernel's view) to check what we wrote. */
function parseNewc(b: Buffer) {
  const out: Array<{ name: string; mode: number; size: number; mtime: number; uid: number; rmaj: number; rmin: number; data: Buffer }> = [];
  let o = 0;
  for (;;) {
    t.equal(b.toString('ascii', o, o + 6), '070701', 'magic');
    const f = (i: number) => parseInt(b.toString('ascii', o + 6 + i * 8, o + 14 + i * 8), 16);
    const namesize = f(11);
    const size = f(6);
    const name = b.toString('utf8', o + 110, o + 110 + namesize - 1);
    let p = o + 110 + namesize;
    p += (4 - (p % 4)) % 4;
    const data = b.subarray(p, p + size);
    p += size;
    p += (4 - (p % 4)) % 4;
    if (name === 'TRAILER!!!') break;
    out.push({ name, mode: f(1), size, mtime: f(5), uid: f(2), rmaj: f(9), rmin: f(10), data });
    o = p;
  }
  return out;
}

t.test('cpio newc: parents first, sorted, fixed metadata, devices and links', async (t) => {
  const entries: Entry[] = [
    { path: 'etc/runit/1', type: 'symlink', mode: 0o777, target: '/usr/lib/runit-ts/runit-ts' },
    { path: 'bin/busybox', type: 'file', mode: 0o755, data: Buffer.from('abcde') },
    { path: 'dev/console', type: 'char', mode: 0o600, major: 5, minor: 1 },
  ];
  const got = parseNewc(cpioBuffer(entries, 1234));
  t.same(got.map((e) => e.name), ['bin', 'bin/busybox', 'dev', 'dev/console', 'etc', 'etc/runit', 'etc/runit/1']);
  const bb = got.find((e) => e.name === 'bin/busybox')!;
  t.equal(bb.mode, 0o100755);
  t.equal(bb.data.toString(), 'abcde');
  t.equal(bb.mtime, 1234);
  t.equal(bb.uid, 0);
  const con = got.find((e) => e.name === 'dev/console')!;
  t.equal(con.mode, 0o020600);
  t.same([con.rmaj, con.rmin], [5, 1]);
  const link = got.find((e) => e.name === 'etc/runit/1')!;
  t.equal(link.mode, 0o120777);
  t.equal(link.data.toString(), '/usr/lib/runit-ts/runit-ts');
  t.same(cpioBuffer(entries, 1234), cpioBuffer([...entries].reverse(), 1234), 'byte-identical whatever the input order');
});

t.test('later entries override earlier ones', async (t) => {
  const s = sortEntries([
    { path: 'a', type: 'file', mode: 0o644, data: Buffer.from('1') },
    { path: '/a/', type: 'file', mode: 0o600, data: Buffer.from('2') },
  ]);
  t.equal(s.length, 1);
  t.equal(s[0]!.mode, 0o600);
});

t.test('modules.dep and load order', async (t) => {
  const dep = parseModulesDep(
    'kernel/fs/ext4/ext4.ko: kernel/fs/jbd2/jbd2.ko kernel/fs/mbcache.ko kernel/lib/crc16.ko\n' +
      'kernel/fs/jbd2/jbd2.ko:\nkernel/fs/mbcache.ko:\nkernel/lib/crc16.ko:\nkernel/drivers/virtio/virtio_input.ko:\n',
  );
  t.equal(moduleName('kernel/drivers/net/virtio-net.ko.xz'), 'virtio_net');
  const { order, missing } = loadOrder(['ext4', 'virtio-input', 'nope', 'crc16'], dep);
  t.same(missing, ['nope']);
  t.same(order, ['kernel/lib/crc16.ko', 'kernel/fs/mbcache.ko', 'kernel/fs/jbd2/jbd2.ko', 'kernel/fs/ext4/ext4.ko', 'kernel/drivers/virtio/virtio_input.ko']);
  // a dependency of a dependency listed after it: still loaded first
  const net = parseModulesDep('n/virtio_net.ko: n/net_failover.ko n/failover.ko\nn/failover.ko:\nn/net_failover.ko: n/failover.ko\n');
  t.same(loadOrder(['virtio_net'], net).order, ['n/failover.ko', 'n/net_failover.ko', 'n/virtio_net.ko']);
  const net2 = parseModulesDep('n/virtio_net.ko: n/failover.ko n/net_failover.ko\nn/failover.ko:\nn/net_failover.ko: n/failover.ko\n');
  t.same(loadOrder(['virtio_net'], net2).order, ['n/failover.ko', 'n/net_failover.ko', 'n/virtio_net.ko'], 'whatever the order of the line');
});

t.test('every applet has a link in the image', async (t) => {
  const { APPLETS } = await import('../../src/main.ts');
  const { APPLET_LINKS } = await import('../../image/rootfs.ts');
  const linked = new Set(Object.values(APPLET_LINKS));
  for (const name of Object.keys(APPLETS)) t.ok(linked.has(name), `${name} is linked`);
});

t.test('runlevels and the catalogue in the image entries', async (t) => {
  const { serviceEntries, imageModules, DEFAULT_SERVICES } = await import('../../image/rootfs.ts');
  const find = (e: Entry[], p: string) => e.find((x) => x.path === p);
  let e = serviceEntries({ arch: 'x86_64' });
  t.same(find(e, 'etc/service'), { path: 'etc/service', type: 'symlink', mode: 0o777, target: '/etc/runit/runsvdir/current' });
  t.equal(find(e, 'etc/runit/runsvdir/current')?.target, 'default');
  for (const s of DEFAULT_SERVICES) t.equal(find(e, `etc/runit/runsvdir/default/${s}`)?.target, `/etc/sv/${s}`, `${s} in default`);
  t.equal(find(e, 'etc/runit/runsvdir/single/shell')?.target, '/etc/sv/shell', 'single has the shell');
  t.match(find(e, 'etc/shadow')?.data?.toString(), /^root:\*:/, 'root locked without a login');
  t.ok(find(e, 'etc/sv/syslogd/log/run'), 'logged');
  t.ok(imageModules({ arch: 'x86_64' }).includes('virtio_net'), 'the network service brings its NIC driver');
  t.notOk(imageModules({ arch: 'x86_64', services: ['shell'] }).includes('virtio_net'));
  t.throws(() => serviceEntries({ arch: 'x86_64', services: ['getty'] }), /getty needs login/);
  e = serviceEntries({ arch: 'aarch64', services: ['getty', 'crond'], login: { password: 'pw' }, cron: ['* * * * * true'] });
  const hash = /^root:(\$6\$[^:]+):/.exec(String(find(e, 'etc/shadow')?.data))?.[1];
  t.ok(hash, 'a SHA-512 crypt hash');
  const again = await execa(join(requireInput('busybox-x86_64'), 'bin', 'busybox'), ['mkpasswd', '-m', 'sha512', 'pw', hash!.split('$')[2]!]);
  t.equal(again.stdout, hash, 'of the password given');
  t.equal(find(e, 'var/spool/cron/crontabs/root')?.data?.toString(), '* * * * * true\n', 'root\'s crontab');
  t.ok(find(serviceEntries({ arch: 'x86_64', services: ['ntp'] }), 'etc/sv/ntp/down'), 'ntp without a server: down');
  e = serviceEntries({ arch: 'x86_64', services: ['ntp'], ntp: { server: 'time.example:123' } });
  t.equal(find(e, 'etc/sv/ntp/server')?.data?.toString(), 'time.example:123\n', 'ntp: the server from the spec');
  t.notOk(find(e, 'etc/sv/ntp/down'), 'and started');
  e = serviceEntries({ arch: 'aarch64', services: ['getty'], login: { autologin: 'root' } });
  t.equal(find(e, 'etc/sv/getty/autologin')?.data?.toString(), 'root\n');
});

t.test('password hashes: random salt, or reproducible with SOURCE_DATE_EPOCH', async (t) => {
  const { hashPassword } = await import('../../image/rootfs.ts');
  const saved = process.env.SOURCE_DATE_EPOCH;
  t.teardown(() => {
    if (saved === undefined) delete process.env.SOURCE_DATE_EPOCH;
    else process.env.SOURCE_DATE_EPOCH = saved;
  });
  delete process.env.SOURCE_DATE_EPOCH;
  t.not(hashPassword('pw'), hashPassword('pw'), 'two salts');
  process.env.SOURCE_DATE_EPOCH = '0';
  t.equal(hashPassword('pw'), hashPassword('pw'), 'the same hash');
  t.not(hashPassword('pw'), hashPassword('pw2'));
});

t.test('supervise links of a container image: into container-init\'s state, or where Debian keeps its own on a Debian base', async (t) => {
  const { superviseLinks } = await import('../../image/rootfs.ts');
  const file = (path: string) => ({ path, type: 'file' as const, mode: 0o755, data: Buffer.alloc(0) });
  const entries = [file('etc/sv/web/run'), file('etc/sv/web/log/run'), file('etc/sv/cron/run'), { path: 'etc/sv/cron/supervise', type: 'symlink' as const, mode: 0o777, target: '/run/runit/supervise/cron' }];
  const links = (debian: boolean) => Object.fromEntries(superviseLinks(entries, debian).map((e) => [e.path, e.target]));
  t.same(links(false), { 'etc/sv/web/supervise': '/run/runit-ts/supervise/web', 'etc/sv/web/log/supervise': '/run/runit-ts/supervise/web.log' }, 'busybox base: container-init\'s state directory; a link already there is kept');
  t.same(links(true), { 'etc/sv/web/supervise': '/run/runit/supervise/web', 'etc/sv/web/log/supervise': '/run/runit/supervise/web.log' }, 'Debian base: /run/runit/supervise, which its stage 2 makes at boot');
});
