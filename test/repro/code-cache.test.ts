// Reproducibility of the executables' V8 code caches, the part of a build that came out
// different every time (scripts/code-cache.ts): made again from the same bundle and addon,
// by another process in another directory, umask and time zone, each arch's caches are
// byte-identical to those make built into the executable: the quick check, of this
// checkout's build (edits included); test/repro/clones.test.ts builds the commit twice
// from nothing.
//
// Needs make build's outputs for both arches: the bundle, the addons, the caches and the
// executables (make test-repro).
import t from 'tap';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { repo } from '../lib/host.ts';
import { CACHE_KINDS, cacheFiles } from '../../scripts/code-cache.ts';

const ARCHES = ['x86_64', 'aarch64'] as const;
/** one making of a cache, at most (ms): a training run, under qemu-user for the other arch */
const MAKE_TIMEOUT_MS = 10 * 60_000;
const bundle = join(repo, 'out', 'bundle', 'runit-ts.cjs');

/** The first byte where `a` and `b` differ, for the message (-1: none). */
function firstDifference(a: Buffer, b: Buffer): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return a.length === b.length ? -1 : n;
}

t.test('the training run turns off the same compilers as the supervisor, before it compiles', async (t) => {
  const { INTERPRETER_ONLY } = await import('../../src/lib/trim.ts');
  t.ok(readFileSync(join(repo, 'scripts', 'sea-train.cjs'), 'utf8').includes(`setFlagsFromString('${INTERPRETER_ONLY}')`), 'sea-train.cjs sets INTERPRETER_ONLY');
});

const scratch = mkdtempSync(join(tmpdir(), 'runit-ts-cache-repro-'));
t.teardown(() => rmSync(scratch, { recursive: true, force: true }));

for (const arch of ARCHES) {
  t.test(`${arch}: the code caches made again are the executable's, byte for byte`, async (t) => {
    const built = cacheFiles(join(repo, 'out', 'bundle', `runit-ts-${arch}.cache`));
    const exe = join(repo, 'out', arch, 'runit-ts');
    for (const f of [bundle, ...Object.values(built), exe, join(repo, 'out', arch, 'runit-ts.node')]) if (!existsSync(f)) return t.fail(`${f} is missing: make build ARCH=${arch}`);
    const exeBytes = readFileSync(exe);
    for (const kind of CACHE_KINDS) {
      t.ok(statSync(built[kind]).mtimeMs >= statSync(bundle).mtimeMs, `${built[kind]} was made from this bundle`);
      t.ok(exeBytes.includes(readFileSync(built[kind])), `${exe} holds the ${kind} cache`);
    }
    const again = cacheFiles(join(scratch, `${arch}.cache`));
    // as make runs it: without the loader tap puts into every process this test starts
    // (NODE_OPTIONS), down to the training run, where it changes what the cache holds
    const r = await execa('sh', ['-c', 'umask 077 && exec env -u NODE_OPTIONS "$@"', 'sh', process.execPath, join(repo, 'scripts', 'build.ts'), 'cache', arch, again.supervisor], {
      cwd: scratch,
      env: { TZ: 'Pacific/Kiritimati', LC_ALL: 'C' },
      all: true,
      reject: false,
      timeout: MAKE_TIMEOUT_MS,
    });
    t.comment(r.all);
    t.equal(r.exitCode, 0, `scripts/build.ts cache ${arch} ${again.supervisor}`);
    if (r.exitCode !== 0) return;
    for (const kind of CACHE_KINDS) {
      const cache = readFileSync(built[kind]);
      const made = readFileSync(again[kind]);
      const at = firstDifference(cache, made);
      t.equal(at, -1, `${kind}: byte-identical (${cache.length} bytes made by make, ${made.length} now${at >= 0 ? `, first difference at byte ${at}` : ''})`);
    }
  });
}
