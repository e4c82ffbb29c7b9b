// The Makefile's rules, run for real on a copy of it in a scratch directory, with the
// compilers, strip and the pinned Node replaced by stand-ins that only create the files
// they are asked for: every documented output of `make build`, `make image` and the image
// builds `make test` asks for is still there when make ends (none is taken for an
// intermediate file and deleted).
import t from 'tap';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { execa } from 'execa';
import { repo } from '../lib/host.ts';

const ARCHES = ['x86_64', 'aarch64'] as const;
/** what README's table promises, per arch (the image builder, image/cli.ts, writes vmlinuz and cmdline too) */
const BUILD = ['runit-ts', 'runit-ts.node', 'runit'];
const IMAGE = [...BUILD, 'initramfs.img'];

function scratch(): { dir: string; make: (...args: string[]) => Promise<string> } {
  const dir = mkdtempSync(join(tmpdir(), 'runit-ts-makefile-'));
  copyFileSync(join(repo, 'Makefile'), join(dir, 'Makefile'));
  // the addon's sources as the checkout has them (the Makefile names each)
  const native = readdirSync(join(repo, 'src', 'native')).map((f) => `src/native/${f}`);
  const sources = ['src/main.ts', ...native, 'stages/stage1.ts', 'image/runit.c', 'image/prestart.c', 'image/early.c', 'image/cli.ts', 'image/inputs.json', 'services/x/run', 'scripts/setup', 'scripts/inputs.ts', 'scripts/build.ts', 'scripts/code-cache.ts', 'scripts/sea-train.cjs', 'scripts/sea-loader.cjs', 'package.json', 'package-lock.json'];
  const old = new Date(Date.now() - 120_000);
  for (const f of sources) {
    mkdirSync(dirname(join(dir, f)), { recursive: true });
    writeFileSync(join(dir, f), '');
    utimesSync(join(dir, f), old, old);
  }
  // setup already done: the stamp is newer than what it depends on
  mkdirSync(join(dir, 'out'));
  writeFileSync(join(dir, 'out', '.setup-stamp'), '');
  const stamp = new Date(Date.now() - 60_000);
  utimesSync(join(dir, 'out', '.setup-stamp'), stamp, stamp);
  // "node scripts/build.ts bundle|cache ARCH|blob ARCH|sea ARCH" and "node image/cli.ts build --out DIR --arch
  // ARCH|all --outputs LIST ...": create the output (each boot output's file in DIR/ARCH)
  writeFileSync(
    join(dir, 'node'),
    `#!/bin/sh
case "$1 $2" in
  "scripts/build.ts bundle") mkdir -p out/bundle && : > out/bundle/runit-ts.cjs ;;
  "scripts/build.ts cache") : > "out/bundle/runit-ts-$3.cache" ;;
  "scripts/build.ts blob") : > "out/bundle/sea-$3.blob" ;;
  "scripts/build.ts sea") mkdir -p "out/$3" && : > "out/$3/runit-ts" ;;
  "image/cli.ts build")
    shift 2; out= arch= outputs=
    while [ $# -gt 0 ]; do case "$1" in --out) out=$2 ;; --arch) arch=$2 ;; --outputs) outputs=$2 ;; esac; shift; done
    [ "$arch" = all ] && arch="x86_64 aarch64"
    for a in $arch; do for o in $(echo "$outputs" | tr , ' '); do
      case "$o" in initramfs) f=initramfs.img ;; disk) f=disk.img ;; exedisk) f=exedisk.img ;; *) f=$o ;; esac
      mkdir -p "$out/$a" && : > "$out/$a/$f"
    done; done ;;
  *) echo "node stand-in: unexpected $*" >&2; exit 1 ;;
esac
`,
    { mode: 0o755 },
  );
  // "cc ... -o FILE ...": create FILE
  writeFileSync(join(dir, 'cc'), '#!/bin/sh\nwhile [ $# -gt 0 ]; do [ "$1" = -o ] && : > "$2"; shift; done\n', { mode: 0o755 });
  // the test runner: records that it ran
  writeFileSync(join(dir, 'tap'), '#!/bin/sh\necho "$@" > out/tap-ran\n', { mode: 0o755 });
  const tools = [`NODE=${join(dir, 'node')}`, `TAP=${join(dir, 'tap')}`, ...ARCHES.flatMap((a) => [`CC_${a}=${join(dir, 'cc')}`, `STRIP_${a}=true`])];
  const make = async (...args: string[]) => {
    const r = await execa('make', ['--no-print-directory', ...args, ...tools], { cwd: dir, all: true, reject: false });
    if (r.exitCode !== 0) throw new Error(`make ${args.join(' ')} failed:\n${r.all}`);
    return r.all;
  };
  return { dir, make };
}

const host = process.arch === 'arm64' ? 'aarch64' : 'x86_64';
const other = host === 'x86_64' ? 'aarch64' : 'x86_64';

t.test('make test-boot keeps both arches\' outputs', async (t) => {
  const s = scratch();
  t.teardown(() => rmSync(s.dir, { recursive: true, force: true }));
  const out = await s.make('test-boot');
  t.ok(existsSync(join(s.dir, 'out', 'tap-ran')), 'the boot tests ran');
  t.notMatch(out, /^rm /m, 'make deletes nothing');
  for (const a of ARCHES) for (const f of [...IMAGE, 'early']) t.ok(existsSync(join(s.dir, 'out', a, f)), `out/${a}/${f}`);
  // each arch's code cache (made by the arch's own Node) and blob are files of their own, kept
  for (const a of ARCHES) t.ok(existsSync(join(s.dir, 'out', 'bundle', `runit-ts-${a}.cache`)), `out/bundle/runit-ts-${a}.cache`);
  for (const a of ARCHES) t.ok(existsSync(join(s.dir, 'out', 'bundle', `sea-${a}.blob`)), `out/bundle/sea-${a}.blob`);
  // a missing output is made again by the next run
  rmSync(join(s.dir, 'out', other, 'runit'), { force: true });
  await s.make('test-boot');
  t.ok(existsSync(join(s.dir, 'out', other, 'runit')), `out/${other}/runit made again`);
});

for (const arch of ARCHES) {
  t.test(`make image ARCH=${arch} keeps every output`, async (t) => {
    const s = scratch();
    t.teardown(() => rmSync(s.dir, { recursive: true, force: true }));
    const out = await s.make('image', `ARCH=${arch}`);
    t.notMatch(out, /^rm /m, 'make deletes nothing');
    for (const f of IMAGE) t.ok(existsSync(join(s.dir, 'out', arch, f)), `out/${arch}/${f}`);
    // the default layout `make boot` boots: the executable on a read-only disk, with its early stage
    for (const f of ['exedisk.img', 'early']) t.ok(existsSync(join(s.dir, 'out', arch, f)), `out/${arch}/${f} (the default layout)`);
  });
}

t.test('make build, then make image: nothing rebuilt, nothing deleted', async (t) => {
  const s = scratch();
  t.teardown(() => rmSync(s.dir, { recursive: true, force: true }));
  await s.make('build');
  for (const f of BUILD) t.ok(existsSync(join(s.dir, 'out', host, f)), `build: out/${host}/${f}`);
  const out = await s.make('image');
  t.notMatch(out, /scripts\/build\.ts|-o out/, 'the executables are not built again');
  t.notMatch(out, /^rm /m, 'make deletes nothing');
  for (const f of IMAGE) t.ok(existsSync(join(s.dir, 'out', host, f)), `image: out/${host}/${f}`);
});
