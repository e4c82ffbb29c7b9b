// image/build.ts: build the bootable image of one arch from its spec.
//   node image/build.ts --arch x86_64 [--spec spec.json] [--out out/x86_64] [--compress zstd]
// writes OUT/vmlinuz, OUT/initramfs.img, OUT/cmdline (runit-ts itself is built there by make).
import { copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { execa } from 'execa';
import { extractVmlinux } from '../src/harness/kernel.ts';
import { writeCpio, type Entry } from './cpio.ts';
import { repoRoot } from './inputs.ts';
import { ARCHES, imageCmdline, requireHostArch, type Arch } from '../src/lib/platform.ts';
import { kernelImage, rootfs, type ImageSpec } from './rootfs.ts';
import { buildDisk } from './packers/disk.ts';
import { buildExeDisk } from './packers/exedisk.ts';

/** The boot outputs this script builds itself; the others go through the spec and image/outputs.ts. */
export const BOOT_OUTPUTS = ['initramfs', 'disk', 'exedisk'] as const;

export type Compression = 'none' | 'lz4' | 'gzip' | 'zstd' | 'xz';
const COMPRESSORS: Record<Exclude<Compression, 'none'>, string[]> = {
  // the kernel reads lz4's legacy frame format only (-l)
  lz4: ['lz4', '-q', '-l', '-9', '-c'],
  gzip: ['gzip', '-n', '-6', '-c'],
  zstd: ['zstd', '-q', '-3', '-T0', '-c'],
  // the kernel's xz decoder wants CRC32 and no filters beyond BCJ+LZMA2
  xz: ['xz', '-q', '--check=crc32', '-6', '-T0', '-c'],
};

export const HELP = `usage: node image/build.ts [--arch x86_64|aarch64] [--spec FILE.json] [--out DIR] [--compress none|lz4|gzip|zstd|xz]
                          [--bin DIR] [--outputs LIST]

--outputs is a comma list of initramfs (default), disk, exedisk, tar, oci, docker. disk
writes OUT/disk.img (GPT: a FAT ESP with the kernel, an early initramfs and boot
loaders, and the root file system), root.ext4, early.img and disk.cmdline. With
tar, oci or docker, or with --arch all, the spec (YAML or JSON, see image/spec.ts)
goes through the packers: OUT (default out/) gets <arch>/rootfs.tar, <arch>/oci/,
<arch>/image.tar, <arch>/sbom.spdx.json, <arch>/sbom.cdx.json, and oci/
(multi-arch) with --arch all. The same as runit-ts-image build.

Builds OUT/initramfs.img (deterministic newc cpio: sorted, mtime 0 or
$SOURCE_DATE_EPOCH, owner root), copies the kernel to OUT/vmlinuz and writes the
kernel command line to OUT/cmdline. The binaries (runit-ts, runit-ts.node,
runit) are taken from --bin DIR, default out/ARCH (make build puts them there).
The compression defaults to $COMPRESS or none: under TCG an uncompressed
initramfs boots fastest (measured: none 7.2 s, gzip 9.2 s, zstd 9.7 s, xz 20.9 s
to stage 1 on x86_64).
--outputs (default initramfs) is a comma list: disk adds OUT/disk.img
(GPT: an EFI system partition and an ext4 root), OUT/root.ext4, OUT/early.img and
OUT/disk.cmdline (spec field "disk": size, esp, readonly). exedisk writes
OUT/exedisk.img (the initramfs without the executable, ~8 MiB), OUT/exe.erofs (the
executable's directory, an uncompressed erofs attached as a read-only disk and mounted
by the early stage) and OUT/exedisk.cmdline (x86_64 also exedisk-pmem.cmdline: the
same file as virtio-pmem with DAX); see README "Executable on a read-only disk".
`;

function say(m: string): void {
  process.stderr.write(`[image] ${m}\n`);
}

export async function compressFile(src: string, dest: string, how: Compression): Promise<void> {
  if (how === 'none') {
    renameSync(src, dest);
    return;
  }
  const [cmd, ...args] = COMPRESSORS[how];
  await execa(cmd!, args, { inputFile: src, stdout: { file: dest } });
  rmSync(src);
}

/** What to boot from a built image directory: on x86_64 the PVH vmlinux when present. */
export function bootFiles(dir: string, arch: Arch): { kernel: string; initrd: string; append: string } {
  const vmlinux = join(dir, 'vmlinux');
  return {
    kernel: arch === 'x86_64' && existsSync(vmlinux) ? vmlinux : join(dir, 'vmlinuz'),
    initrd: join(dir, 'initramfs.img'),
    append: readFileSync(join(dir, 'cmdline'), 'utf8').trim(),
  };
}

export async function buildImage(spec: ImageSpec, out: string, compress: Compression, binDir = join(repoRoot, 'out', spec.arch), given?: Entry[]): Promise<void> {
  const t0 = Date.now();
  mkdirSync(out, { recursive: true });
  const entries = given ?? rootfs(spec, binDir);
  const mtime = Number(process.env.SOURCE_DATE_EPOCH ?? 0);
  const raw = join(out, 'initramfs.cpio.tmp');
  await writeCpio(raw, entries, mtime);
  const rawSize = statSync(raw).size;
  const img = join(out, 'initramfs.img');
  await compressFile(raw, `${img}.tmp`, compress);
  renameSync(`${img}.tmp`, img);
  copyFileSync(kernelImage(spec.arch), join(out, 'vmlinuz'));
  // x86_64: also the ELF vmlinux inside the bzImage; QEMU boots it through its PVH entry,
  // skipping firmware and in-guest decompression (measured 3.6 s vs 9.4 s to stage 1, TCG)
  if (spec.arch === 'x86_64') await extractVmlinux(join(out, 'vmlinuz'), join(out, 'vmlinux'));
  writeFileSync(join(out, 'cmdline'), imageCmdline(spec.arch, spec.cmdline) + '\n');
  say(
    `${spec.arch}: ${entries.length} entries, cpio ${(rawSize / 1048576).toFixed(1)} MiB, ` +
      `initramfs.img (${compress}) ${(statSync(img).size / 1048576).toFixed(1)} MiB in ${((Date.now() - t0) / 1000).toFixed(1)} s`,
  );
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      arch: { type: 'string' },
      spec: { type: 'string' },
      out: { type: 'string' },
      compress: { type: 'string' },
      bin: { type: 'string' },
      outputs: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(HELP);
    return;
  }
  const outputs = (values.outputs ?? process.env.OUTPUTS ?? 'initramfs').split(',').filter(Boolean);
  if (values.arch === 'all' || outputs.some((o) => !(BOOT_OUTPUTS as readonly string[]).includes(o))) {
    // the container outputs (and ARCH=all) go through the spec and the packers
    const { buildOutputs } = await import('./outputs.ts');
    const { loadSpec, defaultSpec, OUTPUTS, SpecError } = await import('./spec.ts');
    const bad = outputs.find((o) => !(OUTPUTS as readonly string[]).includes(o));
    if (bad) throw new SpecError(`--outputs: unknown output ${bad} (expected a comma list of: ${OUTPUTS.join(', ')})`);
    const arches = values.arch === 'all' ? [...ARCHES] : values.arch ? [values.arch as Arch] : undefined;
    if (arches && !arches.every((a) => ARCHES.includes(a))) throw new Error(`unknown arch ${values.arch} (x86_64, aarch64 or all)`);
    const spec = values.spec ? loadSpec(values.spec, { repoServices: join(repoRoot, 'services') }) : defaultSpec(outputs as never, arches ?? [requireHostArch()]);
    if (arches) spec.arches = arches;
    if (values.outputs || process.env.OUTPUTS || !values.spec) spec.outputs = outputs as typeof spec.outputs;
    const out = values.out ?? join(repoRoot, 'out');
    await buildOutputs(spec, { out, binDir: (a) => values.bin ?? join(repoRoot, 'out', a), compress: (values.compress ?? process.env.COMPRESS ?? 'none') as Compression });
    return;
  }
  const spec: ImageSpec = values.spec ? (JSON.parse(readFileSync(values.spec, 'utf8')) as ImageSpec) : { arch: requireHostArch() };
  if (values.arch) spec.arch = values.arch as Arch;
  if (!ARCHES.includes(spec.arch)) throw new Error(`unknown arch ${spec.arch} (x86_64 or aarch64)`);
  const compress = (values.compress ?? process.env.COMPRESS ?? 'none') as Compression;
  if (!['none', 'lz4', 'gzip', 'zstd', 'xz'].includes(compress)) throw new Error(`unknown compression ${compress}`);
  for (const o of outputs) if (!(BOOT_OUTPUTS as readonly string[]).includes(o)) throw new Error(`unknown output ${o} (${BOOT_OUTPUTS.join(', ')})`);
  const out = values.out ?? join(repoRoot, 'out', spec.arch);
  const bin = values.bin ?? join(repoRoot, 'out', spec.arch);
  if (outputs.includes('initramfs')) await buildImage(spec, out, compress, bin);
  if (outputs.includes('disk')) await buildDisk(spec, out, bin);
  if (outputs.includes('exedisk')) await buildExeDisk(spec, out, bin);
}

if (process.argv[1] && import.meta.url === `file://${process.argv[1]}`) {
  main().catch((e: unknown) => {
    say(`error: ${e instanceof Error ? e.message : String(e)}`);
    process.exit(1);
  });
}
