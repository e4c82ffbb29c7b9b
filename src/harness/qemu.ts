// QEMU command lines for booting a kernel + initramfs on x86_64 or aarch64.

import { statSync } from 'node:fs';
import { type Arch, ARCH_INFO } from './arch.ts';
import { kernelCmdline } from '../lib/platform.ts';
import { type Accel, type ResolvedAccel, resolveAccelSync } from './kvm.ts';
import { AGENT_PORT_NAME } from '../lib/agent-protocol.ts';

/**
 * How the guest's serial console is wired to QEMU's stdio.
 * - 'pipe': the console alone on stdin/stdout, raw bytes, no escape character
 *   (what boot() uses: the harness reads stdout and writes stdin).
 * - 'interactive': for a human at a terminal (`make boot`): run QEMU with inherited stdio.
 *   The console and the QEMU monitor share the terminal (like `-serial mon:stdio`),
 *   but Ctrl-C goes to the guest instead of killing QEMU. Keys:
 *     Ctrl-a x   quit QEMU at once (the terminal is restored)
 *     Ctrl-a c   switch between the guest console and the QEMU monitor, where
 *                `quit`, `system_powerdown`, `system_reset` and
 *                `sendkey ctrl-alt-delete` work
 *     Ctrl-a h   help; Ctrl-a Ctrl-a sends a literal Ctrl-a to the guest
 *   Powering the guest off (`poweroff` in the guest) also ends QEMU (-no-reboot
 *   makes a guest reboot end it too).
 */
export type ConsoleMode = 'pipe' | 'interactive';

/**
 * What qemuCommand() builds a command line for: the guest (kernel/initrd, or firmware and
 * drives), machine size, accelerator and how the console and QMP are wired.
 */
export interface QemuOptions {
  /** Guest architecture: selects qemu-system-x86_64 (pc) or qemu-system-aarch64 (virt). */
  readonly arch: Arch;
  /**
   * Kernel image: bzImage or vmlinux (x86_64, a vmlinux with a PVH note boots ~2x faster under TCG), Image (aarch64).
   * Leave out to boot from firmware (`firmware`) and disks (`drives`).
   */
  readonly kernel?: string;
  /** Disks on virtio-blk (PCI), in order (vda, vdb, ...). */
  readonly drives?: readonly Drive[];
  /**
   * x86_64: files attached as virtio-pmem (PCI) devices, in order (pmem0, ...): the guest
   * maps them as memory (DAX) instead of reading them through a block queue. Each file's
   * size must be a multiple of 2 MiB. Read-only (QEMU maps the file private and read-only).
   */
  readonly pmem?: readonly string[];
  /**
   * Firmware: `bios` (-bios FILE, e.g. U-Boot's u-boot.bin), or UEFI as two pflash
   * units: `code` read-only and `vars`, which QEMU writes (pass a copy, never the
   * packaged file: boot() makes one in its temporary directory).
   */
  readonly firmware?: { readonly bios: string } | { readonly code: string; readonly vars: string };
  /** Let a guest reboot restart the machine instead of ending QEMU (default false: -no-reboot). */
  readonly allowReboot?: boolean;
  /** Initramfs (-initrd), used with `kernel`. */
  readonly initrd?: string;
  /** Full kernel command line; default defaultCmdline(arch). */
  readonly append?: string;
  /** Guest RAM in MiB; default 1024. */
  readonly memory?: number;
  /** Virtual CPUs; default 1. */
  readonly smp?: number;
  /** Default 'auto' (see resolveAccel: RUNIT_TS_ACCEL, then a cached KVM probe). */
  readonly accel?: Accel;
  /** Default 'pipe'. */
  readonly console?: ConsoleMode;
  /** Path of a unix socket on which QEMU serves QMP (server, no wait). */
  readonly qmpSocket?: string;
  /** Start with the CPUs stopped (-S) until QMP `cont`. */
  readonly paused?: boolean;
  /** Override -cpu (default: host under KVM; cortex-a57 on aarch64 TCG; qemu64,+rdrand on x86_64 TCG: see TCG_X86_CPU). */
  readonly cpu?: string;
  /** Override -machine (default: pc on x86_64, virt on aarch64). */
  readonly machine?: string;
  /** QEMU binary (default qemu-system-x86_64 / qemu-system-aarch64, looked up in PATH when run). */
  readonly qemu?: string;
  /**
   * A virtio-net NIC (PCI) on QEMU's user network with restrict=on: the guest gets
   * 10.0.2.15 by DHCP from QEMU and reaches nothing outside it. `hostfwd` adds
   * host-to-guest forwards ("tcp:127.0.0.1:2222-:22"), which restrict=on still allows.
   */
  readonly network?: boolean | { readonly hostfwd?: readonly string[] };
  /**
   * Path of a unix socket on which QEMU serves the guest agent's virtio-serial port
   * (virtio-serial-pci, port name org.runit-ts.agent; server, no wait). The guest needs
   * virtio_pci and virtio_console (the harness image loads them).
   */
  readonly agentSocket?: string;
  /** Host directories exported to the guest over 9p (virtio-9p-pci), mounted by the guest by tag. */
  readonly shares?: readonly Share[];
  /**
   * Start from a migration stream instead of booting: `-incoming VALUE`
   * (e.g. "exec:cat 'FILE'", or "defer": QMP migrate-incoming names it later, after
   * migrate-set-capabilities); the other options must be those of the machine saved.
   */
  readonly incoming?: string;
  /**
   * Guest RAM as a named memory backend (id RAM_BACKEND_ID, the name a migration stream
   * knows it by) instead of QEMU's own: 'anonymous' (memory-backend-ram), or a file
   * (memory-backend-file): `shared` maps it MAP_SHARED, so the file is the guest's RAM and a
   * migration with x-ignore-shared leaves it out of the stream; not shared maps it
   * MAP_PRIVATE: the guest starts from the file's contents (read as pages are touched)
   * and its writes never reach the file.
   */
  readonly ram?: 'anonymous' | { readonly file: string; readonly shared: boolean };
  /** Appended last, e.g. ['-device', 'virtio-rng-pci']. */
  readonly extraArgs?: readonly string[];
}

