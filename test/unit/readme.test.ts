// The README and docs/ hold together with the code: every relative link (and its
// #anchor, slugged as GitHub does) points at a file and heading that exist, every
// `make TARGET` the README names is a target of the Makefile, and the container-init
// knobs table gives the defaults src/container/init.ts uses.
import t from 'tap';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { repo } from '../lib/host.ts';
import { DEFAULTS } from '../../src/container/init.ts';

const DOCS = ['README.md', 'src/harness/README.md', ...readdirSync(join(repo, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];

/** The text of a Markdown file without its fenced code blocks (a "# " there is no heading). */
function prose(file: string): string {
  return readFileSync(join(repo, file), 'utf8').replace(/^```[\s\S]*?^```/gm, '');
}

/** GitHub's anchors of a file's headings: lower case, punctuation dropped, spaces to hyphens, repeats numbered. */
function anchors(file: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  for (const m of prose(file).matchAll(/^#{1,6} +(.+?) *$/gm)) {
    const base = m[1]!.toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, '').replace(/ /g, '-');
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  }
  return out;
}

for (const file of DOCS) {
  t.test(`${file}: every relative link and anchor resolves`, async (t) => {
    const bad: string[] = [];
    let n = 0;
    for (const m of prose(file).matchAll(/\]\(([^)\s]+)\)/g)) {
      const target = m[1]!;
      if (/^[a-z]+:/.test(target)) continue;
      n++;
      const [path, anchor] = target.split('#') as [string, string | undefined];
      const dest = path === '' ? file : relative(repo, join(repo, dirname(file), path));
      if (!existsSync(join(repo, dest))) bad.push(`${target}: no file ${dest}`);
      else if (anchor !== undefined && dest.endsWith('.md') && !anchors(dest).has(anchor)) bad.push(`${target}: no heading #${anchor} in ${dest}`);
    }
    t.same(bad, [], `${n} relative links`);
  });
}

t.test('every make target the README names is in the Makefile', async (t) => {
  const makefile = readFileSync(join(repo, 'Makefile'), 'utf8');
  const phony = new Set(/^\.PHONY:(.*)$/m.exec(makefile)![1]!.trim().split(/\s+/));
  const named = new Set([...prose('README.md').matchAll(/`make ([a-z][a-z-]*)/g)].map((m) => m[1]!));
  t.ok(named.size > 10, `${named.size} targets named`);
  t.same([...named].filter((n) => !phony.has(n)), [], 'targets the Makefile lacks');
});

t.test("the container-init knobs table gives init.ts's defaults", async (t) => {
  const readme = prose('README.md');
  for (const [knob, value] of Object.entries(DEFAULTS)) {
    const row = new RegExp(`^\\| \`${knob}\` \\| \`([^\`]*)\``, 'm').exec(readme);
    t.equal(row?.[1], value, `${knob}`);
  }
});
