// The boot test suite, run once per arch (test/boot/<arch>.test.ts), all under TCG
// unless KVM really works here.
import t from 'tap';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Arch } from '../../image/inputs.ts';
import { haveImage, loggedServices, parallelServices, PROMPT, specImage, start, testImage } from './boot.ts';
import { repo } from './host.ts';
import { DEFAULT_SERVICES } from '../../image/rootfs.ts';

export function suite(arch: Arch): void {
  if (!haveImage(arch)) {
    t.fail(`out/${arch}/initramfs.img is missing: run make image ARCH=${arch}`);
    return;
  }
  mkdirSync(join(repo, 'out', 'test-logs'), { recursive: true });
  const img = testImage(arch, parallelServices(), 'main');
  const figures: Record<string, number> = {};

  t.test(`${arch}: boot, parallel start, supervisor restart, init 0`, async (t) => {
    const m = await start(arch, img, 'main');
    t.teardown(() => m.dispose());
    await m.waitFor(PROMPT, { timeout: 90_000 });
    // every service reports READY with the guest's uptime; all ten within 2 s of the first start
    const starts: number[] = [];
    const readies: number[] = [];
    let lastReady = 0;
    for (let i = 0; i < 10; i++) {
      const s = await m.waitFor(new RegExp(`START par${i} ([\\d.]+)\\r?\\n`), { timeout: 60_000 });
      const r = await m.waitFor(new RegExp(`READY par${i} ([\\d.]+)\\r?\\n`), { timeout: 60_000 });
      starts.push(Number(s.groups[1]));
      readies.push(Number(r.groups[1]));
      lastReady = Math.max(lastReady, r.elapsed);
    }
    const spread = Math.max(...readies) - Math.min(...starts);
    figures.allReady = lastReady;
    t.ok(spread < 2, `all ten ready ${spread.toFixed(2)} s after the first started (limit 2 s): parallel`);
    t.comment(`${arch}: QEMU start -> all 10 services ready: ${lastReady.toFixed(2)} s`);

    // klogd starts only once syslogd is ready (its dependencies.d), which may come after
    // the ten: every service must be running within RUN_WITHIN_MS of them, not at once
    const RUNNING = /^run: \/etc\/service\/\S+: \(pid \d+\) \d+s(; run: log: \(pid \d+\) \d+s)?$/;
    const RUN_WITHIN_MS = 30_000;
    const all = 10 + DEFAULT_SERVICES.length;
    const statusLines = async () => (await m.run('sv status /etc/service/*', { timeout: 60_000 })).output.trim().split('\n').filter(Boolean);
    let lines = await statusLines();
    for (const t0 = Date.now(); !(lines.length === all && lines.every((l) => RUNNING.test(l))) && Date.now() - t0 < RUN_WITHIN_MS; ) {
      await new Promise((res) => setTimeout(res, 500));
      lines = await statusLines();
    }
    t.equal(lines.length, all, `a status line per service (10 + ${DEFAULT_SERVICES.join(', ')})`);
    for (const l of lines) t.match(l, RUNNING, 'running');
    let r = await m.run('sv -w 10 check /etc/service/par*', { timeout: 60_000 });
    t.equal(r.status, 0, 'sv check: every ./check passes');
    // PID 1 took stage 1's handoff: the supervisor is stage 1's process
    r = await m.run(`grep -o '"stage2Pid":[0-9]*' /run/runit-ts/boot.json; awk '{print "supervisor:" $4}' /proc/$(cat /etc/service/par0/supervise/pid)/stat`, { timeout: 60_000 });
    const handed = /"stage2Pid":(\d+)/.exec(r.output)?.[1];
    t.ok(handed, `stage 1 went on as stage 2: ${r.output}`);
    t.match(r.output, new RegExp(`supervisor:${handed}\\b`), 'the supervisor is that process: one Node start on the boot path');

    // stage 1's machine-wide memory settings (src/lib/trim.ts)
    r = await m.run('cat /sys/kernel/mm/transparent_hugepage/enabled; mount -t debugfs debugfs /sys/kernel/debug && cat /sys/kernel/debug/fault_around_bytes; umount /sys/kernel/debug', { timeout: 60_000 });
    t.match(r.output, /\[madvise\][\s\S]*\n4096\b/, `huge pages on request only, fault-around of one page: ${r.output}`);

    // SIGKILL the supervisor: runit restarts stage 2 after 5 s; the new supervisor stops
    // the orphans it finds (the shell too: it comes back) and starts each service once
    const mark = m.mark();
    await m.sendLine('kill -9 $(awk \'{print $4}\' /proc/$(cat /etc/service/par0/supervise/pid)/stat)');
    await m.waitFor('enter stage: /etc/runit/2', { from: mark, timeout: 60_000 });
    for (let i = 0; i < 10; i++) await m.waitFor(`READY par${i}`, { from: mark, timeout: 90_000 });
    // the old shell is an orphan too: it is stopped (TERM, then KILL after 5 s) and started again
    const banner = await m.waitFor('built-in shell (ash)', { from: mark, timeout: 60_000 });
    await m.waitFor(PROMPT, { from: banner.end, timeout: 60_000 });
    r = await m.run('ps -o pid,args | grep -c "[s]leep 100000"; sv status /etc/service/* | grep -c "^run:"', { timeout: 60_000 });
    t.same(r.output.trim().split(/\s+/), ['10', String(all)], `after the restart: ten service processes, none twice; all ${all} supervised`);

    const t0 = performance.now();
    await m.sendLine('init 0');
    for (let i = 0; i < 10; i++) await m.waitFor(new RegExp(`FINISH par${i} `), { from: mark, timeout: 60_000 });
    const exit = await m.waitForExit({ timeout: 60_000 });
    figures.halt = (performance.now() - t0) / 1000;
    t.equal(exit.reason, 'guest-shutdown', 'init 0 powers off');
    t.comment(`${arch}: init 0 -> QEMU exit: ${figures.halt.toFixed(2)} s`);
  });

  t.test(`${arch}: init 6 reboots`, async (t) => {
    const m = await start(arch, img, 'reboot');
    t.teardown(() => m.dispose());
    await m.waitFor(PROMPT, { timeout: 90_000 });
    await m.sendLine('init 6');
    await m.waitFor('FINISH par0', { timeout: 60_000 });
    const exit = await m.waitForExit({ timeout: 60_000 });
    t.equal(exit.reason, 'guest-reset', 'init 6 resets');
    t.notOk(exit.panicked, 'no kernel panic');
  });

  t.test(`${arch}: ctrl-alt-del runs /etc/runit/ctrlaltdel and the system goes down`, async (t) => {
    const m = await start(arch, img, 'cad');
    t.teardown(() => m.dispose());
    await m.waitFor(PROMPT, { timeout: 90_000 });
    await m.ctrlAltDel();
    await m.waitFor('ctrlaltdel: the system is going down', { timeout: 30_000 });
    await m.waitFor('FINISH par0', { timeout: 60_000 });
    const exit = await m.waitForExit({ timeout: 60_000 });
    t.equal(exit.reason, 'guest-reset', 'ctrl-alt-del reboots');
    t.notOk(exit.panicked, 'no kernel panic');
  });

  t.test(`${arch}: twenty services logging through svlogd, driven by sv, chpst -u, init 0`, async (t) => {
    // built whole from a spec, so that the image's prestart plan has the twenty
    const m = await start(arch, await specImage({ arch, inline: loggedServices() }, [], 'logged'), 'logged');
    t.teardown(() => m.dispose());
    await m.waitFor(PROMPT, { timeout: 90_000 });
    let r = await m.run('sv -w 30 check /etc/service/svc*; sv status /etc/service/svc* | grep -c "^run: .*; run: log:"', { timeout: 90_000 });
    t.match(r.output.trim(), /\n20$/, 'all twenty services and their loggers run');
    // the prestart (image/prestart.ts): the twenty are plain services, started by PID 1's
    // stage 1 child before Node was up, and adopted by the supervisor
    r = await m.run(`grep -o '"stage1Start":[0-9.]*' /run/runit-ts/boot.json; echo; runit-ts analyze plot --json`, { timeout: 60_000 });
    const stage1Start = Number(/"stage1Start":([0-9.]+)/.exec(r.output)?.[1]);
    const plot = JSON.parse(r.output.replace(/\r/g, '').slice(r.output.indexOf('\n{') + 1).trim()) as { services: Array<{ name: string; spawned?: number }> };
    const spawned = plot.services.filter((x) => /^svc\d+$/.test(x.name)).map((x) => x.spawned ?? NaN);
    t.equal(spawned.length, 20, 'a spawn time for each');
    t.ok(stage1Start > 0 && spawned.every((x) => x < stage1Start), `all twenty started before stage 1's code (${stage1Start} s): ${spawned.join(' ')}`);
    r = await m.run('cat /etc/service/svc0/log/main/current /etc/service/svc0/log/main/@* | grep -c "line"; ls /etc/service/svc0/log/main | grep -c "^@.*\\.s$"', { timeout: 60_000 });
    const [lines, rotated] = r.output.trim().split(/\s+/).map(Number);
    t.equal(lines, 300, 'every line logged, none lost across rotations');
    t.ok(rotated! >= 3 && rotated! <= 10, `rotated at 4 KiB (${rotated} rotated files for ~18 KiB)`);
    r = await m.run('grep -h "uid" /etc/service/svc0/log/main/current /etc/service/svc0/log/main/@* | head -1', { timeout: 60_000 });
    t.match(r.output.trim(), /^\d{4}-\d\d-\d\d_\d\d:\d\d:\d\d\.\d{5} uid 65534$/, 'chpst -u nobody ran the service unprivileged; svlogd -tt stamped the line');
    r = await m.run('sv -w 10 restart svc5 && sv -w 10 down svc6 && sv status svc5 svc6', { timeout: 60_000 });
    t.match(r.output, /run: svc5: \(pid \d+\) \ds; run: log: \(pid \d+\) \d+s/, 'restart: new process, logger kept');
    t.match(r.output, /down: svc6: \d+s, normally up; run: log:/, 'down');
    r = await m.run('sv hup svc7/log && sv -w 10 t svc7/log && sv status svc7', { timeout: 60_000 });
    t.equal(r.status, 0, 'sv drives the log service too');
    // beyond runit: status as JSON (with restarts and the last exit), the event stream, waits
    r = await m.run('runit-ts status --json svc5 svc6', { timeout: 60_000 });
    const [j5, j6] = r.output.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    t.match(j5, { name: 'svc5', state: 'run', want: 'up', restarts: 1, lastExit: { code: -1, signal: 'SIGTERM' }, log: { state: 'run' } }, 'JSON status: restarted once, last ended by TERM');
    t.match(j6, { name: 'svc6', state: 'down', want: 'down', normallyUp: true, pid: null }, 'JSON status of a service taken down');
    r = await m.run('runit-ts events -n -c 6 -t 30 svc8 > /tmp/ev & sleep 1; sv -w 10 restart svc8 >/dev/null; wait; cat /tmp/ev', { timeout: 90_000 });
    // (svc8's ./finish writes STOPPED on the console too: only the JSON lines are events)
    const evs = r.output.trim().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { event: string; service: string; pid?: number; signal?: string });
    t.same(evs.map((e) => e.event), ['exit', 'finish', 'exit', 'down', 'up', 'ready'], 'events of a restart (run, then ./finish), pushed by the supervisor');
    t.equal(evs[0]?.signal, 'SIGTERM');
    r = await m.run('runit-ts wait -t 10 up svc5 svc8; echo "rc=$?"; runit-ts wait -t 1 up svc6; echo "rc=$?"', { timeout: 60_000 });
    // each "ok:" is printed as that service gets there: in either order
    t.match(r.output, /(ok: svc5\nok: svc8|ok: svc8\nok: svc5)\nrc=0\ntimeout: svc6\nrc=1/, 'runit-ts wait: up, and a timeout for the service that is down');
    const mark = m.mark();
    await m.sendLine('init 0');
    for (let i = 0; i < 20; i++) if (i !== 6) await m.waitFor(`STOPPED svc${i}`, { from: mark, timeout: 60_000 });
    const exit = await m.waitForExit({ timeout: 60_000 });
    t.equal(exit.reason, 'guest-shutdown', 'init 0 stopped them all and powered off');
    t.notMatch(m.console.slice(mark), /stage 3: kill:/, 'nothing had to be killed');
  });
}
