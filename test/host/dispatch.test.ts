// The built executable answers --help for every applet, called by a symlink named after
// the applet and as `runit-ts APPLET`: exit 0, nothing on stderr, a usage line naming
// the applet (runit-init's is runit's "usage: init 0|6", the stages' their path).
// The other arch's executable the same, under qemu-user: nothing on stderr also means its V8
// code cache (made by that arch's Node at build time) was accepted, since V8 warns on
// stderr when it rejects one.
import t from 'tap';
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { execa } from 'execa';
import { APPLETS } from '../../src/main.ts';
import { libEntries } from '../../image/rootfs.ts';
import { qemuUser, requireHostArch } from '../../src/lib/platform.ts';
import { BIN, haveBin, repo } from '../lib/host.ts';

if (!haveBin()) t.fail(`${BIN} is missing: run make build`);

const dir = mkdtempSync(join(tmpdir(), 'runit-ts-dispatch-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

/** the name the usage line starts with */
const usageName = (applet: string) => (applet === 'runit-init' ? 'init' : /^(\d|ctrlaltdel)$/.test(applet) ? `/etc/runit/${applet}` : applet);
const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

const names = Object.keys(APPLETS);
t.ok(names.length >= 19, `${names.length} applets`);

for (const applet of names) {
  t.test(applet, async (t) => {
    const link = join(dir, applet);
    symlinkSync(BIN, link);
    const usage = new RegExp(`^usage: ${escape(usageName(applet))}( |$)`);
    for (const [how, cmd, args] of [
      ['by its name', link, ['--help']],
      ['as runit-ts APPLET', BIN, [applet, '--help']],
    ] as const) {
      const r = await execa(cmd, args, { reject: false, stdin: 'ignore' });
      t.equal(r.exitCode, 0, `${how}: exit 0`);
      t.equal(r.stderr, '', `${how}: nothing on stderr`);
      t.match(r.stdout.split('\n')[0], usage, `${how}: ${r.stdout.split('\n')[0]}`);
    }
  });
}

const other = requireHostArch() === 'aarch64' ? 'x86_64' : 'aarch64';
t.test(`${other}: every applet's --help under qemu-${other}-static, nothing on stderr`, async (t) => {
  const bin = join(repo, 'out', other, 'runit-ts');
  if (!existsSync(bin)) return t.fail(`${bin} is missing: run make out/${other}/runit-ts`);
  // the loader and libraries the image gives Node, where qemu-user's -L finds them
  const root = join(dir, `sysroot-${other}`);
  for (const e of libEntries(other)) {
    const p = join(root, e.path);
    mkdirSync(dirname(p), { recursive: true });
    if (e.type === 'symlink') symlinkSync(e.target!, p);
    else writeFileSync(p, typeof e.data === 'function' ? e.data() : e.data!);
  }
  const links = join(dir, other);
  mkdirSync(links);
  for (const applet of names) {
    symlinkSync(bin, join(links, applet));
    const r = await execa(qemuUser(other), ['-L', root, join(links, applet), '--help'], { reject: false, stdin: 'ignore', timeout: 60_000 });
    t.equal(r.exitCode, 0, `${applet}: exit 0`);
    t.equal(r.stderr, '', `${applet}: nothing on stderr`);
    t.match(r.stdout.split('\n')[0], new RegExp(`^usage: ${escape(usageName(applet))}( |$)`), `${applet}: ${r.stdout.split('\n')[0]}`);
  }
});

t.test('runit-ts --help lists the applets', async (t) => {
  const r = await execa(BIN, ['--help'], { reject: false });
  t.equal(r.exitCode, 0);
  for (const applet of names.filter((a) => !/^\d$/.test(a))) t.match(r.stdout, new RegExp(`[ ,]${escape(applet)}[,\\n]`), applet);
  const none = await execa(BIN, [], { reject: false });
  t.equal(none.exitCode, 100, 'no applet: usage, exit 100');
  t.equal(none.stdout, r.stdout);
});
