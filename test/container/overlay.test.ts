// The overlay output (image/packers/overlay.ts) added to images that are not ours, with
// the documented Containerfile (image/examples/overlay.Containerfile) and podman build:
// a busybox-only image with glibc (the test image's tree without runit-ts) and one with
// no libc at all (scratch and the static busybox), on x86_64 and, through qemu-user, on
// arm64. In each: the image's service runs under container-init, sv and container-probe
// work in podman exec, podman stop ends it with code 0; the layer holds nothing outside
// /opt/runit-ts but container-init's state directory, and replaces no file of the base.
import t from 'tap';
import { copyFileSync, existsSync, linkSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { extract } from 'tar-stream';
import type { Entry } from '../../src/lib/entry.ts';
import { OVERLAY_PREFIX, OVERLAY_STATE } from '../../image/packers/overlay.ts';
import { OCI_ARCH } from '../../image/packers/oci.ts';
import { tarBuffer } from '../../image/packers/tar.ts';
import { resolveImage } from '../../image/resolve.ts';
import { APPLET_LINKS, BINARY, busyboxEntries } from '../../image/rootfs.ts';
import { defaultSpec } from '../../image/spec.ts';
import type { Arch } from '../../src/lib/platform.ts';
import { IMAGE_DIR, logs, podman, podmanSkip, repo, until } from '../lib/container.ts';

const CONTAINERFILE = join(repo, 'image', 'examples', 'overlay.Containerfile');
const BINFMT = '/proc/sys/fs/binfmt_misc/qemu-aarch64';
/** How long a service may take to come up: Node under qemu-user starts slowly (ms). */
const UP_TIMEOUT = { x86_64: 30_000, aarch64: 180_000 } as const;
/** podman stop of services that stop on TERM: well under the 5 s grace time (ms). */
const STOP_LIMIT = { x86_64: 3000, aarch64: 8000 } as const;

/** The base image's one service: says it is up and whether the loader's path leaked into it. */
const HELLO: Entry[] = [
  { path: 'etc/service', type: 'dir', mode: 0o755 },
  { path: 'etc/service/hello', type: 'dir', mode: 0o755 },
  { path: 'etc/service/hello/run', type: 'file', mode: 0o755, data: Buffer.from('#!/bin/sh\necho "hello: up LD_LIBRARY_PATH=${LD_LIBRARY_PATH-unset}"\nexec sleep 100000\n') },
];

/** The bases: glibc (our tree without runit-ts) and no libc (the static busybox and a few links). */
function baseEntries(kind: 'glibc' | 'nolibc', arch: Arch): Entry[] {
  if (kind === 'nolibc') {
    const bb = busyboxEntries(arch)[0]!;
    return [bb, ...['sh', 'sleep', 'echo', 'cat'].map((a): Entry => ({ path: `bin/${a}`, type: 'symlink', mode: 0o777, target: 'busybox' })), ...HELLO];
  }
  const img = resolveImage({ ...defaultSpec(['tar'], [arch]).image, arch }, join(repo, 'out', arch));
  const ours = new Set(Object.keys(APPLET_LINKS));
  const dir = BINARY.slice(0, BINARY.lastIndexOf('/'));
  return [...img.entries.filter((e) => !ours.has(e.path) && e.path !== dir && !e.path.startsWith(`${dir}/`) && !e.path.startsWith('etc/service')), ...HELLO];
}

/** Paths and types of a tarball's entries. */
async function listTar(buf: Buffer): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const x = extract();
  x.on('entry', (h, s, next) => {
    out.set(h.name.replace(/\/$/, ''), h.type ?? 'file');
    s.on('end', next);
    s.resume();
  });
  const done = new Promise<void>((res, rej) => x.on('finish', () => res()).on('error', rej));
  x.end(buf);
  await done;
  return out;
}

