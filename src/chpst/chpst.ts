// chpst's core: a plan of process-state changes, applied in runit's order, ending in
// execve. The CLI (main.ts) parses chpst's options and its argv0 aliases into a plan.
//
// Order (runit's chpst): setsid (-P), envdir (-e), chroot (-/), chdir (-C, upstream 2.2),
// nice (-n), UID/GID in the environment (-U), groups/gid/uid (-u), lock (-l/-L),
// close 0/1/2 (-0 -1 -2), resource limits, execve (argv0 from -b).
import { closeSync, constants as C, opendirSync, openSync, readFileSync } from 'node:fs';
import { Exit, fatalLine, warn, withCause } from '../lib/diag.ts';
import { DEFAULT_PATH, pathSearch } from '../lib/exec.ts';
import {
  LOCK_EX, LOCK_NB, native, RLIMIT_AS, RLIMIT_CORE, RLIMIT_CPU, RLIMIT_DATA, RLIMIT_FSIZE, RLIMIT_MEMLOCK, RLIMIT_NOFILE, RLIMIT_NPROC,
  RLIMIT_RSS, RLIMIT_STACK,
} from '../lib/native.ts';

/** chpst's fatal error: "chpst: fatal: <m>", exit 111 (under every name it is called by, as runit's). */
function failure(m: string): Exit {
  return new Exit(111, fatalLine('chpst', m));
}

/** "m: errstr" for a failed system call, as strerr_die*sys prints it. */
function sys(m: string, e: unknown): Exit {
  return new Exit(111, fatalLine('chpst', m, e));
}

export interface UidGids {
  uid: number;
  /** the primary group first, then the supplementary ones */
  gids: number[];
}

/** Resource limits, by RLIMIT_* number; -1 means "the hard limit". */
export type Limits = Map<number, number>;

/** The order limits are applied in (runit's slimit). */
export const LIMIT_ORDER = [RLIMIT_DATA, RLIMIT_STACK, RLIMIT_MEMLOCK, RLIMIT_AS, RLIMIT_NOFILE, RLIMIT_NPROC, RLIMIT_FSIZE, RLIMIT_CORE, RLIMIT_RSS, RLIMIT_CPU];

export interface Plan {
  setsid?: boolean;
  /** -e: environment from this directory; lenientDirs: subdirectories are skipped (chpst -e), not fatal (envdir) */
  envdir?: string;
  lenientDirs?: boolean;
  root?: string;
  chdir?: string;
  nice?: number;
  /** -U: user spec for UID/GID in the environment; extended: [:]user[:group...] syntax */
  envUser?: string;
  setUser?: string;
  /** user specs in the extended syntax (chpst) or a plain account name (setuidgid/envuidgid) */
  extended?: boolean;
  lock?: { path: string; wait: boolean; quiet?: boolean };
  close?: [boolean, boolean, boolean];
  limits?: Limits;
  /** -b */
  argv0?: string;
  /** the program and its arguments */
  argv: string[];
  verbose?: boolean;
  /** what "unable to run" reports on failure (setlock -x: nothing, exit 0) */
  quietExec?: boolean;
}

// ------------------------------------------------------------------ environment

/**
 * runit's pathexec environment: the current environment plus changes, applied as
 * pathexec_env_run does (a replaced variable's slot is filled by the last one).
 */
export class Env {
  private readonly changes: string[] = [];

  /** set name to value (undefined: remove it) */
  set(name: string, value: string | undefined): void {
    this.changes.push(value === undefined ? name : `${name}=${value}`);
  }

  build(base: NodeJS.ProcessEnv = process.env): string[] {
    const e: string[] = [];
    for (const [k, v] of Object.entries(base)) if (v !== undefined) e.push(`${k}=${v}`);
    for (const c of this.changes) {
      const eq = c.indexOf('=');
      const split = eq < 0 ? c.length : eq;
      const key = c.slice(0, split);
      for (let t = 0; t < e.length; t++) {
        if (e[t]!.startsWith(key) && e[t]![split] === '=') {
          e[t] = e[e.length - 1]!;
          e.pop();
          break;
        }
      }
      if (eq >= 0) e.push(c);
    }
    return e;
  }
}

