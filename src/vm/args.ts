// Command-line parsing of runit-ts-vm: the subcommands' options, shares ("HOST[:GUEST][,rw]")
// and the command after `--`. Every bad value is a usage error quoting it.
import { statSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { type Arch, hostArch, parseArch } from '../lib/platform.ts';
import { usageError } from './errors.ts';

/** Guest RAM in MiB when --memory is not given. */
export const DEFAULT_MEMORY_MIB = 1024;
/** Seconds a command may run when no --timeout is given (0 would mean no limit). */
export const DEFAULT_TIMEOUT_S = 600;

/** A host directory the guest mounts (9p over virtio). */
export interface Share {
  /** Absolute host path (a directory). */
  readonly host: string;
  /** Absolute guest path it is mounted at (default: the same as host). */
  readonly guest: string;
  /** Writable by the guest (default: read-only). */
  readonly rw: boolean;
}

/** What to boot: one of the harness image, a directory like it, or a user's kernel (and its modules). */
export interface BootSource {
  readonly arch: Arch;
  /** Kernel to boot instead of the image's (with the harness initramfs unless `initrd` is given). */
  readonly kernel?: string;
  /** Initramfs to boot as is (no shares, no command: for a user's own boot). */
  readonly initrd?: string;
  /** Image directory: vmlinuz (or vmlinux), initramfs.img, cmdline. */
  readonly image?: string;
  /** Disk image attached as the guest's /dev/vda (writes go to a throw-away overlay). */
  readonly disk?: string;
  /** A lib/modules/VERSION tree for `kernel`. */
  readonly modules?: string;
}

/** One command to run in one fresh VM. */
export interface RunRequest extends BootSource {
  /** Name in messages, logs and reports. */
  readonly name: string;
  readonly shares: readonly Share[];
  /** Seconds the command may run (0: no limit). */
  readonly timeout: number;
  /** Start from a snapshot of the booted VM (made on first use) instead of a cold boot. */
  readonly snapshot: boolean;
  /** argv of the command (run through the guest's sh when it is a single word with spaces). */
  readonly command: readonly string[];
  /** Guest working directory of the command. */
  readonly cwd: string;
  readonly memory: number;
}

/** Parses an architecture name (x86_64/amd64, aarch64/arm64); default the host's. */
export function archOption(value: string | undefined): Arch {
  if (value === undefined) {
    const h = hostArch();
    if (h === undefined) throw usageError(`the host is ${process.arch}: give --arch x86_64 or --arch aarch64`);
    return h;
  }
  try {
    return parseArch(value);
  } catch {
    throw usageError(`unknown architecture '${value}' (expected x86_64 or aarch64)`);
  }
}

/** Checks that a path given for `what` exists and is a file (or a directory); returns it absolute. */
export function existingPath(what: string, value: string, kind: 'file' | 'dir', base = process.cwd()): string {
  const p = resolve(base, value);
  let st;
  try {
    st = statSync(p);
  } catch {
    throw usageError(`${what} '${value}' does not exist`);
  }
  if (kind === 'file' && !st.isFile()) throw usageError(`${what} '${value}' is not a file`);
  if (kind === 'dir' && !st.isDirectory()) throw usageError(`${what} '${value}' is not a directory`);
  return p;
}

/** Parses "HOST[:GUEST][,rw|,ro]" (HOST relative to `base`); QEMU options cannot hold a ','. */
export function parseShare(spec: string, base = process.cwd()): Share {
  let body = spec;
  let rw = false;
  const m = /,(rw|ro)$/.exec(body);
  if (m !== null) {
    rw = m[1] === 'rw';
    body = body.slice(0, m.index);
  }
  if (body === '' || body.includes(',')) throw usageError(`bad share '${spec}' (expected HOST[:GUEST][,rw]; paths must not contain ',')`);
  const colon = body.indexOf(':');
  const hostPart = colon < 0 ? body : body.slice(0, colon);
  const guestPart = colon < 0 ? undefined : body.slice(colon + 1);
  if (hostPart === '') throw usageError(`bad share '${spec}' (expected HOST[:GUEST][,rw])`);
  const host = existingPath('share', hostPart, 'dir', base);
  if (guestPart !== undefined && (!isAbsolute(guestPart) || guestPart === '/')) {
    throw usageError(`bad share '${spec}': the guest path '${guestPart}' must be absolute and not /`);
  }
  if (host.includes(',')) throw usageError(`bad share '${spec}': the host path '${host}' contains ','`);
  return { host, guest: resolve(guestPart ?? host), rw };
}

/**
 * The shares of a run: `given`, plus the working directory (read-only, at its own path)
 * unless a given share is mounted there already or `shareCwd` is false.
 */
export function withCwdShare(given: readonly Share[], cwd: string, shareCwd = true): Share[] {
  const out = [...given];
  if (shareCwd && !out.some((s) => s.guest === cwd)) out.unshift({ host: cwd, guest: cwd, rw: false });
  const seen = new Set<string>();
  for (const s of out) {
    if (seen.has(s.guest)) throw usageError(`two shares are mounted at '${s.guest}'`);
    seen.add(s.guest);
  }
  return out;
}

/** Parses a number of seconds (>= 0; 0 = no limit). */
export function secondsOption(name: string, value: string | undefined, dflt: number): number {
  if (value === undefined) return dflt;
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0) throw usageError(`--${name} '${value}' is not a number of seconds`);
  return n;
}

