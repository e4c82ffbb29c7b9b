// Boot tests of a Debian-based image (image/specs/debian.yaml: Debian 12 with
// runit-services, cron and rsyslog, runit-ts-init as its runit), per arch: one build (disk
// and initramfs, the guest agent added so the tests read exit codes, and Debian's own sv
// copied in as the peer), then the direct disk boot with reboot, power-off and a clean
// root, and the firmware boot paths and the initramfs. make test boots x86_64 directly
// (test/boot/debian-x86_64.test.ts); make reliability runs the rest, aarch64's direct boot
// included (test/long/debian-<arch>.test.ts): an emulated aarch64 Debian boot is minutes.
import t, { type Test } from 'tap';
import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import type { Arch } from '../../image/inputs.ts';
import { inputDir } from '../../image/inputs.ts';
import { buildOutputs } from '../../image/outputs.ts';
import { BOOT_PATHS, diskBoot } from '../../image/packers/disk.ts';
import { bootFiles } from '../../image/packers/initramfs.ts';
import { loadSpec, type Output, type ResolvedSpec } from '../../image/spec.ts';
import { boot, type BootOptions, type Machine } from '../../src/harness/index.ts';
import { fsckRoot } from './disk-suite.ts';
import { DEBIAN, ext4Modes, specialModes, unexpected } from './image-modes.ts';
import { repo } from './host.ts';

/** The Debian example spec every Debian test builds (its lock is image/specs/debian.lock.json). */
export const DEBIAN_SPEC = join(repo, 'image', 'specs', 'debian.yaml');
/** Where Debian's own sv goes in the test image: the peer our sv's answers are compared with. */
export const DEBIAN_SV = '/usr/local/lib/debian-runit/sv';
/** What the guest agent needs (virtio-serial) besides the arch's defaults. */
const AGENT_MODULES = ['virtio_mmio', 'virtio_input', 'virtio_pci', 'virtio_console'];
/** The services runit-services and runit-ts-init enable in this image, and the two the tests add. */
export const DEBIAN_SERVICES = ['cron', 'rsyslog', 'default-syslog'];
/** How long an emulated Debian boot may take to reach the agent (ms). */
const AGENT_TIMEOUT_MS = 300_000;
/** Guest memory of the Debian boots (MiB): the initramfs holds the whole system in it. */
const MEMORY = 1024;

/** The Debian spec of the tests: the example, with the agent and Debian's sv added. */
export function debianTestSpec(arch: Arch, outputs: Output[]): ResolvedSpec {
  const spec = loadSpec(DEBIAN_SPEC, { repoServices: join(repo, 'services'), arches: [arch], outputs });
  spec.image.services = [...(spec.image.services ?? []), 'agent'];
  spec.image.modules = AGENT_MODULES;
  spec.image.files = [...(spec.image.files ?? []), { path: DEBIAN_SV.slice(1), source: join(inputDir(`runit-${arch}`), 'usr', 'bin', 'sv'), mode: '0755' }];
  return spec;
}

/** "run: cron: (pid 412) 9s; run: log: ..." lines -> service -> "state pid" (the seconds left out: they tick). */
export function statusKey(output: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of output.trim().split('\n')) {
    const x = /^(\w+): ([^:]+): (?:\(pid (\d+)\) )?/.exec(line);
    if (x) m.set(x[2]!, `${x[1]} ${x[3] ?? '-'}`);
  }
  return m;
}