/** chpst -e / envdir: each file names a variable; its first line is the value. */
export function readEnvdir(dir: string, env: Env, lenientDirs: boolean, warn: (m: string) => void): void {
  // as runit: change into the directory, read it, change back
  const start = process.cwd();
  try {
    process.chdir(dir);
  } catch (e) {
    throw sys(`unable to switch to directory: ${dir}`, e);
  }
  let names: string[];
  try {
    // directory order, as readdir gives it (readdirSync sorts): it decides the order of
    // the environment the program gets
    const d = opendirSync('.');
    names = [];
    try {
      for (let ent = d.readSync(); ent; ent = d.readSync()) names.push(ent.name);
    } finally {
      d.closeSync();
    }
  } catch (e) {
    throw sys(`unable to open directory: ${dir}`, e);
  }
  for (const name of names) {
    if (name.startsWith('.')) continue;
    let data: Buffer;
    try {
      data = readFileSync(name);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EISDIR' && lenientDirs) {
        warn(withCause(`unable to read ${dir}/${name}`, e));
        continue;
      }
      throw sys(`unable to read ${dir}/${name}`, e);
    }
    if (data.length === 0) {
      env.set(name, undefined);
      continue;
    }
    let len = data.indexOf(10);
    if (len < 0) len = data.length;
    while (len > 0 && (data[len - 1] === 0x20 || data[len - 1] === 0x09)) len--;
    const v = Buffer.from(data.subarray(0, len));
    for (let i = 0; i < v.length; i++) if (v[i] === 0) v[i] = 10;
    env.set(name, v.toString('utf8'));
  }
  try {
    process.chdir(start);
  } catch (e) {
    throw sys('unable to switch to starting directory', e);
  }
}

// ------------------------------------------------------------------ users

/** djb's scan_ulong on a part of s: [value, chars used]. */
function scan(s: string, at: number): [number, number] {
  let v = 0;
  let i = at;
  while (i < s.length && s.charCodeAt(i) >= 48 && s.charCodeAt(i) <= 57) v = v * 10 + (s.charCodeAt(i++) - 48);
  return [v, i - at];
}

/** ":uid:gid[:gid...]" (the part after the leading ':'), as runit's uidgids_set. */
function numericIds(s: string): UidGids | undefined {
  const [uid, n] = scan(s, 0);
  let at = n;
  if (s[at] !== ':') return undefined;
  at++;
  const gids: number[] = [];
  for (let i = 0; i < 60; i++) {
    const [g, m] = scan(s, at);
    at += m;
    gids.push(g);
    if (s[at] !== ':') break;
    at++;
  }
  if (at < s.length) return undefined;
  return { uid, gids };
}

/**
 * A user spec: "account" (plain) or, extended, "[:]user[:group[:group...]]".
 * undefined if a user or group does not exist.
 */
export function lookupUser(spec: string, extended: boolean): UidGids | undefined {
  const n = native();
  if (!extended) {
    const pw = n.getpwnam(spec);
    return pw ? { uid: pw[0], gids: [pw[1]] } : undefined;
  }
  if (spec.startsWith(':')) return numericIds(spec.slice(1));
  const [user, ...groups] = spec.split(':');
  const pw = n.getpwnam(user!);
  if (!pw) return undefined;
  if (groups.length === 0) return { uid: pw[0], gids: [pw[1]] };
  const gids: number[] = [];
  for (const g of groups.slice(0, 60)) {
    const gid = n.getgrnam(g);
    if (gid === null) return undefined;
    gids.push(gid);
  }
  return { uid: pw[0], gids };
}

function resolveUser(spec: string, extended: boolean): UidGids {
  let u: UidGids | undefined;
  try {
    u = lookupUser(spec, extended);
  } catch (e) {
    throw sys(extended ? 'unable to get password/group file entry' : 'unable to get password file entry', e);
  }
  if (u) return u;
  if (!extended) throw failure(`unknown account: ${spec}`);
  if (spec.startsWith(':')) throw failure(`invalid uid/gids: ${spec.slice(1)}`);
  throw failure(`unknown user/group: ${spec}`);
}

// ------------------------------------------------------------------ exec

/**
 * runit's pathexec_run: a name with a '/' is executed as is; otherwise each PATH entry
 * (of the current environment, default /bin:/usr/bin; empty = '.') is tried. Returns
 * the error of the failed execve (it does not return when one succeeds).
 */
export function pathexec(file: string, argv: string[], envp: string[], limits?: number[]): unknown {
  const n = native();
  try {
    pathSearch(file, process.env.PATH ?? DEFAULT_PATH, (path) => n.execve(path, argv, envp, limits), isLimitError);
  } catch (e) {
    return e;
  }
}

/** The native execve failed setting a limit, not executing. */
function isLimitError(e: unknown): boolean {
  return e instanceof Error && /^[gs]etrlimit/.test(e.message);
}

