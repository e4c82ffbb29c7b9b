// Two builds of one Debian lock are byte-identical in every output (make reliability):
// image/specs/debian.yaml built twice per arch, the Debian base made again each time by
// mmdebstrap from the cached .debs (a fresh cache of built bases each time), a second
// later, under another umask, and every file of the two output directories compared.
import t from 'tap';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { buildOutputs } from '../../image/outputs.ts';
import { loadSpec } from '../../image/spec.ts';
import { debCache } from '../../image/debian/lock.ts';
import { ARCHES } from '../../src/lib/platform.ts';
import { repo } from '../lib/host.ts';

/** Every file under `dir` -> its sha256. */
function digests(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string) => {
    for (const n of readdirSync(d).sort()) {
      const p = join(d, n);
      if (statSync(p).isDirectory()) walk(p);
      else out.set(relative(dir, p), createHash('sha256').update(readFileSync(p)).digest('hex'));
    }
  };
  walk(dir);
  return out;
}

const work = mkdtempSync(join(tmpdir(), 'runit-ts-debian-repro-'));
t.teardown(() => rmSync(work, { recursive: true, force: true }));
const debs = debCache();

for (const arch of ARCHES) {
  t.test(`${arch}: two builds of image/specs/debian.yaml's lock, every output byte-identical`, async (t) => {
    const sums: Array<Map<string, string>> = [];
    for (const [n, umask] of [['a', 0o022], ['b', 0o077]] as const) {
      // a fresh cache of built bases, the .debs shared: mmdebstrap installs them again
      const cache = join(work, `${arch}-cache-${n}`);
      mkdirSync(cache, { recursive: true });
      symlinkSync(debs, join(cache, 'debs'));
      process.env.RUNIT_TS_DEBIAN_CACHE = cache;
      const old = process.umask(umask);
      try {
        const spec = loadSpec(join(repo, 'image', 'specs', 'debian.yaml'), { repoServices: join(repo, 'services'), arches: [arch], outputs: ['initramfs', 'disk', 'tar', 'oci', 'docker'] });
        await buildOutputs(spec, { out: join(work, `${arch}-${n}`), binDir: (a) => join(repo, 'out', a), say: () => {} });
      } finally {
        process.umask(old);
        delete process.env.RUNIT_TS_DEBIAN_CACHE;
      }
      sums.push(digests(join(work, `${arch}-${n}`, arch)));
      rmSync(join(work, `${arch}-${n}`), { recursive: true, force: true });
      if (n === 'a') await new Promise((r) => setTimeout(r, 1100)); // a clock that moved must not show
    }
    const [a, b] = sums as [Map<string, string>, Map<string, string>];
    t.same([...a.keys()], [...b.keys()], `the same ${a.size} files`);
    const differ = [...a].filter(([f, h]) => b.get(f) !== h).map(([f]) => f);
    t.same(differ, [], `every file byte-identical (${[...a.keys()].join(', ')})`);
    t.comment(`figure: ${arch} Debian image, two builds from the lock: ${a.size} files identical`);
  });
}
