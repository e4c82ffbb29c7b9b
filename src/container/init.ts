// container-init: the process a container runs first (its Entrypoint). No kernel to set
// up and nothing to reboot: it prepares writable state under /run, runs the one-shot
// start-up scripts, supervises every service in /etc/service with the in-process
// runsvdir, optionally runs a main command beside them, reaps orphans, and on SIGTERM
// stops everything in parallel within a grace time. See HELP for the knobs.
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants as C, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { constants as OS } from 'node:os';
import { errLine, fatal, note, runToolAsync, warn } from '../lib/diag.ts';
import { DEFAULT_PATH, pathSearch } from '../lib/exec.ts';
import { native } from '../lib/native.ts';
import { monotonicMs } from '../lib/sys.ts';
import { Runsvdir } from '../runsvdir/runsvdir.ts';
import { spawnWatched, type ChildEnd } from '../runsv/children.ts';
import { DEFAULT_STATE, SUPERVISE_SUBDIR } from './paths.ts';
import { readStatusFile } from '../lib/supervise.ts';
import { interpreterOnly, scheduleTrims, TRIM_AFTER_START_MS } from '../lib/trim.ts';

export const DEFAULTS = {
  RUNIT_TS_SERVICES: '/etc/service',
  RUNIT_TS_STARTUP_DIR: '/etc/runit-ts/startup.d',
  RUNIT_TS_SHUTDOWN_DIR: '/etc/runit-ts/shutdown.d',
  RUNIT_TS_STATE: DEFAULT_STATE,
  RUNIT_TS_KILL_GRACETIME: '5000',
  RUNIT_TS_BEHAVIOUR_IF_STARTUP_FAILS: '2',
  RUNIT_TS_CMD_WAIT_FOR_SERVICES_MAXTIME: '0',
  RUNIT_TS_BEHAVIOUR_IF_SERVICES_NOT_READY: '2',
  RUNIT_TS_SERVICE_MAX_FAILURES: '0',
  RUNIT_TS_STOP_SIGNALS: 'TERM INT QUIT',
} as const;

/** The signals container-init acts on: those of RUNIT_TS_STOP_SIGNALS stop the container, the others are passed on to the main command. */
export const HANDLED_SIGNALS: readonly NodeJS.Signals[] = ['SIGTERM', 'SIGINT', 'SIGQUIT', 'SIGHUP', 'SIGUSR2', 'SIGWINCH'];
// not SIGUSR1: Node keeps it for its inspector (a listener here is never called)

/** "TERM INT" (or "SIGTERM,SIGINT") as signal names among HANDLED_SIGNALS; undefined when one is not, or none is given. */
export function parseSignals(text: string): NodeJS.Signals[] | undefined {
  const out: NodeJS.Signals[] = [];
  for (const w of text.split(/[\s,]+/).filter(Boolean)) {
    const sig = (w.toUpperCase().startsWith('SIG') ? w.toUpperCase() : `SIG${w.toUpperCase()}`) as NodeJS.Signals;
    if (!HANDLED_SIGNALS.includes(sig)) return undefined;
    out.push(sig);
  }
  return out.length ? out : undefined;
}

/** The container's exit code when the main command is not started because services did not get ready. */
export const EXIT_SERVICES_NOT_READY = 124;
/** A service's file: "N [C]", N failures of ./run in a row stop the container with exit code C. */
export const MAX_FAILURES_FILE = 'max-failures';
/** Exit code when a max-failures rule gives none. */
export const MAX_FAILURES_DEFAULT_CODE = 1;
/** The state directory's file a service's ./finish (or anyone) writes an exit code to, to stop the container with it. */
export const EXIT_CONTAINER_FILE = 'exit-container';

