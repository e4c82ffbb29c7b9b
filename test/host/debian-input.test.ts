// Bad input to a Debian-based spec, through runit-ts-image (one line on stderr, exit 1,
// nothing written): a package Debian does not have, a package that needs systemd as PID 1,
// a lock pinning a version Debian no longer serves, a lock made for other packages, and
// `packages` without `base: debian`. Resolving needs Debian's archives (skipped without).
import t from 'tap';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { repo } from '../lib/host.ts';

const node = process.execPath;
const cli = join(repo, 'image', 'cli.ts');
const work = mkdtempSync(join(tmpdir(), 'runit-ts-debian-input-'));
t.teardown(() => rmSync(work, { recursive: true, force: true }));

/** runit-ts-image with these arguments: exit code and stderr's lines. */
async function image(...args: string[]) {
  const r = await execa(node, [cli, ...args], { reject: false });
  return { code: r.exitCode, lines: r.stderr.trim().split('\n'), last: r.stderr.trim().split('\n').pop() ?? '' };
}

const online = (await execa('sh', ['-c', 'command -v mmdebstrap && getent hosts deb.debian.org'], { reject: false })).exitCode === 0;
const built = existsSync(join(repo, 'out', 'x86_64', 'runit-ts'));

t.test('packages without base: debian: a spec error', async (t) => {
  const spec = join(work, 'nobase.yaml');
  writeFileSync(spec, 'packages: [cron]\n');
  const r = await image('check', spec);
  t.equal(r.code, 1);
  t.equal(r.last, `runit-ts-image: ${spec}: field /packages: packages come from Debian: give base: debian`);
});

t.test('no lock, or a lock made for other packages: one line naming the command that makes it', async (t) => {
  const spec = join(work, 'nolock.yaml');
  writeFileSync(spec, 'base: debian\npackages: [cron]\narch: x86_64\noutputs: [tar]\n');
  let r = await image('build', spec, '--out', join(work, 'out-nolock'));
  t.equal(r.code, 1);
  t.equal(r.last, `runit-ts-image: ${spec}: no lock file ${join(work, 'nolock.lock.json')}; make it with: runit-ts-image lock ${spec}`);
  const lock = JSON.parse(readFileSync(join(repo, 'image', 'specs', 'debian.lock.json'), 'utf8'));
  writeFileSync(join(work, 'nolock.lock.json'), JSON.stringify(lock));
  r = await image('build', spec, '--out', join(work, 'out-nolock'));
  t.equal(r.code, 1);
  t.equal(r.last, `runit-ts-image: ${join(work, 'nolock.lock.json')}: the lock was made for other packages or settings than ${spec} asks for; refresh it with: runit-ts-image lock ${spec}`);
  t.notOk(existsSync(join(work, 'out-nolock')), 'nothing written');
});

t.test('a version Debian no longer serves: one line naming the command that refreshes the lock', { skip: !online ? 'Debian\'s archives are not reachable' : !built ? 'make build first' : false }, async (t) => {
  const spec = join(work, 'gone.yaml');
  const src = readFileSync(join(repo, 'image', 'specs', 'debian.yaml'), 'utf8');
  writeFileSync(spec, src + 'arch: x86_64\n');
  const lock = JSON.parse(readFileSync(join(repo, 'image', 'specs', 'debian.lock.json'), 'utf8')) as { arches: Record<string, Array<{ name: string; version: string; url: string; sha256: string }>> };
  const cron = lock.arches.x86_64!.find((p) => p.name === 'cron')!;
  cron.version = '3.0pl1-1+gone';
  cron.url = cron.url.replace(/cron_[^/]*\.deb$/, 'cron_3.0pl1-1+gone_amd64.deb');
  cron.sha256 = '0'.repeat(64);
  writeFileSync(join(work, 'gone.lock.json'), JSON.stringify(lock));
  const r = await image('build', spec, '--out', join(work, 'out-gone'));
  t.equal(r.code, 1);
  t.equal(r.last, `runit-ts-image: x86_64: Debian no longer serves cron 3.0pl1-1+gone (amd64), which ${join(work, 'gone.lock.json')} pins; refresh the lock with: runit-ts-image lock ${spec}`);
  t.notOk(existsSync(join(work, 'out-gone')) && readdirSync(join(work, 'out-gone')).length, 'nothing written');
});

t.test('locking an unknown package or one that needs systemd as PID 1: one line, no lock written', { skip: !online ? 'Debian\'s archives are not reachable' : !built ? 'make build first' : false }, async (t) => {
  const unknown = join(work, 'unknown.yaml');
  writeFileSync(unknown, 'base: debian\narch: x86_64\npackages: [cron, no-such-package-runit-ts]\n');
  let r = await image('lock', unknown);
  t.equal(r.code, 1);
  t.equal(r.last, 'runit-ts-image: x86_64: Debian bookworm has no package no-such-package-runit-ts (apt: Unable to locate package)');
  t.notOk(existsSync(join(work, 'unknown.lock.json')), 'no lock written');
  const systemd = join(work, 'systemd.yaml');
  writeFileSync(systemd, 'base: debian\narch: x86_64\npackages: [systemd-cron]\n');
  r = await image('lock', systemd);
  t.equal(r.code, 1);
  t.match(r.last, /^runit-ts-image: x86_64: package systemd-cron needs systemd as PID 1 \(Depends: systemd-sysv.*\), which a runit-ts image cannot give$/);
  t.notOk(existsSync(join(work, 'systemd.lock.json')), 'no lock written');
});
