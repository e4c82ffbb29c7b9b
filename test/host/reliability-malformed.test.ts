// Reliability: malformed service directories next to good ones. Each bad entry gets one
// clear message (the same message as Debian's runit 2.1.2 gives, which like runit's is
// repeated at each retry or scan); every good service is supervised all the same.
// Then 1,001 service directories: one line for the one over runsvdir's limit of 1000.
import t from 'tap';
import { existsSync, mkdirSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { alive, BIN, haveBin, spawnBg, tree, until, type Tree } from '../lib/host.ts';
import { debianPath, readStatus, toolFor, type Kind } from '../lib/runit.ts';
import { serviceDir, sh, sleep, supervisor } from '../lib/reliability.ts';

if (!haveBin()) t.fail(`${BIN} is missing: run make build`);

const run = sh('exec sleep 100000');
const GOOD = ['ok', 'with space', 'with\nnewline', 'tab\tand\\backslash'];

function build(sv: string) {
  for (const n of GOOD) serviceDir(join(sv, n), { run });
  serviceDir(join(sv, 'norun'), { 'env/X': '' });
  serviceDir(join(sv, 'noexec'), {});
  writeFileSync(join(sv, 'noexec', 'run'), run, { mode: 0o644 });
  mkdirSync(join(sv, 'rundir', 'run'), { recursive: true });
  symlinkSync(join(sv, '..', 'nowhere'), join(sv, 'dangling'));
  symlinkSync('nowhere', join(sv, 'dangling-relative'));
  serviceDir(join(sv, 'logonly'), { run, 'log/README': 'a log directory without run\n' });
  serviceDir(join(sv, 'downdir'), { run, 'down/README': 'down is a directory\n' });
}

// what each bad entry is reported as, for both runits
const EXPECTED = [
  'runsv logonly: fatal: unable to start log/./run: file does not exist',
  'runsv noexec: fatal: unable to start ./run: access denied',
  'runsv norun: fatal: unable to start ./run: file does not exist',
  'runsv rundir: fatal: unable to start ./run: access denied',
  'runsvdir SVDIR: warning: unable to stat dangling: file does not exist',
  'runsvdir SVDIR: warning: unable to stat dangling-relative: file does not exist',
];

t.test('malformed service directories: one clear line each, the others supervised', async (t) => {
  const sides: Array<{ kind: Kind; tr: Tree; out: () => string; stop: () => void; proc: ReturnType<typeof spawnBg>['proc'] }> = [];
  for (const kind of ['debian', 'ours'] as Kind[]) {
    const tr = tree(`rel-malformed-${kind}-`);
    build(tr.sv);
    const env = { PATH: kind === 'debian' ? debianPath() : `${tr.bin}:${process.env.PATH}` };
    const bg = spawnBg(toolFor(kind, tr.bin, 'runsvdir'), [tr.sv], { env });
    // Debian's runsvdir leaves its runsv processes on TERM; HUP stops them
    sides.push({ kind, tr, out: bg.output, proc: bg.proc, stop: () => bg.proc.kill(kind === 'debian' ? 'SIGHUP' : 'SIGTERM') });
  }
  t.teardown(async () => {
    for (const s of sides) {
      s.stop();
      await s.proc;
    }
    await sleep(300);
    for (const s of sides) s.tr.cleanup();
  });
  const uniq = (s: (typeof sides)[number]) => [...new Set(s.out().split('\n').filter(Boolean).map((l) => l.split(s.tr.sv).join('SVDIR')))].sort();
  await until(() => sides.every((s) => uniq(s).length >= EXPECTED.length), 10_000, 'every bad entry reported');
  await sleep(2500); // a few retries and scans: no new kind of line
  const [deb, ours] = sides.map(uniq);
  t.same(ours, [...EXPECTED].sort(), 'ours: exactly one distinct line per bad entry');
  t.same(ours, deb, 'the same lines as Debian\'s runit');
  const our = sides[1]!;
  const count = our.out().split('\n').filter(Boolean).length;
  t.comment(`figure: ${EXPECTED.length} bad entries, ${GOOD.length + 2} good ones: ${EXPECTED.length} distinct lines (${count} in ~4 s: runsv retries each second and runsvdir rescans, as runit does)`);
  for (const n of [...GOOD, 'logonly']) {
    const st = readStatus(join(our.tr.sv, n, 'supervise'));
    t.ok(st && st.state === 1 && alive(st.pid), `${JSON.stringify(n)} supervised and running`);
  }
  const down = readStatus(join(our.tr.sv, 'downdir', 'supervise'));
  t.ok(down && down.state === 0 && down.want === 'd', 'a down that is a directory still means down (as runit: it only stats it)');
  for (const n of ['norun', 'noexec', 'rundir']) {
    const st = readStatus(join(our.tr.sv, n, 'supervise'));
    t.ok(st && st.pid === 0 && st.want === 'u', `${n}: supervised, nothing running, still wanted up`);
  }
  t.equal(our.proc.exitCode, null, 'the supervisor runs');
});

t.test('1,001 service directories: one line for the one over the limit, 1,000 supervised', async (t) => {
  const s = supervisor(t, (tr) => {
    for (let i = 0; i < 1001; i++) serviceDir(join(tr.sv, `d${String(i).padStart(4, '0')}`), { run, down: '' });
  });
  const { tr, bg } = s;
  const supervised = () => readdirSync(tr.sv).filter((n) => existsSync(join(tr.sv, n, 'supervise', 'status'))).length;
  const t0 = performance.now();
  await until(() => supervised() === 1000, 30_000, '1000 supervised');
  const took = (performance.now() - t0) / 1000;
  await until(() => bg.output().includes('too many services'), 5000, 'the refusal');
  await sleep(1500); // more scans: no more lines
  const lines = bg.output().split('\n').filter(Boolean);
  t.equal(lines.length, 1, 'one line');
  t.match(lines[0], /^runsvdir .*: warning: unable to start runsv d\d{4}: too many services\.$/, lines[0] ?? 'no line');
  t.equal(supervised(), 1000, '1000 supervised');
  t.comment(`figure: 1,001 service directories: 1,000 supervised in ${took.toFixed(1)} s, ${lines.length} line for the other`);
});
