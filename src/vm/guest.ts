// How runit-ts-vm works in a booted guest, on the harness's Machine: through the guest
// agent (Machine.exec streams stdout and stderr apart, mountShare) when the image runs it,
// else on the console's root shell (Machine.exec's console form, and mount typed there).
import { constants } from 'node:os';
import { AgentError } from '../harness/agent.ts';
import type { Machine } from '../harness/machine.ts';

/** The console shell's prompt in runit-ts images. */
export const PROMPT = /runit-ts:[^\n]*# /;
/** 9p mount options on the console path (the agent uses its own). */
export const NINEP_OPTIONS = 'trans=virtio,version=9p2000.L,msize=524288';
/** ms the console path gives a command with no time limit (Machine.exec's console form needs one). */
const NO_LIMIT_MS = 7 * 24 * 3600 * 1000;
/** ms for a mount typed on the console. */
const MOUNT_TIMEOUT_MS = 60_000;

/** How a guest command ended. */
export interface GuestExit {
  /** Its exit status, 128+N when signal N killed it. */
  readonly code: number;
  /** It ran past its time limit (the guest killed it). */
  readonly timedOut: boolean;
}

/** Output sinks of a guest command. */
export interface GuestIo {
  readonly stdout: (chunk: Buffer) => void;
  readonly stderr: (chunk: Buffer) => void;
}

/** A word quoted for sh: 'it'\''s'. */
export function shQuote(word: string): string {
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

/** The console line that mounts a 9p share (the console path, and the hint `shell` prints). */
export function mountLine(tag: string, path: string, rw: boolean): string {
  return `mkdir -p ${shQuote(path)} && mount -t 9p -o ${NINEP_OPTIONS}${rw ? '' : ',ro'} ${tag} ${shQuote(path)}`;
}

/** The exit code of a command that a signal ended: 128+N, as a shell reports it. */
export function signalCode(signal: string): number {
  const n = (constants.signals as Record<string, number | undefined>)[signal];
  return 128 + (n ?? 0);
}

/** Mounts 9p share `tag` at `path` in the guest, read-only unless `rw`. */
export async function mountShare(m: Machine, agent: boolean, tag: string, path: string, rw: boolean): Promise<void> {
  if (agent) return m.mountShare(tag, path, { readOnly: !rw });
  const r = await m.run(`${mountLine(tag, path, rw)} 2>&1`, { timeout: MOUNT_TIMEOUT_MS });
  if (r.status !== 0) throw new Error(`mount failed (status ${r.status}): ${r.output.trim().split('\n').pop() ?? ''}`);
}

/** Exit codes of a command the agent could not start, as a shell gives them: not found, not executable. */
const START_FAILURES: Readonly<Record<string, { code: number; what: string }>> = {
  ENOENT: { code: 127, what: 'not found' },
  EACCES: { code: 126, what: 'permission denied' },
  ENOEXEC: { code: 126, what: 'cannot execute' },
};

/**
 * Runs argv in `cwd` (stdin empty); timeoutMs 0 = no limit. Output goes to `io` (as it comes,
 * through the agent). A command that cannot be started ends like it would in a shell: a line
 * on its stderr and 127 (not found) or 126 (not executable).
 */
export async function execCommand(m: Machine, agent: boolean, argv: readonly string[], cwd: string, timeoutMs: number, io: GuestIo): Promise<GuestExit> {
  const limit = timeoutMs > 0 ? timeoutMs : agent ? undefined : NO_LIMIT_MS;
  let r;
  try {
    r = await m.exec(argv, { cwd, ...(limit !== undefined ? { timeout: limit } : {}), onStdout: io.stdout, onStderr: io.stderr });
  } catch (e) {
    const f = e instanceof AgentError && e.code !== undefined ? START_FAILURES[e.code] : undefined;
    if (f === undefined) throw e;
    io.stderr(Buffer.from(`${argv[0]}: ${f.what}\n`));
    return { code: f.code, timedOut: false };
  }
  if (r.timedOut) return { code: 0, timedOut: true };
  return { code: r.code ?? signalCode(r.signal ?? ''), timedOut: false };
}
