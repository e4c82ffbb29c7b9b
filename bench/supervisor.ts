// The supervisor against Debian's runit 2.1.2, in the same run:
//  1. memory: our runsvdir (one process) with N services against Debian's runsvdir plus
//     its N runsv processes, summed; from /proc/PID/smaps_rollup (the services' own
//     processes are not counted on either side);
//  2. restart latency: a service is SIGKILLed; time from the kill to its new ./run
//     reporting in (many samples, median and p95), ours against Debian's runsv.
//
//   ~/.cache/runit-ts/node-x86_64/package/bin/node bench/supervisor.ts [--services 20] [--samples 80]
//
// Restart latency includes what both sides share (fork + exec of /bin/sh, which writes one
// line to a FIFO we read); the difference between the two is the supervisor's. Each
// service is killed only after it ran more than a second, so runsv's 1 s crash throttle
// never applies.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, constants as C, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { cacheDir } from '../src/lib/platform.ts';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { execFileSync } from 'node:child_process';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const arch = process.arch === 'arm64' ? 'aarch64' : 'x86_64';
const cache = cacheDir();
const { values } = parseArgs({
  options: { services: { type: 'string', default: '20' }, samples: { type: 'string', default: '80' }, rounds: { type: 'string', default: '2' } },
});
const N = Number(values.services);
const SAMPLES = Number(values.samples);
const ROUNDS = Number(values.rounds);

const OURS = process.env.RUNIT_TS_BIN ?? join(repo, 'out', arch, 'runit-ts');
const DEBIAN = join(cache, `runit-${arch}`, 'usr', 'bin');
for (const [what, p] of [['our executable (make build)', OURS], ["Debian's runit (make setup)", join(DEBIAN, 'runsvdir')]] as const) {
  if (!existsSync(p)) {
    process.stderr.write(`missing ${what}: ${p}\n`);
    process.exit(1);
  }
}

type Kind = 'ours' | 'debian';
const root = mkdtempSync(join(tmpdir(), 'bench-supervisor-'));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Side {
  kind: Kind;
  svdir: string;
  proc: ChildProcess;
}

function start(kind: Kind, names: string[], run: (name: string) => string): Side {
  const base = join(root, kind);
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
  const proc = spawn(cmd, ['-P', svdir], { env, stdio: ['ignore', 'ignore', 'inherit'] });
  return { kind, svdir, proc };
}

