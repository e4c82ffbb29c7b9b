// The supervisor against Debian's runit 2.1.2, in the same run:
//  1. memory: our runsvdir (one process) with N services against Debian's runsvdir plus
//     its N runsv processes, summed; from /proc/PID/smaps_rollup (the services' own
//     processes are not counted on either side); and where ours goes, by kind of
//     mapping in /proc/PID/smaps (executable code and data, libraries, malloc's heap,
//     anonymous memory: V8's heap, arenas, stacks);
//  2. restart latency: a service is SIGKILLed; time from the kill to its new ./run
//     reporting in (many samples, median and p95), ours against Debian's runsv;
//  3. scale: --scale N,M services from nothing (the supervisor started on a directory of
//     N services) to every ./run running (each reports in), ours against Debian's
//     runsvdir with its N runsv; beside it the memory of the whole tree (the supervisor
//     and the runsv processes, the services excluded) once all run and settled.
//
//   ~/.cache/runit-ts/node-x86_64/package/bin/node bench/supervisor.ts [--services 20] [--runs 5] [--samples 20] [--scale 500,1000]
//
// Each of the --runs runs measures both sides (memory, then --samples restarts per side,
// the order alternating); printed: the median of the runs' figures with their spread
// (min-max), and the ratios of the medians.
//
// Restart latency includes what both sides share (fork + exec of /bin/sh, which writes one
// line to a FIFO we read); the difference between the two is the supervisor's. Each
// service is killed only after it ran more than a second, so runsv's 1 s crash throttle
// never applies.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, constants as C, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot as repo } from '../image/inputs.ts';
import { cacheDir, requireHostArch } from '../src/lib/platform.ts';
import { parseArgs } from 'node:util';
import { execFileSync } from 'node:child_process';
import { fmt, percentile, ratio as ratioOf, runsOption, summary } from './stats.ts';
import { machineLine } from './hello.ts';
import { TRIM_AFTER_START_MS } from '../src/lib/trim.ts';

const arch = requireHostArch();
const cache = cacheDir();
const { values } = parseArgs({
  options: {
    services: { type: 'string', default: '20' }, samples: { type: 'string', default: '20' }, runs: { type: 'string' }, scale: { type: 'string', default: '500,1000' },
    help: { type: 'boolean', short: 'h' },
  },
});
if (values.help) {
  process.stdout.write('usage: node bench/supervisor.ts [--services N (20)] [--runs N (5)] [--samples N per run and side (20)] [--scale N,M (500,1000; none: skip)]\n');
  process.exit(0);
}
const N = runsOption(values.services, 20);
const SAMPLES = runsOption(values.samples, 20);
const RUNS = runsOption(values.runs);
/** --scale: the directory sizes started from nothing ('none': no scale runs) */
const SCALES = values.scale === 'none' ? [] : values.scale.split(',').map((v) => runsOption(v, 500));
/** a supervisor's steady state, for its memory: a second past its first trim (ms) */
const SETTLED_MS = TRIM_AFTER_START_MS + 1000;
/** how long the scale runs wait for every service of a directory to run (ms) */
const SCALE_TIMEOUT_MS = 180_000;

const OURS = process.env.RUNIT_TS_BIN ?? join(repo, 'out', arch, 'runit-ts');
const DEBIAN = join(cache, `runit-${arch}`, 'usr', 'bin');
for (const [what, p] of [['our executable (make build)', OURS], ["Debian's runit (make setup)", join(DEBIAN, 'runsvdir')]] as const) {
  if (!existsSync(p)) {
    process.stderr.write(`missing ${what}: ${p}\n`);
    process.exit(1);
  }
}

type Kind = 'ours' | 'debian';
/** polls (50 ms apart) for a stopped side's services to be gone: up to 60 s for the scale runs */
const STOP_POLLS = 1200;
const root = mkdtempSync(join(tmpdir(), 'bench-supervisor-'));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Side {
  kind: Kind;
  svdir: string;
  proc: ChildProcess;
  /** performance.now() right before the supervisor's spawn (its directory already written) */
  spawned: number;
}

