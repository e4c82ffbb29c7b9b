import t from 'tap';
import { APPLETS, resolveApplet, run } from '../../src/main.ts';

t.test('applet chosen by the name called', async (t) => {
  t.same(resolveApplet('/usr/bin/sv', ['status', 'x']), { name: 'sv', argv: ['status', 'x'], argv0: '/usr/bin/sv' });
  t.equal(resolveApplet('/etc/runit/2', []).name, '2');
  t.equal(resolveApplet('/etc/runit/ctrlaltdel', []).name, 'ctrlaltdel');
  t.equal(resolveApplet('/sbin/init', ['0']).name, 'init');
  t.equal(resolveApplet('runsvdir', ['-P', '/x']).name, 'runsvdir');
});

t.test('runit-ts APPLET args', async (t) => {
  t.same(resolveApplet('/usr/lib/runit-ts/runit-ts', ['sv', 'up', 'a']), { name: 'sv', argv: ['up', 'a'], argv0: 'sv', self: true });
});

t.test('LSB: any name under init.d is sv', async (t) => {
  const r = resolveApplet('/etc/init.d/nginx', ['status']);
  t.equal(r.name, 'sv');
  t.equal(r.argv0, '/etc/init.d/nginx', 'sv sees the service name as its argv0');
});

t.test('unknown applets are refused', async (t) => {
  const out: string[] = [];
  const w = process.stderr.write;
  process.stderr.write = ((s: string) => (out.push(String(s)), true)) as typeof process.stderr.write;
  try {
    t.equal(await run('/bin/frobnicate', []), 100);
  } finally {
    process.stderr.write = w;
  }
  t.match(out.join(''), /unknown applet 'frobnicate'/);
});

// each applet's --help, through the built executable: test/host/dispatch.test.ts
t.test('every applet module loads and gives its main function', async (t) => {
  for (const name of Object.keys(APPLETS)) {
    const mod = await APPLETS[name]!();
    t.type(mod, 'function', name);
  }
});

t.test('the executable loads the bundle and code cache made for the applet resolveApplet picks', async (t) => {
  const { createRequire } = await import('node:module');
  const { callKind } = createRequire(import.meta.url)('../../scripts/sea-loader.cjs') as { callKind: (argv: string[], isApplet: (name: string) => boolean) => string };
  const want = (applet: string) => (applet === 'sv' ? 'sv' : applet === 'container-init' ? 'container' : 'supervisor');
  const calls: string[][] = [
    ['/usr/bin/sv', 'status', 'x'],
    ['sv', 'up', 'a'],
    ['/usr/lib/runit-ts/runit-ts', 'sv', 'status', 'a'],
    ['/etc/init.d/nginx', 'status'],
    ['init.d/nginx', 'status'],
    // an applet's name in init.d is that applet, not sv in LSB mode
    ['/etc/init.d/runsvdir', '/etc/service'],
    ['/etc/init.d/container-init'],
    ['/etc/init.d/sv', 'status', 'a'],
    ['/sbin/container-init'],
    ['/opt/runit-ts/bin/runit-ts', 'container-init', 'sh'],
    ['/usr/bin/runsvdir', '-P', '/etc/service'],
    ['/etc/runit/2'],
    ['/sbin/init', '0'],
    ['/usr/bin/svlogd', '-tt', 'main'],
    ['/usr/lib/runit-ts/runit-ts'],
    ['/usr/bin/chpst', '-u', 'nobody', 'true'],
  ];
  const isApplet = (name: string) => Object.hasOwn(APPLETS, name);
  for (const [argv0, ...args] of calls) {
    const applet = resolveApplet(argv0!, args).name;
    t.equal(callKind(['/exe', argv0!, ...args], isApplet), want(applet), `${[argv0, ...args].join(' ')}: ${applet || '(none)'}`);
  }
});

t.test("sv's own bundle reads a command line as the suite's dispatch does", async (t) => {
  const { resolveCall } = await import('../../src/lib/applet.ts');
  for (const [argv0, ...args] of [['/usr/bin/sv', 'status', 'x'], ['/usr/lib/runit-ts/runit-ts', 'sv', '-w', '3', 'up', 'a'], ['/etc/init.d/nginx', 'start'], ['runit-ts.x86_64', 'sv', 'status']]) {
    const suite = resolveApplet(argv0!, args);
    t.same(resolveCall(argv0!, args, (n) => n === 'sv'), suite, `${[argv0, ...args].join(' ')}: ${suite.name} ${suite.argv.join(' ')}`);
  }
});
