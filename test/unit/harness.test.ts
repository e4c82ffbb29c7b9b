// Tests of the QEMU boot-test harness (src/harness) that need neither QEMU nor an image:
// QEMU command lines, accelerator choice, QMP parsing, console matching, run() markers,
// the KVM probe firmware against its assembly source, and the kernel stand-ins of a restore. The boots are in
// test/boot/harness.test.ts.
import t from 'tap';
import { mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import {
  type Arch,
  aarch64ProbeImage,
  consoleTail,
  defaultCmdline,
  findExecutable,
  findPattern,
  hostArch,
  parseQmpMessage,
  parseRunOutput,
  qemuCommand,
  QmpParser,
  resolveAccel,
  resolveAccelSync,
  runMarkers,
  stripKernelMessages,
  x86ProbeFirmware,
} from '../../src/harness/index.ts';
import { restoreKernel } from '../../src/harness/kernel.ts';

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
  t.equal(argAfter(c.args, '-cpu'), 'qemu64,+rdrand', "QEMU's default CPU under TCG, with RDRAND (the kernel's random pool ready at boot)");
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

t.test('qemuCommand network: a NIC on the restricted user network', async (t) => {
  const off = qemuCommand({ arch: 'x86_64', kernel: '/k', accel: 'tcg' });
  t.notOk(off.args.includes('-netdev'), 'no NIC unless asked (-nodefaults)');
  const on = qemuCommand({ arch: 'aarch64', kernel: '/k', accel: 'tcg', network: true });
  t.equal(argAfter(on.args, '-netdev'), 'user,id=net0,restrict=on', 'nothing leaves QEMU');
  t.ok(on.args.includes('virtio-net-pci,netdev=net0,romfile='), 'virtio-net on PCI');
  const fwd = qemuCommand({ arch: 'x86_64', kernel: '/k', accel: 'tcg', network: { hostfwd: ['tcp:127.0.0.1:2222-:22'] } });
  t.equal(argAfter(fwd.args, '-netdev'), 'user,id=net0,restrict=on,hostfwd=tcp:127.0.0.1:2222-:22');
  t.throws(() => qemuCommand({ arch: 'x86_64', kernel: '/k', accel: 'tcg', network: { hostfwd: ['tcp:2222,guestfwd=x'] } }), /hostfwd must look like/);
});

t.test('qemuCommand: a read-only drive, virtio-pmem on x86_64', async (t) => {
  const ro = qemuCommand({ arch: 'x86_64', kernel: '/k', accel: 'tcg', drives: [{ file: '/exe.erofs', readOnly: true }] });
  t.equal(argAfter(ro.args, '-drive'), 'file=/exe.erofs,format=raw,if=none,id=disk0,readonly=on', 'read-only, no overlay');
  const dir = mkdtempSync(join(tmpdir(), 'runit-ts-pmem-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const f = join(dir, 'exe.erofs');
  writeFileSync(f, '');
  truncateSync(f, 4 * 1048576);
  const pm = qemuCommand({ arch: 'x86_64', kernel: '/k', accel: 'tcg', memory: 512, pmem: [f] });
  t.equal(argAfter(pm.args, '-m'), '512,slots=1,maxmem=516M', 'room for the device above the RAM');
  t.equal(argAfter(pm.args, '-object'), `memory-backend-file,id=pmemmem0,mem-path=${f},size=4194304,share=off,readonly=on,align=2M`, 'the file mapped read-only and private');
  t.ok(pm.args.includes('virtio-pmem-pci,memdev=pmemmem0,id=pmem0'), 'virtio-pmem on PCI');
  truncateSync(f, 3 * 1048576);
  t.throws(() => qemuCommand({ arch: 'x86_64', kernel: '/k', accel: 'tcg', pmem: [f] }), /must be a non-zero multiple of 2 MiB/);
  t.throws(() => qemuCommand({ arch: 'aarch64', kernel: '/k', accel: 'tcg', pmem: [f] }), /only available on x86_64/);
});

// ---------------------------------------------------------------- restoreKernel

/** An ELF64 executable: the header, a PT_LOAD of `body` and a PT_NOTE of `note` inside it. */
function elfWithNote(body: Buffer, noteAt: number, note: Buffer): Buffer {
  const hdr = Buffer.alloc(64 + 2 * 56);
  Buffer.from([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]).copy(hdr);
  hdr.writeUInt16LE(2, 0x10); // ET_EXEC
  hdr.writeUInt16LE(62, 0x12); // EM_X86_64
  hdr.writeBigUInt64LE(0x1000000n, 0x18); // e_entry
  hdr.writeBigUInt64LE(64n, 0x20); // e_phoff
  hdr.writeBigUInt64LE(0x4000n, 0x28); // e_shoff (sections the stand-in drops)
  hdr.writeUInt16LE(64, 0x34);
  hdr.writeUInt16LE(56, 0x36);
  hdr.writeUInt16LE(2, 0x38);
  const base = hdr.length;
  const ph = (i: number, type: number, off: number, addr: bigint, size: number) => {
    const o = 64 + i * 56;
    hdr.writeUInt32LE(type, o);
    hdr.writeUInt32LE(5, o + 4);
    hdr.writeBigUInt64LE(BigInt(off), o + 8);
    hdr.writeBigUInt64LE(0xffffffff81000000n + addr, o + 0x10);
    hdr.writeBigUInt64LE(0x1000000n + addr, o + 0x18);
    hdr.writeBigUInt64LE(BigInt(size), o + 0x20);
    hdr.writeBigUInt64LE(BigInt(size), o + 0x28);
    hdr.writeBigUInt64LE(4n, o + 0x30);
  };
  ph(0, 1, base, 0n, body.length);
  ph(1, 4, base + noteAt, BigInt(noteAt), note.length);
  const file = Buffer.concat([hdr, body]);
  note.copy(file, base + noteAt);
  return file;
}

t.test('restoreKernel: what a restore gives QEMU instead of the kernel', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'runit-ts-restore-kernel-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  // an ELF kernel: its notes alone, in a loadable segment at their addresses
  const note = Buffer.from('0400000008000000120000005874656e000000000000001001000000', 'hex'); // a Xen PHYS32_ENTRY note
  const elf = join(dir, 'vmlinux');
  writeFileSync(elf, elfWithNote(Buffer.alloc(8192, 0xcc), 4096, note));
  const stub = readFileSync(restoreKernel(elf, dir));
  t.ok(stub.length < 512, `a few hundred bytes (${stub.length}), not the kernel`);
  t.same([...stub.subarray(0, 4)], [0x7f, 0x45, 0x4c, 0x46], 'an ELF file');
  t.equal(stub.readBigUInt64LE(0x18), 0x1000000n, 'the entry kept');
  t.equal(stub.readUInt16LE(0x38), 2, 'two program headers');
  t.equal(stub.readBigUInt64LE(0x28), 0n, 'no sections');
  for (const [i, type] of [[0, 1], [1, 4]] as const) {
    const o = 64 + i * 56;
    t.equal(stub.readUInt32LE(o), type, `header ${i}: ${type === 1 ? 'PT_LOAD' : 'PT_NOTE'}`);
    t.equal(stub.readBigUInt64LE(o + 0x18), 0x1000000n + 4096n, 'at the notes\' physical address');
    t.equal(Number(stub.readBigUInt64LE(o + 0x20)), note.length, 'the notes\' size');
    t.same(stub.subarray(Number(stub.readBigUInt64LE(o + 8))), note, 'holding the notes');
  }
  // an arm64 Image: its header alone
  const image = Buffer.alloc(1 << 16, 0xaa);
  Buffer.from('ARM\x64', 'latin1').copy(image, 56);
  const img = join(dir, 'Image');
  writeFileSync(img, image);
  t.same(readFileSync(restoreKernel(img, dir)), image.subarray(0, 64), 'the Image header alone');
  // anything else (a bzImage): as it is
  const bz = join(dir, 'bzImage');
  writeFileSync(bz, Buffer.alloc(4096, 0x55));
  t.equal(restoreKernel(bz, dir), bz, 'another kernel is given as it is');
});
