// Facts about processes from /proc.
import { readFileSync, readlinkSync, realpathSync } from 'node:fs';

/** USER_HZ: 100 on every Linux ABI we build for (x86_64, aarch64). */
const CLK_TCK = 100;

/**
 * Unix time (seconds, fractional) a process started, or undefined if it is gone or a
 * zombie. Computed from the wall clock minus the time elapsed since the process started
 * (/proc/uptime and the process's start time are both on the boot clock), which is
 * exact to a tick for young processes; /proc/stat's btime is only whole seconds and
 * drifts away from the wall clock while the system runs.
 */
export function processStartSeconds(pid: number): number | undefined {
  const ticks = processStartTicks(pid);
  if (ticks === undefined) return undefined;
  const now = Date.now() / 1000;
  const uptime = Number(readFileSync('/proc/uptime', 'utf8').split(' ')[0]);
  return now - (uptime - ticks / CLK_TCK);
}

/** The process's start time in clock ticks after boot: a stable identity with its pid. */
export function processStartTicks(pid: number): number | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // fields after the command name, which is in parentheses and may contain anything
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  if (rest[0] === 'Z' || rest[0] === 'X') return undefined;
  return Number(rest[19]); // field 22: starttime
}

export function processCwd(pid: number): string | undefined {
  try {
    return readlinkSync(`/proc/${pid}/cwd`);
  } catch {
    return undefined;
  }
}

/**
 * Is pid (recorded in a supervise/status written at `startSec`) still the process a
 * supervisor started in `dir`? Its working directory is the service directory, or its
 * start time matches the status time (allowing for the wall clock's drift: 2 s + 0.1 %).
 */
export function isServiceProcess(pid: number, startSec: number, dir: string): boolean {
  const started = processStartSeconds(pid);
  if (started === undefined) return false;
  let real = dir;
  try {
    real = realpathSync(dir); // a process's cwd is shown with symlinks resolved
  } catch {
    /* compare as given */
  }
  if (processCwd(pid) === real) return true;
  const age = Math.max(0, Date.now() / 1000 - startSec);
  return Math.abs(started - startSec) <= 2 + age * 0.001;
}