/** Parses a positive integer option. */
export function positiveOption(name: string, value: string | undefined, dflt: number): number {
  if (value === undefined) return dflt;
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < 1) throw usageError(`--${name} '${value}' is not a positive integer`);
  return n;
}

/** Splits argv at the first `--`: options before, the command after. */
export function splitCommand(argv: readonly string[]): { opts: string[]; command: string[] | undefined } {
  const i = argv.indexOf('--');
  return i < 0 ? { opts: [...argv], command: undefined } : { opts: argv.slice(0, i), command: argv.slice(i + 1) };
}

/** node:util parseArgs with its errors turned into usage errors (they quote the bad option). */
export function parseOptions<T extends NonNullable<Parameters<typeof parseArgs>[0]>['options']>(
  argv: readonly string[],
  options: T,
  allowPositionals: boolean,
): { values: Record<string, string | boolean | string[] | undefined>; positionals: string[] } {
  try {
    const r = parseArgs({ args: [...argv], options: options ?? {}, strict: true, allowPositionals });
    return { values: r.values as Record<string, string | boolean | string[] | undefined>, positionals: r.positionals };
  } catch (e) {
    throw usageError((e as Error).message.split('\n')[0]!.replace(/\. To specify a positional argument.*$/, ''));
  }
}

/** The options `run` and `shell` share: what to boot, shares, memory. */
export const BOOT_OPTIONS = {
  arch: { type: 'string' },
  kernel: { type: 'string' },
  initrd: { type: 'string' },
  image: { type: 'string' },
  disk: { type: 'string' },
  modules: { type: 'string' },
  share: { type: 'string', multiple: true },
  'no-cwd-share': { type: 'boolean' },
  memory: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** Builds the BootSource from parsed options (paths checked, relative to `base`). */
export function bootSource(v: Record<string, unknown>, base = process.cwd()): BootSource {
  const str = (k: string) => (typeof v[k] === 'string' ? (v[k] as string) : undefined);
  const arch = archOption(str('arch'));
  const chosen = ['initrd', 'image', 'disk'].filter((k) => str(k) !== undefined);
  if (chosen.length > 1) throw usageError(`--${chosen[0]} and --${chosen[1]} cannot be given together`);
  if (str('initrd') !== undefined && str('kernel') === undefined) throw usageError(`--initrd '${str('initrd')}' needs --kernel`);
  if (str('image') !== undefined && str('kernel') !== undefined) throw usageError(`--kernel '${str('kernel')}' and --image cannot be given together`);
  const f = (k: string, kind: 'file' | 'dir') => {
    const x = str(k);
    return x === undefined ? {} : { [k]: existingPath(`--${k}`, x, kind, base) };
  };
  return { arch, ...f('kernel', 'file'), ...f('initrd', 'file'), ...f('image', 'dir'), ...f('disk', 'file'), ...f('modules', 'dir') };
}

/** Parsed `run` command line. */
export interface RunArgs {
  readonly help: boolean;
  readonly request?: RunRequest;
  /** Where the console log goes (--log-dir). */
  readonly logDir?: string;
  /** Say how the VM started and the times (-v). */
  readonly verbose?: boolean;
}

/** Parses `runit-ts-vm run [options] -- COMMAND...`. */
export function parseRunArgs(argv: readonly string[], cwd = process.cwd()): RunArgs {
  const { opts, command } = splitCommand(argv);
  const { values, positionals } = parseOptions(opts, { ...BOOT_OPTIONS, timeout: { type: 'string' }, snapshot: { type: 'boolean' }, 'log-dir': { type: 'string' }, verbose: { type: 'boolean', short: 'v' } }, true);
  if (values['help'] === true) return { help: true };
  const cmd = command ?? positionals;
  if (command !== undefined && positionals.length) throw usageError(`unexpected argument '${positionals[0]}' before '--'`);
  if (cmd.length === 0) throw usageError('no command given (runit-ts-vm run [options] -- COMMAND...)');
  const src = bootSource(values, cwd);
  if (src.initrd !== undefined) throw usageError(`--initrd '${String(values['initrd'])}': run needs the harness initramfs (use --modules for a kernel's modules); boot your own initramfs with 'shell'`);
  const shares = withCwdShare(((values['share'] as string[] | undefined) ?? []).map((s) => parseShare(s, cwd)), cwd, values['no-cwd-share'] !== true);
  const logDir = values['log-dir'] as string | undefined;
  return {
    help: false,
    ...(logDir !== undefined ? { logDir: resolve(cwd, logDir) } : {}),
    ...(values['verbose'] === true ? { verbose: true } : {}),
    request: {
      ...src,
      name: 'run',
      shares,
      timeout: secondsOption('timeout', values['timeout'] as string | undefined, DEFAULT_TIMEOUT_S),
      snapshot: values['snapshot'] === true,
      command: cmd,
      cwd: shares.some((s) => s.guest === cwd) ? cwd : '/',
      memory: positiveOption('memory', values['memory'] as string | undefined, DEFAULT_MEMORY_MIB),
    },
  };
}

/** Parsed `test` command line. */
export interface TestArgs {
  readonly help: boolean;
  readonly config?: string;
  readonly jobs?: number;
  readonly junit?: string;
  readonly filter?: string;
  readonly logDir?: string;
}

/** Parses `runit-ts-vm test CONFIG [--jobs N] [--junit FILE] [--filter NAME] [--log-dir DIR]`. */
export function parseTestArgs(argv: readonly string[]): TestArgs {
  const { values, positionals } = parseOptions(
    argv,
    { jobs: { type: 'string' }, junit: { type: 'string' }, filter: { type: 'string' }, 'log-dir': { type: 'string' }, help: { type: 'boolean', short: 'h' } },
    true,
  );
  if (values['help'] === true) return { help: true };
  if (positionals.length !== 1) throw usageError(positionals.length ? `unexpected argument '${positionals[1]}' (one CONFIG file)` : 'no CONFIG file given');
  const config = existingPath('config', positionals[0]!, 'file');
  const s = (k: string) => values[k] as string | undefined;
  return {
    help: false,
    config,
    ...(s('jobs') !== undefined ? { jobs: positiveOption('jobs', s('jobs'), 1) } : {}),
    ...(s('junit') !== undefined ? { junit: resolve(s('junit')!) } : {}),
    ...(s('filter') !== undefined ? { filter: s('filter')! } : {}),
    ...(s('log-dir') !== undefined ? { logDir: resolve(s('log-dir')!) } : {}),
  };
}

/** Parsed `shell` command line. */
export interface ShellArgs {
  readonly help: boolean;
  readonly source?: BootSource;
  readonly shares?: readonly Share[];
  readonly memory?: number;
}

/** Parses `runit-ts-vm shell [options]`. */
export function parseShellArgs(argv: readonly string[], cwd = process.cwd()): ShellArgs {
  const { values, positionals } = parseOptions(argv, BOOT_OPTIONS, true);
  if (values['help'] === true) return { help: true };
  if (positionals.length) throw usageError(`unexpected argument '${positionals[0]}'`);
  const source = bootSource(values, cwd);
  const shares = withCwdShare(((values['share'] as string[] | undefined) ?? []).map((s) => parseShare(s, cwd)), cwd, values['no-cwd-share'] !== true && source.initrd === undefined);
  return { help: false, source, shares, memory: positiveOption('memory', values['memory'] as string | undefined, DEFAULT_MEMORY_MIB) };
}
