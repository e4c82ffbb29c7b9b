// Facts about processes from /proc.
import { readFileSync } from 'node:fs';

let bootTime: number | undefined;
/** USER_HZ: 100 on every Linux ABI we build for (x86_64, aarch64). */
const CLK_TCK = 100;

/** Unix time (seconds, fractional) a process started, or undefined if it is gone or a zombie. */
export function processStartSeconds(pid: number): number | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // fields after the command name, which is in parentheses and may contain anything
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  if (rest[0] === 'Z' || rest[0] === 'X') return undefined;
  const ticks = Number(rest[19]); // field 22: starttime
  if (bootTime === undefined) {
    const m = /^btime (\d+)$/m.exec(readFileSync('/proc/stat', 'utf8'));
    bootTime = m ? Number(m[1]) : 0;
  }
  return bootTime + ticks / CLK_TCK;
}