/** The direct boot ('direct') and the firmware paths and the initramfs ('paths'), from one build. */
export function debianSuite(arch: Arch, parts: ReadonlyArray<'direct' | 'paths'>): void {
  const direct = parts.includes('direct');
  const bin = join(repo, 'out', arch);
  if (!existsSync(join(bin, 'runit-ts'))) {
    t.fail(`out/${arch}/runit-ts is missing: run make build ARCH=${arch}`);
    return;
  }
  const logs = join(repo, 'out', 'test-logs');
  mkdirSync(logs, { recursive: true });
  const work = mkdtempSync(join(tmpdir(), `runit-ts-debian-${arch}-`));
  t.teardown(() => rmSync(work, { recursive: true, force: true }));
  const dir = join(work, arch);
  const figures: string[] = [];

  t.before(async () => {
    const t0 = Date.now();
    // the spec's own outputs (disk and tar: the services' supervise/ are links into /run, for
    // a read-only container root), and the initramfs for the firmware paths' part
    await buildOutputs(debianTestSpec(arch, parts.includes('paths') ? ['disk', 'tar', 'initramfs'] : ['disk', 'tar']), { out: work, binDir: (a) => join(repo, 'out', a), say: () => {} });
    figures.push(`build ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  });
  t.teardown(() => t.comment(`figure: ${arch} Debian image: ${figures.join(', ')}`));

  const start = (log: string, o: Partial<BootOptions> & { path?: string; disk?: string }): Promise<Machine> => {
    const b = o.path ? diskBoot(dir, arch, o.path) : undefined;
    return boot({
      arch,
      ...(b?.kernel !== undefined ? { kernel: b.kernel, initrd: b.initrd!, append: b.append! } : {}),
      ...(b?.firmware !== undefined ? { firmware: b.firmware } : {}),
      ...(b ? { drives: [{ file: o.disk ?? join(dir, 'disk.img'), snapshot: o.disk === undefined }] } : bootFiles(dir, arch)),
      memory: MEMORY,
      agent: true,
      agentTimeout: AGENT_TIMEOUT_MS,
      allowReboot: o.allowReboot ?? false,
      consoleLog: join(logs, `${arch}-debian-${log}.log`),
    });
  };

  /** Every service of /etc/service up (./check passing where there is one), within the time an emulated boot needs. */
  const allUp = async (t: Test, m: Machine, what: string, reconnect = false): Promise<number> => {
    if (reconnect) await m.reconnectAgent({ timeout: AGENT_TIMEOUT_MS });
    else await m.waitForAgent();
    const r = await m.exec(['sv', '-w', '180', 'check', ...DEBIAN_SERVICES.map((s) => `/etc/service/${s}`)], { timeout: 200_000 });
    t.equal(r.code, 0, `${what}: sv check: ${r.stdout.trim().replace(/\n/g, '; ')}`);
    const up = m.elapsed();
    const st = await m.exec(['sh', '-c', 'sv status /etc/service/*']);
    const down = st.stdout.trim().split('\n').filter((l) => !/^run: /.test(l));
    t.same(down, [], `${what}: every service of /etc/service runs`);
    return up;
  };

  if (direct) t.test(`${arch}: the Debian disk's root holds nothing world-writable, setuid or setgid but what is allowed`, async (t) => {
    const entries = await ext4Modes(join(dir, 'root.ext4'), join(work, 'debugfs.cmds'));
    t.ok(entries.length > 1000, `${entries.length} entries read back from root.ext4`);
    t.same(unexpected(entries, DEBIAN), [], 'nothing unexpected (test/lib/image-modes.ts DEBIAN: each allowed entry with its reason)');
    figures.push(`root.ext4: ${entries.length} entries, ${specialModes(entries).length} world-writable/setuid/setgid, each allowed`);
  });

  if (direct) t.test(`${arch} direct: Debian's services run under runit-ts; our sv and Debian's agree; init 6, init 0, a clean root`, async (t) => {
    const disk = join(work, 'persist.img');
    await execa('cp', ['--sparse=always', join(dir, 'disk.img'), disk]);
    const m = await start('direct', { path: 'direct', disk, allowReboot: true });
    t.teardown(() => m.dispose());
    const up = await allUp(t, m, 'direct');
    figures.push(`direct: all up ${up.toFixed(1)} s after QEMU start`);
    // the daemons are Debian's, started by Debian's run scripts through invoke-run
    const ours = await m.exec(['sh', '-c', `cd /etc/service && sv status ${DEBIAN_SERVICES.join(' ')}`]);
    const theirs = await m.exec(['sh', '-c', `cd /etc/service && ${DEBIAN_SV} status ${DEBIAN_SERVICES.join(' ')}`]);
    t.equal(theirs.code, ours.code, `exit codes agree (${ours.code})`);
    t.same([...statusKey(theirs.stdout)], [...statusKey(ours.stdout)], `Debian's sv reads what ours reads:\n${ours.stdout}`);
    const link = await m.exec(['readlink', '/etc/sv/agent/supervise']);
    t.equal(link.stdout.trim(), '/run/runit/supervise/agent', 'a service the image adds keeps its supervise/ where Debian\'s do (and it runs: the agent answers)');
    const comm = await m.exec(['sh', '-c', 'for s in cron rsyslog; do cat /proc/$(cat /etc/sv/$s/supervise/pid)/comm; done']);
    t.same(comm.stdout.trim().split('\n'), ['cron', 'rsyslogd'], "the supervised processes are Debian's cron and rsyslogd");
    const log = await m.exec(['sh', '-c', 'logger -t runit-ts-test hello-from-the-test; sleep 1; grep -c hello-from-the-test /var/log/syslog'], { timeout: 60_000 });
    t.equal(log.stdout.trim(), '1', 'rsyslog writes what logger sends to /var/log/syslog');
    // Debian's own sv controls a service run by runit-ts
    const ctl = await m.exec(['sh', '-c', `${DEBIAN_SV} -w 30 restart cron && sv status cron`], { timeout: 60_000 });
    t.match(ctl.stdout, /^ok: run: cron: /m, "Debian's sv restarts cron");
    let mark = m.mark();
    await m.exec(['sh', '-c', 'init 6 >/dev/null 2>&1 &']);
    await m.waitFor(/reboot: Restarting system/, { from: mark, timeout: 120_000 });
    t.pass('init 6: the kernel restarts the machine');
    mark = m.mark();
    await allUp(t, m, 'after reboot', true);
    await m.exec(['sh', '-c', 'init 0 >/dev/null 2>&1 &']);
    const exit = await m.waitForExit({ timeout: 120_000 });
    t.equal(exit.reason, 'guest-shutdown', 'init 0 powers off');
    t.notOk(exit.panicked, 'no kernel panic');
    const fsck = await fsckRoot(disk);
    t.ok(fsck.clean && fsck.code === 0, `the root file system is clean after init 0 (e2fsck -fn: ${fsck.code}, ${fsck.summary})`);
  });

  if (!parts.includes('paths')) return;
  for (const path of BOOT_PATHS[arch].filter((p) => p !== 'direct')) {
    t.test(`${arch} ${path}: the Debian disk boots through the firmware`, async (t) => {
      const m = await start(path, { path });
      t.teardown(() => m.dispose());
      const up = await allUp(t, m, path);
      figures.push(`${path}: all up ${up.toFixed(1)} s`);
      await m.exec(['sh', '-c', 'init 0 >/dev/null 2>&1 &']);
      const exit = await m.waitForExit({ timeout: 120_000 });
      t.equal(exit.reason, 'guest-shutdown', 'init 0 powers off');
    });
  }

  t.test(`${arch} initramfs: the Debian system boots from memory`, async (t) => {
    const size = statSync(join(dir, 'initramfs.img')).size;
    const m = await start('initramfs', {});
    t.teardown(() => m.dispose());
    const up = await allUp(t, m, 'initramfs');
    figures.push(`initramfs (${(size / 1048576).toFixed(0)} MiB, -m ${MEMORY}): all up ${up.toFixed(1)} s`);
    await m.exec(['sh', '-c', 'init 0 >/dev/null 2>&1 &']);
    const exit = await m.waitForExit({ timeout: 120_000 });
    t.equal(exit.reason, 'guest-shutdown', 'init 0 powers off');
  });
}
