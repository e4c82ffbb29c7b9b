// The default spec with container outputs only (`make image OUTPUTS=tar,oci,docker`): the
// image has no catalogue service in either runlevel (the VM set, with klogd, a DHCP
// client and a console shell, is for the boot outputs), and the boot outputs keep it.
import t from 'tap';
import { join } from 'node:path';
import { repo } from '../lib/host.ts';
import { resolveImage } from '../../image/resolve.ts';
import { DEFAULT_SERVICES } from '../../image/rootfs.ts';
import { CONTAINER_SERVICES, defaultSpec } from '../../image/spec.ts';

const binDir = join(repo, 'out', 'x86_64');

/** The paths and catalogue services of the default spec's image for `outputs`. */
function image(outputs: Parameters<typeof defaultSpec>[0]) {
  const img = resolveImage({ ...defaultSpec(outputs, ['x86_64']).image, arch: 'x86_64' }, binDir);
  return { paths: new Set(img.entries.map((e) => e.path)), services: img.services };
}

t.test('container outputs only: no catalogue service in the image', async (t) => {
  const { paths, services } = image(['tar', 'oci', 'docker']);
  t.same(services, [...CONTAINER_SERVICES], 'the SBOM lists no service');
  for (const s of ['shell', 'syslogd', 'klogd', 'network', 'crond']) {
    t.notOk(paths.has(`etc/sv/${s}`), `no /etc/sv/${s}`);
    t.notOk(paths.has(`etc/runit/runsvdir/default/${s}`) || paths.has(`etc/runit/runsvdir/single/${s}`), `${s} in no runlevel`);
  }
  t.ok(paths.has('etc/service'), '/etc/service is there (empty: the spec adds services)');
  t.ok(paths.has('run/runit-ts'), "container-init's state directory is there");
});

t.test('a boot output keeps the default set', async (t) => {
  const { paths, services } = image(['initramfs']);
  for (const s of DEFAULT_SERVICES) t.ok(paths.has(`etc/runit/runsvdir/default/${s}`), `${s} in the default runlevel`);
  t.ok(paths.has('etc/runit/runsvdir/single/shell'), 'the single runlevel has its shell');
  t.ok(services.includes('klogd'));
});
