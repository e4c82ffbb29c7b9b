// Service templates: parsing, one clear error per problem, and the scripts they become
// (run by a real /bin/sh, so quoting is proven, not assumed); the builder on disk (log/main
// and its owner, the restart policy across applies) and its command's diagnostics.
import t, { type Test } from 'tap';
import { chmodSync, existsSync, linkSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { parseTemplates, renderService, TemplateError } from '../../src/servicebuilder/template.ts';
import { ServiceBuilder } from '../../src/servicebuilder/builder.ts';
import { accountIn, lookupAccount } from '../../src/servicebuilder/account.ts';
import { FailingServices } from '../../src/control/doubles.ts';

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

t.test("YAML 1.1 tags, aliases and line breaks in names: plain values, or clear lines", async (t) => {
  // !!binary would be a Buffer, checked as a mapping of its bytes and methods
  const bad = (text: string) => {
    try {
      parseTemplates(text, 'x.yaml');
    } catch (e) {
      t.type(e, TemplateError);
      return (e as Error).message;
    }
    return 'accepted';
  };
  t.equal(bad('web: !!binary abc\n'), 'x.yaml: web: must be a mapping');
  t.same(parseTemplates('web:\n  run: [!!binary abc]\n', 'x.yaml').web!.run, ['abc'], 'a tagged value stays as written');
  t.equal(bad('web:\n  run: [*nope]\n'), 'x.yaml: Unresolved alias (the anchor must be set before the alias): nope');
  const bomb = 'a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n';
  t.equal(bad(bomb), 'x.yaml: Excessive alias count indicates a resource exhaustion attack');
  // a line break in a name is escaped: every problem stays one line naming the file
  t.equal(bad('"a\\nb":\n  run: [x]\n  bad: 1\n'), "x.yaml: a\\nb: unknown key 'bad'");
  t.equal(bad('"a\\nb": [x]\n'), 'x.yaml: a\\nb: must be a mapping');
  // a list of 50 wrong items: 10 lines, then one for the rest
  const many = bad(`web:\n  run: [${Array.from({ length: 50 }, (_, i) => i).join(', ')}]\n`).split('\n');
  t.equal(many.length, 11, 'ten problems and a line for the rest');
  t.equal(many[0], 'x.yaml: web.run[0]: must be a string');
  t.equal(many[10], 'x.yaml: and 40 more problems');
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
  t.same(full.dirs, ['log', 'log/main'], 'log/main with a custom logger too (servicebuilder makes it for every service)');
  t.notOk(full.files.has('log/main/config'), 'log_config applies to the default log dir only');
  t.equal(renderService('c', { run: ['c'], log_config: ['s100', 'n2'] }).files.get('log/main/config')!.data, 's100\nn2\n');
});

t.test('the default logger as another account', async (t) => {
  const as = (logUser: string) => renderService('a', { run: ['/bin/a'] }, { logUser }).files.get('log/run')!.data;
  t.match(as('nobody'), /\nexec chpst -u nobody svlogd -tt \.\/main\n$/);
  t.match(as("o'dd user"), /\nexec chpst -u 'o'\\''dd user' svlogd -tt \.\/main\n$/, 'quoted for the shell');
  t.match(renderService('a', { run: ['/bin/a'], log: ['cat'] }, { logUser: 'nobody' }).files.get('log/run')!.data, /\nexec cat\n$/, 'an own logger is run as written');
});

t.test('accounts from passwd(5) text (the npm package, which has no addon)', async (t) => {
  const passwd = 'root:x:0:0:root:/root:/bin/sh\n# a comment\nbad:x:12\nodd:x:uid:7::/:/bin/false\nnobody:x:65534:65533:nobody:/nonexistent:/bin/false\n';
  t.same(accountIn(passwd, 'nobody'), { name: 'nobody', uid: 65534, gid: 65533 });
  t.same(accountIn(passwd, 'root'), { name: 'root', uid: 0, gid: 0 });
  t.equal(accountIn(passwd, 'bad'), undefined, 'a short line is no account');
  t.equal(accountIn(passwd, 'odd'), undefined, 'nor one without numeric ids');
  t.equal(accountIn(passwd, 'nob'), undefined, 'names match whole');
  t.same(lookupAccount('root'), { name: 'root', uid: 0, gid: 0 }, 'this system\'s root');
});

// ------------------------------------------------------------------ the builder on disk

/** A config, staging and scan directory in a fresh temporary directory, removed at teardown. */
function roots(t: Test): { configRoot: string; stagingRoot: string; runitRoot: string } {
  const dir = mkdtempSync(join(tmpdir(), 'sb-build-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const r = { configRoot: join(dir, 'conf'), stagingRoot: join(dir, 'stage'), runitRoot: join(dir, 'service') };
  for (const d of Object.values(r)) mkdirSync(d);
  return r;
}

/** uid and primary gid of an account, as the system's id(1) reports them. */
async function ids(user: string): Promise<{ uid: number; gid: number }> {
  return { uid: Number((await execa('id', ['-u', user])).stdout), gid: Number((await execa('id', ['-g', user])).stdout) };
}

const asRoot = { skip: process.geteuid?.() !== 0 && 'giving log/main to nobody needs root' };

t.test('every service gets log/main, the default logger\'s user\'s; the default logger runs as nobody', asRoot, async (t) => {
  const r = roots(t);
  const nobody = await ids('nobody');
  writeFileSync(join(r.configRoot, 'app.yaml'), [
    'plain:\n  run: [a]\n',
    'own:\n  run: [b]\n  log: [svlogd, -tt, ./main]\n',
    'ownnobody:\n  run: [c]\n  log: [chpst, -u, nobody, svlogd, -tt, ./main]\n',
    'other:\n  run: [d]\n  log: [logger, -t, d]\n',
  ].join(''));
  const res = await new ServiceBuilder(r).apply({ prune: false });
  t.same(res.errors, []);
  for (const name of ['plain', 'own', 'ownnobody', 'other']) {
    const st = statSync(join(r.stagingRoot, name, 'log/main'), { throwIfNoEntry: false });
    t.ok(st?.isDirectory(), `${name}: log/main made`);
    t.equal((st?.mode ?? 0) & 0o7777, 0o755, `${name}: log/main 0755`);
    t.same([st?.uid, st?.gid], [nobody.uid, nobody.gid], `${name}: log/main is nobody's`);
  }
  t.match(readFileSync(join(r.stagingRoot, 'plain/log/run'), 'utf8'), /\nexec chpst -u nobody svlogd -tt \.\/main\n$/, 'the default logger runs as nobody');
  t.match(readFileSync(join(r.stagingRoot, 'own/log/run'), 'utf8'), /\nexec svlogd -tt \.\/main\n$/, 'an own logger is run as written');
});

t.test('a log/main made before the default logger ran as nobody is given to it, and nothing outside it', asRoot, async (t) => {
  const r = roots(t);
  const nobody = await ids('nobody');
  const main = join(r.stagingRoot, 'web/log/main');
  mkdirSync(main, { recursive: true });
  writeFileSync(join(main, 'current'), 'old lines\n');
  writeFileSync(join(main, 'state'), '');
  const outside = join(r.stagingRoot, 'outside');
  writeFileSync(outside, 'root only\n', { mode: 0o600 });
  symlinkSync(outside, join(main, 'link'));
  linkSync(outside, join(main, 'hardlink'));
  writeFileSync(join(r.configRoot, 'app.yaml'), 'web:\n  run: [a]\n  log_config: [s100]\n');
  const b = new ServiceBuilder(r);
  const res = await b.apply({ prune: false });
  t.same(res.errors, []);
  t.same(res.staged, ['web']);
  for (const f of ['', 'current', 'state']) t.equal(statSync(join(main, f)).uid, nobody.uid, `log/main/${f} is nobody's`);
  t.equal(statSync(join(main, 'config')).uid, 0, 'the config the builder writes stays root\'s');
  t.equal(statSync(outside).uid, 0, 'neither a symlink nor a hard link gives away another file');
  t.equal(lstatSync(join(main, 'link')).uid, 0);
  t.same((await b.apply({ prune: false })).staged, [], 'the next apply has nothing to change');
});

t.test('without the account nobody: the default logger is an error, an own logger still works', asRoot, async (t) => {
  const r = roots(t);
  writeFileSync(join(r.configRoot, 'app.yaml'), 'plain:\n  run: [a]\nown:\n  run: [b]\n  log: [cat]\n');
  const res = await new ServiceBuilder(r, { logUser: 'sb-no-such-user' }).apply({ prune: false });
  t.same(res.errors.map((e) => e.message), [`${join(r.configRoot, 'app.yaml')}: plain: the default logger's user 'sb-no-such-user' does not exist (add the account, or give the service a log: of its own)`]);
  t.notOk(existsSync(join(r.stagingRoot, 'plain/run')), 'not staged: its logger could not run');
  t.notOk(existsSync(join(r.runitRoot, 'plain')), 'not activated');
  t.ok(statSync(join(r.stagingRoot, 'own/log/main')).isDirectory(), 'an own logger needs no such account');
  t.same(res.activated, ['own']);
});

t.test('the restart policy given to activateTemplates survives later applies and prunes', async (t) => {
  const r = roots(t);
  const b = new ServiceBuilder(r, { control: new FailingServices('not-running'), logUser: null });
  b.activateTemplates('app', { batch: { run: ['sleep', '1'], sleep: 0 } }, 'never');
  const down = join(r.stagingRoot, 'batch/down');
  t.ok(existsSync(down), 'never: a down file');
  t.match(readFileSync(join(r.configRoot, 'app.yaml'), 'utf8'), /restart: never/, 'the policy is kept with the template');
  writeFileSync(join(r.configRoot, 'old.yaml'), 'old:\n  run: [sleep, "1"]\n');
  let res = await b.apply();
  t.same(res.staged, ['old'], 'batch is not restaged');
  t.ok(existsSync(down), 'an apply keeps the down file');
  rmSync(join(r.configRoot, 'old.yaml'));
  res = await b.apply();
  t.same(res.pruned, ['old']);
  t.same(res.staged, []);
  t.ok(existsSync(down), 'a prune keeps the down file');
  b.activateTemplates('app', { batch: { run: ['sleep', '1'], sleep: 0 } }, 'always');
  t.notOk(existsSync(down), 'always: the down file goes');
  await b.apply();
  t.notOk(existsSync(down), 'and stays gone');
});

t.test('the command: usage, warnings and fatal errors in runit\'s words', async (t) => {
  const r = roots(t);
  const cli = (args: string[]) => execa(process.execPath, [join(import.meta.dirname, '../../src/servicebuilder/cli.ts'), ...args], { reject: false });
  const usage = 'usage: runit-ts-servicebuilder [-n] [-q] [-c confdir] [-s stagedir] [-d scandir]\n\n';
  let res = await cli(['-x']);
  t.equal(res.exitCode, 100);
  t.equal(res.stderr + '\n', `runit-ts-servicebuilder: illegal option -- x\n${usage}`);
  res = await cli(['-n', 'extra']);
  t.equal(res.exitCode, 100);
  t.equal(res.stderr + '\n', usage);
  const help = await cli(['--help']);
  t.match(help.stdout, /^usage: servicebuilder \[-n\] \[-q\] \[-c confdir\] \[-s stagedir\] \[-d scandir\]\n/);
  writeFileSync(join(r.configRoot, 'bad.yaml'), 'oops:\n  run: sleep 1\n  sleep: -1\n');
  res = await cli(['-n', '-c', r.configRoot, '-s', r.stagingRoot, '-d', r.runitRoot]);
  t.equal(res.exitCode, 1);
  const bad = join(r.configRoot, 'bad.yaml');
  t.equal(res.stderr, [
    `runit-ts-servicebuilder: warning: ${bad}: oops.run: must be a list`,
    `runit-ts-servicebuilder: warning: ${bad}: oops.sleep: must be a number of seconds from 0 to 86400`,
  ].join('\n'), 'each problem of a skipped file: one warning line');
  res = await cli(['-n', '-c', join(r.configRoot, 'missing'), '-s', r.stagingRoot, '-d', r.runitRoot]);
  t.equal(res.exitCode, 111);
  t.match(res.stderr, new RegExp(`^runit-ts-servicebuilder: fatal: .*${join(r.configRoot, 'missing')}`));
});
