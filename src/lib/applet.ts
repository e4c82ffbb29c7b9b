// How a call of the multi-call executable names its applet: shared by the whole suite's
// dispatch (src/main.ts) and sv's own bundle (src/sv/entry.ts), which must read a command
// line the same way without loading the other applets.
import { basename, dirname } from 'node:path';

export type Applet = (argv: string[], argv0: string) => number | Promise<number>;

export const SELF = 'runit-ts';

/**
 * Which applet a command line asks for: [applet, its argv, the argv0 it sees]. Called as
 * runit-ts (or runit-ts.ANYTHING): the first argument; by an applet's name: that applet;
 * by any other name in an init.d directory: sv in LSB mode; else the name as called
 * (unknown). `isApplet` says which names are applets.
 */
export function resolveCall(argv0: string, args: string[], isApplet: (name: string) => boolean): { name: string; argv: string[]; argv0: string; self?: true } {
  const base = basename(argv0);
  if (base === SELF || base.startsWith(`${SELF}.`) || base === 'main.ts') {
    const [name = '', ...rest] = args;
    return { name, argv: rest, argv0: name, self: true };
  }
  if (isApplet(base)) return { name: base, argv: args, argv0 };
  if (basename(dirname(argv0)) === 'init.d') return { name: 'sv', argv: args, argv0 };
  return { name: base, argv: args, argv0 };
}
