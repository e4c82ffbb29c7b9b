// bench/debian.ts: a Debian-based image (image/specs/debian.yaml: runit-services, cron,
// rsyslog) booted with runit-ts as its runit, against the same packages booted with
// Debian's own C runit (bench/specs/debian-c-runit.yaml: runit-init, which brings Debian's
// runit, its /etc/runit stages and what they need: initscripts, getty-run), same kernel,
// same disk layout, same boot path (the disk, booted directly), in the same run, the two
// in turns. The figure is QEMU start -> cron and rsyslog up (sv check by the image's own
// sv, from a service that then writes a marker to the console), and the
// build: cold (nothing cached but the .debs) and warm, and the sizes of each output (the
// rootfs tar, the OCI layer gzip-compressed, the disk and what of it is allocated) beside
// the busybox base's (the default image's services, built to the same outputs).
//   node bench/debian.ts [--arch x86_64|aarch64] [--runs N]
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { execa } from 'execa';
import { repoRoot } from '../image/inputs.ts';
import { buildOutputs } from '../image/outputs.ts';
import { diskBoot } from '../image/packers/disk.ts';
import { defaultSpec, loadSpec, type Output, type ResolvedSpec } from '../image/spec.ts';
import { boot } from '../src/harness/index.ts';
import { parseArch, requireHostArch, type Arch } from '../src/lib/platform.ts';
import { fmt, ratio, runsOption, summary } from './stats.ts';

const HELP = `usage: node bench/debian.ts [--arch x86_64|aarch64] [--runs N]
Boots the Debian example image with runit-ts and with Debian's C runit, N times each in
turns, and prints QEMU start -> cron and rsyslog up (median, spread, ratio), the build
times (cold base and warm) and the output sizes.
`;
const { values } = parseArgs({ options: { arch: { type: 'string' }, runs: { type: 'string' }, help: { type: 'boolean', short: 'h' } } });
if (values.help) {
  process.stdout.write(HELP);
  process.exit(0);
}
const arch: Arch = values.arch ? parseArch(values.arch) : requireHostArch();
const runs = runsOption(values.runs, 3);
/**
 * The marker the service writes to the console once cron and rsyslog are up, straight to
 * /dev/console (a line written through /dev/kmsg never reached the console of the image
 * with Debian's C runit and its initscripts).
 */
const MARK = 'BENCH-ALL-UP';
/** How long a boot may take to reach the marker (ms). */
const BOOT_TIMEOUT_MS = 600_000;

/** A spec with the marker service added; the same services are checked in both images. */
function withMarker(file: string, outputs: Output[]): ResolvedSpec {
  const spec = loadSpec(file, { repoServices: join(repoRoot, 'services'), arches: [arch], outputs });
  spec.image.inline = [
    ...(spec.image.inline ?? []),
    { name: 'bench-up', files: { run: `#!/bin/sh\nsv -w 600 check cron rsyslog >/dev/null 2>&1\nread up _ < /proc/uptime\necho "${MARK} $up" > /dev/console\nexec sleep 1000000\n` } },
  ];
  return spec;
}

const work = mkdtempSync(join(tmpdir(), 'runit-ts-bench-debian-'));
/** Each boot's console, kept for a look at where a boot's time went. */
const logs = join(repoRoot, 'out', 'bench-logs', 'debian');
mkdirSync(logs, { recursive: true });
process.on('exit', () => rmSync(work, { recursive: true, force: true }));
const variants = [
  { name: 'runit-ts', spec: join(repoRoot, 'image', 'specs', 'debian.yaml') },
  { name: "Debian's runit", spec: join(repoRoot, 'bench', 'specs', 'debian-c-runit.yaml') },
];
const say = (m: string) => process.stderr.write(`[bench] ${m}\n`);
const machine = `${(await execa('nproc')).stdout} cores, ${(await execa('sh', ['-c', "sed -n 's/^model name\\t: //p' /proc/cpuinfo | head -1"])).stdout || 'cpu unknown'}`;
process.stdout.write(`machine: ${machine}; ${arch} under ${process.arch === 'x64' && arch === 'x86_64' ? 'the host accelerator if KVM works, else TCG' : 'TCG'}; ${new Date().toISOString().slice(0, 10)}\n`);

