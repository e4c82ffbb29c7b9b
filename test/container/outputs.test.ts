// Every output of one spec carries the same entries: a spec with users, groups and files
// (owners and modes) is built for x86_64 as initramfs, tar, oci, docker, disk and exedisk
// by runit-ts-image, each output is read back with its own reader (the newc cpio of
// initramfs.img and exedisk.img, rootfs.tar, the OCI layout's layer, the docker
// archive's layer, debugfs on the disk's root.ext4: nothing mounted), and /etc/passwd,
// /etc/group and every file's contents, owner and mode must be the same in all six.
import t from 'tap';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { execa } from 'execa';
import { extract } from 'tar-stream';
import { have, repo } from '../lib/container.ts';

/** One path as an output holds it: what the comparison looks at. */
interface Node {
  type: 'file' | 'dir' | 'symlink' | 'other';
  /** permission bits */
  mode: number;
  uid: number;
  gid: number;
  /** a file's contents, a symlink's target */
  content?: string;
}
type Tree = Map<string, Node>;

const S_IFMT = 0o170000;
const TYPES: Record<number, Node['type']> = { 0o100000: 'file', 0o040000: 'dir', 0o120000: 'symlink' };

/** The newc archive's entries (the kernel's view of an initramfs). */
function readCpio(b: Buffer): Tree {
  const tree: Tree = new Map();
  let o = 0;
  for (;;) {
    if (b.toString('ascii', o, o + 6) !== '070701') throw new Error(`not a newc header at byte ${o}`);
    const f = (i: number) => parseInt(b.toString('ascii', o + 6 + i * 8, o + 14 + i * 8), 16);
    const [mode, uid, gid, size, namesize] = [f(1), f(2), f(3), f(6), f(11)];
    const name = b.toString('utf8', o + 110, o + 110 + namesize - 1);
    let p = o + 110 + namesize;
    p += (4 - (p % 4)) % 4;
    const data = b.subarray(p, p + size);
    p += size + ((4 - ((p + size) % 4)) % 4);
    if (name === 'TRAILER!!!') return tree;
    const type = TYPES[mode & S_IFMT] ?? 'other';
    tree.set(name, { type, mode: mode & 0o7777, uid, gid, ...(type === 'file' || type === 'symlink' ? { content: data.toString('utf8') } : {}) });
    o = p;
  }
}

/** A tar archive's entries and file contents (ustar/pax). */
async function readTar(b: Buffer): Promise<{ tree: Tree; files: Map<string, Buffer> }> {
  const tree: Tree = new Map();
  const files = new Map<string, Buffer>();
  const x = extract();
  x.on('entry', (h, stream, next) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c: unknown) => void chunks.push(c as Buffer));
    stream.on('end', () => {
      const name = h.name.replace(/^\.\//, '').replace(/\/$/, '');
      const body = Buffer.concat(chunks);
      const type: Node['type'] = h.type === 'file' ? 'file' : h.type === 'directory' ? 'dir' : h.type === 'symlink' ? 'symlink' : 'other';
      const content = type === 'file' ? body.toString('utf8') : type === 'symlink' ? h.linkname ?? '' : undefined;
      tree.set(name, { type, mode: (h.mode ?? 0) & 0o7777, uid: h.uid ?? 0, gid: h.gid ?? 0, ...(content !== undefined ? { content } : {}) });
      if (type === 'file') files.set(name, body);
      next();
    });
  });
  const done = new Promise<void>((res, rej) => {
    x.on('finish', () => res());
    x.on('error', rej);
  });
  x.end(b);
  await done;
  return { tree, files };
}

/** The single layer of an OCI image layout, as its tree. */
async function readOci(dir: string): Promise<Tree> {
  const blob = (d: string) => readFileSync(join(dir, 'blobs', 'sha256', d.slice('sha256:'.length)));
  const index = JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string }> };
  const manifest = JSON.parse(blob(index.manifests[0]!.digest).toString()) as { layers: Array<{ digest: string }> };
  return (await readTar(gunzipSync(blob(manifest.layers[0]!.digest)))).tree;
}

/** The single layer of a docker-archive (manifest.json names it), as its tree. */
async function readDocker(file: string): Promise<Tree> {
  const { files } = await readTar(readFileSync(file));
  const manifest = JSON.parse(files.get('manifest.json')!.toString()) as Array<{ Layers: string[] }>;
  return (await readTar(gunzipSync(files.get(manifest[0]!.Layers[0]!)!))).tree;
}

/** `paths` of an ext4 image by debugfs (stat and cat), without mounting it. */
async function readExt4(image: string, paths: string[]): Promise<Tree> {
  const tree: Tree = new Map();
  const debugfs = async (req: string) => (await execa('debugfs', ['-R', req, image], { env: { LC_ALL: 'C' }, stripFinalNewline: false, encoding: 'utf8' })).stdout;
  for (const p of paths) {
    const st = await debugfs(`stat "/${p}"`);
    const m = /Type: (\w+)\s+Mode:\s+(\d+)/.exec(st);
    const own = /User:\s+(\d+)\s+Group:\s+(\d+)/.exec(st);
    if (!m || !own) continue; // not there
    const type: Node['type'] = m[1] === 'regular' ? 'file' : m[1] === 'directory' ? 'dir' : m[1] === 'symlink' ? 'symlink' : 'other';
    const content = type === 'file' ? await debugfs(`cat "/${p}"`) : type === 'symlink' ? /Fast link dest: "(.*)"/.exec(st)?.[1] : undefined;
    tree.set(p, { type, mode: parseInt(m[2]!, 8), uid: Number(own[1]), gid: Number(own[2]), ...(content !== undefined ? { content } : {}) });
  }
  return tree;
}

