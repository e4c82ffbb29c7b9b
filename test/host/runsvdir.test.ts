// runsvdir, ours beside Debian's 2.1.2 where the behaviour is runit's: scan rules,
// bad entries, -P, runsv restarted after exit, the ps "log" argument, SIGALRM's forced
// rescan; ours alone for the 1000-service limit and SIGHUP (documented divergences:
// one process runs all services, so TERM and HUP stop them).
import t, { type Test } from 'tap';
import { chmodSync, chownSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { alive, BIN, haveBin, publicBin, readIf, spawnBg, tree, until, type Bg, type Tree } from '../lib/host.ts';
import { debianPath, pidIn, procStat, psArgs, toolFor, type Kind } from '../lib/runit.ts';

if (!haveBin()) t.fail(`${BIN} is missing: run make build`);

const sh = (body: string) => `#!/bin/sh\n${body}\n`;

function service(dir: string, files: Record<string, string>) {
  mkdirSync(dir, { recursive: true });
  for (const [rel, text] of Object.entries(files)) {
    mkdirSync(join(dir, rel, '..'), { recursive: true });
    writeFileSync(join(dir, rel), text, { mode: /(^|\/)(run|finish)$/.test(rel) ? 0o755 : 0o644 });
  }
}

interface Dir {
  kind: Kind;
  tr: Tree;
  svdir: string;
  bg: Bg;
}

/** runsvdir of each kind on its own copy of a service tree built by `build`. */
async function dirs(t: Test, build: (svdir: string, root: string) => void, args: (svdir: string) => string[] = (d) => [d], opts: { user?: number } = {}): Promise<Dir[]> {
  const out: Dir[] = [];
  for (const kind of ['debian', 'ours'] as Kind[]) {
    // another user cannot reach out/ in a private checkout: ours runs from a public copy
    const tr = tree(`runsvdir-${kind}-`, opts.user !== undefined ? publicBin().bin : BIN);
    build(tr.sv, tr.root);
    let cmd = toolFor(kind, tr.bin, 'runsvdir');
    const env = { PATH: kind === 'debian' ? debianPath() : (process.env.PATH ?? '') };
    if (kind === 'debian' && opts.user !== undefined) {
      // /root is closed to other users: give them copies
      const bin = join(tr.root, 'debian-bin');
      mkdirSync(bin);
      for (const b of ['runsvdir', 'runsv']) copyFileSync(toolFor(kind, tr.bin, b), join(bin, b));
      chmodSync(join(bin, 'runsvdir'), 0o755);
      chmodSync(join(bin, 'runsv'), 0o755);
      cmd = join(bin, 'runsvdir');
      env.PATH = `${bin}:${env.PATH}`;
    }
    const bg =
      opts.user === undefined
        ? spawnBg(cmd, args(tr.sv), { env })
        : spawnBg('setpriv', [`--reuid=${opts.user}`, `--regid=${opts.user}`, '--clear-groups', cmd, ...args(tr.sv)], { env });
    out.push({ kind, tr, svdir: tr.sv, bg });
  }
  t.teardown(async () => {
    for (const d of out) {
      // Debian's runsvdir leaves its runsv processes on TERM; HUP stops them
      d.bg.proc.kill(d.kind === 'debian' ? 'SIGHUP' : 'SIGTERM');
      const timer = setTimeout(() => d.bg.proc.kill('SIGKILL'), 6000);
      await d.bg.proc;
      clearTimeout(timer);
    }
    await until(() => out.every((d) => supervised(d).every((s) => !alive(pidIn(join(d.svdir, s, 'supervise'))))), 8000, 'services stopped').catch(() => undefined);
    for (const d of out) d.tr.cleanup();
  });
  return out;
}

/** Service names with a live supervise/ (status written). */
function supervised(d: Dir): string[] {
  return readdirSync(d.svdir).filter((n) => !n.startsWith('.') && existsSync(join(d.svdir, n, 'supervise', 'status'))).sort();
}

const lines = (d: Dir) => [...new Set(d.bg.output().split('\n').filter(Boolean))].map((l) => l.split(d.svdir).join('SVDIR')).sort();

t.test('scan rules and bad entries, as runsvdir', async (t) => {
  const ds = await dirs(t, (sv, root) => {
    service(join(sv, 'plain'), { run: sh('echo $$ >> ../../plain.pids; exec sleep 1000') });
    service(join(root, 'src', 'linked'), { run: sh('echo $$ >> ../../linked.pids; exec sleep 1000') });
    symlinkSync(join(root, 'src', 'linked'), join(sv, 'linked'));
    symlinkSync(join(root, 'src', 'linked'), join(sv, 'linked-again')); // same dev+ino: one runsv
    service(join(sv, '.dotted'), { run: sh('exec sleep 1000') });
    writeFileSync(join(sv, 'a-file'), 'not a service\n');
    symlinkSync(join(root, 'nowhere'), join(sv, 'dangling'));
    symlinkSync('loop2', join(sv, 'loop1'));
    symlinkSync('loop1', join(sv, 'loop2'));
    service(join(sv, 'norun'), {});
  });
  // (linked and linked-again are one directory: wait for the three services by name)
  const allThree = (d: Dir) => {
    const sup = supervised(d);
    return sup.includes('plain') && (sup.includes('linked') || sup.includes('linked-again')) && sup.includes('norun');
  };
  await until(() => ds.every((d) => allThree(d) && readIf(join(d.tr.root, 'linked.pids'))), 8000, 'services up');
  // let a few more scans happen (runsvdir rescans while something needs a look)
  await until(() => ds.every((d) => d.bg.output().includes('loop2')), 8000, 'warnings');
  for (const d of ds) {
    t.ok(allThree(d), `${d.kind}: plain, linked, norun supervised`);
    t.notOk(existsSync(join(d.svdir, '.dotted', 'supervise')), `${d.kind}: dot names skipped`);
    t.equal(readIf(join(d.tr.root, 'linked.pids'))?.split('\n').filter(Boolean).length, 1, `${d.kind}: two names for one directory: one service`);
  }
  const [deb, our] = ds.map(lines);
  t.same(our, deb, 'the same messages (unique lines)');
  t.ok(our!.includes('runsvdir SVDIR: warning: unable to stat dangling: file does not exist'), 'dangling symlink reported');
  t.ok(our!.includes('runsvdir SVDIR: warning: unable to stat loop1: symbolic link loop'), 'symlink loop reported');
  t.ok(our!.includes('runsv norun: fatal: unable to start ./run: file does not exist'), 'missing run reported');
  // a renamed directory keeps its (dev, ino): same service, not restarted
  const ourDir = ds[1]!;
  const p = pidIn(join(ourDir.svdir, 'plain', 'supervise'));
  renameSync(join(ourDir.svdir, 'plain'), join(ourDir.svdir, 'renamed'));
  await new Promise((r) => setTimeout(r, 300));
  t.equal(pidIn(join(ourDir.svdir, 'renamed', 'supervise')), p, 'renamed: the same process');
  t.ok(alive(p));
});

t.test('sv exit: runsvdir starts runsv again; the service comes back', async (t) => {
  const ds = await dirs(t, (sv) => service(join(sv, 'svc'), { run: sh('exec sleep 1000') }));
  await until(() => ds.every((d) => pidIn(join(d.svdir, 'svc', 'supervise')) > 0), 5000, 'up');
  const before = ds.map((d) => pidIn(join(d.svdir, 'svc', 'supervise')));
  for (const d of ds) {
    const r = await import('execa').then(({ execa }) => execa(toolFor('ours', d.tr.bin, 'sv'), ['exit', join(d.svdir, 'svc')], { reject: false }));
    t.equal(r.exitCode, 0);
  }
  await until(() => ds.every((d, i) => !alive(before[i]!)), 5000, 'old processes gone');
  // runsvdir notices a runsv's exit at its next wake-up (up to 5 s: SIGCHLD does not wake
  // it); ours starts it again at a pass 5 s after it ended
  await until(() => ds.every((d, i) => { const p = pidIn(join(d.svdir, 'svc', 'supervise')); return p > 0 && p !== before[i] && alive(p); }), 9000, 'restarted under a new runsv');
  t.pass('both restarted');
});

t.test('sv -w 5 exit: "runsv not running", as against runit (restarted only at a later scan)', async (t) => {
  // runit's runsvdir is not woken by its runsv's exit, so sv's next look finds no runsv:
  // "ok: NAME: runsv not running", exit 0. (Debian's is not compared here: it restarts
  // the runsv at its next wake-up, which may come within sv's first 420 ms.)
  const tr = tree('runsvdir-exit-');
  t.teardown(() => tr.cleanup());
  service(join(tr.sv, 'svc'), { run: sh('exec sleep 1000') });
  const bg = spawnBg(tr.our('runsvdir'), [tr.sv]);
  t.teardown(async () => {
    bg.proc.kill('SIGTERM');
    await bg.proc;
  });
  const pid = await until(() => pidIn(join(tr.sv, 'svc', 'supervise')), 5000, 'svc up');
  const { execa } = await import('execa');
  const t0 = Date.now();
  const r = await execa(tr.our('sv'), ['-w', '5', 'exit', join(tr.sv, 'svc')], { reject: false });
  t.same([r.exitCode, r.stdout, r.stderr], [0, `ok: ${join(tr.sv, 'svc')}: runsv not running`, ''], 'ok: runsv not running, exit 0');
  t.notOk(alive(pid), 'the service is stopped');
  const back = await until(() => { const p = pidIn(join(tr.sv, 'svc', 'supervise')); return p > 0 && p !== pid && alive(p) && p; }, 9000, 'a new runsv');
  t.ok(back, 'started again at a later pass');
  t.ok(Date.now() - t0 >= 4500, `not before runsvdir's 5 s wake-up (${Date.now() - t0} ms)`);
});

t.test('-P: each service in its own session', async (t) => {
  const tr = tree('runsvdir-P-');
  t.teardown(() => tr.cleanup());
  service(join(tr.sv, 'a'), { run: sh('exec sleep 1000') });
  for (const setsid of [true, false]) {
    const bg = spawnBg(tr.our('runsvdir'), setsid ? ['-P', tr.sv] : [tr.sv]);
    const pid = await until(() => pidIn(join(tr.sv, 'a', 'supervise')), 5000, 'a up');
    const sid = Number(procStat(pid)[3]);
    const ours = Number(procStat(bg.proc.pid!)[3]);
    if (setsid) t.equal(sid, pid, '-P: the service leads its own session');
    else t.equal(sid, ours, 'without -P: the service is in runsvdir\'s session');
    bg.proc.kill('SIGTERM');
    await bg.proc;
    t.notOk(alive(pid), 'stopped with runsvdir');
  }
});

t.test('the log argument: stderr scrolls through it in ps, as runsvdir does', async (t) => {
  const log = 'log: ' + '.'.repeat(300);
  const ds = await dirs(
    t,
    (sv) => {
      service(join(sv, 'talker'), { run: sh('echo "hello from stderr" >&2; exec sleep 1000') });
      symlinkSync('/nonexistent/x', join(sv, 'broken'));
    },
    (d) => ['-P', d, log],
  );
  const tail = (d: Dir) => psArgs(d.bg.proc.pid!).split(d.svdir).join('SVDIR');
  await until(() => ds.every((d) => tail(d).includes('hello from stderr') && tail(d).includes('file does not exist')), 8000, 'messages in ps');
  // the scans repeat the warning a different number of times: compare the shape and the parts
  for (const d of ds) {
    const a = tail(d);
    const prefix = `${toolFor(d.kind, d.tr.bin, 'runsvdir')} -P SVDIR log: `;
    t.ok(a.startsWith(prefix), `${d.kind}: argv kept up to "log: "`);
    const raw = psArgs(d.bg.proc.pid!);
    t.equal(raw.length - raw.indexOf(' log: ') - 1, log.length, `${d.kind}: the log argument keeps its length`);
    t.match(a, /hello from stderr\n/, `${d.kind}: a service's stderr, newline kept raw`);
    t.match(a, /runsvdir SVDIR: warning: unable to stat broken: file does not exist\n/, `${d.kind}: runsvdir's own warnings`);
  }
  t.equal(readFileSync(`/proc/${ds[1]!.bg.proc.pid}/comm`, 'utf8'), 'runsvdir\n', 'ours: process name runsvdir (ps -C, pidof)');
  t.equal(ds[1]!.bg.output(), '', 'ours: nothing on the original stderr');
});

t.test('a short log argument is refused as runsvdir does', async (t) => {
  const ds = await dirs(t, () => undefined, (d) => [d, 'log: .']);
  await until(() => ds.every((d) => d.bg.output().includes('disabled')), 5000, 'warnings');
  const [deb, our] = ds.map(lines);
  t.same(our, deb);
  t.same(our, ['runsvdir SVDIR: warning: log must have at least seven characters.', 'runsvdir SVDIR: warning: log service disabled.']);
  // (Debian's runsvdir can sit 5 s on a HUP that came during its first sleep: no need to wait)
  ds[0]!.bg.proc.kill('SIGKILL');
});

t.test('SIGALRM: a forced scan, recorded in .forced-rescan (Debian)', async (t) => {
  const ds = await dirs(t, (sv) => service(join(sv, 'a'), { down: '', run: sh('exec sleep 1000') }));
  await until(() => ds.every((d) => supervised(d).length === 1), 5000, 'up');
  const t0 = Date.now() / 1000;
  for (const d of ds) d.bg.proc.kill('SIGALRM');
  // ours scans within a second; Debian's waits for its next pass when it scanned less
  // than a second ago (up to 5 s)
  await until(() => existsSync(join(ds[1]!.svdir, '.forced-rescan')), 1500, 'ours: .forced-rescan written');
  await until(() => existsSync(join(ds[0]!.svdir, '.forced-rescan')), 7000, 'debian: .forced-rescan written');
  const t1 = Date.now() / 1000;
  for (const d of ds) {
    const b = readFileSync(join(d.svdir, '.forced-rescan'), 'latin1');
    t.match(b, /^@4000[0-9a-f]{20}$/, `${d.kind}: a 25-byte TAI64N label`);
    const sec = Number(BigInt('0x' + b.slice(1, 17)) - 0x400000000000000an);
    t.ok(sec >= Math.floor(t0) && sec <= t1, `${d.kind}: the time of the scan`);
    t.equal(d.bg.proc.exitCode, null, `${d.kind}: still running`);
  }
  t.notOk(existsSync(join(ds[1]!.svdir, '.forced-rescan', 'supervise')), 'not taken for a service');
});

t.test('unreadable directories, as an unprivileged runsvdir', async (t) => {
  const ds = await dirs(
    t,
    (sv, root) => {
      service(join(sv, 'good'), { run: sh('exec sleep 1000') });
      service(join(sv, 'locked'), { run: sh('exec sleep 1000') });
      for (const p of [root, sv, join(root, 'bin'), join(sv, 'good'), join(sv, 'good', 'run')]) chownSync(p, 65534, 65534);
      chmodSync(join(sv, 'locked'), 0o700); // root's: nobody cannot enter it
    },
    (d) => [d],
    { user: 65534 },
  );
  await until(() => ds.every((d) => pidIn(join(d.svdir, 'good', 'supervise')) > 0 && d.bg.output().includes('locked')), 8000, 'good up, locked reported');
  const [deb, our] = ds.map(lines);
  t.same(our, deb, 'the same messages');
  t.ok(our!.includes('runsv locked: fatal: unable to change to directory: access denied'), our!.join(' | '));
  for (const d of ds) t.ok(alive(pidIn(join(d.svdir, 'good', 'supervise'))), `${d.kind}: good runs`);
});

t.test('more than 1000 services: one line each for the extra, the rest supervised', async (t) => {
  const tr = tree('runsvdir-1000-');
  t.teardown(() => tr.cleanup());
  for (let i = 0; i < 1002; i++) {
    const d = join(tr.sv, `s${String(i).padStart(4, '0')}`);
    mkdirSync(d);
    writeFileSync(join(d, 'down'), '');
    writeFileSync(join(d, 'run'), sh('exec sleep 1000'), { mode: 0o755 });
  }
  const bg = spawnBg(tr.our('runsvdir'), [tr.sv]);
  t.teardown(async () => {
    bg.proc.kill('SIGTERM');
    await bg.proc;
  });
  const count = () => readdirSync(tr.sv).filter((n) => existsSync(join(tr.sv, n, 'supervise', 'status'))).length;
  await until(() => count() === 1000, 20000, '1000 supervised');
  await until(() => bg.output().split('\n').filter(Boolean).length >= 2, 5000, 'two refusals');
  await new Promise((r) => setTimeout(r, 1500)); // more scans: no more lines
  const out = bg.output().split('\n').filter(Boolean);
  t.equal(out.length, 2, 'one line per refused service, not one per scan');
  for (const l of out) t.match(l, /^runsvdir .*: warning: unable to start runsv s\d{4}: too many services\.$/);
  // a slot frees up: the next scan takes one of them
  const refused = out.map((l) => /runsv (s\d{4})/.exec(l)![1]!);
  const victim = readdirSync(tr.sv).find((n) => !n.startsWith('.') && !refused.includes(n))!; // not .events
  rmSync(join(tr.sv, victim), { recursive: true });
  await until(() => refused.some((n) => existsSync(join(tr.sv, n, 'supervise', 'status'))), 8000, 'a refused service admitted');
  t.equal(count(), 1000, 'still 1000');
  // one works normally
  const one = refused.find((n) => existsSync(join(tr.sv, n, 'supervise', 'status')))!;
  unlinkSync(join(tr.sv, one, 'down'));
  t.pass(`${one} admitted`);
});

t.test('SIGHUP: every service stopped, exit 111', async (t) => {
  const tr = tree('runsvdir-hup-');
  t.teardown(() => tr.cleanup());
  service(join(tr.sv, 'a'), { run: sh('exec sleep 1000'), finish: sh('echo done > ../../finished') });
  const bg = spawnBg(tr.our('runsvdir'), ['-P', tr.sv]);
  const pid = await until(() => pidIn(join(tr.sv, 'a', 'supervise')), 5000, 'a up');
  bg.proc.kill('SIGHUP');
  const r = await bg.proc;
  t.equal(r.exitCode, 111);
  t.notOk(alive(pid), 'the service is stopped');
  t.equal(readIf(join(tr.root, 'finished')), 'done\n', './finish ran');
});

t.test('RUNSVDIR_STOP_TIMEOUT that is not a number of seconds: a warning, and the default 4 s', async (t) => {
  for (const value of ['abc', '-1']) {
    const tr = tree('runsvdir-timeout-');
    t.teardown(() => tr.cleanup());
    // takes 1 s to stop after TERM: killed at once when the timeout is taken as 0
    service(join(tr.sv, 'slow'), { run: sh(`trap 'sleep 1; echo clean > ../../stopped; exit 0' TERM; while :; do sleep 0.1; done`) });
    const bg = spawnBg(tr.our('runsvdir'), [tr.sv], { env: { RUNSVDIR_STOP_TIMEOUT: value } });
    await until(() => pidIn(join(tr.sv, 'slow', 'supervise')), 5000, 'slow up');
    await new Promise((r) => setTimeout(r, 300)); // the trap is set
    bg.proc.kill('SIGTERM');
    const r = await bg.proc;
    t.equal(r.exitCode, 0, `${value}: exit 0`);
    t.ok(bg.output().includes(`runsvdir ${tr.sv}: warning: RUNSVDIR_STOP_TIMEOUT must be a number of seconds (0 or more), not '${value}': using 4\n`), `${value}: one clear warning`);
    t.equal(readIf(join(tr.root, 'stopped')), 'clean\n', `${value}: the service had time to stop (the default 4 s)`);
  }
});

/** Stage 2 on tr.sv: the executable named 2 (as /etc/runit/2) supervises $RUNIT_TS_SVDIR; stopped at the test's end. */
function stage2(t: Test, tr: Tree): void {
  const exe = join(tr.bin, '2');
  symlinkSync(BIN, exe);
  const bg = spawnBg(exe, [], { env: { RUNIT_TS_SVDIR: tr.sv } });
  t.teardown(async () => {
    bg.proc.kill('SIGTERM');
    await bg.proc;
  });
}

t.test('stage 2: a fresh service\'s first stats.json waits until events are served; an older one is rewritten at once', async (t) => {
  const tr = tree('runsvdir-stage2-stats-');
  t.teardown(() => tr.cleanup());
  service(join(tr.sv, 'fresh'), { run: sh('exec sleep 1000') });
  service(join(tr.sv, 'old'), { run: sh('exec sleep 1000') });
  // ready when its notification comes: that is said at once, held or not
  service(join(tr.sv, 'notify'), { run: sh('echo >&3; exec sleep 1000'), 'notification-fd': '3\n' });
  // what a previous supervisor left: not true of what this one starts
  mkdirSync(join(tr.sv, 'old', 'supervise'), { mode: 0o700 });
  writeFileSync(join(tr.sv, 'old', 'supervise', 'stats.json'), '{"restarts":7,"lastExit":{"code":1,"signal":0}}\n');
  stage2(t, tr);
  const stats = (name: string) => join(tr.sv, name, 'supervise', 'stats.json');
  const mtime = (p: string) => statSync(p).mtimeMs;
  await until(() => readIf(stats('old'))?.startsWith('{"restarts":0,'), 5000, 'old/supervise/stats.json rewritten');
  await until(() => existsSync(stats('fresh')), 5000, 'fresh/supervise/stats.json');
  await until(() => existsSync(join(tr.sv, '.events')), 5000, 'the events socket');
  t.match(JSON.parse(readFileSync(stats('fresh'), 'utf8')), { restarts: 0, lastExit: null, ready: { how: 'started' }, failed: null });
  t.match(JSON.parse(readFileSync(stats('old'), 'utf8')), { restarts: 0, lastExit: null });
  // the service was up (stat written at its spawn) for the serve delay (1 s) before its
  // first stats.json; the older file was replaced by the first pass itself
  const stat = (name: string) => mtime(join(tr.sv, name, 'supervise', 'stat'));
  t.ok(mtime(stats('fresh')) - stat('fresh') >= 900, `fresh: stats.json ${Math.round(mtime(stats('fresh')) - stat('fresh'))} ms after stat`);
  t.ok(mtime(stats('old')) - stat('old') < 900, `old: stats.json ${Math.round(mtime(stats('old')) - stat('old'))} ms after stat`);
  t.match(JSON.parse(readFileSync(stats('notify'), 'utf8')), { ready: { how: 'notification-fd' } });
  t.ok(mtime(stats('notify')) - stat('notify') < 900, `notify: stats.json ${Math.round(mtime(stats('notify')) - stat('notify'))} ms after stat`);
});

t.test('a large first pass (a helper thread makes supervise/ from the other end): the same files and messages as runsv', async (t) => {
  const N = 80; // over the supervisor's PREPARE_MIN
  const ds = await dirs(t, (sv, root) => {
    for (let i = 0; i < N; i++) service(join(sv, `s${String(i).padStart(2, '0')}`), { run: sh('exec sleep 1000'), 'log/run': sh('exec cat >/dev/null') });
    // supervise/ a dangling symlink: runsv makes its target (relative to the service)
    service(join(root, 'linked'), { run: sh('exec sleep 1000') });
    service(join(sv, 'linksup'), { run: sh('exec sleep 1000') });
    symlinkSync('../../sup-target', join(sv, 'linksup', 'supervise'));
    // ./log a file: a warning, no log service
    service(join(sv, 'logfile'), { run: sh('exec sleep 1000'), log: 'not a directory\n' });
    // supervise/ a file: runsv cannot set up
    service(join(sv, 'supfile'), { run: sh('exec sleep 1000'), supervise: 'not a directory\n' });
  });
  const names = [...Array.from({ length: N }, (_, i) => `s${String(i).padStart(2, '0')}`), 'linksup', 'logfile'];
  await until(() => ds.every((d) => names.every((n) => pidIn(join(d.svdir, n, 'supervise')) > 0)), 30000, 'all up');
  await until(() => ds.every((d) => d.bg.output().includes('supfile')), 8000, 'supfile reported');
  const FILES = ['control', 'lock', 'ok', 'pid', 'stat', 'status'];
  const shape = (dir: string) => {
    const out: string[] = [];
    for (const f of FILES) {
      try {
        const st = statSync(join(dir, f));
        out.push(`${f} ${st.isFIFO() ? 'fifo' : st.isFile() ? 'file' : 'other'} ${(st.mode & 0o7777).toString(8)}`);
      } catch {
        out.push(`${f} missing`);
      }
    }
    const st = statSync(dir);
    return `${(st.mode & 0o7777).toString(8)}: ${out.join(', ')}`;
  };
  const shapes = ds.map((d) => names.flatMap((n) => [`${n}: ${shape(join(d.svdir, n, 'supervise'))}`, ...(n === 'logfile' || n === 'linksup' ? [] : [`${n}/log: ${shape(join(d.svdir, n, 'log', 'supervise'))}`])]));
  t.same(shapes[1], shapes[0], 'every supervise/ (and log/supervise/) as runsv makes it');
  for (const d of ds) {
    t.ok(existsSync(join(d.tr.root, 'sup-target', 'status')), `${d.kind}: a dangling supervise symlink's target made`);
    t.notOk(existsSync(join(d.svdir, 'logfile', 'log', 'supervise')), `${d.kind}: nothing made in a log that is a file`);
  }
  const [deb, our] = ds.map(lines);
  t.same(our, deb, 'the same messages (unique lines)');
});

t.test('stage 2, a large first pass: every fresh service\'s first stats.json still waits until events are served', async (t) => {
  const N = 80;
  const tr = tree('runsvdir-stage2-many-');
  t.teardown(() => tr.cleanup());
  const names = Array.from({ length: N }, (_, i) => `s${String(i).padStart(2, '0')}`);
  for (const n of names) service(join(tr.sv, n), { run: sh('exec sleep 1000'), 'log/run': sh('exec cat >/dev/null') });
  stage2(t, tr);
  const file = (n: string, log: boolean, f: string) => join(tr.sv, n, ...(log ? ['log'] : []), 'supervise', f);
  await until(() => names.every((n) => existsSync(file(n, false, 'stats.json')) && existsSync(file(n, true, 'stats.json'))) && existsSync(join(tr.sv, '.events')), 15000, 'every stats.json, the events socket');
  // the held ones are written when the events socket is made, a second after the pass
  const served = statSync(join(tr.sv, '.events')).mtimeMs;
  const early = names.flatMap((n) => [false, true].filter((log) => served - statSync(file(n, log, 'stats.json')).mtimeMs > 500).map((log) => `${n}${log ? '/log' : ''}`));
  t.same(early, [], 'no fresh stats.json written before events are served (the helper\'s supervise/ directories are fresh too)');
});
