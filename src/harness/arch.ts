// Guest architectures, their QEMU binaries and host facts.

import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, isAbsolute, join } from 'node:path';

export type Arch = 'x86_64' | 'aarch64';

export const ARCHES: readonly Arch[] = ['x86_64', 'aarch64'];

export interface ArchInfo {
  /** QEMU system emulator binary name. */
  readonly qemu: string;
  /** Debian package that ships that binary. */
  readonly debianPackage: string;
  /** Guest device name of the first serial port (the console). */
  readonly serial: string;
}

export const ARCH_INFO: Readonly<Record<Arch, ArchInfo>> = {
  x86_64: { qemu: 'qemu-system-x86_64', debianPackage: 'qemu-system-x86', serial: 'ttyS0' },
  aarch64: { qemu: 'qemu-system-aarch64', debianPackage: 'qemu-system-arm', serial: 'ttyAMA0' },
};

/** Accepts the usual spellings (x86_64/amd64/x64, aarch64/arm64). */
export function parseArch(name: string): Arch {
  switch (name.toLowerCase()) {
    case 'x86_64':
    case 'x86-64':
    case 'amd64':
    case 'x64':
      return 'x86_64';
    case 'aarch64':
    case 'arm64':
      return 'aarch64';
    default:
      throw new Error(`unknown architecture '${name}' (expected x86_64 or aarch64)`);
  }
}

/** The host's architecture, or undefined when it is neither x86_64 nor aarch64. */
export function hostArch(): Arch | undefined {
  if (process.arch === 'x64') return 'x86_64';
  if (process.arch === 'arm64') return 'aarch64';
  return undefined;
}

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
