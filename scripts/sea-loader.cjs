'use strict';
// The single executable's main: compiles the bundle for the applet called (an asset of the
// blob: the suite's, or sv's own) with the V8 code cache made for that applet by a training
// run of the bundle (scripts/code-cache.ts), then runs it.
//
// Node's own SEA code cache (useCodeCache) is made right after compiling the bundle, so
// it holds only the code V8 compiles eagerly (the top level); every function the applet
// then calls is compiled on its first call. A cache made by V8 after the code has run
// holds every function compiled so far: with one made after a run of the supervisor,
// stage 2 and the supervisor's first pass start with their bytecode ready, which under
// emulation is most of their start (docs/performance.md).
//
// Plain CommonJS, so that the training run (scripts/sea-train.cjs) compiles the very same
// source text (wrapper, file name) as the executable does.
const { Script } = require('node:vm');

/** the name the suite's bundle is known by in stack traces (sv's: SV_FILENAME) */
const FILENAME = 'runit-ts.cjs';

/** The bundle as a CommonJS module function: the blob holds it so (scripts/build.ts). */
function wrap(bundle) {
  return `(function (exports, require, module, __filename, __dirname) {${bundle}\n})`;
}

/**
 * Compile the wrapped bundle, with `cachedData` if given. The source is used as it comes:
 * joining the wrapper here would have V8 copy the 380 KiB into one string first, ~25 ms
 * of every start under emulation.
 */
function compile(wrapped, cachedData, filename = FILENAME) {
  return new Script(wrapped, { filename, ...(cachedData ? { cachedData } : {}) });
}

/**
 * A diagnostic: V8's CPU profile of this process's first `ms` milliseconds, written to
 * `path` as a .cpuprofile (bench/boot.ts --cpuprof gets one of the boot's supervisor). The
 * inspector is loaded only then; every figure is inflated by the sampling, the shares count.
 */
function profile(path, ms) {
  const { Session } = require('node:inspector');
  const session = new Session();
  session.connect();
  session.post('Profiler.enable');
  session.post('Profiler.setSamplingInterval', { interval: 500 });
  session.post('Profiler.start');
  setTimeout(() => {
    session.post('Profiler.stop', (err, res) => {
      if (err) process.stderr.write(`runit-ts: RUNIT_TS_CPUPROF: ${err.message}\n`);
      else {
        // whole or not at all: a reader waits for the file to appear
        const fs = require('node:fs');
        fs.writeFileSync(`${path}.new`, JSON.stringify(res.profile));
        fs.renameSync(`${path}.new`, path);
      }
      session.disconnect();
    });
  }, ms).unref();
}

/**
 * What each kind of call runs: the bundle asset and its code cache (scripts/build.ts packs
 * them under these names). sv has a bundle of its own (src/sv/entry.ts): sv and what it
 * imports, so a call of sv loads and checks none of the supervisor's code.
 */
const SV_FILENAME = 'runit-ts-sv.cjs';
const ASSETS = {
  supervisor: { bundle: FILENAME, cache: 'runit-ts.cache' },
  container: { bundle: FILENAME, cache: 'runit-ts-container.cache' },
  sv: { bundle: SV_FILENAME, cache: 'runit-ts-sv.cache' },
};
/** the asset naming every applet, a line each (scripts/build.ts writes it from src/main.ts) */
const APPLETS_ASSET = 'runit-ts.applets';

/**
 * Which kind of call argv is (ASSETS): container-init's, sv's (called as sv, `runit-ts sv`,
 * or by a name in an init.d directory that is no applet's, as src/main.ts resolves it),
 * and the supervisor's for every other applet. argv as a single executable has it:
 * [execPath, the name called, ...args]. `isApplet` is asked only of a name in init.d.
 */
function callKind(argv, isApplet) {
  const called = argv[1] || '';
  const slash = called.lastIndexOf('/');
  const base = called.slice(slash + 1);
  const dir = called.slice(0, Math.max(slash, 0));
  let applet = base;
  if (base === 'runit-ts' || base.startsWith('runit-ts.')) applet = argv[2];
  else if ((dir === 'init.d' || dir.endsWith('/init.d')) && !isApplet(base)) applet = 'sv';
  if (applet === 'container-init') return 'container';
  if (applet === 'sv') return 'sv';
  return 'supervisor';
}

/** The applets' names, from the blob. */
function appletNames() {
  return new Set(require('node:sea').getAsset(APPLETS_ASSET, 'utf8').split('\n'));
}

/**
 * The addon (src/native/), where src/lib/native.ts looks for it: $RUNIT_TS_ADDON, beside
 * the executable (/proc/self/exe; before /proc is mounted, as in stage 1, the name called),
 * or /usr/lib/runit-ts. Loaded here, before the bundle, for two things of every start
 * (ignoreLockOrder, externalLatin1) and left where native() takes it; undefined when
 * there is none (the bundle then runs without, as it would).
 */
function loadAddon() {
  const fs = require('node:fs');
  const path = require('node:path');
  let exe = process.execPath;
  try {
    exe = fs.readlinkSync('/proc/self/exe');
  } catch {
    /* no /proc yet */
  }
  for (const p of [process.env.RUNIT_TS_ADDON, path.join(path.dirname(exe), 'runit-ts.node'), '/usr/lib/runit-ts/runit-ts.node']) {
    if (!p || !fs.existsSync(p)) continue;
    try {
      const mod = { exports: {} };
      process.dlopen(mod, p);
      return mod.exports;
    } catch {
      return undefined;
    }
  }
  return undefined;
}

const sea = require('node:sea');
if (sea.isSea()) {
  // RUNIT_TS_CPUPROF=FILE [RUNIT_TS_CPUPROF_MS=N, default 10000]: taken out of the
  // environment, so that what this process starts is not profiled too
  const prof = process.env.RUNIT_TS_CPUPROF;
  if (prof) {
    delete process.env.RUNIT_TS_CPUPROF;
    profile(prof, Number(process.env.RUNIT_TS_CPUPROF_MS) || 10000);
  }
  const addon = loadAddon();
  if (addon) {
    globalThis[Symbol.for('runit-ts.addon')] = addon;
    // every lock V8 takes from here on skips Abseil's lock-order bookkeeping
    if (typeof addon.ignoreLockOrder === 'function') addon.ignoreLockOrder();
  }
  const assets = ASSETS[callKind(process.argv, (name) => appletNames().has(name))];
  let cache;
  try {
    cache = new Uint8Array(sea.getRawAsset(assets.cache));
  } catch {
    // a blob without a cache: the bundle is compiled as it runs
  }
  // the bundle is ASCII (scripts/build.ts checks): a Latin-1 string over the asset's bytes
  // in the executable's pages (the addon's externalLatin1), else a plain copy into a V8
  // string, where getAsset(..., 'utf8') makes a TextDecoder and decodes (~5 ms of a start
  // under emulation); the copy is 400 KiB more in V8's heap for a process's whole life
  const raw = sea.getRawAsset(assets.bundle);
  const external = addon && typeof addon.externalLatin1 === 'function' ? addon.externalLatin1(raw) : undefined;
  const script = compile(external ?? Buffer.from(raw).latin1Slice(), cache, assets.bundle);
  // V8 rejects a cache made by another V8, another arch or other V8 flags: still correct,
  // only slower, and a build fault (test/host/dispatch.test.ts fails on this line)
  if (cache && script.cachedDataRejected) process.stderr.write('runit-ts: code cache rejected\n');
  script.runInThisContext()(exports, require, module, __filename, __dirname);
} else {
  module.exports = { ASSETS, APPLETS_ASSET, callKind, compile, wrap };
}
