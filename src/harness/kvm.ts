// Accelerator choice: KVM only where it really runs our guests, TCG otherwise.
//
// "/dev/kvm exists and opens" is not enough: on a nested paravirtual KVM (Linux
// module kvm_pvm) QEMU starts fine, but a bzImage guest crawls through the
// real-mode setup and then spins in the decompressor forever (nothing after
// "Probing EDD ... ok" on the console), and an uncompressed vmlinux boots ~20x
// slower than under TCG and then stops with "KVM internal error. Suberror: 1 /
// emulation failure" on `lock cmpxchg16b`. So 'auto' runs a tiny firmware
// (probe/kvm-probe-*.S) under KVM that goes real mode -> long mode, touches
// 64 MiB and executes `lock cmpxchg16b`, and uses KVM only if it finishes in
// time (~0.1 s on a working KVM). Results are cached per process and arch.

import { closeSync, constants, existsSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa, execaSync } from 'execa';
import { type Arch, ARCH_INFO, findExecutable, hostArch } from './arch.ts';

/**
 * QEMU accelerator to ask for: 'kvm' (hardware virtualisation), 'tcg' (emulation), or 'auto':
 * RUNIT_TS_ACCEL if set, else KVM when a probe guest runs under it, else TCG.
 */
export type Accel = 'auto' | 'kvm' | 'tcg';
/** The accelerator actually used once 'auto' has been decided (see resolveAccel). */
export type ResolvedAccel = 'kvm' | 'tcg';

/** Environment variable that forces the accelerator when a caller asks for 'auto'. */
export const ACCEL_ENV = 'RUNIT_TS_ACCEL';

/** Outcome of a KVM probe (probeKvm, probeKvmSync, runProbeGuest): whether KVM can run guests of an arch here, and why. */
export interface KvmProbeResult {
  /** True when the probe guest ran to completion in time (from probeKvm: 'auto' then picks KVM). */
  readonly usable: boolean;
  /** Why KVM is (not) used, for logs and skip messages. */
  readonly reason: string;
  /** Wall time of the QEMU probe run in ms, when one ran. */
  readonly ms?: number;
}

/** Options of the KVM probe (probeKvm, probeKvmSync, resolveAccel). */
export interface KvmProbeOptions {
  /** Give the probe guest this long (ms) before declaring KVM unusable. Default 3000 (probeKvm), 2000 (probeKvmSync). */
  readonly timeout?: number;
  /** QEMU binary to probe with (default: the arch's qemu-system-* in PATH). */
  readonly qemu?: string;
}

// x86_64 firmware: bytes 0..376 of the last 4 KiB page and the 5-byte reset jump at 0xFF0 (see probe/kvm-probe-x86_64.S).
const X86_CODE =
  'fa31c08ed88ed0bc0070baf803b052ee660f011658810f20c06683c8010f22c066ea28800000080066b810008ed88ec08ed0bc00700000' +
  '66baf803b050eebf0000010031c0b900180000f3abc7050000010003100100c7050010010003200100c7050810010003300100c705101001' +
  '0003400100c7051810010003500100bf00200100b88300000031d2b9000800008907895704050000200083d20083c708e2ee0f20e083c820' +
  '0f22e0b8000001000f22d8b9800000c00f320d000100000f300f20c00d000000800f22c0ead2800000180066baf803b04cee41b904000000' +
  '48c7c70000000148c7c60000000548893f4881c7001000004839f772f141ffc975deb04dee48c7c70000020031c031d248c7c30100000048' +
  'c7c10200000048890748894708f0480fc70f66baf803b058eeb02ae6f4f4ebfd900000000000000000ffff0000009acf00ffff00000092cf' +
  '00ffff0000009aaf001f0038810000fafcb800f08ed8be00f031c08ec0bf0080b90008f3a5ea00800000';
const X86_RESET = 'ea5ef100f0';
// aarch64 Image (see probe/kvm-probe-aarch64.S).
const A64_IMAGE =
  '1000001400000000000000000000000090000000000000000a000000000000000000000000000000000000000000000000000000000000004152' +
  '4d64000000000120a1d26209805222000039230200100502a0d26300058b0440a0d26400048b630000f9630440917f0004eba3ffff54020b8052' +
  '220000390080b0d2000180f2020000d47f2003d5ffffff171f2003d5';

/** The x86_64 probe as a 64 KiB -bios image (QEMU wants a multiple of 64 KiB; the code sits in the last 4 KiB). */
export function x86ProbeFirmware(): Buffer {
  const image = Buffer.alloc(65536);
  Buffer.from(X86_CODE, 'hex').copy(image, 65536 - 4096);
  Buffer.from(X86_RESET, 'hex').copy(image, 65536 - 16);
  return image;
}

