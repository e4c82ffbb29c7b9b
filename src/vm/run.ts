// The core of runit-ts-vm: boot one VM (or restore it from a snapshot), mount its shares, run
// one command in it and say how it ended, as an exit code: the command's own, or one of
// EXIT's (boot failure, timeout, kernel panic) with one line and the console log kept.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { boot, BootError, type BootOptions, type Machine, savedRamFile } from '../harness/machine.ts';
import { accelFromEnv, type ResolvedAccel, resolveAccel } from '../harness/kvm.ts';
import type { Arch } from '../lib/platform.ts';
import type { RunRequest } from './args.ts';
import { EXIT, VmError } from './errors.ts';
import { execCommand, type GuestIo, mountShare, PROMPT } from './guest.ts';
import { bootInputs, type BootInputs, stateDir } from './image.ts';

/** ms a guest has from QEMU start to its agent's answer or shell prompt (TCG: a cold boot takes ~10-20 s here). */
export const BOOT_TIMEOUT_MS = 180_000;
/** How many bytes of the command's stderr a result keeps (for reports). */
const STDERR_TAIL_BYTES = 4096;
/** Seconds a KVM probe's answer is reused by later runs (the probe costs ~0.4 s, more under load). */
const ACCEL_MEMO_S = 3600;
/**
 * Kernel words for a machine that is saved: pages are zeroed when freed, so the memory the
 * initramfs archive took (freed once unpacked) goes into the snapshot as zero pages. Here
 * that cut the saved state from ~310 to ~210 MB.
 */
export const SNAPSHOT_CMDLINE = 'init_on_free=1';
/** Longest wait (ms) for a guest to go quiet before it is saved (it is saved anyway then). */
const SETTLE_IDLE_TIMEOUT_MS = 30_000;
/** Where settleForSnapshot mounts a share for a moment (in the guest's tmpfs). */
const SETTLE_MOUNT = '/run/runit-ts-vm-settle';

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
  /** How the VM started: a cold boot, a restored snapshot, or a cold boot that saved one. */
  readonly start?: 'boot' | 'restore' | 'boot+snapshot';
  /** Seconds from the start of the run until the guest took commands. */
  readonly readySeconds?: number;
}

/** A folder for console logs. */
export function defaultLogDir(): string {
  return stateDir('logs');
}

/** The one line of a failure, for the user: what failed and where the console log is (when QEMU started). */
export function failureLine(o: RunOutcome): string {
  const log = existsSync(o.consoleLog) ? ` (console log: ${o.consoleLog})` : '';
  return `runit-ts-vm: ${o.line ?? `exit ${o.code}`}${log}`;
}

/** What -v prints after a run: how the VM started and how long each part took. */
export function verboseLine(o: RunOutcome): string {
  const how = { boot: 'cold boot', restore: 'restored from snapshot', 'boot+snapshot': 'cold boot, snapshot saved' }[o.start ?? 'boot'];
  const ready = o.readySeconds !== undefined ? `ready in ${o.readySeconds.toFixed(2)} s, ` : '';
  return `runit-ts-vm: ${o.start === undefined ? 'no VM' : how}: ${ready}done in ${o.seconds.toFixed(2)} s, exit code ${o.code} (console log: ${o.consoleLog})`;
}

/** Decides what a failed step means from the machine's state: a panic, QEMU gone, or the step's time running out. */
function classify(m: Machine, e: unknown, during: string): VmError {
  if (e instanceof VmError) return e;
  const info = m.exitInfo;
  if (info?.panicked === true || /Kernel panic - not syncing/.test(m.console)) {
    const why = /Kernel panic - not syncing: ([^\r\n]*)/.exec(m.console)?.[1] ?? '';
    return new VmError('panic', `kernel panic ${during}${why ? `: ${why.trim()}` : ''}`);
  }
  if (info !== undefined) return new VmError('boot', `QEMU exited ${during} (status ${info.exitCode ?? info.signal ?? '?'}, ${info.reason})`);
  const first = (e instanceof Error ? e.message : String(e)).split('\n')[0]!;
  return new VmError('boot', `the guest failed ${during}: ${first}`);
}

/**
 * What the saved files hold, in the snapshot key: 4 is the device state in FILE and the RAM
 * beside it (FILE.ram, savedRamFile), named by its memory backend, saved once the guest has
 * settled and gone quiet (settleForSnapshot), its agent session (no events) still open; 3
 * was saved before the guest went quiet; 2 right after the agent answered; 1 (unnamed) had
 * the RAM in FILE.
 */
const SNAPSHOT_FORMAT = 4;

/** The snapshot file for a machine: keyed by everything that must match when it is restored. */
export function snapshotFile(opts: BootOptions): string {
  const files = [opts.kernel, opts.initrd].map((f) => (f === undefined ? null : [f, statSync(f).size, statSync(f).mtimeMs]));
  const key = createHash('sha256')
    .update(JSON.stringify([SNAPSHOT_FORMAT, opts.arch, opts.accel, files, opts.append, opts.memory, opts.shares, (opts.drives ?? []).map((d) => d.file), opts.agent]))
    .digest('hex')
    .slice(0, 20);
  return join(stateDir('snapshots'), `${opts.arch}-${key}.state`);
}

/** The accelerator for an arch: $RUNIT_TS_ACCEL when set, else the KVM probe's answer, kept for ACCEL_MEMO_S. */
export async function cachedAccel(arch: Arch): Promise<ResolvedAccel> {
  const env = accelFromEnv();
  if (env !== undefined) return resolveAccel(arch, env);
  const memo = join(stateDir('accel'), arch);
  try {
    const st = statSync(memo);
    const v = readFileSync(memo, 'utf8').trim();
    if ((Date.now() - st.mtimeMs) / 1000 < ACCEL_MEMO_S && (v === 'kvm' || v === 'tcg')) return v;
  } catch {
    // no answer kept yet
  }
  const v = await resolveAccel(arch, 'auto');
  writeFileSync(memo, v);
  return v;
}

