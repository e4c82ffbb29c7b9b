// scripts/code-cache.ts: the V8 code caches each arch's executable starts with
// (scripts/sea-loader.cjs picks one by the applet called), each made by a training run of
// the bundle under that arch's pinned Node (the other arch's under qemu-user), started
// with the executable's V8 options. When a trained process exits it writes V8's cache of
// every function compiled by then (scripts/sea-train.cjs). V8 accepts a cache only from
// the same V8 build, arch and flags; code it does not cover is compiled on first use, as
// without a cache. Three runs, three caches:
//  - the supervisor's, for every applet but the two below: the boot's path after Node's
//    start. Stage 2 is `runsvdir -P /etc/service`, so the training starts `runsvdir -P` on
//    three services, each logging through svlogd (run in-process, as in the image), waits
//    until all six are up, kills one service so that the restart path runs, and ends the
//    supervisor with SIGHUP.
//  - sv's: `sv status` of those three services while they run, of sv's own bundle
//    (src/sv/entry.ts). A short applet that used the supervisor's bundle and cache would
//    load and check its 270 KiB at every call, most of it code sv never runs (the
//    `sv status` a run script or a boot test calls, under emulation).
//  - container-init's: it runs a start-up script, starts three logged services of its
//    own, reaps an orphan, and after its trim SIGTERM stops them, the path of every
//    `podman stop`.
//
// The cache is the same bytes at every build (the executable, the images and their SBOMs
// with it). Five things made a run's cache differ, each measured:
//  - V8's hash seed, random per process: every string in the cache carries its hash, and
//    the names of a large scope are kept in a hash table, in hash order. Both processes
//    below run with a fixed --random-seed, which seeds the hash seed and which V8 leaves
//    out of the flag hash it stamps the cache with: the executable accepts the cache, and
//    rehashes it on load as it does any code cache (made with another seed or not).
//  - What the supervisor does on a timer: 5 s after its start it trims its memory (four
//    functions more in the cache when a run lasted that long), and runsv holds a service
//    back a second when it ran less than one (in whole seconds). The run waits past both,
//    so that every run takes the same paths: a lower bound on time is what a slower
//    machine or qemu cannot break (checked: the same cache with the kill at 4 s and SIGHUP
//    at 13 s; the later scans run the code of the first ones).
//  - V8's compilers racing the run: a function queued for Sparkplug on V8's worker thread
//    when the supervisor turned the compilers off (src/lib/trim.ts) keeps a flag that says
//    so, and the cache holds the flag (3 bytes apart between two aarch64 runs). The run
//    turns them off before it compiles anything (scripts/sea-train.cjs), as the supervisor
//    has them after its start; the bytecode, all the cache holds of code, is the same.
//  - The run's history: two runs that compiled the same functions in another order
//    (which process's event came first) wrote data 11 bytes apart. So that data is loaded
//    by a fresh process of the same Node and options, which runs nothing and writes it
//    again: the same functions, and bytes that depend on nothing else. (V8 numbers the
//    functions it loads on from what the process compiled before: the fresh process runs
//    with an empty environment, so that no NODE_OPTIONS has it load anything first.)
//  - A path only a race takes: container-init reaps orphans by looking for zombies, and
//    reads the supervisor's pids only when it finds one, which a service's exit leaves
//    for a moment or not (1 run in 3 compiled 4 functions more, found with V8's
//    --log-function-events). Its training leaves an orphan behind, so the path runs always.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { repoRoot } from '../image/inputs.ts';
import { TRIM_AFTER_START_MS } from '../src/lib/trim.ts';

const SERVICES = ['a', 'b', 'c'];
const TIMEOUT_MS = 180_000;
/** V8's random seed (and with it the hash seed) of both processes: not in V8's flag hash */
const FIXED_SEED = '--random-seed=1';
/**
 * How long the services have been up before one is killed (ms): more than runsv's
 * one-second hold of a service that ran less than a second, so the restart is at once.
 */
const KILL_AFTER_MS = 1_500;
/**
 * How long the supervisor runs after its services are up before SIGHUP (ms): past the
 * trim of its memory, a timer it sets before its first pass (scheduleTrims, src/lib/trim.ts).
 */
const HUP_AFTER_MS = TRIM_AFTER_START_MS + 500;
/**
 * RUNSVDIR_STOP_TIMEOUT of the run (s): SIGHUP stops the services with TERM, and however
 * slow the machine, never with the KILL that follows a stop taking longer than this.
 */
const STOP_TIMEOUT_SEC = TIMEOUT_MS / 1000;
/** the poll interval of the waits (ms) */
const POLL_MS = 50;

