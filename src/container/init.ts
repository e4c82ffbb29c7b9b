// container-init: the process a container runs first (its Entrypoint). No kernel to set
// up and nothing to reboot: it prepares writable state under /run, runs the one-shot
// start-up scripts, supervises every service in /etc/service with the in-process
// runsvdir, optionally runs a main command beside them, reaps orphans, and on SIGTERM
// stops everything in parallel within a grace time. See HELP for the knobs.
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants as C, mkdirSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { constants as OS } from 'node:os';
import { errLine, fatal, note, runToolAsync, warn } from '../lib/diag.ts';
import { native } from '../lib/native.ts';
import { Runsvdir } from '../runsvdir/runsvdir.ts';

export const DEFAULTS = {
  RUNIT_TS_SERVICES: '/etc/service',
  RUNIT_TS_STARTUP_DIR: '/etc/runit-ts/startup.d',
  RUNIT_TS_STATE: '/run/runit-ts',
  RUNIT_TS_KILL_GRACETIME: '5000',
  RUNIT_TS_BEHAVIOUR_IF_STARTUP_FAILS: '2',
} as const;

export const HELP = `usage: container-init [COMMAND [ARG...]]
       runit-ts container-init [COMMAND [ARG...]]

Init for a container (use it as the image's Entrypoint). In order:
  1. prepares its state directory (RUNIT_TS_STATE, default /run/runit-ts; if it
     cannot be written, /tmp/runit-ts-UID): a copy of every service of
     RUNIT_TS_SERVICES (default /etc/service) whose files are links to the
     originals and whose supervise/ directories are writable, and env/, an envdir of
     the container's environment (for 'chpst -e'). The root file system may be
     read-only; nothing else is written.
  2. runs every executable file of RUNIT_TS_STARTUP_DIR (default
     /etc/runit-ts/startup.d) in name order, one at a time, with the container's
     environment. When one fails, RUNIT_TS_BEHAVIOUR_IF_STARTUP_FAILS says what
     happens: 0 go on, 1 go on with a warning, 2 (default) stop the container with
     the script's exit code (128+signal if it was killed).
  3. supervises the services (as runsvdir on the state copy; SVDIR is set to it for
     sv and for the services, which inherit the container's environment).
  4. with a COMMAND (the image's Cmd or podman run arguments): runs it as the main
     process; when it exits the services are stopped and the container exits with
     its exit code (128+signal when it was killed). Without one: runs until stopped.

SIGTERM, SIGINT, SIGHUP or SIGQUIT: every service is stopped in parallel as
'sv exit' does (TERM, CONT, ./finish), the main command gets the same signal; what
is still running after RUNIT_TS_KILL_GRACETIME milliseconds (default 5000; keep it
under the runtime's stop timeout, 10 s for podman and docker) gets SIGKILL. Then it
exits: 0, or the main command's code.

Works as PID 1 or not: when it is not PID 1 it makes itself the child subreaper, so
orphans come to it either way; every orphan is reaped. Its own lines and the
services' output go to its stdout/stderr (podman logs).
Probe (Kubernetes exec readiness/liveness): 'runit-ts container-probe'.
`;

/** How this tool names itself in its lines (src/lib/diag.ts). */
const PROG = 'container-init';

function writable(dir: string): boolean {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o755 });
    accessSync(dir, C.W_OK);
    return true;
  } catch {
    return false;
  }
}

/** The state directory: RUNIT_TS_STATE, or a per-user one under /tmp if that is read-only. */
export function stateDir(env = process.env): string {
  const want = env.RUNIT_TS_STATE || DEFAULTS.RUNIT_TS_STATE;
  if (writable(want)) return want;
  const alt = `/tmp/runit-ts-${process.getuid?.() ?? 0}`;
  if (writable(alt)) {
    warn(PROG, `${want} is not writable, state goes to ${alt}`);
    return alt;
  }
  throw new Error(`no writable state directory (${want}, ${alt}): mount a tmpfs on /run`);
}

/**
 * Mirror a service directory: a real directory whose entries are symlinks to the
 * originals, except supervise/ (a fresh writable directory) and log/ (mirrored too).
 */
