// How the supervisor starts ./run and ./finish: the addon's spawn() (a vfork-style clone)
// and src/runsv/children.ts, which reaps those children. What a child gets (argv, cwd,
// fds, environment, session, process group, signals), how exec failures are told, and
// that every child is reaped, including one that ends before spawn() returns.
import t from 'tap';
import { chmodSync, closeSync, mkdirSync, mkdtempSync, readFileSync, readSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { execa } from 'execa';
import { BIN, haveBin, until } from '../lib/host.ts';

if (!haveBin()) t.fail(`${BIN} is missing: run make build`);
process.env.RUNIT_TS_ADDON ??= join(dirname(BIN), 'runit-ts.node');
const { native } = await import('../../src/lib/native.ts');
const { decodeWaitStatus, spawnWatched } = await import('../../src/runsv/children.ts');
type ChildEnd = ReturnType<typeof decodeWaitStatus>;

const work = mkdtempSync(join(tmpdir(), 'spawn-test-'));
t.teardown(() => rmSync(work, { recursive: true, force: true }));

function script(name: string, body: string, mode = 0o755): string {
  const d = join(work, name);
  mkdirSync(d, { recursive: true });
  writeFileSync(join(d, 'run'), body, { mode });
  chmodSync(join(d, 'run'), mode);
  return d;
}

/** Everything readable on fd until EOF (the write ends are closed, the child holds its copy). */
function drain(fd: number): string {
  const b = Buffer.alloc(65536);
  let out = '';
  for (;;) {
    let n: number;
    try {
      n = readSync(fd, b, 0, b.length, null);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EAGAIN') continue;
      throw e;
    }
    if (n === 0) return out;
    out += b.toString('utf8', 0, n);
  }
}

function zombie(pid: number): boolean {
  try {
    return / Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8').slice(readFileSync(`/proc/${pid}/stat`, 'utf8').lastIndexOf(')')));
  } catch {
    return false;
  }
}

t.test('the child: ./run in its directory, fds as asked, default signals, none blocked, its own session', async (t) => {
  const d = script('env', '#!/bin/sh\necho "0=$0 1=$1 cwd=$(pwd) x=$X"\necho err >&2\nread line || echo "stdin eof"\ngrep -E "^(SigIgn|SigBlk):" /proc/self/status\necho "sid=$(cut -d" " -f6 /proc/self/stat) pid=$$"\n');
  const [rd, wr] = native().pipe();
  let end: ChildEnd | undefined;
  const pid = spawnWatched('./run', ['./run', 'a1'], ['X=from-envp', 'PATH=/usr/bin:/bin'], d, [-1, wr, wr], true, (e) => (end = e));
  closeQuiet(wr);
  const out = drain(rd);
  closeQuiet(rd);
  await until(() => end, 5000, 'the child reaped');
  t.same(end, { code: 0, sig: 0, low: 0 }, 'exit 0');
  t.match(out, `0=./run 1=a1 cwd=${d} x=from-envp\n`, 'argv[0] as given, relative to the directory; the environment given');
  t.match(out, 'err\n', 'stderr to the same pipe');
  t.match(out, 'stdin eof', 'stdin: /dev/null');
  t.match(out, /SigIgn:\s+0+\n/, 'no signal ignored (Node ignores SIGPIPE; a child of runsv does not)');
  t.match(out, /SigBlk:\s+0+\n/, 'no signal blocked');
  t.match(out, new RegExp(`sid=${pid} pid=${pid}`), 'a session of its own');
  t.notOk(zombie(pid), 'no zombie left');
});

t.test('our environment when none is given; no session without setsid', async (t) => {
  const d = script('ourenv', '#!/bin/sh\necho "y=$SPAWN_TEST_Y sid=$(cut -d" " -f6 /proc/self/stat)"\n');
  process.env.SPAWN_TEST_Y = 'ours';
  const [rd, wr] = native().pipe();
  let end: ChildEnd | undefined;
  spawnWatched('./run', ['./run'], null, d, [-1, wr, 2], false, (e) => (end = e));
  closeQuiet(wr);
  const out = drain(rd);
  closeQuiet(rd);
  await until(() => end, 5000, 'the child reaped');
  t.match(out, 'y=ours', "process.env as the child's environment");
  t.match(out, `sid=${readFileSync('/proc/self/stat', 'utf8').split(') ')[1]!.split(' ')[3]}`, 'our session');
});

t.test('foreground: a process group of its own in our session; no terminal on fd 0 is no failure', async (t) => {
  const d = script('pgroup', '#!/bin/sh\necho "pgrp=$(cut -d" " -f5 /proc/self/stat) sid=$(cut -d" " -f6 /proc/self/stat) pid=$$"\n');
  const ours = readFileSync('/proc/self/stat', 'utf8').split(') ')[1]!.split(' ');
  for (const foreground of [true, false]) {
    const [rd, wr] = native().pipe();
    let end: ChildEnd | undefined;
    const pid = spawnWatched('./run', ['./run'], null, d, [-1, wr, 2], false, (e) => (end = e), foreground);
    closeQuiet(wr);
    const out = drain(rd);
    closeQuiet(rd);
    await until(() => end, 5000, 'the child reaped');
    t.same(end, { code: 0, sig: 0, low: 0 }, `foreground ${foreground}: exit 0`);
    t.match(out, `pgrp=${foreground ? pid : ours[2]} sid=${ours[3]} pid=${pid}`, foreground ? 'its own process group, our session' : 'our process group');
  }
});

