// Tests of the QEMU boot-test harness (src/harness) that run QEMU: the KVM probe guests,
// errors from a real QEMU, and a real boot of a tiny busybox initramfs on x86_64 and
// aarch64 (skipped, with the reason, when QEMU, a kernel or a busybox is missing). What
// needs no QEMU is in test/unit/harness.test.ts.
//
// Inputs: RUNIT_TS_TEST_KERNEL_X86_64 / _AARCH64 and RUNIT_TS_TEST_BUSYBOX_X86_64 / _AARCH64,
// else $RUNIT_TS_CACHE (default ~/.cache/runit-ts)/kernel-<arch>/boot/vmlinuz-* and
// busybox-<arch>/bin/busybox (dpkg-deb -x of linux-image-6.1.0-*-{amd64,arm64} and busybox-static).
// Console logs of each boot go to $RUNIT_TS_TEST_LOGDIR (default <tmpdir>/runit-ts-test-logs).

import t from 'tap';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import {
  type Arch,
  ARCH_INFO,
  boot,
  BootError,
  cachedVmlinux,
  defaultCmdline,
  findExecutable,
  type Machine,
  probeKvm,
  QemuNotFoundError,
  resolveAccel,
  runProbeGuest,
} from '../../src/harness/index.ts';

// ---------------------------------------------------------------- KVM probe guests

t.test('KVM probe guests complete under TCG', async (t) => {
  for (const arch of ['x86_64', 'aarch64'] as const) {
    if (findExecutable(ARCH_INFO[arch].qemu) === undefined) {
      t.comment(`SKIP ${arch}: ${ARCH_INFO[arch].qemu} missing (apt-get install ${ARCH_INFO[arch].debianPackage})`);
      continue;
    }
    const r = await runProbeGuest(arch, 'tcg', { timeout: 20000 });
    t.ok(r.usable, `${arch} probe guest: ${r.reason}`);
  }
  // On this kind of host (x86_64 with a nested paravirtual /dev/kvm) KVM must be refused.
  const kvm = await probeKvm('x86_64');
  t.comment(`KVM for x86_64 here: ${kvm.usable ? 'usable' : 'not usable'} (${kvm.reason})`);
});

// ---------------------------------------------------------------- clear errors

