// Interoperability with Debian's runit 2.1.2 (the reference peer), both directions:
// the same command sequence runs in four set-ups at once,
//   reference: Debian sv -> Debian runsvdir/runsv
//   A:         Debian sv -> our supervisor
//   B:         our sv    -> Debian runsvdir/runsv
//   C:         our sv    -> our supervisor
// and every step's output and exit code must match the reference line for line, pids and
// seconds apart. Steps whose answer depends on sv's one-second race wait past the second
// of the last status change first; steps that change state wait for every set-up to settle.
import t, { type Test } from 'tap';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { alive, BIN, haveBin, normalise, readIf, spawnBg, tree, until, type Bg, type Tree } from '../lib/host.ts';
import { debianPath, pastStatusSecond, pidIn, toolFor, type Kind } from '../lib/runit.ts';

if (!haveBin()) t.fail(`${BIN} is missing: run make build`);

const sh = (body: string) => `#!/bin/sh\n${body}\n`;

interface Cfg {
  label: string;
  sv: Kind;
  sup: Kind;
  tr: Tree;
  svdir: string;
  bg: Bg | undefined;
  svBin: string;
  initd: string;
}

const SERVICES: Record<string, Record<string, string>> = {
  svc: { run: sh('exec sleep 1000'), 'log/run': sh('exec cat > ../log.txt') },
  trapper: { run: sh("trap '' HUP INT QUIT USR1 USR2 ALRM\nexec sleep 1000") },
  stubborn: { run: sh("trap '' TERM\nexec sleep 1000") },
  checked: { run: sh('exec sleep 1000'), check: sh('test -e ready') },
};

function setup(t: Test, mode: 'runsvdir' | 'runsv'): Cfg[] {
  const cfgs: Cfg[] = [];
  for (const [sv, sup] of [['debian', 'debian'], ['debian', 'ours'], ['ours', 'debian'], ['ours', 'ours']] as Array<[Kind, Kind]>) {
    const tr = tree(`interop-${sv}-${sup}-`);
    for (const [name, files] of Object.entries(SERVICES)) {
      for (const [rel, text] of Object.entries(files)) {
        mkdirSync(join(tr.sv, name, rel, '..'), { recursive: true });
        writeFileSync(join(tr.sv, name, rel), text, { mode: /(^|\/)(run|check)$/.test(rel) ? 0o755 : 0o644 });
      }
    }
    const svBin = toolFor(sv, tr.bin, 'sv');
    const initd = join(tr.root, 'init.d');
    mkdirSync(initd);
    symlinkSync(sv === 'ours' ? BIN : svBin, join(initd, 'trapper'));
    symlinkSync(sv === 'ours' ? BIN : svBin, join(initd, 'nosuch'));
    const env = { PATH: sup === 'debian' ? debianPath() : (process.env.PATH ?? '') };
    let bg: Bg | undefined;
    if (mode === 'runsvdir') bg = spawnBg(toolFor(sup, tr.bin, 'runsvdir'), ['-P', tr.sv], { env });
    cfgs.push({ label: sv === 'debian' && sup === 'debian' ? 'reference' : `${sv} sv -> ${sup} ${mode}`, sv, sup, tr, svdir: tr.sv, bg, svBin, initd });
  }
  t.teardown(async () => {
    for (const c of cfgs) {
      c.bg?.proc.kill(c.sup === 'debian' ? 'SIGHUP' : 'SIGTERM');
      const timer = setTimeout(() => c.bg?.proc.kill('SIGKILL'), 6000);
      await c.bg?.proc;
      clearTimeout(timer);
    }
    // whatever is left (a stubborn service, a runsv of its own): kill it
    for (const c of cfgs) {
      for (const name of Object.keys(SERVICES)) {
        for (const sup of ['supervise', 'log/supervise']) {
          const p = pidIn(join(c.svdir, name, sup));
          if (p && alive(p)) process.kill(p, 'SIGKILL');
        }
      }
    }
    for (const c of cfgs) c.tr.cleanup();
  });
  return cfgs;
}

const sup = (c: Cfg, name: string) => join(c.svdir, name, 'supervise');
const stat = (c: Cfg, name: string) => readIf(join(c.svdir, name, 'supervise', 'stat'));
const running = (c: Cfg, name: string) => stat(c, name) === 'run\n' && alive(pidIn(sup(c, name)));