function start(kind: Kind, names: string[], run: (name: string) => string, tag: string): Side {
  const base = join(root, `${kind}-${tag}`);
  const svdir = join(base, 'service');
  mkdirSync(svdir, { recursive: true });
  for (const n of names) {
    mkdirSync(join(svdir, n));
    writeFileSync(join(svdir, n, 'run'), run(n), { mode: 0o755 });
  }
  let cmd = join(DEBIAN, 'runsvdir');
  if (kind === 'ours') {
    cmd = join(base, 'runsvdir');
    symlinkSync(OURS, cmd);
  }
  const env = { ...process.env, PATH: kind === 'debian' ? `${DEBIAN}:${process.env.PATH}` : process.env.PATH };
  // the tree just written (and the last run's, just removed) to disk before the clock
  // starts: otherwise the file system is still writing them back, and each side's set-up
  // of its supervise/ directories waits for that, which is the benchmark's own work
  execFileSync('sync');
  const spawned = performance.now();
  const proc = spawn(cmd, ['-P', svdir], { env, stdio: ['ignore', 'ignore', 'inherit'] });
  return { kind, svdir, proc, spawned };
}

async function stop(s: Side): Promise<void> {
  // Debian's runsvdir leaves its runsv on TERM; HUP stops them. Ours stops all on TERM.
  s.proc.kill(s.kind === 'debian' ? 'SIGHUP' : 'SIGTERM');
  await new Promise((r) => s.proc.once('exit', r));
  // the runsv of Debian's side finish on their own: wait for their services to go
  for (let i = 0; i < STOP_POLLS; i++) {
    const left = readdirSync(s.svdir).map((n) => pidOf(s, n)).filter((p) => p && alive(p));
    if (!left.length) break;
    await sleep(50);
  }
}