// ------------------------------------------------------------------ apply

/** Lock file for -l/-L and setlock: opened as runit's open_append; kept open across exec. */
function takeLock(path: string, wait: boolean): void {
  let fd: number;
  try {
    fd = openSync(path, C.O_WRONLY | C.O_NONBLOCK | C.O_APPEND | C.O_CREAT, 0o600);
  } catch (e) {
    throw sys(`unable to open lock: ${path}`, e);
  }
  let ok: boolean;
  try {
    ok = native().flock(fd, wait ? LOCK_EX : LOCK_EX | LOCK_NB);
    if (!ok) throw Object.assign(new Error('locked'), { code: 'EAGAIN' });
  } catch (e) {
    throw sys(`unable to lock: ${path}`, e);
  }
  native().setCloexec(fd, false);
}

/**
 * The soft limits to set, in runit's order: [resource, soft, ...]; a value above the hard
 * limit (or -1) is the hard limit. They are set by the native execve right before the
 * exec: Node itself would not survive a small address space, data or stack limit.
 */
export function softLimits(limits: Limits): number[] {
  const n = native();
  const out: number[] = [];
  for (const r of LIMIT_ORDER) {
    const v = limits.get(r);
    if (v === undefined) continue;
    let hard: number;
    try {
      hard = n.getrlimit(r)[1];
    } catch (e) {
      throw sys('unable to getrlimit()', e);
    }
    out.push(r, v < 0 || v > hard ? hard : v);
  }
  return out;
}

function warnLine(m: string): void {
  warn('chpst', m);
}

/**
 * Change the process state as the plan says and exec the program. Returns only on
 * failure: throws Exit (111, chpst's fatal line; or returns normally for setlock -x's silent failures).
 */
export function apply(plan: Plan, env: Env = new Env()): void {
  const n = native(); // loaded before a chroot hides it
  if (plan.setsid) {
    try {
      n.setsid();
    } catch {
      // runit ignores setsid's failure (already a group leader)
    }
  }
  if (plan.envdir !== undefined) readEnvdir(plan.envdir, env, !!plan.lenientDirs, (m) => plan.verbose && warnLine(m));
  if (plan.root !== undefined) {
    try {
      process.chdir(plan.root);
    } catch (e) {
      throw sys(`unable to change directory: ${plan.root}`, e);
    }
    try {
      n.chroot('.');
    } catch (e) {
      throw sys('unable to change root directory', e);
    }
  }
  if (plan.chdir !== undefined) {
    try {
      process.chdir(plan.chdir);
    } catch (e) {
      throw sys(`unable to change directory: ${plan.chdir}`, e);
    }
  }
  if (plan.nice) {
    try {
      n.nice(plan.nice);
    } catch (e) {
      throw sys('unable to set nice level', e);
    }
  }
  const ext = plan.extended ?? true;
  if (plan.envUser !== undefined) {
    const u = resolveUser(plan.envUser, ext);
    env.set('GID', String(u.gids[0]));
    env.set('UID', String(u.uid));
  }
  if (plan.setUser !== undefined) {
    const u = resolveUser(plan.setUser, ext);
    try {
      process.setgroups!(u.gids);
    } catch (e) {
      throw sys('unable to setgroups', e);
    }
    try {
      process.setgid!(u.gids[0]!);
    } catch (e) {
      throw sys('unable to setgid', e);
    }
    try {
      process.setuid!(u.uid);
    } catch (e) {
      throw sys('unable to setuid', e);
    }
  }
  if (plan.lock) {
    try {
      takeLock(plan.lock.path, plan.lock.wait);
    } catch (e) {
      if (plan.lock.quiet) return;
      throw e;
    }
  }
  const names = ['stdin', 'stdout', 'stderr'];
  for (let fd = 0; fd < 3; fd++) {
    if (!plan.close?.[fd]) continue;
    try {
      closeSync(fd);
    } catch (e) {
      throw sys(`unable to close ${names[fd]}`, e);
    }
  }
  const limits = plan.limits ? softLimits(plan.limits) : undefined;
  const file = plan.argv[0]!;
  const argv = [...plan.argv];
  if (plan.argv0 !== undefined) argv[0] = plan.argv0;
  const err = pathexec(file, argv, env.build(), limits);
  if (isLimitError(err)) throw sys(`unable to ${(err as Error).message.slice(0, 9)}()`, err);
  if (plan.quietExec) return;
  throw sys(`unable to run: ${argv[0]}`, err);
}
