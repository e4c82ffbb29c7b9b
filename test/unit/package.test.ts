// package.json advertises only what exists: every export and bin is built from a
// source file of the project into dist/ (make lib; the packed package is tested in
// test/host/package.test.ts).
import t from 'tap';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repo } from '../lib/host.ts';

type Target = string | Record<string, string>;
const pkg = JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8')) as { exports?: Record<string, Target>; bin?: Record<string, string>; main?: string; types?: string; files?: string[] };
const build = JSON.parse(readFileSync(join(repo, 'tsconfig.build.json'), 'utf8')) as { files: string[] };

/** The source a dist/ path is compiled from (dist/x/y.js and .d.ts <- src/x/y.ts). */
function source(file: string): string {
  return join(repo, file.replace(/^\.\/dist\//, 'src/').replace(/\.d\.ts$|\.js$/, '.ts'));
}

t.test('every export of package.json is built from a source file', async (t) => {
  const exports = Object.entries(pkg.exports ?? {});
  t.ok(exports.length > 0, 'some exports');
  for (const [name, target] of exports) {
    const files = typeof target === 'string' ? [target] : Object.values(target);
    for (const f of files) {
      if (f === './package.json') continue;
      t.match(f, /^\.\/dist\//, `${name}: ${f} is in the built package`);
      t.ok(existsSync(source(f)), `${name}: ${f} <- ${source(f)}`);
    }
  }
  for (const f of [pkg.main!, pkg.types!]) t.ok(existsSync(source(f)), `${f} is built`);
});

t.test('every bin is a built command, and a tsc entry point', async (t) => {
  for (const [name, f] of Object.entries(pkg.bin ?? {})) {
    t.ok(existsSync(source(f)), `${name}: ${f}`);
    t.ok(build.files.includes(source(f).slice(repo.length + 1)), `${name}: compiled by tsconfig.build.json`);
  }
  t.same(pkg.files, ['dist/', 'README.md'], 'the package ships the build and the README only');
});
