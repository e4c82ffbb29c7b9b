// runit-ts-image: the image builder's one front end (scripts/runit-ts-image runs it; so
// do `make image` and the Makefile's out/ARCH/{initramfs,disk,exedisk}.img targets).
//   runit-ts-image build [SPEC] --out DIR [--bin DIR] [--arch LIST|all] [--outputs LIST] [--compress C]
//   runit-ts-image check SPEC [--arch LIST|all] [--outputs LIST]
//   runit-ts-image lock SPEC [--arch LIST|all] [--bin DIR]
//   runit-ts-image boot DIR [--arch A] [--disk direct|uefi|uboot | --exedisk blk|pmem] [--write]
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { repoRoot } from './inputs.ts';
import { ARCHES, parseArch, requireHostArch, type Arch } from '../src/lib/platform.ts';
import { buildOutputs } from './outputs.ts';
import { DebianError } from './debian/mmdebstrap.ts';
import { COMPRESSIONS, parseCompression } from './packers/initramfs.ts';
import { defaultSpec, loadSpec, missingBinary, OUTPUTS, SpecError, type Output, type SpecOverrides } from './spec.ts';

export const HELP = `usage: runit-ts-image build SPEC --out DIR [--bin DIR] [--arch LIST|all] [--outputs LIST]
                            [--compress ${COMPRESSIONS.join('|')}]
       runit-ts-image build --out DIR [same options]      (the default image)
       runit-ts-image check SPEC [--arch LIST|all] [--outputs LIST]
       runit-ts-image lock SPEC [--arch LIST|all] [--bin DIR]
       runit-ts-image boot DIR [--arch ARCH] [--disk direct|uefi|uboot | --exedisk blk|pmem]
                           [--write] [--memory MiB]

Builds the images a spec describes (YAML or JSON; fields in README.md, "Container
base image" and "Image spec"); without SPEC the default image (the one 'make image'
builds: the service catalogue's default set, for this machine's arch, as an
initramfs). For each arch of the spec (or --arch x86_64,aarch64, or all) it writes,
as the spec's outputs (or --outputs, a comma list of ${OUTPUTS.join(', ')}) ask,
every one of them from the same entries:
  DIR/<arch>/initramfs.img    bootable initramfs, with vmlinuz (x86_64: also vmlinux,
                              booted by QEMU's PVH entry) and cmdline (initramfs)
  DIR/<arch>/disk.img         GPT disk: ESP (kernel, early initramfs, boot loaders)
                              and the root file system; root.ext4 (or root.erofs),
                              early.img, disk.cmdline (disk)
  DIR/<arch>/exedisk.img      the initramfs without the executable, which is on
                              exe.erofs, a read-only disk the early stage mounts;
                              exedisk.cmdline (x86_64: exedisk-pmem.cmdline) (exedisk)
  DIR/<arch>/rootfs.tar       rootfs tarball (tar)
  DIR/<arch>/oci/             OCI image layout, tag = the spec's tag (oci)
  DIR/<arch>/image.tar        docker-archive for podman load / docker load (docker)
  DIR/<arch>/overlay.tar      runit-ts for an existing image: one layer of /opt/runit-ts
                              (and /run/runit-ts), entry point /opt/runit-ts/bin/container-init;
                              overlay-oci/ holds it as an OCI layout (overlay)
  DIR/<arch>/sbom.spdx.json   SPDX 2.3 and CycloneDX 1.5 SBOMs of the root file system (with
                              every output but overlay; a Debian base: every locked package)
  DIR/<arch>/sbom.cdx.json
  DIR/oci/                    multi-arch OCI layout when several arches are built
Outputs are byte-for-byte reproducible; times come from SOURCE_DATE_EPOCH (default 0).
The initramfs is compressed with --compress (default $COMPRESS, else none: under TCG
an uncompressed initramfs boots fastest). The runit-ts binaries of each arch are
taken from --bin DIR/<arch> (default: the checkout's out/<arch>, made by
'make build ARCH=<arch>'; exedisk also needs out/<arch>/early).
'check' validates a spec and exits. 'lock' resolves a Debian-based spec's packages
(base: debian) against Debian's archives with apt, through mmdebstrap, and writes
SPEC.lock.json beside the spec: every package, version and sha256 per arch (the
arches of the spec, or --arch; other arches already locked are kept); the .debs go
to the cache, and every build installs exactly the locked ones (offline once cached). 'boot' boots what build wrote for one arch
(DIR/<arch>, or DIR itself if it holds the files) in QEMU with the console on this
terminal: the initramfs; with --disk the disk image by QEMU's kernel loader
(direct), UEFI firmware (uefi) or U-Boot (uboot, aarch64); with --exedisk the
exedisk image, exe.erofs on virtio-blk (blk) or virtio-pmem with DAX (pmem, x86_64).
Disk writes go to a throw-away overlay unless --write. Ctrl-a x quits QEMU.
Exit codes: 0 done, 1 bad spec or failed build, 2 usage; boot: QEMU's.
`;

/** The front end's own lines (the packers' say "[image]"). */
const say = (m: string) => process.stderr.write(`[runit-ts-image] ${m}\n`);