async function settle(cfgs: Cfg[], what: string, fn: (c: Cfg) => boolean, ms = 8000) {
  await until(() => cfgs.every(fn), ms, what);
}

interface Outcome {
  out: string;
  code: number | undefined;
}

/** The matrix for the report: step -> set-up -> same as the reference? */
const matrix: Array<[string, string[]]> = [];

/**
 * Run one sv command four ways and compare with the reference. anyOrder: the lines are
 * compared as a set, for a wait on several services, which sv (runit's too) reports in
 * the order they got there.
 */
async function step(t: Test, cfgs: Cfg[], label: string, args: string[], opts: { lsb?: string; anyOrder?: boolean } = {}): Promise<Outcome[]> {
  const res = await Promise.all(
    cfgs.map(async (c) => {
      const cmd = opts.lsb ? join(c.initd, opts.lsb) : c.svBin;
      const r = await execa(cmd, args, { env: { SVDIR: c.svdir }, cwd: c.tr.root, reject: false, stripFinalNewline: false });
      const out = normalise(String(r.stdout) + (r.stderr ? `[stderr] ${String(r.stderr)}` : '')).replace(/\$Id: [^$]*\$/g, '$Id$');
      return { out: opts.anyOrder ? out.split('\n').sort().join('\n') : out, code: r.exitCode };
    }),
  );
  const ref = res[0]!;
  const row: string[] = [];
  for (let i = 1; i < cfgs.length; i++) {
    const ok = res[i]!.out === ref.out && res[i]!.code === ref.code;
    t.same(res[i], ref, `${label}: ${cfgs[i]!.label} as the reference (${JSON.stringify(ref.out.trim())}, exit ${ref.code})`);
    row.push(ok ? 'same' : 'DIFF');
  }
  matrix.push([`${opts.lsb ? `init.d/${opts.lsb} ` : 'sv '}${args.join(' ')}`, row]);
  return res;
}

t.test('sv commands against runsvdir, four ways', async (t) => {
  const cfgs = setup(t, 'runsvdir');
  await settle(cfgs, 'all services and the log up', (c) => ['svc', 'trapper', 'stubborn', 'checked'].every((n) => running(c, n)) && readIf(join(c.svdir, 'svc', 'log', 'supervise', 'stat')) === 'run\n', 10000);
  const S = (label: string, args: string[], opts: { lsb?: string; anyOrder?: boolean } = {}) => step(t, cfgs, label, args, opts);
  const past = (names: string[]) => pastStatusSecond(cfgs.flatMap((c) => names.map((n) => sup(c, n))));

  await S('status', ['status', 'svc', 'trapper', 'stubborn', 'checked', 'nosuch']);
  await S('stop', ['-w', '5', 'stop', 'svc']);
  await S('status of a stopped service', ['status', 'svc']);
  await S('down again: nothing to do', ['-v', 'down', 'svc']);
  await past(['svc']);
  await S('once', ['-w', '5', 'once', 'svc']);
  await S('pause', ['-w', '5', 'pause', 'svc']);
  await S('status paused', ['status', 'svc']);
  await S('cont', ['-w', '5', 'cont', 'svc']);
  // (not "sv -v start" here: it would pass at once on the status runsv has not updated yet)
  await S('up', ['up', 'svc']);
  await settle(cfgs, 'svc wants up', (c) => stat(c, 'svc') === 'run\n');
  await S('start when up', ['-w', '5', 'start', 'svc']);
  await past(['svc']);
  await S('restart', ['-w', '5', 'restart', 'svc']);
  const before = cfgs.map((c) => pidIn(sup(c, 'svc')));
  await S('kill', ['kill', 'svc']);
  await settle(cfgs, 'svc restarted after kill', (c) => running(c, 'svc') && pidIn(sup(c, 'svc')) !== before[cfgs.indexOf(c)]);
  await S('status after kill', ['status', 'svc']);
  await S('term', ['term', 'svc']);
  await settle(cfgs, 'svc restarted after term', (c) => running(c, 'svc'));
  await S('down the log', ['-w', '5', 'down', 'svc/log']);
  await S('status, log down', ['status', 'svc']);
  await S('up the log', ['-w', '5', 'up', 'svc/log']);
  for (const sig of ['hup', 'alarm', 'interrupt', 'quit', '1', '2']) await S(`signal ${sig}`, ['-v', sig, 'trapper']);
  await S('trapper still the same process', ['status', 'trapper']);
  await S('check, not ready', ['-w', '1', 'check', 'checked']);
  for (const c of cfgs) writeFileSync(join(c.svdir, 'checked', 'ready'), '');
  await S('check, ready', ['-w', '5', 'check', 'checked']);
  await S('force-stop, TERM ignored: killed', ['-w', '1', 'force-stop', 'stubborn']);
  await settle(cfgs, 'stubborn down', (c) => stat(c, 'stubborn') === 'down\n');
  await S('status after the kill', ['status', 'stubborn']);
  await S('force-stop, TERM obeyed', ['-w', '5', 'force-stop', 'svc']);
  await S('up', ['-w', '5', 'up', 'svc', 'stubborn'], { anyOrder: true });
  await past(['svc', 'stubborn']);
  await S('try-restart', ['-w', '5', 'try-restart', 'svc']);
  await S('reload (HUP, ignored)', ['-w', '5', 'reload', 'trapper']);
  // exit: runsv goes; runsvdir starts another (Debian's: at its next pass, up to 5 s later)
  const runsvGone = cfgs.map((c) => pidIn(sup(c, 'svc')));
  await S('exit', ['exit', 'svc']);
  await settle(cfgs, 'svc back under a new runsv', (c) => running(c, 'svc') && pidIn(sup(c, 'svc')) !== runsvGone[cfgs.indexOf(c)], 10000);
  await S('status after exit', ['status', 'svc']);

  // LSB mode: init.d/trapper
  await S('LSB status, up', ['status'], { lsb: 'trapper' });
  await S('LSB stop', ['stop'], { lsb: 'trapper' });
  await S('LSB status, down', ['status'], { lsb: 'trapper' });
  await S('LSB start', ['start'], { lsb: 'trapper' });
  await past(['trapper']);
  await S('LSB restart', ['restart'], { lsb: 'trapper' });
  await S('LSB reload', ['reload'], { lsb: 'trapper' });
  await S('LSB usage', ['up'], { lsb: 'trapper' });
  await S('LSB missing service', ['status'], { lsb: 'nosuch' });
  await S('LSB force-stop', ['-w', '5', 'force-stop'], { lsb: 'trapper' });
  await S('LSB status at the end', ['status'], { lsb: 'trapper' });
});

