// package.json advertises only what exists: every export names a file in the project.
import t from 'tap';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repo } from '../lib/host.ts';

t.test('every export of package.json exists', async (t) => {
  const pkg = JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8')) as { exports?: Record<string, string> };
  const exports = Object.entries(pkg.exports ?? {});
  t.ok(exports.length > 0, 'some exports');
  for (const [name, file] of exports) t.ok(existsSync(join(repo, file)), `${name}: ${file}`);
});
