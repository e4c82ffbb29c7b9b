// The image spec: YAML and JSON accepted, schema errors name file, field and expectation,
// checks against the disk; a bad spec or an arch not built gives one clear error from the
// CLI and writes nothing.
import t from 'tap';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { userEntries } from '../../image/rootfs.ts';
import { loadSpec, SpecError } from '../../image/spec.ts';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const dir = mkdtempSync(join(tmpdir(), 'runit-ts-spec-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
writeFileSync(join(dir, 'hello.txt'), 'hi\n');
const write = (name: string, text: string) => {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
};

t.test('a good YAML spec and the same as JSON', async (t) => {
  const yaml = write('good.yaml', `
name: demo
arches: [x86_64]
users: [{ name: app, uid: 1000 }]
files:
  - { path: /etc/hello, source: hello.txt, owner: app, mode: "0600" }
  - { path: /opt/x, type: dir }
env: { A: "1", B: 2 }
container: { user: app, cmd: [sh], ports: ["80"] }
`);
  const s = loadSpec(yaml);
  t.same(s.arches, ['x86_64']);
  t.same(s.outputs, ['tar', 'oci', 'docker'], 'default outputs');
  t.same(s.env, { A: '1', B: '2' });
  t.same(s.container.entrypoint, ['/sbin/container-init'], 'default Entrypoint');
  const e = userEntries(s.image);
  const hello = e.find((x) => x.path === 'etc/hello')!;
  t.same([hello.uid, hello.gid, hello.mode], [1000, 1000, 0o600]);
  t.same(e.find((x) => x.path === 'run/runit-ts' && x.uid === 1000)?.gid, 1000, 'state dir owned by the container user');
  const json = write('good.json', JSON.stringify({ name: 'demo', arch: 'aarch64', files: [{ path: 'a', content: 'x' }] }));
  t.same(loadSpec(json).arches, ['aarch64'], 'JSON (and the single arch field) accepted');
});

const bad: Array<[string, string, RegExp]> = [
  ['unknown field', 'name: x\ncolour: blue\n', /bad\.yaml: field \/colour: unknown field \(expected one of: name, tag, /],
  ['unknown nested field', 'container:\n  entry: [x]\n', /field \/container\/entry: unknown field \(expected one of: entrypoint, cmd, /],
  ['wrong type', 'container:\n  cmd: "sh -c x"\n', /field \/container\/cmd: must be of type array/],
  ['wrong type in a list', 'users:\n  - { name: app, uid: "1000" }\n', /field \/users\/0\/uid: must be of type integer/],
  ['bad enum', 'arches: [riscv64]\n', /field \/arches\/0: must be one of: x86_64, aarch64/],
  ['missing file', 'files:\n  - { path: /etc/x, source: nope.txt }\n', /field \/files\/0\/source: no such file: .*nope\.txt/],
  ['duplicate path', 'files:\n  - { path: /etc/x, content: a }\n  - { path: etc/x/, content: b }\n', /field \/files\/1\/path: duplicate path "etc\/x" \(also at index 0\)/],
  ['unknown owner', 'files:\n  - { path: /etc/x, content: a, owner: bob }\n', /field \/files\/0\/owner: unknown user "bob"/],
  ['file with two sources', 'files:\n  - { path: /etc/x, content: a, source: hello.txt }\n', /field \/files\/0: a file needs exactly one of source or content/],
  ['not YAML', 'name: [x\n', /bad\.yaml: line \d+: not valid YAML\/JSON/],
  ['duplicate key', 'name: a\nname: b\n', /not valid YAML\/JSON: Map keys must be unique/],
  ['empty', '\n', /the spec is empty/],
  ['unknown service', 'services: [nosuch]\n', /field \/services\/0: no service "nosuch"/],
  ['unknown single service', 'single: [nosuch]\n', /field \/single\/0: no service "nosuch"/],
  ['sshd without keys', 'services: [sshd]\n', /field \/services: the sshd service needs ssh/],
  ['an ssh key tinysshd cannot use', 'ssh: { authorizedKeys: ["ssh-rsa AAAAB3 me"] }\n', /field \/ssh\/authorizedKeys\/0: must match/],
  ['getty without login', 'services: [getty]\n', /field \/services: the getty service needs login/],
  ['two ways to log in', 'login: { autologin: root, password: x }\n', /field \/login: must NOT have more than 1 properties/],
  ['autologin of nobody known', 'login: { autologin: bob }\n', /field \/login\/autologin: unknown user "bob"/],
  ['a hash that is none', 'login: { passwordHash: secret }\n', /field \/login\/passwordHash: must match/],
  ['a crontab line without a schedule', 'cron: ["echo hi"]\n', /field \/cron\/0: must match/],
  // one line whatever the spec holds: a line break in a name or path is escaped
  ['a field name with a line break', '"a\\nb": 1\n', /^[^\n]*field \/a\\nb: unknown field[^\n]*$/],
  ['a source path with a line break', 'files:\n  - { path: /etc/x, source: "no\\nsuch" }\n', /^[^\n]*field \/files\/0\/source: no such file: [^\n]*no\\nsuch$/],
  ['an alias with no anchor', 'hostname: *nope\n', /^[^\n]*bad\.yaml: not valid YAML\/JSON: Unresolved alias[^\n]*$/],
];
for (const [what, text, re] of bad) {
  t.test(`bad spec: ${what}`, async (t) => {
    const p = write('bad.yaml', text);
    let err: unknown;
    try {
      loadSpec(p, { repoServices: join(repo, 'services') });
    } catch (e) {
      err = e;
    }
    t.ok(err instanceof SpecError, 'a SpecError');
    t.match((err as Error | undefined)?.message, re);
  });
}

const cli = (args: string[]) => execa(process.execPath, [join(repo, 'image', 'cli.ts'), ...args], { reject: false, all: true });

t.test('the CLI: one clear error, nothing written', async (t) => {
  const out = join(dir, 'out1');
  const p = write('bad.yaml', 'name: x\ncolour: blue\n');
  const r = await cli(['build', p, '--out', out]);
  t.equal(r.exitCode, 1);
  t.equal(r.all!.trim().split('\n').length, 1, 'one line');
  t.match(r.all, /^runit-ts-image: .*bad\.yaml: field \/colour: unknown field/);
  t.notOk(existsSync(out), 'nothing written');
});

t.test('an arch that is not built: one clear error, nothing written', async (t) => {
  const out = join(dir, 'out2');
  const bin = join(dir, 'bin');
  mkdirSync(join(bin, 'x86_64'), { recursive: true });
  const p = write('ok.yaml', 'arches: [x86_64, aarch64]\n');
  const r = await cli(['build', p, '--out', out, '--bin', bin]);
  t.equal(r.exitCode, 1);
  t.match(r.all, /^runit-ts-image: .*ok\.yaml: arch x86_64 is not built \(.*runit-ts is missing; run: make build ARCH=x86_64\)$/);
  t.notOk(existsSync(out) && readdirSync(out).length, 'nothing written');
  const u = await cli(['build', p, '--out', out, '--outputs', 'tar,iso']);
  t.match(u.all, /--outputs: unknown output iso/);
  t.equal((await cli(['--help'])).exitCode, 0, '--help');
  t.equal((await cli([])).exitCode, 2, 'usage');
});
