// execvp's search of PATH (src/lib/exec.ts pathSearch), with the attempt a stand-in for
// execve: which candidates are tried, in which order, and which error is reported.
import t from 'tap';
import { pathSearch } from '../../src/lib/exec.ts';

/** An attempt that fails with `codes[file]` (ENOENT for any other) and records what it was given. */
function fake(codes: Record<string, string | 'ok'>): { tried: string[]; attempt: (file: string) => string } {
  const tried: string[] = [];
  return {
    tried,
    attempt: (file) => {
      tried.push(file);
      const c = codes[file] ?? 'ENOENT';
      if (c === 'ok') return `ran ${file}`;
      throw Object.assign(new Error(`${c}: ${file}`), { code: c });
    },
  };
}

t.test('a name with a slash is tried as it is, once', async (t) => {
  const f = fake({ './x': 'ok' });
  t.equal(pathSearch('./x', '/a:/b', f.attempt), 'ran ./x');
  t.same(f.tried, ['./x']);
  const g = fake({});
  t.throws(() => pathSearch('sub/x', '/a', g.attempt), { code: 'ENOENT' });
  t.same(g.tried, ['sub/x'], 'no search for a name with a slash');
});

t.test('each directory in turn, an empty one as the current directory', async (t) => {
  const f = fake({ '/b/x': 'ok' });
  t.equal(pathSearch('x', '/a:/b:/c', f.attempt), 'ran /b/x');
  t.same(f.tried, ['/a/x', '/b/x']);
  const g = fake({ './x': 'ok' });
  t.equal(pathSearch('x', '/a::/c', g.attempt), 'ran ./x');
});

t.test('the error reported: the last other than ENOENT, else ENOENT; a hard error stops the search', async (t) => {
  const f = fake({ '/a/x': 'EACCES' });
  t.throws(() => pathSearch('x', '/a:/b', f.attempt), { code: 'EACCES' }, 'EACCES found before an ENOENT');
  t.same(f.tried, ['/a/x', '/b/x'], 'the search went on past EACCES');
  const g = fake({ '/a/x': 'ENOEXEC', '/b/x': 'ok' });
  t.throws(() => pathSearch('x', '/a:/b', g.attempt), { code: 'ENOEXEC' });
  t.same(g.tried, ['/a/x'], 'stopped at ENOEXEC');
  const h = fake({ '/a/x': 'EPERM', '/b/x': 'ok' });
  t.throws(() => pathSearch('x', '/a:/b', h.attempt, (e) => (e as NodeJS.ErrnoException).code === 'EPERM'), { code: 'EPERM' }, 'stop() ends it at once');
  t.same(h.tried, ['/a/x']);
});
