// Service templates: parsing, one clear error per problem, and the scripts they become
// (run by a real /bin/sh, so quoting is proven, not assumed).
import t from 'tap';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { parseTemplates, renderService, TemplateError } from '../../src/servicebuilder/template.ts';

t.test('servicebuilder format, with our optional fields', async (t) => {
  const ts = parseTemplates(
    `web:\n  run: [python3, -m, http.server, "8080"]\n  log: [svlogd, -t, ./main]\n  sleep: 0\n  env: {PORT: "8080"}\n  user: www-data\n  restart: never\nworker:\n  run:\n    - /usr/bin/worker\n  finish: [/bin/true]\n`,
    'a.yaml',
  );
  t.same(Object.keys(ts), ['web', 'worker']);
  t.same(ts.web!.run, ['python3', '-m', 'http.server', '8080']);
  t.equal(ts.web!.restart, 'never');
  t.same(ts.worker!.finish, ['/bin/true']);
  t.same(parseTemplates('', 'empty.yaml'), {}, 'an empty file describes no service');
});

t.test('bad input: one clear line naming file, field and expectation', async (t) => {
  const bad = (text: string) => {
    try {
      parseTemplates(text, '/etc/sb/x.yaml');
    } catch (e) {
      t.type(e, TemplateError);
      return (e as Error).message;
    }
    t.fail(`accepted: ${text}`);
    return '';
  };
  t.equal(bad('web:\n  run: "python3 app.py"\n'), '/etc/sb/x.yaml: web.run: must be a list');
  t.equal(bad('web:\n  run: [a]\n  restrat: never\n'), "/etc/sb/x.yaml: web: unknown key 'restrat'");
  t.equal(bad('web:\n  log: [svlogd, ./main]\n'), "/etc/sb/x.yaml: web: missing 'run'");
  t.equal(bad('web:\n  run: []\n'), '/etc/sb/x.yaml: web.run: must not be empty');
  t.equal(bad('web:\n  run: [python3, 8080]\n'), '/etc/sb/x.yaml: web.run[1]: must be a string');
  t.equal(bad('a/b:\n  run: [x]\n'), "/etc/sb/x.yaml: bad name 'a/b' (no '/', NUL or leading '.')");
  t.equal(bad('.hidden:\n  run: [x]\n'), "/etc/sb/x.yaml: bad name '.hidden' (no '/', NUL or leading '.')");
  t.equal(bad('web:\n  run: [x]\n  restart: sometimes\n'), '/etc/sb/x.yaml: web.restart: must be one of always, never');
  t.equal(bad('web:\n  run: [x]\n  sleep: -1\n'), '/etc/sb/x.yaml: web.sleep: must be a number of seconds from 0 to 86400');
  t.equal(bad('web:\n  run: [x]\n  cwd: srv\n'), '/etc/sb/x.yaml: web.cwd: must be an absolute path');
  t.match(bad('web:\n  run: [x\n'), /^\/etc\/sb\/x\.yaml: line \d+: /);
  t.match(bad('web:\n  run: [x]\nweb:\n  run: [y]\n'), /^\/etc\/sb\/x\.yaml: line 3: .*unique/i);
  t.equal(bad('- web\n'), '/etc/sb/x.yaml: must be a mapping of service names to templates');
});

t.test('run scripts pass every argument through exactly', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sb-render-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const args = ["it's", 'a b', '$HOME', '`id`', 'tab\there', '', '*', 'new\nline', '--', '-e'];
  const { files } = renderService('echo', { run: ['printf', '[%s]\\n', ...args], sleep: 0 });
  const run = files.get('run')!;
  t.equal(run.mode, 0o755);
  writeFileSync(join(dir, 'run'), run.data);
  chmodSync(join(dir, 'run'), 0o755);
  const r = await execa(join(dir, 'run'), { cwd: dir });
  t.equal(r.stdout, args.map((a) => `[${a}]`).join('\n'));
});

t.test('what each field writes', async (t) => {
  const plain = renderService('a', { run: ['/bin/a'] });
  t.same([...plain.files.keys()].sort(), ['log/run', 'run']);
  t.match(plain.files.get('run')!.data, /^#!\/bin\/sh\n#.*\nexec 2>&1\nsleep 2\nexec \/bin\/a\n$/);
  t.match(plain.files.get('log/run')!.data, /\nexec svlogd -tt \.\/main\n$/, 'default logger: svlogd into ./main');
  t.notMatch(plain.files.get('log/run')!.data, /sleep/, 'logsleep defaults to 0');
  t.same(plain.dirs, ['log', 'log/main']);

  const full = renderService('b', { run: ['b'], env: { A: 'x y' }, user: 'nobody:nogroup', cwd: '/srv/b', restart: 'never', finish: ['echo', 'bye'], log: ['logger', '-t', 'b'], logsleep: 1, log_config: ['s100'] });
  t.same([...full.files.keys()].sort(), ['down', 'env/A', 'finish', 'log/run', 'run']);
  t.equal(full.files.get('env/A')!.data, 'x y\n');
  t.match(full.files.get('run')!.data, /envdir="\$PWD\/env"\ncd \/srv\/b \|\| exit 111\nexec chpst -e "\$envdir" -u nobody:nogroup b\n$/);
  t.match(full.files.get('log/run')!.data, /sleep 1\nexec logger -t b\n$/);
  t.same(full.dirs, ['log'], 'no default log dir with a custom logger');
  t.notOk(full.files.has('log/main/config'), 'log_config applies to the default log dir only');
  t.equal(renderService('c', { run: ['c'], log_config: ['s100', 'n2'] }).files.get('log/main/config')!.data, 's100\nn2\n');
});
