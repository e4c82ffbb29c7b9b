// Security: every world-writable, setuid or setgid file in our images' outputs, read back
// from what the packers wrote (test/lib/image-modes.ts): the default boot image's
// initramfs.img (cpio), its disk output's root.ext4 (through debugfs) and early.img, and
// the default container image's rootfs.tar. Each must be in the allow-list below, which
// says why; anything else fails. The outputs are made in-process by the image builder's
// own steps (image/spec.ts defaultSpec, image/resolve.ts, the packers) from this
// checkout's executables. The Debian-based image (whose su and passwd are setuid) is read
// back the same way by its boot test, from the disk it boots (test/lib/debian-suite.ts).
import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { BIN, haveBin } from '../lib/host.ts';
import { COMMON, CONTAINER, cpioModes, ext4Modes, specialModes, tarModes, unexpected, type Allowed, type ModeEntry } from '../lib/image-modes.ts';
import { defaultSpec, type Output } from '../../image/spec.ts';
import { resolveImage, type ResolvedImage } from '../../image/resolve.ts';
import { buildDisk } from '../../image/packers/disk.ts';
import { tarBuffer } from '../../image/packers/tar.ts';
import { writeCpio } from '../../src/lib/cpio.ts';
import { requireHostArch } from '../../src/lib/platform.ts';

if (!haveBin()) t.fail(`${BIN} is missing: run make build`);

const ARCH = requireHostArch();
const BIN_DIR = dirname(BIN);

interface ImageRow {
  name: string;
  /** the image's outputs read back, by output file */
  read: (img: ResolvedImage, dir: string) => Promise<Record<string, ModeEntry[]>>;
  outputs: Output[];
  allowed: Allowed[];
}

/** Each image and how its outputs are read back. */
const IMAGES: ImageRow[] = [
  {
    name: 'the default boot image',
    outputs: ['initramfs', 'disk'],
    allowed: COMMON,
    read: async (img, dir) => {
      await writeCpio(join(dir, 'initramfs.cpio'), img.entries, 0);
      await buildDisk(img, dir);
      return {
        'initramfs.img': cpioModes(join(dir, 'initramfs.cpio')),
        'root.ext4': await ext4Modes(join(dir, 'root.ext4'), join(dir, 'debugfs.cmds')),
        'early.img': cpioModes(join(dir, 'early.img')),
      };
    },
  },
  {
    name: 'the default container image',
    outputs: ['tar'],
    allowed: CONTAINER,
    read: async (img) => ({ 'rootfs.tar': await tarModes(await tarBuffer(img.entries, 0)) }),
  },
];

for (const row of IMAGES) {
  t.test(`${row.name} (${ARCH}): nothing world-writable, setuid or setgid but what is allowed`, async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'runit-ts-sec-image-'));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    const spec = defaultSpec(row.outputs, [ARCH]);
    const img = resolveImage({ ...spec.image, arch: ARCH }, BIN_DIR);
    const outputs = await row.read(img, dir);
    for (const [file, entries] of Object.entries(outputs)) {
      t.ok(entries.length > 10, `${file}: ${entries.length} entries read back`);
      t.same(unexpected(entries, row.allowed), [], `${file}: nothing unexpected`);
      const found = specialModes(entries).map((e) => `${e.path || '/'} ${e.mode.toString(8)}`);
      t.comment(`figure: ${row.name}, ${file}: ${entries.length} entries, world-writable/setuid/setgid: ${found.join(', ') || 'none'} (each allowed, with its reason, in the test)`);
    }
  });
}

t.test('the audit itself: an unexpected mode is caught', async (t) => {
  const entries: ModeEntry[] = [
    { path: 'tmp', type: 'dir', mode: 0o1777 },
    { path: 'usr/bin/su', type: 'file', mode: 0o4755 },
    { path: 'var/spool', type: 'dir', mode: 0o2775 },
    { path: 'etc/shadow', type: 'file', mode: 0o646 },
    { path: 'bin/sh', type: 'symlink', mode: 0o777 },
  ];
  t.same(unexpected(entries, COMMON), ['usr/bin/su file 4755', 'var/spool dir 2775', 'etc/shadow file 0646'], 'setuid, setgid and world-writable caught; a symlink\'s 0777 is not');
  t.same(unexpected([{ path: 'tmp', type: 'dir', mode: 0o777 }], COMMON), ['tmp dir 0777'], '/tmp without the sticky bit is not what is allowed');
});
