// Tests of the QEMU boot-test harness (src/harness): unit tests without QEMU, then a real
// boot of a tiny busybox initramfs on x86_64 and aarch64 (skipped, with the reason, when
// QEMU, a kernel or a busybox is missing).
//
// Inputs: RUNIT_TS_TEST_KERNEL_X86_64 / _AARCH64 and RUNIT_TS_TEST_BUSYBOX_X86_64 / _AARCH64,
// else $RUNIT_TS_CACHE (default ~/.cache/runit-ts)/kernel-<arch>/boot/vmlinuz-* and
// busybox-<arch>/bin/busybox (dpkg-deb -x of linux-image-6.1.0-*-{amd64,arm64} and busybox-static).
// Console logs of each boot go to $RUNIT_TS_TEST_LOGDIR (default <tmpdir>/runit-ts-test-logs).

import t from 'tap';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import {
  type Arch,
  ARCH_INFO,
  aarch64ProbeImage,
  boot,
  BootError,
  cachedVmlinux,
  consoleTail,
  defaultCmdline,
  findExecutable,
  findPattern,
  hostArch,
  type Machine,
  parseQmpMessage,
  parseRunOutput,
  probeKvm,
  qemuCommand,
  QemuNotFoundError,
  QmpParser,
  resolveAccel,
  resolveAccelSync,
  runProbeGuest,
  runMarkers,
  stripKernelMessages,
  x86ProbeFirmware,
} from '../../src/harness/index.ts';

const here = dirname(fileURLToPath(import.meta.url));

