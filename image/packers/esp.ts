// EFI system partition packer: a FAT image holding the given files, made with
// mkfs.vfat --invariant (fixed volume id, no clock) and mtools (no mount). Every file
// and directory is staged with its time at SOURCE_DATE_EPOCH and copied with mcopy -m,
// under TZ=UTC, so two builds are byte-identical.
import { mkdirSync, mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { execa } from 'execa';

export interface EspFile {
  /** path inside the partition ("EFI/BOOT/BOOTX64.EFI") */
  path: string;
  data: Buffer;
}

export async function writeEsp(file: string, files: EspFile[], size: number, volumeId: string, epoch = 0): Promise<void> {
  const need = files.reduce((n, f) => n + Math.ceil(f.data.length / 4096) * 4096, 0);
  if (need > size * 0.95) {
    throw new Error(`the boot partition does not fit: ${(need / 1048576).toFixed(0)} MiB of files in ${(size / 1048576).toFixed(0)} MiB (raise disk.esp)`);
  }
  const stage = mkdtempSync(join(dirname(file), '.esp-stage-'));
  const env = { TZ: 'UTC', LC_ALL: 'C', MTOOLS_SKIP_CHECK: '1' };
  // FAT times start in 1980: an earlier epoch (the default 0) is stored as 1980-01-01
  epoch = Math.max(epoch, 315532800);
  try {
    const dirs = new Set<string>();
    for (const f of [...files].sort((a, b) => (a.path < b.path ? -1 : 1))) {
      const p = join(stage, f.path);
      mkdirSync(dirname(p), { recursive: true });
      writeFileSync(p, f.data);
      utimesSync(p, epoch, epoch);
      for (let d = dirname(f.path); d !== '.'; d = dirname(d)) dirs.add(d);
    }
    for (const d of dirs) utimesSync(join(stage, d), epoch, epoch);
    rmSync(file, { force: true });
    const mk = await execa('mkfs.vfat', ['-C', '--invariant', '-i', volumeId, '-n', 'ESP', file, String(Math.floor(size / 1024))], {
      env, reject: false, all: true,
    });
    if (mk.exitCode !== 0) throw new Error(`mkfs.vfat: ${(mk.all ?? '').trim().split('\n').pop()}`);
    const top = readdirSync(stage).sort().map((n) => join(stage, n));
    const cp = await execa('mcopy', ['-s', '-m', '-Q', '-i', file, ...top, '::'], { env, reject: false, all: true });
    if (cp.exitCode !== 0) throw new Error(`mcopy: ${(cp.all ?? '').trim().split('\n').pop()}`);
  } catch (e) {
    rmSync(file, { force: true });
    throw e;
  } finally {
    rmSync(stage, { recursive: true, force: true });
  }
}
