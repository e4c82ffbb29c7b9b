// runsv, ours beside Debian's runit 2.1.2: the same service directories driven by the
// same control bytes (written straight to supervise/control, no sv involved) must give
// the same supervise/ files, the same signals, control scripts, ./finish arguments.
import t, { type Test } from 'tap';
import { chmodSync, closeSync, constants as C, existsSync, mkdirSync, openSync, readFileSync, rmSync, symlinkSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { alive, BIN, haveBin, readIf, spawnBg, tree, until, type Bg } from '../lib/host.ts';
import { pidIn, readStatus, snapshot, toolFor, type Kind } from '../lib/runit.ts';

if (!haveBin()) t.fail(`${BIN} is missing: run make build`);

const sh = (body: string) => `#!/bin/sh\n${body}\n`;

interface Side {
  kind: Kind;
  /** the service directory */
  dir: string;
  bg: Bg;
  /** write control bytes to the service's (or its log's) supervise/control */
  ctl: (bytes: string, log?: boolean) => void;
  sup: (log?: boolean) => string;
  file: (rel: string) => string;
}

/** One service directory per side from the same files, under Debian's runsv and ours. */
async function pair(t: Test, files: Record<string, string | [string, number]>): Promise<Side[]> {
  const tr = tree('runsv-test-');
  const sides: Side[] = [];
  for (const kind of ['debian', 'ours'] as Kind[]) {
    const dir = join(tr.root, kind, 'svc');
    for (const [rel, v] of Object.entries(files)) {
      const [text, mode] = typeof v === 'string' ? [v, /(^|\/)(run|finish|check)$|^control\//.test(rel) ? 0o755 : 0o644] : v;
      mkdirSync(join(dir, rel, '..'), { recursive: true });
      writeFileSync(join(dir, rel), text);
      chmodSync(join(dir, rel), mode);
    }
    mkdirSync(dir, { recursive: true });
    const bg = spawnBg(toolFor(kind, tr.bin, 'runsv'), [dir], { cwd: join(tr.root, kind) });
    const sup = (log = false) => join(dir, log ? 'log/supervise' : 'supervise');
    sides.push({
      kind,
      dir,
      bg,
      sup,
      file: (rel) => join(dir, rel),
      ctl: (bytes, log = false) => {
        const fd = openSync(join(sup(log), 'control'), C.O_WRONLY | C.O_NONBLOCK);
        writeSync(fd, Buffer.from(bytes, 'latin1'));
        closeSync(fd);
      },
    });
  }
  t.teardown(async () => {
    const left = sides.flatMap((s) => [pidIn(s.sup()), pidIn(s.sup(true))]).filter((p) => p > 0);
    await Promise.all(
      sides.map(async (s) => {
        s.bg.proc.kill('SIGTERM');
        const timer = setTimeout(() => s.bg.proc.kill('SIGKILL'), 5000);
        await s.bg.proc;
        clearTimeout(timer);
      }),
    );
    for (const p of left) if (alive(p)) process.kill(p, 'SIGKILL');
    tr.cleanup();
  });
  await until(() => sides.every((s) => existsSync(join(s.sup(), 'status'))), 5000, 'both runsv up');
  return sides;
}

const statIs = (s: Side, text: string, log = false) => readIf(join(s.sup(log), 'stat')) === text;

async function both(sides: Side[], what: string, fn: (s: Side) => boolean, ms = 5000) {
  try {
    await until(() => sides.every(fn), ms, `${what} on both sides`);
  } catch (e) {
    // which side did not get there, and what its supervise/ says
    const late = sides.filter((s) => !fn(s)).map((s) => `${s.kind}: stat ${JSON.stringify(readIf(join(s.sup(), 'stat')))}, pid ${pidIn(s.sup())}`);
    throw new Error(`${(e as Error).message} (${late.join('; ')})`);
  }
}

t.test('supervise/ files are the same as Debian runsv writes, state by state', async (t) => {
  const sides = await pair(t, {
    run: sh('exec sleep 1000'),
    finish: sh('exec sleep 0.4'),
    'log/run': sh('exec cat > ../log.txt'),
    'log/down': '',
  });
  // runsv writes stat, then status: let both settle before comparing
  const same = async (what: string, log = false) => {
    const snap = () => sides.map((s) => snapshot(s.sup(log)));
    await until(() => new Set(snap()).size === 1, 3000, what).catch(() => undefined); // settle: stat is renamed before status
    const [deb, our] = snap();
    t.equal(our, deb, `${log ? 'log/' : ''}supervise/ ${what}`);
  };
  await both(sides, 'running', (s) => statIs(s, 'run\n') && pidIn(s.sup()) > 0);
  await same('running');
  await same('log down (log/down): no log/supervise/pid yet, as runsv', true);
  for (const s of sides) s.ctl('p');
  await both(sides, 'paused', (s) => statIs(s, 'run, paused\n'));
  await same('paused');
  for (const s of sides) s.ctl('c');
  await both(sides, 'continued', (s) => statIs(s, 'run\n'));
  await same('continued');
  for (const s of sides) s.ctl('d');
  await both(sides, 'finishing', (s) => statIs(s, 'finish, want down\n'));
  await same('./finish running after d');
  await both(sides, 'down', (s) => statIs(s, 'down\n'));
  await same('down');
  for (const s of sides) s.ctl('p');
  await both(sides, 'paused while down', (s) => statIs(s, 'down, paused\n'));
  await same('paused while down');
  for (const s of sides) s.ctl('u', true);
  await both(sides, 'log up', (s) => statIs(s, 'run\n', true) && pidIn(s.sup(true)) > 0);
  await same('log started with u', true);
  for (const s of sides) s.ctl('cu');
  await both(sides, 'up again', (s) => statIs(s, 'run\n') && pidIn(s.sup()) > 0);
  await same('up again');
  for (const s of sides) s.ctl('x');
  await both(sides, 'runsv exited', (s) => s.bg.proc.exitCode !== null, 8000);
  for (const s of sides) t.equal(s.bg.proc.exitCode, 0, `${s.kind}: runsv exits 0 after x`);
  await same('after exit');
  await same('log after exit', true);
});

t.test('a service ignoring TERM: "got TERM", then k', async (t) => {
  // the file says the shell has set its trap: a TERM before that ends it (a loaded machine)
  const sides = await pair(t, { run: sh("trap '' TERM; : > trapped; exec sleep 1000") });
  await both(sides, 'running', (s) => statIs(s, 'run\n') && pidIn(s.sup()) > 0 && existsSync(s.file('trapped')));
  for (const s of sides) s.ctl('d');
  await both(sides, 'got TERM', (s) => statIs(s, 'run, got TERM, want down\n'));
  await until(() => snapshot(sides[1]!.sup()) === snapshot(sides[0]!.sup()), 1000, 'settled').catch(() => undefined);
  t.equal(snapshot(sides[1]!.sup()), snapshot(sides[0]!.sup()), 'run, got TERM, want down');
  const pids = sides.map((s) => pidIn(s.sup()));
  for (const s of sides) s.ctl('k');
  await both(sides, 'killed', (s) => statIs(s, 'down\n'));
  t.notOk(pids.some(alive), 'k killed both');
  await until(() => snapshot(sides[1]!.sup()) === snapshot(sides[0]!.sup()), 1000, 'settled').catch(() => undefined);
  t.equal(snapshot(sides[1]!.sup()), snapshot(sides[0]!.sup()), 'down after k');
});

t.test('signals for a h i q 1 2 p c, and control/<c> scripts', async (t) => {
  const trap = ['HUP', 'INT', 'QUIT', 'USR1', 'USR2', 'ALRM', 'CONT'].map((s) => `trap 'echo ${s} >> sig.log' ${s}`).join('\n');
  const sides = await pair(t, {
    run: sh(`${trap}\necho run >> events\nwhile :; do sleep 0.05; done`),
    // (an asynchronous command's stdin is /dev/null unless redirected from another fd)
    'log/run': sh(`trap 'echo HUP >> ../logsig.log' HUP\nexec 3<&0\ncat <&3 > ../log.txt &\nwhile kill -0 $! 2>/dev/null; do wait $!; done`),
    // exit 0: the signal is not sent; the output goes to the log
    'control/h': sh('echo custom h; echo h >> events; exit 0'),
    // exit 1: the signal is sent too
    'control/i': sh('echo custom i; exit 1'),
    // not executable: ignored
    'control/q': [sh('echo custom q; exit 0'), 0o644],
    'control/t': sh('echo t >> events; exit 0'),
    'control/u': sh('echo u >> events'),
    'control/d': sh('echo d >> events'),
    'control/x': sh('echo x >> events'),
  });
  await both(sides, 'running', (s) => statIs(s, 'run\n') && readIf(s.file('events')) === 'u\nrun\n');
  t.pass('control/u ran before ./run on both');
  const pids = sides.map((s) => pidIn(s.sup()));
  for (const c of 'ahiq12') {
    for (const s of sides) s.ctl(c);
    await new Promise((r) => setTimeout(r, 20));
  }
  // the shell runs pending traps in signal-number order: compare as sets
  const sigs = (s: Side) => (readIf(s.file('sig.log')) ?? '').split('\n').filter(Boolean).sort().join(' ');
  await both(sides, 'signals trapped', (s) => sigs(s).split(' ').length >= 5).catch(() => undefined);
  for (const s of sides) t.equal(sigs(s), 'ALRM INT QUIT USR1 USR2', `${s.kind}: a i q 1 2 delivered, h suppressed by control/h exiting 0`);
  // t with control/t exiting 0: no TERM, no restart
  for (const s of sides) s.ctl('t');
  await both(sides, 'control/t ran', (s) => (readIf(s.file('events')) ?? '').endsWith('t\n'));
  // p: stopped; c: running again (with CONT)
  for (const s of sides) s.ctl('p');
  await both(sides, 'paused', (s) => procState(pidIn(s.sup())) === 'T');
  for (const s of sides) s.ctl('c');
  await both(sides, 'continued', (s) => procState(pidIn(s.sup())) !== 'T' && (readIf(s.file('sig.log')) ?? '').endsWith('CONT\n'));
  t.same(sides.map((s) => pidIn(s.sup())), pids, 'the same processes all along');
  // control scripts never run for the log service: HUP reaches the logger
  for (const s of sides) s.ctl('h', true);
  await both(sides, 'logger got HUP', (s) => readIf(s.file('logsig.log')) === 'HUP\n');
  for (const s of sides) t.match(readIf(s.file('log.txt')), /^custom h\ncustom i\n/, `${s.kind}: control script output went to the log`);
  // d: control/t (suppresses TERM), then CONT and control/d; the service keeps running
  for (const s of sides) s.ctl('d');
  const conts = (s: Side) => sigs(s).split(' ').filter((x) => x === 'CONT').length;
  await both(sides, 'control/d ran, CONT sent', (s) => (readIf(s.file('events')) ?? '').endsWith('t\nd\n') && conts(s) === 2);
  const [deb, our] = sides.map((s) => [readIf(s.file('events')), sigs(s), readIf(s.sup() + '/stat')]);
  t.same(our, deb, 'same events, signals and state');
  // let the teardown's TERM through
  for (const s of sides) rmSync(s.file('control/t'));
});

t.test('./finish gets exit code and signal; restart throttled to 1 s', async (t) => {
  const sides = await pair(t, {
    run: sh('echo run >> runs\nif [ -e crash ]; then rm crash; exit 3; fi\nexec sleep 1000'),
    finish: sh('echo "$1 $2" >> finish.log'),
  });
  // the run script must be past its crash check (exec'd into sleep) before the file is made
  // and the kill sent: a shell killed earlier leaves runs a line short, or takes the crash
  // for itself, and under load that happened
  const slept = (s: Side) => (readIf(`/proc/${pidIn(s.sup())}/comm`) ?? '') === 'sleep\n';
  await both(sides, 'running', (s) => pidIn(s.sup()) > 0 && statIs(s, 'run\n') && slept(s));
  for (const s of sides) writeFileSync(s.file('crash'), '');
  for (const s of sides) process.kill(pidIn(s.sup()), 'SIGKILL');
  await both(sides, 'restarted after crash', (s) => readIf(s.file('runs')) === 'run\nrun\nrun\n' && statIs(s, 'run\n'), 6000);
  for (const s of sides) t.equal(readIf(s.file('finish.log')), '-1 9\n3 0\n', `${s.kind}: ./finish -1 9, then 3 0`);
});

t.test('SIGTERM: as x; the logger sees EOF; runsv exits 0', async (t) => {
  const sides = await pair(t, {
    run: sh('echo hello; exec sleep 1000'),
    finish: sh('echo finished > finished'),
    'log/run': sh('cat > ../log.txt; echo eof >> ../log.txt'),
  });
  await both(sides, 'running', (s) => pidIn(s.sup()) > 0 && pidIn(s.sup(true)) > 0 && readIf(s.file('log.txt')) === 'hello\n');
  for (const s of sides) s.ctl('x', true); // 'x' for the log is ignored
  await new Promise((r) => setTimeout(r, 100));
  for (const s of sides) t.ok(statIs(s, 'run\n', true), `${s.kind}: x on the log is ignored`);
  for (const s of sides) s.bg.proc.kill('SIGTERM');
  await both(sides, 'exited', (s) => s.bg.proc.exitCode !== null, 8000);
  for (const s of sides) {
    t.equal(s.bg.proc.exitCode, 0, `${s.kind}: exit 0`);
    t.equal(readIf(s.file('finished')), 'finished\n', `${s.kind}: ./finish ran`);
    t.equal(readIf(s.file('log.txt')), 'hello\neof\n', `${s.kind}: logger got EOF and finished`);
  }
  t.equal(snapshot(sides[1]!.sup(true)), snapshot(sides[0]!.sup(true)), 'log/supervise the same');
});

t.test('the log pipe outlives the logger: no line lost, no SIGPIPE', async (t) => {
  const tr = tree('runsv-pipe-');
  t.teardown(() => tr.cleanup());
  const dir = join(tr.root, 'svc');
  mkdirSync(join(dir, 'log'), { recursive: true });
  writeFileSync(join(dir, 'run'), sh('trap "echo PIPE > sigpipe" PIPE\ni=0\nwhile :; do i=$((i+1)); echo "line $i" || echo "EPIPE $i" > epipe; sleep 0.01; done'), { mode: 0o755 });
  writeFileSync(join(dir, 'log/run'), sh('exec cat >> ../log.txt'), { mode: 0o755 });
  const bg = spawnBg(toolFor('ours', tr.bin, 'runsv'), [dir]);
  t.teardown(async () => {
    bg.proc.kill('SIGTERM');
    await bg.proc;
  });
  const ctl = (c: string, log = false) => {
    const fd = openSync(join(dir, log ? 'log/supervise/control' : 'supervise/control'), C.O_WRONLY | C.O_NONBLOCK);
    writeSync(fd, c);
    closeSync(fd);
  };
  const count = () => (readIf(join(dir, 'log.txt')) ?? '').split('\n').filter(Boolean).length;
  await until(() => count() > 20, 5000, 'lines logged');
  const svcPid = pidIn(join(dir, 'supervise'));
  for (let round = 0; round < 3; round++) {
    // stop the writer, then the logger (so it dies idle, holding no line), then let the writer go on
    ctl('p');
    await until(() => procState(svcPid) === 'T', 2000, 'service paused');
    const logger = pidIn(join(dir, 'log/supervise'));
    if (round === 1) process.kill(logger, 'SIGKILL');
    else ctl('d', true);
    await until(() => !alive(logger) && pidIn(join(dir, 'log/supervise')) === 0, 3000, 'logger gone');
    const before = count();
    ctl('c');
    await new Promise((r) => setTimeout(r, 300));
    t.equal(count(), before, `round ${round}: nothing logged while the logger is down`);
    ctl('u', true);
    await until(() => count() > before + 20, 5000, 'the lines written meanwhile reach the new logger');
  }
  const lines = (readIf(join(dir, 'log.txt')) ?? '').split('\n').filter(Boolean);
  const gaps = lines.filter((l, i) => l !== `line ${i + 1}`);
  t.same(gaps, [], `${lines.length} lines in order, none lost`);
  t.ok(alive(svcPid), 'the service was never stopped');
  t.notOk(existsSync(join(dir, 'sigpipe')) || existsSync(join(dir, 'epipe')), 'no SIGPIPE, no EPIPE');
});

t.test('bad input: exec failures, lock held, garbage control bytes, usage', async (t) => {
  const tr = tree('runsv-bad-');
  t.teardown(() => tr.cleanup());
  const mk = (name: string, files: Record<string, string | [string, number] | null>) => {
    const d = join(tr.root, name);
    mkdirSync(d, { recursive: true });
    for (const [rel, v] of Object.entries(files)) {
      if (v === null) mkdirSync(join(d, rel), { recursive: true });
      else {
        mkdirSync(join(d, rel, '..'), { recursive: true });
        writeFileSync(join(d, rel), typeof v === 'string' ? v : v[0], { mode: typeof v === 'string' ? 0o755 : v[1] });
      }
    }
    return d;
  };
  const cases: Array<[string, Record<string, string | [string, number] | null>, RegExp]> = [
    ['norun', {}, /^runsv norun: fatal: unable to start \.\/run: file does not exist$/m],
    ['noexec', { run: [sh('exit 0'), 0o644] }, /^runsv noexec: fatal: unable to start \.\/run: access denied$/m],
    ['dirrun', { run: null }, /^runsv dirrun: fatal: unable to start \.\/run: access denied$/m],
    ['badfinish', { run: sh('exit 0'), finish: [sh('exit 0'), 0o644] }, /^runsv badfinish: fatal: unable to start \.\/finish: access denied$/m],
    ['badlog', { run: sh('exec sleep 1000'), 'log/run': [sh('exit 0'), 0o600] }, /^runsv badlog: fatal: unable to start log\/\.\/run: access denied$/m],
    ['noformat', { run: 'exit 0\n' }, /^runsv noformat: fatal: unable to start \.\/run: exec format error$/m],
    ['noformatnoexec', { run: ['exit 0\n', 0o644] }, /^runsv noformatnoexec: fatal: unable to start \.\/run: access denied$/m],
    ['danglingrun', {}, /^runsv danglingrun: fatal: unable to start \.\/run: file does not exist$/m],
    ['looprun', {}, /^runsv looprun: fatal: unable to start \.\/run: symbolic link loop$/m],
    ['looplog', { run: sh('exec sleep 1000') }, /^runsv looplog: warning: unable to stat\(\) \.\/log: : symbolic link loop$/m],
    ['filelog', { run: sh('exec sleep 1000'), log: ['', 0o644] }, /^runsv filelog: warning: \.\/log: not a directory\.$/m],
    ['danglingsup', { run: sh('exec sleep 1000') }, /^$/],
  ];
  for (const [name, files] of cases) {
    for (const kind of ['debian', 'ours'] as Kind[]) {
      const d = mk(`${kind}/${name}`, files);
      if (name === 'danglingrun') symlinkSync('nowhere', join(d, 'run'));
      if (name === 'looprun') symlinkSync('run', join(d, 'run'));
      if (name === 'looplog') symlinkSync('log', join(d, 'log'));
      // supervise -> a directory not there yet: runsv makes it
      if (name === 'danglingsup') symlinkSync('../sup-elsewhere', join(d, 'supervise'));
    }
  }
  const runs: Array<{ kind: Kind; name: string; re: RegExp; bg: Bg }> = [];
  for (const [name, , re] of cases) {
    for (const kind of ['debian', 'ours'] as Kind[]) {
      runs.push({ kind, name, re, bg: spawnBg(toolFor(kind, tr.bin, 'runsv'), [name], { cwd: join(tr.root, kind) }) });
    }
  }
  t.teardown(async () => {
    for (const r of runs) r.bg.proc.kill('SIGTERM');
    await Promise.all(runs.map((r) => r.bg.proc));
  });
  for (const r of runs) {
    await until(() => r.re.test(r.bg.output()), 5000, `${r.kind} ${r.name}: the error line`);
    t.pass(`${r.kind} ${r.name}: ${r.re.source}`);
  }
  for (const r of runs.filter((r) => r.kind === 'ours')) t.ok(r.bg.proc.exitCode === null, `ours ${r.name}: runsv keeps going`);
  for (const kind of ['debian', 'ours'] as Kind[]) {
    const d = join(tr.root, kind);
    // (pid, stat and status are three files written one after the other: wait for the last)
    await until(() => existsSync(join(d, 'sup-elsewhere', 'status')), 3000, `${kind}: supervise made through the dangling symlink`);
    t.ok(pidIn(join(d, 'sup-elsewhere')) > 0, `${kind}: supervise/ made at the symlink's target, the service running`);
    await until(() => pidIn(join(d, 'looplog', 'supervise')) > 0 && pidIn(join(d, 'filelog', 'supervise')) > 0, 3000, `${kind}: services with a bad ./log up`);
    t.pass(`${kind}: a bad ./log does not stop the service`);
  }

  // a lock held by the other implementation: each refuses the other's directory
  const held = mk('held', { run: sh('exec sleep 1000') });
  const first = spawnBg(toolFor('debian', tr.bin, 'runsv'), [held]);
  await until(() => existsSync(join(held, 'supervise/status')), 3000, 'debian runsv up');
  for (const kind of ['debian', 'ours'] as Kind[]) {
    const r = spawnBg(toolFor(kind, tr.bin, 'runsv'), [held]);
    const res = await r.proc;
    t.equal(res.exitCode, 111, `${kind}: exit 111 when the lock is held`);
    t.equal(r.output(), `runsv ${held}: fatal: unable to lock supervise/lock: temporary failure\n`, `${kind}: the lock message`);
  }
  first.proc.kill('SIGTERM');
  await first.proc;

  // garbage on the control FIFO is ignored
  const g = mk('garbage', { run: sh('exec sleep 1000') });
  const gr = spawnBg(toolFor('ours', tr.bin, 'runsv'), [g]);
  await until(() => pidIn(join(g, 'supervise')) > 0, 3000, 'garbage service up');
  const gp = pidIn(join(g, 'supervise'));
  const fd = openSync(join(g, 'supervise/control'), C.O_WRONLY | C.O_NONBLOCK);
  writeSync(fd, Buffer.from([0, 0xff, 0x7f, 0x0a, 0x5a, 0x65, 0x44, 0x58, 0x20]));
  closeSync(fd);
  await new Promise((r) => setTimeout(r, 200));
  t.ok(alive(gp) && pidIn(join(g, 'supervise')) === gp && readIf(join(g, 'supervise/stat')) === 'run\n', 'garbage bytes (NUL, 0xff, e, D, X...) change nothing');
  const fd2 = openSync(join(g, 'supervise/control'), C.O_WRONLY | C.O_NONBLOCK);
  writeSync(fd2, 'x');
  closeSync(fd2);
  const gres = await gr.proc;
  t.equal(gres.exitCode, 0, 'and x still works');

  // log/supervise/control that is not a FIFO: runit 2.3.0 refuses (2.1.2 stats the wrong path)
  const nf = mk('notfifo', { run: sh('exec sleep 1000'), 'log/run': sh('exec cat'), 'log/supervise/control': ['', 0o600] });
  const nr = spawnBg(toolFor('ours', tr.bin, 'runsv'), [nf]);
  const nres = await nr.proc;
  t.equal(nres.exitCode, 111);
  t.equal(nr.output(), `runsv ${nf}: fatal: log/supervise/control exists but is not a fifo\n`);
  rmSync(join(nf, 'log'), { recursive: true });

  // usage
  for (const kind of ['debian', 'ours'] as Kind[]) {
    const p = toolFor(kind, tr.bin, 'runsv');
    const u = spawnBg(p, []);
    t.equal((await u.proc).exitCode, 1, `${kind}: usage exits 1`);
    t.equal(u.output(), `usage: ${p} dir\n\n`, `${kind}: usage text`);
    const m = spawnBg(p, [join(tr.root, 'missing')]);
    t.equal((await m.proc).exitCode, 111, `${kind}: missing dir exits 111`);
    t.equal(m.output(), `runsv ${join(tr.root, 'missing')}: fatal: unable to change to directory: file does not exist\n`);
  }
});

function procState(pid: number): string {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return s.slice(s.lastIndexOf(')') + 2).split(' ')[0] ?? '';
  } catch {
    return '';
  }
}