/** --arch: a comma list of arches, or all. */
function parseArches(v: string): Arch[] {
  if (v === 'all') return [...ARCHES];
  const arches = v.split(',');
  const bad = arches.find((a) => !(ARCHES as readonly string[]).includes(a));
  if (bad) throw new SpecError(`--arch: unknown arch ${bad} (expected ${ARCHES.join(', ')} or all)`);
  return arches as Arch[];
}

/** --outputs: a comma list of OUTPUTS. */
function parseOutputs(v: string): Output[] {
  const outs = v.split(',').filter(Boolean);
  const bad = outs.find((o) => !(OUTPUTS as readonly string[]).includes(o));
  if (bad) throw new SpecError(`--outputs: unknown output ${bad} (expected a comma list of: ${OUTPUTS.join(', ')})`);
  return outs as Output[];
}

/** Run one command line; resolves with the exit code. */
export async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      out: { type: 'string', short: 'o' },
      bin: { type: 'string' },
      arch: { type: 'string' },
      outputs: { type: 'string' },
      compress: { type: 'string' },
      disk: { type: 'string' },
      exedisk: { type: 'string' },
      write: { type: 'boolean' },
      memory: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const [cmd, file, ...rest] = positionals;
  if (cmd === 'boot' && file && !rest.length) return boot(file, values);
  if (!((cmd === 'build' && !rest.length) || ((cmd === 'check' || cmd === 'lock') && file && !rest.length))) {
    process.stderr.write(HELP);
    return 2;
  }
  const overrides: SpecOverrides = {
    ...(values.arch ? { arches: parseArches(values.arch) } : {}),
    ...(values.outputs ? { outputs: parseOutputs(values.outputs) } : {}),
  };
  const spec = file
    ? loadSpec(file, { repoServices: join(repoRoot, 'services'), ...overrides })
    : defaultSpec(overrides.outputs, overrides.arches ?? [requireHostArch()]);
  if (cmd === 'check') {
    process.stdout.write(`${file}: ok (${spec.name}:${spec.tag}, ${spec.arches.join(', ')}: ${spec.outputs.join(', ')})\n`);
    return 0;
  }
  const bin = values.bin ? resolve(values.bin) : join(repoRoot, 'out');
  if (cmd === 'lock') {
    if (!spec.debian) throw new SpecError(`${file}: only a Debian-based spec (base: debian) has a lock`);
    const missing = spec.arches.map((a) => missingBinary(join(bin, a))).find(Boolean);
    if (missing) throw new SpecError(`${file}: ${missing} is missing (runit-ts-init is built from it; run: make build)`);
    const { lockSpec } = await import('./debian/image.ts');
    const { lockPath } = await import('./debian/lock.ts');
    await lockSpec(spec.file, spec.debian, spec.arches, (a) => join(bin, a), say);
    say(`wrote ${lockPath(spec.file)}`);
    return 0;
  }
  if (!values.out) {
    process.stderr.write('runit-ts-image: --out DIR is required\n');
    return 2;
  }
  const compress = parseCompression(values.compress ?? (process.env.COMPRESS || 'none'));
  const t0 = Date.now();
  await buildOutputs(spec, { out: resolve(values.out), binDir: (a) => join(bin, a), compress, say });
  say(`done in ${((Date.now() - t0) / 1000).toFixed(1)} s: ${resolve(values.out)}`);
  return 0;
}

if (process.argv[1] && import.meta.url === `file://${process.argv[1]}`) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e: unknown) => {
      const oneLine = e instanceof SpecError || e instanceof DebianError;
      process.stderr.write(`runit-ts-image: ${oneLine ? '' : 'error: '}${e instanceof Error ? e.message : String(e)}\n`);
      process.exit(1);
    },
  );
}

/** runit-ts-image boot DIR: the built image of one arch, on this terminal. */
async function boot(dir: string, values: { arch?: string; disk?: string; exedisk?: string; write?: boolean; memory?: string }): Promise<number> {
  const { existsSync } = await import('node:fs');
  const { bootInteractive, BootSetupError } = await import('./boot.ts');
  const arch = values.arch ? parseArch(values.arch) : requireHostArch();
  // build writes DIR/<arch>/...; a directory of one arch's files works as well
  const here = existsSync(join(dir, arch)) ? join(dir, arch) : dir;
  if (values.memory !== undefined && !/^\d+$/.test(values.memory)) throw new SpecError(`--memory: a number of MiB, not ${values.memory}`);
  if (values.disk && values.exedisk) throw new SpecError(`--disk ${values.disk} and --exedisk ${values.exedisk}: one image at a time`);
  try {
    return await bootInteractive({
      arch,
      dir: resolve(here),
      ...(values.disk ? { disk: values.disk } : {}),
      ...(values.exedisk ? { exedisk: values.exedisk } : {}),
      write: values.write === true,
      ...(values.memory ? { memory: Number(values.memory) } : {}),
    });
  } catch (e) {
    if (!(e instanceof BootSetupError)) throw e;
    say(`error: ${e.message}`);
    return 1;
  }
}