t.test('clear errors', async (t) => {
  await t.rejects(boot({ arch: 'aarch64', kernel: '/nonexistent', qemu: 'qemu-system-nonexistent' }), QemuNotFoundError);
  await t.rejects(boot({ arch: 'aarch64', kernel: '/nonexistent', qemu: 'qemu-system-nonexistent' }), /apt-get install qemu-system-arm/);
  await t.rejects(boot({ arch: 'x86_64', kernel: '/nonexistent', qemu: 'qemu-system-nonexistent' }), /apt-get install qemu-system-x86/);
  const qemu = findExecutable(ARCH_INFO.x86_64.qemu);
  if (qemu === undefined) {
    t.comment(`skipping QEMU-dependent error checks: ${ARCH_INFO.x86_64.qemu} missing (apt-get install ${ARCH_INFO.x86_64.debianPackage})`);
    return;
  }
  await t.rejects(boot({ arch: 'x86_64', kernel: '/nonexistent/vmlinuz', accel: 'tcg' }), /kernel not found: \/nonexistent\/vmlinuz/);
  await t.rejects(boot({ arch: 'x86_64', kernel: '/nonexistent/vmlinuz', accel: 'tcg' }), BootError);
  const dir = mkdtempSync(join(tmpdir(), 'runit-ts-err-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const k = join(dir, 'vmlinuz');
  writeFileSync(k, 'not a kernel');
  await t.rejects(boot({ arch: 'x86_64', kernel: k, initrd: join(dir, 'missing.cpio'), accel: 'tcg' }), /initrd not found/);
  // QEMU refuses an option: the error says so and includes QEMU's stderr.
  await t.rejects(
    boot({ arch: 'x86_64', kernel: k, accel: 'tcg', extraArgs: ['-no-such-option'] }),
    /QEMU exited before its QMP socket was ready .*no-such-option/s,
  );
});

// ---------------------------------------------------------------- real boots

/** Minimal cpio "newc" writer (the format the kernel unpacks as initramfs). */
interface CpioEntry {
  readonly name: string;
  readonly mode: number; // including the file type bits
  readonly data?: Uint8Array | string;
  readonly rdev?: [number, number];
}
function cpioNewc(entries: readonly CpioEntry[]): Buffer {
  const parts: Buffer[] = [];
  let size = 0;
  const push = (b: Buffer): void => {
    parts.push(b);
    size += b.length;
  };
  const pad = (): void => {
    if (size % 4 !== 0) push(Buffer.alloc(4 - (size % 4)));
  };
  let ino = 1;
  for (const e of [...entries, { name: 'TRAILER!!!', mode: 0 }]) {
    const data = e.data === undefined ? Buffer.alloc(0) : Buffer.from(e.data);
    const name = Buffer.from(`${e.name}\0`);
    const rdev = e.rdev ?? [0, 0];
    const fields = [ino++, e.mode, 0, 0, 1, 0, data.length, 0, 0, rdev[0], rdev[1], name.length, 0];
    push(Buffer.from(`070701${fields.map((f) => f.toString(16).padStart(8, '0').toUpperCase()).join('')}`, 'latin1'));
    push(name);
    pad();
    push(data);
    pad();
  }
  return Buffer.concat(parts);
}

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const S_IFCHR = 0o020000;
const AARCH64_MODULES = ['kernel/drivers/virtio/virtio_mmio.ko', 'kernel/drivers/virtio/virtio_input.ko'];

function buildInitramfs(arch: Arch, busybox: string, modulesDir: string | undefined): Buffer {
  const init = [
    '#!/bin/busybox sh',
    '/bin/busybox mount -t devtmpfs dev /dev',
    '/bin/busybox mount -t proc proc /proc',
    '/bin/busybox mount -t sysfs sys /sys',
    'for m in /lib/modules/*.ko; do [ -f "$m" ] && /bin/busybox insmod "$m"; done',
    'printf "%s_%s\\n" RTS_INIT UP',
    'exec /bin/busybox init',
    '',
  ].join('\n');
  const inittab = ['::sysinit:/bin/busybox printf "%s_%s\\n" RTS_SYSINIT DONE', '::respawn:-/bin/sh', '::ctrlaltdel:/bin/sh /etc/cad', ''].join('\n');
  // Ctrl-Alt-Del: the kernel signals busybox init (it disabled the kernel's own C-A-D), which runs /etc/cad.
  const cad = [
    'printf "%s_%s\\n" RTS_CAD RECEIVED',
    'if grep -q rts.cad=reboot /proc/cmdline; then reboot -f; else poweroff -f; fi',
    '',
  ].join('\n');
  const entries: CpioEntry[] = [
    { name: 'bin', mode: S_IFDIR | 0o755 },
    { name: 'bin/busybox', mode: S_IFREG | 0o755, data: readFileSync(busybox) },
    ...['sh', 'grep', 'poweroff', 'reboot', 'uname', 'cat'].map((a) => ({ name: `bin/${a}`, mode: S_IFLNK | 0o777, data: 'busybox' })),
    { name: 'sbin', mode: S_IFDIR | 0o755 },
    { name: 'dev', mode: S_IFDIR | 0o755 },
    { name: 'dev/console', mode: S_IFCHR | 0o600, rdev: [5, 1] },
    { name: 'proc', mode: S_IFDIR | 0o755 },
    { name: 'sys', mode: S_IFDIR | 0o755 },
    { name: 'etc', mode: S_IFDIR | 0o755 },
    { name: 'etc/inittab', mode: S_IFREG | 0o644, data: inittab },
    { name: 'etc/cad', mode: S_IFREG | 0o644, data: cad },
    { name: 'init', mode: S_IFREG | 0o755, data: init },
    { name: 'lib', mode: S_IFDIR | 0o755 },
    { name: 'lib/modules', mode: S_IFDIR | 0o755 },
  ];
  if (arch === 'aarch64' && modulesDir !== undefined) {
    for (const m of AARCH64_MODULES) {
      entries.push({ name: `lib/modules/${m.split('/').pop() ?? m}`, mode: S_IFREG | 0o644, data: readFileSync(join(modulesDir, m)) });
    }
  }
  return cpioNewc(entries);
}

interface BootInputs {
  readonly kernel: string;
  readonly busybox: string;
  readonly modulesDir: string | undefined;
}

function cacheDir(): string {
  return process.env['RUNIT_TS_CACHE'] ?? join(homedir(), '.cache', 'runit-ts');
}

/** Returns the inputs, or a string saying what is missing. */
function findInputs(arch: Arch): BootInputs | string {
  const ENV = arch.toUpperCase();
  const cache = cacheDir();
  const qemu = findExecutable(ARCH_INFO[arch].qemu);
  if (qemu === undefined) return `${ARCH_INFO[arch].qemu} not installed (apt-get install ${ARCH_INFO[arch].debianPackage})`;
  let kernel = process.env[`RUNIT_TS_TEST_KERNEL_${ENV}`];
  if (kernel === undefined) {
    const boot = join(cache, `kernel-${arch}`, 'boot');
    const found = existsSync(boot) ? readdirSync(boot).filter((f) => f.startsWith('vmlinuz-')).sort() : [];
    const last = found[found.length - 1];
    if (last === undefined) return `no kernel: set RUNIT_TS_TEST_KERNEL_${ENV} or put one at ${boot}/vmlinuz-*`;
    kernel = join(boot, last);
  }
  if (!existsSync(kernel)) return `kernel ${kernel} does not exist`;
  const busybox = process.env[`RUNIT_TS_TEST_BUSYBOX_${ENV}`] ?? join(cache, `busybox-${arch}`, 'bin', 'busybox');
  if (!existsSync(busybox)) return `no busybox: set RUNIT_TS_TEST_BUSYBOX_${ENV} or put a static one at ${busybox}`;
  // Modules of a Debian kernel package extraction: <root>/boot/vmlinuz-V -> <root>/lib/modules/V.
  const version = kernel.replace(/^.*\/vmlinuz-/, '');
  const modulesDir = join(dirname(dirname(kernel)), 'lib', 'modules', version);
  const haveModules = AARCH64_MODULES.every((m) => existsSync(join(modulesDir, m)));
  return { kernel, busybox, modulesDir: haveModules ? modulesDir : undefined };
}

const logDir = process.env['RUNIT_TS_TEST_LOGDIR'] ?? join(tmpdir(), 'runit-ts-test-logs');

for (const arch of ['x86_64', 'aarch64'] as const) {
  const inputs = findInputs(arch);
  t.test(`boot busybox initramfs on ${arch}`, { skip: typeof inputs === 'string' ? inputs : false }, async (t) => {
    if (typeof inputs === 'string') return;
    const work = mkdtempSync(join(tmpdir(), `runit-ts-harness-${arch}-`));
    t.teardown(() => rmSync(work, { recursive: true, force: true }));
    mkdirSync(logDir, { recursive: true });
    const initrd = join(work, 'initramfs.cpio');
    writeFileSync(initrd, buildInitramfs(arch, inputs.busybox, inputs.modulesDir));
    const accel = await resolveAccel(arch);
    t.comment(`${arch}: accel ${accel}, kernel ${inputs.kernel}, console logs in ${logDir}`);
    const canCad = arch === 'x86_64' || inputs.modulesDir !== undefined;
    const started = performance.now();

    await t.test('console, run(), ctrl-alt-del -> poweroff', async (t) => {
      await using m: Machine = await boot({ arch, kernel: inputs.kernel, initrd, consoleLog: join(logDir, `${arch}-poweroff.log`) });
      const up = await m.waitFor('RTS_INIT_UP\r\n', { timeout: 60000 });
      t.comment(`${arch}: QEMU start -> first userspace marker ${up.elapsed.toFixed(2)} s (${m.accel})`);
      const sysinit = await m.waitFor('RTS_SYSINIT_DONE', { from: up.end, timeout: 30000 });
      t.ok(sysinit.index > up.index, 'waitFor from an offset');
      await t.rejects(m.waitFor('RTS_INIT_UP', { from: up.end, timeout: 200 }), /not seen on the console within 200 ms.*last console output/s, 'timeout error names the pattern and shows the console');

      const r = await m.run('echo hi; uname -m', { timeout: 30000 });
      t.same({ output: r.output, status: r.status }, { output: `hi\n${arch}\n`, status: 0 }, 'run() output and status');
      const r2 = await m.run('(exit 7)', { timeout: 30000 });
      t.equal(r2.status, 7, 'nonzero exit status');
      await t.rejects(m.run('false', { check: true }), /exited with status 1/);
      const r3 = await m.run('printf "%s" no-newline; echo err >&2', { timeout: 30000 });
      t.equal(r3.output, 'no-newlineerr\n', 'stderr included, output without newline');
      const r4 = await m.run('echo a; echo rts-kernel-noise > /dev/kmsg; echo b', { timeout: 30000 });
      t.equal(r4.output, 'a\nb\n', 'kernel messages interleaved on the console are removed');
      t.match(m.console, /\] rts-kernel-noise/, '... though they were on the console');
      await t.rejects(m.run(`echo ${'x'.repeat(1000)}`), /over 1000/, 'too long for the line editor');

      if (!canCad) {
        t.comment(`SKIP ctrl-alt-del: virtio_mmio/virtio_input modules not found next to ${inputs.kernel}`);
        await m.kill();
        return;
      }
      const never = m.waitFor('NEVER_PRINTED', { timeout: 60000 });
      await m.ctrlAltDel();
      await m.waitFor('RTS_CAD_RECEIVED', { timeout: 30000 });
      const exit = await m.waitForExit({ timeout: 30000 });
      t.match(exit, { reason: 'guest-shutdown', guest: true, exitCode: 0, panicked: false }, 'poweroff -f -> guest-shutdown');
      await t.rejects(never, /QEMU exited .*while waiting for "NEVER_PRINTED"/s, 'pending waitFor fails fast when QEMU exits');
      t.ok(m.events.some((e) => e.event === 'SHUTDOWN'), 'QMP events collected');
      t.match(m.console, /reboot: Power down/);
      const pid = m.pid;
      await m.dispose();
      t.throws(() => process.kill(pid ?? -1, 0), /ESRCH/, 'QEMU process gone after dispose');
    });

    await t.test('ctrl-alt-del -> reboot', { skip: canCad ? false : 'no virtio keyboard modules' }, async (t) => {
      // x86_64: boot the vmlinux extracted from the bzImage (PVH entry, ~2x faster under TCG) when xz is there.
      let kernel = inputs.kernel;
      if (arch === 'x86_64' && findExecutable('xz') !== undefined) {
        kernel = await cachedVmlinux(inputs.kernel, work);
        t.comment(`x86_64: booting extracted ${kernel}`);
      }
      await using m = await boot({
        arch,
        kernel,
        initrd,
        append: defaultCmdline(arch, { extra: 'rts.cad=reboot' }),
        consoleLog: join(logDir, `${arch}-reboot.log`),
      });
      const up = await m.waitFor('RTS_SYSINIT_DONE', { timeout: 60000 });
      t.comment(`${arch}: QEMU start -> sysinit done ${up.elapsed.toFixed(2)} s`);
      await m.ctrlAltDel();
      const exit = await m.waitForExit({ timeout: 30000 });
      t.match(exit, { reason: 'guest-reset', guest: true, exitCode: 0, panicked: false }, 'reboot -f -> guest-reset');
      t.match(m.console, /reboot: Restarting system/);
    });

    await t.test('init failure ends QEMU (panic=-1)', async (t) => {
      await using m = await boot({ arch, kernel: inputs.kernel, initrd, append: defaultCmdline(arch, { extra: 'rdinit=/nonexistent' }) });
      const exit = await m.waitForExit({ timeout: 60000 });
      t.match(exit, { reason: 'guest-reset', panicked: true }, 'kernel panic -> reboot -> QEMU exits');
      await t.rejects(m.waitFor('RTS_INIT_UP'), /QEMU has exited.*never appeared/s);
    });
    t.comment(`${arch}: real boots took ${((performance.now() - started) / 1000).toFixed(1)} s`);
  });
}
