// Kernel image helpers: a vmlinux out of a bzImage, and the kernel a restore gives QEMU.

import { closeSync, existsSync, openSync, readFileSync, readSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { execa } from 'execa';
import { findExecutable } from './arch.ts';

const XZ_MAGIC = Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]);
const ELF_MAGIC = Buffer.from([0x7f, 0x45, 0x4c, 0x46]);

/**
 * Extracts the uncompressed ELF vmlinux from an xz-compressed x86 bzImage (Debian's amd64
 * kernels). QEMU boots such a vmlinux through its PVH entry point (CONFIG_PVH), which skips
 * firmware real-mode setup and in-guest decompression: under TCG that is about 3 s instead
 * of 6-7 s to userspace here. Needs the `xz` program (Debian package xz-utils).
 * Returns `out`. An input that already is an ELF file is copied as is.
 */
export async function extractVmlinux(bzImage: string, out: string): Promise<string> {
  const data = readFileSync(bzImage);
  if (data.subarray(0, 4).equals(ELF_MAGIC)) {
    writeFileSync(out, data);
    return out;
  }
  const at = data.indexOf(XZ_MAGIC);
  if (at < 0) throw new Error(`${bzImage}: no xz stream found (only xz-compressed bzImages are supported)`);
  const xz = findExecutable('xz');
  if (xz === undefined) throw new Error(`extracting ${bzImage} needs the xz program (apt-get install xz-utils)`);
  // --single-stream: stop at the end of the kernel's stream and ignore the bzImage trailer after it.
  const r = await execa(xz, ['-dc', '--single-stream'], { input: data.subarray(at), encoding: 'buffer', reject: false });
  const elf = r.stdout;
  if (r.exitCode !== 0 || !(elf instanceof Uint8Array) || !Buffer.from(elf.subarray(0, 4)).equals(ELF_MAGIC)) {
    throw new Error(`${bzImage}: xz could not extract an ELF vmlinux (status ${r.exitCode ?? '?'}): ${String(r.stderr)}`);
  }
  const tmp = `${out}.tmp-${process.pid}`;
  writeFileSync(tmp, elf);
  renameSync(tmp, out);
  return out;
}

/**
 * extractVmlinux into `dir` once per kernel file (keyed by name, size and mtime) and
 * return the cached path.
 */
export async function cachedVmlinux(bzImage: string, dir: string): Promise<string> {
  const st = statSync(bzImage);
  const out = join(dir, `${basename(bzImage).replace(/^vmlinuz/, 'vmlinux')}-${st.size}-${Math.floor(st.mtimeMs)}.elf`);
  if (existsSync(out)) return out;
  return extractVmlinux(bzImage, out);
}

/** The arm64 Image header: its size, and its magic ("ARM\x64") and where that is. */
const ARM64_HEADER_BYTES = 64;
const ARM64_MAGIC = Buffer.from([0x41, 0x52, 0x4d, 0x64]);
const ARM64_MAGIC_AT = 56;
/** How much of a kernel file restoreKernel reads for its headers (an ELF's program headers follow its header). */
const HEADERS_BYTES = 4096;
/** ELF64: the file header's size, a program header's size, and the program header types used. */
const ELF64_HEADER_BYTES = 64;
const ELF64_PHDR_BYTES = 56;
const PT_LOAD = 1;
const PT_NOTE = 4;

/**
 * The kernel QEMU is given when a machine is restored from a snapshot (boot({ restore })).
 * QEMU loads -kernel (and -initrd) at its start even then, though the saved RAM holds what
 * they brought and the guest never reads them again: x86_64's vmlinux is ~60 MB of segments
 * read into memory (~60 ms of the start here), aarch64's Image and initramfs are read whole
 * (~1.3 s). What the saved machine needs of the kernel is its kind: an x86_64 ELF kernel's
 * PVH note makes QEMU add the option ROM of that boot path, which is part of the saved
 * state; an arm64 Image's header sets where QEMU puts things in RAM. So: an ELF file with
 * the notes alone (in one loadable segment, where QEMU looks for them), or an Image with
 * its header alone, written into dir; any other kernel (a bzImage: ~8 MB, the option ROM
 * of another boot path) is given as it is. The initramfs is not given at all.
 */
