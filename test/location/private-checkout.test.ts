// The tests hold wherever the checkout lives. A copy of this working tree (what
// `git ls-files` lists, edits included) goes into a mode-0700 directory, as a clone into
// `mktemp -d` or /root would be, with the built executables copied into its out/; the host
// suites that run something as another user then run from there. Anything they start as
// that user through the checkout (instead of test/lib/host.ts's publicBin) fails, since
// the user cannot enter the directory.
//
// Needs root (the suites switch users) and a build: RUNIT_TS_BIN (make test-location sets
// it) names the executable, with runit-ts.node and runit beside it.
import t from 'tap';
import { chmodSync, constants, copyFileSync, cpSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { execa } from 'execa';
import { BIN, repo } from '../lib/host.ts';

/** A suite runs something as another user if it switches users (or names nobody) or uses the public copy. */
const AS_ANOTHER_USER = /publicBin\(|setpriv|setuidgid|--reuid|['"]nobody['"]|\b65534\b/;

if (process.getuid?.() !== 0) t.fail('needs root: the suites it runs switch users');
if (!existsSync(BIN)) t.fail(`${BIN} is missing: run make build`);

const hostDir = join(repo, 'test', 'host');
const suites = readdirSync(hostDir)
  .filter((f) => f.endsWith('.test.ts') && AS_ANOTHER_USER.test(readFileSync(join(hostDir, f), 'utf8')))
  .sort();
t.comment(`suites run from a private checkout: ${suites.join(' ')}`);
t.ok(suites.includes('chpst.test.ts') && suites.includes('runsvdir.test.ts'), 'the selection finds the suites known to switch users');

const priv = mkdtempSync(join(tmpdir(), 'runit-ts-private-'));
t.teardown(() => rmSync(priv, { recursive: true, force: true }));
chmodSync(priv, 0o700);
const checkout = join(priv, 'runit-ts');

t.test('copy the working tree and the built executables into a 0700 directory', async (t) => {
  const listed = await execa('git', ['-C', repo, 'ls-files', '-z', '--cached', '--others', '--exclude-standard']);
  const files = listed.stdout.split('\0').filter((f) => f !== '' && existsSync(join(repo, f)));
  t.ok(files.includes('Makefile') && files.includes('test/lib/host.ts'), `${files.length} files listed`);
  for (const f of files) {
    mkdirSync(dirname(join(checkout, f)), { recursive: true });
    if (lstatSync(join(repo, f)).isSymbolicLink()) cpSync(join(repo, f), join(checkout, f), { verbatimSymlinks: true });
    else copyFileSync(join(repo, f), join(checkout, f)); // the mode comes along
  }
  // the packages are only read by the test runner (root): link them rather than install
  symlinkSync(join(repo, 'node_modules'), join(checkout, 'node_modules'));
  const out = join(checkout, 'out', basename(dirname(BIN)));
  mkdirSync(out, { recursive: true });
  for (const f of ['runit-ts', 'runit-ts.node', 'runit']) copyFileSync(join(dirname(BIN), f), join(out, f), constants.COPYFILE_FICLONE);
  t.equal(statSync(priv).mode & 0o777, 0o700, 'the directory above the checkout is 0700');
  const peek = await execa('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', 'test', '-x', join(out, 'runit-ts')], { reject: false });
  t.not(peek.exitCode, 0, 'nobody cannot reach the executable in the checkout');
});

t.test('the host suites that switch users pass from there', async (t) => {
  // the runner's own settings must not leak into the inner run
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !/^(_?TAP|NODE_OPTIONS$|RUNIT_TS_(BIN|PID1|ADDON)$)/.test(k)) env[k] = v;
  const out = join(checkout, 'out', basename(dirname(BIN)));
  env.RUNIT_TS_BIN = join(out, 'runit-ts');
  env.RUNIT_TS_PID1 = join(out, 'runit');
  const r = await execa(process.execPath, [join(checkout, 'node_modules', '.bin', 'tap'), ...suites.map((s) => join('test', 'host', s))], {
    cwd: checkout,
    env,
    extendEnv: false,
    all: true,
    reject: false,
    stdin: 'ignore',
  });
  const summary = /^# \{ total: \d+, pass: \d+.*\}$/m.exec(r.all)?.[0] ?? '(no summary)';
  t.comment(summary);
  if (r.exitCode !== 0) {
    // what failed, with a little context each
    const lines = r.all.split('\n');
    const failed = lines.flatMap((l, i) => (/^\s*not ok /.test(l) ? lines.slice(i, i + 30) : []));
    t.comment(failed.slice(0, 400).join('\n'));
  }
  t.equal(r.exitCode, 0, `tap ${suites.join(' ')} in ${checkout}`);
  t.match(summary, /pass: [1-9]/, 'the suites ran');
});
