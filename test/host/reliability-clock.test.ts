// Reliability: the wall clock steps an hour forward, and an hour back, while the
// supervisor waits on time: `sv -w` on a service that never becomes ready, timeout-up,
// the supervisor's ./check backoff, runsv's restart throttle and svlogd's rotation by age
// (t config; the in-process logger and an svlogd process). No wait may end early or
// hang, no restart may come in a storm: every duration is measured on the monotonic clock.
//
// The step is made with libfaketime (Debian's faketime package, LD_PRELOAD), not with
// `date -s`: CLOCK_REALTIME cannot be namespaced, and the machine the tests run on is
// shared (other builds and tests on it compare file times and run timeouts), so a real
// step of its clock would disturb them. libfaketime with FAKETIME_DONT_FAKE_MONOTONIC=1
// steps exactly what a real step changes for the processes under it (the supervisor, its
// services, sv): the real-time clock jumps, the monotonic clock goes on. The offset is
// read from a file (FAKETIME_TIMESTAMP_FILE) at most a second old, so the test steps the
// clock of the running processes by writing it.
import t, { type Test } from 'tap';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { BIN, haveBin, readIf, until } from '../lib/host.ts';
import { pidIn } from '../lib/runit.ts';
import { serviceDir, sh, sleep, supervisor } from '../lib/reliability.ts';

if (!haveBin()) t.fail(`${BIN} is missing: run make build`);

const LIBFAKETIME = ['x86_64', 'aarch64'].map((a) => `/usr/lib/${a}-linux-gnu/faketime/libfaketime.so.1`).find(existsSync);
/** how long after the start of a phase the clock steps, and how long a phase is watched (ms) */
const STEP_AT_MS = 2000;
const PHASE_MS = 14_000;
/** sv -w's wait (s), and how far its end may be from it (ms): a poll (420 ms) and sv's start */
const SV_WAIT_S = 7;
const SV_SLACK_MS = 1500;
/** timeout-up (ms) of the service that never becomes ready */
const TIMEOUT_UP_MS = 4000;
/** svlogd's t (s), and how far a rotation may be from it (ms): svlogd wakes on time, our polling is 100 ms */
const ROTATE_S = 5;
const ROTATE_SLACK_MS = 1200;
const SAMPLE_MS = 100;

/** The services: one per thing that waits on time. */
function build(sv: string): void {
  serviceDir(join(sv, 'notready'), { run: sh('exec sleep 100000'), check: sh('exit 1') });
  serviceDir(join(sv, 'timeout'), { run: sh('echo x >> starts\nexec sleep 100000'), check: sh('exit 1'), 'timeout-up': `${TIMEOUT_UP_MS}\n` });
  serviceDir(join(sv, 'checker'), { run: sh('exec sleep 100000'), check: sh('echo x >> ../checks\nexit 1') });
  serviceDir(join(sv, 'crasher'), { run: sh('echo x >> starts\nexit 0') });
  const talker = sh('exec 2>&1\nwhile :; do echo line; sleep 0.2; done');
  serviceDir(join(sv, 'logged-in'), { run: talker, 'log/run': sh('exec svlogd ./main'), 'log/main/config': `t${ROTATE_S}\n` });
  serviceDir(join(sv, 'logged-proc'), { run: talker, 'log/run': sh('exec env svlogd ./main'), 'log/main/config': `t${ROTATE_S}\n` });
}

/** Lines in a file (0 when it is not there). */
const lines = (path: string) => (readIf(path) ?? '').split('\n').filter(Boolean).length;

/** When (ms on our monotonic clock) each of a counter's lines appeared, sampled. */
class Counter {
  readonly at: number[] = [];
  private seen = 0;
  private readonly path: string;
  /** path: a file the service appends a line to each time */
  constructor(path: string) {
    this.path = path;
  }
  sample(now: number): void {
    const n = lines(this.path);
    for (; this.seen < n; this.seen++) this.at.push(now);
  }
  /** how many appeared in [from, to) */
  between(from: number, to: number): number {
    return this.at.filter((a) => a >= from && a < to).length;
  }
}

/** When each rotated file (@...) appeared in a log directory, sampled. */
class Rotations {
  readonly at: number[] = [];
  private readonly seen = new Set<string>();
  private readonly dir: string;
  /** dir: the log directory */
  constructor(dir: string) {
    this.dir = dir;
  }
  sample(now: number): void {
    for (const f of readdirSync(this.dir)) {
      if (!f.startsWith('@') || this.seen.has(f)) continue;
      this.seen.add(f);
      this.at.push(now);
    }
  }
  /** the intervals between rotations that appeared from `from` on (ms) */
  intervals(from: number): number[] {
    const out: number[] = [];
    for (let i = 1; i < this.at.length; i++) if (this.at[i]! >= from) out.push(this.at[i]! - this.at[i - 1]!);
    return out;
  }
}

/** The environment that puts a process under libfaketime, its offset read from `file`. */
const faked = (file: string) => ({ LD_PRELOAD: LIBFAKETIME!, FAKETIME_TIMESTAMP_FILE: file, FAKETIME_CACHE_DURATION: '1', FAKETIME_DONT_FAKE_MONOTONIC: '1' });

