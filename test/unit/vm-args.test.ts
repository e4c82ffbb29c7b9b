// runit-ts-vm's command line: run/test/shell options, shares, the command after `--`, and
// one usage line (quoting the bad value, exit code 64) for every bad input, from the CLI too.
import t, { type Test } from 'tap';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { parseRunArgs, parseShare, parseShellArgs, parseTestArgs, withCwdShare, DEFAULT_TIMEOUT_S } from '../../src/vm/args.ts';
import { EXIT, VmError } from '../../src/vm/errors.ts';
import { hostArch } from '../../src/lib/platform.ts';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const dir = mkdtempSync(join(tmpdir(), 'runit-ts-vm-args-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const kernel = join(dir, 'bzImage');
writeFileSync(kernel, 'not really a kernel');

/** The usage error a call throws (or fails the test). */
function usage(t: Test, f: () => unknown): string {
  try {
    f();
  } catch (e) {
    t.ok(e instanceof VmError && e.kind === 'usage', 'a usage error');
    return (e as Error).message;
  }
  t.fail('no error thrown');
  return '';
}

t.test('run: the command after --, defaults, the working directory shared read-only', async (t) => {
  const a = parseRunArgs(['--', 'sh', '-c', 'echo "a b"; exit 3'], dir);
  t.equal(a.help, false);
  const r = a.request!;
  t.strictSame(r.command, ['sh', '-c', 'echo "a b"; exit 3'], 'options after -- belong to the command');
  t.equal(r.arch, hostArch());
  t.equal(r.timeout, DEFAULT_TIMEOUT_S);
  t.equal(r.snapshot, false);
  t.equal(r.cwd, dir);
  t.strictSame(r.shares, [{ host: dir, guest: dir, rw: false }]);
  const b = parseRunArgs(['--arch', 'arm64', '--timeout', '2.5', '--snapshot', '--share', '.,rw', '--share', `${dir}:/mnt/x`, '--', 'true'], dir).request!;
  t.equal(b.arch, 'aarch64', 'arm64 is aarch64');
  t.equal(b.timeout, 2.5);
  t.equal(b.snapshot, true);
  t.strictSame(b.shares, [{ host: dir, guest: dir, rw: true }, { host: dir, guest: '/mnt/x', rw: false }], '.,rw replaces the default share');
  const c = parseRunArgs(['--no-cwd-share', 'true'], dir).request!;
  t.strictSame(c.shares, []);
  t.equal(c.cwd, '/', 'no share: the command runs in /');
  t.strictSame(c.command, ['true'], 'without --, the positionals are the command');
  t.equal(parseRunArgs(['--help'], dir).help, true);
});

t.test('run: bad input is one usage line quoting the value', async (t) => {
  t.match(usage(t, () => parseRunArgs(['--arch', 'mips', '--', 'true'], dir)), /unknown architecture 'mips'/);
  t.match(usage(t, () => parseRunArgs(['--kernel', join(dir, 'nope'), '--', 'true'], dir)), /--kernel '.*nope' does not exist/);
  t.match(usage(t, () => parseRunArgs(['--image', kernel, '--', 'true'], dir)), /--image '.*bzImage' is not a directory/);
  t.match(usage(t, () => parseRunArgs(['--share', '/no/such/dir', '--', 'true'], dir)), /share '\/no\/such\/dir' does not exist/);
  t.match(usage(t, () => parseRunArgs(['--share', `${dir}:relative`, '--', 'true'], dir)), /guest path 'relative' must be absolute/);
  t.match(usage(t, () => parseRunArgs(['--share', `${dir},bogus,rw`, '--', 'true'], dir)), /bad share '.*,bogus,rw'/);
  t.match(usage(t, () => parseRunArgs(['--timeout', 'soon', '--', 'true'], dir)), /--timeout 'soon' is not a number of seconds/);
  t.match(usage(t, () => parseRunArgs(['--memory', '0', '--', 'true'], dir)), /--memory '0' is not a positive integer/);
  t.match(usage(t, () => parseRunArgs(['--bogus', '--', 'true'], dir)), /Unknown option '--bogus'/);
  t.match(usage(t, () => parseRunArgs([], dir)), /no command given/);
  t.match(usage(t, () => parseRunArgs(['extra', '--', 'true'], dir)), /unexpected argument 'extra'/);
  t.match(usage(t, () => parseRunArgs(['--kernel', kernel, '--initrd', kernel, '--', 'true'], dir)), /run needs the harness initramfs/);
  t.match(usage(t, () => parseRunArgs(['--initrd', kernel, '--', 'true'], dir)), /--initrd '.*' needs --kernel/);
  t.match(usage(t, () => parseRunArgs(['--image', dir, '--disk', kernel, '--', 'true'], dir)), /--image and --disk cannot be given together/);
  t.match(usage(t, () => parseRunArgs(['--share', `${dir}:/m`, '--share', `${dir}:/m`, '--', 'true'], dir)), /two shares are mounted at '\/m'/);
});

t.test('shares: HOST[:GUEST][,rw|,ro]', async (t) => {
  t.strictSame(parseShare('.', dir), { host: dir, guest: dir, rw: false });
  t.strictSame(parseShare('.:/data,rw', dir), { host: dir, guest: '/data', rw: true });
  t.strictSame(parseShare(`${dir},ro`, '/'), { host: dir, guest: dir, rw: false });
  t.strictSame(withCwdShare([{ host: dir, guest: '/x', rw: true }], dir).map((s) => s.guest), [dir, '/x'], 'the cwd share comes first');
});

t.test('test and shell', async (t) => {
  const cfg = join(dir, 'vm.yaml');
  writeFileSync(cfg, 'targets: []\n');
  t.strictSame(parseTestArgs([cfg, '--jobs', '3', '--junit', 'out.xml', '--filter', 'x']), { help: false, config: cfg, jobs: 3, junit: resolve('out.xml'), filter: 'x' });
  t.match(usage(t, () => parseTestArgs([])), /no CONFIG file given/);
  t.match(usage(t, () => parseTestArgs([join(dir, 'missing.yaml')])), /config '.*missing.yaml' does not exist/);
  t.match(usage(t, () => parseTestArgs([cfg, '--jobs', 'many'])), /--jobs 'many' is not a positive integer/);
  const s = parseShellArgs(['--kernel', kernel, '--initrd', kernel], dir);
  t.strictSame(s.shares, [], 'a user initramfs gets no default share');
  t.equal(parseShellArgs(['-h'], dir).help, true);
});

t.test('the CLI: --help on every subcommand, exit 64 and one line for bad input', async (t) => {
  const cli = join(repo, 'scripts', 'runit-ts-vm');
  for (const sub of [[], ['run'], ['test'], ['shell']]) {
    const r = await execa(cli, [...sub, '--help'], { reject: false });
    t.equal(r.exitCode, 0, `${sub.join(' ') || '(top)'} --help exits 0`);
    t.match(r.stdout, /usage: runit-ts-vm/);
  }
  const top = await execa(cli, ['--help'], { reject: false });
  for (const code of Object.values(EXIT)) t.match(top.stdout, new RegExp(`\\b${code}\\b`), `--help documents exit code ${code}`);
  const bad = await execa(cli, ['run', '--arch', 'sparc', '--', 'true'], { reject: false });
  t.equal(bad.exitCode, EXIT.usage);
  t.equal(bad.stderr, "runit-ts-vm: unknown architecture 'sparc' (expected x86_64 or aarch64)", 'exactly one line');
  const sub = await execa(cli, ['frobnicate'], { reject: false });
  t.equal(sub.exitCode, EXIT.usage);
  t.match(sub.stderr, /unknown subcommand 'frobnicate'/);
});

t.test('run --log-dir is resolved and left out of the command', async (t) => {
  const a = parseRunArgs(['--log-dir', 'logs', '--', 'echo', '--log-dir', 'x'], dir);
  t.equal(a.logDir, join(dir, 'logs'));
  t.strictSame(a.request!.command, ['echo', '--log-dir', 'x']);
});