const bin = join(repo, 'out', 'x86_64');
const missing = ['runit-ts', 'runit-ts.node', 'runit', 'early'].map((f) => join(bin, f)).find((p) => !existsSync(p));
const skip = (missing && `${missing} is missing (make build ARCH=x86_64 and make out/x86_64/early)`) || (!(await have('debugfs')) && 'debugfs is not installed (e2fsprogs)');
if (skip) t.plan(0, skip);
else {
  const work = mkdtempSync(join(tmpdir(), 'runit-ts-outputs-'));
  t.teardown(() => rmSync(work, { recursive: true, force: true }));
  writeFileSync(join(work, 'motd.txt'), 'from the host\n');
  const spec = join(work, 'spec.yaml');
  writeFileSync(
    spec,
    `name: outputs-test
arches: [x86_64]
outputs: [initramfs, tar, oci, docker, disk, exedisk]
services: [shell]
users:
  - { name: app, uid: 1000, home: /home/app }
  - { name: web, uid: 1001, gid: 50, home: /srv/web, shell: /bin/false }
groups:
  - { name: staff, gid: 50, members: [app, web] }
files:
  - { path: /etc/motd, source: motd.txt, mode: "0640", owner: "app:staff" }
  - { path: /etc/app.conf, content: "key=value\\n", owner: web, mode: "0600" }
  - { path: /srv/data, type: dir, mode: "0750", owner: "app:staff" }
  - { path: /srv/current, target: /srv/data }
  - { path: /usr/local/bin/hello, content: "#!/bin/sh\\necho hello\\n", mode: "0755", owner: "1000:50" }
container: { user: app }
`,
  );
  /** what the spec adds, and what it changes (passwd, group): the same in every output */
  const PATHS = ['etc/passwd', 'etc/group', 'etc/motd', 'etc/app.conf', 'srv/data', 'srv/current', 'usr/local/bin/hello', 'home/app', 'srv/web', 'run/runit-ts', 'etc/runit-ts/startup.d', 'etc/hostname'];

  t.test('x86_64: initramfs, tar, oci, docker, disk and exedisk of one spec hold the same users, groups and files', async (t) => {
    const out = join(work, 'out');
    const r = await execa(process.execPath, [join(repo, 'image', 'cli.ts'), 'build', spec, '--out', out], { all: true, reject: false, timeout: 600_000 });
    if (r.exitCode !== 0) t.comment(r.all);
    t.equal(r.exitCode, 0, 'runit-ts-image builds every output, exedisk included');
    if (r.exitCode !== 0) return;
    const dir = join(out, 'x86_64');
    const trees: Record<string, Tree> = {
      initramfs: readCpio(readFileSync(join(dir, 'initramfs.img'))),
      tar: (await readTar(readFileSync(join(dir, 'rootfs.tar')))).tree,
      oci: await readOci(join(dir, 'oci')),
      docker: await readDocker(join(dir, 'image.tar')),
      disk: await readExt4(join(dir, 'root.ext4'), PATHS),
      exedisk: readCpio(readFileSync(join(dir, 'exedisk.img'))),
    };
    const pick = (tree: Tree) => Object.fromEntries(PATHS.map((p) => [p, tree.get(p) ?? null]));
    const want = pick(trees.initramfs!);
    // what the spec says, in the first output
    t.match(want['etc/passwd']?.content, /^app:x:1000:1000:app:\/home\/app:\/bin\/sh$/m, 'passwd: app');
    t.match(want['etc/passwd']?.content, /^web:x:1001:50:web:\/srv\/web:\/bin\/false$/m, 'passwd: web');
    t.match(want['etc/group']?.content, /^staff:x:50:app,web$/m, 'group: staff with its members');
    t.match(want['etc/group']?.content, /^app:x:1000:$/m, "group: app's primary group");
    t.same(want['etc/motd'], { type: 'file', mode: 0o640, uid: 1000, gid: 50, content: 'from the host\n' }, 'a file from the host, owner and mode');
    t.same(want['etc/app.conf'], { type: 'file', mode: 0o600, uid: 1001, gid: 50, content: 'key=value\n' }, 'an inline file, owned by a user with its group');
    t.same(want['srv/data'], { type: 'dir', mode: 0o750, uid: 1000, gid: 50 }, 'a directory');
    t.same(want['srv/current'], { type: 'symlink', mode: 0o777, uid: 0, gid: 0, content: '/srv/data' }, 'a symlink');
    t.same(want['usr/local/bin/hello'], { type: 'file', mode: 0o755, uid: 1000, gid: 50, content: '#!/bin/sh\necho hello\n' }, 'numeric owner');
    t.same(want['home/app'], { type: 'dir', mode: 0o755, uid: 1000, gid: 1000 }, "app's home");
    t.same(want['srv/web'], { type: 'dir', mode: 0o755, uid: 1001, gid: 50 }, "web's home");
    t.same(want['run/runit-ts'], { type: 'dir', mode: 0o755, uid: 1000, gid: 1000 }, "container-init's state directory, the container user's");
    for (const [name, tree] of Object.entries(trees)) {
      if (name === 'initramfs') continue;
      const got = pick(tree);
      // symlink modes: ext4 and tar keep 0777, as the cpio does
      t.same(got, want, `${name}: the same passwd, group, files, owners and modes as the initramfs`);
    }
  });
}
