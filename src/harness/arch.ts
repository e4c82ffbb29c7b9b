// Guest architectures, their QEMU binaries and host facts.

import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, isAbsolute, join } from 'node:path';

import { CONSOLE, type Arch } from '../lib/platform.ts';

export { type Arch, ARCHES, hostArch, parseArch } from '../lib/platform.ts';

/** What the harness needs to know about one guest architecture: its QEMU binary, package and console device. */
export interface ArchInfo {
  /** QEMU system emulator binary name. */
  readonly qemu: string;
  /** Debian package that ships that binary. */
  readonly debianPackage: string;
  /** Guest device name of the first serial port (the console). */
  readonly serial: string;
}

/** ArchInfo for each supported guest architecture (x86_64, aarch64). */
export const ARCH_INFO: Readonly<Record<Arch, ArchInfo>> = {
  x86_64: { qemu: 'qemu-system-x86_64', debianPackage: 'qemu-system-x86', serial: CONSOLE.x86_64 },
  aarch64: { qemu: 'qemu-system-aarch64', debianPackage: 'qemu-system-arm', serial: CONSOLE.aarch64 },
};

/** Looks a program up in PATH (or checks it directly when it contains a slash). */
export function findExecutable(name: string, path = process.env['PATH'] ?? ''): string | undefined {
  const candidates = name.includes('/') ? [name] : path.split(delimiter).filter((d) => d !== '').map((d) => join(d, name));
  for (const c of candidates) {
    try {
      if (!statSync(c).isFile()) continue;
      accessSync(c, constants.X_OK);
      return isAbsolute(c) ? c : join(process.cwd(), c);
    } catch {
      // not there: try the next one
    }
  }
  return undefined;
}

/** Thrown when the QEMU binary for an arch cannot be found. */
export class QemuNotFoundError extends Error {
  readonly arch: Arch;
  readonly binary: string;
  constructor(arch: Arch, binary: string) {
    const info = ARCH_INFO[arch];
    super(
      `${binary} not found in PATH: it is needed to boot ${arch} guests; ` +
        `on Debian/Ubuntu install it with 'apt-get install ${info.debianPackage}'`,
    );
    this.name = 'QemuNotFoundError';
    this.arch = arch;
    this.binary = binary;
  }
}

/** Resolves the QEMU binary for an arch (an explicit override wins) or throws QemuNotFoundError. */
export function requireQemu(arch: Arch, override?: string): string {
  const name = override ?? ARCH_INFO[arch].qemu;
  const found = findExecutable(name);
  if (found === undefined) throw new QemuNotFoundError(arch, name);
  return found;
}
