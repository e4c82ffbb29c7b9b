// runit-ts-image: the user-facing image builder.
//   runit-ts-image build SPEC.yaml --out DIR [--bin DIR] [--arch A,...] [--outputs LIST]
//   runit-ts-image check SPEC.yaml
//   runit-ts-image boot DIR [--arch A] [--disk direct|uefi|uboot] [--write]
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { repoRoot } from './inputs.ts';
import { ARCHES, type Arch } from '../src/lib/platform.ts';
import { buildOutputs } from './outputs.ts';
import { loadSpec, OUTPUTS, SpecError, type Output } from './spec.ts';

export const HELP = `usage: runit-ts-image build SPEC --out DIR [--bin DIR] [--arch LIST] [--outputs LIST]
       runit-ts-image check SPEC
       runit-ts-image boot DIR [--arch ARCH] [--disk direct|uefi|uboot] [--write] [--memory MiB]

Builds the images a spec describes (YAML or JSON; fields in README.md, "Container
base image"). For each arch of the spec (or --arch x86_64,aarch64) it writes, as
the spec's outputs (or --outputs, a comma list of ${OUTPUTS.join(', ')}) ask:
  DIR/<arch>/rootfs.tar       rootfs tarball (tar)
  DIR/<arch>/oci/             OCI image layout, tag = the spec's tag (oci)
  DIR/<arch>/image.tar        docker-archive for podman load / docker load (docker)
  DIR/<arch>/sbom.spdx.json   SPDX 2.3 and CycloneDX 1.5 SBOMs (with any of those)
  DIR/<arch>/sbom.cdx.json
  DIR/<arch>/initramfs.img    bootable initramfs, vmlinuz, cmdline (initramfs)
  DIR/oci/                    multi-arch OCI layout when several arches are built
Outputs are byte-for-byte reproducible; times come from SOURCE_DATE_EPOCH (default 0).
The runit-ts binaries of each arch are taken from --bin DIR/<arch> (default: the
checkout's out/<arch>, made by 'make build ARCH=<arch>').
  DIR/<arch>/disk.img         GPT disk: ESP (kernel, early initramfs, boot loaders)
                              and the root file system; root.ext4, early.img (disk)
'check' validates a spec and exits. 'boot' boots what build wrote for one arch
(DIR/<arch>, or DIR itself if it holds the files) in QEMU with the console on this
terminal: the initramfs, or with --disk the disk image by QEMU's kernel loader
(direct), UEFI firmware (uefi) or U-Boot (uboot, aarch64); disk writes go to a
throw-away overlay unless --write. Ctrl-a x quits QEMU.
Exit codes: 0 done, 1 bad spec or failed build, 2 usage; boot: QEMU's.
`;

const say = (m: string) => process.stderr.write(`[runit-ts-image] ${m}\n`);

export async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      out: { type: 'string', short: 'o' },
      bin: { type: 'string' },
      arch: { type: 'string' },
      outputs: { type: 'string' },
      disk: { type: 'string' },
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
  if ((cmd !== 'build' && cmd !== 'check') || !file || rest.length) {
    process.stderr.write(HELP);
    return 2;
  }
  const spec = loadSpec(file, { repoServices: join(repoRoot, 'services') });
  if (values.arch) {
    const arches = values.arch.split(',');
    const bad = arches.find((a) => !(ARCHES as readonly string[]).includes(a));
    if (bad) throw new SpecError(`--arch: unknown arch ${bad} (expected ${ARCHES.join(', ')})`);
    spec.arches = arches as Arch[];
  }
  if (values.outputs) {
    const outs = values.outputs.split(',');
    const bad = outs.find((o) => !(OUTPUTS as readonly string[]).includes(o));
    if (bad) throw new SpecError(`--outputs: unknown output ${bad} (expected ${OUTPUTS.join(', ')})`);
    spec.outputs = outs as Output[];
  }
  if (cmd === 'check') {
    process.stdout.write(`${file}: ok (${spec.name}:${spec.tag}, ${spec.arches.join(', ')}: ${spec.outputs.join(', ')})\n`);
    return 0;
  }
  if (!values.out) {
    process.stderr.write('runit-ts-image: --out DIR is required\n');
    return 2;
  }
  const t0 = Date.now();
  const bin = values.bin ? resolve(values.bin) : join(repoRoot, 'out');
  await buildOutputs(spec, { out: resolve(values.out), binDir: (a) => join(bin, a), say });
  say(`done in ${((Date.now() - t0) / 1000).toFixed(1)} s: ${resolve(values.out)}`);
  return 0;
}

if (process.argv[1] && import.meta.url === `file://${process.argv[1]}`) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e: unknown) => {
      process.stderr.write(`runit-ts-image: ${e instanceof SpecError ? '' : 'error: '}${e instanceof Error ? e.message : String(e)}\n`);
      process.exit(1);
    },
  );
}

/** runit-ts-image boot DIR: the built image of one arch, on this terminal. */
async function boot(dir: string, values: { arch?: string; disk?: string; write?: boolean; memory?: string }): Promise<number> {
  const { existsSync } = await import('node:fs');
  const { bootInteractive, BootSetupError } = await import('./boot.ts');
  const { requireHostArch, parseArch } = await import('../src/lib/platform.ts');
  const arch = values.arch ? parseArch(values.arch) : requireHostArch();
  // build writes DIR/<arch>/...; a directory of one arch's files works as well
  const here = existsSync(join(dir, arch)) ? join(dir, arch) : dir;
  if (values.memory !== undefined && !/^\d+$/.test(values.memory)) throw new SpecError(`--memory: a number of MiB, not ${values.memory}`);
  try {
    return await bootInteractive({ arch, dir: resolve(here), ...(values.disk ? { disk: values.disk } : {}), write: values.write === true, ...(values.memory ? { memory: Number(values.memory) } : {}) });
  } catch (e) {
    if (!(e instanceof BootSetupError)) throw e;
    say(`error: ${e.message}`);
    return 1;
  }
}
