// bench/boot.ts: boot time, shutdown time and the memory (PSS) of the whole init and
// supervision stack of our image, against the same image built
// with Debian's C runit (runit, runsvdir, runsv, sv), same kernel, busybox and services,
// measured in the same run under the same accelerator.
//   node bench/boot.ts [--arch x86_64|aarch64] [--runs N]
import { appendFileSync, copyFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { bootFiles } from '../image/build.ts';
import { cpioBuffer, type Entry } from '../image/cpio.ts';
import { repoRoot, requireInput } from '../image/inputs.ts';
import { requireHostArch, type Arch } from '../src/lib/platform.ts';
import { busyboxEntries, inlineService, libEntries, type ServiceDef } from '../image/rootfs.ts';
import { boot } from '../src/harness/index.ts';

const N = 20;
/** Twenty services, each logging through svlogd: the set the stack memory figure is for. */
const services: ServiceDef[] = Array.from({ length: N }, (_, i) => ({
  name: `b${i}`,
  files: {
    // the marker goes through the kernel log: runit's PID 1 leaves the console non-blocking,
    // so under a slow serial console a plain echo can fail with EAGAIN and be lost
    run: `#!/bin/sh\nread up _ < /proc/uptime; echo "<2>UP b${i} $up" > /dev/kmsg\necho "b${i} started"\nexec sleep 100000\n`,
    'log/run': '#!/bin/sh\nexec svlogd -tt ./main\n',
    'log/main/config': 's100000\nn5\n',
  },
}));
/**
 * PSS of the init and supervision stack in the guest: every process but the services'
 * own (sleep), the console shell and the measuring pipeline. Prints "<kB> <processes>".
 */
const STACK_PSS =
  "for p in /proc/[0-9]*; do c=$(cat $p/comm 2>/dev/null) || continue; case $c in sleep|sh|cat|awk|grep) continue;; esac; " +
  "k=$(awk '/^Pss:/{print $2}' $p/smaps_rollup 2>/dev/null); [ -n \"$k\" ] && echo \"$k $c\"; done | awk '{s+=$1; n++} END {print s, n}'";
const shell: ServiceDef = { name: 'shell', files: { run: '#!/bin/sh\nexec 2>&1\ncd /\nexec cttyhack /bin/sh\n' } };
/** what runit-init 0 does, in plain shell so both images take the same path */
const HALT = 'touch /run/runit.stopit; chmod 100 /run/runit.stopit; kill -CONT 1';

function script(path: string, body: string): Entry {
  return { path, type: 'file', mode: 0o755, data: Buffer.from(`#!/bin/sh\n${body}`) };
}

/** Debian's runit on the same base: busybox, glibc, Debian's runit binaries, shell stages. */
function referenceImage(arch: Arch, dir: string): string {
  const runit = requireInput(`runit-${arch}`);
  const e: Entry[] = [...libEntries(arch), ...busyboxEntries(arch)];
  for (const d of ['proc', 'sys', 'dev', 'run', 'tmp', 'etc/service']) e.push({ path: d, type: 'dir', mode: 0o755 });
  e.push({ path: 'dev/console', type: 'char', mode: 0o600, major: 5, minor: 1 });
  e.push({ path: 'sbin/runit', type: 'file', mode: 0o755, data: readFileSync(join(runit, 'sbin/runit')) });
  for (const b of ['runsvdir', 'runsv', 'sv', 'svlogd', 'chpst']) e.push({ path: `usr/bin/${b}`, type: 'file', mode: 0o755, data: readFileSync(join(runit, 'usr/bin', b)) });
  e.push(
    script('etc/runit/1', 'mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev\nmkdir -p /dev/pts; mount -t devpts devpts /dev/pts; mount -t tmpfs tmpfs /run\nhostname runit-ref\n'),
    script('etc/runit/2', `exec env - PATH=/usr/bin:/bin:/usr/sbin:/sbin runsvdir -P /etc/service 'log: ${'.'.repeat(395)}'\n`),
    script('etc/runit/3', 'exec 2>&1\nsv -w7 force-stop /etc/service/*\nsv exit /etc/service/*\n'),
  );
  e.push(...[...services, shell].flatMap(inlineService));
  const img = join(dir, 'ref-initramfs.img');
  writeFileSync(img, cpioBuffer(e));
  return img;
}

function ourImage(arch: Arch, dir: string): string {
  const img = join(dir, 'our-initramfs.img');
  copyFileSync(join(repoRoot, 'out', arch, 'initramfs.img'), img);
  appendFileSync(img, cpioBuffer(services.flatMap(inlineService)));
  return img;
}

interface Result { up: number; halt: number; size: number; pssKb: number; procs: number }

async function measure(arch: Arch, initrd: string, name: string): Promise<Result> {
  const files = bootFiles(join(repoRoot, 'out', arch), arch);
  const kernel = files.kernel;
  const append = `${files.append} printk.devkmsg=on`;
  const m = await boot({ arch, kernel, initrd, append, memory: 1024, consoleLog: join(repoRoot, 'out', 'test-logs', `bench-${arch}-${name}.log`) });
  try {
    let last = 0;
    for (let i = 0; i < N; i++) last = Math.max(last, (await m.waitFor(`UP b${i} `, { timeout: 120_000 })).elapsed);
    await m.waitFor(/# /, { timeout: 60_000 });
    // steady state: measured 10 s after the shell is up
    await new Promise((r) => setTimeout(r, 10_000));
    const pss = await m.run(STACK_PSS, { timeout: 60_000 });
    const [pssKb, procs] = pss.output.trim().split(/\s+/).map(Number);
    const logged = await m.run('cat /etc/sv/b*/log/main/current | grep -c started', { timeout: 60_000 });
    if (logged.output.trim() !== String(N)) throw new Error(`${name}: expected ${N} logged lines, got ${logged.output}`);
    const t0 = performance.now();
    await m.sendLine(HALT);
    const exit = await m.waitForExit({ timeout: 60_000 });
    if (exit.reason !== 'guest-shutdown') throw new Error(`${name}: ended with ${exit.reason}`);
    return { up: last, halt: (performance.now() - t0) / 1000, size: readFileSync(initrd).length, pssKb: pssKb ?? NaN, procs: procs ?? NaN };
  } finally {
    await m.dispose();
  }
}

const { values } = parseArgs({ options: { arch: { type: 'string' }, runs: { type: 'string' }, help: { type: 'boolean', short: 'h' } } });
if (values.help) {
  process.stdout.write('usage: node bench/boot.ts [--arch x86_64|aarch64] [--runs N]\n');
  process.exit(0);
}
const arch = (values.arch ?? requireHostArch()) as Arch;
const runs = Number(values.runs ?? 3);
const dir = mkdtempSync(join(tmpdir(), 'runit-ts-bench-'));
const imgs = { 'runit-ts': ourImage(arch, dir), 'debian-runit': referenceImage(arch, dir) };
const res: Record<string, Result[]> = { 'runit-ts': [], 'debian-runit': [] };
for (let r = 0; r < runs; r++) {
  for (const [name, img] of Object.entries(imgs)) res[name]!.push(await measure(arch, img, name));
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const row = (name: string) => {
  const rs = res[name]!;
  return {
    up: median(rs.map((x) => x.up)),
    halt: median(rs.map((x) => x.halt)),
    mib: rs[0]!.size / 1048576,
    pss: median(rs.map((x) => x.pssKb)) / 1024,
    procs: rs[0]!.procs,
  };
};
const ours = row('runit-ts');
const ref = row('debian-runit');
console.log(`boot benchmark, ${arch}, ${N} services each logging through svlogd, median of ${runs} runs (QEMU, same kernel and accelerator)`);
console.log(`                      runit-ts   debian-runit   ratio`);
console.log(`QEMU start -> ${N} up   ${ours.up.toFixed(2).padStart(7)} s   ${ref.up.toFixed(2).padStart(9)} s   ${(ours.up / ref.up).toFixed(2)}x`);
console.log(`halt -> QEMU exit     ${ours.halt.toFixed(2).padStart(7)} s   ${ref.halt.toFixed(2).padStart(9)} s   ${(ours.halt / ref.halt).toFixed(2)}x`);
console.log(`stack PSS            ${ours.pss.toFixed(1).padStart(7)} MiB ${ref.pss.toFixed(1).padStart(8)} MiB   ${(ours.pss / ref.pss).toFixed(2)}x   (${ours.procs} vs ${ref.procs} processes: PID 1, supervision, loggers)`);
console.log(`initramfs            ${ours.mib.toFixed(1).padStart(7)} MiB ${ref.mib.toFixed(1).padStart(8)} MiB`);