async function stop(s: Side): Promise<void> {
  // Debian's runsvdir leaves its runsv on TERM; HUP stops them. Ours stops all on TERM.
  s.proc.kill(s.kind === 'debian' ? 'SIGHUP' : 'SIGTERM');
  await new Promise((r) => s.proc.once('exit', r));
  // the runsv of Debian's side finish on their own: wait for their services to go
  for (let i = 0; i < 100; i++) {
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
const ratio = (a: number, b: number) => (b ? (a / b).toFixed(2) : '-').padStart(6);

// ---------------------------------------------------------------- memory
async function memory(): Promise<{ ours: Mem; debian: Mem; oursAfter?: Mem }> {
  const names = Array.from({ length: N }, (_, i) => `s${String(i).padStart(2, '0')}`);
  const sides = (['debian', 'ours'] as Kind[]).map((k) => start(k, names, () => '#!/bin/sh\nexec sleep 100000\n'));
  for (const s of sides) await waitAll(s, names);
  // steady state: startup garbage settled, and our supervisor has dropped the executable's
  // pages it no longer uses (5 s after start, src/lib/trim.ts)
  await sleep(6000);
  const res = { debian: supervisorMem(sides[0]!), ours: supervisorMem(sides[1]!) };
  for (const s of sides) await stop(s);
  return res;
}

// ---------------------------------------------------------------- latency
function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

async function latency(kind: Kind, samples: number, tag: string): Promise<{ ms: number[]; mem: Mem }> {
  const K = 8; // services taking turns: each runs ~K * interval between kills (> 1 s)
  const interval = 180;
  const dir = join(root, `lat-${kind}-${tag}`);
  mkdirSync(dir, { recursive: true });
  const fifo = join(dir, 'notify');
  execFileSync('mkfifo', [fifo]);
  const fd = openSync(fifo, C.O_RDWR | C.O_NONBLOCK);
  const seen = new Map<string, number>();
  const waiters = new Map<string, (t: number) => void>();
  const sock = new Socket({ fd, readable: true, writable: false });
  let buf = '';
  sock.on('data', (b: Buffer) => {
    const t = performance.now();
    buf += b.toString();
    let i: number;
    while ((i = buf.indexOf('\n')) >= 0) {
      const name = buf.slice(0, i);
      buf = buf.slice(i + 1);
      seen.set(name, t);
      waiters.get(name)?.(t);
    }
  });
  const names = Array.from({ length: K }, (_, i) => `l${i}`);
  const base = join(dir, 'tree');
  mkdirSync(base);
  const saveRoot = join(root, kind);
  void saveRoot;
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
    return { kind, svdir, proc: spawn(cmd, ['-P', svdir], { env, stdio: ['ignore', 'ignore', 'inherit'] }) } as Side;
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
  sock.destroy();
  try {
    closeSync(fd);
  } catch {
    /* closed with the socket */
  }
  return { ms, mem };
}

// ---------------------------------------------------------------- main
process.on('exit', () => rmSync(root, { recursive: true, force: true }));
const out = (s = '') => process.stdout.write(s + '\n');

out(`supervisor benchmark: ours ${OURS} against Debian runit 2.1.2 (${DEBIAN})`);
const mem = await memory();
out('');
out(`memory with ${N} services (smaps_rollup; MiB; Debian = runsvdir + ${N} runsv, summed)`);
out(`                          ours  debian   ours/debian`);
out(`processes             ${String(mem.ours.procs).padStart(7)} ${String(mem.debian.procs).padStart(7)}`);
out(`Pss                   ${mb(mem.ours.pss)} ${mb(mem.debian.pss)}   ${ratio(mem.ours.pss, mem.debian.pss)}`);
out(`Private (clean+dirty) ${mb(mem.ours.privClean + mem.ours.privDirty)} ${mb(mem.debian.privClean + mem.debian.privDirty)}   ${ratio(mem.ours.privClean + mem.ours.privDirty, mem.debian.privClean + mem.debian.privDirty)}`);
out(`  Private_Dirty       ${mb(mem.ours.privDirty)} ${mb(mem.debian.privDirty)}   ${ratio(mem.ours.privDirty, mem.debian.privDirty)}`);
out(`  Private_Clean       ${mb(mem.ours.privClean)} ${mb(mem.debian.privClean)}   (file pages of the executable no other process maps)`);
out(`Rss                   ${mb(mem.ours.rss)} ${mb(mem.debian.rss)}   ${ratio(mem.ours.rss, mem.debian.rss)}`);

const lat: Record<Kind, number[]> = { ours: [], debian: [] };
let oursAfter: Mem | undefined;
for (let r = 0; r < ROUNDS; r++) {
  for (const k of (r % 2 ? ['ours', 'debian'] : ['debian', 'ours']) as Kind[]) {
    const res = await latency(k, Math.ceil(SAMPLES / ROUNDS), String(r));
    lat[k].push(...res.ms);
    if (k === 'ours') oursAfter = res.mem;
  }
}
out('');
out(`restart latency after SIGKILL, ${lat.ours.length} samples each (ms: kill -> new ./run running)`);
out(`              median     p95     min     max`);
for (const k of ['ours', 'debian'] as Kind[]) {
  const xs = lat[k];
  out(`${k.padEnd(10)} ${percentile(xs, 50).toFixed(2).padStart(9)} ${percentile(xs, 95).toFixed(2).padStart(7)} ${Math.min(...xs).toFixed(2).padStart(7)} ${Math.max(...xs).toFixed(2).padStart(7)}`);
}
out(`ours/debian ${ratio(percentile(lat.ours, 50), percentile(lat.debian, 50))} (median) ${ratio(percentile(lat.ours, 95), percentile(lat.debian, 95))} (p95)   target: within 1.5x`);
if (oursAfter) out(`ours after the restart runs (8 services, ${lat.ours.length} restarts): Private_Dirty ${mb(oursAfter.privDirty)} MiB, Pss ${mb(oursAfter.pss)} MiB`);
