// erofs packer: the rootfs entries as a read-only erofs image (mkfs.erofs from a staged
// tree; fixed UUID, every time SOURCE_DATE_EPOCH, owners from the entries, lz4hc).
// Booted with a tmpfs overlay on top (see image/early-init.sh), so the system runs as
// usual while nothing it writes reaches the disk.
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { execa } from 'execa';
import type { Entry } from '../../src/lib/entry.ts';
import { DiskError, stageTree } from './ext4.ts';

/**
 * `plain`: no compression and no tail packing (every file's blocks stored as they are, the
 * layout erofs needs to map a file directly with DAX and the cheapest one to read).
 */
export async function writeErofs(file: string, entries: Entry[], o: { size: number; uuid: string; epoch?: number; tmp?: string; plain?: boolean }): Promise<void> {
  const epoch = o.epoch ?? 0;
  const stage = mkdtempSync(join(o.tmp ?? dirname(file), '.erofs-stage-'));
  try {
    await stageTree(join(stage, 'root'), entries, epoch);
    rmSync(file, { force: true });
    const layout = o.plain ? ['-Enoinline_data'] : ['-zlz4hc'];
    const r = await execa('mkfs.erofs', ['--quiet', ...layout, `-T${epoch}`, `-U${o.uuid}`, '-x-1', file, join(stage, 'root')], {
      reject: false, all: true, env: { LC_ALL: 'C' },
    });
    if (r.exitCode !== 0) throw new DiskError(`mkfs.erofs failed: ${(r.all ?? '').trim().split('\n').pop()}`);
    const size = statSync(file).size;
    if (size > o.size) {
      throw new DiskError(`the root file system does not fit: a ${(size / 1048576).toFixed(0)} MiB erofs image in a ${(o.size / 1048576).toFixed(0)} MiB partition (raise disk.size)`);
    }
  } catch (e) {
    rmSync(file, { force: true });
    throw e;
  } finally {
    rmSync(stage, { recursive: true, force: true });
  }
}