export const HELP = `usage: container-init [COMMAND [ARG...]]
       runit-ts container-init [COMMAND [ARG...]]

Init for a container (use it as the image's Entrypoint). In order:
  1. prepares its state directory (RUNIT_TS_STATE, default /run/runit-ts; if it
     cannot be written, /tmp/runit-ts-UID): supervise/, where the image's
     /etc/sv/NAME/supervise links point (as Debian does for a read-only root),
     service, a link to RUNIT_TS_SERVICES (default /etc/service), and env/, an envdir
     of the container's environment (for 'chpst -e'). When a service's supervise/
     cannot be kept where it is (no link, a read-only root, another user), service is
     instead a copy whose files link to the originals, made once. The root file
     system may be read-only; nothing else is written.
  2. runs every executable file of RUNIT_TS_STARTUP_DIR (default
     /etc/runit-ts/startup.d) in name order, one at a time, with the container's
     environment. When one fails, RUNIT_TS_BEHAVIOUR_IF_STARTUP_FAILS says what
     happens: 0 go on, 1 go on with a warning, 2 (default) stop the container with
     the script's exit code (128+signal if it was killed).
  3. supervises the services as runsvdir does (directories added later too; SVDIR
     and RUNIT_TS_STATE are set for sv and for the services, which inherit the
     container's environment).
  4. with a COMMAND (the image's Cmd or podman run arguments): runs it as the main
     process once every service is supervised (sv works from its first line), after
     waiting up to RUNIT_TS_CMD_WAIT_FOR_SERVICES_MAXTIME ms (default
     0: no wait) for every service wanted up to be ready; if they are not,
     RUNIT_TS_BEHAVIOUR_IF_SERVICES_NOT_READY: 0 go on, 1 go on with a warning, 2
     (default) stop the container with exit code ${EXIT_SERVICES_NOT_READY}. When the main command exits
     the container stops with its exit code (128+signal when it was killed). Without
     one: runs until stopped.

A service ends the container when its ./run fails N times in a row (exits with a
code other than 0 and 143, or by a signal other than TERM, while wanted up; exit 0
starts the count again): N and the exit code C from NAME/max-failures ("N C", or
"N" for C=1), else from RUNIT_TS_SERVICE_MAX_FAILURES ("N C"; default 0: never).
Or when, as a service goes down, RUNIT_TS_STATE/exit-container holds an exit code
(a ./finish writes it): the container stops with it.

Signals: those RUNIT_TS_STOP_SIGNALS names (default TERM INT QUIT) stop the
container; the others of TERM INT QUIT HUP USR2 WINCH are passed on to the main
command (without one they are ignored). USR1 is Node's (its inspector). The main
command runs in a process group of its own, and with a terminal (podman run -it) it
is the terminal's foreground group: Ctrl-C (INT) and window-size changes (WINCH) go
to it alone, as under tini; when it exits, the container stops with its code.

A stop signal, or a stop asked as above: the main command gets
the signal (TERM for a stop asked), then the executable files of
RUNIT_TS_SHUTDOWN_DIR (default /etc/runit-ts/shutdown.d) run in name order, then
the services stop as 'sv down' does (TERM, CONT, ./finish), each once no running
service has it in dependencies.d/ or waits-for.d/, the others in parallel; the
loggers last (they see EOF). Each of the three steps gets RUNIT_TS_KILL_GRACETIME
milliseconds (default 5000; keep their sum under the runtime's stop timeout, 10 s
for podman and docker), then what is still running gets SIGKILL. Exit code: the
main command's, the one asked for, or 0.

Works as PID 1 or not: when it is not PID 1 it makes itself the child subreaper, so
orphans come to it either way; every orphan is reaped. Its own lines and the
services' output go to its stdout/stderr (podman logs).
Probe (Kubernetes exec readiness/liveness): 'runit-ts container-probe'.
`;

/** How this tool names itself in its lines (src/lib/diag.ts). */
const PROG = 'container-init';

/** `dir` exists (made if missing) and this process may write in it. */
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