function pidOf(s: Side, name: string): number {
  try {
    return Number(readFileSync(join(s.svdir, name, 'supervise', 'pid'), 'utf8')) || 0;
  } catch {
    return 0;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return !/\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

function children(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

interface Mem {
  rss: number;
  pss: number;
  privClean: number;
  privDirty: number;
  procs: number;
}

function rollup(pid: number): Mem {
  const m: Mem = { rss: 0, pss: 0, privClean: 0, privDirty: 0, procs: 1 };
  const text = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
  const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? 0);
  m.rss = kb('Rss');
  m.pss = kb('Pss');
  m.privClean = kb('Private_Clean');
  m.privDirty = kb('Private_Dirty');
  return m;
}

/** The supervisor's own processes: ours = runsvdir; Debian's = runsvdir + its runsv children. */
function supervisorMem(s: Side): Mem {
  const pids = [s.proc.pid!];
  if (s.kind === 'debian') pids.push(...children(s.proc.pid!));
  const sum: Mem = { rss: 0, pss: 0, privClean: 0, privDirty: 0, procs: 0 };
  for (const p of pids) {
    const m = rollup(p);
    sum.rss += m.rss;
    sum.pss += m.pss;
    sum.privClean += m.privClean;
    sum.privDirty += m.privDirty;
    sum.procs++;
  }
  return sum;
}

async function waitAll(s: Side, names: string[], ms = 10000): Promise<void> {
  const t0 = Date.now();
  while (!names.every((n) => pidOf(s, n) && alive(pidOf(s, n)))) {
    if (Date.now() - t0 > ms) throw new Error(`${s.kind}: services did not come up`);
    await sleep(50);
  }
}

const mb = (kb: number) => (kb / 1024).toFixed(1).padStart(7);

/** Where our supervisor's PSS goes: /proc/PID/smaps summed by kind of mapping (kB). */
const KINDS = ['executable: code', 'executable: read-only data', 'executable: data', 'libraries and the addon', 'malloc heap ([heap])', 'anonymous (V8 heap, arenas, stacks)', 'other'] as const;
type Kind2 = (typeof KINDS)[number];
function breakdown(pid: number, exe: string): Record<Kind2, number> {
  const out = Object.fromEntries(KINDS.map((k) => [k, 0])) as Record<Kind2, number>;
  let kind: Kind2 = 'other';
  for (const line of readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
    const h = /^[0-9a-f]+-[0-9a-f]+ (\S{4}) \S+ \S+ \d+\s*(.*)$/.exec(line);
    if (h) {
      const [perms, name] = [h[1]!, h[2]!];
      if (name === exe) kind = perms[2] === 'x' ? 'executable: code' : perms[1] === 'w' ? 'executable: data' : 'executable: read-only data';
      else if (name.startsWith('/')) kind = 'libraries and the addon';
      else if (name === '[heap]') kind = 'malloc heap ([heap])';
      else if (name === '' || name.startsWith('[stack')) kind = 'anonymous (V8 heap, arenas, stacks)';
      else kind = 'other';
      continue;
    }
    const m = /^Pss:\s+(\d+) kB$/.exec(line);
    if (m) out[kind] += Number(m[1]);
  }
  return out;
}

// ---------------------------------------------------------------- memory
const kinds: Array<Record<Kind2, number>> = [];
async function memory(tag: string): Promise<{ ours: Mem; debian: Mem }> {
  const names = Array.from({ length: N }, (_, i) => `s${String(i).padStart(2, '0')}`);
  const sides = (['debian', 'ours'] as Kind[]).map((k) => start(k, names, () => '#!/bin/sh\nexec sleep 100000\n', tag));
  for (const s of sides) await waitAll(s, names);
  // steady state: startup garbage settled, and our supervisor has dropped the executable's
  // pages it no longer uses
  await sleep(SETTLED_MS);
  const res = { debian: supervisorMem(sides[0]!), ours: supervisorMem(sides[1]!) };
  kinds.push(breakdown(sides[1]!.proc.pid!, realpathSync(OURS)));
  for (const s of sides) await stop(s);
  return res;
}

// ---------------------------------------------------------------- reporting in
/** A FIFO the services write their name to when their ./run starts: the time each line arrived. */
interface Notify {
  fifo: string;
  seen: Map<string, number>;
  waiters: Map<string, (t: number) => void>;
  /** called with the count of lines so far, after each read */
  onCount?: (n: number, t: number) => void;
  close(): void;
}
function notifyFifo(dir: string): Notify {
  const fifo = join(dir, 'notify');
  execFileSync('mkfifo', [fifo]);
  const fd = openSync(fifo, C.O_RDWR | C.O_NONBLOCK);
  const sock = new Socket({ fd, readable: true, writable: false });
  const n: Notify = {
    fifo, seen: new Map(), waiters: new Map(),
    close() {
      sock.destroy();
      try {
        closeSync(fd);
      } catch {
        /* closed with the socket */
      }
    },
  };
  let buf = '';
  let lines = 0;
  sock.on('data', (b: Buffer) => {
    const t = performance.now();
    buf += b.toString();
    let i: number;
    while ((i = buf.indexOf('\n')) >= 0) {
      const name = buf.slice(0, i);
      buf = buf.slice(i + 1);
      lines++;
      n.seen.set(name, t);
      n.waiters.get(name)?.(t);
    }
    n.onCount?.(lines, t);
  });
  return n;
}

// ---------------------------------------------------------------- latency
async function latency(kind: Kind, samples: number, tag: string): Promise<{ ms: number[]; mem: Mem }> {
  const K = 8; // services taking turns: each runs ~K * interval between kills (> 1 s)
  const interval = 180;
  const dir = join(root, `lat-${kind}-${tag}`);
  mkdirSync(dir, { recursive: true });
  const notify = notifyFifo(dir);
  const { fifo, waiters } = notify;
  const names = Array.from({ length: K }, (_, i) => `l${i}`);
  const base = join(dir, 'tree');
  mkdirSync(base);
  const side = (() => {
    const svdir = join(base, 'service');
    mkdirSync(svdir);
    for (const n of names) {
      mkdirSync(join(svdir, n));
      writeFileSync(join(svdir, n, 'run'), `#!/bin/sh\necho ${n} > ${fifo}\nexec sleep 100000\n`, { mode: 0o755 });
    }
    let cmd = join(DEBIAN, 'runsvdir');
    if (kind === 'ours') {
      cmd = join(base, 'runsvdir');
      symlinkSync(OURS, cmd);
    }
    const env = { ...process.env, PATH: kind === 'debian' ? `${DEBIAN}:${process.env.PATH}` : process.env.PATH };
    return { kind, svdir, spawned: performance.now(), proc: spawn(cmd, ['-P', svdir], { env, stdio: ['ignore', 'ignore', 'inherit'] }) } as Side;
  })();
  await waitAll(side, names);
  await sleep(1200); // every service past runsv's 1 s throttle
  const ms: number[] = [];
  for (let i = 0; i < samples; i++) {
    const name = names[i % K]!;
    const pid = pidOf(side, name);
    const next = new Promise<number>((r) => waiters.set(name, r));
    const t0 = performance.now();
    process.kill(pid, 'SIGKILL');
    const t1 = await Promise.race([next, sleep(5000).then(() => NaN)]);
    waiters.delete(name);
    if (Number.isNaN(t1)) throw new Error(`${kind}: ${name} not restarted within 5 s`);
    ms.push(t1 - t0);
    await sleep(interval);
  }
  const mem = supervisorMem(side);
  await stop(side);
  notify.close();
  return { ms, mem };
}

// ---------------------------------------------------------------- scale
/** N services from nothing to every ./run running: ms from the supervisor's spawn; then the tree's memory */
async function scaleRun(kind: Kind, n: number, tag: string): Promise<{ ms: number; mem: Mem }> {
  const dir = join(root, `scale-${kind}-${n}-${tag}`);
  mkdirSync(dir, { recursive: true });
  const notify = notifyFifo(dir);
  const names = Array.from({ length: n }, (_, i) => `s${String(i).padStart(4, '0')}`);
  const all = new Promise<number>((resolve) => {
    notify.onCount = (count, t) => {
      if (count >= n) resolve(t);
    };
  });
  const side = start(kind, names, (name) => `#!/bin/sh\necho ${name} > ${notify.fifo}\nexec sleep 100000\n`, `scale-${n}-${tag}`);
  const t1 = await Promise.race([all, sleep(SCALE_TIMEOUT_MS).then(() => NaN)]);
  if (Number.isNaN(t1)) throw new Error(`${kind}: ${notify.seen.size} of ${n} services running after ${SCALE_TIMEOUT_MS} ms`);
  await sleep(SETTLED_MS); // settled, as for the memory above
  const mem = supervisorMem(side);
  if (kind === 'ours') process.stderr.write(`[bench] ${spawnSpan(side.svdir)}; all ${n} reported ${((t1 - side.spawned) / 1000).toFixed(2)} s after its spawn\n`);
  await stop(side);
  notify.close();
  rmSync(join(root, `${kind}-scale-${n}-${tag}`), { recursive: true, force: true });
  return { ms: t1 - side.spawned, mem };
}

/** Where our supervisor's time went: its first and last spawn of ./run, from its timeline (.timeline.json, monotonic seconds). */
function spawnSpan(svdir: string): string {
  try {
    const tl = JSON.parse(readFileSync(join(svdir, '.timeline.json'), 'utf8')) as { supervisorStart: number; services: Record<string, { spawned?: number }> };
    const at = Object.values(tl.services).map((e) => e.spawned).filter((x): x is number => x !== undefined).map((x) => x - tl.supervisorStart);
    return `ours: first ./run spawned ${Math.min(...at).toFixed(2)} s, the last ${Math.max(...at).toFixed(2)} s after the supervisor's start`;
  } catch (e) {
    return `ours: no timeline (${(e as Error).message})`;
  }
}

// ---------------------------------------------------------------- main
process.on('exit', () => rmSync(root, { recursive: true, force: true }));
const out = (s = '') => process.stdout.write(s + '\n');

out(`supervisor benchmark: ours ${OURS} against Debian runit 2.1.2 (${DEBIAN}), ${RUNS} runs`);
out(await machineLine());
const mems: Array<{ ours: Mem; debian: Mem }> = [];
const lat: Record<Kind, { median: number[]; p95: number[]; all: number[] }> = { ours: { median: [], p95: [], all: [] }, debian: { median: [], p95: [], all: [] } };
let oursAfter: Mem | undefined;
for (let r = 0; r < RUNS; r++) {
  process.stderr.write(`[bench] supervisor run ${r + 1}/${RUNS}\n`);
  mems.push(await memory(String(r)));
  for (const k of (r % 2 ? ['ours', 'debian'] : ['debian', 'ours']) as Kind[]) {
    const res = await latency(k, SAMPLES, String(r));
    lat[k].median.push(percentile(res.ms, 50));
    lat[k].p95.push(percentile(res.ms, 95));
    lat[k].all.push(...res.ms);
    if (k === 'ours') oursAfter = res.mem;
  }
}
const scaled: Record<number, Record<Kind, { ms: number[]; pss: number[]; rss: number[]; procs: number }>> = {};
for (const n of SCALES) {
  scaled[n] = { ours: { ms: [], pss: [], rss: [], procs: 0 }, debian: { ms: [], pss: [], rss: [], procs: 0 } };
  for (let r = 0; r < RUNS; r++) {
    process.stderr.write(`[bench] supervisor scale ${n} run ${r + 1}/${RUNS}\n`);
    for (const k of (r % 2 ? ['ours', 'debian'] : ['debian', 'ours']) as Kind[]) {
      const res = await scaleRun(k, n, String(r));
      const x = scaled[n]![k];
      x.ms.push(res.ms);
      x.pss.push(res.mem.pss / 1024);
      x.rss.push(res.mem.rss / 1024);
      x.procs = res.mem.procs;
    }
  }
}
const m = (k: Kind, f: (x: Mem) => number) => summary(mems.map((x) => f(x[k]) / 1024));
const memRow = (label: string, f: (x: Mem) => number, note = '') => {
  const o = m('ours', f);
  const d = m('debian', f);
  out(`${label.padEnd(22)}${fmt(o, 1).padStart(18)} ${fmt(d, 1).padStart(18)}   ${ratioOf(o.median, d.median).padStart(6)}${note}`);
};
out('');
out(`memory with ${N} services (smaps_rollup; MiB, median of ${RUNS} runs (min-max); Debian = runsvdir + ${N} runsv, summed)`);
out(`                                    ours             debian   ours/debian`);
out(`processes             ${String(mems[0]!.ours.procs).padStart(17)} ${String(mems[0]!.debian.procs).padStart(18)}`);
memRow('Pss', (x) => x.pss);
memRow('Private (clean+dirty)', (x) => x.privClean + x.privDirty);
memRow('  Private_Dirty', (x) => x.privDirty);
memRow('  Private_Clean', (x) => x.privClean, '   (file pages of the executable no other process maps)');
memRow('Rss', (x) => x.rss);
out('');
out(`where our Pss goes (smaps by mapping; MiB, median of ${RUNS} runs (min-max))`);
for (const k of KINDS) out(`  ${k.padEnd(38)}${fmt(summary(kinds.map((x) => x[k] / 1024)), 1).padStart(18)}`);
out('');
out(`restart latency after SIGKILL (ms: kill -> new ./run running), ${SAMPLES} samples per run and side;`);
out(`median and p95 of each run: median of ${RUNS} runs (min-max); "all": over all ${lat.ours.all.length} samples`);
out(`                      median of runs         p95 of runs      all: median     p95`);
for (const k of ['ours', 'debian'] as Kind[]) {
  const L = lat[k];
  out(`${k.padEnd(10)} ${fmt(summary(L.median)).padStart(21)} ${fmt(summary(L.p95)).padStart(19)} ${percentile(L.all, 50).toFixed(2).padStart(16)} ${percentile(L.all, 95).toFixed(2).padStart(7)}`);
}
out(`ours/debian ${ratioOf(summary(lat.ours.median).median, summary(lat.debian.median).median).padStart(20)} ${ratioOf(summary(lat.ours.p95).median, summary(lat.debian.p95).median).padStart(19)} ${ratioOf(percentile(lat.ours.all, 50), percentile(lat.debian.all, 50)).padStart(16)} ${ratioOf(percentile(lat.ours.all, 95), percentile(lat.debian.all, 95)).padStart(7)}   target: <= 1.0x (median and p95)`);
if (oursAfter) out(`ours after the last run's restarts (8 services, ${SAMPLES} restarts): Private_Dirty ${mb(oursAfter.privDirty)} MiB, Pss ${mb(oursAfter.pss)} MiB`);
if (SCALES.length) {
  out('');
  out(`scale: N services from nothing to every ./run running (s: the supervisor's spawn -> the last service reports in), median of ${RUNS} runs (min-max);`);
  out('the memory of the whole tree once all run and settled (MiB: the supervisor and the runsv processes, the services excluded; Debian = runsvdir + N runsv)');
  out(`services            ours: all running          debian   ours/debian    ours Pss     debian Pss  ours/debian   ours Rss   debian Rss`);
  for (const n of SCALES) {
    const o = scaled[n]!.ours;
    const d = scaled[n]!.debian;
    const [om, dm, op, dp, or, dr] = [o.ms.map((x) => x / 1000), d.ms.map((x) => x / 1000), o.pss, d.pss, o.rss, d.rss].map((xs) => summary(xs));
    out(`${String(n).padEnd(10)} ${fmt(om!).padStart(22)} ${fmt(dm!).padStart(22)} ${ratioOf(om!.median, dm!.median).padStart(8)}` +
      `   ${fmt(op!, 1).padStart(18)} ${fmt(dp!, 1).padStart(18)} ${ratioOf(op!.median, dp!.median).padStart(6)} ${or!.median.toFixed(1).padStart(10)} ${dr!.median.toFixed(1).padStart(12)}   (${o.procs} vs ${d.procs} processes)   target: <= 1.0x (time)`);
  }
}