t.test('how it ended: exit code, signal, wait status low byte', async (t) => {
  const d = script('codes', '#!/bin/sh\ncase "$1" in exit) exit 3 ;; *) kill -USR1 $$; sleep 5 ;; esac\n');
  const ends: ChildEnd[] = [];
  spawnWatched('./run', ['./run', 'exit'], null, d, [-1, -1, -1], false, (e) => ends.push(e));
  spawnWatched('./run', ['./run', 'signal'], null, d, [-1, -1, -1], false, (e) => ends.push(e));
  await until(() => ends.length === 2, 5000, 'both reaped');
  t.same(ends.find((e) => e.sig === 0), { code: 3, sig: 0, low: 0 });
  t.same(ends.find((e) => e.sig !== 0), { code: -1, sig: 10, low: 10 });
  t.same(decodeWaitStatus(0x8b), { code: -1, sig: 11, low: 0x8b }, 'the core-dump bit stays in the low byte (runsv passes wstat & 0xff to ./finish)');
  t.same(decodeWaitStatus(0x7f00), { code: 127, sig: 0, low: 0 });
});

t.test('exec failures are thrown with the errno, the child reaped', async (t) => {
  const cases: Array<[string, () => string, string]> = [
    ['missing', () => { const d = join(work, 'missing'); mkdirSync(d); return d; }, 'ENOENT'],
    ['not executable', () => script('noexec', '#!/bin/sh\nexit 0\n', 0o644), 'EACCES'],
    ['no #!', () => script('noformat', 'exit 0\n'), 'ENOEXEC'],
    ['a directory', () => { const d = join(work, 'dirrun'); mkdirSync(join(d, 'run'), { recursive: true }); return d; }, 'EACCES'],
  ];
  for (const [what, mk, code] of cases) {
    const d = mk();
    t.throws(() => spawnWatched('./run', ['./run'], null, d, [-1, -1, -1], false, () => t.fail('no child to reap')), { code }, `${what}: ${code}`);
  }
  t.throws(() => native().spawn('./run', ['./run'], null, join(work, 'nowhere'), [0, 1, 2], false), { code: 'ENOENT' }, 'a missing directory');
  // no child of ours is left over, not even a zombie
  const kids = readFileSync(`/proc/self/task/${process.pid}/children`, 'utf8').trim();
  t.equal(kids.split(/\s+/).filter(Boolean).filter((p) => zombie(Number(p))).length, 0, 'no zombie');
});

t.test('children that end at once are all reaped (SIGCHLD is listened to before the first spawn)', async (t) => {
  const d = script('quick', '#!/bin/sh\nexit 0\n');
  let ended = 0;
  const pids: number[] = [];
  for (let i = 0; i < 20; i++) pids.push(spawnWatched('./run', ['./run'], null, d, [-1, -1, -1], false, () => ended++));
  await until(() => ended === 20, 5000, `20 reaped (${ended})`);
  t.equal(ended, 20);
  t.notOk(pids.some(zombie), 'no zombie');
});

t.test('fds: two of ours swapped (each is moved out of the way before the other lands on it)', async (t) => {
  const [ra, wa] = native().pipe();
  const [rb, wb] = native().pipe();
  const d = script('swap', `#!/bin/sh\necho to-${wa} > /proc/self/fd/${wa}\necho to-${wb} > /proc/self/fd/${wb}\n`);
  const fds = Array.from({ length: Math.max(wa, wb) + 1 }, () => -1);
  fds[wa] = wb;
  fds[wb] = wa;
  let end: ChildEnd | undefined;
  spawnWatched('./run', ['./run'], null, d, fds, false, (e) => (end = e));
  closeQuiet(wa);
  closeQuiet(wb);
  t.equal(drain(rb), `to-${wa}\n`, `the child's ${wa} is our ${wb}`);
  t.equal(drain(ra), `to-${wb}\n`, `the child's ${wb} is our ${wa}`);
  closeQuiet(ra);
  closeQuiet(rb);
  await until(() => end, 5000, 'reaped');
});

function closeQuiet(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    /* closed */
  }
}

t.test("a signal ignored where the supervisor was started is not ignored in its children, glibc's own two included", async (t) => {
  // a parent that ignores every signal it can (32 and 33 through the system call: glibc
  // refuses them), then runs Node, which spawns a child that prints its SigIgn
  const c = join(work, 'ignore.c');
  writeFileSync(c, '#include <signal.h>\n#include <sys/syscall.h>\n#include <unistd.h>\n' +
    'int main(int argc, char **argv) { unsigned long ign[4] = { 1, 0, 0, 0 }; (void)argc;\n' +
    '  for (int s = 1; s < 65; s++) if (s != SIGKILL && s != SIGSTOP) syscall(SYS_rt_sigaction, s, ign, 0, 8);\n' +
    '  execv(argv[1], argv + 1); return 127; }\n');
  const ignore = join(work, 'ignore');
  const cc = await execa('gcc', ['-O2', '-o', ignore, c], { reject: false });
  t.equal(cc.exitCode, 0, `the helper compiles: ${cc.stderr}`);
  const out = join(work, 'sigign');
  const script = `const { native } = await import(${JSON.stringify(join(import.meta.dirname, '..', '..', 'src', 'lib', 'native.ts'))});
const pid = native().spawn('/bin/sh', ['sh', '-c', 'grep SigIgn /proc/self/status > ${out}'], null, '', [-1, -1, -1], false);
while (native().reap(pid) === -1) await new Promise((r) => setTimeout(r, 20));`;
  const r = await execa(ignore, [process.execPath, '--input-type=module', '-e', script], { reject: false, env: { RUNIT_TS_ADDON: process.env.RUNIT_TS_ADDON! } });
  t.equal(r.exitCode, 0, `node ran: ${r.stderr}`);
  t.match(readFileSync(join(work, 'sigign'), 'utf8'), /^SigIgn:\s+0+\n$/, 'nothing ignored in the child');
});
