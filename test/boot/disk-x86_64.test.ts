// The disk output on x86_64: the boot paths (test/lib/disk-suite.ts), then bad input and
// reproducibility, which need no second arch.
import t from 'tap';
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { buildDisk, diskBoot, DiskError } from '../../image/packers/disk.ts';
import { resolveImage } from '../../image/resolve.ts';
import { boot } from '../../src/harness/index.ts';
import { diskSpec, diskSuite } from '../lib/disk-suite.ts';
import { repo } from '../lib/host.ts';

diskSuite('x86_64');

const bin = join(repo, 'out', 'x86_64');
const node = process.execPath;

async function sha256(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const c of createReadStream(file)) h.update(c as Buffer);
  return h.digest('hex');
}

t.test('x86_64: two builds of the disk are byte-identical', async (t) => {
  const work = mkdtempSync(join(tmpdir(), 'runit-ts-repro-'));
  t.teardown(() => rmSync(work, { recursive: true, force: true }));
  const sums: Record<string, string[]> = { 'disk.img': [], 'root.ext4': [], 'early.img': [] };
  for (const n of ['a', 'b']) {
    await buildDisk(resolveImage(diskSpec('x86_64'), bin), join(work, n));
    for (const f of Object.keys(sums)) sums[f]!.push(await sha256(join(work, n, f)));
    if (n === 'a') await new Promise((r) => setTimeout(r, 1100)); // a clock that moved must not show
  }
  for (const [f, [a, b]] of Object.entries(sums)) t.equal(a, b, `${f}: sha256 ${a} both times`);
});

t.test('bad input: one clear error line, nothing half-written', async (t) => {
  const work = mkdtempSync(join(tmpdir(), 'runit-ts-bad-'));
  t.teardown(() => rmSync(work, { recursive: true, force: true }));
  // files that do not fit the size
  await t.rejects(buildDisk(resolveImage({ ...diskSpec('x86_64'), disk: { size: '96M' } }, bin), join(work, 'small')), {
    message: /^the root file system does not fit: \d+ MiB of files in a \d+ MiB file system \(raise disk.size\)$/,
  });
  t.same(readdirSync(join(work, 'small')), [], 'nothing left in the output directory');
  // the CLI: one line on stderr, exit 1
  writeFileSync(join(work, 'small.json'), JSON.stringify({ arch: 'x86_64', disk: { size: '96M' } }));
  const r = await execa(node, [join(repo, 'image', 'cli.ts'), 'build', join(work, 'small.json'), '--arch', 'x86_64', '--outputs', 'disk', '--out', join(work, 'cli')], {
    reject: false,
  });
  t.equal(r.exitCode, 1, 'runit-ts-image build exits 1');
  t.match(r.stderr.trim().split('\n').pop(), /^runit-ts-image: error: the root file system does not fit/, 'its last line says why');
  t.same(existsSync(join(work, 'cli')) ? readdirSync(join(work, 'cli')) : [], [], 'nothing left by the CLI either');
  // an unknown boot path, missing firmware
  t.throws(() => diskBoot(join(repo, 'out', 'x86_64'), 'x86_64', 'uboot'), new DiskError('unknown boot path uboot for x86_64 (direct, uefi)'));
  const b = await execa(node, [join(repo, 'scripts', 'boot.ts'), '--arch', 'x86_64', '--disk', 'floppy'], { reject: false });
  t.equal(b.exitCode, 1, 'scripts/boot.ts --disk floppy exits 1');
  t.equal(b.stderr.trim().split('\n').length, 1, `one line: ${b.stderr.trim()}`);
  await buildDisk(resolveImage(diskSpec('x86_64'), bin), join(work, 'ok'));
  t.throws(() => diskBoot(join(work, 'ok'), 'x86_64', 'uefi', { uefi: { code: join(work, 'no', 'OVMF_CODE.fd'), vars: join(work, 'no', 'OVMF_VARS.fd'), pkg: 'ovmf' }, uboot: '' }), {
    message: /^UEFI firmware .*OVMF_CODE.fd is missing: install the Debian package ovmf/,
  });

  // a root device that never appears: the early stage says so and opens a rescue shell
  const d = diskBoot(join(work, 'ok'), 'x86_64', 'direct');
  const m = await boot({
    arch: 'x86_64', kernel: d.kernel!, initrd: d.initrd!, drives: [{ file: join(work, 'ok', 'disk.img') }],
    append: d.append!.replace(/root=PARTUUID=\S+/, 'root=PARTUUID=00000000-0000-4000-8000-000000000000').replace('rootwait', 'rootwait=3'),
    consoleLog: join(repo, 'out', 'test-logs', 'x86_64-disk-noroot.log'),
  });
  t.teardown(() => m.dispose());
  await m.waitFor('early: root device PARTUUID=00000000-0000-4000-8000-000000000000 did not appear within 3 s', { timeout: 120_000 });
  await m.waitFor('early: rescue shell', { timeout: 30_000 });
  const r2 = await m.run('ls /sys/block | grep -c vda', { timeout: 30_000 });
  t.equal(r2.output.trim(), '1', 'the rescue shell answers (and sees the disk)');
  await m.sendLine('poweroff -f');
  const exit = await m.waitForExit({ timeout: 30_000 });
  t.equal(exit.reason, 'guest-shutdown', 'poweroff -f from the rescue shell');
  t.same(readdirSync(join(work, 'ok')).filter((n) => n.startsWith('.')), [], 'no temporary directory left');
});
