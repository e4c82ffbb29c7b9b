// Reproducibility from nothing: two fresh clones of this checkout's commit, in different
// directories, built one after the other (so at other wall-clock times) with another
// umask, time zone and locale, give byte-identical executables for both arches (runit-ts,
// runit-ts.node, runit, early) and byte-identical images: the default initramfs and the
// container spec test/fixtures/container/spec.yaml through scripts/runit-ts-image (rootfs
// tarball, OCI layout, docker archive, initramfs, SPDX and CycloneDX SBOMs). What the two
// share is what make setup provides: the pinned inputs ($RUNIT_TS_CACHE) and the npm
// packages of package-lock.json (node_modules, linked); nothing built. SOURCE_DATE_EPOCH
// is left unset, as a plain build has it.
//
// It builds the commit (HEAD), not edits not yet committed; about five minutes on two
// cores (make test-repro, part of make test).
import t from 'tap';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { repo, treeFiles } from '../lib/host.ts';

const ARCHES = ['x86_64', 'aarch64'] as const;
/** what each clone builds: make's names for the executables, the default image and the container spec's outputs */
const TARGETS = [
  ...ARCHES.flatMap((a) => ['runit-ts', 'runit-ts.node', 'runit', 'early', 'initramfs.img'].map((f) => `out/${a}/${f}`)),
  'out/test-image/.built',
];
/** the files compared: the targets, and what the container spec's build wrote */
const COMPARED_DIRS = [...ARCHES.map((a) => `out/${a}`), 'out/test-image'];
/** what a difference is traced back to: the bundle, each arch's code cache and blob */
const INTERMEDIATES = ['out/bundle/runit-ts.cjs', 'out/bundle/runit-ts-sv.cjs', ...ARCHES.flatMap((a) => [`out/bundle/runit-ts-${a}.cache`, `out/bundle/sea-${a}.blob`])];
/** one clone's build from nothing, at most (ms) */
const BUILD_TIMEOUT_MS = 30 * 60_000;

/** How each clone is built: the second in a deeper directory, another umask, time zone and locale. */
const CLONES = [
  { name: 'first', depth: [], umask: '022', env: { TZ: 'UTC', LC_ALL: 'C' } },
  { name: 'second', depth: ['a', 'deeper', 'directory'], umask: '077', env: { TZ: 'Pacific/Kiritimati', LC_ALL: 'C.UTF-8' } },
];


/** The two files have the same bytes. */
const same = (a: string, b: string) => readFileSync(a).equals(readFileSync(b));

/** This process's environment for a build: the test runner's and make's own settings left out. */
function buildEnv(extra: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !/^(_?TAP|NODE_OPTIONS$|MAKEFLAGS$|MFLAGS$|MAKELEVEL$|RUNIT_TS_(BIN|PID1|ADDON)$|SOURCE_DATE_EPOCH$|TZ$|LC_|LANG)/.test(k)) env[k] = v;
  return { ...env, ...extra };
}

const commit = (await execa('git', ['-C', repo, 'rev-parse', 'HEAD'])).stdout.trim();
const dirty = (await execa('git', ['-C', repo, 'status', '--porcelain', '--untracked-files=no'])).stdout.trim();
t.comment(`building ${commit}${dirty ? ' (the commit: this checkout has edits not committed, which are not built)' : ''}`);

const roots: string[] = [];
const running = new Set<ResultPromise>();
t.teardown(() => {
  // a build cut short: its process group (make and whatever it started) goes too
  for (const p of running) if (p.pid) try { process.kill(-p.pid, 'SIGKILL'); } catch { /* gone */ }
  for (const r of roots) rmSync(r, { recursive: true, force: true });
});

const built: string[] = [];
for (const c of CLONES) {
  t.test(`the ${c.name} clone, umask ${c.umask}, TZ=${c.env.TZ}, built from nothing`, async (t) => {
    const root = mkdtempSync(join(tmpdir(), `runit-ts-clone-${c.name}-`));
    roots.push(root);
    const dir = join(root, ...c.depth, 'runit-ts');
    await execa('git', ['clone', '--quiet', '--no-checkout', repo, dir]);
    await execa('git', ['-C', dir, 'checkout', '--quiet', '--detach', commit]);
    // what make setup provides, as in any checkout: the packages and the stamp that says so
    symlinkSync(join(repo, 'node_modules'), join(dir, 'node_modules'));
    mkdirSync(join(dir, 'out'));
    writeFileSync(join(dir, 'out', '.setup-stamp'), '');
    const t0 = performance.now();
    // as from a shell: without the loader tap puts into every process this test starts
    // (NODE_OPTIONS), down to the code cache's training run, where it changes the cache
    const p = execa('sh', ['-c', `umask ${c.umask} && exec env -u NODE_OPTIONS make --no-print-directory ${TARGETS.join(' ')}`], {
      cwd: dir,
      env: buildEnv(c.env),
      extendEnv: false,
      detached: true,
      all: true,
      reject: false,
      stdin: 'ignore',
      timeout: BUILD_TIMEOUT_MS,
    });
    running.add(p);
    const r = await p;
    running.delete(p);
    const s = (performance.now() - t0) / 1000;
    if (r.exitCode !== 0) t.comment(r.all.split('\n').slice(-60).join('\n'));
    t.equal(r.exitCode, 0, `make ${TARGETS.join(' ')}`);
    t.comment(`figure: build from nothing (both arches, executables and images) ${s.toFixed(0)} s`);
    const timings = r.all.split('\n').filter((l) => /^\[build\] (code cache|sea) /.test(l));
    if (timings.length) t.comment(timings.join('\n'));
    for (const f of TARGETS) t.ok(existsSync(join(dir, f)), `${f} built`);
    built.push(dir);
  });
}

t.test('the two clones built the same bytes', async (t) => {
  if (built.length !== 2) return t.fail('a clone did not build');
  const [a, b] = built as [string, string];
  for (const d of COMPARED_DIRS) {
    const got = treeFiles(join(b, d));
    const want = treeFiles(join(a, d));
    t.same(got, want, `${d}: the same files`);
    const differ = want.filter((f) => got.includes(f) && !same(join(a, d, f), join(b, d, f)));
    t.same(differ, [], `${d}: all ${want.length} files byte-identical`);
  }
  // where a difference starts
  const upstream = INTERMEDIATES.filter((f) => existsSync(join(a, f)) && existsSync(join(b, f)) && !same(join(a, f), join(b, f)));
  t.same(upstream, [], 'the bundle, the code caches and the blobs byte-identical');
});
