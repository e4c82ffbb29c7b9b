// The import graph of the project's own TypeScript (src/, stages/, image/, scripts/,
// bench/): no cycle between files, and no import from a lower folder up. The layers, low
// to high: src/lib (the protocol and system library), the tools over it, the supervisor
// (runsv, then runsvdir), the library client and what is built on it, the entry points.
// Imports are read by TypeScript's own pre-processor, not by a pattern.
import t from 'tap';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import ts from 'typescript';
import { repo } from '../lib/host.ts';

const ROOTS = ['src', 'stages', 'image', 'scripts', 'bench'];

/** every .ts file below the roots, as a path relative to the checkout */
function sources(): string[] {
  const out: string[] = [];
  const walk = (dir: string): void => {
    for (const e of readdirSync(join(repo, dir), { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) out.push(p);
    }
  };
  for (const r of ROOTS) walk(r);
  return out.sort();
}

/** the project files a file imports (relative specifiers only; packages and node: are outside) */
function importsOf(file: string): string[] {
  const info = ts.preProcessFile(readFileSync(join(repo, file), 'utf8'), true, true);
  return info.importedFiles
    .map((f) => f.fileName)
    .filter((s) => s.startsWith('./') || s.startsWith('../'))
    .map((s) => relative(repo, resolve(repo, dirname(file), s)));
}

const files = sources();
const graph = new Map(files.map((f) => [f, importsOf(f)]));

t.test('the graph is read', async (t) => {
  t.ok(files.length >= 90, `${files.length} files`);
  t.ok(graph.get('src/main.ts')!.length > 3, 'src/main.ts imports the applets');
});

t.test('no import cycle between files', async (t) => {
  // Tarjan's strongly connected components: a component of more than one file is a cycle
  let index = 0;
  const idx = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const cycles: string[][] = [];
  const visit = (v: string): void => {
    idx.set(v, index);
    low.set(v, index++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!graph.has(w)) continue;
      if (!idx.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, idx.get(w)!));
    }
    if (low.get(v) === idx.get(v)) {
      const c: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        c.push(w);
      } while (w !== v);
      if (c.length > 1 || (graph.get(v) ?? []).includes(v)) cycles.push(c.sort());
    }
  };
  for (const f of files) if (!idx.has(f)) visit(f);
  t.same(cycles, [], 'files that import each other, directly or through others');
});

/**
 * The folders of src/ from low to high: a folder may import only from its own rank or
 * below. Folders at one rank do not import each other unless listed in SIDEWAYS.
 */
const RANK: Record<string, number> = {
  'src/lib': 0,
  'src/svlogd': 1, 'src/chpst': 1, 'src/utmpset': 1, 'src/runsvchdir': 1, 'src/sntp': 1, 'src/init': 1, 'src/sv': 1, 'src/harness': 1,
  'src/runsv': 2,
  'src/runsvdir': 3,
  'src/container': 4, 'src/analyze': 4, 'src/control': 4,
  'src/servicebuilder': 5, 'src/agent': 5,
  stages: 5, 'src/vm': 5,
  src: 6,
};

/** the src/ folder (or stages) a file belongs to, for RANK */
function layer(file: string): string | undefined {
  if (file.startsWith('stages/')) return 'stages';
  if (!file.startsWith('src/')) return undefined;
  const parts = file.split('/');
  return parts.length === 2 ? 'src' : `${parts[0]}/${parts[1]}`;
}

t.test('no import from a lower folder up', async (t) => {
  const up: string[] = [];
  const unknown = new Set<string>();
  for (const [f, imps] of graph) {
    const from = layer(f);
    if (from === undefined) continue;
    for (const i of imps) {
      if (!i.startsWith('src/') && !i.startsWith('stages/')) {
        up.push(`${f} -> ${i} (outside src/ and stages/)`);
        continue;
      }
      const to = layer(i)!;
      if (RANK[from] === undefined) unknown.add(from);
      if (RANK[to] === undefined) unknown.add(to);
      if (from !== to && RANK[to]! >= RANK[from]!) up.push(`${f} -> ${i}`);
    }
  }
  t.same([...unknown], [], 'every folder of src/ has a rank in this test');
  t.same(up, [], 'imports of a folder of the same rank or above');
});
