// The reliability suite's boot part, run once per arch (test/boot/reliability-<arch>.test.ts):
// services that ignore TERM do not hold `init 0` past SVWAIT + 2 s; permissions of
// supervise/ and of the whole image (its entry list, and the running guest); chpst -u
// drops every supplementary group.
import t from 'tap';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Arch } from '../../image/inputs.ts';
import { inlineService, rootfs, type ServiceDef } from '../../image/rootfs.ts';
import { haveImage, outDir, PROMPT, start, testImage } from './boot.ts';
import { repo } from './host.ts';

/** stage 3's default wait for services to stop before it KILLs them (stages/stage3.ts) */
const SVWAIT = 7;
const HALT_LIMIT = SVWAIT + 2;
/** runsvdir's default wait before it KILLs the services still running at its exit */
const STOP_TIMEOUT = 4;

/** Three services that ignore TERM (the ignored disposition survives exec), one logged. */
export function stubbornServices(): ServiceDef[] {
  return [0, 1, 2].map((i) => ({
    name: `stubborn${i}`,
    files: {
      run: `#!/bin/sh\nexec 2>&1\ntrap '' TERM\necho "STUBBORN${i} up"\nexec sleep 100000\n`,
      ...(i === 0 ? { 'log/run': '#!/bin/sh\nexec svlogd ./main\n', 'log/main/config': '' } : {}),
    },
  }));
}

/** Entries of type file, directory or FIFO that anyone may write. */
function worldWritable(entries: Array<{ path: string; type: string; mode: number }>): string[] {
  return entries.filter((e) => (e.type === 'file' || e.type === 'dir' || e.type === 'fifo') && e.mode & 0o002).map((e) => `${e.path} ${e.type} ${e.mode.toString(8)}`);
}

export function reliabilitySuite(arch: Arch): void {
  if (!haveImage(arch)) {
    t.fail(`out/${arch}/initramfs.img is missing: run make image ARCH=${arch}`);
    return;
  }
  mkdirSync(join(repo, 'out', 'test-logs'), { recursive: true });
  const services = stubbornServices();

  t.test(`${arch}: the image's entry list: nothing world-writable but /tmp (sticky)`, async (t) => {
    const entries = [...rootfs({ arch }, outDir(arch)), ...services.flatMap(inlineService)];
    t.same(worldWritable(entries), ['tmp dir 1777'], 'only /tmp, mode 1777');
    // without an entry for it, / keeps the mode of the kernel's rootfs (tmpfs: 1777)
    t.same(entries.filter((e) => e.path === '.').map((e) => `${e.type} ${e.mode.toString(8)}`), ['dir 755'], 'the root directory itself is in the list, 0755');
    const devices = entries.filter((e) => e.type === 'char' && e.mode & 0o002).map((e) => e.path);
    t.same(devices, ['dev/null'], 'the one world-writable device node is /dev/null');
    t.comment(`figure: ${arch}: ${entries.length} image entries, world-writable: /tmp (1777) and the device /dev/null`);
  });

  t.test(`${arch}: permissions in the guest, chpst -u, init 0 with services ignoring TERM`, async (t) => {
    const m = await start(arch, testImage(arch, services, 'reliability'), 'reliability');
    t.teardown(() => m.dispose());
    await m.waitFor(PROMPT, { timeout: 90_000 });
    let r = await m.run('sv -w 30 up /etc/service/*; sv status /etc/service/* | grep -c "^run:"', { timeout: 90_000 });
    t.equal(r.status, 0, 'every service up');

    // supervise/ 0700, control and ok 0600, for every service and log service
    r = await m.run('for d in /etc/service/*/supervise /etc/service/*/log/supervise; do [ -d "$d" ] && stat -L -c "%a %F %n" "$d" "$d/control" "$d/ok"; done', { timeout: 60_000 });
    const perms = r.output.trim().split(/\r?\n/).filter(Boolean);
    const dirs = perms.filter((l) => / directory /.test(l));
    const fifos = perms.filter((l) => / fifo /.test(l));
    t.ok(dirs.length >= 5, `${dirs.length} supervise directories checked (services and loggers)`);
    t.equal(fifos.length, dirs.length * 2, 'control and ok of each');
    t.same(dirs.filter((l) => !l.startsWith('700 ')), [], 'every supervise/ is 0700');
    t.same(fifos.filter((l) => !l.startsWith('600 ')), [], 'every control and ok FIFO is 0600');

    // nothing world-writable on the root file system or /run but /tmp, which is sticky
    r = await m.run('find / /run -xdev \\( -type f -o -type d -o -type p \\) -perm -0002 | sort -u; stat -c "%a %n" /tmp', { timeout: 60_000 });
    const ww = r.output.trim().split(/\r?\n/).filter(Boolean);
    t.same(ww, ['/tmp', '1777 /tmp'], `world-writable in the running guest: ${ww.join(', ')}`);

    // chpst -u drops every supplementary group: run it from a process that has three
    r = await m.run('chpst -u root:root:tty:nogroup sh -c \'grep ^Groups /proc/self/status; chpst -u nobody grep -E "^(Uid|Gid|Groups)" /proc/self/status\'', { timeout: 60_000 });
    const groups = [...r.output.matchAll(/^Groups:\s*(.*?)\s*$/gm)].map((g) => g[1]);
    t.same(groups[0]?.split(/\s+/), ['0', '5', '65534'], 'the caller has groups root, tty and nogroup');
    t.same(groups[1]?.split(/\s+/), ['65534'], `chpst -u nobody: only nobody's own group is left (${JSON.stringify(groups[1])})`);
    t.match(r.output, /^Uid:\s+65534\s+65534\s+65534\s+65534\s*$/m, 'uid nobody (real, effective, saved, fs)');
    t.match(r.output, /^Gid:\s+65534\s+65534\s+65534\s+65534\s*$/m, 'gid nogroup');

    // init 0: stage 3 waits SVWAIT for the stubborn ones, then KILLs them
    const mark = m.mark();
    const t0 = performance.now();
    await m.sendLine('read up _ < /proc/uptime; echo "INIT0 AT $up"; init 0');
    const at = await m.waitFor(/INIT0 AT ([\d.]+)\r?\n/, { from: mark, timeout: 30_000 });
    const down = await m.waitFor(/\[\s*([\d.]+)\] reboot: Power down/, { from: at.end, timeout: 60_000 });
    const exit = await m.waitForExit({ timeout: 60_000 });
    const guest = Number(down.groups[1]) - Number(at.groups[1]);
    const host = (performance.now() - t0) / 1000;
    t.equal(exit.reason, 'guest-shutdown', 'init 0 powers off');
    t.comment(`figure: ${arch}: init 0 with 3 services ignoring TERM: ${guest.toFixed(2)} s to power-down in the guest (limit SVWAIT + 2 = ${HALT_LIMIT} s), ${host.toFixed(2)} s to QEMU exit`);
    // the supervisor, told to stop by stage 2's end, waits RUNSVDIR_STOP_TIMEOUT (4 s) and
    // KILLs what is left, so stage 3 finds them stopped: a halt that quick would mean the
    // services did not ignore TERM after all
    t.ok(guest >= STOP_TIMEOUT - 0.5, `the services did hold the halt up: ${guest.toFixed(2)} s >= ${STOP_TIMEOUT - 0.5} s`);
    t.ok(guest <= HALT_LIMIT, `init 0 completed in ${guest.toFixed(2)} s <= ${HALT_LIMIT} s`);
  });
}
