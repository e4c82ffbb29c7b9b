// How runit-ts-vm talks to a booted guest: mount a share, run a command with its stdout and
// stderr apart and its exit status. ConsoleGuest does it over the serial console's root
// shell (Machine.run): the command's streams go to files in the guest and come back
// base64-encoded once it has ended, so they are exact but not streamed.
import type { Machine } from '../harness/machine.ts';

/** The console shell's prompt in the harness image. */
export const PROMPT = /runit-ts:[^\n]*# /;
/** 9p message size (bytes): larger than the kernel's 8 KiB default, for faster reads of shared files. */
export const MSIZE_BYTES = 512 * 1024;
/** Longest console line to type (busybox ash drops lines over 1023 characters). */
const MAX_CONSOLE_LINE = 1000;
/** ms for the small housekeeping commands (mount, reading back output). */
const STEP_TIMEOUT_MS = 60_000;
/** Guest files the console path keeps a command's script and streams in. */
const SCRIPT = '/run/rts-vm.sh';
const OUT = '/run/rts-vm.out';
const ERR = '/run/rts-vm.err';

/** How a guest command ended. */
export interface GuestExit {
  /** Its exit status (128+N when a signal N killed it, as sh reports it). */
  readonly code: number;
  /** Whether it ran past its time limit (then it was stopped and `code` means nothing). */
  readonly timedOut: boolean;
}

/** Output sinks of a guest command. */
export interface GuestIo {
  readonly stdout: (chunk: Buffer) => void;
  readonly stderr: (chunk: Buffer) => void;
}

/** A way to work in a booted guest. */
export interface Guest {
  /** Mounts 9p share `tag` at `path` (made when missing), read-only unless `rw`. */
  mount(tag: string, path: string, rw: boolean): Promise<void>;
  /** Runs argv in `cwd`, stdin empty; timeoutMs 0 = no limit. */
  exec(argv: readonly string[], cwd: string, timeoutMs: number, io: GuestIo): Promise<GuestExit>;
}

/** A word quoted for sh: 'it'\''s'. */
export function shQuote(word: string): string {
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

/** The sh script that runs argv in cwd (exec: the command's status is the script's). */
export function commandScript(argv: readonly string[], cwd: string): string {
  return `cd ${shQuote(cwd)} || exit 127\nexec ${argv.map(shQuote).join(' ')}\n`;
}

/** Thrown when a console step fails; the caller decides (from the machine's state) what it means. */
export class GuestStepError extends Error {}

/** The root shell on the serial console, through Machine.run. */
export class ConsoleGuest implements Guest {
  readonly #m: Machine;
  constructor(m: Machine) {
    this.#m = m;
  }

  /** Runs one line and returns its output, or throws GuestStepError when it fails. */
  async #step(line: string, what: string, timeout = STEP_TIMEOUT_MS): Promise<string> {
    const r = await this.#m.run(line, { timeout, maxLine: MAX_CONSOLE_LINE });
    if (r.status !== 0) throw new GuestStepError(`${what} failed (status ${r.status}): ${r.output.trim().split('\n').pop() ?? ''}`);
    return r.output;
  }

  async mount(tag: string, path: string, rw: boolean): Promise<void> {
    const q = shQuote(path);
    await this.#step(`mkdir -p ${q} && mount -t 9p -o trans=virtio,version=9p2000.L,msize=${MSIZE_BYTES}${rw ? '' : ',ro'} ${tag} ${q} 2>&1`, `mounting ${tag} at ${path}`);
  }

  async exec(argv: readonly string[], cwd: string, timeoutMs: number, io: GuestIo): Promise<GuestExit> {
    const script = Buffer.from(commandScript(argv, cwd)).toString('base64');
    const write = `printf %s ${script} | base64 -d > ${SCRIPT}`;
    if (write.length > MAX_CONSOLE_LINE - 100) throw new GuestStepError(`the command is too long for the console (${script.length} base64 characters)`);
    await this.#step(write, 'writing the command script');
    const r = await this.#m.run(`sh ${SCRIPT} </dev/null >${OUT} 2>${ERR}`, { timeout: timeoutMs > 0 ? timeoutMs : 2 ** 31 - 1, maxLine: MAX_CONSOLE_LINE });
    for (const [file, sink] of [[OUT, io.stdout], [ERR, io.stderr]] as const) {
      const b64 = await this.#step(`base64 ${file}`, `reading ${file}`);
      const data = Buffer.from(b64.replace(/\s+/g, ''), 'base64');
      if (data.length) sink(data);
    }
    return { code: r.status, timedOut: false };
  }
}
