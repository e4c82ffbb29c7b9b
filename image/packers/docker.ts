// docker-archive: one tarball with the OCI layout of one image plus the manifest.json
// `docker load` and `podman load` read ([{Config, RepoTags, Layers}], paths into
// blobs/sha256/), as docker 25+ writes it. Written with tar-stream, fixed metadata.
import { blobOf, packToBuffer } from './tar.ts';
import { MT, REF_NAME, type OciImage } from './oci.ts';

const json = (v: unknown) => Buffer.from(JSON.stringify(v));

export async function dockerArchive(im: OciImage, repoTag: string, epoch: number): Promise<Buffer> {
  const mtime = new Date(epoch * 1000);
  const hex = (d: string) => d.slice('sha256:'.length);
  const tag = repoTag.slice(repoTag.lastIndexOf(':') + 1);
  const index = json({ schemaVersion: 2, mediaType: MT.index, manifests: [{ ...im.descriptor, annotations: { [REF_NAME]: tag, 'io.containerd.image.name': repoTag } }] });
  const blobs = [im.config, im.layer, im.manifest].sort((a, b) => (a.digest < b.digest ? -1 : 1));
  const files: Array<[string, Buffer | undefined]> = [
    ['blobs/', undefined],
    ['blobs/sha256/', undefined],
    ...blobs.map((b): [string, Buffer] => [`blobs/sha256/${hex(b.digest)}`, b.data]),
    ['index.json', index],
    ['manifest.json', json([{ Config: `blobs/sha256/${hex(im.config.digest)}`, RepoTags: [repoTag], Layers: [`blobs/sha256/${hex(im.layer.digest)}`] }])],
    ['oci-layout', json({ imageLayoutVersion: '1.0.0' })],
  ];
  const { p, done } = packToBuffer();
  for (const [name, data] of files) {
    const h = { name, mode: data ? 0o644 : 0o755, uid: 0, gid: 0, uname: '', gname: '', mtime };
    await new Promise<void>((res, rej) => {
      if (data) p.entry({ ...h, type: 'file', size: data.length }, data, (e) => (e ? rej(e) : res()));
      else p.entry({ ...h, type: 'directory' }, (e) => (e ? rej(e) : res()));
    });
  }
  p.finalize();
  return done;
}

export { blobOf };
