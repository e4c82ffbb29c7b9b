// Entry point of sv's own bundle in the single executable (scripts/build.ts): the loader
// (scripts/sea-loader.cjs) runs it instead of the whole suite's bundle when the call is
// sv's, the applet a run script or a boot test starts again and again. It holds sv and
// what sv imports, nothing of the supervisor: less code to load and check at every call
// (docs/performance.md). The command line is read as src/main.ts reads it.
import { resolveCall } from '../lib/applet.ts';
import { runToExit } from '../lib/run-to-exit.ts';
import { applet } from './main.ts';

const called = process.argv[1] ?? 'sv';
const { name, argv, argv0 } = resolveCall(called, process.argv.slice(2), (n) => n === 'sv');
runToExit(argv0, () => {
  // the loader picks this bundle for sv's calls only (a fault of the build otherwise)
  if (name !== 'sv') throw new Error(`sv's bundle called for '${name}'`);
  return applet(argv, argv0);
});
