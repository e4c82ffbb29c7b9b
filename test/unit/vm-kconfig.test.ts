// A user's kernel against what the harness needs: its config found beside it (config-VERSION,
// .config up the build tree) or embedded (IKCONFIG), and the missing options named, a module
// counting only when its .ko is in the modules tree.
import t from 'tap';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { embeddedConfig, findKernelConfig, missingOptions, parseKconfig, requirements } from '../../src/vm/kconfig.ts';
import { harnessShares, moduleEntries } from '../../src/vm/image.ts';

const dir = mkdtempSync(join(tmpdir(), 'runit-ts-vm-kconfig-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

/** A config with every requirement of the arch built in, minus `drop`, plus `extra` lines. */
function config(arch: 'x86_64' | 'aarch64', drop: string[] = [], extra: string[] = []): string {
  return [...requirements(arch).filter((r) => !drop.includes(r.option)).map((r) => `CONFIG_${r.option}=y`), ...extra, '# CONFIG_FOO is not set', ''].join('\n');
}

t.test('a kernel with everything built in lacks nothing; each missing option is named', async (t) => {
  t.strictSame(missingOptions(parseKconfig(config('x86_64')), 'x86_64'), []);
  t.strictSame(missingOptions(parseKconfig(config('x86_64', ['9P_FS', 'SERIAL_8250_CONSOLE'])), 'x86_64'), ['CONFIG_9P_FS', 'CONFIG_SERIAL_8250_CONSOLE']);
  t.strictSame(missingOptions(parseKconfig(config('aarch64', ['SERIAL_AMBA_PL011'])), 'aarch64'), ['CONFIG_SERIAL_AMBA_PL011'], 'the UART of the arch');
  t.strictSame(missingOptions(parseKconfig(config('x86_64', ['DEVTMPFS'], ['CONFIG_DEVTMPFS=m'])), 'x86_64'), ['CONFIG_DEVTMPFS (=m, must be built in)']);
});

t.test('=m counts when the module is in the modules tree', async (t) => {
  const mods = join(dir, 'lib', 'modules', '6.12.0-test');
  mkdirSync(join(mods, 'kernel', 'fs', '9p'), { recursive: true });
  writeFileSync(join(mods, 'kernel', 'fs', '9p', '9p.ko.xz'), '');
  const cfg = parseKconfig(config('x86_64', ['9P_FS', 'NET_9P'], ['CONFIG_9P_FS=m', 'CONFIG_NET_9P=m']));
  t.strictSame(missingOptions(cfg, 'x86_64', mods), [`CONFIG_NET_9P=m (no 9pnet.ko in ${mods})`]);
  t.strictSame(missingOptions(cfg, 'x86_64'), ['CONFIG_NET_9P=m (no 9pnet.ko: give --modules)', 'CONFIG_9P_FS=m (no 9p.ko: give --modules)']);
});

t.test('the config is found beside the kernel, up its build tree, or embedded', async (t) => {
  const boot = join(dir, 'boot');
  mkdirSync(boot);
  writeFileSync(join(boot, 'vmlinuz-6.1.0-x'), 'kernel');
  writeFileSync(join(boot, 'config-6.1.0-x'), 'CONFIG_A=y\n');
  t.equal(findKernelConfig(join(boot, 'vmlinuz-6.1.0-x'))?.path, join(boot, 'config-6.1.0-x'));
  const tree = join(dir, 'linux');
  mkdirSync(join(tree, 'arch', 'x86', 'boot'), { recursive: true });
  writeFileSync(join(tree, '.config'), 'CONFIG_B=m\n');
  writeFileSync(join(tree, 'arch', 'x86', 'boot', 'bzImage'), 'kernel');
  const found = findKernelConfig(join(tree, 'arch', 'x86', 'boot', 'bzImage'));
  t.equal(found?.path, join(tree, '.config'));
  t.equal(parseKconfig(found!.text).get('B'), 'm');
  const ik = join(dir, 'ik');
  mkdirSync(ik);
  const image = Buffer.concat([Buffer.from('ELF....'), Buffer.from('IKCFG_ST'), gzipSync('CONFIG_C=y\n'), Buffer.from('IKCFG_ED'), Buffer.from('rest')]);
  writeFileSync(join(ik, 'Image'), image);
  t.equal(embeddedConfig(image), 'CONFIG_C=y\n');
  t.equal(findKernelConfig(join(ik, 'Image'))?.path, `${join(ik, 'Image')} (IKCONFIG)`);
  const none = join(dir, 'none');
  mkdirSync(none);
  writeFileSync(join(none, 'bzImage'), 'no config anywhere');
  t.equal(findKernelConfig(join(none, 'bzImage')), undefined);
});

t.test('shares become tagged 9p shares, read-only unless rw; a modules tree becomes cpio entries with modules.dep and etc/modules', async (t) => {
  t.strictSame(harnessShares([{ host: '/a', guest: '/a', rw: false }, { host: '/b', guest: '/c', rw: true }]), [
    { host: '/a', tag: 'share0', readOnly: true },
    { host: '/b', tag: 'share1', readOnly: false },
  ]);
  // a tree with no module files: nothing to load, the lists are empty
  const mods = join(dir, 'empty', '6.12.0-test');
  mkdirSync(join(mods, 'kernel'), { recursive: true });
  const e = moduleEntries(mods, 'x86_64', false);
  t.strictSame(e.map((x) => x.path), ['lib/modules/6.12.0-test/modules.dep', 'etc/modules']);
});