t.test('runsv alone: exit and shutdown, four ways', async (t) => {
  const cfgs = setup(t, 'runsv');
  const procs: Bg[] = [];
  for (const c of cfgs) {
    for (const name of ['svc', 'stubborn']) procs.push(spawnBg(toolFor(c.sup, c.tr.bin, 'runsv'), [name], { cwd: c.svdir }));
  }
  t.teardown(async () => {
    for (const p of procs) p.proc.kill('SIGKILL');
    await Promise.all(procs.map((p) => p.proc));
  });
  await settle(cfgs, 'up', (c) => running(c, 'svc') && running(c, 'stubborn'));
  const S = (label: string, args: string[]) => step(t, cfgs, label, args);
  await S('status', ['status', 'svc', 'stubborn', 'trapper']);
  await S('shutdown', ['-w', '5', 'shutdown', 'svc']);
  await S('status, runsv gone', ['status', 'svc']);
  await S('up, runsv gone', ['up', 'svc']);
  await S('exit, runsv gone', ['exit', 'svc']);
  await S('force-shutdown, TERM ignored', ['-w', '1', 'force-shutdown', 'stubborn']);
  await settle(cfgs, 'runsv of stubborn gone', () => procs.every((p) => p.proc.exitCode !== null), 5000);
  for (const p of procs) t.equal(p.proc.exitCode, 0, 'runsv exited 0');
  await S('status at the end', ['status', 'svc', 'stubborn']);
});

t.test('the matrix', async (t) => {
  const head = ['Debian sv -> ours', 'ours sv -> Debian', 'ours sv -> ours'];
  t.comment(`step | ${head.join(' | ')}`);
  for (const [s, row] of matrix) t.comment(`${s} | ${row.join(' | ')}`);
  t.ok(matrix.length > 40, `${matrix.length} steps compared`);
  t.same(matrix.filter(([, r]) => r.includes('DIFF')).map(([s]) => s), [], 'no step differs');
});
