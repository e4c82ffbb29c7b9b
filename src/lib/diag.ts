// Diagnostics, one convention for every tool, in runit's wording (djb's strerr):
//   usage:    "usage: PROG ARGS" and a blank line; exit 100, or the tool's own code
//             (runsv and runsvdir 1, sv in LSB mode 2, runit-init 0)
//   fatal:    "PROG: fatal: MESSAGE[: ERROR]"; exit 111 (or the tool's own code)
//   warning:  "PROG: warning: MESSAGE[: ERROR]"; the tool goes on
// ERROR is djb's error_str() text (src/lib/errstr.ts). Our own tools beyond runit
// (runit-ts status, events, wait, analyze, container-init, container-probe) keep their
// own two forms beside these:
//   a line:   "PROG: MESSAGE" (note(), or die() to end with a code of the tool's)
//   usage:    "[PROG: WHY]" then the first line of the tool's HELP; exit 100 (badUsage())
// A tool's core throws Exit (through fatal(), usage(), die(), badUsage() or exit()); its
// CLI catches it with runTool(), which prints the line and returns the code. Everything
// goes to stderr through errLine(), which never throws.
import { writeSync } from 'node:fs';
import { errorStr } from './errstr.ts';
import { loadedNative } from './native.ts';

/** The end of a tool: its exit code, and the line (if any) still to be printed on stderr. */
export class Exit extends Error {
  readonly code: number;
  /** printed by runTool() (or whoever catches it) before the tool exits; no newline */
  readonly line: string | undefined;
  /** code: the exit code; line: see above; cause: the system error behind it, if any (its .code: EMFILE, ...) */
  constructor(code: number, line?: string, cause?: unknown) {
    super(line ?? `exit ${code}`, cause === undefined ? undefined : { cause });
    this.name = 'Exit';
    this.code = code;
    this.line = line;
  }
}

let errFd = 2;

/**
 * Where errLine() and errWrite() write (default fd 2). runsvdir with a log argument gives
 * a non-blocking descriptor of its own for the log pipe: children make their inherited
 * fd 2 blocking (libuv does, for stdio), and this process, the pipe's only reader, must
 * never block on it.
 */
export function setErrFd(fd: number): void {
  errFd = fd;
}

/** Text to stderr as it is; a closed stderr or a full log pipe drops it (as runit's non-blocking writes). */
export function errWrite(text: string | Buffer): void {
  try {
    if (typeof text === 'string') writeSync(errFd, text);
    else writeSync(errFd, text);
  } catch {
    /* nowhere to say it */
  }
}

/** One line to stderr (the newline is added, as strerr does). */
export function errLine(line: string): void {
  errWrite(line + '\n');
}

/**
 * The longest text outWrite() hands to the addon's write (its UTF-8 fits the addon's 4 KiB);
 * longer text (a --help) goes through Node's fs.
 */
const NATIVE_TEXT = 1024;

/**
 * Text to stdout; a closed stdout drops it. Through the addon where it is loaded: sv
 * writes a line for each service, and Node's writeSync costs several times the system
 * call under emulation (docs/performance.md); the addon also writes again after a short write.
 */
export function outWrite(text: string): void {
  try {
    const n = text.length <= NATIVE_TEXT ? loadedNative() : undefined;
    if (n) n.write(1, text);
    else writeSync(1, text);
  } catch {
    /* stdout closed */
  }
}

/** "MESSAGE" or "MESSAGE: ERROR" (cause: a Node error with .code, a code string, or any error). */
export function withCause(message: string, cause?: unknown): string {
  return cause === undefined ? message : `${message}: ${errorStr(cause)}`;
}

/** runit's fatal line: "PROG: fatal: MESSAGE[: ERROR]". */
export function fatalLine(prog: string, message: string, cause?: unknown): string {
  return `${prog}: fatal: ${withCause(message, cause)}`;
}

/** runit's warning line: "PROG: warning: MESSAGE[: ERROR]". */
export function warningLine(prog: string, message: string, cause?: unknown): string {
  return `${prog}: warning: ${withCause(message, cause)}`;
}

/** Print a warning now and go on. */
export function warn(prog: string, message: string, cause?: unknown): void {
  errLine(warningLine(prog, message, cause));
}

/** End the tool with runit's fatal line; exit 111 unless the tool has its own code. */
export function fatal(prog: string, message: string, cause?: unknown, code = 111): never {
  throw new Exit(code, fatalLine(prog, message, cause));
}

/** End the tool with its usage line and runit's blank line after it; exit 100 unless the tool has its own code. */
export function usage(prog: string, args: string, code = 100): never {
  throw new Exit(code, `usage: ${prog}${args}\n`);
}

/** Our own tools' line, neither runit's fatal nor its warning: "PROG: MESSAGE". */
export function progLine(prog: string, message: string): string {
  return `${prog}: ${message}`;
}

/** Print one of our own tools' lines now and go on. */
export function note(prog: string, message: string): void {
  errLine(progLine(prog, message));
}

/** End one of our own tools with its line ("PROG: MESSAGE") and its code. */
export function die(prog: string, message: string, code: number): never {
  throw new Exit(code, progLine(prog, message));
}

/** End one of our own tools for a bad command line: "PROG: WHY" when there is a why, then HELP's usage line; exit 100 unless told. */
export function badUsage(help: string, why?: { prog: string; message: string }, code = 100): never {
  const line = help.split('\n', 1)[0]!;
  throw new Exit(code, why ? `${progLine(why.prog, why.message)}\n${line}` : line);
}

/** End the tool with this code, optionally printing one more line. */
export function exit(code: number, line?: string): never {
  throw new Exit(code, line);
}

/** Run a tool's body: an Exit thrown inside prints its line and becomes the return code. */
export function runTool(body: () => number): number {
  try {
    return body();
  } catch (e) {
    return exitCode(e);
  }
}

/** runTool() for asynchronous bodies. */
export async function runToolAsync(body: () => Promise<number>): Promise<number> {
  try {
    return await body();
  } catch (e) {
    return exitCode(e);
  }
}

function exitCode(e: unknown): number {
  if (!(e instanceof Exit)) throw e;
  if (e.line !== undefined) errLine(e.line);
  return e.code;
}
