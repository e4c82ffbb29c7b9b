// The boot's prestart plan as the image builder writes it (image/prestart.ts), in the
// words the C side knows (image/prestart.c), and the hand-over's parsing (src/lib/prestart.ts).
import t from 'tap';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { entryData, type Entry } from '../../src/lib/entry.ts';
import { parsePrestart } from '../../src/lib/prestart.ts';
import { PRESTART_ONLY, PRESTART_PLAN } from '../../image/prestart.ts';
import { rootfs, type ImageSpec } from '../../image/rootfs.ts';
import { repoRoot } from '../../image/inputs.ts';
import { MOUNTS } from '../../stages/stage1.ts';
import { PATH } from '../../stages/stage2.ts';

// the unit suite runs before anything is built: the plan never reads the built files, so
// empty ones stand in for out/ARCH (runit-ts, its addon, PID 1)
const work = mkdtempSync(join(tmpdir(), 'prestart-unit-'));
t.teardown(() => rmSync(work, { recursive: true, force: true }));
const out = (arch: string) => {
  const d = join(work, arch);
  mkdirSync(d, { recursive: true });
  for (const f of ['runit-ts', 'runit-ts.node', 'runit']) writeFileSync(join(d, f), '', { mode: 0o755 });
  return d;
};

function plan(spec: ImageSpec): string | undefined {
  const e: Entry | undefined = rootfs(spec, out(spec.arch)).filter((x) => x.path === PRESTART_PLAN).pop();
  return e ? entryData(e).toString('utf8') : undefined;
}

const logged = (name: string, extra: Record<string, string> = {}) => ({
  name,
  files: { run: '#!/bin/sh\nexec sleep 1000\n', 'log/run': '#!/bin/sh\nexec svlogd -tt ./main\n', ...extra },
});

t.test('the default image: stage 1 work, then the plain services', async (t) => {
  for (const arch of ['x86_64', 'aarch64'] as const) {
    const p = plan({ arch });
    if (!p) throw new Error('no plan');
    const lines = p.trim().split('\n');
    t.match(lines[0], /^# /, 'a comment first');
    t.ok(lines.includes('unless-env runitdir'), 'a runlevel asked for on the command line stands it down');
    t.ok(lines.includes('absent /etc/fstab'));
    t.ok(lines.includes('scan /etc/service /etc/runit/runsvdir/default'));
    t.ok(lines.includes(`only ${PRESTART_ONLY.join(' ')}`));
    t.same(lines.filter((l) => l.startsWith('mount ')).map((l) => l.split(' ')[2]), MOUNTS.map((m) => m.target), "stage 1's mounts, in its order");
    t.ok(lines.includes(`path ${PATH}`), "stage 2's PATH");
    const modules = lines.filter((l) => l.startsWith('module '));
    t.ok(modules.length > 0 && modules.every((l) => /^module \/lib\/modules\/[^/]+\/kernel\/.+\.ko(\.[a-z]+)?$/.test(l)), `${arch}: the modules, by path`);
    // virtio_net needs virtio and failover first: the order of stage 1's loadOrder
    const at = (m: string) => modules.findIndex((l) => l.endsWith(`/${m}.ko`));
    t.ok(at('virtio_net') > at('net_failover') && at('net_failover') > at('failover'), 'dependencies first');
    // syslogd, klogd and network have ./check, shell has control/: left to the supervisor
    t.same(lines.filter((l) => l.startsWith('service ')), ['service /etc/service/crond 1'], `${arch}: crond alone is plain`);
    t.ok(lines.indexOf('ifup lo') > lines.indexOf(modules.at(-1)!) && lines.findIndex((l) => l.startsWith('service ')) > lines.indexOf('ifup lo'), 'services last');
  }
});

t.test('which services and which images', async (t) => {
  const base: ImageSpec = { arch: 'x86_64', services: ['shell'], modules: [] };
  const p = plan({ ...base, inline: [logged('a'), logged('b', { down: '' }), logged('c', { 'notification-fd': '3\n' }), { name: 'd', files: { run: '#!/bin/sh\nexec sleep 1\n', finish: '#!/bin/sh\n' } }] });
  t.same(p?.split('\n').filter((l) => l.startsWith('service ')), ['service /etc/service/a 1', 'service /etc/service/d 0'], 'a down file or a readiness protocol: not prestarted');
  t.notOk(p?.includes('module '), 'no modules: none loaded');
  t.equal(plan({ ...base, inline: [logged('a')], prestart: false }), undefined, 'prestart: false');
  t.equal(plan({ ...base, inline: [logged('a')], files: [{ path: '/etc/fstab', content: 'proc /proc proc defaults 0 0\n' }] }), undefined, 'an fstab: stage 1 mounts first');
  t.equal(plan({ ...base, inline: [logged('a')], files: [{ path: '/etc/runit/default.runsvdir', content: 'single\n' }] }), undefined, 'a runlevel file');
  t.equal(plan(base), undefined, 'no plain service: no plan');
});

t.test("every plan line is one the C side carries out", async (t) => {
  const c = readFileSync(join(repoRoot, 'image', 'prestart.c'), 'utf8');
  const known = new Set([...c.matchAll(/strcmp\(w\[0\], "([a-z-]+)"\)/g)].map((m) => m[1]!));
  known.add('only'); // read before the words are split
  t.ok(c.includes('"only "'));
  const p = plan({ arch: 'aarch64' })!;
  for (const l of p.trim().split('\n')) if (!l.startsWith('#')) t.ok(known.has(l.split(' ')[0]!), `known: ${l.split(' ')[0]}`);
  t.ok(c.includes(`#define PLAN      "/${PRESTART_PLAN}"`), 'the same path');
});

t.test('the hand-over: RUNIT_TS_PRESTART', async (t) => {
  const got = parsePrestart('/etc/sv/a 101 3 4 1700000000123456 5000000000\n/etc/sv/b 102 -1 -1 1700000000000000 6000000000\nbad line\n/etc/sv/c 103 5 -1 1 1\nrelative 104 -1 -1 1 1');
  t.same(got, [
    { dir: '/etc/sv/a', pid: 101, rfd: 3, wfd: 4, realMs: 1700000000123.456, monoMs: 5000 },
    { dir: '/etc/sv/b', pid: 102, rfd: -1, wfd: -1, realMs: 1700000000000, monoMs: 6000 },
  ], 'well-formed lines; a half pipe or a relative path is left out');
});
