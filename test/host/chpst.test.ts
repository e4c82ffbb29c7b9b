// chpst and its argv0 aliases (setuidgid, envuidgid, envdir, pgrphack, setlock,
// softlimit): every option, side by side with Debian's runit 2.1.2 chpst (same output,
// messages and exit codes), plus what only a Node implementation could get wrong: the
// program replaces the process (same pid), inherits stdio and default signal handling.
import t, { type Test } from 'tap';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { BIN, CACHE, DEBIAN, haveBin, until } from '../lib/host.ts';

if (!haveBin()) t.fail(`${BIN} is missing: run make build`);

const NAMES = ['chpst', 'setuidgid', 'envuidgid', 'envdir', 'pgrphack', 'setlock', 'softlimit'];
const work = mkdtempSync(join(tmpdir(), 'chpst-test-'));
t.teardown(() => rmSync(work, { recursive: true, force: true }));
const ourDir = join(work, 'ours');
const debDir = join(work, 'debian');
mkdirSync(ourDir);
mkdirSync(debDir);
const DEB_CHPST = join(DEBIAN, 'usr/bin/chpst');
const haveDebian = existsSync(DEB_CHPST);
for (const n of NAMES) {
  symlinkSync(BIN, join(ourDir, n));
  if (haveDebian) symlinkSync(DEB_CHPST, join(debDir, n));
}
if (!haveDebian) t.comment(`no Debian chpst at ${DEB_CHPST}: side-by-side checks are skipped`);

const BASE_ENV = { PATH: '/usr/bin:/bin', HOME: '/root', A: 'old', KEEP: 'yes', B: 'remove me', LANG: 'C' };

interface Out {
  code: number | undefined;
  stdout: string;
  stderr: string;
}

