// scripts/build.ts: bundle the TypeScript suite with esbuild and pack it into one Node
// single executable (SEA) per arch, offline, from the pinned Node binaries in the cache.
//
//   node scripts/build.ts bundle            -> out/bundle/runit-ts.cjs
//   node scripts/build.ts blob ARCH         -> out/bundle/sea-ARCH.blob (with ARCH's V8 code cache)
//   node scripts/build.ts sea ARCH          -> out/ARCH/runit-ts (makes the blob first if missing or stale)
//   node scripts/build.ts lib               -> dist/ (the npm package: JavaScript + .d.ts)
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { build } from 'esbuild';
import { execa } from 'execa';
import { nodeBinary, repoRoot } from '../image/inputs.ts';
import { libEntries } from '../image/rootfs.ts';
import { hostArch, type Arch } from '../src/lib/platform.ts';

const out = join(repoRoot, 'out');
const bundleFile = join(out, 'bundle', 'runit-ts.cjs');
const FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';

export const STRIP: Record<Arch, string> = { x86_64: 'x86_64-linux-gnu-strip', aarch64: 'aarch64-linux-gnu-strip' };

function say(m: string): void {
  process.stderr.write(`[build] ${m}\n`);
}

async function bundle(): Promise<void> {
  const t0 = Date.now();
  const r = await build({
    entryPoints: [join(repoRoot, 'src', 'entry.ts')],
    outfile: bundleFile,
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node24',
    minify: true,
    legalComments: 'none',
    metafile: true,
    logLevel: 'warning',
  });
  const size = Object.values(r.metafile.outputs)[0]?.bytes ?? 0;
  // what went into the bundle: image/sbom.ts lists the npm packages from it
  writeFileSync(join(out, 'bundle', 'meta.json'), JSON.stringify(r.metafile));
  say(`bundle ${bundleFile} ${(size / 1024).toFixed(0)} KiB in ${Date.now() - t0} ms`);
}

/**
 * Options every executable starts with: SIGUSR1 must not open an inspector in a
 * supervisor; one V8 worker thread is plenty. The blob is made by a Node started with the
 * same options, because V8 accepts a code cache only from a Node whose V8 flags hash the
 * same (a V8 flag here that the maker lacked would make every start reject the cache).
 * A young generation of 1 MiB semi-spaces keeps the supervisor small (docs/performance.md).
 */
export const EXEC_ARGV = ['--disable-sigusr1', '--v8-pool-size=1', '--max-semi-space-size=1'];

/** qemu-user, to run the other arch's Node on this machine (package qemu-user-static) */
const QEMU_USER: Record<Arch, string> = { x86_64: 'qemu-x86_64-static', aarch64: 'qemu-aarch64-static' };

/**
 * out/bundle/sysroot-ARCH: the dynamic loader and the libraries the image gives Node
 * (image/rootfs.ts's libEntries, from the pinned Debian packages in the cache), where
 * qemu-user's -L finds them.
 */
function sysroot(arch: Arch): string {
  const root = join(out, 'bundle', `sysroot-${arch}`);
  rmSync(root, { recursive: true, force: true });
  for (const e of libEntries(arch)) {
    const p = join(root, e.path);
    mkdirSync(dirname(p), { recursive: true });
    if (e.type === 'symlink') symlinkSync(e.target!, p);
    else writeFileSync(p, typeof e.data === 'function' ? e.data() : e.data!, { mode: e.mode });
  }
  return root;
}

/**
 * out/bundle/sea-ARCH.blob: the bundle and V8's code cache of it, which saves compiling the
 * bundle at every start (sv status 30 -> 22 ms on the host; docs/performance.md). The cache
 * is specific to the arch and the exact Node, so each arch's blob is made by its own pinned
 * Node: the other arch's under qemu-user with the image's libraries. `--random-seed` fixes
 * the hash seed the cache's tables are laid out with, so the blob is the same at every build;
 * V8 leaves that flag out of the flags hash, so the executables (random seeds) accept it.
 */