/** The outputs each image is built to: the disk booted below, and those whose sizes are printed. */
const OUTPUTS: Output[] = ['disk', 'tar', 'oci'];

/** Bytes of the one layer of an OCI layout (gzip, the default compression). */
function layerBytes(oci: string): number {
  const blob = (digest: string) => join(oci, 'blobs', ...(digest.split(':') as [string, string]));
  const index = JSON.parse(readFileSync(join(oci, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string }> };
  const manifest = JSON.parse(readFileSync(blob(index.manifests[0]!.digest), 'utf8')) as { layers: Array<{ size: number }> };
  return manifest.layers[0]!.size;
}

/** One line of an image's build times and output sizes. */
async function sizes(name: string, out: string, times: string): Promise<void> {
  const d = join(out, arch);
  const mib = (bytes: number) => (bytes / 1048576).toFixed(1);
  const alloc = (await execa('du', ['-m', join(d, 'disk.img')])).stdout.split('\t')[0];
  process.stdout.write(
    `${name}: build ${times}; rootfs.tar ${mib(statSync(join(d, 'rootfs.tar')).size)} MiB; gzip layer ${mib(layerBytes(join(d, 'oci')))} MiB; ` +
      `disk.img ${(statSync(join(d, 'disk.img')).size / 1048576).toFixed(0)} MiB, ${alloc} MiB allocated\n`,
  );
}

// builds: ours cold (an empty Debian cache: every .deb downloaded, mmdebstrap installs
// them) and then warm (the built base from the cache); the reference warm (a first build,
// not timed, puts its base in the cache when it is not there yet)
const cold = join(work, 'debian-cache');
const binDir = (a: Arch) => join(repoRoot, 'out', a);
for (const v of variants) {
  const build = async () => {
    const t0 = performance.now();
    await buildOutputs(withMarker(v.spec, OUTPUTS), { out: join(work, v.name), binDir, say });
    return (performance.now() - t0) / 1000;
  };
  let coldS: number | undefined;
  if (v.name === 'runit-ts') {
    process.env.RUNIT_TS_DEBIAN_CACHE = cold;
    coldS = await build();
  } else await build();
  const warm = await build();
  delete process.env.RUNIT_TS_DEBIAN_CACHE;
  await sizes(v.name, join(work, v.name), `${coldS !== undefined ? `cold ${coldS.toFixed(1)} s, ` : ''}warm ${warm.toFixed(1)} s`);
}
{
  // the busybox base beside them: the default image's services, to the same outputs
  const t0 = performance.now();
  await buildOutputs(defaultSpec(OUTPUTS, [arch]), { out: join(work, 'busybox'), binDir, say });
  await sizes('the busybox base', join(work, 'busybox'), `${((performance.now() - t0) / 1000).toFixed(1)} s`);
}

const times: Record<string, number[]> = Object.fromEntries(variants.map((v) => [v.name, []]));
for (let i = 0; i < runs; i++) {
  // the order swaps every run: a boot right after another is not favoured
  for (const v of i % 2 ? [...variants].reverse() : variants) {
    const dir = join(work, v.name, arch);
    const b = diskBoot(dir, arch, 'direct');
    const m = await boot({ arch, kernel: b.kernel!, initrd: b.initrd!, append: b.append!, drives: [{ file: join(dir, 'disk.img'), snapshot: true }], memory: 1024, consoleLog: join(logs, `${arch}-${v.name.replace(/\W+/g, '-')}-${i}.log`) });
    try {
      const hit = await m.waitFor(new RegExp(`${MARK} [0-9.]+`), { timeout: BOOT_TIMEOUT_MS });
      times[v.name]!.push(hit.elapsed);
      say(`run ${i + 1} ${v.name}: ${hit.elapsed.toFixed(1)} s`);
    } finally {
      await m.dispose();
    }
  }
}
const [ours, ref] = variants.map((v) => summary(times[v.name]!));
process.stdout.write(`QEMU start -> cron and rsyslog up, median (min-max) of ${runs}:\n`);
process.stdout.write(`  runit-ts       ${fmt(ours!, 1)} s\n  Debian's runit ${fmt(ref!, 1)} s\n  ratio          ${ratio(ours!.median, ref!.median)}\n`);
