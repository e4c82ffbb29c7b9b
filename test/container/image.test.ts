// The test image's layouts and archives read by the real tools: skopeo inspects and
// copies them (digests checked), umoci unpacks each arch; the tarball's metadata; the
// SBOMs against the official SPDX 2.3 and CycloneDX 1.5 schemas.
import t from 'tap';
import { createHash } from 'node:crypto';
import { lstatSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { Ajv } from 'ajv';
import addFormats from 'ajv-formats';
import { extract } from 'tar-stream';
import { have, haveImage, IMAGE_DIR, json, repo } from '../lib/container.ts';

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const ARCH = { x86_64: 'amd64', aarch64: 'arm64' } as const;

interface Index {
  manifests: Array<{ mediaType: string; digest: string; platform?: { architecture: string }; annotations?: Record<string, string> }>;
}

const skip = haveImage() || (!(await have('skopeo')) && 'skopeo is not installed') || (!(await have('umoci')) && 'umoci is not installed');
if (skip) t.plan(0, skip);
else {
  const work = mkdtempSync(join(tmpdir(), 'runit-ts-image-'));
  t.teardown(() => rmSync(work, { recursive: true, force: true }));

  /** every blob of a layout or dir copy is named by its content's sha256: how many, and which are not */
  const checkBlobs = (dir: string) => {
    const all = readdirSync(dir).filter((f) => /^[0-9a-f]{64}$/.test(f));
    return { n: all.length, bad: all.filter((f) => sha256(readFileSync(join(dir, f))) !== f) };
  };

  for (const arch of ['x86_64', 'aarch64'] as const) {
    t.test(`${arch}: skopeo inspects the layout and the archive`, async (t) => {
      const layout = join(IMAGE_DIR, arch, 'oci');
      const index = json<Index>(join(layout, 'index.json'));
      t.equal(index.manifests.length, 1);
      t.equal(index.manifests[0]!.annotations?.['org.opencontainers.image.ref.name'], 'test');
      const insp = JSON.parse((await execa('skopeo', ['inspect', `oci:${layout}:test`])).stdout) as { Digest: string; Architecture: string; Os: string; Layers: string[] };
      t.equal(insp.Digest, index.manifests[0]!.digest, 'skopeo sees the manifest digest of index.json');
      t.equal(insp.Architecture, ARCH[arch]);
      t.equal(insp.Os, 'linux');
      const config = JSON.parse((await execa('skopeo', ['inspect', '--config', `oci:${layout}:test`])).stdout) as {
        rootfs: { diff_ids: string[] };
        history: unknown[];
        created: string;
        config: { Entrypoint: string[]; Env: string[]; WorkingDir: string; Labels: Record<string, string>; StopSignal: string; ExposedPorts: Record<string, unknown> };
      };
      const tar = readFileSync(join(IMAGE_DIR, arch, 'rootfs.tar'));
      t.same(config.rootfs.diff_ids, [`sha256:${sha256(tar)}`], 'diff_id is the sha256 of rootfs.tar');
      t.equal(config.created, '1970-01-01T00:00:00Z', 'created = SOURCE_DATE_EPOCH');
      t.equal(config.history.length, 1);
      t.same(config.config.Entrypoint, ['/sbin/container-init']);
      t.ok(config.config.Env.includes('GREETING=hello from the spec'), 'spec env in the config');
      t.equal(config.config.StopSignal, 'SIGTERM');
      t.same(Object.keys(config.config.ExposedPorts), ['8080/tcp']);
      t.equal(config.config.Labels['org.opencontainers.image.description'], 'runit-ts test image');
      t.same(checkBlobs(join(layout, 'blobs', 'sha256')), { n: 3, bad: [] }, 'layer, config, manifest, each matching its digest');

      const archive = join(IMAGE_DIR, arch, 'image.tar');
      const dconf = JSON.parse((await execa('skopeo', ['inspect', '--config', `docker-archive:${archive}`])).stdout) as typeof config;
      t.same(dconf.rootfs.diff_ids, config.rootfs.diff_ids, 'the docker archive holds the same image');
      const copied = join(work, `${arch}-from-archive`);
      await execa('skopeo', ['copy', '-q', `docker-archive:${archive}`, `dir:${copied}`]);
      const c = checkBlobs(copied);
      t.ok(c.n >= 2 && c.bad.length === 0, `skopeo copy of the archive: ${c.n} blobs, digests verified`);
    });

    t.test(`${arch}: umoci unpacks the image`, async (t) => {
      const bundle = join(work, `bundle-${arch}`);
      await execa('umoci', ['unpack', ...(process.getuid?.() === 0 ? [] : ['--rootless']), '--image', `${join(IMAGE_DIR, 'oci')}:test-${ARCH[arch]}`, bundle]);
      const root = join(bundle, 'rootfs');
      t.equal(readlinkSync(join(root, 'sbin', 'container-init')), '/usr/lib/runit-ts/runit-ts');
      t.equal(readFileSync(join(root, 'etc', 'motd'), 'utf8'), 'Welcome to the runit-ts test image.\n', 'file from the host');
      t.equal(readFileSync(join(root, 'etc', 'greeting'), 'utf8'), 'greetings\n', 'inline file');
      const data = statSync(join(root, 'srv', 'data'));
      if (process.getuid?.() === 0) t.same([data.uid, data.gid, data.mode & 0o7777], [1000, 50, 0o750], 'directory with owner and mode');
      t.equal(readlinkSync(join(root, 'srv', 'current')), '/srv/data');
      t.match(readFileSync(join(root, 'etc', 'passwd'), 'utf8'), /^app:x:1000:1000:app:\/home\/app:\/bin\/sh$/m);
      t.match(readFileSync(join(root, 'etc', 'group'), 'utf8'), /^staff:x:50:app$/m);
      t.equal(lstatSync(join(root, 'usr', 'lib', 'runit-ts', 'runit-ts')).mtimeMs, 0, 'mtime = SOURCE_DATE_EPOCH');
      const cfg = json<{ process: { args: string[] } }>(join(bundle, 'config.json'));
      t.same(cfg.process.args, ['/sbin/container-init'], 'umoci runtime config from the image config');
    });

    t.test(`${arch}: rootfs.tar is sorted, parents first, fixed owners and times`, async (t) => {
      const names: string[] = [];
      const bad: string[] = [];
      const x = extract();
      x.on('entry', (h, stream, next) => {
        names.push(h.name);
        if (h.mtime?.getTime() !== 0 || h.uname || h.gname) bad.push(h.name);
        if (h.name !== 'srv/data/' && !h.name.startsWith('home/app') && (h.uid !== 0 || h.gid !== 0)) bad.push(`owner ${h.name}`);
        stream.on('end', next);
        stream.resume();
      });
      const done = new Promise<void>((r) => x.on('finish', () => r()));
      x.end(readFileSync(join(IMAGE_DIR, arch, 'rootfs.tar')));
      await done;
      t.same(bad, [], 'every entry: mtime 0, root-owned unless the spec says otherwise, no names');
      const plain = names.map((n) => n.replace(/\/$/, ''));
      t.same(plain, [...plain].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)), 'sorted');
      const seen = new Set<string>();
      const orphans = plain.filter((n) => {
        seen.add(n);
        const parent = n.includes('/') ? n.slice(0, n.lastIndexOf('/')) : '';
        return parent !== '' && !seen.has(parent);
      });
      t.same(orphans, [], 'every parent directory comes first');
      t.notOk(plain.includes('dev/console'), 'no device nodes (the runtime provides /dev)');
    });

    t.test(`${arch}: SBOMs validate against the official schemas and list the inputs`, async (t) => {
      const cdx = json<{ components: Array<{ name: string; purl?: string; hashes?: Array<{ alg: string; content: string }> }> }>(join(IMAGE_DIR, arch, 'sbom.cdx.json'));
      const spdx = json<{ packages: Array<{ name: string; checksums?: Array<{ algorithm: string; checksumValue: string }> }> }>(join(IMAGE_DIR, arch, 'sbom.spdx.json'));
      const res = join(repo, 'node_modules', '@cyclonedx', 'cyclonedx-library', 'res', 'schema');
      const ajv = new Ajv({ strict: false, allErrors: true, logger: false });
      addFormats.default(ajv);
      // bom-1.5 refers to its neighbours by their file names
      for (const f of ['spdx.SNAPSHOT.schema.json', 'jsf-0.82.SNAPSHOT.schema.json']) {
        const { $id: _id, ...schema } = json<Record<string, unknown>>(join(res, f));
        ajv.addSchema(schema, `http://cyclonedx.org/schema/${f}`);
      }
      const vCdx = ajv.compile(json(join(res, 'bom-1.5.SNAPSHOT.schema.json')));
      t.ok(vCdx(cdx), `CycloneDX 1.5: ${ajv.errorsText(vCdx.errors)}`);
      const vSpdx = new Ajv({ strict: false, allErrors: true }).compile(json(join(repo, 'test', 'fixtures', 'spdx-schema-2.3.json')));
      t.ok(vSpdx(spdx), `SPDX 2.3: ${JSON.stringify(vSpdx.errors)}`);
      const deb = ARCH[arch];
      const manifest = json<{ inputs: Array<{ id: string; package: string; sha256: string }> }>(join(repo, 'image', 'inputs.json'));
      for (const id of [`busybox-${arch}`, `libc6-${arch}`, `libstdcxx-${arch}`, `libgcc-${arch}`, `node-${arch}`, `kernel-${arch}`]) {
        const input = manifest.inputs.find((i) => i.id === id)!;
        const c = cdx.components.find((c) => c.name === input.package);
        t.ok(c, `${id} listed`);
        t.same(c?.hashes?.find((h) => h.alg === 'SHA-256')?.content, input.sha256, `${id}: sha256 of the pinned input`);
        t.ok(spdx.packages.some((p) => p.name === input.package && p.checksums?.some((s) => s.checksumValue === input.sha256)), `${id} in SPDX`);
      }
      t.ok(cdx.components.some((c) => c.purl === `pkg:deb/debian/busybox-static@1%3A1.35.0-4%2Bdeb12u1%2Bb1?arch=${deb}`), 'deb purl');
      const exe = sha256(readFileSync(join(repo, 'out', arch, 'runit-ts')));
      t.ok(cdx.components.some((c) => c.name === 'runit-ts' && c.hashes?.some((h) => h.content === exe)), 'the executable with its sha256');
      t.notOk(cdx.components.some((c) => c.name === 'runit'), "Debian's runit (a test peer) is not in the image");
    });
  }

  t.test('multi-arch layout: an index for both arches, and a tag per arch', async (t) => {
    const layout = join(IMAGE_DIR, 'oci');
    const index = json<Index>(join(layout, 'index.json'));
    const refs = index.manifests.map((m) => m.annotations?.['org.opencontainers.image.ref.name']);
    t.same(refs, ['test', 'test-amd64', 'test-arm64']);
    const inner = JSON.parse(readFileSync(join(layout, 'blobs', 'sha256', index.manifests[0]!.digest.slice(7)), 'utf8')) as Index;
    t.same(inner.manifests.map((m) => m.platform?.architecture), ['amd64', 'arm64']);
    for (const [i, arch] of (['x86_64', 'aarch64'] as const).entries()) {
      const single = json<Index>(join(IMAGE_DIR, arch, 'oci', 'index.json'));
      t.equal(inner.manifests[i]!.digest, single.manifests[0]!.digest, `${arch}: the same manifest as out/${arch}/oci`);
    }
    const raw = JSON.parse((await execa('skopeo', ['inspect', '--raw', `oci:${layout}:test`])).stdout) as Index;
    t.equal(raw.manifests.length, 2, 'skopeo reads the image index');
    const copied = join(work, 'multi');
    await execa('skopeo', ['copy', '-q', '--all', `oci:${layout}:test`, `oci:${copied}:test`]);
    t.same(checkBlobs(join(copied, 'blobs', 'sha256')), { n: 7, bad: [] }, 'skopeo copy --all: index + 2 x (manifest, config, layer), digests verified');
    const back = json<Index>(join(copied, 'index.json'));
    t.equal(back.manifests[0]!.digest, index.manifests[0]!.digest, 'the copy has the same index digest');
  });
}