t.test('the wall clock stepped forward and back by an hour', { skip: LIBFAKETIME ? false : 'libfaketime is not installed (Debian package faketime)' }, async (t) => {
  const sup = supervisor(t, (tr) => {
    writeFileSync(join(tr.root, 'faketime'), '+0\n');
    build(tr.sv);
  }, 'runit-ts-rel-clock-', (tr) => faked(join(tr.root, 'faketime')));
  const { tr, bg } = sup;
  const offsetFile = join(tr.root, 'faketime');
  const sv = (n: string) => join(tr.sv, n);
  await until(() => ['notready', 'timeout', 'checker', 'logged-in', 'logged-proc'].every((n) => pidIn(join(sv(n), 'supervise')) > 0), 10_000, 'services up');
  const now = () => performance.now();
  const counters = { timeout: new Counter(join(sv('timeout'), 'starts')), crasher: new Counter(join(sv('crasher'), 'starts')), checks: new Counter(join(tr.sv, 'checks')) };
  const rotations = { 'in-process': new Rotations(join(sv('logged-in'), 'log', 'main')), process: new Rotations(join(sv('logged-proc'), 'log', 'main')) };
  const sampleAll = () => {
    const n = now();
    for (const c of Object.values(counters)) c.sample(n);
    for (const r of Object.values(rotations)) r.sample(n);
  };
  // sampled all along (between the phases too): each line and file stamped when it appears
  const sampler = setInterval(sampleAll, SAMPLE_MS);
  t.teardown(() => clearInterval(sampler));

  /** One phase: the offset `from`, stepped to `to` STEP_AT_MS in; what waited on time meanwhile. */
  const phase = async (t: Test, what: string, before: string, after: string) => {
    writeFileSync(offsetFile, `${before}\n`);
    await sleep(1500); // every process has read it
    const t0 = now();
    const wait = execa(tr.our('sv'), ['-w', String(SV_WAIT_S), 'up', sv('notready')], { env: { SVDIR: tr.sv, ...faked(offsetFile) }, reject: false, timeout: PHASE_MS });
    let svEnd = 0;
    void wait.then(() => (svEnd = now()));
    let stepped = false;
    while (now() - t0 < PHASE_MS) {
      if (!stepped && now() - t0 >= STEP_AT_MS) {
        writeFileSync(offsetFile, `${after}\n`);
        stepped = true;
      }
      await sleep(SAMPLE_MS);
    }
    const r = await wait;
    const svMs = (svEnd || now()) - t0;
    t.equal(r.exitCode, 1, `sv -w ${SV_WAIT_S} up on a service never ready: a timeout (${JSON.stringify(r.stdout.trim())})`);
    t.ok(Math.abs(svMs - SV_WAIT_S * 1000) <= SV_SLACK_MS, `sv -w ${SV_WAIT_S} ended after ${(svMs / 1000).toFixed(1)} s: neither early nor late`);
    // from a second after the step (every process has seen it) to the end of the phase
    const from = t0 + STEP_AT_MS + 1000;
    const to = t0 + PHASE_MS;
    const span = (to - from) / 1000;
    const crashes = counters.crasher.between(from, to);
    t.ok(crashes >= span - 3 && crashes <= span + 2, `restart throttle: ${crashes} starts of a crashing service in ${span.toFixed(0)} s (one a second)`);
    const checks = counters.checks.between(from, to);
    t.ok(checks >= span - 3 && checks <= span + 3, `./check backoff: ${checks} runs in ${span.toFixed(0)} s (one a second by now)`);
    const starts = counters.timeout.at.filter((a) => a >= t0);
    const gaps = starts.slice(1).map((a, i) => a - starts[i]!);
    t.ok(gaps.length >= 2 && gaps.every((g) => Math.abs(g - TIMEOUT_UP_MS) <= 1500), `timeout-up ${TIMEOUT_UP_MS} ms: restarted every ${gaps.map((g) => (g / 1000).toFixed(1)).join(', ')} s`);
    const rot: string[] = [];
    for (const [kind, r] of Object.entries(rotations)) {
      const iv = r.intervals(t0);
      rot.push(`${kind} ${iv.map((g) => (g / 1000).toFixed(1)).join(', ')} s`);
      t.ok(iv.length >= 2 && iv.every((g) => Math.abs(g - ROTATE_S * 1000) <= ROTATE_SLACK_MS), `svlogd t${ROTATE_S} (${kind}): rotated every ${iv.map((g) => (g / 1000).toFixed(1)).join(', ')} s`);
    }
    t.comment(
      `figure: wall clock stepped ${what} by an hour: sv -w ${SV_WAIT_S} ended after ${(svMs / 1000).toFixed(1)} s; crash loop ${crashes} starts in ${span.toFixed(0)} s; ` +
        `./check ${checks} runs in ${span.toFixed(0)} s; timeout-up ${TIMEOUT_UP_MS / 1000} s restarts every ${gaps.map((g) => (g / 1000).toFixed(1)).join(', ')} s; svlogd t${ROTATE_S} rotations every ${rot.join('; ')}`,
    );
  };
  await t.test('forward', (t) => phase(t, 'forward', '+0', '+1h'));
  await t.test('back', (t) => phase(t, 'back', '+1h', '+0'));
  t.equal(bg.proc.exitCode, null, 'the supervisor still runs');
  t.notMatch(bg.output(), /    at |TypeError|RangeError|Uncaught/, 'no stack trace');
});