function withEnv<T>(vars: Record<string, string | undefined>, fn: () => T): T {
  const saved: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(vars)) {
    saved[k] = process.env[k];
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  try {
    return fn();
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

function argAfter(args: readonly string[], flag: string): string | undefined {
  const i = args.indexOf(flag);
  return i < 0 ? undefined : args[i + 1];
}

// ---------------------------------------------------------------- qemuCommand

t.test('qemuCommand x86_64', async (t) => {
  const c = qemuCommand({ arch: 'x86_64', kernel: '/k/vmlinuz', initrd: '/k/initrd.img', accel: 'tcg' });
  t.equal(c.bin, 'qemu-system-x86_64');
  t.equal(c.accel, 'tcg');
  t.equal(argAfter(c.args, '-machine'), 'pc');
  t.equal(argAfter(c.args, '-accel'), 'tcg');
  t.notOk(c.args.includes('-cpu'), 'QEMU default CPU under TCG');
  t.equal(argAfter(c.args, '-m'), '1024');
  t.equal(argAfter(c.args, '-smp'), '1');
  for (const f of ['-nodefaults', '-no-user-config', '-no-reboot']) t.ok(c.args.includes(f), f);
  t.equal(argAfter(c.args, '-display'), 'none');
  t.equal(argAfter(c.args, '-kernel'), '/k/vmlinuz');
  t.equal(argAfter(c.args, '-initrd'), '/k/initrd.img');
  t.equal(argAfter(c.args, '-append'), 'console=ttyS0 panic=-1');
  t.equal(argAfter(c.args, '-chardev'), 'stdio,id=con0,signal=off', 'pipe console: no mux, no monitor');
  t.equal(argAfter(c.args, '-serial'), 'chardev:con0');
  t.notOk(c.args.includes('-mon'));
  t.notOk(c.args.includes('-S'));
  t.notOk(c.args.includes('virtio-keyboard-device'));

  const k = qemuCommand({
    arch: 'x86_64',
    kernel: '/k/vmlinuz',
    accel: 'kvm',
    memory: 256,
    smp: 2,
    append: 'console=ttyS0 quiet',
    qmpSocket: '/tmp/x/qmp.sock',
    paused: true,
    extraArgs: ['-device', 'virtio-rng-pci'],
  });
  t.equal(argAfter(k.args, '-accel'), 'kvm');
  t.equal(argAfter(k.args, '-cpu'), 'host');
  t.equal(argAfter(k.args, '-m'), '256');
  t.equal(argAfter(k.args, '-smp'), '2');
  t.notOk(k.args.includes('-initrd'));
  t.equal(argAfter(k.args, '-append'), 'console=ttyS0 quiet');
  t.ok(k.args.includes('socket,id=qmp0,path=/tmp/x/qmp.sock,server=on,wait=off'));
  t.ok(k.args.includes('chardev=qmp0,mode=control'));
  t.ok(k.args.includes('-S'));
  t.same(k.args.slice(-2), ['-device', 'virtio-rng-pci'], 'extra args last');

  const i = qemuCommand({ arch: 'x86_64', kernel: '/k', accel: 'tcg', console: 'interactive' });
  t.ok(i.args.includes('stdio,id=con0,mux=on,signal=off'), 'interactive: console and monitor muxed, Ctrl-C to guest');
  t.ok(i.args.includes('chardev=con0,mode=readline'));

  t.throws(() => qemuCommand({ arch: 'x86_64', kernel: '/k', accel: 'tcg', memory: 0 }), /memory/);
  t.throws(() => qemuCommand({ arch: 'x86_64', kernel: '/k', accel: 'tcg', qmpSocket: '/a,b' }), /','/);
});

t.test('qemuCommand aarch64', async (t) => {
  const c = qemuCommand({ arch: 'aarch64', kernel: '/k/Image', initrd: '/k/i', accel: 'tcg' });
  t.equal(c.bin, 'qemu-system-aarch64');
  t.equal(argAfter(c.args, '-machine'), 'virt');
  t.equal(argAfter(c.args, '-cpu'), 'cortex-a57', 'cortex-a57: -cpu max is ~5x slower under TCG');
  t.equal(argAfter(c.args, '-append'), 'console=ttyAMA0 panic=-1');
  t.equal(argAfter(c.args, '-device'), 'virtio-keyboard-device', 'a keyboard for ctrl-alt-del');
  t.equal(argAfter(c.args, '-global'), 'virtio-mmio.force-legacy=false');
  t.ok(c.args.includes('-no-reboot'));
  const k = qemuCommand({ arch: 'aarch64', kernel: '/k/Image', accel: 'kvm' });
  t.equal(argAfter(k.args, '-machine'), 'virt,gic-version=host');
  t.equal(argAfter(k.args, '-cpu'), 'host');
  t.equal(qemuCommand({ arch: 'aarch64', kernel: '/k', accel: 'tcg', cpu: 'max', qemu: '/opt/q' }).bin, '/opt/q');
});

t.test('defaultCmdline', async (t) => {
  t.equal(defaultCmdline('x86_64'), 'console=ttyS0 panic=-1');
  t.equal(defaultCmdline('aarch64', { quiet: true, extra: 'rdinit=/sbin/init' }), 'console=ttyAMA0 panic=-1 quiet rdinit=/sbin/init');
});

t.test('accelerator selection', async (t) => {
  withEnv({ RUNIT_TS_ACCEL: 'tcg' }, () => {
    t.equal(resolveAccelSync('x86_64'), 'tcg', 'RUNIT_TS_ACCEL=tcg forces tcg for auto');
    t.equal(qemuCommand({ arch: 'x86_64', kernel: '/k' }).accel, 'tcg');
  });
  await withEnv({ RUNIT_TS_ACCEL: 'tcg' }, async () => t.equal(await resolveAccel('aarch64'), 'tcg'));
  withEnv({ RUNIT_TS_ACCEL: 'bogus' }, () => t.throws(() => resolveAccelSync('x86_64'), /RUNIT_TS_ACCEL=bogus/));
  const foreign: Arch = hostArch() === 'aarch64' ? 'x86_64' : 'aarch64';
  withEnv({ RUNIT_TS_ACCEL: 'kvm' }, () => t.throws(() => resolveAccelSync(foreign), /differs from host/));
  withEnv({ RUNIT_TS_ACCEL: undefined }, () => {
    t.equal(resolveAccelSync(foreign), 'tcg', 'auto never picks KVM for a foreign arch');
    t.equal(resolveAccelSync('x86_64', 'tcg'), 'tcg', 'an explicit accel is kept');
  });
});

// ---------------------------------------------------------------- QMP parser

t.test('QMP parser', async (t) => {
  const p = new QmpParser();
  t.same(p.push('{"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}}, "capabilities": ["oob"]}}\r\n{"ret'), [
    { kind: 'greeting', greeting: { QMP: { version: { qemu: { micro: 0, minor: 2, major: 7 } }, capabilities: ['oob'] } } },
  ]);
  t.equal(p.pending, '{"ret');
  t.same(p.push('urn": {}, "id": 1}\r\n'), [{ kind: 'return', id: 1, value: {} }], 'message split across chunks');
  const msgs = p.push(
    '{"timestamp": {"seconds": 1700000000, "microseconds": 5}, "event": "SHUTDOWN", "data": {"guest": true, "reason": "guest-shutdown"}}\r\n' +
      '{"id": 2, "error": {"class": "CommandNotFound", "desc": "The command foo has not been found"}}\r\n\r\n',
    42,
  );
  t.same(msgs, [
    {
      kind: 'event',
      event: { event: 'SHUTDOWN', receivedAt: 42, data: { guest: true, reason: 'guest-shutdown' }, timestamp: { seconds: 1700000000, microseconds: 5 } },
    },
    { kind: 'error', id: 2, error: { class: 'CommandNotFound', desc: 'The command foo has not been found' } },
  ]);
  t.equal(parseQmpMessage('not json').kind, 'invalid');
  t.equal(parseQmpMessage('[1]').kind, 'invalid');
  t.equal(parseQmpMessage('{"foo": 1}').kind, 'invalid');
  t.same(parseQmpMessage('{"return": [1, 2]}'), { kind: 'return', id: undefined, value: [1, 2] });
});

// ---------------------------------------------------------------- console helpers

t.test('findPattern', async (t) => {
  const text = 'boot ok\r\nready 1\r\nready 2\r\n';
  t.match(findPattern(text, 'ready'), { index: 9, end: 14, text: 'ready' });
  t.match(findPattern(text, 'ready', 14), { index: 18 }, 'next occurrence from an offset');
  t.equal(findPattern(text, 'ready', 23), undefined);
  const m = findPattern(text, /ready (?<n>\d+)\r?\n/g, 10);
  t.equal(m?.groups[1], '2');
  t.equal(m?.named?.['n'], '2');
  t.equal(m?.end, text.length);
  t.equal(findPattern(text, /BOOT/i)?.index, 0, 'flags kept');
  t.equal(findPattern(text, /^ready 2/m)?.index, 18);
  t.equal(consoleTail('x'.repeat(3000), 2048).length > 2048, true);
  t.ok(consoleTail('x'.repeat(3000), 2048).startsWith('[... 952 earlier'));
});

t.test('run() markers', async (t) => {
  const mk = runMarkers('echo hi; uname -m', 'abc123');
  t.notOk(mk.line.includes('RTS_BEGIN_abc123'), 'the typed line does not contain the begin marker');
  t.notOk(mk.line.includes('RTS_END_abc123'), 'nor the end marker');
  const prompt = '/ # ';
  const echo = `${prompt}${mk.line}\r\n`;
  t.equal(findPattern(echo, mk.pattern), undefined, 'the echo alone never matches');
  // What a busybox shell on a serial tty prints (ONLCR turns \n into \r\n).
  const out = (s: string): string => s.replace(/\n/g, '\r\n');
  const console1 = echo + out('RTS_BEGIN_abc123\nhi\nx86_64\n\nRTS_END_abc123 0\n') + prompt;
  const m1 = findPattern(console1, mk.pattern);
  t.ok(m1);
  if (m1 !== undefined) t.same(parseRunOutput(m1), { output: 'hi\nx86_64\n', status: 0 });

  // No trailing newline, nonzero status, and a kernel message in the middle of a line.
  const console2 = echo + out('RTS_BEGIN_abc123\nab[   12.345678] random: crng init done\ncd\nRTS_END_abc123 3\n');
  const m2 = findPattern(console2, mk.pattern);
  if (m2 === undefined) t.fail('no match');
  else t.same(parseRunOutput(m2), { output: 'abcd', status: 3 });

  // Empty output; a kernel line just before the end marker.
  const console3 = echo + out('RTS_BEGIN_abc123\n[    1.000000] foo\n\nRTS_END_abc123 0\n');
  const m3 = findPattern(console3, mk.pattern);
  if (m3 === undefined) t.fail('no match');
  else t.same(parseRunOutput(m3), { output: '', status: 0 });

  t.equal(findPattern(out('RTS_BEGIN_abc123\nhi\n\nRTS_END_abc123 1'), mk.pattern), undefined, 'waits for the line end of the status');
  t.throws(() => runMarkers('a\nb', 'x1'), /single line/);
  t.throws(() => runMarkers('a', 'x-1'), /alphanumeric/);
  t.equal(stripKernelMessages('a\n[    0.123456] x y\r\nb\n'), 'a\nb\n');
});

// ---------------------------------------------------------------- KVM probe firmware

t.test('KVM probe firmware matches its assembly source', async (t) => {
  const fw = x86ProbeFirmware();
  t.equal(fw.length, 65536, '-bios images must be a multiple of 64 KiB');
  t.same([...fw.subarray(65536 - 16, 65536 - 11)], [0xea, 0x5e, 0xf1, 0x00, 0xf0], 'reset vector: ljmp F000:F15E');
  const img = aarch64ProbeImage();
  t.equal(img.subarray(56, 60).toString('latin1'), 'ARM\x64', 'arm64 Image magic');

  const dir = mkdtempSync(join(tmpdir(), 'runit-ts-probe-asm-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const src = join(here, '..', '..', 'src', 'harness', 'probe');
  const as = findExecutable('as');
  const objcopy = findExecutable('objcopy');
  if (as === undefined || objcopy === undefined || hostArch() !== 'x86_64') {
    t.comment('x86_64 probe: skipping reassembly (needs binutils on an x86_64 host)');
  } else {
    await execa(as, ['--64', '-o', join(dir, 'x.o'), join(src, 'kvm-probe-x86_64.S')]);
    await execa(objcopy, ['-O', 'binary', '-j', '.text', join(dir, 'x.o'), join(dir, 'x.bin')]);
    t.same(readFileSync(join(dir, 'x.bin')), fw.subarray(65536 - 4096), 'x86_64 probe bytes == assembled source');
  }
  const aas = findExecutable('aarch64-linux-gnu-as');
  const aobj = findExecutable('aarch64-linux-gnu-objcopy');
  if (aas === undefined || aobj === undefined) {
    t.comment('aarch64 probe: skipping reassembly (needs binutils-aarch64-linux-gnu)');
  } else {
    await execa(aas, ['-o', join(dir, 'a.o'), join(src, 'kvm-probe-aarch64.S')]);
    await execa(aobj, ['-O', 'binary', '-j', '.text', join(dir, 'a.o'), join(dir, 'a.bin')]);
    t.same(readFileSync(join(dir, 'a.bin')), img, 'aarch64 probe bytes == assembled source');
  }
});

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
