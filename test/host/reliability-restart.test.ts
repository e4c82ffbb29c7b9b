// Reliability: the supervisor is SIGKILLed while 50 services run. A new supervisor on the
// same directory stops the orphans it finds and starts every service again, once.
import t from 'tap';
import { join } from 'node:path';
import { BIN, haveBin, spawnBg, until } from '../lib/host.ts';
import { pidIn } from '../lib/runit.ts';
import { ourSv, processesUnder, serviceDir, sh, supervisor } from '../lib/reliability.ts';

if (!haveBin()) t.fail(`${BIN} is missing: run make build`);

const N = 50;
/** the limit on a quiet machine (s), and at least this many times the first start's time */
const LIMIT_S = 2;
const LOAD_FACTOR = 2;
const names = Array.from({ length: N }, (_, i) => `s${String(i).padStart(2, '0')}`);

t.test(`supervisor SIGKILLed with ${N} services running: all supervised again within ${LIMIT_S} s (or twice the first start), none twice`, async (t) => {
  const first = supervisor(t, (tr) => {
    for (const n of names) serviceDir(join(tr.sv, n), { run: sh('exec sleep 100000') });
  });
  const { tr } = first;
  const dir = (n: string) => join(tr.sv, n);
  const tUp = performance.now();
  await until(() => names.every((n) => pidIn(join(dir(n), 'supervise')) > 0), 20_000, 'all up');
  // the first start from nothing, measured here: on a loaded machine the limit grows with it
  const firstS = (performance.now() - tUp) / 1000;
  const limitS = Math.max(LIMIT_S, LOAD_FACTOR * firstS);
  const before = new Map(names.map((n) => [n, pidIn(join(dir(n), 'supervise'))]));

  first.bg.proc.kill('SIGKILL');
  await first.bg.proc;
  const orphans = processesUnder(tr.sv);
  t.equal(names.filter((n) => orphans.get(dir(n))?.length === 1).length, N, 'after the SIGKILL: every service still runs, as an orphan');

  const t0 = performance.now();
  const second = spawnBg(tr.our('runsvdir'), [tr.sv], { env: { PATH: `${tr.bin}:${process.env.PATH}` } });
  t.teardown(async () => {
    second.proc.kill('SIGTERM');
    await second.proc;
  });
  // supervised again: a new process in supervise/pid, and only that one under the service
  const settled = () => {
    const procs = processesUnder(tr.sv);
    return names.every((n) => {
      const p = pidIn(join(dir(n), 'supervise'));
      const live = procs.get(dir(n)) ?? [];
      return p > 0 && p !== before.get(n) && live.length === 1 && live[0] === p;
    });
  };
  await until(settled, 15_000, 'every service supervised again');
  const took = (performance.now() - t0) / 1000;
  t.comment(`figure: ${N} services supervised again ${took.toFixed(2)} s after the new supervisor started (limit ${limitS.toFixed(2)} s; the first start took ${firstS.toFixed(2)} s)`);
  t.ok(took <= limitS, `within ${limitS.toFixed(2)} s (${took.toFixed(2)} s)`);

  // a while later still exactly one process per service, and sv agrees
  await new Promise((r) => setTimeout(r, 500));
  const procs = processesUnder(tr.sv);
  const twice = names.filter((n) => (procs.get(dir(n)) ?? []).length !== 1);
  t.same(twice, [], 'no service running twice (or not at all), counted in /proc');
  t.notOk(names.some((n) => (orphans.get(dir(n)) ?? []).some((p) => (procs.get(dir(n)) ?? []).includes(p))), 'every orphan was stopped');
  const r = await ourSv(tr, ['status', ...names.map(dir)]);
  const runLines = r.stdout.split('\n').filter((l) => /^run: .*: \(pid \d+\) \d+s$/.test(l));
  t.equal(runLines.length, N, 'sv status: all run');
});
