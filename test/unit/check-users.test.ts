// A ./check that cannot be run, as the library client and container-probe see it: not
// ready, reported with sv's line (src/lib/check.ts). Against fake supervise/ directories
// (test/lib/runit.ts: ok and control held open as a runsv would, a status written here).
import t from 'tap';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ServiceError, SupervisedServices } from '../../src/index.ts';
import { probeOne } from '../../src/container/probe.ts';
import { fakeSupervise, statusRecord } from '../lib/runit.ts';

const work = mkdtempSync(join(tmpdir(), 'check-users-'));
t.teardown(() => rmSync(work, { recursive: true, force: true }));
const RUNNING = () => statusRecord({ sec: Math.floor(Date.now() / 1000) - 100, pid: 12345, want: 'u', state: 1 });

/** A service `name` in the scan directory with this ./check and mode. */
function service(name: string, check: string, mode: number): string {
  const dir = join(work, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'check'), check);
  chmodSync(join(dir, 'check'), mode);
  return dir;
}

t.test('the library client: not ready, reported once per wait, named in the timeout', async (t) => {
  const dir = service('web', '#!/bin/sh\nexit 0\n', 0o644);
  const f = await fakeSupervise(dir, RUNNING());
  t.teardown(f.close);
  const lines: string[] = [];
  const sv = new SupervisedServices({ scanDir: work, pollMs: 50, warn: (l) => lines.push(l) });
  const e = await sv.wait('web', 'up', { timeoutMs: 400 }).then(
    () => undefined,
    (e: unknown) => e,
  );
  t.type(e, ServiceError, 'the wait does not pass');
  t.equal((e as ServiceError).reason, 'timeout');
  t.equal((e as ServiceError).message, 'web: not up within 400 ms (unable to run web/check: access denied)');
  t.equal((e as ServiceError).status?.ready, false);
  t.same(lines, ['warning: unable to run web/check: access denied'], 'one line, as sv says it');
  lines.length = 0;
  t.equal((await sv.status('web')).ready, false, 'status: not ready');
  t.same(lines, ['warning: unable to run web/check: access denied']);
  t.equal((await sv.wait('web', 'run', { timeoutMs: 400 }))?.state, 'run', 'running, readiness aside');
  // fixed: ready
  chmodSync(join(dir, 'check'), 0o755);
  t.equal((await sv.wait('web', 'up', { timeoutMs: 400 }))?.ready, true);
});

t.test('container-probe: not healthy, with the reason', async (t) => {
  const noexec = service('noexec', '#!/bin/sh\nexit 0\n', 0o644);
  const format = service('format', 'exit 0\n', 0o755);
  const good = service('good', '#!/bin/sh\nexit 0\n', 0o755);
  for (const d of [noexec, format, good]) {
    mkdirSync(join(d, 'supervise'), { recursive: true });
    writeFileSync(join(d, 'supervise', 'status'), RUNNING());
  }
  t.equal(probeOne(noexec), 'unable to run noexec/check: access denied');
  t.equal(probeOne(format), 'unable to run format/check: exec format error', 'not run by /bin/sh');
  t.equal(probeOne(good), null);
  t.equal(probeOne(join(work, 'nosuch')), 'no status (ENOENT)');
});
