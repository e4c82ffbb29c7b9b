// scripts/build.ts: bundle the TypeScript suite with esbuild and pack it into one Node
// single executable (SEA) per arch, offline, from the pinned Node binaries in the cache.
//
//   node scripts/build.ts bundle            -> out/bundle/runit-ts.cjs (the suite), runit-ts-sv.cjs (sv's own)
//   node scripts/build.ts cache ARCH [FILE] -> out/bundle/runit-ts-ARCH{,-container,-sv}.cache (V8's code caches after training runs), or FILE{,-container,-sv}
//   node scripts/build.ts blob ARCH         -> out/bundle/sea-ARCH.blob (loader, the two bundles, ARCH's code caches, the applets' names)
//   node scripts/build.ts sea ARCH          -> out/ARCH/runit-ts (makes the blob first if missing or stale)
//   node scripts/build.ts lib               -> dist/ (the npm package: JavaScript + .d.ts)
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, dirname, join, resolve } from 'node:path';
import { build } from 'esbuild';
import { execa } from 'execa';
import { nodeBinary, repoRoot } from '../image/inputs.ts';
import { libEntries } from '../image/rootfs.ts';
import { APPLETS } from '../src/main.ts';
import { hostArch, isArch, qemuUser, requireHostArch, type Arch } from '../src/lib/platform.ts';
import { CACHE_KINDS, cacheFiles, trainCodeCache, type CacheKind } from './code-cache.ts';
import { seaExecutable } from './sea.ts';

const out = join(repoRoot, 'out');
const bundleFile = join(out, 'bundle', 'runit-ts.cjs');
/** sv's own bundle (src/sv/entry.ts): what the executable runs for a call of sv */
const svBundleFile = join(out, 'bundle', 'runit-ts-sv.cjs');


function say(m: string): void {
  process.stderr.write(`[build] ${m}\n`);
}

async function bundle(): Promise<void> {
  const t0 = Date.now();
  const r = await build({
    entryPoints: { 'runit-ts': join(repoRoot, 'src', 'entry.ts'), 'runit-ts-sv': join(repoRoot, 'src', 'sv', 'entry.ts') },
    outdir: dirname(bundleFile),
    outExtension: { '.js': '.cjs' },
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node24',
    minify: true,
    legalComments: 'none',
    metafile: true,
    logLevel: 'warning',
  });
  const sizes = [bundleFile, svBundleFile].map((f) => `${f} ${(statSync(f).size / 1024).toFixed(0)} KiB`).join(', ');
  // what went into the bundles: image/sbom.ts lists the npm packages from it
  writeFileSync(join(out, 'bundle', 'meta.json'), JSON.stringify(r.metafile));
  say(`bundles ${sizes} in ${Date.now() - t0} ms`);
}

/**
 * Options every executable starts with: SIGUSR1 must not open an inspector in a
 * supervisor; one V8 worker thread is plenty. The blob is made by a Node started with the
 * same options, because V8 accepts a code cache only from a Node whose V8 flags hash the
 * same (a V8 flag here that the maker lacked would make every start reject the cache).
 * A young generation of 3 MiB semi-spaces, fixed: the boot (Node's start, stage 1 and the
 * supervisor's first pass of twenty services) allocates about 2 MiB, so no scavenge runs
 * before the services are up (the first one also has QEMU translate the collector); 1 MiB
 * semi-spaces had one or two in the boot. The supervisor keeps ~1.7 MiB more for it (PSS
 * 14.9 -> 16.6 MiB), measured in docs/performance.md.
 */
export const EXEC_ARGV = ['--disable-sigusr1', '--v8-pool-size=1', '--min-semi-space-size=3', '--max-semi-space-size=3'];

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

/** The command that runs ARCH's pinned Node here: the other arch's under qemu-user. */
function nodeCommand(arch: Arch): string[] {
  return arch === hostArch() ? [nodeBinary(arch)] : [qemuUser(arch), '-L', sysroot(arch), nodeBinary(arch)];
}

/**
 * out/bundle/runit-ts-ARCH.cache: V8's code cache of the bundle after a training run of
 * the supervisor (scripts/code-cache.ts) by ARCH's own Node: the cache is specific to the
 * arch and the exact Node. Beside it, container-init's and sv's (runit-ts-ARCH-container.cache,
 * runit-ts-ARCH-sv.cache). `file` elsewhere: the same made again, to compare (test/repro).
 */
