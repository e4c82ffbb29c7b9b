// The built executable answers --help for every applet, called by a symlink named after
// the applet and as `runit-ts APPLET`: exit 0, nothing on stderr, a usage line naming
// the applet (runit-init's is runit's "usage: init 0|6", the stages' their path).
import t from 'tap';
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { APPLETS } from '../../src/main.ts';
import { BIN, haveBin } from '../lib/host.ts';

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

t.test('runit-ts --help lists the applets', async (t) => {
  const r = await execa(BIN, ['--help'], { reject: false });
  t.equal(r.exitCode, 0);
  for (const applet of names.filter((a) => !/^\d$/.test(a))) t.match(r.stdout, new RegExp(`[ ,]${escape(applet)}[,\\n]`), applet);
  const none = await execa(BIN, [], { reject: false });
  t.equal(none.exitCode, 100, 'no applet: usage, exit 100');
  t.equal(none.stdout, r.stdout);
});
