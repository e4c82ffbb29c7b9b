// Reproducibility: the spec of the shared test image built again, with another TZ,
// umask, working directory and wall clock (faketime), gives byte-identical outputs for
// both arches: rootfs tarball, OCI blobs and index, docker archive, SBOMs, initramfs.
// From the executables already built; that they too come out the same: test/repro.
import t from 'tap';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { have, haveImage, IMAGE_DIR, repo } from '../lib/container.ts';
import { treeFiles } from '../lib/host.ts';

const digest = (p: string) => createHash('sha256').update(readFileSync(p)).digest('hex');

const skip = haveImage() || (!(await have('faketime')) && 'faketime is not installed (scripts/setup installs it)');
if (skip) t.plan(0, skip);
else {
  t.test('a second build elsewhere, later, in another time zone and umask is byte-identical', async (t) => {
    const cwd = mkdtempSync(join(tmpdir(), 'runit-ts-repro-'));
    t.teardown(() => rmSync(cwd, { recursive: true, force: true }));
    const out = join(cwd, 'out');
    const r = await execa(
      'sh',
      ['-c', `umask 077 && exec faketime '2031-07-04 12:34:56' "$0" build "$1" --out out`, join(repo, 'scripts', 'runit-ts-image'), join(repo, 'test', 'fixtures', 'container', 'spec.yaml')],
      { cwd, env: { TZ: 'Pacific/Kiritimati', LC_ALL: 'C' }, all: true, reject: false, timeout: 300_000 },
    );
    if (r.exitCode !== 0) t.comment(r.all);
    t.equal(r.exitCode, 0, 'the second build succeeded');
    const want = treeFiles(IMAGE_DIR).filter((f) => !f.startsWith('.'));
    const got = treeFiles(out);
    t.same(got, want, 'the same files');
    for (const kind of ['rootfs.tar', 'image.tar', 'initramfs.img', 'sbom.spdx.json', 'sbom.cdx.json', 'oci/index.json'])
      for (const arch of ['x86_64', 'aarch64']) t.ok(got.includes(`${arch}/${kind}`), `${arch}/${kind} built`);
    const differ = got.filter((f) => want.includes(f) && digest(join(out, f)) !== digest(join(IMAGE_DIR, f)));
    t.same(differ, [], `all ${got.length} files byte-identical (both arches, OCI blobs, multi-arch index included)`);
  });
}