/** Run applet name (ours or Debian's) with args; cwd is the work dir. */
async function run(dir: string, name: string, args: string[], env: Record<string, string> = {}): Promise<Out> {
  const r = await execa(join(dir, name), args, { cwd: work, reject: false, env: { ...BASE_ENV, ...env }, extendEnv: false, stdin: 'ignore' });
  // (runit 2.3.0's usage line, ours, lists -C; Debian's 2.1.2 does not: compared without it)
  return { code: r.exitCode, stdout: r.stdout, stderr: r.stderr.replace(/^usage: \S+\//gm, 'usage: ').replace(/^\$Id: .*\$$/gm, '$Id$').replace(/^(usage: \S+ .*) \[-C pwd\]/m, '$1') };
}

/** Ours and Debian's must agree. */
async function same(t: Test, name: string, args: string[], env: Record<string, string> = {}): Promise<Out> {
  const ours = await run(ourDir, name, args, env);
  if (haveDebian) t.same(ours, await run(debDir, name, args, env), `${name} ${args.join(' ')}`);
  return ours;
}

const sh = (script: string) => ['sh', '-c', script];

t.test('usage and bad arguments: messages and exit 100', async (t) => {
  const cases: Array<[string, string[]]> = [
    ['chpst', []], ['chpst', ['-u']], ['chpst', ['-x', 'true']], ['chpst', ['-V', 'true']], ['chpst', ['-m', 'abc', 'true']],
    ['chpst', ['-n', 'x', 'true']], ['chpst', ['-n', '+x', 'true']], ['chpst', ['-l', 'a', '-L', 'b', 'true']], ['chpst', ['-o', '5k', 'true']],
    ['setuidgid', []], ['setuidgid', ['root']], ['envuidgid', ['root']], ['envdir', ['dir']], ['pgrphack', []],
    ['setlock', []], ['setlock', ['-y', 'f', 'true']], ['setlock', ['file']], ['softlimit', []], ['softlimit', ['-x', '1', 'true']],
    ['softlimit', ['-m', 'abc', 'true']], ['softlimit', ['-m', '1']],
  ];
  for (const [name, args] of cases) {
    const o = await same(t, name, args);
    t.equal(o.code, 100, `${name} ${args.join(' ')}: 100`);
  }
  const o = await execa(join(ourDir, 'chpst'), ['-x'], { reject: false, stripFinalNewline: false });
  t.equal(o.stderr, 'chpst: illegal option -- x\nusage: chpst [-vVP012] [-u user[:group]] [-U user[:group]] [-b argv0] [-e dir] [-/ root] [-C pwd] [-n nice] [-l|-L lock] [-m n] [-d n] [-o n] [-p n] [-f n] [-c n] [-t n] prog\n\n', "runit 2.3.0's usage line (with -C pwd) and its blank line");
  const h = await execa(join(ourDir, 'chpst'), ['--help']);
  t.match(h.stdout, /^usage: chpst /, '--help');
});

t.test('users and groups: -u, -U, setuidgid, envuidgid', async (t) => {
  const id = ['id'];
  for (const args of [
    ['-u', 'nosuchuser', ...id], ['-u', 'root:nosuchgroup', ...id], ['-u', ':abc', ...id], ['-u', ':0', ...id], ['-u', ':0:x', ...id],
    ['-u', ':0:', ...id], ['-u', 'root:root:daemon', ...id], ['-u', 'nobody', ...id], ['-u', 'nobody:nogroup:daemon:root', ...id],
    ['-u', ':65534:65534:1', ...id], ['-U', 'nosuch', 'env'], ['-U', 'daemon', 'env'], ['-U', 'nobody:daemon', 'env'], ['-U', ':12:34:56', 'env'],
    ['-U', 'daemon', '-u', 'nobody', 'env'],
  ]) await same(t, 'chpst', args);
  const o = await run(ourDir, 'chpst', ['-u', 'nobody:nogroup:daemon', 'id']);
  t.equal(o.stdout, 'uid=65534(nobody) gid=65534(nogroup) groups=65534(nogroup),1(daemon)', 'uid, gid and supplementary groups');
  const u = await run(ourDir, 'chpst', ['-U', ':12:34:56', 'env']);
  t.match(u.stdout, /^GID=34$/m);
  t.match(u.stdout, /^UID=12$/m);
  for (const args of [['nobody', 'id'], ['nosuch', 'id'], ['root:root', 'id'], [':0:0', 'id']]) await same(t, 'setuidgid', args);
  for (const args of [['daemon', 'env'], ['nosuch', 'env']]) await same(t, 'envuidgid', args);
  const f = await run(ourDir, 'setuidgid', ['nosuch', 'id']);
  t.same(f, { code: 111, stdout: '', stderr: 'chpst: fatal: unknown account: nosuch' });
});

t.test('failures as an unprivileged user: setgroups, nice, chroot, lock', { skip: process.getuid?.() !== 0 ? 'needs root' : false }, async (t) => {
  // nobody must be able to reach both binaries: a world-readable copy of Debian's
  const pub = join(work, 'pub');
  mkdirSync(pub);
  chmodSync(work, 0o755);
  chmodSync(pub, 0o755);
  for (const d of ['ours', 'debian']) {
    mkdirSync(join(pub, d));
    chmodSync(join(pub, d), 0o755);
  }
  symlinkSync(BIN, join(pub, 'ours', 'chpst'));
  if (haveDebian) copyFileSync(DEB_CHPST, join(pub, 'debian', 'chpst'));
  for (const args of [['-u', 'root', 'id'], ['-n', '-5', 'id'], ['-/', '/', 'id'], ['-l', '/root/nolock', 'id'], ['-e', '/root', 'env']]) {
    const res: Out[] = [];
    for (const b of haveDebian ? ['ours', 'debian'] : ['ours']) {
      const r = await execa(join(ourDir, 'setuidgid'), ['nobody', join(pub, b, 'chpst'), ...args], { reject: false, env: BASE_ENV, cwd: '/' });
      res.push({ code: r.exitCode, stdout: r.stdout, stderr: r.stderr });
    }
    t.equal(res[0]!.code, 111, `as nobody: chpst ${args.join(' ')}: 111`);
    t.match(res[0]!.stderr, /^chpst: fatal: unable to .*: (permission|access) denied$/);
    if (res[1]) t.same(res[0], res[1], `as nobody: chpst ${args.join(' ')}: same as Debian's`);
  }
});

t.test('environment directories: chpst -e and envdir', async (t) => {
  const d = join(work, 'env');
  mkdirSync(d);
  writeFileSync(join(d, 'A'), 'new value\nsecond line\n');
  writeFileSync(join(d, 'B'), '');
  writeFileSync(join(d, 'C'), 'trailing \t \t\n');
  writeFileSync(join(d, 'D'), Buffer.from('with\0nul\0'));
  writeFileSync(join(d, 'E'), '\n');
  writeFileSync(join(d, '.hidden'), 'no');
  writeFileSync(join(d, 'F'), 'no newline');
  const sub = join(work, 'env-with-dir');
  mkdirSync(join(sub, 'SUBDIR'), { recursive: true });
  writeFileSync(join(sub, 'X'), 'x');
  const ours = await same(t, 'chpst', ['-e', d, 'env']);
  t.match(ours.stdout, /^A=new value$/m, 'first line only');
  t.notMatch(ours.stdout, /^B=/m, 'empty file: unset');
  t.match(ours.stdout, /^C=trailing$/m, 'trailing blanks cut');
  t.match(ours.stdout, /^D=with\nnul\n$/m, 'NUL becomes newline');
  t.match(ours.stdout, /^E=$/m, 'a lone newline: empty, still set');
  t.notMatch(ours.stdout, /hidden/, 'dot files skipped');
  await same(t, 'chpst', ['-e', sub, 'env']);
  await same(t, 'chpst', ['-v', '-e', sub, 'env']);
  await same(t, 'envdir', [d, 'env']);
  const bad = await same(t, 'envdir', [sub, 'env']);
  t.equal(bad.code, 111, 'envdir: a subdirectory is fatal');
  await same(t, 'envdir', [join(work, 'nonexistent'), 'env']);
  await same(t, 'chpst', ['-e', join(d, 'A'), 'env']);
});

t.test('chroot, nice, session', async (t) => {
  const root = join(work, 'root');
  mkdirSync(join(root, 'bin'), { recursive: true });
  const bb = join(CACHE, `busybox-${process.arch === 'arm64' ? 'aarch64' : 'x86_64'}`, 'bin', 'busybox');
  if (existsSync(bb)) {
    copyFileSync(bb, join(root, 'bin', 'busybox'));
    chmodSync(join(root, 'bin', 'busybox'), 0o755);
    writeFileSync(join(root, 'marker'), '');
    const o = await same(t, 'chpst', ['-/', root, '/bin/busybox', 'ls', '/']);
    t.equal(o.stdout, 'bin\nmarker', 'the program sees the new root');
    const c = await run(ourDir, 'chpst', ['-/', root, '-C', '/bin', '/bin/busybox', 'pwd']);
    t.equal(c.stdout, '/bin', '-C changes directory inside the new root (upstream 2.2.0)');
  }
  await same(t, 'chpst', ['-/', join(work, 'nonexistent'), 'true']);
  await same(t, 'chpst', ['-/', '/', 'pwd']);
  const nice = "cut -d' ' -f19 /proc/$$/stat";
  for (const n of ['5', '+3', '-4', '0', '-']) {
    const o = await same(t, 'chpst', ['-n', n, ...sh(nice)]);
    t.equal(o.stdout, String(Number(n === '-' ? 0 : n)), `-n ${n}`);
  }
  const leader = 'set -- $(cut -d" " -f5,6 /proc/$$/stat); [ $1 = $$ ] && [ $2 = $$ ] && echo leader || echo member';
  t.equal((await same(t, 'chpst', ['-P', ...sh(leader)])).stdout, 'leader', '-P: own session and group');
  t.equal((await same(t, 'pgrphack', sh(leader))).stdout, 'leader', 'pgrphack');
  t.equal((await same(t, 'chpst', sh(leader))).stdout, 'member');
  const c = await run(ourDir, 'chpst', ['-C', work, 'pwd']);
  t.equal(c.stdout, work, '-C');
});

t.test('locks: -l waits, -L fails, setlock -n/-N/-x/-X, held across exec', async (t) => {
  const lock = join(work, 'lockfile');
  for (const holderDir of haveDebian ? [ourDir, debDir] : [ourDir]) {
    const holder = execa(join(holderDir, 'chpst'), ['-l', lock, 'sh', '-c', 'echo locked; sleep 4'], { reject: false, env: BASE_ENV });
    let started = false;
    holder.stdout?.on('data', () => (started = true));
    await until(() => started, 5000, 'holder has the lock');
    const fails = await same(t, 'chpst', ['-L', lock, 'true']);
    t.same(fails, { code: 111, stdout: '', stderr: `chpst: fatal: unable to lock: ${lock}: temporary failure` }, '-L: the lock is held by the exec\'d program');
    t.same(await same(t, 'setlock', [lock, 'true']), fails, 'setlock (default -N) fails the same way');
    await same(t, 'setlock', ['-X', lock, 'true']);
    t.same(await same(t, 'setlock', ['-x', lock, 'echo', 'never']), { code: 0, stdout: '', stderr: '' }, 'setlock -x: quiet exit 0');
    const t0 = Date.now();
    const waited = await run(ourDir, 'chpst', ['-l', lock, 'echo', 'got it']);
    t.equal(waited.stdout, 'got it', '-l waits for the lock');
    t.ok(Date.now() - t0 > 500, 'and waited for the holder');
    await holder;
  }
  const h2 = execa(join(ourDir, 'setlock'), [lock, 'sleep', '1'], { reject: false, env: BASE_ENV });
  await new Promise((r) => setTimeout(r, 300));
  const w = await run(ourDir, 'setlock', ['-n', lock, 'echo', 'waited']);
  t.equal(w.stdout, 'waited', "setlock -n waits (runit's meaning)");
  await h2;
  await same(t, 'chpst', ['-l', join(work, 'nonexistent', 'lock'), 'true']);
  await same(t, 'setlock', ['-x', join(work, 'nonexistent', 'lock'), 'true']);
});

t.test('closing standard descriptors', async (t) => {
  const fds = 'for f in 0 1 2; do [ -e /proc/$$/fd/$f ] && printf "$f " >>"$0"; done';
  for (const flags of [[], ['-0'], ['-1'], ['-2'], ['-0', '-1', '-2']]) {
    const outs: string[] = [];
    for (const dir of haveDebian ? [ourDir, debDir] : [ourDir]) {
      const f = join(work, `fds-${outs.length}`);
      writeFileSync(f, '');
      await execa(join(dir, 'chpst'), [...flags, 'sh', '-c', fds, f], { reject: false, env: BASE_ENV });
      outs.push((await import('node:fs')).readFileSync(f, 'utf8'));
    }
    t.equal(outs[0], ['0', '1', '2'].filter((n) => !flags.includes(`-${n}`)).map((n) => `${n} `).join(''), `chpst ${flags.join(' ')}`);
    if (outs.length === 2) t.equal(outs[0], outs[1], `chpst ${flags.join(' ')}: same as Debian's`);
  }
});

t.test('resource limits: chpst and softlimit', async (t) => {
  const show = sh('ulimit -d; ulimit -s; ulimit -l; ulimit -v; ulimit -n; ulimit -p; ulimit -f; ulimit -c; ulimit -m; ulimit -t');
  const o = await same(t, 'chpst', ['-m', '300000000', '-o', '55', '-p', '77', '-f', '12345', '-c', '0', '-r', '99999', '-t', '77', ...show]);
  const [d, s, , v, ...rest] = o.stdout.split('\n');
  t.same([d, s, v, ...rest], ['292968', '292968', '292968', '55', '77', '24', '0', '97', '77'], 'values (dash shows KiB and 512-byte blocks)');
  await same(t, 'chpst', ['-d', '100000000', '-o', '20', ...show]);
  await same(t, 'softlimit', ['-a', '400000000', '-c', '0', '-d', '300000000', '-f', '=', '-l', '65536', '-o', '30', '-p', '=', '-r', '1', '-s', '1000000', '-t', '9', ...show]);
  await same(t, 'softlimit', ['-m', '500000000', ...show]);
  // limits Node itself could not live with are set only at the exec
  for (let i = 0; i < 5; i++) {
    const small = await same(t, 'softlimit', ['-a', '100000000', '-d', '50000000', '-s', '200000', 'sh', '-c', 'ulimit -v; ulimit -d; ulimit -s']);
    t.equal(small.stdout, '97656\n48828\n195', `small address space, data and stack (run ${i + 1})`);
  }
  // above the hard limit: the hard limit
  const capped = await same(t, 'chpst', ['sh', '-c', 'ulimit -n 100; exec "$0" -o 5000 sh -c "ulimit -n"', join(ourDir, 'chpst')]);
  t.equal(capped.stdout, '100', 'capped at the hard limit');
});

t.test('running the program: PATH search, -b, errors', async (t) => {
  const bin1 = join(work, 'p1');
  const bin2 = join(work, 'p2');
  mkdirSync(bin1);
  mkdirSync(bin2);
  writeFileSync(join(bin1, 'prog'), '#!/bin/sh\necho from p1\n', { mode: 0o644 }); // not executable: EACCES, search goes on
  writeFileSync(join(bin2, 'prog'), '#!/bin/sh\necho from p2 "$0"\n', { mode: 0o755 });
  writeFileSync(join(bin1, 'garbage'), 'not a program\n', { mode: 0o755 });
  mkdirSync(join(bin1, 'adir'));
  const PATH = `${bin1}:${bin2}:/usr/bin:/bin`;
  for (const args of [['prog'], ['-b', 'other', 'prog'], ['nonexistent'], ['/nonexistent'], ['-b', 'foo', 'nonexistent'], ['garbage'], ['adir'], [join(bin1, 'prog')], ['-b', 'NAME', 'cat', '/proc/self/cmdline']]) {
    await same(t, 'chpst', args, { PATH });
  }
  const noPath = await same(t, 'chpst', ['sh', '-c', 'echo ok'], { PATH: '' });
  t.equal(noPath.code, 111, 'empty PATH: the current directory only');
  const o = await run(ourDir, 'chpst', ['prog'], { PATH });
  t.equal(o.stdout, `from p2 ${join(bin2, 'prog')}`, 'a non-executable first match is skipped');
  const e = await run(ourDir, 'chpst', ['garbage'], { PATH });
  t.same(e, { code: 111, stdout: '', stderr: 'chpst: fatal: unable to run: garbage: exec format error' });
  // PATH from the environment chpst started with, not the envdir's (as runit's pathexec)
  const envd = join(work, 'env-path');
  mkdirSync(envd);
  writeFileSync(join(envd, 'PATH'), bin2);
  await same(t, 'chpst', ['-e', envd, 'sh', '-c', 'echo $PATH'], { PATH });
});

t.test('the program replaces chpst: same pid, stdio inherited, default signals', async (t) => {
  const p = execa(join(ourDir, 'chpst'), ['sh', '-c', 'echo $$; ls /proc/$$/fd'], { reject: false, env: BASE_ENV, stdin: 'pipe' });
  const r = await p;
  const [pid, ...fds] = r.stdout.split('\n');
  t.equal(Number(pid), p.pid, 'same pid: no Node process stays behind');
  t.same(fds.filter((f) => Number(f) < 200), ['0', '1', '2'], 'only stdio is inherited (no Node descriptors)');
  // grep reads its own status: the signal state it was exec'd with (a shell would change it)
  const sig = ['grep', '-E', '^Sig(Blk|Ign)', '/proc/self/status'];
  const o = await same(t, 'chpst', sig);
  // what a program started directly here gets (an environment may leave, e.g., signal 32
  // ignored: exec keeps ignored signals, and runit's chpst passes them on too)
  const direct = await execa(sig[0]!, sig.slice(1), { reject: false, env: BASE_ENV });
  t.equal(o.stdout, direct.stdout, 'signal state as exec gives it: nothing blocked, SIGPIPE and SIGXFSZ not ignored (Node ignores them)');
  t.match(o.stdout, /^SigBlk:\t0+$/m, 'nothing blocked');
  t.notOk(BigInt('0x' + (/^SigIgn:\t([0-9a-f]+)$/m.exec(o.stdout)?.[1] ?? '0')) & ((1n << 12n) | (1n << 24n)), 'SIGPIPE (13) and SIGXFSZ (25) not ignored');
  const pipe = await execa('sh', ['-c', `"${join(ourDir, 'chpst')}" yes | head -1`], { reject: false });
  t.equal(pipe.stdout, 'y', 'yes | head ends: SIGPIPE kills yes as it should');
  const lk = await run(ourDir, 'chpst', ['-l', join(work, 'lk2'), 'sh', '-c', 'ls -l /proc/$$/fd | grep -c lk2']);
  t.equal(lk.stdout, '1', 'the lock descriptor is inherited');
});