async function blob(arch: Arch): Promise<string> {
  const t0 = Date.now();
  const dir = join(out, 'bundle');
  const blobFile = join(dir, `sea-${arch}.blob`);
  const cfgFile = join(dir, `sea-${arch}.json`);
  // paths relative to dir: the checkout's location stays out of the blob
  const config = {
    main: 'runit-ts.cjs',
    output: `sea-${arch}.blob.tmp`,
    disableExperimentalSEAWarning: true,
    useSnapshot: false,
    useCodeCache: true,
    execArgv: EXEC_ARGV,
    execArgvExtension: 'none',
  };
  writeFileSync(cfgFile, JSON.stringify(config, null, 2) + '\n');
  const args = [...EXEC_ARGV, '--random-seed=1', '--experimental-sea-config', cfgFile];
  const host = hostArch();
  if (arch === host) await execa(nodeBinary(arch), args, { cwd: dir });
  else {
    await execa(QEMU_USER[arch], ['-L', sysroot(arch), nodeBinary(arch), ...args], { cwd: dir }).catch((e: unknown) => {
      const missing = (e as { code?: string }).code === 'ENOENT';
      throw new Error(missing ? `${QEMU_USER[arch]} not found: the ${arch} blob is made by the ${arch} Node under it (scripts/setup installs qemu-user-static)` : String(e));
    });
  }
  renameSync(join(dir, config.output), blobFile);
  say(`blob ${blobFile} (code cache by the ${arch} Node${arch === host ? '' : ` under ${QEMU_USER[arch]}`}) in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  return blobFile;
}

async function sea(arch: Arch): Promise<void> {
  const t0 = Date.now();
  let blobFile = join(out, 'bundle', `sea-${arch}.blob`);
  // make gives a fresh blob; run by hand, a blob older than the bundle is made again
  if (!existsSync(blobFile) || statSync(blobFile).mtimeMs < statSync(bundleFile).mtimeMs) blobFile = await blob(arch);
  const dir = join(out, arch);
  mkdirSync(dir, { recursive: true });
  const target = join(dir, 'runit-ts');
  const tmp = `${target}.tmp`;
  copyFileSync(nodeBinary(arch), tmp);
  chmodSync(tmp, 0o755);
  await execa(STRIP[arch], ['--strip-all', tmp]);
  await execa(process.execPath, [join(repoRoot, 'node_modules', 'postject', 'dist', 'cli.js'), tmp, 'NODE_SEA_BLOB', blobFile, '--sentinel-fuse', FUSE], {
    stdout: 'ignore',
  });
  renameSync(tmp, target);
  say(`sea ${target} ${(statSync(target).size / 1048576).toFixed(1)} MiB in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
}

/**
 * The library for npm: tsc compiles src/index.ts, the harness and the package's commands
 * to dist/ with declarations. tsc rewrites '.ts' import paths in JavaScript but not in
 * .d.ts files, where a consumer's compiler needs '.js': those are rewritten here.
 */
async function lib(): Promise<void> {
  const t0 = Date.now();
  const dist = join(repoRoot, 'dist');
  rmSync(dist, { recursive: true, force: true });
  await execa(join(repoRoot, 'node_modules', '.bin', 'tsc'), ['-p', join(repoRoot, 'tsconfig.build.json')], { stdio: 'inherit' });
  let files = 0;
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.d.ts')) {
        const text = readFileSync(p, 'utf8');
        const fixed = text.replace(/(from\s+|import\()(['"])(\.{1,2}\/[^'"]*?)\.ts\2/g, '$1$2$3.js$2');
        if (fixed !== text) writeFileSync(p, fixed);
        files++;
      } else if (e.name === 'cli.js') chmodSync(p, 0o755);
    }
  };
  walk(dist);
  say(`lib ${dist}: ${files} declaration files in ${Date.now() - t0} ms`);
}

const [cmd, arch] = process.argv.slice(2);
if (cmd === 'bundle') await bundle();
else if (cmd === 'lib') await lib();
else if (cmd === 'blob' && (arch === 'x86_64' || arch === 'aarch64')) await blob(arch);
else if (cmd === 'sea' && (arch === 'x86_64' || arch === 'aarch64')) await sea(arch);
else {
  process.stderr.write('usage: node scripts/build.ts bundle | blob x86_64|aarch64 | sea x86_64|aarch64 | lib\n');
  process.exit(2);
}
