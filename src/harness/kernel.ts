// Kernel image helpers.

import { existsSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
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
