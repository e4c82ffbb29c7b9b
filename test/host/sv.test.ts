// sv, ours beside Debian's 2.1.2, against fake supervise/ directories (we play runsv:
// hold supervise/ok open, write supervise/status, read what sv writes to
// supervise/control). Every command and abbreviation, options, environment, LSB mode,
// broken status files: same output, same exit code, same control bytes.
// And runsvchdir, ours beside Debian's (in a mount namespace: its path is fixed).
import t, { type Test } from 'tap';
import { chmodSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { BIN, haveBin, normalise, tree } from '../lib/host.ts';
import { fakeSupervise, linkTarget, statusRecord, toolFor, type Kind } from '../lib/runit.ts';

if (!haveBin()) t.fail(`${BIN} is missing: run make build`);

const tr = tree('sv-test-');
t.teardown(() => tr.cleanup());
const KINDS: Kind[] = ['debian', 'ours'];
const svPath = (k: Kind) => toolFor(k, tr.bin, 'sv');

interface Res {
  out: string;
  err: string;
  code: number | undefined;
  bytes: string;
}

let n = 0;
/** Run one sv command on its own fake service (status `st`), for both implementations. */
async function fake(args: (name: string) => string[], st: Buffer, opts: { env?: Record<string, string>; files?: Record<string, string>; sv?: (k: Kind, name: string) => string; spoil?: (dir: string) => void } = {}): Promise<Record<Kind, Res>> {
  const id = ++n;
  const res = await Promise.all(
    KINDS.map(async (k) => {
      const svdir = join(tr.root, `fake-${k}`);
      const name = `s${id}`;
      const dir = join(svdir, name);
      mkdirSync(dir, { recursive: true });
      for (const [rel, text] of Object.entries(opts.files ?? {})) {
        writeFileSync(join(dir, rel), text);
        if (rel === 'check') chmodSync(join(dir, rel), 0o755);
      }
      const f = await fakeSupervise(dir, st);
      opts.spoil?.(dir);
      try {
        const r = await execa(opts.sv ? opts.sv(k, name) : svPath(k), args(name), { env: { SVDIR: svdir, ...opts.env }, reject: false, cwd: svdir, stripFinalNewline: false });
        return { out: String(r.stdout), err: String(r.stderr), code: r.exitCode, bytes: f.control() };
      } finally {
        f.close();
      }
    }),
  );
  return { debian: res[0]!, ours: res[1]! };
}

const old = () => Math.floor(Date.now() / 1000) - 100;
const RUNNING = () => statusRecord({ sec: old(), pid: 12345, want: 'u', state: 1 });
const DOWN = () => statusRecord({ sec: old(), pid: 0, want: 'd', state: 0 });
const DOWN_WANT_UP = () => statusRecord({ sec: old(), pid: 0, want: 'u', state: 0 });
const PAUSED = () => statusRecord({ sec: old(), pid: 12345, want: 'u', paused: true, state: 1 });
const FINISHING = () => statusRecord({ sec: old(), pid: 12346, want: 'd', term: true, state: 2 });

/** Same as Debian's, seconds and $Id apart. */
function same(t: Test, r: Record<Kind, Res>, what: string) {
  const norm = (x: Res) => ({ out: normalise(x.out), err: x.err.replace(/\$Id: [^$]*\$/g, '$Id$'), code: x.code, bytes: x.bytes });
  t.same(norm(r.ours), norm(r.debian), what);
}

t.test('every command and abbreviation: output, exit code, control bytes', async (t) => {
  const commands = [
    'status', 's', 'stat', 'up', 'u', 'upx', 'down', 'd', 'once', 'o', 'pause', 'p', 'cont', 'c', 'hup', 'h',
    'alarm', 'a', 'interrupt', 'i', 'quit', 'q', '1', '2', 'term', 't', 'tx', 'kill', 'k', 'exit', 'x', 'e',
    'reload', 'check', 'start', 'bogus', 'r', 'f', 'force', 'force-bogus', '',
  ];
  const cases: Array<[string, Buffer]> = [];
  for (const c of commands) cases.push([c, RUNNING()]);
  for (const c of ['status', 'up', 'down', 'once', 'exit', 'start', 'check', 'kill', 'term']) cases.push([c, DOWN()]);
  for (const c of ['status', 'up', 'down', 'once']) cases.push([c, DOWN_WANT_UP()]);
  for (const c of ['status', 'pause', 'cont', 'hup']) cases.push([c, PAUSED()]);
  for (const c of ['status', 'down', 'up', 'term']) cases.push([c, FINISHING()]);
  // (SVWAIT=1: those that wait, like start on a service that stays down, give up after 1 s)
  const results = await Promise.all(cases.map(([c, st]) => fake((name) => [c, name], st, { env: { SVWAIT: '1' } })));
  results.forEach((r, i) => same(t, r, `sv '${cases[i]![0]}' (state byte ${cases[i]![1][19]}, want ${String.fromCharCode(cases[i]![1][17]!)})`));
  // and -v: wait for the result (those that can complete against a static status)
  const verbose: Array<[string[], Buffer]> = [
    [['-v', 'up'], RUNNING()], [['-v', 'down'], DOWN()], [['-v', 'pause'], PAUSED()], [['-v', 'cont'], RUNNING()],
    [['-v', 'hup'], RUNNING()], [['-w', '1', 'once'], RUNNING()], [['-v', 'status'], RUNNING()], [['-w3', 'up'], RUNNING()],
    [['-vw', '2', 'start'], RUNNING()], [['-v', '--', 'up'], RUNNING()],
  ];
  const vr = await Promise.all(verbose.map(([a, st]) => fake((name) => [...a, name], st)));
  vr.forEach((r, i) => same(t, r, `sv ${verbose[i]![0].join(' ')}`));
});

t.test('waiting commands time out (and force-* kill) the same way', async (t) => {
  // nothing answers: each waits -w 1 s, then reports timeout (or kill, writing 'k')
  const cmds = ['stop', 'restart', 'shutdown', 'try-restart', 'force-stop', 'force-reload', 'force-restart', 'force-shutdown', 'X', 'E', 'D', 'T', 'Down'];
  const res = await Promise.all(cmds.map((c) => fake((name) => ['-w', '1', c, name], RUNNING())));
  res.forEach((r, i) => same(t, r, `sv -w 1 ${cmds[i]} (timeout)`));
  t.match(res[4]!.ours.out, /^kill: run: s\d+: \(pid 12345\) \d+s\n$/, 'force-stop: "kill: " and the status');
  t.equal(res[4]!.ours.bytes, 'dk', 'force-stop wrote d, then k');
  t.equal(res[4]!.ours.code, 1);
  const [w, c1, c0, cs, cn] = await Promise.all([
    // SVWAIT sets the default wait
    fake((name) => ['-v', 'down', name], RUNNING(), { env: { SVWAIT: '1' } }),
    // ./check: exit 1 = not ready (times out), exit 0 = ready; its stdout is closed
    fake((name) => ['-w', '1', 'check', name], RUNNING(), { files: { check: '#!/bin/sh\necho noise\nexit 1\n' } }),
    fake((name) => ['-w', '1', 'check', name], RUNNING(), { files: { check: '#!/bin/sh\necho noise\nexit 0\n' } }),
    fake((name) => ['-w', '1', 'start', name], RUNNING(), { files: { check: '#!/bin/sh\nkill -9 $$\n' } }),
    fake((name) => ['-w', '1', 'up', name], RUNNING(), { files: { check: 'not a script\n' } }),
  ]);
  same(t, w!, 'SVWAIT=1');
  t.match(w!.ours.out, /^timeout: run: /);
  same(t, c1!, 'check failing');
  t.match(c1!.ours.out, /^timeout: run: s\d+: \(pid 12345\) \d+s\n$/);
  same(t, c0!, 'check passing');
  same(t, cs!, 'check killed by a signal counts as ready (exit code 0)');
  same(t, cn!, 'check without #! (exec format error): warning, and ready');
});

t.test('options, usage, names, environment', async (t) => {
  const runs: Array<[string, string[], Buffer | undefined]> = [
    ['-V', ['-V', 'status', 'x'], RUNNING()],
    ['no args', [], undefined],
    ['no service', ['status'], undefined],
    ['illegal option', ['-x', 'status', 'x'], undefined],
    ['-w without value', ['-w'], undefined],
    ['missing service', ['status', 'nosuch'], undefined],
    ['several services, one missing', ['status', 'NAME', 'nosuch', 'NAME'], RUNNING()],
    ['absolute path', ['status', 'ABS'], RUNNING()],
    ['./relative path', ['status', './NAME'], RUNNING()],
    ['trailing slash: relative to cwd', ['status', 'NAME/'], RUNNING()],
  ];
  for (const [what, args, st] of runs) {
    const r = await fake((name) => args.map((a) => (a === 'NAME' ? name : a === 'ABS' ? join(tr.root, 'fake-KIND', name) : a === './NAME' ? `./${name}` : a === 'NAME/' ? `${name}/` : a)), st ?? RUNNING());
    // ABS differs per side by construction: compare with the side's own path
    if (args.includes('ABS')) {
      const fix = (x: Res, k: Kind) => ({ ...x, out: x.out.split(join(tr.root, `fake-${k}`)).join('<svdir>') });
      t.same(normalise(fix(r.ours, 'ours').out), normalise(fix(r.debian, 'debian').out), what);
      continue;
    }
    same(t, r, what);
  }
  // a file where a service directory should be; a directory without supervise/
  mkdirSync(join(tr.root, 'plain', 'nosup'), { recursive: true });
  writeFileSync(join(tr.root, 'plain', 'file'), '');
  for (const svc of ['file', 'nosup']) {
    const r = await Promise.all(KINDS.map((k) => execa(svPath(k), ['status', svc], { env: { SVDIR: join(tr.root, 'plain') }, reject: false })));
    t.same([r[1]!.stdout, r[1]!.exitCode], [r[0]!.stdout, r[0]!.exitCode], `status of ${svc}: ${r[0]!.stdout}`);
  }
  // runsv not running: supervise/ok exists, nobody reads it
  mkdirSync(join(tr.root, 'plain', 'dead', 'supervise'), { recursive: true });
  await execa('mkfifo', [join(tr.root, 'plain', 'dead', 'supervise', 'ok'), join(tr.root, 'plain', 'dead', 'supervise', 'control')]);
  writeFileSync(join(tr.root, 'plain', 'dead', 'supervise', 'status'), RUNNING());
  for (const args of [['status', 'dead'], ['exit', 'dead'], ['-w', '1', 'shutdown', 'dead'], ['up', 'dead'], ['-v', 'down', 'dead']]) {
    const r = await Promise.all(KINDS.map((k) => execa(svPath(k), args, { env: { SVDIR: join(tr.root, 'plain') }, reject: false })));
    t.same([r[1]!.stdout, r[1]!.stderr, r[1]!.exitCode], [r[0]!.stdout, r[0]!.stderr, r[0]!.exitCode], `runsv not running: sv ${args.join(' ')} -> ${r[0]!.stdout}`);
  }
});

t.test('broken status files never crash sv', async (t) => {
  const garbage = Buffer.from([0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 5, 0x7a, 9, 7]);
  const future = statusRecord({ sec: Math.floor(Date.now() / 1000) + 1000, pid: 77, state: 1 });
  const cases: Array<[string, Buffer]> = [
    ['truncated', Buffer.from('@40000000')],
    ['empty', Buffer.alloc(0)],
    ['garbage (state 7, pid 2^32-1, want z)', garbage],
    ['start in the future', future],
    ['longer than 20 bytes', Buffer.concat([RUNNING(), Buffer.from('trailing junk')])],
  ];
  const runs = cases.flatMap(([what, st]) => [['status'], ['up'], ['-w', '1', 'down'], ['-w', '1', 'check']].map((cmd) => ({ what, st, cmd })));
  const results = await Promise.all(runs.map(({ st, cmd }) => fake((name) => [...cmd, name], st)));
  for (const [i, { what, st, cmd }] of runs.entries()) {
    {
      const r = results[i]!;
      // check: 2.1.2 passes any state with no pid or a passing ./check; 2.3.0 (ours) waits
      // for up, or for down when the service wants down: they differ where state and want disagree
      if (cmd.includes('check') && st === garbage) {
        t.match(r.ours.out, /^timeout: /, `${what}: sv check (2.3.0: not up, so not ready)`);
        continue;
      }
      same(t, r, `${what}: sv ${cmd.join(' ')}`);
    }
  }
  const r = await fake((name) => ['status', name], garbage);
  t.match(r.ours.out, /^s\d+: \(pid 18446744073709551615\) \d+s, paused, got TERM\n$/, 'garbage shown as sv shows it');
  const tr2 = await fake((name) => ['status', name], Buffer.from('short'));
  t.match(tr2.ours.out, /^warning: s\d+: unable to read supervise\/status: bad format\n$/);
  t.equal(tr2.ours.code, 1);
  // a runsv there (supervise/ok held open), its status file gone or not a file: each step's words
  const spoilt: Array<[string, (dir: string) => void]> = [
    ['no status file', (dir) => rmSync(join(dir, 'supervise', 'status'))],
    ['status a directory', (dir) => (rmSync(join(dir, 'supervise', 'status')), mkdirSync(join(dir, 'supervise', 'status')))],
  ];
  for (const [what, spoil] of spoilt) {
    const r = await fake((name) => ['status', name], RUNNING(), { spoil });
    same(t, r, `${what}: sv status`);
    t.match(r.ours.out, /^warning: s\d+: unable to (open|read) supervise\/status: (file does not exist|is a directory)\n$/, `${what}: ${r.ours.out.trim()}`);
  }
});

t.test('LSB mode through /etc/init.d/NAME-style symlinks', async (t) => {
  const initd = (k: Kind) => {
    const d = join(tr.root, `initd-${k}`, 'init.d');
    mkdirSync(d, { recursive: true });
    return (name: string) => {
      const p = join(d, name);
      if (!linkTarget(p)) symlinkSync(k === 'ours' ? BIN : svPath(k), p);
      return p;
    };
  };
  const links = { debian: initd('debian'), ours: initd('ours') };
  const cases: Array<[string, string[], Buffer]> = [
    ['status, running: 0', ['status'], RUNNING()],
    ['status, down: 3', ['status'], DOWN()],
    ['status, finishing', ['status'], FINISHING()],
    ['start', ['start'], RUNNING()],
    ['stop times out', ['-w', '1', 'stop'], RUNNING()],
    ['reload', ['reload'], RUNNING()],
    ['other commands are usage (2)', ['up'], RUNNING()],
    ['s-words other than status/start/stop: usage', ['stat'], RUNNING()],
    ['-V', ['-V'], RUNNING()],
    ['force-stop', ['-w', '1', 'force-stop'], RUNNING()],
    ['extra arguments ignored', ['status', 'whatever', 'else'], RUNNING()],
  ];
  const results = await Promise.all(cases.map(([, args, st]) => fake(() => args, st, { sv: (k, name) => links[k](name) })));
  results.forEach((r, i) => same(t, r, `LSB ${cases[i]![0]}`));
  // runit 2.1.2 bug: the log's status decided LSB status's exit code; ours is 2.3.0's
  const withLog = await Promise.all(
    KINDS.map(async (k) => {
      const svdir = join(tr.root, `lsblog-${k}`);
      const dir = join(svdir, 'lsblog');
      mkdirSync(join(dir, 'log'), { recursive: true });
      const main = await fakeSupervise(dir, DOWN_WANT_UP());
      const log = await fakeSupervise(join(dir, 'log'), RUNNING());
      try {
        return await execa(links[k]('lsblog'), ['status'], { env: { SVDIR: svdir }, reject: false });
      } finally {
        main.close();
        log.close();
      }
    }),
  );
  t.equal(normalise(withLog[1]!.stdout), normalise(withLog[0]!.stdout), 'LSB status with a log: same line');
  t.equal(withLog[1]!.exitCode, 3, 'service down, log up: exit 3 (runit 2.3.0)');
  t.equal(withLog[0]!.exitCode, 0, "Debian's 2.1.2: exit 0, the log's state (the bug)");
  mkdirSync(join(tr.root, 'plain'), { recursive: true });
  const unknown = await Promise.all(KINDS.map((k) => execa(links[k]('nosuch'), ['status'], { env: { SVDIR: tr.root }, reject: false })));
  t.same([unknown[1]!.stdout, unknown[1]!.exitCode], [unknown[0]!.stdout, unknown[0]!.exitCode], 'LSB status of a missing service');
  const nosup = await Promise.all(KINDS.map((k) => execa(links[k]('plain'), ['status'], { env: { SVDIR: tr.root }, reject: false })));
  t.same([nosup[1]!.stdout, nosup[1]!.exitCode], [nosup[0]!.stdout, nosup[0]!.exitCode], `LSB status without supervise/: exit ${nosup[0]!.exitCode}`);
  t.equal(nosup[1]!.exitCode, 4, 'unknown state: 4');
});

t.test('runsvchdir, ours beside Debian (in a mount namespace)', async (t) => {
  const ours = toolFor('ours', tr.bin, 'runsvchdir');
  const deb = toolFor('debian', tr.bin, 'runsvchdir');
  const steps = ['single', 'single', 'default', 'nosuch', 'afile', '.hidden', 'link'];
  const setup = (dir: string) => {
    mkdirSync(join(dir, 'default'), { recursive: true });
    mkdirSync(join(dir, 'single'), { recursive: true });
    symlinkSync('default', join(dir, 'current'));
    symlinkSync('single', join(dir, 'link'));
    writeFileSync(join(dir, 'afile'), '');
  };
  const state = (dir: string) => `current -> ${linkTarget(join(dir, 'current'))}, previous -> ${linkTarget(join(dir, 'previous'))}`;
  // ours: RUNSVDIR points it elsewhere (runit 2.3.0)
  const mine = join(tr.root, 'runsvdir-ours');
  setup(mine);
  const got: string[] = [];
  for (const s of steps) {
    const r = await execa(ours, [s], { env: { RUNSVDIR: mine }, reject: false });
    got.push(`${s}: ${r.exitCode} [${r.stdout}] [${r.stderr.split(ours).join('PROG')}] ${state(mine)}`);
  }
  // Debian's: /etc/runit/runsvdir is fixed, so a private mount namespace gets a tmpfs /etc
  const theirs = join(tr.root, 'runsvdir-debian');
  setup(theirs);
  const script = [
    'mount -t tmpfs none /etc || exit 99',
    'mkdir -p /etc/runit/runsvdir && mount --bind "$1" /etc/runit/runsvdir || exit 98',
    'shift',
    'for s in "$@"; do out=$("$RSC" "$s" 2>"$ERR"); rc=$?; echo "$s: $rc [$out] [$(cat "$ERR")]"; done',
  ].join('\n');
  const r = await execa('unshare', ['-m', 'sh', '-c', script, 'sh', theirs, ...steps], { env: { RSC: deb, ERR: join(tr.root, 'rsc-err') }, reject: false });
  if (r.exitCode !== 0) {
    t.comment(`no mount namespace here (${r.stderr.trim()}): runsvchdir checked against the recorded texts only`);
  } else {
    const want = r.stdout.split('\n').map((l) => l.split(deb).join('PROG'));
    t.same(got.map((g) => g.replace(/ current -> .*$/, '')), want, 'same messages and exit codes, step by step');
    t.equal(state(mine), state(theirs), `same final links (${state(theirs)})`);
  }
  t.match(got[0] ?? '', /^single: 0 \[runsvchdir: single: now current\.\] \[\] current -> single, previous -> default$/);
  t.match(got[1] ?? '', /^single: 0 \[runsvchdir: single: current\.\]/);
  t.match(got[3] ?? '', /^nosuch: 111 \[\] \[PROG: fatal: nosuch: file does not exist\]/);
  t.match(got[4] ?? '', /^afile: 111 \[\] \[PROG: fatal: afilenot a directory\.\]/);
  t.match(got[5] ?? '', /^\.hidden: 111 \[\] \[PROG: fatal: \.hidden: must not start with a dot\.\]/);
  const u = await execa(ours, [], { reject: false });
  t.same([u.exitCode, u.stderr], [1, `usage: ${ours} dir\n`], 'usage');
});