export interface TrainOptions {
  /** the command that runs the target arch's Node (with qemu-user in front for the other arch) */
  node: string[];
  /** the arch's Node binary itself: `svlogd` in the services' PATH links to it, so their loggers run in-process */
  nodeBinary: string;
  /** the executable's V8 options: the cache is stamped with them */
  execArgv: string[];
  /** the suite's bundle, and sv's own (src/sv/entry.ts), which sv's cache is made of */
  bundle: string;
  svBundle: string;
  /** the arch's addon (spawn, locks) */
  addon: string;
  out: string;
  say: (m: string) => void;
}

/** A status file's content, '' while it does not exist yet. */
function read(p: string): string {
  try {
    return readFileSync(p, 'utf8').trim();
  } catch {
    return '';
  }
}

/** Wait until `ok()` holds, polling; fails the build at `deadline`. */
async function until(what: string, ok: () => boolean, deadline: number): Promise<void> {
  while (!ok()) {
    if (performance.now() > deadline) throw new Error(`code cache training: timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

/** Wait until the monotonic clock reads `at` (ms). */
async function sleepUntil(at: number): Promise<void> {
  const ms = at - performance.now();
  if (ms > 0) await new Promise((r) => setTimeout(r, ms));
}

/** The caches of a build, by what the loader picks them for (scripts/sea-loader.cjs). */
export type CacheKind = 'supervisor' | 'container' | 'sv';
export const CACHE_KINDS: readonly CacheKind[] = ['supervisor', 'container', 'sv'];

/** Where each cache goes: `out` the supervisor's, the others beside it (out/bundle/runit-ts-ARCH-sv.cache). */
export function cacheFiles(out: string): Record<CacheKind, string> {
  const base = out.replace(/\.cache$/, '');
  return { supervisor: out, container: `${base}-container.cache`, sv: `${base}-sv.cache` };
}


/** A service directory of SERVICES, each logging through svlogd (in-process: `bin`/svlogd links to the Node binary). */
function makeServices(svdir: string): void {
  for (const s of SERVICES) {
    mkdirSync(join(svdir, s, 'log', 'main'), { recursive: true });
    writeFileSync(join(svdir, s, 'run'), '#!/bin/sh\necho started\nexec sleep 1000\n', { mode: 0o755 });
    writeFileSync(join(svdir, s, 'log', 'run'), '#!/bin/sh\nexec svlogd -tt ./main\n', { mode: 0o755 });
  }
}

/** Every service of `svdir` and its logger runs. */
function allUp(svdir: string): boolean {
  return SERVICES.every((s) => read(join(svdir, s, 'supervise', 'stat')) === 'run' && read(join(svdir, s, 'log', 'supervise', 'stat')) === 'run');
}

/** Write the caches (cacheFiles(o.out)): each of a training run of the bundle, written again by a fresh process. */
export async function trainCodeCache(o: TrainOptions): Promise<void> {
  const t0 = performance.now();
  const tmp = mkdtempSync(join(tmpdir(), 'runit-ts-train-'));
  const files = cacheFiles(o.out);
  const trained = { supervisor: join(tmp, 'supervisor.cache'), container: join(tmp, 'container.cache'), sv: join(tmp, 'sv.cache') };
  const procs: Array<ReturnType<typeof execa>> = [];
  const dirs: string[] = [];
  const [cmd, ...pre] = o.node;
  const train = join(repoRoot, 'scripts', 'sea-train.cjs');
  const node = [...pre, ...o.execArgv, FIXED_SEED];
  const bin = join(tmp, 'bin');
  const env = { PATH: `${bin}:/usr/sbin:/usr/bin:/sbin:/bin`, RUNIT_TS_ADDON: o.addon };
  const bundleOf = (kind: CacheKind) => (kind === 'sv' ? o.svBundle : o.bundle);
  /** a training run of APPLET ARGS (the `kind` of call) writing its cache to `to` */
  const run = (kind: CacheKind, to: string, applet: string[], more: Record<string, string> = {}) => {
    const p = execa(cmd!, [...node, train, bundleOf(kind), '-', to, ...applet], { env: { ...env, ...more }, extendEnv: false, reject: false, all: true });
    procs.push(p);
    return p;
  };
  const deadline = performance.now() + TIMEOUT_MS;
  try {
    mkdirSync(bin);
    symlinkSync(o.nodeBinary, join(bin, 'svlogd'));

    // the supervisor's run, and sv's while its services run
    const svdir = join(tmp, 'service');
    dirs.push(svdir);
    makeServices(svdir);
    const proc = run('supervisor', trained.supervisor, ['runsvdir', '-P', svdir, `log: ${'.'.repeat(40)}`], { RUNSVDIR_STOP_TIMEOUT: String(STOP_TIMEOUT_SEC) });
    await until('the services to be up', () => allUp(svdir) || proc.exitCode !== null, deadline);
    if (proc.exitCode !== null) throw new Error(`code cache training: the supervisor ended early:\n${(await proc).all}`);
    // the supervisor set its timers before its first pass started the services
    const upAt = performance.now();
    // the restart path: a service killed and started again
    await sleepUntil(upAt + KILL_AFTER_MS);
    const supervise = (s: string) => join(svdir, s, 'supervise');
    const pid = Number(read(join(supervise('a'), 'pid')));
    process.kill(pid, 'SIGKILL');
    await until('the killed service to be restarted', () => {
      const now = Number(read(join(supervise('a'), 'pid')));
      return now > 0 && now !== pid && allUp(svdir);
    }, deadline);
    const sv = await run('sv', trained.sv, ['sv', 'status', ...SERVICES.map((s) => join(svdir, s))]);
    if (sv.exitCode !== 0 || !existsSync(trained.sv)) throw new Error(`code cache training: sv status ended with ${sv.exitCode ?? sv.signal}:\n${sv.all}`);
    await sleepUntil(upAt + HUP_AFTER_MS);
    proc.kill('SIGHUP');
    const r = await proc;
    // runsvdir ends with 111 on SIGHUP, once its services are down
    if (r.exitCode !== 111 || !existsSync(trained.supervisor)) throw new Error(`code cache training: the supervisor ended with ${r.exitCode ?? r.signal}:\n${r.all}`);

    // container-init's run: its own services, stopped by SIGTERM past its trim; a start-up
    // script leaves an orphan behind that ends a little later, so that the reaping of
    // orphans runs whole in every run (it looks at the supervisor's pids only when it finds
    // a zombie, which a service's exit makes for a moment, or not, as the run goes)
    const csvdir = join(tmp, 'container', 'service');
    dirs.push(csvdir);
    makeServices(csvdir);
    const startup = join(tmp, 'container', 'startup.d');
    mkdirSync(startup);
    writeFileSync(join(startup, 'orphan'), '#!/bin/sh\nsleep 0.2 &\n', { mode: 0o755 });
    const ci = run('container', trained.container, ['container-init'], { RUNIT_TS_SERVICES: csvdir, RUNIT_TS_STATE: join(tmp, 'container', 'state'), RUNIT_TS_STARTUP_DIR: startup });
    await until('container-init\'s services to be up', () => allUp(csvdir) || ci.exitCode !== null, deadline);
    if (ci.exitCode !== null) throw new Error(`code cache training: container-init ended early:\n${(await ci).all}`);
    await sleepUntil(performance.now() + HUP_AFTER_MS);
    ci.kill('SIGTERM');
    const c = await ci;
    if (c.exitCode !== 0 || !existsSync(trained.container)) throw new Error(`code cache training: container-init ended with ${c.exitCode ?? c.signal}:\n${c.all}`);
    const t1 = performance.now();

    // each written again by a process that loads it and runs nothing; whole or not at all
    for (const kind of CACHE_KINDS) {
      const written = `${files[kind]}.new`;
      const again = await execa(cmd!, [...node, train, bundleOf(kind), trained[kind], written, '-'], { env: {}, extendEnv: false, reject: false, all: true });
      if (again.exitCode !== 0 || !existsSync(written)) throw new Error(`code cache: writing the trained ${kind} cache again failed (${again.exitCode ?? again.signal}):\n${again.all}`);
    }
    for (const kind of CACHE_KINDS) renameSync(`${files[kind]}.new`, files[kind]);
    const sizes = CACHE_KINDS.map((k) => `${k} ${(statSync(files[k]).size / 1024).toFixed(0)} KiB`).join(', ');
    o.say(`code caches ${o.out} and beside it: ${sizes} (training runs ${((t1 - t0) / 1000).toFixed(1)} s, written again in ${((performance.now() - t1) / 1000).toFixed(1)} s)`);
  } finally {
    // after a failure: nothing of the runs left behind
    for (const p of procs) if (p.exitCode === null) p.kill('SIGKILL');
    for (const d of dirs) {
      for (const s of SERVICES) {
        const pid = Number(read(join(d, s, 'supervise', 'pid')));
        if (pid > 0) try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
      }
    }
    rmSync(tmp, { recursive: true, force: true });
    for (const f of Object.values(files)) rmSync(`${f}.new`, { force: true });
  }
}
