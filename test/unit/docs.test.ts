// Every name the package exports (runit-ts and runit-ts/harness) has a doc comment,
// read the way an editor shows it: through the TypeScript compiler's symbols.
import t from 'tap';
import { join } from 'node:path';
import ts from 'typescript';
import { repo } from '../lib/host.ts';

const entries = [join(repo, 'src/index.ts'), join(repo, 'src/harness/index.ts')];
const program = ts.createProgram(entries, { module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext, target: ts.ScriptTarget.ES2023, allowImportingTsExtensions: true, noEmit: true, strict: true });
const checker = program.getTypeChecker();

for (const entry of entries) {
  t.test(`every export of ${entry.slice(repo.length + 1)} is documented`, async (t) => {
    const sf = program.getSourceFile(entry)!;
    const mod = checker.getSymbolAtLocation(sf)!;
    const exports = checker.getExportsOfModule(mod);
    t.ok(exports.length > 5, `${exports.length} exports`);
    const missing: string[] = [];
    for (const e of exports) {
      const sym = e.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(e) : e;
      const doc = ts.displayPartsToString(sym.getDocumentationComment(checker)).trim();
      if (!doc) missing.push(e.getName());
    }
    t.same(missing, [], 'exports without a doc comment');
  });
}