function mirrorService(src: string, dest: string): void {
  mkdirSync(dest, { recursive: true });
  for (const name of readdirSync(src).sort()) {
    if (name === 'supervise') continue;
    const from = join(src, name);
    if (name === 'log' && statSync(from).isDirectory()) {
      mirrorService(from, join(dest, 'log'));
      continue;
    }
    symlinkSync(from, join(dest, name));
  }
}

export function prepareServices(servicesDir: string, state: string): string {
  const out = join(state, 'service');
  rmSync(out, { recursive: true, force: true });
  mkdirSync(out, { recursive: true });
  let names: string[] = [];
  try {
    names = readdirSync(servicesDir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  for (const name of names.sort()) {
    if (name.startsWith('.')) continue;
    const src = join(servicesDir, name);
    try {
      if (!statSync(src).isDirectory()) continue;
    } catch {
      continue;
    }
    mirrorService(src, join(out, name));
  }
  return out;
}

/** The container environment as an envdir (one file per variable). */
function writeEnvdir(state: string, env: NodeJS.ProcessEnv): void {
  const dir = join(state, 'env');
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined || k.includes('/') || k === '' || k.startsWith('.')) continue;
    writeFileSync(join(dir, k), v.replace(/\0/g, '\n') + '\n');
  }
}

/** Wait status -> exit code as a shell reports it. */
export function exitCodeOf(code: number | null, signal: NodeJS.Signals | null): number {
  if (signal) return 128 + (OS.signals[signal] ?? 0);
  return code ?? 0;
}

function run(file: string, args: string[], env: NodeJS.ProcessEnv, track: Set<number>): { child: ChildProcess; done: Promise<number> } {
  const child = spawn(file, args, { stdio: 'inherit', env });
  if (child.pid) track.add(child.pid);
  const done = new Promise<number>((res) => {
    child.on('error', (e: NodeJS.ErrnoException) => {
      note(PROG, `unable to start ${file}: ${e.code ?? e.message}`);
      res(e.code === 'ENOENT' ? 127 : 126);
    });
    child.on('exit', (code, sig) => {
      if (child.pid) track.delete(child.pid);
      res(exitCodeOf(code, sig));
    });
  });
  return { child, done };
}

/** Children of this process that are zombies (from /proc/self/task/<tid>/children). */
function zombieChildren(): number[] {
  const pids = new Set<number>();
  try {
    for (const tid of readdirSync('/proc/self/task')) {
      try {
        for (const p of readFileSync(`/proc/self/task/${tid}/children`, 'utf8').split(' ')) if (p.trim()) pids.add(Number(p));
      } catch {
        /* thread gone */
      }
    }
  } catch {
    return [];
  }
  const z: number[] = [];
  for (const pid of pids) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
      if (stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) === 'Z') z.push(pid);
    } catch {
      /* gone */
    }
  }
  return z;
}

/**
 * Reap orphans: zombies that are our children but were not started by Node (Node
 * waits for its own). `ours` lists every pid Node started that has not exited yet.
 */
export function reapOrphans(ours: () => Set<number>): number {
  const zs = zombieChildren();
  if (zs.length === 0) return 0;
  const known = ours();
  let n = 0;
  for (const pid of zs) {
    if (known.has(pid)) continue;
    if (native().reap(pid) !== -1) n++;
  }
  return n;
}

function knob(env: NodeJS.ProcessEnv, name: keyof typeof DEFAULTS, ok: (v: string) => boolean): string {
  const v = env[name] ?? DEFAULTS[name];
  if (!ok(v)) {
    warn(PROG, `${name}=${v} is not valid, using ${DEFAULTS[name]}`);
    return DEFAULTS[name];
  }
  return v;
}

/** The applet: its fatal lines and exit code through src/lib/diag.ts. */
export async function main(argv: string[]): Promise<number> {
  return runToolAsync(() => init(argv));
}

