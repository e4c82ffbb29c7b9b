// The boot timeline on a booted image (test/boot/timeline-<arch>.test.ts): a one-shot
// that mounts a file system, a daemon that tells readiness on notification-fd, and a
// service that depends on both; then runit-ts analyze in the guest. One boot per arch.
import t from 'tap';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Arch } from '../../image/inputs.ts';
import type { ServiceDef } from '../../image/rootfs.ts';
import { haveImage, PROMPT, start, testImage } from './boot.ts';
import { repo } from './host.ts';

export function timelineServices(): ServiceDef[] {
  return [
    { name: 'mnt', files: { run: '#!/bin/sh\nmkdir -p /mnt/data && mount -t tmpfs -o size=1m data /mnt/data\n', type: 'oneshot\n' } },
    { name: 'netd', files: { run: '#!/bin/sh\nsleep 0.5\necho >&3\nexec sleep 100000\n', 'notification-fd': '3\n' } },
    {
      name: 'app',
      files: {
        run: '#!/bin/sh\ngrep -q " /mnt/data " /proc/mounts && echo "APP sees /mnt/data" > /dev/console\nexec sleep 100000\n',
        'dependencies.d/mnt': '',
        'dependencies.d/netd': '',
      },
    },
  ];
}

export function timelineSuite(arch: Arch): void {
  if (!haveImage(arch)) {
    t.fail(`out/${arch}/initramfs.img is missing: run make image ARCH=${arch}`);
    return;
  }
  mkdirSync(join(repo, 'out', 'test-logs'), { recursive: true });
  t.test(`${arch}: dependencies, readiness, a one-shot and the boot timeline`, async (t) => {
    const m = await start(arch, testImage(arch, timelineServices(), 'timeline'), 'timeline');
    t.teardown(() => m.dispose());
    await m.waitFor(PROMPT, { timeout: 90_000 });
    await m.waitFor('APP sees /mnt/data', { timeout: 60_000 });
    t.pass('app started after the one-shot mounted /mnt/data');
    let r = await m.run('sv -w 30 check mnt netd app; sv status mnt app', { timeout: 60_000 });
    t.equal(r.status, 0, `sv check: ${r.output}`);
    t.match(r.output, /down: mnt: \d+s, normally up/, 'the one-shot ran and is done');
    r = await m.run('runit-ts analyze time', { timeout: 60_000 });
    t.comment(`${arch}: runit-ts analyze time\n${r.output.trim()}`);
    const time = /Startup finished in (\d+\.\d+)s \(kernel\) \+ (\d+\.\d+)s \(stage 1\) \+ (\d+\.\d+)s \(services\) = (\d+\.\d+)s/.exec(r.output);
    t.ok(time, `kernel + stage 1 + services: ${r.output}`);
    if (time) {
      const [k, s1, sv, total] = time.slice(1).map(Number) as [number, number, number, number];
      t.ok(k > 0 && s1 > 0 && sv > 0, 'each part took some time');
      t.ok(Math.abs(k + s1 + sv - total) < 0.005, 'the parts add up');
    }
    r = await m.run('runit-ts analyze blame', { timeout: 60_000 });
    t.comment(`${arch}: runit-ts analyze blame\n${r.output.trim()}`);
    const netd = /(\d+\.\d{3})s netd \(notification-fd\)$/m.exec(r.output);
    t.ok(netd && Number(netd[1]) >= 0.5, 'netd took its half second to be ready');
    t.match(r.output, /\d\.\d{3}s app \(started, waited \d+\.\d{3}s for dependencies\)/);
    t.match(r.output, /\d\.\d{3}s mnt \(oneshot\)/);
    r = await m.run('runit-ts analyze plot --json | head -c 20000', { timeout: 60_000 });
    const a = JSON.parse(r.output.replace(/\r/g, '').trim()) as { origin: string; services: Array<{ name: string; ready?: number; depsMet?: number }> };
    t.equal(a.origin, 'boot', 'times count from boot');
    const by = new Map(a.services.map((s) => [s.name, s]));
    t.ok(by.get('app')!.depsMet! >= by.get('netd')!.ready!, 'app started after netd was ready');
    t.ok(by.get('app')!.depsMet! >= by.get('mnt')!.ready!, 'and after mnt had run');
    // The chain names whichever dependency was ready last: netd's half second usually,
    // but a slow one-shot (mount under TCG) can finish after it.
    const last = by.get('netd')!.ready! >= by.get('mnt')!.ready! ? 'netd' : 'mnt';
    r = await m.run('runit-ts analyze critical-chain app', { timeout: 60_000 });
    t.comment(`${arch}: runit-ts analyze critical-chain app\n${r.output.trim()}`);
    t.match(r.output.replace(/\r/g, ''), new RegExp(`app @\\d+\\.\\d{3}s \\+\\d+\\.\\d{3}s\\n└─${last} @\\d+\\.\\d{3}s \\+\\d+\\.\\d{3}s`), `app waited for ${last} last`);
    r = await m.run('runit-ts analyze plot > /run/boot.svg; wc -c < /run/boot.svg; cat /run/boot.svg', { timeout: 60_000 });
    const svg = r.output.replace(/\r/g, '').slice(r.output.replace(/\r/g, '').indexOf('<?xml'));
    t.match(svg, /<\/svg>\s*$/, 'a whole SVG');
    writeFileSync(join(repo, 'out', 'test-logs', `${arch}-timeline.svg`), svg);
    await m.sendLine('init 0');
    const exit = await m.waitForExit({ timeout: 60_000 });
    t.equal(exit.reason, 'guest-shutdown');
  });
}
