// container-init's main command finds every service supervised: it starts once the
// supervisor's first pass has set up each service's supervise/, so `sv status` works from
// its first line (without RUNIT_TS_CMD_WAIT_FOR_SERVICES_MAXTIME, which waits for
// readiness). Run outside a container: container-init needs no PID 1 for this.
import t from 'tap';
import { execa } from 'execa';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BIN, haveBin, tree } from '../lib/host.ts';

const SERVICES = 40;
const RUNS = 3;

t.test('the main command finds every service supervised', { skip: haveBin() ? false : 'no build' }, async (t) => {
  const tr = tree('runit-ts-cmain-');
  t.teardown(() => tr.cleanup());
  symlinkSync(BIN, join(tr.bin, 'container-init'));
  const names: string[] = [];
  for (let i = 0; i < SERVICES; i++) {
    const name = `s${String(i).padStart(2, '0')}`;
    names.push(name);
    mkdirSync(join(tr.sv, name));
    writeFileSync(join(tr.sv, name, 'run'), '#!/bin/sh\nexec sleep 100000\n', { mode: 0o755 });
  }
  const none = join(tr.root, 'none');
  for (let run = 1; run <= RUNS; run++) {
    const state = join(tr.root, `state${run}`);
    const env = { PATH: `${tr.bin}:/usr/bin:/bin`, RUNIT_TS_SERVICES: tr.sv, RUNIT_TS_STATE: state, RUNIT_TS_STARTUP_DIR: none, RUNIT_TS_SHUTDOWN_DIR: none, RUNIT_TS_KILL_GRACETIME: '2000' };
    // `sv status` exits with the number of services it could not report on
    const r = await execa(join(tr.bin, 'container-init'), ['sv', 'status', ...names], { env, extendEnv: false, reject: false, timeout: 60_000, all: true });
    if (r.exitCode !== 0) t.comment(r.all);
    t.equal(r.exitCode, 0, `run ${run}: sv status found all ${SERVICES} services supervised`);
    const lines = r.stdout.split('\n').filter((l) => /^(run|down): s\d\d: /.test(l));
    t.equal(lines.length, SERVICES, `run ${run}: a status line for each`);
  }
});