/** The init itself; its fatal lines end it through src/lib/diag.ts (Exit), which main() prints. */
async function init(argv: string[]): Promise<number> {
  if (argv[0] === '--help' || argv[0] === '-h') {
    process.stdout.write(HELP);
    return 0;
  }
  if (argv[0] === '--') argv = argv.slice(1);
  const env = process.env;
  const grace = Number(knob(env, 'RUNIT_TS_KILL_GRACETIME', (v) => /^\d+$/.test(v)));
  const behaviour = Number(knob(env, 'RUNIT_TS_BEHAVIOUR_IF_STARTUP_FAILS', (v) => /^[012]$/.test(v)));
  const servicesDir = env.RUNIT_TS_SERVICES || DEFAULTS.RUNIT_TS_SERVICES;
  const startupDir = env.RUNIT_TS_STARTUP_DIR || DEFAULTS.RUNIT_TS_STARTUP_DIR;

  if (process.pid !== 1) {
    try {
      native().setChildSubreaper();
    } catch (e) {
      warn(PROG, `cannot become child subreaper: ${(e as Error).message}`);
    }
  }
  const track = new Set<number>();
  let rd: Runsvdir | undefined;
  const ours = () => new Set([...track, ...(rd?.pids() ?? [])]);
  const reap = () => {
    try {
      reapOrphans(ours);
    } catch (e) {
      warn(PROG, `reaping: ${(e as Error).message}`);
    }
  };
  // on SIGCHLD (Node's own handler runs first for its children), and now and then
  process.on('SIGCHLD', () => setImmediate(reap));
  setInterval(reap, 1000).unref();

  // signals: stop; remembered if one comes while start-up scripts still run
  let stopSignal: NodeJS.Signals | undefined;
  let onStop: ((sig: NodeJS.Signals) => void) | undefined;
  for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGQUIT'] as const) {
    process.on(sig, () => {
      if (stopSignal) return;
      stopSignal = sig;
      note(PROG, `${sig} received: stopping`);
      onStop?.(sig);
    });
  }

  let state: string, svdir: string;
  try {
    state = stateDir(env);
    svdir = prepareServices(servicesDir, state);
    writeEnvdir(state, env);
  } catch (e) {
    fatal(PROG, (e as Error).message);
  }
  // services (runsv passes on our environment) and sv see the supervised copy
  process.env.SVDIR = svdir;
  const childEnv = { ...env, SVDIR: svdir };

  // one-shot start-up scripts, in name order
  let scripts: string[] = [];
  try {
    scripts = readdirSync(startupDir).filter((n) => !n.startsWith('.')).sort();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') warn(PROG, `${startupDir}: ${(e as Error).message}`);
  }
  for (const name of scripts) {
    if (stopSignal) return 0;
    const path = join(startupDir, name);
    try {
      const st = statSync(path);
      if (!st.isFile()) continue;
      accessSync(path, C.X_OK);
    } catch {
      continue;
    }
    const { child, done } = run(path, [], childEnv, track);
    // a stop while a start-up script runs is passed on to it
    onStop = (sig) => child.kill(sig);
    const code = await done;
    onStop = undefined;
    if (stopSignal) return 0; // stopped during start-up: an orderly stop
    if (code === 0) continue;
    if (behaviour === 2) {
      fatal(PROG, `start-up script ${path} failed with exit code ${code}: stopping the container`, undefined, code);
    }
    if (behaviour === 1) warn(PROG, `start-up script ${path} failed with exit code ${code}, going on`);
  }
  if (stopSignal) return 0;

  rd = new Runsvdir(svdir, { warn: errLine });
  rd.start();

  let main: { child: ChildProcess; done: Promise<number> } | undefined;
  if (argv.length > 0) main = run(argv[0]!, argv.slice(1), childEnv, track);

  const stopAll = async (): Promise<void> => {
    const services = rd!.stopAll(grace);
    if (main && main.child.exitCode === null && main.child.signalCode === null) {
      const killer = setTimeout(() => main!.child.kill('SIGKILL'), grace);
      await main.done;
      clearTimeout(killer);
    }
    await services;
  };

  return new Promise<number>((res) => {
    let finishing = false;
    // stop services (and the main command) in parallel; exit with `code` once all is down
    const finish = (code: Promise<number>) => {
      if (finishing) return;
      finishing = true;
      void Promise.all([stopAll(), code]).then(([, c]) => {
        reap();
        res(c);
      });
    };
    onStop = (sig) => {
      main?.child.kill(sig);
      finish(main ? main.done : Promise.resolve(0));
    };
    if (stopSignal) onStop(stopSignal);
    if (main) {
      void main.done.then((code) => {
        if (finishing) return;
        note(PROG, `main command exited with code ${code}: stopping services`);
        finish(Promise.resolve(code));
      });
    }
  });
}
