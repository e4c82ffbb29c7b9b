// The disk packers' pure parts: sizes, stable ids, GPT layout, CRC-32C, module order,
// and the QEMU command lines for disks and firmware.
import t from 'tap';
import { crc32c } from '../../image/packers/ext4.ts';
import { layout, stableUuid } from '../../image/packers/gpt.ts';
import { dependencyOrder, diskCmdline, diskIds, DiskError, parseSize } from '../../image/packers/disk.ts';
import { parseModulesDep } from '../../stages/stage1.ts';
import { qemuCommand } from '../../src/harness/qemu.ts';

t.test('parseSize', async (t) => {
  t.equal(parseSize('512M', 1, 'x'), 512 * 1048576);
  t.equal(parseSize('2G', 1, 'x'), 2 * 1024 ** 3);
  t.equal(parseSize('300k', 1, 'x'), 300 * 1024);
  t.equal(parseSize('64MiB', 1, 'x'), 64 * 1048576);
  t.equal(parseSize(4096, 1, 'x'), 4096);
  t.equal(parseSize(undefined, 7, 'x'), 7);
  t.throws(() => parseSize('big', 1, 'disk.size'), new DiskError('disk.size: not a size: big (e.g. 512M, 2G)'));
  t.throws(() => parseSize(-1, 1, 'disk.size'), /not a size: -1/);
});

t.test('stableUuid: same seed, same version-4 shaped UUID', async (t) => {
  const a = stableUuid('runit-ts/x86_64/host/root');
  t.equal(a, stableUuid('runit-ts/x86_64/host/root'));
  t.not(a, stableUuid('runit-ts/aarch64/host/root'));
  t.match(a, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
});

t.test('GPT layout: 1 MiB aligned partitions, a MiB for the backup table', async (t) => {
  const M = 1048576;
  t.same(layout([{ size: 32 * M }, { size: 100 * M + 1 }]), { offsets: [M, 33 * M], total: 33 * M + 101 * M + M });
});

t.test('crc32c: the check value of "123456789" (before the final inversion)', async (t) => {
  t.equal((~crc32c(Buffer.from('123456789')) >>> 0).toString(16), 'e3069283');
});

t.test('dependencyOrder: every module after all it needs, even two levels down', async (t) => {
  const dep = parseModulesDep(
    'kernel/virtio_pci.ko: kernel/virtio_ring.ko kernel/modern.ko kernel/virtio.ko\n' +
      'kernel/virtio.ko: kernel/virtio_ring.ko\nkernel/virtio_ring.ko:\nkernel/modern.ko:\n' +
      'kernel/virtio_blk.ko: kernel/virtio.ko kernel/virtio_ring.ko\n',
  );
  const order = dependencyOrder(['virtio_pci', 'virtio_blk'], dep);
  t.same(order, ['kernel/virtio_ring.ko', 'kernel/modern.ko', 'kernel/virtio.ko', 'kernel/virtio_pci.ko', 'kernel/virtio_blk.ko']);
  t.throws(() => dependencyOrder(['nope'], dep), /module nope not found/);
});

t.test('qemuCommand: drives (snapshot by default), UEFI pflash, -bios, reboots', async (t) => {
  const uefi = qemuCommand({
    arch: 'x86_64', accel: 'tcg', firmware: { code: '/fw/CODE.fd', vars: '/tmp/VARS.fd' },
    drives: [{ file: '/d/disk.img' }, { file: '/d/data.img', snapshot: false }], allowReboot: true,
  });
  const a = uefi.args.join(' ');
  t.match(a, '-drive if=pflash,format=raw,unit=0,readonly=on,file=/fw/CODE.fd -drive if=pflash,format=raw,unit=1,file=/tmp/VARS.fd');
  t.match(a, '-drive file=/d/disk.img,format=raw,if=none,id=disk0,snapshot=on -device virtio-blk-pci,drive=disk0');
  t.match(a, 'file=/d/data.img,format=raw,if=none,id=disk1,snapshot=off');
  t.notMatch(a, /-kernel|-append|-no-reboot/);
  const ub = qemuCommand({ arch: 'aarch64', accel: 'tcg', firmware: { bios: '/u/u-boot.bin' }, drives: [{ file: '/d/disk.img' }] });
  t.match(ub.args.join(' '), '-bios /u/u-boot.bin');
  t.ok(ub.args.includes('-no-reboot'), 'no reboot unless asked');
  t.throws(() => qemuCommand({ arch: 'x86_64', accel: 'tcg' }), /nothing to boot/);
  t.throws(() => qemuCommand({ arch: 'x86_64', accel: 'tcg', drives: [{ file: '/a,b' }] }), /must not contain ','/);
});

t.test('diskCmdline: the root by PARTUUID; erofs read-only with the tmpfs overlay', async (t) => {
  const ids = diskIds({ arch: 'aarch64' });
  t.equal(diskCmdline({ arch: 'aarch64', cmdline: 'loglevel=7' }), `console=ttyAMA0 root=PARTUUID=${ids.root} rootfstype=ext4 rw rootwait panic=-1 quiet transparent_hugepage=madvise loglevel=7`);
  t.match(diskCmdline({ arch: 'x86_64', disk: { rootfs: 'erofs' } }), /^console=ttyS0 root=PARTUUID=\S+ rootfstype=erofs ro root\.overlay=tmpfs rootwait /);
  t.not(diskIds({ arch: 'aarch64', hostname: 'a' }).root, diskIds({ arch: 'aarch64', hostname: 'b' }).root, 'ids differ by hostname');
});
