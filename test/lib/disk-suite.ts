// Boot tests of the disk output, run once per arch (test/boot/disk-<arch>.test.ts): one
// disk is built per arch (with three test services) and every boot path boots it. The
// firmware paths boot a throw-away overlay (snapshot); the persistence runs boot a copy
// of the disk that they write to, and check it with e2fsck between runs.
import t, { type Test } from 'tap';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import type { Arch } from '../../image/inputs.ts';
import { BOOT_PATHS, buildDisk, diskBoot, diskIds } from '../../image/packers/disk.ts';
import { buildExeDisk, EXE_DEVICES, exeDiskBoot } from '../../image/packers/exedisk.ts';
import { resolveImage } from '../../image/resolve.ts';
import type { ImageSpec } from '../../image/rootfs.ts';
import { boot, type Machine } from '../../src/harness/index.ts';
import { PROMPT } from './boot.ts';
import { repo } from './host.ts';

export const SERVICES = ['alpha', 'beta', 'gamma'];

export function diskSpec(arch: Arch): ImageSpec {
  return {
    arch,
    services: ['shell'],
    inline: SERVICES.map((name) => ({ name, files: { run: `#!/bin/sh\nexec sleep 100000\n` } })),
  };
}

/**
 * The root partition (2) of a disk image from the host: e2fsck -fn's exit status and
 * summary, and whether the superblock says clean (state "clean", no journal to replay).
 */
export async function fsckRoot(disk: string): Promise<{ code: number; summary: string; clean: boolean }> {
  const table = JSON.parse((await execa('sfdisk', ['-J', disk])).stdout) as { partitiontable: { sectorsize?: number; partitions: { start: number }[] } };
  const pt = table.partitiontable;
  const dev = `${disk}?offset=${pt.partitions[1]!.start * (pt.sectorsize ?? 512)}`;
  const r = await execa('e2fsck', ['-fn', dev], { reject: false, all: true });
  const h = (await execa('dumpe2fs', ['-h', dev], { reject: false })).stdout;
  const clean = /^Filesystem state:\s+clean$/m.test(h) && !/^Filesystem features:.*needs_recovery/m.test(h);
  const summary = (r.all ?? '').trim().split('\n').filter((l) => !l.startsWith('e2fsck ')).pop() ?? '';
  return { code: r.exitCode ?? -1, summary, clean };
}

