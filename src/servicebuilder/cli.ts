#!/usr/bin/env node
// runit-ts-servicebuilder: the servicebuilder applet as the npm package's command.
import { errLine, fatalLine } from '../lib/diag.ts';
import { main } from './main.ts';

/** The name the command's messages start with. */
const PROG = 'runit-ts-servicebuilder';

main(process.argv.slice(2), PROG).then(
  (code) => process.exit(code),
  // main() reports what it expects itself: this is only for what it did not
  (e: unknown) => {
    errLine(fatalLine(PROG, e instanceof Error ? e.message : String(e)));
    process.exit(111);
  },
);
