// How a bundle's entry point ends (src/entry.ts, src/sv/entry.ts): run the applet, then
// end the process with its exit code, or report what it threw.
import { errLine, fatalLine } from './diag.ts';
import { quickExit } from './native.ts';

export function runToExit(argv0: string, work: () => number | Promise<number>): void {
  Promise.resolve()
    .then(work)
    .then(
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
}
