// scripts/build.ts: bundle the TypeScript suite with esbuild and pack it into one Node
// single executable (SEA) per arch, offline, from the pinned Node binaries in the cache.
//
//   node scripts/build.ts bundle            -> out/bundle/runit-ts.cjs
//   node scripts/build.ts sea ARCH          -> out/ARCH/runit-ts
//   node scripts/build.ts lib               -> dist/ (the npm package: JavaScript + .d.ts)
import { chmodSync, copyFileSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { build } from 'esbuild';
import { execa } from 'execa';
import { nodeBinary, repoRoot } from '../image/inputs.ts';
import { requireHostArch, type Arch } from '../src/lib/platform.ts';

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

/** The SEA blob is arch-independent without a code cache, so one blob serves both arches. */
async function blob(): Promise<string> {
  const dir = join(out, 'bundle');
  const blobFile = join(dir, 'sea-prep.blob');
  const config = {
    main: bundleFile,
    output: blobFile,
    disableExperimentalSEAWarning: true,
    useSnapshot: false,
    useCodeCache: false,
    // SIGUSR1 must not open an inspector in a supervisor; one V8 worker thread is plenty
    execArgv: ['--disable-sigusr1', '--v8-pool-size=1', '--max-semi-space-size=1'], // a small young generation: docs/performance.md
    execArgvExtension: 'none',
  };
  const cfgFile = join(dir, 'sea-config.json');
  writeFileSync(cfgFile, JSON.stringify(config, null, 2));
  // the blob must be made by a Node of the same version as the executable's base
  await execa(nodeBinary(requireHostArch()), ['--experimental-sea-config', cfgFile], { cwd: dir });
  return blobFile;
}

async function sea(arch: Arch): Promise<void> {
  const t0 = Date.now();
  const blobFile = await blob();
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
  const { renameSync } = await import('node:fs');
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
else if (cmd === 'sea' && (arch === 'x86_64' || arch === 'aarch64')) await sea(arch);
else {
  process.stderr.write('usage: node scripts/build.ts bundle | sea x86_64|aarch64 | lib\n');
  process.exit(2);
}