/** The aarch64 probe as an arm64 Linux Image for -kernel. */
export function aarch64ProbeImage(): Buffer {
  return Buffer.from(A64_IMAGE, 'hex');
}

interface ProbePlan {
  readonly bin: string;
  readonly args: string[];
  readonly dir: string;
  readonly ok: (exitCode: number | undefined, output: string) => boolean;
}

/** Reasons that make a QEMU run unnecessary; undefined when a probe run is needed. */
function precheck(arch: Arch, qemu: string | undefined): string | undefined {
  const host = hostArch();
  if (host !== arch) return `guest ${arch} on host ${host ?? process.arch}: KVM runs only the host's architecture`;
  if (!existsSync('/dev/kvm')) return '/dev/kvm does not exist';
  try {
    closeSync(openSync('/dev/kvm', constants.O_RDWR));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? String(e);
    return `cannot open /dev/kvm (${code}${code === 'EACCES' ? ': add the user to group kvm' : ''})`;
  }
  if (findExecutable(qemu ?? ARCH_INFO[arch].qemu) === undefined) return `${qemu ?? ARCH_INFO[arch].qemu} not found`;
  return undefined;
}

function plan(arch: Arch, qemu: string | undefined, accel: ResolvedAccel): ProbePlan {
  const dir = mkdtempSync(join(tmpdir(), 'runit-ts-kvmprobe-'));
  const cpu = accel === 'kvm' ? 'host' : arch === 'x86_64' ? 'max' : 'cortex-a57';
  const common = ['-accel', accel, '-cpu', cpu, '-m', '256', '-nodefaults', '-no-user-config', '-display', 'none'];
  common.push('-serial', 'stdio', '-monitor', 'none', '-no-reboot');
  if (arch === 'x86_64') {
    const fw = join(dir, 'probe.bin');
    writeFileSync(fw, x86ProbeFirmware());
    return {
      bin: qemu ?? ARCH_INFO.x86_64.qemu,
      args: ['-M', 'pc', ...common, '-bios', fw, '-device', 'isa-debug-exit,iobase=0xf4,iosize=4'],
      dir,
      // isa-debug-exit turns the 0x2a written by the guest into exit status (0x2a << 1) | 1.
      ok: (code, out) => code === 85 && out.includes('RPLMX'),
    };
  }
  const image = join(dir, 'probe.img');
  writeFileSync(image, aarch64ProbeImage());
  return {
    bin: qemu ?? ARCH_INFO.aarch64.qemu,
    args: ['-M', accel === 'kvm' ? 'virt,gic-version=host' : 'virt', ...common, '-kernel', image],
    dir,
    ok: (code, out) => code === 0 && out.includes('KX'),
  };
}

const FATAL = /KVM internal error|emulation failure|failed to initialize kvm|Could not access KVM kernel module/i;

function verdict(
  p: ProbePlan,
  exitCode: number | undefined,
  timedOut: boolean,
  stdout: string,
  stderr: string,
  ms: number,
  timeout: number,
): KvmProbeResult {
  if (p.ok(exitCode, stdout)) return { usable: true, reason: `probe guest ran in ${Math.round(ms)} ms`, ms };
  const output = `${stdout}\n${stderr}`;
  const fatal = FATAL.exec(output);
  const progress = stdout.replace(/[^A-Z]/g, '').slice(0, 8);
  if (fatal !== null) {
    return { usable: false, reason: `KVM cannot run the probe guest (QEMU: "${fatal[0]}", guest progress "${progress}")`, ms };
  }
  if (timedOut) {
    return { usable: false, reason: `KVM probe guest did not finish within ${timeout} ms (guest progress "${progress}"): KVM is unusable or far too slow`, ms };
  }
  const firstLine = stderr.split('\n').find((l) => l.trim() !== '' && !/warning/i.test(l)) ?? '';
  return { usable: false, reason: `KVM probe exited with status ${exitCode ?? '?'}${firstLine !== '' ? `: ${firstLine.trim()}` : ''}`, ms };
}

const cache = new Map<Arch, KvmProbeResult>();
const inflight = new Map<Arch, Promise<KvmProbeResult>>();

/** Forget cached probe results (for tests). */
export function clearKvmProbeCache(): void {
  cache.clear();
  inflight.clear();
}

/** Can KVM run `arch` guests here? Runs the probe guest once per process and arch. */
export function probeKvm(arch: Arch, opts: KvmProbeOptions = {}): Promise<KvmProbeResult> {
  const cached = cache.get(arch);
  if (cached !== undefined) return Promise.resolve(cached);
  let p = inflight.get(arch);
  if (p === undefined) {
    p = runProbe(arch, opts).then((r) => {
      cache.set(arch, r);
      inflight.delete(arch);
      return r;
    });
    inflight.set(arch, p);
  }
  return p;
}