/** The service directories of `servicesDir` (names not starting with '.'), sorted. */
function serviceNames(servicesDir: string): string[] {
  let names: string[] = [];
  try {
    names = readdirSync(servicesDir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  return names
    .filter((name) => {
      if (name.startsWith('.')) return false;
      try {
        return statSync(join(servicesDir, name)).isDirectory();
      } catch {
        return false;
      }
    })
    .sort();
}

/**
 * Why the supervisor could not keep `dir`'s supervise/ where it is (null: it can). A
 * symlink (Debian's read-only-root way, and the container image's: supervise ->
 * /run/runit-ts/supervise/NAME) gets its target's parent made here; runsv makes the target.
 */
function superviseProblem(dir: string): string | null {
  const path = join(dir, 'supervise');
  let target: string;
  try {
    if (!lstatSync(path).isSymbolicLink()) {
      accessSync(path, C.W_OK);
      return null;
    }
    target = resolve(dir, readlinkSync(path));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT') return `${path}: ${code ?? (e as Error).message}`;
    // no supervise yet: runsv makes it in the service directory
    return writable(dir) ? null : `${dir} is not writable`;
  }
  if (existsSync(target)) return writable(target) ? null : `${target} is not writable`;
  return writable(dirname(target)) ? null : `${dirname(target)} (for ${path}) is not writable`;
}

/**
 * What container-init supervises, as STATE/service (SVDIR): a symlink to `servicesDir`
 * itself when every service's supervise/ (and log/supervise/) can be kept where it is,
 * so that `sv status /etc/service/NAME` works and directories added later are picked up
 * as runsvdir does; otherwise (old images without supervise links, a read-only root, a
 * non-root user) a copy whose files link to the originals, made once at start.
 * STATE/supervise, where the image's supervise links point, is emptied first: what a
 * previous run of the container left there names processes of another pid namespace.
 */
export function prepareServices(servicesDir: string, state: string): { svdir: string; inPlace: boolean } {
  const out = join(state, 'service');
  rmSync(out, { recursive: true, force: true });
  const sup = join(state, SUPERVISE_SUBDIR);
  mkdirSync(sup, { recursive: true, mode: 0o755 });
  for (const n of readdirSync(sup)) rmSync(join(sup, n), { recursive: true, force: true });
  const names = serviceNames(servicesDir);
  const problems: string[] = [];
  for (const name of names) {
    const dir = join(servicesDir, name);
    const p = superviseProblem(dir);
    if (p) problems.push(p);
    let log = false;
    try {
      log = statSync(join(dir, 'log')).isDirectory();
    } catch {
      /* no logger */
    }
    const lp = log ? superviseProblem(join(dir, 'log')) : null;
    if (lp) problems.push(lp);
  }
  if (problems.length === 0 && existsSync(servicesDir)) {
    symlinkSync(resolve(servicesDir), out);
    return { svdir: out, inPlace: true };
  }
  if (problems.length) note(PROG, `supervising a copy of ${servicesDir} (${problems[0]}): sv works through SVDIR=${out} only, services added to ${servicesDir} later are not picked up`);
  mkdirSync(out, { recursive: true });
  for (const name of names) mirrorService(join(servicesDir, name), join(out, name));
  return { svdir: out, inPlace: false };
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

/** A script container-init runs and waits for (start-up, shutdown): its exit code as a shell reports it. */
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

/** The main command as it runs. */
interface MainCommand {
  /** it has not ended yet */
  running(): boolean;
  /** a signal to it, while it runs */
  kill(sig: NodeJS.Signals): void;
  /** its exit code once it has ended (128+signal when killed; 127 or 126 when it could not start) */
  done: Promise<number>;
}

/**
 * Start the main command as tini does: a job of its own (its own process group and, with
 * a terminal on stdin, the terminal's foreground group: the tty's INT, QUIT and WINCH go
 * to it, not to container-init, whose stop signals they are), found through PATH as
 * execvp finds it (a file without "#!" or ELF header is run by /bin/sh), with our stdio.
 * `track` holds its pid while it runs (the orphan reaper leaves it alone).
 */
function startMain(argv: string[], env: NodeJS.ProcessEnv, track: Set<number>): MainCommand {
  const envp = Object.entries(env).flatMap(([k, v]) => (v === undefined ? [] : [`${k}=${v}`]));
  let ended = false;
  let pid = 0;
  let settle: (code: number) => void = () => {};
  const done = new Promise<number>((res) => (settle = res));
  const onEnd = (end: ChildEnd) => {
    ended = true;
    track.delete(pid);
    settle(end.sig ? 128 + end.sig : end.code);
  };
  const start = (file: string, args: string[]) => {
    // what execve would refuse, found first: where vfork is emulated by fork (qemu-user)
    // a failed exec is no error of spawn's, only an exit 127 of the child
    accessSync(file, C.X_OK);
    if (!statSync(file).isFile()) throw Object.assign(new Error(`${file} is not a file`), { code: 'EACCES' });
    return spawnWatched(file, args, envp, '', [0, 1, 2], false, onEnd, true);
  };
  try {
    pid = pathSearch(argv[0]!, env.PATH ?? DEFAULT_PATH, (file) => {
      try {
        return start(file, argv);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOEXEC') throw e;
        return start('/bin/sh', ['/bin/sh', file, ...argv.slice(1)]);
      }
    });
    track.add(pid);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    note(PROG, `unable to start ${argv[0]}: ${code ?? (e as Error).message}`);
    ended = true;
    settle(code === 'ENOENT' ? 127 : 126);
  }
  return {
    running: () => !ended,
    kill: (sig) => {
      if (!ended) process.kill(pid, sig);
    },
    done,
  };
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
  const shutdownDir = env.RUNIT_TS_SHUTDOWN_DIR || DEFAULTS.RUNIT_TS_SHUTDOWN_DIR;

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
  // on SIGCHLD (Node's own handler runs first for its children; one look for all the
  // SIGCHLDs of a turn of the event loop: a stop ends many children at once), and now and then
  let reapQueued = false;
  process.on('SIGCHLD', () => {
    if (reapQueued) return;
    reapQueued = true;
    setImmediate(() => {
      reapQueued = false;
      reap();
    });
  });
  setInterval(reap, 1000).unref();

  // signals: those of RUNIT_TS_STOP_SIGNALS stop (remembered if one comes while start-up
  // scripts still run); the others of HANDLED_SIGNALS are passed on to the main command
  const stopSignals = parseSignals(knob(env, 'RUNIT_TS_STOP_SIGNALS', (v) => parseSignals(v) !== undefined))!;
  let stopSignal: NodeJS.Signals | undefined;
  let onStop: ((sig: NodeJS.Signals) => void) | undefined;
  let main: MainCommand | undefined;
  for (const sig of HANDLED_SIGNALS) {
    if (stopSignals.includes(sig)) {
      process.on(sig, () => {
        if (stopSignal) return;
        stopSignal = sig;
        note(PROG, `${sig} received: stopping`);
        onStop?.(sig);
      });
    } else {
      process.on(sig, () => {
        if (main?.running()) main.kill(sig);
        else if (sig !== 'SIGWINCH') note(PROG, `${sig} received: no main command to pass it to`);
      });
    }
  }

  let state: string, svdir: string;
  try {
    state = stateDir(env);
    ({ svdir } = prepareServices(servicesDir, state));
    writeEnvdir(state, env);
  } catch (e) {
    fatal(PROG, (e as Error).message);
  }
  // services (runsv passes on our environment) and sv see the supervised copy
  // and RUNIT_TS_STATE, where a ./finish writes exit-container
  process.env.SVDIR = svdir;
  process.env.RUNIT_TS_STATE = state;
  const childEnv = { ...env, SVDIR: svdir, RUNIT_TS_STATE: state };

  // one-shot start-up scripts, in name order
  for (const path of scriptsIn(startupDir)) {
    if (stopSignal) return 0;
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
  const rdir = rd;
  // a stop the services ask for (max-failures, exit-container): one at most, told to the waiter below
  let asked: { code: number; why: string } | undefined;
  let onAsk: (() => void) | undefined;
  const ask = (code: number, why: string) => {
    if (asked || stopSignal) return;
    asked = { code, why };
    note(PROG, `${why}: stopping the container with exit code ${code}`);
    onAsk?.();
  };
  const globalRule = parseMaxFailures(knob(env, 'RUNIT_TS_SERVICE_MAX_FAILURES', (v) => parseMaxFailures(v) !== 'bad'));
  const watcher = new FailureWatch(svdir, state, globalRule === 'bad' ? undefined : globalRule, ask);
  rdir.events.subscribe((e) => watcher.event(e));
  const ready = new ReadyWatch(svdir);
  rdir.events.subscribe((e) => ready.event(e));
  rdir.start();
  // a supervisor for the container's life, as runsvdir (src/lib/trim.ts): the pages of
  // Node's start and malloc's start-up peak go back, and from then on V8 only interprets
  // (runsvdir does from its start, under emulation; a container's start keeps the compilers)
  setTimeout(interpreterOnly, TRIM_AFTER_START_MS).unref();
  scheduleTrims();

  // the main command waits for the services wanted up to be ready, when asked to
  const waitMs = Number(knob(env, 'RUNIT_TS_CMD_WAIT_FOR_SERVICES_MAXTIME', (v) => /^\d+$/.test(v)));
  const notReady = Number(knob(env, 'RUNIT_TS_BEHAVIOUR_IF_SERVICES_NOT_READY', (v) => /^[012]$/.test(v)));
  if (argv.length > 0 && waitMs > 0) {
    const late = await Promise.race([
      ready.all(waitMs),
      new Promise<string[]>((res) => {
        onStop = () => res([]);
        onAsk = () => res([]);
      }),
    ]);
    onStop = undefined;
    onAsk = undefined;
    if (!stopSignal && !asked && late.length > 0) {
      const what = `services not ready after ${waitMs} ms: ${late.join(' ')}`;
      if (notReady === 2) ask(EXIT_SERVICES_NOT_READY, what);
      else if (notReady === 1) warn(PROG, `${what}; starting the main command`);
    }
  }

  // the main command finds every service supervised: sv works from its first line
  if (argv.length > 0) await rdir.firstPass;
  if (argv.length > 0 && !stopSignal && !asked) main = startMain(argv, childEnv, track);

  // in order: the main command, the shutdown scripts, the services (dependents first), their loggers
  const stopAll = async (sig: NodeJS.Signals): Promise<void> => {
    if (main?.running()) {
      main.kill(sig);
      const killer = setTimeout(() => main!.kill('SIGKILL'), grace);
      await main.done;
      clearTimeout(killer);
    }
    for (const path of scriptsIn(shutdownDir)) {
      const { child, done } = run(path, [], childEnv, track);
      const killer = setTimeout(() => child.kill('SIGKILL'), grace);
      const code = await done;
      clearTimeout(killer);
      if (code !== 0) warn(PROG, `shutdown script ${path} failed with exit code ${code}, going on`);
    }
    // (on the monotonic clock: a step of the wall clock must not cut the grace short)
    const deadline = monotonicMs() + grace;
    // from here the supervisor signals first and writes the services' state afterwards
    rdir.leave();
    await stopInOrder(rdir, grace);
    // the loggers last: each sees EOF once its service is down
    await rdir.stopAll(Math.max(0, deadline - monotonicMs()));
  };

  return new Promise<number>((res) => {
    let finishing = false;
    // stop services (and the main command) in parallel; exit with `code` once all is down
    const finish = (code: Promise<number>, sig: NodeJS.Signals = 'SIGTERM') => {
      if (finishing) return;
      finishing = true;
      watcher.stopping = true;
      void Promise.all([stopAll(sig), code]).then(([, c]) => {
        reap();
        res(c);
      });
    };
    onStop = (sig) => finish(main ? main.done : Promise.resolve(0), sig);
    onAsk = () => finish(Promise.resolve(asked!.code));
    if (stopSignal) onStop(stopSignal);
    else if (asked) onAsk();
    if (main) {
      void main.done.then((code) => {
        if (finishing) return;
        note(PROG, `main command exited with code ${code}: stopping services`);
        finish(Promise.resolve(code));
      });
    }
  });
}

/** A max-failures rule: N failures in a row stop the container with exit code `code`. */
export interface FailureRule {
  n: number;
  code: number;
}

/** "N [C]" (N >= 1, C 0-255) as a rule; "0" (or empty) is no rule; anything else 'bad'. */
export function parseMaxFailures(text: string): FailureRule | undefined | 'bad' {
  const t = text.trim();
  if (t === '' || t === '0') return undefined;
  const m = /^(\d+)(?:\s+(\d+))?$/.exec(t);
  if (!m) return 'bad';
  const n = Number(m[1]);
  const code = m[2] === undefined ? MAX_FAILURES_DEFAULT_CODE : Number(m[2]);
  if (n < 1 || code > 255) return 'bad';
  return { n, code };
}

type SupervisorEvent = Parameters<Parameters<Runsvdir['events']['subscribe']>[0]>[0];

/** 128 + SIGTERM: how a shell reports a child TERM ended. */
const TERM_EXIT_CODE = 128 + OS.signals.SIGTERM;

/**
 * Services that end the container: counts each service's failures in a row from the
 * supervisor's events (a failure: ./run exits with a code other than 0 and 143, or by a
 * signal other than TERM, while wanted up; an exit 0 starts the count again), against
 * NAME/max-failures or the global rule; and after each service goes down (its ./finish
 * done) looks for STATE/exit-container.
 */
class FailureWatch {
  /** the container is stopping: exits are expected, nothing is counted */
  stopping = false;
  private readonly fails = new Map<string, number>();
  /** services whose ./run is running (the next exit is ./run's, not ./finish's) */
  private readonly running = new Set<string>();
  private readonly warned = new Set<string>();
  private readonly svdir: string;
  private readonly state: string;
  private readonly global: FailureRule | undefined;
  private readonly ask: (code: number, why: string) => void;

  constructor(svdir: string, state: string, global: FailureRule | undefined, ask: (code: number, why: string) => void) {
    this.svdir = svdir;
    this.state = state;
    this.global = global;
    this.ask = ask;
  }

  /** One event of the supervisor. */
  event(e: SupervisorEvent): void {
    if (this.stopping || e.service.includes('/')) return;
    if (e.event === 'up') this.running.add(e.service);
    else if (e.event === 'exit' && this.running.delete(e.service)) this.exited(e.service, e.code ?? 0, e.signal);
    else if (e.event === 'down') this.lookForExitFile(e.service);
  }

  /** ./run of `name` exited. */
  private exited(name: string, code: number, signal: string | undefined): void {
    // the supervisor tells its events once the next ./run is spawned: the status read now
    // says whether the service is still wanted up (not sv down, sv exit)
    const r = readStatusFile(join(this.svdir, name));
    if (r.kind === 'ok' && r.status.want !== 'up') return;
    // TERM is what sv restart and sv term send: a stop asked for (143: a shell's report of it)
    if (signal === 'SIGTERM' || code === TERM_EXIT_CODE) return;
    if (code === 0 && !signal) {
      this.fails.delete(name);
      return;
    }
    const n = (this.fails.get(name) ?? 0) + 1;
    this.fails.set(name, n);
    const rule = this.rule(name);
    if (rule && n >= rule.n) this.ask(rule.code, `service ${name} failed ${n} times in a row`);
  }

  /** NAME/max-failures, else the global rule; a bad file is said once and counts as none. */
  private rule(name: string): FailureRule | undefined {
    let text: string;
    try {
      text = readFileSync(join(this.svdir, name, MAX_FAILURES_FILE), 'utf8');
    } catch {
      return this.global;
    }
    const r = parseMaxFailures(text);
    if (r !== 'bad') return r;
    if (!this.warned.has(name)) warn(PROG, `${name}/${MAX_FAILURES_FILE}: ${JSON.stringify(text.trim())} is not "N [C]"; ignored`);
    this.warned.add(name);
    return undefined;
  }

  /** STATE/exit-container, written by a ./finish: stop with the code it holds. */
  private lookForExitFile(name: string): void {
    let text: string;
    try {
      text = readFileSync(join(this.state, EXIT_CONTAINER_FILE), 'utf8').trim();
    } catch {
      return;
    }
    const code = /^\d+$/.test(text) && Number(text) <= 255 ? Number(text) : 1;
    if (String(code) !== text) warn(PROG, `${join(this.state, EXIT_CONTAINER_FILE)}: ${JSON.stringify(text)} is not an exit code 0-255, using 1`);
    this.ask(code, `${name} asked for it in ${EXIT_CONTAINER_FILE}`);
  }
}

/**
 * Readiness of the services wanted up, as the supervisor knows it (its 'ready' events:
 * nothing to tell it, notification-fd, notify-socket, ./check, a one-shot's exit 0).
 */
class ReadyWatch {
  private readonly ready = new Set<string>();
  private change: (() => void) | undefined;
  private readonly svdir: string;

  constructor(svdir: string) {
    this.svdir = svdir;
  }

  /** One event of the supervisor. */
  event(e: SupervisorEvent): void {
    if (e.service.includes('/')) return;
    if (e.event === 'ready') this.ready.add(e.service);
    else if (e.event === 'exit' || e.event === 'down') this.ready.delete(e.service);
    else return;
    this.change?.();
  }

  /** The services wanted up now (no down file, or sv up), from their status; before the first status, the down file says. */
  private wanted(): string[] {
    return serviceNames(this.svdir).filter((n) => {
      const r = readStatusFile(join(this.svdir, n));
      if (r.kind === 'ok') return r.status.want === 'up';
      return !existsSync(join(this.svdir, n, 'down'));
    });
  }

  /** Resolves once every service wanted up is ready ([]), or after ms with those that are not. */
  all(ms: number): Promise<string[]> {
    return new Promise((res) => {
      const late = () => this.wanted().filter((n) => !this.ready.has(n));
      const timer = setTimeout(() => {
        this.change = undefined;
        res(late());
      }, ms);
      this.change = () => {
        if (late().length > 0) return;
        clearTimeout(timer);
        this.change = undefined;
        res([]);
      };
      this.change();
    });
  }
}

/** The executable files of `dir` (names not starting with '.'), in name order; none when it is absent. */
function scriptsIn(dir: string): string[] {
  let names: string[] = [];
  try {
    names = readdirSync(dir).filter((n) => !n.startsWith('.')).sort();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') warn(PROG, `${dir}: ${(e as Error).message}`);
  }
  return names
    .map((n) => join(dir, n))
    .filter((path) => {
      try {
        if (!statSync(path).isFile()) return false;
        accessSync(path, C.X_OK);
        return true;
      } catch {
        return false;
      }
    });
}

/**
 * Stop the services (not their loggers) dependents first: a service is asked down
 * (`sv down`: TERM, CONT, ./finish) once no running service names it in dependencies.d/
 * or waits-for.d/ (as its supervisor read them, src/lib/servicemodel.ts); the rest in
 * parallel. A cycle is stopped all at once. Resolves when all are down, or after `ms`.
 * The control byte goes to each supervisor in-process (Runsvdir.control), not through
 * its supervise/control FIFO: no file to open, and no turn of the event loop to wait.
 */
async function stopInOrder(rd: Runsvdir, ms: number): Promise<void> {
  const after = new Map<string, string[]>();
  const up = new Set<string>();
  for (const s of rd.running()) {
    after.set(s.name, s.needs);
    if (!s.down) up.add(s.name);
  }
  const asked = new Set<string>();
  let done: () => void = () => {};
  const finished = new Promise<void>((res) => (done = res));
  // ask down every running service no running service depends on
  const step = () => {
    const free = [...up].filter((n) => !asked.has(n) && ![...up].some((o) => o !== n && after.get(o)!.includes(n)));
    // nothing stopping and nothing free: only a cycle is left, all of it at once
    const stopping = [...up].some((n) => asked.has(n));
    const next = free.length === 0 && !stopping ? [...up] : free;
    for (const n of next) {
      asked.add(n);
      if (!rd.control(n, 'd')) up.delete(n);
    }
    if (up.size === 0) done();
    else if (next.some((n) => !up.has(n))) step();
  };
  const undo = rd.events.subscribe((e) => {
    if (e.event !== 'down' || !up.delete(e.service)) return;
    step();
  });
  step();
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([finished, new Promise<void>((res) => (timer = setTimeout(res, ms)))]);
  clearTimeout(timer);
  undo();
}
