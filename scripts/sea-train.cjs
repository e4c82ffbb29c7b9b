'use strict';
// One step of the code cache's making (scripts/code-cache.ts runs it with the target
// arch's Node and the executable's V8 options):
//   node EXEC_ARGV sea-train.cjs BUNDLE CACHE_IN|- CACHE_OUT APPLET [ARGS...]
// compiles BUNDLE as the executable does (scripts/sea-loader.cjs), with CACHE_IN's code if
// given, runs APPLET as if called by that name, and when the process exits writes V8's
// code cache of everything compiled by then to CACHE_OUT. APPLET `-` runs nothing: CACHE_IN
// is written again as this fresh process holds it, free of what the run that made it did.
const { readFileSync, writeFileSync } = require('node:fs');
const { basename } = require('node:path');
const { setFlagsFromString } = require('node:v8');
const { compile, wrap } = require('./sea-loader.cjs');

const [bundle, cacheIn, cacheOut, applet, ...args] = process.argv.slice(2);
if (!bundle || !cacheIn || !cacheOut || !applet || (applet === '-' && cacheIn === '-')) {
  process.stderr.write('usage: node sea-train.cjs BUNDLE CACHE_IN|- CACHE_OUT APPLET|- [ARGS...] (APPLET - needs CACHE_IN)\n');
  process.exit(2);
}
// V8's compilers off before anything is compiled, as the supervisor has them once started
// (src/lib/trim.ts): none runs on V8's worker thread while the run goes on, to leave a mark
// on a function (Sparkplug's "compiling") that would depend on the run's timing. Set at run
// time, as the supervisor does: flags given on the command line would stay in the hash.
if (applet !== '-') setFlagsFromString('--no-opt --no-sparkplug --no-maglev --regexp-tier-up-ticks=100'); // INTERPRETER_ONLY in src/lib/trim.ts
const script = compile(wrap(readFileSync(bundle, 'utf8')), cacheIn === '-' ? undefined : readFileSync(cacheIn), basename(bundle));
if (cacheIn !== '-' && script.cachedDataRejected) {
  process.stderr.write(`sea-train: ${cacheIn} rejected\n`);
  process.exit(1);
}
if (applet === '-') {
  writeFileSync(cacheOut, script.createCachedData());
} else {
  process.on('exit', () => {
    // the supervisor turns V8's compilers off at run time (src/lib/trim.ts): back to the
    // defaults, as V8 stamps the cache with a hash of the flags that differ from them and
    // accepts it only under the same flags
    setFlagsFromString('--opt --sparkplug --maglev --regexp-tier-up-ticks=1'); // V8_DEFAULTS in src/lib/trim.ts
    writeFileSync(cacheOut, script.createCachedData());
  });
  // as the executable is called: argv[1] is the name it was called by
  process.argv = [process.argv[0], applet, ...args];
  script.runInThisContext()(exports, require, module, __filename, __dirname);
}