export function restoreKernel(kernel: string, dir: string): string {
  const fd = openSync(kernel, 'r');
  try {
    const read = (at: number, bytes: number): Buffer => {
      const b = Buffer.alloc(bytes);
      return b.subarray(0, readSync(fd, b, 0, bytes, at));
    };
    const head = read(0, HEADERS_BYTES);
    if (head.length >= ARM64_HEADER_BYTES && head.subarray(ARM64_MAGIC_AT, ARM64_MAGIC_AT + 4).equals(ARM64_MAGIC)) {
      return writeStandIn(dir, 'Image', head.subarray(0, ARM64_HEADER_BYTES));
    }
    const notes = head.subarray(0, 4).equals(ELF_MAGIC) ? elfNotesOnly(head, read) : undefined;
    return notes === undefined ? kernel : writeStandIn(dir, 'vmlinux', notes);
  } finally {
    closeSync(fd);
  }
}

/** Writes a stand-in kernel into dir; returns its path. */
function writeStandIn(dir: string, name: string, bytes: Buffer): string {
  const out = join(dir, `restore-${name}`);
  writeFileSync(out, bytes);
  return out;
}

/**
 * A 64-bit little-endian ELF executable holding only the notes of an ELF file (its first
 * PT_NOTE segment), as one PT_LOAD segment at the notes' addresses plus the PT_NOTE, with
 * its machine and entry: `elf` is the file's start (its program headers must be in it),
 * `read` reads the rest. undefined when the file is not of that kind or has no notes.
 */
function elfNotesOnly(elf: Buffer, read: (at: number, bytes: number) => Buffer): Buffer | undefined {
  // EI_CLASS 2 (64-bit), EI_DATA 1 (little-endian)
  if (elf.length < ELF64_HEADER_BYTES || elf[4] !== 2 || elf[5] !== 1) return undefined;
  const phoff = Number(elf.readBigUInt64LE(0x20));
  const phentsize = elf.readUInt16LE(0x36);
  const phnum = elf.readUInt16LE(0x38);
  for (let i = 0; i < phnum; i++) {
    const ph = phoff + i * phentsize;
    if (ph + ELF64_PHDR_BYTES > elf.length || elf.readUInt32LE(ph) !== PT_NOTE) continue;
    const offset = Number(elf.readBigUInt64LE(ph + 0x08));
    const size = Number(elf.readBigUInt64LE(ph + 0x20));
    const notes = read(offset, size);
    if (notes.length !== size) return undefined;
    const at = ELF64_HEADER_BYTES + 2 * ELF64_PHDR_BYTES;
    const out = Buffer.alloc(at + size);
    elf.copy(out, 0, 0, ELF64_HEADER_BYTES);
    out.writeBigUInt64LE(BigInt(ELF64_HEADER_BYTES), 0x20); // e_phoff
    out.writeBigUInt64LE(0n, 0x28); // e_shoff: no sections
    out.writeUInt16LE(ELF64_HEADER_BYTES, 0x34); // e_ehsize
    out.writeUInt16LE(ELF64_PHDR_BYTES, 0x36); // e_phentsize
    out.writeUInt16LE(2, 0x38); // e_phnum
    out.writeUInt16LE(0, 0x3a); // e_shentsize
    out.writeUInt16LE(0, 0x3c); // e_shnum
    out.writeUInt16LE(0, 0x3e); // e_shstrndx
    for (const [n, type] of [[0, PT_LOAD], [1, PT_NOTE]] as const) {
      const o = ELF64_HEADER_BYTES + n * ELF64_PHDR_BYTES;
      // the note's header as it is (flags, addresses, sizes, alignment), at its new offset
      elf.copy(out, o, ph, ph + ELF64_PHDR_BYTES);
      out.writeUInt32LE(type, o);
      out.writeBigUInt64LE(BigInt(at), o + 0x08);
    }
    notes.copy(out, at);
    return out;
  }
  return undefined;
}