const binfmt = existsSync(BINFMT) && readFileSync(BINFMT, 'utf8').startsWith('enabled');
const skip = (await podmanSkip()) || (!existsSync(join(IMAGE_DIR, 'x86_64', 'overlay.tar')) && `no overlay.tar in ${IMAGE_DIR} (make test-container rebuilds it)`);
if (skip) t.plan(0, skip);
else {
  const work = mkdtempSync(join(IMAGE_DIR, 'overlay-test-'));
  const names: string[] = [];
  const images: string[] = [];
  t.teardown(async () => {
    if (names.length) await podman(['rm', '-f', '-t', '0', ...names], { reject: false });
    if (images.length) await podman(['rmi', '-f', ...images], { reject: false });
    rmSync(work, { recursive: true, force: true });
  });
  const arches: Arch[] = process.arch === 'arm64' || binfmt ? ['x86_64', 'aarch64'] : ['x86_64'];
  if (arches.length === 1) t.comment(`arm64 skipped: qemu-aarch64 is not registered with binfmt_misc (${BINFMT})`);

  for (const arch of arches) {
    const overlay = readFileSync(join(IMAGE_DIR, arch, 'overlay.tar'));
    const layer = await listTar(overlay);
    const platform = OCI_ARCH[arch].architecture;

    t.test(`${arch}: the layer holds /${OVERLAY_PREFIX} and /${OVERLAY_STATE} only`, async (t) => {
      const outside = [...layer.keys()].filter((p) => !['opt', 'run', OVERLAY_STATE].includes(p) && !p.startsWith(`${OVERLAY_PREFIX}/`) && p !== OVERLAY_PREFIX);
      t.same(outside, [], 'nothing else');
      t.equal(layer.get(`${OVERLAY_PREFIX}/bin/container-init`), 'symlink');
      t.equal(layer.get(`${OVERLAY_PREFIX}/lib/runit-ts`), 'file');
    });

    t.test(`${arch}: the overlay's SBOM lists what the layer holds`, async (t) => {
      const cdx = JSON.parse(readFileSync(join(IMAGE_DIR, arch, 'overlay.cdx.json'), 'utf8')) as { components: Array<{ name: string }> };
      const names = cdx.components.map((c) => c.name);
      for (const n of ['runit-ts', 'runit-ts-addon', 'runit-ts-launch', 'libc6', 'libstdc++6', 'libgcc-s1']) t.ok(names.includes(n), n);
      for (const n of ['busybox-static', 'runit-ts-pid1']) t.notOk(names.includes(n), `no ${n}`);
    });

    for (const kind of ['glibc', 'nolibc'] as const) {
      t.test(`${arch}: overlay on a ${kind === 'glibc' ? 'busybox + glibc' : 'no-libc (static busybox)'} image`, async (t) => {
        const base = baseEntries(kind, arch);
        const baseTar = await tarBuffer(base, 0);
        const basePaths = await listTar(baseTar);
        const replaced = [...layer].filter(([p, type]) => type !== 'directory' && basePaths.has(p)).map(([p]) => p);
        t.same(replaced, [], 'the overlay replaces no file of the base image');
        if (kind === 'nolibc') t.notOk([...basePaths.keys()].some((p) => /(^|\/)(libc\.so|ld-linux|ld-musl)/.test(p)), 'the base has no libc');

        const tag = `${kind}-${platform}`;
        const baseRef = `localhost/rtt-overlay-base:${tag}`;
        const ref = `localhost/rtt-overlay:${tag}`;
        images.push(ref, baseRef);
        const ctx = join(work, tag);
        rmSync(ctx, { recursive: true, force: true });
        await execa('mkdir', ['-p', ctx]);
        writeFileSync(join(ctx, 'base.tar'), baseTar);
        await podman(['import', '-q', '--arch', platform, join(ctx, 'base.tar'), baseRef]);
        try {
          linkSync(join(IMAGE_DIR, arch, 'overlay.tar'), join(ctx, 'overlay.tar'));
        } catch {
          copyFileSync(join(IMAGE_DIR, arch, 'overlay.tar'), join(ctx, 'overlay.tar'));
        }
        rmSync(join(ctx, 'base.tar'));
        await podman(['build', '-q', '--network', 'none', '--arch', platform, '--build-arg', `BASE=${baseRef}`, '-f', CONTAINERFILE, '-t', ref, ctx]);

        const name = `rtt-overlay-${tag}`;
        names.push(name);
        await podman(['rm', '-f', '-t', '0', name], { reject: false });
        const t0 = performance.now();
        await podman(['run', '-d', '--name', name, '--arch', platform, '--network', 'none', ref]);
        await until(`${name}: hello up`, async () => (await logs(name)).includes('hello: up'), UP_TIMEOUT[arch]);
        t.comment(`${tag}: podman run -> service up ${(performance.now() - t0).toFixed(0)} ms`);
        t.match(await logs(name), /hello: up LD_LIBRARY_PATH=unset/, "the service runs with the image's own loader path");
        t.match((await podman(['exec', name, 'cat', '/proc/1/cmdline'])).stdout, /container-init/, 'container-init is PID 1');
        t.match((await podman(['exec', name, 'sv', 'status', 'hello'])).stdout, /^run: hello: \(pid \d+\)/, 'sv status in podman exec');
        t.equal((await podman(['exec', name, 'container-probe'], { reject: false })).exitCode, 0, 'container-probe: healthy');
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
