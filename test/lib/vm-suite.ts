// runit-ts-vm (scripts/runit-ts-vm) on one arch, as a CI user runs it: exit code and streams
// apart, a read-write share written by the guest and the read-only default share refused,
// --timeout, a kernel panic, `test CONFIG` with TAP and JUnit, --snapshot restoring, and
// Debian's kernel package given as a user's own kernel (its modules appended). One cold boot
// saves a snapshot that the other runs restore (same shares, so the same snapshot); the
// snapshots and logs live in this process's temporary folder ($TMPDIR of the runs).
import t from 'tap';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import type { Arch } from '../../src/lib/platform.ts';
import { EXIT } from '../../src/vm/errors.ts';
import { CACHE, processTempDir, repo } from './host.ts';

/** ms one runit-ts-vm run may take here (a cold TCG boot under load, plus saving a snapshot). */
const RUN_TIMEOUT_MS = 300_000;

export function vmSuite(arch: Arch): void {
  const image = join(repo, 'out', 'harness', arch, 'initramfs.img');
  if (!existsSync(image)) {
    t.fail(`out/harness/${arch}/initramfs.img is missing: run make vm-image ARCH=${arch}`);
    return;
  }
  const cli = join(repo, 'scripts', 'runit-ts-vm');
  const tmp = processTempDir('runit-ts-vm-');
  const work = join(tmp, 'work');
  const rw = join(tmp, 'rw');
  const state = join(tmp, 'state');
  for (const d of [work, rw, state]) mkdirSync(d);
  writeFileSync(join(work, 'input.txt'), 'from the host\n');
  // every run: the work folder as cwd (shared read-only by default) and rw shared writable
  const shares = ['--share', `${rw},rw`];
  const env = { TMPDIR: state };
  let n = 0;
  /** Runs runit-ts-vm with its console logs in a folder of their own; returns the result and that folder. */
  const vm = async (args: string[]) => {
    const logs = join(tmp, `logs-${++n}`);
    const r = await execa(cli, args[0] === 'run' ? ['run', '--log-dir', logs, ...args.slice(1)] : args, { cwd: work, env, reject: false, timeout: RUN_TIMEOUT_MS, stripFinalNewline: false });
    return { ...r, logs };
  };
  const run = (extra: string[], command: string[]) => vm(['run', '--arch', arch, '-v', '--snapshot', ...shares, ...extra, '--', ...command]);

  t.test('exit code, stdout and stderr apart, the rw share written, the default share read-only (cold boot, snapshot saved)', async (t) => {
    const r = await run([], ['sh', '-c', `cat input.txt; echo err >&2; pwd >&2; echo from-guest > ${rw}/out.txt; touch ro-probe 2>/dev/null && echo ro-share-writable; exit 7`]);
    t.equal(r.exitCode, 7, 'the command\'s exit code');
    t.equal(r.stdout, 'from the host\n', 'stdout only has stdout (a file of the cwd share read)');
    t.match(r.stderr, /^err\n/, 'stderr has stderr');
    t.match(r.stderr, `${work}\n`, 'the cwd is the host\'s, at its own path');
    t.match(r.stderr, /runit-ts-vm: cold boot, snapshot saved/);
    t.equal(readFileSync(join(rw, 'out.txt'), 'utf8'), 'from-guest\n', 'a file written in the rw share is on the host');
    t.notOk(existsSync(join(work, 'ro-probe')), 'the default share is read-only');
  });

  t.test('--snapshot restores the saved VM', async (t) => {
    const r = await run([], ['sh', '-c', 'echo restored']);
    t.equal(r.exitCode, 0);
    t.equal(r.stdout, 'restored\n');
    t.match(r.stderr, /runit-ts-vm: restored from snapshot: ready in [\d.]+ s, done in ([\d.]+) s/);
    t.comment(`figure: ${arch} runit-ts-vm run --snapshot -- echo: ${/done in ([\d.]+) s/.exec(r.stderr)?.[1]} s`);
  });

  t.test('a command that cannot start: 127 (not found) and 126 (not executable), as in a shell', async (t) => {
    const missing = await run([], ['no-such-command']);
    t.equal(missing.exitCode, 127);
    t.match(missing.stderr, /^no-such-command: not found\n/);
    const noexec = await run([], ['./input.txt']);
    t.equal(noexec.exitCode, 126);
    t.match(noexec.stderr, /^\.\/input\.txt: permission denied\n/);
  });

  t.test('--timeout: its own exit code and one line', async (t) => {
    const r = await run(['--timeout', '1'], ['sleep', '100']);
    t.equal(r.exitCode, EXIT.timeout);
    const lines = r.stderr.split('\n').filter((l) => l.startsWith('runit-ts-vm: the'));
    t.equal(lines.length, 1);
    t.match(lines[0], /^runit-ts-vm: the command timed out after 1 s \(console log: .*\.console\.log\)$/);
    t.equal(readdirSync(r.logs).filter((f) => f.endsWith('.console.log')).length, 1, 'the console log is kept');
  });

  t.test('a kernel panic: its own exit code and one line', async (t) => {
    const r = await run([], ['sh', '-c', 'echo c > /proc/sysrq-trigger; sleep 100']);
    t.equal(r.exitCode, EXIT.panic);
    t.match(r.stderr, /^runit-ts-vm: kernel panic while the command ran: sysrq triggered crash \(console log: (.*)\)$/m);
    const log = /console log: (.*)\)$/m.exec(r.stderr)?.[1] ?? '';
    t.match(readFileSync(log, 'utf8'), /Kernel panic - not syncing/, 'the console log shows it');
  });

  t.test('test CONFIG: TAP 14 and JUnit, exit 1 when a target fails', async (t) => {
    const config = join(work, 'vm.yaml');
    writeFileSync(config, `targets:
  - name: passes
    arch: ${arch}
    command: "cat input.txt"
    shares: ["${rw},rw"]
    snapshot: true
  - name: fails
    arch: ${arch}
    command: ["sh", "-c", "echo 'bad <input>' >&2; exit 3"]
    shares: ["${rw},rw"]
    snapshot: true
`);
    const junit = join(tmp, 'junit.xml');
    const logs = join(tmp, 'suite-logs');
    const r = await vm(['test', config, '--junit', junit, '--log-dir', logs]);
    t.equal(r.exitCode, 1, 'one target failed');
    const lines = r.stdout.split('\n');
    t.strictSame(lines.slice(0, 3), ['TAP version 14', '1..2', 'ok 1 - passes']);
    t.ok(lines.includes('not ok 2 - fails'));
    t.match(r.stdout, /not ok 2 - fails\n {2}---\n {2}exitCode: 3\n {2}duration_ms: \d+\n {2}consoleLog: .*fails\.console\.log\n {2}stderr: bad <input>\n {2}\.\.\.\n/);
    const xml = readFileSync(junit, 'utf8');
    t.match(xml, /<testsuite name="vm" tests="2" failures="1"/);
    t.match(xml, /<failure message="exit code 3" type="exit-3">/);
    t.match(xml, /<system-err>bad &lt;input&gt;\n<\/system-err>/);
    t.equal(readFileSync(join(logs, 'passes.stdout'), 'utf8'), 'from the host\n', 'each target\'s stdout is kept beside its console log');
  });

  const kernelDir = join(CACHE, `kernel-${arch}`);
  const version = existsSync(join(kernelDir, 'lib', 'modules')) ? readdirSync(join(kernelDir, 'lib', 'modules'))[0] : undefined;
  t.test('a user\'s kernel: Debian\'s kernel package with --kernel and --modules', { skip: version === undefined ? `no kernel in ${kernelDir}` : false }, async (t) => {
    const kernel = join(kernelDir, 'boot', `vmlinuz-${version}`);
    const modules = join(kernelDir, 'lib', 'modules', version!);
    const r = await vm(['run', '--arch', arch, '--kernel', kernel, '--modules', modules, ...shares, '--', 'sh', '-c', `uname -r; ls ${rw}/out.txt`]);
    t.equal(r.exitCode, 0, r.stderr);
    t.equal(r.stdout, `${version}\n${rw}/out.txt\n`, 'its kernel runs, and the shares work through its modules');
    // the same kernel with a config that lacks two options: one line names them, nothing boots
    const copy = join(tmp, 'kernel');
    mkdirSync(copy);
    writeFileSync(join(copy, `vmlinuz-${version}`), readFileSync(kernel));
    const config = readFileSync(join(kernelDir, 'boot', `config-${version}`), 'utf8');
    writeFileSync(join(copy, `config-${version}`), config.replace(/^CONFIG_9P_FS=.*\n/m, '').replace(/^CONFIG_NET_9P_VIRTIO=.*\n/m, '# CONFIG_NET_9P_VIRTIO is not set\n'));
    const bad = await vm(['run', '--arch', arch, '--kernel', join(copy, `vmlinuz-${version}`), '--modules', modules, '--', 'true']);
    t.equal(bad.exitCode, EXIT.boot);
    t.equal(bad.stderr.split('\n').length, 2, 'one line');
    t.match(bad.stderr, /lacks what the harness needs: CONFIG_NET_9P_VIRTIO, CONFIG_9P_FS \(config: .*config-/);
  });
}