async function runProbe(arch: Arch, opts: KvmProbeOptions): Promise<KvmProbeResult> {
  const pre = precheck(arch, opts.qemu);
  if (pre !== undefined) return { usable: false, reason: pre };
  return runProbeGuest(arch, 'kvm', opts);
}

/**
 * Runs the probe guest under the given accelerator without any prechecks or caching
 * (under 'tcg' it checks the probe itself: it must succeed there).
 */
export async function runProbeGuest(arch: Arch, accel: ResolvedAccel, opts: KvmProbeOptions = {}): Promise<KvmProbeResult> {
  const timeout = opts.timeout ?? 3000;
  const p = plan(arch, opts.qemu, accel);
  const start = performance.now();
  try {
    const sub = execa(p.bin, p.args, { stdin: 'ignore', reject: false, timeout, forceKillAfterDelay: 1000 });
    let seen = '';
    // QEMU does not exit on a KVM internal error (it pauses the VM): stop it as soon as one is reported.
    const watch = (chunk: Buffer): void => {
      seen += chunk.toString('latin1');
      if (FATAL.test(seen)) sub.kill('SIGKILL');
    };
    sub.stdout.on('data', watch);
    sub.stderr.on('data', watch);
    const r = await sub;
    return verdict(p, r.exitCode, r.timedOut, r.stdout, r.stderr, performance.now() - start, timeout);
  } finally {
    rmSync(p.dir, { recursive: true, force: true });
  }
}

/** Synchronous probeKvm (for qemuCommand with accel 'auto'); shares the cache. Cannot stop early on a KVM error. */
export function probeKvmSync(arch: Arch, opts: KvmProbeOptions = {}): KvmProbeResult {
  const cached = cache.get(arch);
  if (cached !== undefined) return cached;
  const pre = precheck(arch, opts.qemu);
  let result: KvmProbeResult;
  if (pre !== undefined) {
    result = { usable: false, reason: pre };
  } else {
    const timeout = opts.timeout ?? 2000;
    const p = plan(arch, opts.qemu, 'kvm');
    const start = performance.now();
    try {
      const r = execaSync(p.bin, p.args, { stdin: 'ignore', reject: false, timeout, killSignal: 'SIGKILL' });
      result = verdict(p, r.exitCode, r.timedOut, r.stdout, r.stderr, performance.now() - start, timeout);
    } finally {
      rmSync(p.dir, { recursive: true, force: true });
    }
  }
  cache.set(arch, result);
  return result;
}

/** The accelerator forced by RUNIT_TS_ACCEL, if any (throws on an invalid value). */
export function accelFromEnv(env: NodeJS.ProcessEnv = process.env): Accel | undefined {
  const v = env[ACCEL_ENV]?.trim().toLowerCase();
  if (v === undefined || v === '') return undefined;
  if (v === 'kvm' || v === 'tcg' || v === 'auto') return v;
  throw new Error(`${ACCEL_ENV}=${env[ACCEL_ENV]}: expected kvm, tcg or auto`);
}

function checkForcedKvm(arch: Arch): void {
  const host = hostArch();
  if (host !== arch) throw new Error(`accelerator kvm requested but guest ${arch} differs from host ${host ?? process.arch}`);
}

/**
 * Turns 'auto' into 'kvm' or 'tcg'. RUNIT_TS_ACCEL (kvm|tcg|auto) overrides 'auto';
 * an explicit 'kvm' or 'tcg' is kept as is (kvm is checked against the host arch).
 */
export async function resolveAccel(arch: Arch, accel: Accel = 'auto', opts: KvmProbeOptions = {}): Promise<ResolvedAccel> {
  const wanted = accel === 'auto' ? (accelFromEnv() ?? 'auto') : accel;
  if (wanted === 'kvm') checkForcedKvm(arch);
  if (wanted !== 'auto') return wanted;
  return (await probeKvm(arch, opts)).usable ? 'kvm' : 'tcg';
}

/** Synchronous resolveAccel. */
export function resolveAccelSync(arch: Arch, accel: Accel = 'auto', opts: KvmProbeOptions = {}): ResolvedAccel {
  const wanted = accel === 'auto' ? (accelFromEnv() ?? 'auto') : accel;
  if (wanted === 'kvm') checkForcedKvm(arch);
  if (wanted !== 'auto') return wanted;
  return probeKvmSync(arch, opts).usable ? 'kvm' : 'tcg';
}