/** A host directory shared with the guest over 9p: `-virtfs local,path=HOST,mount_tag=TAG,security_model=none`. */
export interface Share {
  /** Host directory (must not contain ','). */
  readonly host: string;
  /** The name the guest mounts it by (`mount -t 9p -o trans=virtio TAG DIR`): 1-31 of A-Z a-z 0-9 _ . - */
  readonly tag: string;
  /** The guest cannot write to it (readonly=on). Default false. */
  readonly readOnly?: boolean;
}

/** A disk image attached to the guest as a virtio-blk (PCI) disk. */
export interface Drive {
  /** Path of the image file (must not contain ','). */
  readonly file: string;
  /** Default 'raw'. */
  readonly format?: 'raw' | 'qcow2';
  /**
   * Default true: writes go to a temporary overlay that QEMU drops at exit, so a test
   * never alters the image it boots. false writes through to the file.
   */
  readonly snapshot?: boolean;
  /** The guest sees a read-only disk and nothing is written anywhere (snapshot is not needed then). */
  readonly readOnly?: boolean;
}

/** A QEMU command line from qemuCommand(), ready for execa(bin, args). */
export interface QemuCommand {
  /** QEMU binary: the `qemu` option, else the arch's qemu-system-* name (looked up in PATH when run). */
  readonly bin: string;
  /** Arguments, in order. */
  readonly args: string[];
  readonly arch: Arch;
  /** The accelerator in `args` ('auto' already resolved). */
  readonly accel: ResolvedAccel;
}

export type { CmdlineOptions } from '../lib/platform.ts';

/**
 * Recommended kernel command line: the serial console, and panic=-1 so that a
 * kernel panic (e.g. init exiting) reboots at once, which -no-reboot turns into
 * QEMU exiting with SHUTDOWN reason guest-reset (Machine.waitForExit reports
 * panicked: true then). The same as src/lib/platform.ts kernelCmdline.
 */
export const defaultCmdline = kernelCmdline;

/**
 * QEMU's default x86_64 CPU under TCG plus RDRAND, which TCG implements: the kernel
 * trusts the CPU's random source and has its random pool ready at once. Without one the
 * pool is ready only seconds into the boot (about 2.9 s here), and every program that
 * asks for random bytes before then waits: Node does at its start. (On aarch64, QEMU's
 * virt machine hands the kernel a seed; under KVM the host CPU has RDRAND.)
 */
export const TCG_X86_CPU = 'qemu64,+rdrand';

/** The id of the chardev QEMU serves the guest agent's port on (query-chardev names it so). */
export const AGENT_CHARDEV_ID = 'agent0';

