// Both long-running supervisors give back the memory of their start (src/lib/trim.ts):
// runsvdir (a booted system's stage 2) and container-init (a container's PID 1), each
// TRIM_AFTER_START_MS after its start. Their resident memory is read from
// /proc/PID/status before that time and after it: the trim drops the executable's pages
// that the start touched (RssFile) and what V8 and malloc kept of the start-up peak.
import t, { type Test } from 'tap';
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { lockGraphMappings, TRIM_AFTER_START_MS } from '../../src/lib/trim.ts';
import { alive, BIN, haveBin, readIf, spawnBg, tree, until, type Tree } from '../lib/host.ts';

/** The share of its resident memory a supervisor must give back at its trim. */
const MIN_DROP = 0.2;
const SERVICES = ['a', 'b', 'c'];

/** VmRSS of a process, in KiB. */
function rssKiB(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS for ${pid}`);
  return Number(m[1]);
}

/** Resident KiB of the process's mappings that can hold the lock graph (src/lib/trim.ts), summed. */
function lockGraphRss(pid: number): number {
  const smaps = readFileSync(`/proc/${pid}/smaps`, 'utf8');
  let kib = 0;
  for (const [a] of lockGraphMappings(smaps)) {
    const at = smaps.indexOf(`${a.toString(16)}-`);
    kib += Number(/^Rss:\s+(\d+) kB$/m.exec(smaps.slice(at))![1]);
  }
  return kib;
}

/** The supervisor's pid: the process the background shell exec'd into. */
function supervisorPid(bg: ReturnType<typeof spawnBg>): number {
  return bg.proc.pid!;
}

/** `stop`: the signal that ends the supervisor with its services (none left behind). */
async function check(t: Test, start: () => ReturnType<typeof spawnBg>, supervised: (s: string) => string, stop: NodeJS.Signals): Promise<void> {
  const t0 = Date.now();
  const bg = start();
  t.teardown(async () => {
    bg.proc.kill(stop);
    const killer = setTimeout(() => bg.proc.kill('SIGKILL'), 10_000);
    await bg.proc;
    clearTimeout(killer);
  });
  const pid = supervisorPid(bg);
  await until(() => SERVICES.every((s) => (readIf(join(supervised(s), 'supervise', 'stat')) ?? '').trim() === 'run'), 15_000, `the services up: ${bg.output()}`);
  // the start is over; the trim has not come yet (when it has, the machine is too slow to tell)
  const before = rssKiB(pid);
  const graphBefore = lockGraphRss(pid);
  const early = Date.now() - t0 < TRIM_AFTER_START_MS - 500;
  await new Promise((r) => setTimeout(r, Math.max(0, t0 + TRIM_AFTER_START_MS + 1500 - Date.now())));
  t.ok(alive(pid), 'the supervisor still runs');
  const after = rssKiB(pid);
  // Node's lock graph (1 MiB of empty slots, src/native/runtime.c), given back at the trim
  const graphAfter = lockGraphRss(pid);
  t.comment(`anonymous mappings that can hold the lock graph: ${graphBefore} KiB resident before, ${graphAfter} after`);
  t.ok(graphBefore >= 1000, 'the start left the lock graph (1 MiB) resident');
  t.ok(graphBefore - graphAfter >= 900, 'the trim gave its empty pages back');
  t.comment(`VmRSS ${before} KiB before the trim, ${after} KiB after (${(((before - after) / before) * 100).toFixed(0)} % less)`);
  if (!early) {
    t.comment('the services took until the trim to come up: nothing to compare');
    return;
  }
  t.ok(after <= before * (1 - MIN_DROP), `resident memory down by ${MIN_DROP * 100} % at least: ${before} -> ${after} KiB`);
}

/** The services, straight in the scan directory: each a sleep. */
function services(tr: Tree): void {
  for (const s of SERVICES) {
    mkdirSync(join(tr.sv, s));
    writeFileSync(join(tr.sv, s, 'run'), '#!/bin/sh\nexec sleep 100000\n', { mode: 0o755 });
  }
}

t.test('runsvdir gives back the memory of its start', { skip: haveBin() ? false : 'no build' }, async (t) => {
  const tr = tree('runit-ts-trim-');
  t.teardown(() => tr.cleanup());
  services(tr);
  await check(t, () => spawnBg(tr.our('runsvdir'), [tr.sv], { env: { PATH: `${tr.bin}:/usr/bin:/bin` } }), (s) => join(tr.sv, s), 'SIGHUP');
});

t.test('container-init gives back the memory of its start', { skip: haveBin() ? false : 'no build' }, async (t) => {
  const tr = tree('runit-ts-trim-ci-');
  t.teardown(() => tr.cleanup());
  services(tr);
  symlinkSync(BIN, join(tr.bin, 'container-init'));
  const state = join(tr.root, 'state');
  const none = join(tr.root, 'none');
  const env = { PATH: `${tr.bin}:/usr/bin:/bin`, RUNIT_TS_SERVICES: tr.sv, RUNIT_TS_STATE: state, RUNIT_TS_STARTUP_DIR: none, RUNIT_TS_SHUTDOWN_DIR: none };
  // container-init supervises a copy of the services in its state directory
  await check(t, () => spawnBg(join(tr.bin, 'container-init'), [], { env }), (s) => join(state, 'service', s), 'SIGTERM');
});
