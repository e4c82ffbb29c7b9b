// Entry point of the bundle (and of the single executable).
import { errLine, fatalLine } from './lib/diag.ts';
import { quickExit } from './lib/native.ts';
import { run } from './main.ts';

// In a single executable argv is [execPath, argv0-as-called, ...args]; under plain
// node it is [node, script, ...args]: both put the name called at index 1.
const argv0 = process.argv[1] ?? 'runit-ts';
run(argv0, process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
    // long-running applets may leave handles (FIFOs, watchers) open: end now
    setImmediate(() => quickExit(code));
  },
  (e: unknown) => {
    errLine(fatalLine(argv0, e instanceof Error ? (e.stack ?? e.message) : String(e)));
    process.exit(111);
  },
);
