// A Debian-based container image (image/specs/debian-nginx.yaml: Debian's nginx as an
// inline service, container-init as PID 1) under podman: nginx answers on a loopback port,
// podman stop ends it within the grace time and the container exits 0; the SBOM lists the
// locked packages. nginxSuite(arches) for the test files: the host arch in
// test/container/debian.test.ts (make test), arm64 under qemu-user in test/long (make reliability).
import t from 'tap';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildOutputs } from '../../image/outputs.ts';
import { loadSpec } from '../../image/spec.ts';
import type { Arch } from '../../src/lib/platform.ts';
import { DEB_ARCH } from '../../src/lib/platform.ts';
import { containerNames, have, json, logs, podman, repo, until } from './container.ts';

const SPEC = join(repo, 'image', 'specs', 'debian-nginx.yaml');
/** Host ports nginx is published on (loopback only), one per arch. */
const PORT: Record<Arch, number> = { x86_64: 18081, aarch64: 18082 };

/** The nginx image of `arches` built once, then served and stopped under podman for each. */
export async function nginxSuite(arches: Arch[]): Promise<void> {
  if (!(await have('podman'))) return void t.plan(0, 'podman is not installed (scripts/setup installs it)');
  if (arches.includes('aarch64') && !existsSync('/proc/sys/fs/binfmt_misc/qemu-aarch64')) return void t.plan(0, 'no qemu-aarch64 registered with binfmt_misc (scripts/setup registers it)');
  const names = containerNames(t);
  const work = mkdtempSync(join(tmpdir(), 'runit-ts-debian-nginx-'));
  t.teardown(() => rmSync(work, { recursive: true, force: true }));
  const spec = loadSpec(SPEC, { repoServices: join(repo, 'services'), arches, outputs: ['docker'] });
  t.before(async () => {
    await buildOutputs(spec, { out: work, binDir: (a) => join(repo, 'out', a), say: () => {} });
  });

  for (const arch of arches) {
    t.test(`${arch}: Debian's nginx answers on a loopback port through podman and stops cleanly`, async (t) => {
      const image = `localhost/${spec.name}:${spec.tag}`;
      const r = await podman(['load', '-i', join(work, arch, 'image.tar')]);
      t.match(r.all, new RegExp(`Loaded image.*${spec.name}`), 'podman load');
      const name = `rtt-debian-nginx-${arch}`;
      names.push(name);
      await podman(['rm', '-f', '-t', '0', name], { reject: false });
      await podman(['run', '-d', '--name', name, '--arch', DEB_ARCH[arch], '-p', `127.0.0.1:${PORT[arch]}:80`, image]);
      const t0 = performance.now();
      const body = await until(
        `${name}: nginx answers on 127.0.0.1:${PORT[arch]}`,
        async () => {
          try {
            const res = await fetch(`http://127.0.0.1:${PORT[arch]}/`);
            return res.ok ? await res.text() : undefined;
          } catch {
            return undefined;
          }
        },
        arch === 'x86_64' ? 60_000 : 180_000,
      );
      t.match(body, /Welcome to nginx/, `nginx's default page, ${((performance.now() - t0) / 1000).toFixed(1)} s after podman run`);
      const arc = (await podman(['exec', name, 'cat', '/proc/1/cmdline'])).stdout;
      t.match(arc, /container-init/, 'container-init is PID 1');
      const st = (await podman(['exec', name, 'sv', 'status', 'nginx'])).stdout;
      t.match(st, /^run: nginx: \(pid \d+\)/, 'sv status nginx');
      const s0 = performance.now();
      await podman(['stop', '-t', '20', name], { timeout: 60_000 });
      const ms = performance.now() - s0;
      const code = Number((await podman(['inspect', name, '--format', '{{.State.ExitCode}}'])).stdout.trim());
      t.equal(code, 0, 'the container exits 0');
      t.ok(ms < 20_000, `podman stop took ${(ms / 1000).toFixed(1)} s, within the grace time (no SIGKILL)`);
      t.notMatch(await logs(name), /\[emerg\]|\[alert\]/, 'nginx logged no emergency');
      const sbom = json<{ packages: Array<{ name: string; versionInfo: string; externalRefs?: Array<{ referenceLocator: string }> }> }>(join(work, arch, 'sbom.spdx.json'));
      const nginx = sbom.packages.find((p) => p.name === 'nginx');
      t.ok(nginx, 'the SBOM lists Debian\'s nginx');
      t.match(nginx?.externalRefs?.[0]?.referenceLocator, new RegExp(`^pkg:deb/debian/nginx@.*arch=${DEB_ARCH[arch]}&distro=debian-12$`), 'with its purl');
    });
  }
}
