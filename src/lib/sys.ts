// Small system-call wrappers, with the error handling runit's tools use around them.
import { closeSync, constants as C, openSync, readlinkSync, statSync, writeSync } from 'node:fs';
import { constants as osConstants } from 'node:os';

/** The name of a signal number ('SIGTERM' for 15), or undefined for 0 or a number Linux has no name for. */
export function signalName(n: number): NodeJS.Signals | undefined {
  if (!n) return undefined;
  for (const [name, num] of Object.entries(osConstants.signals)) if (num === n) return name as NodeJS.Signals;
  return undefined;
}

/**
 * This process's executable, as /proc/self/exe names it now. process.execPath was fixed
 * at start: in a process started before /proc was mounted (stage 1, and the stage 2 it
 * goes on as) it is only argv[0], e.g. /etc/runit/1.
 */
export function selfExe(): string {
  try {
    return readlinkSync('/proc/self/exe');
  } catch {
    return process.execPath;
  }
}

/** The errno name of a failed call ('ENOENT'...), if it has one. */
export function errnoOf(e: unknown): string | undefined {
  return (e as NodeJS.ErrnoException | null)?.code;
}

/** Resolve after ms milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Send a signal, ignoring the result (the process may be gone), as runit's tools do. */
export function signal(pid: number, sig: NodeJS.Signals): void {
  if (pid <= 0) return;
  try {
    process.kill(pid, sig);
  } catch {
    /* already gone */
  }
}

/** close() a descriptor if open (>= 0), ignoring errors. */
export function closeQuiet(fd: number): void {
  if (fd < 0) return;
  try {
    closeSync(fd);
  } catch {
    /* nothing to do */
  }
}

/** write() ignoring errors, as a process whose output is gone. */
export function writeQuiet(fd: number, b: Buffer | string): void {
  try {
    if (typeof b === 'string') writeSync(fd, b);
    else writeSync(fd, b);
  } catch {
    /* nowhere to write */
  }
}

/** stat() succeeds (runsv's test for ./down). */
export function exists(path: string): boolean {
  try {
    statSync(path);
    return true;
  } catch {
    return false;
  }
}

/** open_read() succeeds (runsv's test for ./finish). */
export function readable(path: string): boolean {
  try {
    closeSync(openSync(path, C.O_RDONLY | C.O_NONBLOCK));
    return true;
  } catch {
    return false;
  }
}
