// runit-init outside PID 1: the usage message for a bad argument, as runit's runit-init
// prints it (strerr_die4x(0, "usage: ", progname, " 0|6", "\n"): the line, then a blank
// line, exit 0). Debian ships runit-init in a package of its own, which the tests do not
// fetch, so the expected text is written out here.
import t from 'tap';
import { execa } from 'execa';
import { BIN, haveBin, tree } from '../lib/host.ts';

if (!haveBin()) t.fail(`${BIN} is missing: run make build`);

t.test('a bad argument: the usage line and a blank line, exit 0', async (t) => {
  const tr = tree('init-');
  t.teardown(tr.cleanup);
  const init = tr.our('runit-init');
  for (const args of [['5'], ['x'], []]) {
    const r = await execa(init, args, { reject: false, stripFinalNewline: false });
    t.same([r.exitCode, r.stdout, r.stderr], [0, '', `usage: ${init} 0|6\n\n`], `runit-init ${args.join(' ')}`);
  }
  const v = await execa(init, ['-V'], { reject: false, stripFinalNewline: false });
  t.match(v.stderr, /^\$Id: .*\$\nusage: .* 0\|6\n\n$/, '-V: the version, then the usage');
});
