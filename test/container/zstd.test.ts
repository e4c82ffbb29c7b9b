// `compression: zstd`: the OCI layers (the image's and the overlay's) are zstd frames
// with media type application/vnd.oci.image.layer.v1.tar+zstd, decompress to the layer
// tarball (the diff_id), are the same bytes when compressed again, and podman (4.3)
// loads them both ways: the docker-archive with podman load, the OCI layout with skopeo.
import t from 'tap';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { zstdDecompressSync } from 'node:zlib';
import { execa } from 'execa';
import { compressLayer, MT } from '../../image/packers/oci.ts';
import { have, podman, repo } from '../lib/container.ts';

/** The first four bytes of every zstd frame. */
const ZSTD_MAGIC = Buffer.from([0x28, 0xb5, 0x2f, 0xfd]);
const SPEC = `name: rtt-zstd
tag: test
arches: [x86_64]
outputs: [docker, oci, overlay]
compression: zstd
inline:
  - name: hello
    files:
      run: |
        #!/bin/sh
        echo "hello: up"
        exec sleep 100000
`;

interface Manifest {
  config: { digest: string };
  layers: Array<{ mediaType: string; digest: string }>;
}

const skip = !(await have('podman')) ? 'podman is not installed' : !(await have('skopeo')) ? 'skopeo is not installed' : false;
if (skip) t.plan(0, skip);
else {
  const work = mkdtempSync(join(repo, 'out', 'zstd-test-'));
  const images = ['localhost/rtt-zstd:test', 'localhost/rtt-zstd:oci', 'localhost/rtt-zstd:overlay'];
  t.teardown(async () => {
    await podman(['rmi', '-f', ...images], { reject: false });
    rmSync(work, { recursive: true, force: true });
  });
  writeFileSync(join(work, 'spec.yaml'), SPEC);
  const r = await execa(process.execPath, [join(repo, 'image', 'cli.ts'), 'build', join(work, 'spec.yaml'), '--out', join(work, 'out')], { all: true, reject: false, timeout: 600_000 });
  const dir = join(work, 'out', 'x86_64');

  t.test('the build with compression: zstd', async (t) => {
    t.equal(r.exitCode, 0, r.all);
    t.match(r.all, /compressing the layer \(zstd\)/);
  });

  for (const [what, layout, tarFile] of [['image', 'oci', undefined], ['overlay', 'overlay-oci', 'overlay.tar']] as const) {
    t.test(`${what}: zstd layer, media type, diff_id, same bytes again`, async (t) => {
      const blob = (d: string) => readFileSync(join(dir, layout, 'blobs', 'sha256', d.slice('sha256:'.length)));
      const index = JSON.parse(readFileSync(join(dir, layout, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string }> };
      const manifest = JSON.parse(blob(index.manifests[0]!.digest).toString()) as Manifest;
      const config = JSON.parse(blob(manifest.config.digest).toString()) as { rootfs: { diff_ids: string[] } };
      const layer = manifest.layers[0]!;
      t.equal(layer.mediaType, MT.layerZstd, 'OCI zstd media type');
      const data = blob(layer.digest);
      t.same(data.subarray(0, 4), ZSTD_MAGIC, 'a zstd frame');
      const tar = zstdDecompressSync(data);
      const again = compressLayer(tar, 'zstd');
      t.equal(again.digest, layer.digest, 'compressing the tarball again gives the same bytes');
      t.equal(compressLayer(tar, 'none').digest, config.rootfs.diff_ids[0], 'it decompresses to the diff_id');
      if (tarFile) t.ok(tar.equals(readFileSync(join(dir, tarFile))), `it is ${tarFile}`);
      t.comment(`${what}: tar ${(tar.length / 1048576).toFixed(1)} MiB, zstd layer ${(data.length / 1048576).toFixed(1)} MiB`);
    });
  }

  t.test('podman loads the zstd image (docker-archive and OCI layout) and runs it', async (t) => {
    await podman(['load', '-q', '-i', join(dir, 'image.tar')]);
    const run = await podman(['run', '--rm', '--network', 'none', images[0]!, 'sh', '-c', 'sleep 1; sv status hello; exit 3'], { reject: false });
    t.equal(run.exitCode, 3, 'the main command exit code');
    t.match(run.stdout, /run: hello/, 'the service ran');
    await execa('skopeo', ['copy', '-q', `oci:${join(dir, 'oci')}:test`, `containers-storage:${images[1]!}`]);
    await execa('skopeo', ['copy', '-q', `oci:${join(dir, 'overlay-oci')}:test`, `containers-storage:${images[2]!}`]);
    const ls = (await podman(['run', '--rm', '--network', 'none', '--entrypoint', '/opt/runit-ts/bin/sv', images[2]!, '-V'], { reject: false })).all ?? '';
    t.match(ls, /runit-ts/, 'the overlay image (its layer alone) runs sv through the launcher');
    const oci = await podman(['run', '--rm', '--network', 'none', images[1]!, 'sh', '-c', 'exit 4'], { reject: false });
    t.equal(oci.exitCode, 4, 'the OCI layout copied by skopeo runs');
  });
}