/** The id of the guest RAM's memory backend (QemuOptions.ram): a saved machine's RAM is named by it. */
export const RAM_BACKEND_ID = 'ram0';

function positiveInt(name: string, v: number): number {
  if (!Number.isInteger(v) || v < 1) throw new Error(`${name} must be a positive integer, got ${v}`);
  return v;
}

/**
 * Builds the QEMU command line. Pure except for accel 'auto', which is resolved
 * synchronously (RUNIT_TS_ACCEL, else the cached KVM probe; see kvm.ts). The synchronous
 * probe cannot stop QEMU early, so where KVM is broken it costs its full timeout (2 s):
 * async callers should pass `accel: await resolveAccel(arch)` instead (~0.4 s there).
 */
export function qemuCommand(opts: QemuOptions): QemuCommand {
  const arch = opts.arch;
  const info = ARCH_INFO[arch];
  if (info === undefined) throw new Error(`unsupported arch '${String(arch)}'`);
  const accel: ResolvedAccel =
    opts.accel === 'kvm' || opts.accel === 'tcg'
      ? opts.accel
      : resolveAccelSync(arch, opts.accel ?? 'auto', opts.qemu !== undefined ? { qemu: opts.qemu } : {});
  const memory = positiveInt('memory', opts.memory ?? 1024);
  const smp = positiveInt('smp', opts.smp ?? 1);
  const args: string[] = [];

  // GICv2 is fine under TCG on aarch64; under KVM the GIC must match the host's.
  const machine = opts.machine ?? (arch === 'x86_64' ? 'pc' : accel === 'kvm' ? 'virt,gic-version=host' : 'virt');
  args.push('-machine', opts.ram !== undefined ? `${machine},memory-backend=${RAM_BACKEND_ID}` : machine);
  if (opts.ram === 'anonymous') args.push('-object', `memory-backend-ram,id=${RAM_BACKEND_ID},size=${memory}M`);
  else if (opts.ram !== undefined) {
    if (opts.ram.file.includes(',')) throw new Error(`RAM file path must not contain ',': ${opts.ram.file}`);
    args.push('-object', `memory-backend-file,id=${RAM_BACKEND_ID},size=${memory}M,mem-path=${opts.ram.file},share=${opts.ram.shared ? 'on' : 'off'}`);
  }
  args.push('-accel', accel);
  const cpu = opts.cpu ?? (accel === 'kvm' ? 'host' : arch === 'aarch64' ? 'cortex-a57' : TCG_X86_CPU);
  if (cpu !== undefined) args.push('-cpu', cpu);
  const pmem = opts.pmem ?? [];
  if (pmem.length && arch !== 'x86_64') throw new Error(`pmem: virtio-pmem is only available on x86_64 (QEMU's ${arch} machine has none)`);
  const pmemSizes = pmem.map((f) => {
    if (f.includes(',')) throw new Error(`pmem path must not contain ',': ${f}`);
    const size = statSync(f).size;
    if (size === 0 || size % (2 * 1048576) !== 0) throw new Error(`pmem ${f}: its size (${size} bytes) must be a non-zero multiple of 2 MiB`);
    return size;
  });
  // virtio-pmem sits in the hot-plug memory area: room for it above the RAM
  const maxmem = memory + pmemSizes.reduce((a, b) => a + b / 1048576, 0);
  args.push('-m', pmem.length ? `${memory},slots=${pmem.length},maxmem=${maxmem}M` : String(memory), '-smp', String(smp));
  // No default devices (VGA, NIC, floppy, CD-ROM, parallel, monitor), no config files, no window.
  args.push('-nodefaults', '-no-user-config', '-display', 'none');
  if (opts.allowReboot !== true) args.push('-no-reboot');

  if ((opts.console ?? 'pipe') === 'pipe') {
    args.push('-chardev', 'stdio,id=con0,signal=off', '-serial', 'chardev:con0');
  } else {
    args.push('-chardev', 'stdio,id=con0,mux=on,signal=off', '-serial', 'chardev:con0', '-mon', 'chardev=con0,mode=readline');
  }
  if (opts.qmpSocket !== undefined) {
    if (opts.qmpSocket.includes(',')) throw new Error(`QMP socket path must not contain ',': ${opts.qmpSocket}`);
    args.push('-chardev', `socket,id=qmp0,path=${opts.qmpSocket},server=on,wait=off`, '-mon', 'chardev=qmp0,mode=control');
  }
  if (arch === 'aarch64') {
    // virt has no PS/2 keyboard: a virtio keyboard (modern virtio-mmio) lets QMP send-key reach the guest.
    // The guest needs virtio_mmio + virtio_input (modules in Debian's arm64 kernel).
    args.push('-device', 'virtio-keyboard-device', '-global', 'virtio-mmio.force-legacy=false');
  }
  const fw = opts.firmware;
  if (fw !== undefined && 'bios' in fw) args.push('-bios', fw.bios);
  else if (fw !== undefined) {
    for (const f of [fw.code, fw.vars]) if (f.includes(',')) throw new Error(`firmware path must not contain ',': ${f}`);
    args.push('-drive', `if=pflash,format=raw,unit=0,readonly=on,file=${fw.code}`, '-drive', `if=pflash,format=raw,unit=1,file=${fw.vars}`);
  }
  (opts.drives ?? []).forEach((d, i) => {
    if (d.file.includes(',')) throw new Error(`drive path must not contain ',': ${d.file}`);
    const how = d.readOnly === true ? 'readonly=on' : `snapshot=${d.snapshot === false ? 'off' : 'on'}`;
    args.push(
      '-drive', `file=${d.file},format=${d.format ?? 'raw'},if=none,id=disk${i},${how}`,
      '-device', `virtio-blk-pci,drive=disk${i}`,
    );
  });
  pmem.forEach((f, i) => {
    args.push(
      // align: the guest can map 2 MiB pages of it (DAX)
      '-object', `memory-backend-file,id=pmemmem${i},mem-path=${f},size=${pmemSizes[i]},share=off,readonly=on,align=2M`,
      '-device', `virtio-pmem-pci,memdev=pmemmem${i},id=pmem${i}`,
    );
  });
  if (opts.network !== undefined && opts.network !== false) {
    const fwd = typeof opts.network === 'object' ? (opts.network.hostfwd ?? []) : [];
    for (const f of fwd) if (!/^(tcp|udp):[0-9.]*:\d+-[0-9.]*:\d+$/.test(f)) throw new Error(`hostfwd must look like tcp:127.0.0.1:2222-:22, got ${f}`);
    args.push('-netdev', ['user', 'id=net0', 'restrict=on', ...fwd.map((f) => `hostfwd=${f}`)].join(','), '-device', 'virtio-net-pci,netdev=net0,romfile=');
  }
  if (opts.agentSocket !== undefined) {
    if (opts.agentSocket.includes(',')) throw new Error(`agent socket path must not contain ',': ${opts.agentSocket}`);
    args.push(
      '-device', 'virtio-serial-pci,id=vser0',
      '-chardev', `socket,id=${AGENT_CHARDEV_ID},path=${opts.agentSocket},server=on,wait=off`,
      '-device', `virtserialport,bus=vser0.0,chardev=${AGENT_CHARDEV_ID},name=${AGENT_PORT_NAME}`,
    );
  }
  const tags = new Set<string>();
  for (const sh of opts.shares ?? []) {
    if (sh.host.includes(',')) throw new Error(`share path must not contain ',': ${sh.host}`);
    if (!/^[A-Za-z0-9_.-]{1,31}$/.test(sh.tag)) throw new Error(`share tag must be 1-31 of A-Z a-z 0-9 _ . -, got ${JSON.stringify(sh.tag)}`);
    if (tags.has(sh.tag)) throw new Error(`share tag ${sh.tag} given twice`);
    tags.add(sh.tag);
    args.push('-virtfs', `local,path=${sh.host},mount_tag=${sh.tag},security_model=none${sh.readOnly === true ? ',readonly=on' : ''}`);
  }
  if (opts.kernel !== undefined) {
    args.push('-kernel', opts.kernel);
    if (opts.initrd !== undefined) args.push('-initrd', opts.initrd);
    args.push('-append', opts.append ?? defaultCmdline(arch));
  } else if (fw === undefined && (opts.drives ?? []).length === 0) {
    throw new Error('nothing to boot: give a kernel, or firmware and drives');
  }
  if (opts.paused === true) args.push('-S');
  if (opts.incoming !== undefined) args.push('-incoming', opts.incoming);
  if (opts.extraArgs !== undefined) args.push(...opts.extraArgs);
  return { bin: opts.qemu ?? info.qemu, args, arch, accel };
}