export function diskSuite(arch: Arch): void {
  const bin = join(repo, 'out', arch);
  if (!existsSync(join(bin, 'runit-ts'))) {
    t.fail(`out/${arch}/runit-ts is missing: run make build ARCH=${arch}`);
    return;
  }
  mkdirSync(join(repo, 'out', 'test-logs'), { recursive: true });
  const work = mkdtempSync(join(tmpdir(), `runit-ts-disk-${arch}-`));
  t.teardown(() => rmSync(work, { recursive: true, force: true }));
  const spec = diskSpec(arch);
  const ids = diskIds(spec);
  const dir = join(work, 'image');
  const figures: string[] = [];

  const start = (path: string, log: string, opts: { dir?: string; disk?: string; snapshot?: boolean; append?: string; allowReboot?: boolean } = {}): Promise<Machine> => {
    const b = diskBoot(opts.dir ?? dir, arch, path);
    return boot({
      arch,
      ...(b.kernel !== undefined ? { kernel: b.kernel, initrd: b.initrd!, append: opts.append ?? b.append! } : {}),
      ...(b.firmware !== undefined ? { firmware: b.firmware } : {}),
      drives: [{ file: opts.disk ?? join(opts.dir ?? dir, 'disk.img'), snapshot: opts.snapshot ?? true }],
      allowReboot: opts.allowReboot ?? false,
      memory: 1024,
      consoleLog: join(repo, 'out', 'test-logs', `${arch}-disk-${log}.log`),
    });
  };

  /** Prompt, then the root, the command line and every service as they should be. */
  const checkUp = async (t: Test, m: Machine, path: string, from = 0): Promise<number> => {
    const p = await m.waitFor(PROMPT, { timeout: 240_000, from });
    let r = await m.run(`sv -w 30 check ${SERVICES.join(' ')} shell >/dev/null; sv status /etc/service/*`, { timeout: 90_000 });
    const lines = r.output.trim().split('\n');
    t.equal(lines.filter((l) => /^run: /.test(l)).length, SERVICES.length + 1, `${path}: sv status shows every service up`);
    const upAt = m.elapsed();
    r = await m.run('cat /proc/cmdline; grep " / " /proc/mounts', { timeout: 60_000 });
    t.match(r.output, new RegExp(`root=PARTUUID=${ids.root} `), `${path}: /proc/cmdline names the root partition`);
    t.match(r.output, /^\/dev\/vda2 \/ ext4 rw[, ]/m, `${path}: / is the ext4 partition vda2, read-write`);
    t.comment(`${arch} ${path}: QEMU start -> prompt ${p.elapsed.toFixed(1)} s, all services up ${upAt.toFixed(1)} s`);
    return upAt;
  };

  t.before(async () => {
    await buildDisk(resolveImage(spec, bin), dir);
  });

  for (const path of BOOT_PATHS[arch].filter((p) => p !== 'direct')) {
    t.test(`${arch} ${path}: boots the disk, init 6 reboots it, init 0 powers off`, async (t) => {
      const m = await start(path, path, { allowReboot: true });
      t.teardown(() => m.dispose());
      const up = await checkUp(t, m, path);
      figures.push(`${path} ${up.toFixed(1)} s`);
      let mark = m.mark();
      await m.sendLine('init 6');
      await m.waitFor('reboot: Restarting system', { from: mark, timeout: 60_000 });
      mark = m.mark();
      t.pass('init 6: the kernel restarts the machine');
      await checkUp(t, m, `${path} (after reboot)`, mark);
      await m.sendLine('init 0');
      const exit = await m.waitForExit({ timeout: 60_000 });
      t.equal(exit.reason, 'guest-shutdown', 'init 0 powers off');
      t.notOk(exit.panicked, 'no kernel panic');
    });
  }

  t.test(`${arch} direct: persistence across reboots, a clean root after each shutdown, recovery after a kill`, async (t) => {
    const disk = join(work, 'persist.img');
    await execa('cp', ['--sparse=always', join(dir, 'disk.img'), disk]);
    // 1: write a file, take a service down for good (down file), reboot
    let m = await start('direct', 'persist-1', { disk, snapshot: false });
    try {
      const up = await checkUp(t, m, 'direct');
      figures.push(`direct ${up.toFixed(1)} s`);
      const r = await m.run('echo "kept $(cat /proc/sys/kernel/random/boot_id)" > /root/persist && touch /etc/sv/beta/down && sv -w 10 down beta && cat /root/persist', { timeout: 60_000 });
      t.equal(r.status, 0, 'file written, beta down');
      const written = r.output.split('\n').find((l) => l.startsWith('kept ')) ?? 'kept (nothing)';
      await m.sendLine('init 6');
      let exit = await m.waitForExit({ timeout: 60_000 });
      t.equal(exit.reason, 'guest-reset', 'init 6 reboots');
      let fsck = await fsckRoot(disk);
      t.ok(fsck.code === 0 && fsck.clean, `after the reboot: e2fsck -fn exit ${fsck.code}, superblock clean ${fsck.clean} (${fsck.summary})`);
      await m.dispose();

      // 2: the same disk again: the file and the down state are still there
      m = await start('direct', 'persist-2', { disk, snapshot: false });
      await m.waitFor(PROMPT, { timeout: 240_000 });
      let r2 = await m.run(`cat /root/persist; sv -w 30 check alpha gamma >/dev/null; sv status ${SERVICES.join(' ')}`, { timeout: 60_000 });
      t.match(r2.output, written, 'the file written before the reboot is there');
      t.match(r2.output, /^down: beta: \d+s$/m, 'beta stays down (its down file persisted)');
      t.match(r2.output, /^run: alpha: /m, 'alpha runs');
      t.match(r2.output, /^run: gamma: /m, 'gamma runs');
      await m.sendLine('init 0');
      exit = await m.waitForExit({ timeout: 60_000 });
      t.equal(exit.reason, 'guest-shutdown', 'init 0 powers off');
      fsck = await fsckRoot(disk);
      t.ok(fsck.code === 0 && fsck.clean, `after the power-off: e2fsck -fn exit ${fsck.code}, superblock clean ${fsck.clean} (${fsck.summary})`);
      await m.dispose();

      // 3: killed while running: the file system is left needing recovery
      m = await start('direct', 'persist-3', { disk, snapshot: false });
      await m.waitFor(PROMPT, { timeout: 240_000 });
      r2 = await m.run('echo unclean > /root/unclean; sync', { timeout: 60_000 });
      await m.kill();
      await m.dispose();
      fsck = await fsckRoot(disk);
      t.notOk(fsck.clean, 'after the kill: the superblock says not clean (the journal needs replaying)');

      // 4: it boots again: the early stage's e2fsck -p replays the journal first
      m = await start('direct', 'persist-4', { disk, snapshot: false });
      await m.waitFor('early: checking /dev/vda2', { timeout: 120_000 });
      await m.waitFor(PROMPT, { timeout: 240_000 });
      r2 = await m.run('cat /root/unclean /root/persist', { timeout: 60_000 });
      t.match(r2.output, /^unclean$/m, 'the synced file survived the kill');
      await m.sendLine('init 0');
      exit = await m.waitForExit({ timeout: 60_000 });
      t.equal(exit.reason, 'guest-shutdown', 'init 0 powers off');
      fsck = await fsckRoot(disk);
      t.ok(fsck.code === 0 && fsck.clean, `after the recovered boot: e2fsck -fn exit ${fsck.code}, superblock clean ${fsck.clean} (${fsck.summary})`);
    } finally {
      await m.dispose();
      rmSync(disk, { force: true });
    }
  });

  t.test(`${arch} direct: a read-only erofs root under a tmpfs overlay leaves the disk as it was`, async (t) => {
    const edir = join(work, 'erofs');
    await buildDisk(resolveImage({ ...spec, disk: { rootfs: 'erofs' } }, bin), edir);
    const disk = join(work, 'erofs-copy.img');
    await execa('cp', ['--sparse=always', join(edir, 'disk.img'), disk]);
    const m = await start('direct', 'erofs', { dir: edir, disk, snapshot: false });
    try {
      await m.waitFor('early: overlay: /dev/vda2 read-only below, tmpfs above', { timeout: 120_000 });
      const p = await m.waitFor(PROMPT, { timeout: 240_000 });
      let r = await m.run(`sv -w 30 check ${SERVICES.join(' ')} shell >/dev/null; sv status /etc/service/* | grep -c "^run: "`, { timeout: 90_000 });
      t.equal(r.output.trim(), String(SERVICES.length + 1), 'every service up (their supervise dirs are written to the overlay)');
      t.comment(`${arch} direct (erofs): QEMU start -> prompt ${p.elapsed.toFixed(1)} s, all services up ${m.elapsed().toFixed(1)} s`);
      r = await m.run('grep " / " /proc/mounts; cat /proc/cmdline; echo scratch > /root/scratch && cat /root/scratch', { timeout: 60_000 });
      t.match(r.output, /^overlay \/ overlay rw/m, '/ is the overlay');
      t.match(r.output, /rootfstype=erofs ro root\.overlay=tmpfs/, 'booted with the erofs command line');
      t.match(r.output, /^scratch$/m, 'the running system can write');
      await m.sendLine('init 0');
      const exit = await m.waitForExit({ timeout: 60_000 });
      t.equal(exit.reason, 'guest-shutdown', 'init 0 powers off');
    } finally {
      await m.dispose();
    }
    const sum = async (f: string) => (await execa('sha256sum', [f])).stdout.split(' ')[0];
    t.equal(await sum(disk), await sum(join(edir, 'disk.img')), 'the disk written through is byte-identical afterwards');
    rmSync(disk, { force: true });
  });

  t.test(`${arch}: the executable on a read-only erofs disk (exedisk), mounted by the early stage`, async (t) => {
    const xdir = join(work, 'exedisk');
    await buildExeDisk(resolveImage(spec, bin), xdir);
    const small = statSync(join(xdir, 'exedisk.img')).size;
    t.ok(small < 24 * 1048576, `the initramfs without the executable: ${(small / 1048576).toFixed(1)} MiB`);
    for (const device of EXE_DEVICES[arch]) {
      const b = exeDiskBoot(xdir, arch, device);
      const m = await boot({
        arch, kernel: b.kernel, initrd: b.initrd, append: b.append, memory: 1024,
        ...(device === 'blk' ? { drives: [{ file: b.disk, readOnly: true }] } : { pmem: [b.disk] }),
        consoleLog: join(repo, 'out', 'test-logs', `${arch}-exedisk-${device}.log`),
      });
      try {
        const p = await m.waitFor(PROMPT, { timeout: 240_000 });
        let r = await m.run(`sv -w 30 check ${SERVICES.join(' ')} shell >/dev/null; sv status /etc/service/* | grep -c "^run: "`, { timeout: 90_000 });
        t.equal(r.output.trim(), String(SERVICES.length + 1), `${device}: every service up`);
        figures.push(`exedisk ${device} ${m.elapsed().toFixed(1)} s`);
        t.comment(`${arch} exedisk (${device}): QEMU start -> prompt ${p.elapsed.toFixed(1)} s, all services up ${m.elapsed().toFixed(1)} s`);
        r = await m.run('grep " /usr/lib/runit-ts " /proc/mounts; touch /usr/lib/runit-ts/x 2>&1; echo $?', { timeout: 60_000 });
        const dev = device === 'blk' ? 'vda' : 'pmem0';
        t.match(r.output, new RegExp(`^/dev/${dev} /usr/lib/runit-ts erofs ro[,\\s]`, 'm'), `${device}: /usr/lib/runit-ts is the erofs on /dev/${dev}, read-only`);
        if (device === 'pmem') t.match(r.output, /dax=always/, 'pmem: mounted with DAX');
        t.match(r.output, /^1$/m, `${device}: nothing can be written there`);
        // the early stage's fast path (image/early.c) did it all: no word from the script
        r = await m.run("dmesg | grep -o 'Run /sbin/[a-z-]* as init process' | tr -d '[]'", { timeout: 60_000 });
        t.match(r.output, /Run \/sbin\/early as init process/, `${device}: /sbin/early was PID 1 before runit`);
        t.notMatch(m.console, /^early: /m, `${device}: early-init.sh said nothing`);
        await m.sendLine('init 0');
        const exit = await m.waitForExit({ timeout: 60_000 });
        t.equal(exit.reason, 'guest-shutdown', `${device}: init 0 powers off`);
        t.notOk(exit.panicked, `${device}: no kernel panic`);
      } finally {
        await m.dispose();
      }
    }
    t.throws(() => exeDiskBoot(join(work, 'none'), arch), { message: /^no exedisk.img in .*: run make image OUTPUTS=exedisk ARCH=/ }, 'a missing image: one line saying what to run');
  });

  t.test(`${arch}: exedisk: what the early program does not do goes to early-init.sh (early.shell)`, async (t) => {
    const b = exeDiskBoot(join(work, 'exedisk'), arch, 'blk');
    const m = await boot({
      arch, kernel: b.kernel, initrd: b.initrd, append: `${b.append} early.shell`, memory: 1024, drives: [{ file: b.disk, readOnly: true }],
      consoleLog: join(repo, 'out', 'test-logs', `${arch}-exedisk-fallback.log`),
    });
    try {
      await m.waitFor('early: rescue shell', { timeout: 240_000 });
      // leaving the script's rescue shell goes on with the boot: the disk mounted, runit started
      await m.sendLine('exit');
      await m.waitFor(PROMPT, { timeout: 240_000 });
      const r = await m.run(`sv -w 30 check ${SERVICES.join(' ')} >/dev/null; grep -c " /usr/lib/runit-ts erofs " /proc/mounts`, { timeout: 90_000 });
      t.equal(r.output.trim(), '1', 'the executable\'s disk mounted once, by the script');
      await m.sendLine('init 0');
      t.equal((await m.waitForExit({ timeout: 60_000 })).reason, 'guest-shutdown', 'init 0 powers off');
    } finally {
      await m.dispose();
    }
  });

  t.test(`${arch}: boot figures`, async (t) => {
    t.comment(`${arch} disk boot, QEMU start -> every service up: ${figures.join(', ')}`);
    t.ok(readdirSync(dir).includes('disk.img'), 'the shared disk image is still there');
  });
}