async function cache(arch: Arch, file = join(out, 'bundle', `runit-ts-${arch}.cache`)): Promise<string> {
  const addon = join(out, arch, 'runit-ts.node');
  if (!existsSync(addon)) throw new Error(`no ${addon}: the training run needs the arch's addon (make out/${arch}/runit-ts.node)`);
  try {
    await trainCodeCache({ node: nodeCommand(arch), nodeBinary: nodeBinary(arch), execArgv: EXEC_ARGV, bundle: bundleFile, svBundle: svBundleFile, addon, out: file, say });
  } catch (e) {
    if ((e as { code?: string }).code === 'ENOENT' && arch !== hostArch())
      throw new Error(`${qemuUser(arch)} not found: the ${arch} code cache is made by the ${arch} Node under it (scripts/setup installs qemu-user-static)`);
    throw e;
  }
  return file;
}

/**
 * out/bundle/sea-ARCH.blob: the loader (scripts/sea-loader.cjs) as the main script, the
 * two bundles, ARCH's code caches and the applets' names as assets. The blob holds no code of Node's making (no
 * SEA code cache, no snapshot), so any Node of the same version writes the same blob.
 */
async function blob(arch: Arch): Promise<string> {
  const t0 = Date.now();
  const dir = join(out, 'bundle');
  const blobFile = join(dir, `sea-${arch}.blob`);
  const cfgFile = join(dir, `sea-${arch}.json`);
  const caches = cacheFiles(join(dir, `runit-ts-${arch}.cache`));
  const bundled = Math.max(statSync(bundleFile).mtimeMs, statSync(svBundleFile).mtimeMs);
  if (CACHE_KINDS.some((k) => !existsSync(caches[k]) || statSync(caches[k]).mtimeMs < bundled)) await cache(arch);
  copyFileSync(join(repoRoot, 'scripts', 'sea-loader.cjs'), join(dir, 'sea-loader.cjs'));
  // how the loader wraps a bundle, and the names it reads its assets by
  const { wrap, ASSETS, APPLETS_ASSET } = createRequire(import.meta.url)('./sea-loader.cjs') as {
    wrap: (bundle: string) => string;
    ASSETS: Record<CacheKind, { bundle: string; cache: string }>;
    APPLETS_ASSET: string;
  };
  const assets: Record<string, string> = {};
  for (const [file, kind] of [[bundleFile, 'supervisor'], [svBundleFile, 'sv']] as const) {
    const bundle = readFileSync(file);
    // the loader reads a bundle as Latin-1 (no UTF-8 decoding at every start): esbuild's
    // output is ASCII (its default charset escapes anything else)
    const high = bundle.findIndex((b) => b > 0x7f);
    if (high >= 0) throw new Error(`${file}: a byte that is not ASCII at offset ${high}; the executable's loader reads its bundles as Latin-1`);
    // the bundle as the loader compiles it: wrapped once here rather than at every start
    const wrapped = basename(file).replace(/\.cjs$/, '.wrapped.cjs');
    writeFileSync(join(dir, wrapped), wrap(bundle.toString('latin1')));
    assets[ASSETS[kind].bundle] = wrapped;
  }
  for (const k of CACHE_KINDS) assets[ASSETS[k].cache] = basename(caches[k]);
  // the applets' names, for the loader to tell an applet's name in init.d from sv's LSB mode
  writeFileSync(join(dir, 'runit-ts.applets'), Object.keys(APPLETS).join('\n'));
  assets[APPLETS_ASSET] = 'runit-ts.applets';
  // paths relative to dir: the checkout's location stays out of the blob
  const config = {
    main: 'sea-loader.cjs',
    output: `sea-${arch}.blob.tmp`,
    disableExperimentalSEAWarning: true,
    useSnapshot: false,
    useCodeCache: false,
    execArgv: EXEC_ARGV,
    execArgvExtension: 'none',
    assets,
  };
  writeFileSync(cfgFile, JSON.stringify(config, null, 2) + '\n');
  await execa(nodeBinary(requireHostArch()), ['--experimental-sea-config', cfgFile], { cwd: dir });
  renameSync(join(dir, config.output), blobFile);
  say(`blob ${blobFile} in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
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
  await seaExecutable(arch, blobFile, target);
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

const [cmd, arch, file] = process.argv.slice(2);
if (cmd === 'bundle') await bundle();
else if (cmd === 'lib') await lib();
else if (cmd === 'cache' && isArch(arch)) await cache(arch, file === undefined ? undefined : resolve(file));
else if (cmd === 'blob' && isArch(arch)) await blob(arch);
else if (cmd === 'sea' && isArch(arch)) await sea(arch);
else {
  process.stderr.write('usage: node scripts/build.ts bundle | cache x86_64|aarch64 [FILE] | blob x86_64|aarch64 | sea x86_64|aarch64 | lib\n');
  process.exit(2);
}
