// The npm package as a user gets it: `make pack`, installed into a fresh project, used
// from plain JavaScript and type-checked from TypeScript.
import t from 'tap';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { repo } from '../lib/host.ts';

const project = mkdtempSync(join(tmpdir(), 'runit-ts-pkg-'));
t.teardown(() => rmSync(project, { recursive: true, force: true }));

t.test('packed, installed and used from a fresh project', async (t) => {
  const packDir = join(project, 'pack');
  await execa('make', ['-s', 'lib'], { cwd: repo });
  await execa('npm', ['pack', '--ignore-scripts', '--pack-destination', packDir.replace(/pack$/, '')], { cwd: repo });
  const tgz = readdirSync(project).find((f) => /^runit-ts-.*\.tgz$/.test(f));
  t.ok(tgz, 'npm pack made a tarball');
  const list = (await execa('tar', ['-tzf', join(project, tgz!)])).stdout.split('\n');
  t.ok(list.includes('package/dist/index.js') && list.includes('package/dist/index.d.ts'), 'JavaScript and declarations');
  t.ok(list.includes('package/dist/harness/index.js'), 'the harness');
  t.notOk(list.some((f) => f.startsWith('package/src/') || f.startsWith('package/test/')), 'no sources or tests');

  const app = join(project, 'app');
  await execa('mkdir', ['-p', app]);
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', type: 'module', private: true }));
  await execa('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', join(project, tgz!)], { cwd: app });

  // plain JavaScript: the test doubles and the service builder
  writeFileSync(
    join(app, 'main.mjs'),
    `import { FakeServices, RecordingServices, ServiceBuilder, parseTemplates } from 'runit-ts';
import { qemuCommand } from 'runit-ts/harness';
import { mkdtempSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
const rec = new RecordingServices(new FakeServices(['web']));
const st = await rec.restart('web');
const dir = mkdtempSync('/tmp/sb-');
const b = new ServiceBuilder({ configRoot: join(dir, 'c'), stagingRoot: join(dir, 's'), runitRoot: join(dir, 'd') });
(await import('node:fs')).mkdirSync(join(dir, 'd'), { recursive: true });
const r = b.activateTemplates('app', parseTemplates('web:\\n  run: [sleep, "9"]\\n', 'inline'));
console.log(JSON.stringify({ state: st.state, lines: rec.lines(), activated: r.activated, run: readFileSync(join(dir, 's/web/run'), 'utf8').trim().split('\\n').pop(), qemu: typeof qemuCommand }));
`,
  );
  const r = await execa(process.execPath, ['main.mjs'], { cwd: app });
  t.same(JSON.parse(r.stdout), { state: 'run', lines: ['restart web'], activated: ['web'], run: 'exec sleep 9', qemu: 'function' });

  // the command the package installs
  const help = await execa(join(app, 'node_modules/.bin/runit-ts-servicebuilder'), ['--help'], { cwd: app });
  t.match(help.stdout, /^usage: servicebuilder /);
  const bad = await execa(join(app, 'node_modules/.bin/runit-ts-servicebuilder'), ['-x'], { cwd: app, reject: false });
  t.equal(bad.exitCode, 100, 'bad option: usage, exit 100');

  // TypeScript: the declarations type-check a consumer (and catch a misuse)
  writeFileSync(
    join(app, 'use.ts'),
    `import { SupervisedServices, ServiceError, type ServiceControl, type ServiceStatus } from 'runit-ts';
import type { BootOptions } from 'runit-ts/harness';
const sv: ServiceControl = new SupervisedServices({ scanDir: '/etc/service' });
export async function pidOf(name: string): Promise<number | undefined> {
  try {
    const st: ServiceStatus = await sv.status(name);
    return st.pid;
  } catch (e) {
    if (e instanceof ServiceError && e.reason === 'not-running') return undefined;
    throw e;
  }
}
export type B = BootOptions;
`,
  );
  writeFileSync(join(app, 'tsconfig.json'), JSON.stringify({ compilerOptions: { strict: true, module: 'nodenext', moduleResolution: 'nodenext', target: 'es2023', noEmit: true, skipLibCheck: false, types: ['node'], typeRoots: [join(repo, 'node_modules/@types')] }, files: ['use.ts'] }));
  const tsc = join(repo, 'node_modules/.bin/tsc');
  const ok = await execa(tsc, ['-p', '.'], { cwd: app, reject: false });
  t.equal(ok.exitCode, 0, `consumer type-checks: ${ok.stdout}`);
  writeFileSync(join(app, 'use.ts'), `import { SupervisedServices } from 'runit-ts';\nawait new SupervisedServices().signal('web', 'SIGBOGUS');\n`);
  const wrong = await execa(tsc, ['-p', '.'], { cwd: app, reject: false });
  t.not(wrong.exitCode, 0, 'a wrong signal name is a type error');
  t.match(wrong.stdout, /SIGBOGUS/);
});
