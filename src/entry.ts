// Entry point of the bundle (and of the single executable's every applet but sv, which has
// a bundle of its own: src/sv/entry.ts).
import { runToExit } from './lib/run-to-exit.ts';
import { run } from './main.ts';

// In a single executable argv is [execPath, argv0-as-called, ...args]; under plain
// node it is [node, script, ...args]: both put the name called at index 1.
const argv0 = process.argv[1] ?? 'runit-ts';
runToExit(argv0, () => run(argv0, process.argv.slice(2)));
