// The supervisor's hold on fresh services' first stats.json (src/runsv/report.ts): a file
// that would only say "started once" waits for the hold to end, but one whose readiness
// readers take from stats.json (notification-fd, notify-socket, one-shots) is written at
// once: without it a reader takes the service for one under runit's runsv, which has no
// such file, and calls it ready as soon as it runs.
import t from 'tap';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Report, StatsHold, SvdStats, type Reported, type ServiceStats } from '../../src/runsv/report.ts';

const work = mkdtempSync(join(tmpdir(), 'stats-hold-'));
t.teardown(() => rmSync(work, { recursive: true, force: true }));

/** A fresh service's report under a hold that has not ended; its supervise/ and stats.json path. */
function fresh(name: string, service: ServiceStats) {
  const cwd = join(work, name);
  mkdirSync(join(cwd, 'supervise'), { recursive: true });
  const stats = new SvdStats();
  stats.fresh = true;
  const svd: Reported = { islog: false, cwd, rel: '', stats };
  const hold = new StatsHold();
  const report = new Report(name, [svd], undefined, hold, () => service, () => undefined);
  report.started(svd, 4242);
  return { hold, file: join(cwd, 'supervise', 'stats.json') };
}

t.test('ready on its start: the first stats.json waits for the hold', async (t) => {
  const s = fresh('plain', { type: 'longrun', readiness: 'started', ready: { how: 'started', pid: 4242, time: 'now', monotonic: 1, afterSpawn: 0 }, waitingFor: [], failed: null });
  t.notOk(existsSync(s.file), 'not written while held');
  s.hold.release();
  t.equal(JSON.parse(readFileSync(s.file, 'utf8')).restarts, 0, 'written when the hold ends');
});

for (const readiness of ['notification-fd', 'notify-socket', 'oneshot']) {
  t.test(`${readiness}, not ready yet: written at once, saying so`, async (t) => {
    const s = fresh(readiness, { type: readiness === 'oneshot' ? 'oneshot' : 'longrun', readiness, ready: null, waitingFor: [], failed: null });
    t.ok(existsSync(s.file), 'written while the hold lasts');
    const st = JSON.parse(readFileSync(s.file, 'utf8'));
    t.equal(st.readiness, readiness);
    t.equal(st.ready, null, 'not ready');
  });
}
