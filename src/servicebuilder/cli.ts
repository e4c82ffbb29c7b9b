#!/usr/bin/env node
// runit-ts-servicebuilder: the servicebuilder applet as the npm package's command.
import { main } from './main.ts';

main(process.argv.slice(2), 'runit-ts-servicebuilder').then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`runit-ts-servicebuilder: fatal: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(111);
  },
);