/**
 * Lets a booted guest finish what its boot started (the console's shell prompt), do what
 * runInVm does in a restored one (mount a share when it has any, and unmount it: QEMU saves
 * no machine with one mounted; run a command with a working directory, a time limit and
 * output on stdout and stderr), and go quiet before it is saved: what the guest then
 * computes (the boot's last services, V8 compiling the agent's paths for those requests,
 * what that leaves to do) is in the snapshot instead of being redone, under TCG, after every
 * restore, beside the restored machine's command and with all its code to translate again.
 */
export async function settleForSnapshot(m: Machine, shareTag?: string): Promise<void> {
  if (shareTag !== undefined) {
    await m.mountShare(shareTag, SETTLE_MOUNT, { readOnly: true });
    await m.umountShare(SETTLE_MOUNT);
  }
  await m.exec(['sh', '-c', 'echo; echo >&2'], { cwd: '/', timeout: BOOT_TIMEOUT_MS });
  await m.waitFor(PROMPT, { timeout: BOOT_TIMEOUT_MS });
  await m.waitForIdle({ timeout: SETTLE_IDLE_TIMEOUT_MS });
}

/** Boots (or restores) and waits until the guest can take commands; returns the machine and how it started. */
async function start(req: RunRequest, inputs: BootInputs, consoleLog: string): Promise<{ m: Machine; how: NonNullable<RunOutcome['start']> }> {
  if (req.snapshot && !inputs.agent) throw new VmError('usage', `--snapshot needs an image that runs the guest agent (the harness image, make vm-image)`);
  if (req.snapshot && inputs.drives.length) throw new VmError('usage', `--snapshot cannot be used with --disk`);
  const opts: BootOptions = {
    arch: req.arch, kernel: inputs.kernel, initrd: inputs.initrd, drives: inputs.drives, accel: await cachedAccel(req.arch),
    append: req.snapshot ? `${inputs.append} ${SNAPSHOT_CMDLINE}` : inputs.append,
    memory: req.memory, shares: inputs.shares, agent: inputs.agent, agentTimeout: BOOT_TIMEOUT_MS, consoleLog, name: req.name,
    snapshotRam: req.snapshot, agentEvents: false,
  };
  const file = req.snapshot ? snapshotFile(opts) : undefined;
  const restore = file !== undefined && existsSync(file);
  let m: Machine;
  try {
    m = await boot(restore ? { ...opts, restore: file } : opts);
  } catch (e) {
    if (e instanceof BootError) throw new VmError('boot', `QEMU did not start: ${e.message.split('\n')[0]}`);
    throw e;
  }
  try {
    if (inputs.agent) await m.waitForAgent();
    else await m.waitFor(PROMPT, { timeout: BOOT_TIMEOUT_MS });
  } catch (e) {
    await m.dispose();
    throw classify(m, e, 'while booting');
  }
  if (file === undefined || restore) return { m, how: restore ? 'restore' : 'boot' };
  // save the booted machine (before any share is mounted: QEMU refuses to save 9p mounted)
  const tmp = `${file}.tmp-${process.pid}`;
  try {
    await settleForSnapshot(m, inputs.shares[0]?.tag);
    const snap = await m.snapshot(tmp);
    // the RAM first: a state file present means its RAM is there too
    if (snap.ram !== undefined) renameSync(snap.ram, savedRamFile(file));
    renameSync(tmp, file);
  } catch (e) {
    rmSync(tmp, { force: true });
    rmSync(savedRamFile(tmp), { force: true });
    await m.dispose();
    throw classify(m, e, 'while saving the snapshot');
  }
  return { m, how: 'boot+snapshot' };
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
  let how: RunOutcome['start'];
  let ready: number | undefined;
  const done = (kind: RunOutcome['kind'], code: number, line?: string): RunOutcome => ({
    kind, code, consoleLog, seconds: (performance.now() - t0) / 1000, stderrTail: stderrTail.toString('utf8'),
    ...(line !== undefined ? { line } : {}), ...(how !== undefined ? { start: how } : {}),
    ...(ready !== undefined ? { readySeconds: ready } : {}),
  });
  let m: Machine | undefined;
  try {
    const inputs = bootInputs(req, req.shares);
    const started = await start(req, inputs, consoleLog);
    m = started.m;
    how = started.how;
    ready = (performance.now() - t0) / 1000;
    for (const [i, s] of req.shares.entries()) {
      try {
        await mountShare(m, inputs.agent, inputs.shares[i]!.tag, s.guest, s.rw);
      } catch (e) {
        const c = classify(m, e, `mounting ${s.host} at ${s.guest}`);
        throw c.kind === 'boot' ? new VmError('boot', `share ${s.host} could not be mounted at ${s.guest}: ${(e as Error).message.split('\n')[0]}`) : c;
      }
    }
    let exit;
    try {
      exit = await execCommand(m, inputs.agent, req.command, req.cwd, req.timeout * 1000, tee);
    } catch (e) {
      const c = classify(m, e, 'while the command ran');
      // the console path: Machine.run's own limit ran out (the guest hung past the command's)
      throw !inputs.agent && c.kind === 'boot' && m.exitInfo === undefined && req.timeout > 0 ? new VmError('timeout', `the command timed out after ${req.timeout} s`) : c;
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
