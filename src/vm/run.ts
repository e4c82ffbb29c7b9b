// The core of runit-ts-vm: boot one VM, mount its shares, run one command in it and say how
// it ended, as an exit code: the command's own, or one of EXIT's (boot failure, timeout,
// kernel panic) with one line and the console log kept.
import { existsSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { boot, BootError, type Machine } from '../harness/machine.ts';
import type { RunRequest } from './args.ts';
import { EXIT, VmError } from './errors.ts';
import { ConsoleGuest, type Guest, type GuestIo, PROMPT } from './guest.ts';
import { bootInputs } from './image.ts';

/** ms a guest has from QEMU start to its shell prompt (TCG: a cold boot takes ~10 s here). */
export const BOOT_TIMEOUT_MS = 180_000;
/** How many bytes of the command's stderr a result keeps (for reports). */
const STDERR_TAIL_BYTES = 4096;

/** How a run ended. */
export interface RunOutcome {
  /** 'exit': the command ended (its status in code); the others are the runner's failures. */
  readonly kind: 'exit' | 'boot' | 'timeout' | 'panic' | 'usage';
  /** The exit code runit-ts-vm ends with. */
  readonly code: number;
  /** The one line that explains a failure of the runner (none for 'exit'). */
  readonly line?: string;
  /** The console log's path. */
  readonly consoleLog: string;
  /** Seconds from the start of the run to its end. */
  readonly seconds: number;
  /** The last bytes of the command's stderr. */
  readonly stderrTail: string;
}

/** A folder for console logs: a new one under the system's temporary folder. */
export function defaultLogDir(): string {
  const d = join(tmpdir(), `runit-ts-vm-${process.getuid?.() ?? 'user'}`, 'logs');
  mkdirSync(d, { recursive: true });
  return d;
}

/** The one line of a failure, for the user: what failed and where the console log is (when QEMU started). */
export function failureLine(o: RunOutcome): string {
  const log = existsSync(o.consoleLog) ? ` (console log: ${o.consoleLog})` : '';
  return `runit-ts-vm: ${o.line ?? `exit ${o.code}`}${log}`;
}

/** Decides what a failed step means from the machine's state: a panic, QEMU gone, or the step's time running out. */
function classify(m: Machine, e: unknown, during: string, timeoutS: number): VmError {
  if (e instanceof VmError) return e;
  const info = m.exitInfo;
  if (info?.panicked === true || /Kernel panic - not syncing/.test(m.console)) {
    const why = /Kernel panic - not syncing: ([^\r\n]*)/.exec(m.console)?.[1] ?? '';
    return new VmError('panic', `kernel panic ${during}${why ? `: ${why.trim()}` : ''}`);
  }
  if (info !== undefined) return new VmError('boot', `QEMU exited ${during} (status ${info.exitCode ?? info.signal ?? '?'}, ${info.reason})`);
  if (during === 'while the command ran') return new VmError('timeout', `the command timed out after ${timeoutS} s`);
  const first = (e instanceof Error ? e.message : String(e)).split('\n')[0]!;
  return new VmError('boot', `the guest failed ${during}: ${first}`);
}

/** Boots the request's VM, runs its command, streams its output to `io`, and tears the VM down. */
export async function runInVm(req: RunRequest, io: GuestIo, consoleLog: string): Promise<RunOutcome> {
  const t0 = performance.now();
  let stderrTail = Buffer.alloc(0);
  const tee: GuestIo = {
    stdout: io.stdout,
    stderr: (b) => {
      stderrTail = Buffer.concat([stderrTail, b]).subarray(-STDERR_TAIL_BYTES);
      io.stderr(b);
    },
  };
  const done = (kind: RunOutcome['kind'], code: number, line?: string): RunOutcome => ({
    kind, code, consoleLog, seconds: (performance.now() - t0) / 1000, stderrTail: stderrTail.toString('utf8'), ...(line !== undefined ? { line } : {}),
  });
  let m: Machine | undefined;
  try {
    const inputs = bootInputs(req, req.shares);
    try {
      m = await boot({
        arch: req.arch, kernel: inputs.kernel, initrd: inputs.initrd, append: inputs.append, drives: inputs.drives,
        memory: req.memory, extraArgs: inputs.shareArgs, consoleLog, name: req.name,
      });
    } catch (e) {
      if (e instanceof BootError) throw new VmError('boot', `QEMU did not start: ${e.message.split('\n')[0]}`);
      throw e;
    }
    const guest: Guest = new ConsoleGuest(m);
    try {
      await m.waitFor(PROMPT, { timeout: BOOT_TIMEOUT_MS });
    } catch (e) {
      throw classify(m, e, 'while booting', 0);
    }
    for (const [i, s] of req.shares.entries()) {
      try {
        await guest.mount(inputs.tags[i]!, s.guest, s.rw);
      } catch (e) {
        const c = classify(m, e, `mounting ${s.host} at ${s.guest}`, 0);
        throw c.kind === 'boot' ? new VmError('boot', `share ${s.host} could not be mounted at ${s.guest}: ${(e as Error).message.split('\n')[0]}`) : c;
      }
    }
    let exit;
    try {
      exit = await guest.exec(req.command, req.cwd, req.timeout * 1000, tee);
    } catch (e) {
      throw classify(m, e, 'while the command ran', req.timeout);
    }
    if (exit.timedOut) throw new VmError('timeout', `the command timed out after ${req.timeout} s`);
    return done('exit', exit.code);
  } catch (e) {
    if (!(e instanceof VmError)) throw e;
    return done(e.kind, EXIT[e.kind], e.message);
  } finally {
    await m?.dispose();
  }
}
