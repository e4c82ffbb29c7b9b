// The overlay output (image/packers/overlay.ts) added to images that are not ours, with
// the documented Containerfile (image/examples/overlay.Containerfile) and podman build.
// The bases: a busybox-only image with glibc (the test image's tree without runit-ts),
// one with no libc at all (scratch and the static busybox), and Debian 12 (the Debian base
// of image/specs/debian-nginx.yaml as mmdebstrap installed it, from the cache that
// test/container/debian.test.ts fills, with a service added the Debian way: /etc/sv/NAME
// linked from /etc/runit/runsvdir/default, which /etc/service points to). In each: the
// image's service runs under the overlay's container-init (its own executable and addon,
// even where the image has a runit-ts of its own), sv and container-probe work in podman
// exec, podman stop ends it with code 0; the layer holds nothing outside /opt/runit-ts but
// container-init's state directory, and replaces no file of the base. overlaySuite(cases)
// for the test files: test/container/overlay.test.ts (make test) and the arm64 Debian case
// in test/long (make reliability: a Debian base of its own under qemu-user takes minutes).
import t from 'tap';
import { copyFileSync, existsSync, linkSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import type { Entry } from '../../src/lib/entry.ts';
import { debianBaseFile, readLock } from '../../image/debian/image.ts';
import { buildOutputs } from '../../image/outputs.ts';
import { OVERLAY_PREFIX, OVERLAY_STATE } from '../../image/packers/overlay.ts';
import { OCI_ARCH } from '../../image/packers/oci.ts';
import { tarBuffer } from '../../image/packers/tar.ts';
import { resolveImage } from '../../image/resolve.ts';
import { APPLET_LINKS, BINARY, busyboxEntries } from '../../image/rootfs.ts';
import { defaultSpec, loadSpec } from '../../image/spec.ts';
import type { Arch } from '../../src/lib/platform.ts';
import { IMAGE_DIR, logs, podman, podmanSkip, repo, until } from './container.ts';
import { tarModes } from './image-modes.ts';

/** The kinds of base image the overlay is put on. */
export type BaseKind = 'glibc' | 'nolibc' | 'debian';

const CONTAINERFILE = join(repo, 'image', 'examples', 'overlay.Containerfile');
const BINFMT = '/proc/sys/fs/binfmt_misc/qemu-aarch64';
/** The spec whose Debian base the debian kind takes (debian.test.ts builds it for x86_64, test/long for aarch64). */
const DEBIAN_SPEC = join(repo, 'image', 'specs', 'debian-nginx.yaml');
/** The spec the overlay is built from where make test-container has not built it (test/long). */
const TEST_SPEC = join(repo, 'test', 'fixtures', 'container', 'spec.yaml');
/** How long a service may take to come up: Node under qemu-user starts slowly (ms). */
const UP_TIMEOUT = { x86_64: 30_000, aarch64: 180_000 } as const;
/** podman stop of services that stop on TERM: well under the 5 s grace time (ms). */
const STOP_LIMIT = { x86_64: 3000, aarch64: 8000 } as const;
/** podman import and build of a Debian base (a 280 MiB layer) may take this long (ms). */
const DEBIAN_PODMAN_TIMEOUT = 600_000;

/** The service's run script: says it is up and whether the loader's path leaked into it. */
const HELLO_RUN = Buffer.from('#!/bin/sh\necho "hello: up LD_LIBRARY_PATH=${LD_LIBRARY_PATH-unset}"\nexec sleep 100000\n');

/** The base image's one service, in /etc/service (busybox bases). */
const HELLO: Entry[] = [
  { path: 'etc/service', type: 'dir', mode: 0o755 },
  { path: 'etc/service/hello', type: 'dir', mode: 0o755 },
  { path: 'etc/service/hello/run', type: 'file', mode: 0o755, data: HELLO_RUN },
];

/** The same service added to Debian as its runit packages add theirs: /etc/service is a link to the runlevel's directory. */
const DEBIAN_HELLO: Entry[] = [
  { path: 'etc/sv/hello', type: 'dir', mode: 0o755 },
  { path: 'etc/sv/hello/run', type: 'file', mode: 0o755, data: HELLO_RUN },
  { path: 'etc/runit/runsvdir/default/hello', type: 'symlink', mode: 0o777, target: '/etc/sv/hello' },
];

/** The busybox bases: glibc (our tree without runit-ts) and no libc (the static busybox and a few links). */
function busyboxBase(kind: 'glibc' | 'nolibc', arch: Arch): Entry[] {
  if (kind === 'nolibc') {
    const bb = busyboxEntries(arch)[0]!;
    return [bb, ...['sh', 'sleep', 'echo', 'cat'].map((a): Entry => ({ path: `bin/${a}`, type: 'symlink', mode: 0o777, target: 'busybox' })), ...HELLO];
  }
  const img = resolveImage({ ...defaultSpec(['tar'], [arch]).image, arch }, join(repo, 'out', arch));
  const ours = new Set(Object.keys(APPLET_LINKS));
  const dir = BINARY.slice(0, BINARY.lastIndexOf('/'));
  return [...img.entries.filter((e) => !ours.has(e.path) && e.path !== dir && !e.path.startsWith(`${dir}/`) && !e.path.startsWith('etc/service')), ...HELLO];
}

/** Paths (without a leading ./) and types (file, dir, symlink, ...) of a tarball's entries, from a buffer or a file. */
async function listTar(src: Buffer | string): Promise<Map<string, string>> {
  return new Map((await tarModes(src)).map((e) => [e.path, e.type]));
}

/** A hard link of `from` at `to` (a copy across file systems). */
function place(from: string, to: string): void {
  try {
    linkSync(from, to);
  } catch {
    copyFileSync(from, to);
  }
}

/**
 * Where the overlay of `arch` is: the shared test image (make test-container), or built
 * here from its spec (test/long, where that image may not be).
 */
async function overlayDir(arch: Arch, work: string): Promise<string> {
  if (existsSync(join(IMAGE_DIR, arch, 'overlay.tar'))) return join(IMAGE_DIR, arch);
  const spec = loadSpec(TEST_SPEC, { repoServices: join(repo, 'services'), arches: [arch], outputs: ['overlay'] });
  const out = join(work, 'overlay-out');
  await buildOutputs(spec, { out, binDir: (a) => join(repo, 'out', a), say: () => {} });
  return join(out, arch);
}

/**
 * The base image of `kind` for `arch` in podman's storage as `ref` (the refs it made are
 * pushed on `images`); its paths, for the overlay's to be compared with.
 */
async function makeBase(kind: BaseKind, arch: Arch, ref: string, ctx: string, images: string[], say: (m: string) => void): Promise<Map<string, string>> {
  const platform = OCI_ARCH[arch].architecture;
  if (kind !== 'debian') {
    const tar = await tarBuffer(busyboxBase(kind, arch), 0);
    writeFileSync(join(ctx, 'base.tar'), tar);
    await podman(['import', '-q', '--arch', platform, join(ctx, 'base.tar'), ref]);
    rmSync(join(ctx, 'base.tar'));
    return listTar(tar);
  }
  const spec = loadSpec(DEBIAN_SPEC, { repoServices: join(repo, 'services'), arches: [arch], outputs: ['docker'] });
  const lock = readLock(spec.file, spec.debian!, [arch]);
  const file = await debianBaseFile(spec.file, spec.debian!, lock, arch, join(repo, 'out', arch), say);
  const raw = `${ref}-raw`;
  images.push(raw);
  await podman(['import', '-q', '--arch', platform, file, raw], { timeout: DEBIAN_PODMAN_TIMEOUT });
  // the service, as a layer of the base's own (a Containerfile of this test's, not the documented one)
  const hello = join(ctx, 'hello');
  mkdirSync(hello);
  writeFileSync(join(hello, 'hello.tar'), await tarBuffer(DEBIAN_HELLO, 0));
  writeFileSync(join(hello, 'Containerfile'), `FROM ${raw}\nADD hello.tar /\n`);
  await podman(['build', '-q', '--network', 'none', '--arch', platform, '-t', ref, hello], { timeout: DEBIAN_PODMAN_TIMEOUT });
  const paths = await listTar(file);
  for (const e of DEBIAN_HELLO) paths.set(e.path, e.type);
  return paths;
}

/** The overlay put on each kind of base of each arch asked for, under podman. */
export async function overlaySuite(cases: Array<{ arch: Arch; kinds: BaseKind[] }>): Promise<void> {
  const skip = await podmanSkip();
  if (skip) return void t.plan(0, skip);
  const binfmt = existsSync(BINFMT) && readFileSync(BINFMT, 'utf8').startsWith('enabled');
  const arm = process.arch === 'arm64' || binfmt;
  const runnable = cases.filter((c) => c.arch === 'x86_64' || arm);
  if (runnable.length < cases.length) t.comment(`arm64 skipped: qemu-aarch64 is not registered with binfmt_misc (${BINFMT})`);
  if (!runnable.length) return void t.plan(0, 'no arch to run here');
  const work = mkdtempSync(join(existsSync(IMAGE_DIR) ? IMAGE_DIR : join(repo, 'out'), 'overlay-test-'));
  const names: string[] = [];
  const images: string[] = [];
  t.teardown(async () => {
    if (names.length) await podman(['rm', '-f', '-t', '0', ...names], { reject: false });
    if (images.length) await podman(['rmi', '-f', ...images], { reject: false });
    rmSync(work, { recursive: true, force: true });
  });

  for (const { arch, kinds } of runnable) {
    const dir = await overlayDir(arch, work);
    const overlay = readFileSync(join(dir, 'overlay.tar'));
    const layer = await listTar(overlay);
    const platform = OCI_ARCH[arch].architecture;

    t.test(`${arch}: the layer holds /${OVERLAY_PREFIX} and /${OVERLAY_STATE} only`, async (t) => {
      const outside = [...layer.keys()].filter((p) => !['opt', 'run', OVERLAY_STATE].includes(p) && !p.startsWith(`${OVERLAY_PREFIX}/`) && p !== OVERLAY_PREFIX);
      t.same(outside, [], 'nothing else');
      t.equal(layer.get(`${OVERLAY_PREFIX}/bin/container-init`), 'symlink');
      t.equal(layer.get(`${OVERLAY_PREFIX}/lib/runit-ts`), 'file');
    });

    t.test(`${arch}: the overlay's SBOM lists what the layer holds`, async (t) => {
      const cdx = JSON.parse(readFileSync(join(dir, 'overlay.cdx.json'), 'utf8')) as { components: Array<{ name: string }> };
      const names = cdx.components.map((c) => c.name);
      for (const n of ['runit-ts', 'runit-ts-addon', 'runit-ts-launch', 'libc6', 'libstdc++6', 'libgcc-s1']) t.ok(names.includes(n), n);
      for (const n of ['busybox-static', 'runit-ts-pid1']) t.notOk(names.includes(n), `no ${n}`);
    });

    for (const kind of kinds) {
      const label = { glibc: 'busybox + glibc', nolibc: 'no-libc (static busybox)', debian: 'Debian 12' }[kind];
      t.test(`${arch}: overlay on a ${label} image`, async (t) => {
        const tag = `${kind}-${platform}`;
        const baseRef = `localhost/rtt-overlay-base:${tag}`;
        const ref = `localhost/rtt-overlay:${tag}`;
        images.push(ref, baseRef);
        const ctx = join(work, tag);
        rmSync(ctx, { recursive: true, force: true });
        mkdirSync(ctx, { recursive: true });
        const basePaths = await makeBase(kind, arch, baseRef, ctx, images, (m) => t.comment(m));
        const replaced = [...layer].filter(([p, type]) => type !== 'dir' && basePaths.has(p)).map(([p]) => p);
        t.same(replaced, [], 'the overlay replaces no file of the base image');
        if (kind === 'nolibc') t.notOk([...basePaths.keys()].some((p) => /(^|\/)(libc\.so|ld-linux|ld-musl)/.test(p)), 'the base has no libc');
        if (kind === 'debian') t.equal(basePaths.get('etc/service'), 'symlink', "Debian's /etc/service: a link to the runlevel's directory");
        place(join(dir, 'overlay.tar'), join(ctx, 'overlay.tar'));
        await podman(['build', '-q', '--network', 'none', '--arch', platform, '--build-arg', `BASE=${baseRef}`, '-f', CONTAINERFILE, '-t', ref, ctx], { timeout: DEBIAN_PODMAN_TIMEOUT });

        const name = `rtt-overlay-${tag}`;
        names.push(name);
        await podman(['rm', '-f', '-t', '0', name], { reject: false });
        const t0 = performance.now();
        await podman(['run', '-d', '--name', name, '--arch', platform, '--network', 'none', ref]);
        await until(`${name}: hello up`, async () => (await logs(name)).includes('hello: up'), UP_TIMEOUT[arch]);
        t.comment(`${tag}: podman run -> service up ${(performance.now() - t0).toFixed(0)} ms`);
        t.match(await logs(name), /hello: up LD_LIBRARY_PATH=unset/, "the service runs with the image's own loader path");
        t.match((await podman(['exec', name, 'cat', '/proc/1/cmdline'])).stdout, /container-init/, 'container-init is PID 1');
        // (the Debian base has a runit-ts of its own, at /usr/lib/runit-ts)
        const maps = (await podman(['exec', name, 'cat', '/proc/1/maps'])).stdout;
        const ours = [...new Set(maps.match(/\/\S*\/runit-ts(\.node)?$/gm) ?? [])].sort();
        t.same(ours, [`/${OVERLAY_PREFIX}/lib/runit-ts`, `/${OVERLAY_PREFIX}/lib/runit-ts.node`], "PID 1 runs the overlay's executable and addon");
        t.match((await podman(['exec', name, 'sv', 'status', 'hello'])).stdout, /^run: hello: \(pid \d+\)/, 'sv status in podman exec');
        t.match((await podman(['exec', name, 'sv', 'status', '/etc/service/hello'])).stdout, /^run: \/etc\/service\/hello: \(pid \d+\)/, 'sv status /etc/service/hello');
        // Debian's default-syslog (runit-ts-init's) is ready only once a syslog daemon listens: not here
        const probe = await podman(['exec', name, 'container-probe', ...(kind === 'debian' ? ['hello'] : [])], { reject: false });
        t.equal(probe.exitCode, 0, `container-probe: healthy ${probe.stderr}`);
        const s0 = performance.now();
        await podman(['stop', '-t', '10', name]);
        const ms = performance.now() - s0;
        t.comment(`${tag}: podman stop ${ms.toFixed(0)} ms`);
        t.equal((await podman(['inspect', name, '--format', '{{.State.ExitCode}}'])).stdout.trim(), '0', 'exit code 0');
        t.ok(ms < STOP_LIMIT[arch], `stopped in ${ms.toFixed(0)} ms`);
        t.match(await logs(name), /container-init: SIGTERM received: stopping/);
      });
    }
  }
}
