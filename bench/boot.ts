// bench/boot.ts: boot time, shutdown time and the memory (PSS) of the whole init and
// supervision stack of our image, against the same image built
// with Debian's C runit (runit, runsvdir, runsv, sv), same kernel, busybox and services,
// measured in the same run under the same accelerator.
// Besides the totals it prints where the boot goes, on the guest's own clock (seconds
// since boot): the kernel's timestamps (unpacking the initramfs, freeing it, running
// /init), stage 1 forked, its code started (for ours: the first instruction of our code
// after Node's start) and ended, the supervisor's first spawn, the first and the last of
// the 20 services up. Ours come from stage 1's marks and the supervisor's timeline
// (/run/runit-ts/boot.json, /etc/service/.timeline.json: docs/service-model.md); the
// reference's stage 1 writes the same marks from the shell.
// Our image is built here from a spec with the reference's services (the console shell
// and the twenty; none of the default image's syslogd, klogd, network and crond, no
// modules for stage 1 to load) and booted in each variant asked for (--variants, default
// all the arch has): initramfs (the whole image in the initramfs, as `make image` builds
// it), exedisk (the executable on a read-only erofs disk on virtio-blk, the rest in a small
// initramfs) and, on x86_64, pmem (the same erofs file on virtio-pmem, mounted with DAX);
// see image/packers/exedisk.ts. --append adds kernel command-line words to ours,
// --compress compresses our initramfs variant (both to measure boot levers side by side),
// --bin builds ours from another build's binaries, --compare DIR also boots the same
// images built from DIR's (names marked *), the two sets in turns: the boot right after
// the reference's (which idles 7 s in its stage 3) is slower, so their order is swapped
// every run (docs/performance.md); --compare-append WORDS adds command-line words to that
// second set only (the same binaries without --compare), to measure a kernel option;
// --cpuprof DIR copies out a V8 CPU profile of our supervisor per boot (figures inflated).
//   node bench/boot.ts [--arch x86_64|aarch64] [--runs N] [--variants initramfs,exedisk,pmem]
//                      [--append WORDS] [--compress none|lz4|gzip|zstd|xz] [--cpu MODEL] [--smp N] [--bin DIR] [--compare DIR]
//                      [--compare-append WORDS] [--cpuprof DIR]
// (--cpu: QEMU's -cpu for every image instead of the harness's default; --smp N: N vCPUs for every image, default 1)
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { Entry } from '../src/lib/entry.ts';
import { bootFiles, buildInitramfs, parseCompression, type Compression } from '../image/packers/initramfs.ts';
import { buildExeDisk, EXE_DEVICES, EXE_DIR, exeDiskBoot, type ExeDevice } from '../image/packers/exedisk.ts';
import { cpioBuffer } from '../src/lib/cpio.ts';
import { repoRoot, requireInput } from '../image/inputs.ts';
import { resolveImage } from '../image/resolve.ts';
import { parseArch, requireHostArch, type Arch } from '../src/lib/platform.ts';
import { busyboxEntries, inlineService, libEntries, RUNSVDIR, type ImageSpec, type ServiceDef } from '../image/rootfs.ts';
import { boot } from '../src/harness/index.ts';
import { fmt, ratio, runsOption, summary } from './stats.ts';
import { helloExecutable, machineLine } from './hello.ts';

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
/**
 * Where our supervisor's PSS goes (the process with the largest PSS but PID 1): its smaps
 * summed by kind of mapping, as bench/supervisor.ts sums them on the host. Prints "K <kind> <kB>" lines.
 */
const SUPERVISOR_KINDS =
  "b=0; for p in /proc/[0-9]*; do [ $p = /proc/1 ] && continue; k=$(awk '/^Pss:/{print $2}' $p/smaps_rollup 2>/dev/null); [ -n \"$k\" ] && [ $k -gt $b ] && { b=$k; s=$p; }; done; " +
  "awk '/^[0-9a-f]+-/{n=$6; m=$2; if (n == \"\" || n ~ /^\\[stack/) k=\"anonymous\"; else if (n == \"[heap]\") k=\"heap\"; " +
  "else if (n ~ /runit-ts$/) k=(substr(m,3,1) == \"x\" ? \"code\" : (substr(m,2,1) == \"w\" ? \"data\" : \"rodata\")); else if (n ~ /^\\//) k=\"libraries\"; else k=\"other\"} " +
  "/^Pss:/{t[k]+=$2} END{for (x in t) print \"K\", x, t[x]}' $s/smaps";
/** the kinds SUPERVISOR_KINDS sums, with what each is */
const SUPERVISOR_KIND_NAMES: Array<[string, string]> = [
  ['code', 'executable: code'], ['rodata', 'executable: read-only data'], ['data', 'executable: data'], ['libraries', 'libraries and the addon'],
  ['heap', 'malloc heap ([heap])'], ['anonymous', 'anonymous (V8 heap, stacks)'], ['other', 'other'],
];
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
  for (const d of ['proc', 'sys', 'dev', 'run', 'tmp', `${RUNSVDIR}/default`]) e.push({ path: d, type: 'dir', mode: 0o755 });
  // the services' links are in the default runlevel (inlineService), as in our image
  e.push({ path: `${RUNSVDIR}/current`, type: 'symlink', mode: 0o777, target: 'default' });
  e.push({ path: 'etc/service', type: 'symlink', mode: 0o777, target: `/${RUNSVDIR}/current` });
  e.push({ path: 'dev/console', type: 'char', mode: 0o600, major: 5, minor: 1 });
  e.push({ path: 'sbin/runit', type: 'file', mode: 0o755, data: readFileSync(join(runit, 'sbin/runit')) });
  for (const b of ['runsvdir', 'runsv', 'sv', 'svlogd', 'chpst']) e.push({ path: `usr/bin/${b}`, type: 'file', mode: 0o755, data: readFileSync(join(runit, 'usr/bin', b)) });
  e.push(
    // the same marks as our stage 1: forked (its start time in /proc, ticks of 1/100 s),
    // its code started (as soon as /proc can be read) and ended
    script(
      'etc/runit/1',
      'mount -t proc proc /proc; read s0 _ < /proc/uptime; k=$(awk \'{print $22 / 100}\' /proc/$$/stat)\n' +
        'mount -t sysfs sys /sys; mount -t devtmpfs dev /dev\nmkdir -p /dev/pts; mount -t devpts devpts /dev/pts; mount -t tmpfs tmpfs /run\nhostname runit-ref\n' +
        'read s1 _ < /proc/uptime; echo "{\\"kernel\\":$k,\\"stage1Start\\":$s0,\\"stage1End\\":$s1}" > /run/ref-boot.json\n',
    ),
    script('etc/runit/2', `exec env - PATH=/usr/bin:/bin:/usr/sbin:/sbin runsvdir -P /etc/service 'log: ${'.'.repeat(395)}'\n`),
    script('etc/runit/3', 'exec 2>&1\nsv -w7 force-stop /etc/service/*\nsv exit /etc/service/*\n'),
  );
  e.push(...[...services, shell].flatMap(inlineService));
  const img = join(dir, 'ref-initramfs.img');
  writeFileSync(img, cpioBuffer(e));
  return img;
}

/** How one image is booted: kernel, initramfs (with the 20 services), command line, disks. */
interface Variant {
  name: string;
  kernel: string;
  initrd: string;
  append: string;
  /** ours: read the stage 1 marks and the supervisor's timeline */
  ours: boolean;
  drives?: Array<{ file: string; readOnly: true }>;
  pmem?: string[];
  /** what the image's size line shows: the initramfs, and the disk if any */
  bytes: number;
  /** the guest has the minimal single executable at HELLO (timed beside `sv status`) */
  hello?: boolean;
}

/**
 * Our image for the benchmark: the same services as the reference (the console shell and
 * the twenty), none of the default image's others (syslogd, klogd, network, crond) and no
 * modules to load, built from a spec like any image (image/rootfs.ts). `outputs` gets the
 * initramfs image and, when asked for, the exedisk image in directories of their own.
 */
function benchSpec(arch: Arch): ImageSpec {
  return { arch, services: ['shell'], modules: [], inline: services };
}

async function ourImage(arch: Arch, dir: string, compress: Compression, bin: string, mark: string): Promise<Variant> {
  const out = join(dir, `initramfs${mark ? '-compare' : ''}`);
  await buildInitramfs(resolveImage(benchSpec(arch), bin), out, compress);
  const files = bootFiles(out, arch);
  return { name: `runit-ts${mark}`, kernel: files.kernel, initrd: files.initrd, append: `${files.append}${extraFor(mark)}`, ours: true, bytes: statSync(files.initrd).size };
}

/** The exedisk image (small initramfs; the executable's erofs as a disk), one directory for both ways of attaching it. */
async function buildExeDiskImage(arch: Arch, dir: string, bin: string, mark: string): Promise<string> {
  const out = join(dir, `exedisk${mark ? '-compare' : ''}`);
  const img = resolveImage(benchSpec(arch), bin);
  // the minimal single executable goes on the disk with ours (bench/hello.ts): no cost at boot
  const hello = await helloExecutable(arch);
  img.entries.push({ path: HELLO.slice(1), type: 'file', mode: 0o755, data: () => readFileSync(hello) });
  await buildExeDisk(img, out);
  return out;
}

function exeDiskImage(arch: Arch, out: string, device: ExeDevice, mark: string): Variant {
  const b = exeDiskBoot(out, arch, device);
  return {
    name: `${device === 'blk' ? 'erofs' : 'pmem'}${mark}`, kernel: b.kernel, initrd: b.initrd, append: `${b.append}${extraFor(mark)}`, ours: true, hello: true,
    ...(device === 'blk' ? { drives: [{ file: b.disk, readOnly: true as const }] } : { pmem: [b.disk] }),
    bytes: statSync(b.initrd).size + statSync(b.disk).size,
  };
}

/** where the boot goes, seconds since boot on the guest's clock (NaN: not known) */
interface Breakdown {
  unpackStart: number;
  unpackEnd: number;
  runInit: number;
  stage1Forked: number;
  stage1Start: number;
  stage1End: number;
  /** the supervisor's (runsvdir's) start */
  supervisor: number;
  /** ours: the first and the last service set up (the timeline's "wanted": supervise/ ready, its logger started) */
  firstSetUp: number;
  lastSetUp: number;
  firstSpawn: number;
  firstUp: number;
  allUp: number;
  /** the kernel's random pool ready ("crng init done"): Node's first start waits for it */
  crng: number;
}
interface Result {
  up: number;
  halt: number;
  size: number;
  pssKb: number;
  procs: number;
  at: Breakdown;
  /** one `sv status` of the twenty in the guest (ms, median of the rounds) */
  svMs: number;
  /** one call of the minimal single executable in the guest (ms; NaN: not in this image) */
  helloMs: number;
  /** where `sv status`'s time goes beside it (images with the minimal executable only; else NaN): `sv -V` (Node's start, our loader and sv's dispatch, no work) and `sv status` of one service */
  svVersionMs: number;
  svOneMs: number;
  /** the three above against the minimal single executable, each the median of the ratios of the rounds (pairedRatio); NaN without it */
  perHello: { sv: number; version: number; one: number };
  /** ours: the supervisor's PSS by kind of mapping (kB; SUPERVISOR_KINDS) */
  kinds: Record<string, number>;
  /** where the boot's time went, read at the console's prompt (after all services are up) */
  cost: BootCost;
}
/**
 * The boot's cost by where it was spent, read when the console's prompt comes (all services
 * up): QEMU's CPU time on the host (user: translating and running guest code; system: the
 * host kernel, most of it giving QEMU fresh memory), QEMU's anonymous memory (guest RAM
 * touched, translated code, its heap), and the guest's own CPU time by mode (/proc/stat).
 */
interface BootCost {
  qemuUser: number;
  qemuSys: number;
  qemuAnonMiB: number;
  guestUser: number;
  guestSys: number;
}
/** the guest's CPU time in user and system mode since boot: /proc/stat's first line, in USER_HZ (100) ticks */
const GUEST_CPU = 'head -1 /proc/stat';
const USER_HZ = 100;

/** where the exedisk images carry the minimal single executable: on the erofs disk, read only when run */
const HELLO = `/${EXE_DIR}/hello`;
/** `sv status` in the guest: rounds, each timing a batch of calls per subject (Node's: few; Debian's C sv: many, /proc/uptime counts 10 ms) */
const SV_ROUNDS = 5;
const SV_BATCH_NODE = 3;
const SV_BATCH_C = 30;
const SV_CMD = 'sv status /etc/service/b*';
/** the same start with no work (prints its version and usage, exits 100), and with one service */
const SV_VERSION_CMD = 'sv -V';
const SV_ONE_CMD = 'sv status /etc/service/b0';

/**
 * Times `cmd` in the guest, batch calls per round, SV_ROUNDS rounds interleaved with the
 * other subjects' (after one untimed call each: the pages read in); per subject, ms per call of each round.
 */
async function guestTimes(m: Awaited<ReturnType<typeof boot>>, subjects: Array<{ cmd: string; batch: number }>): Promise<number[][]> {
  const fn = 't() { n=$1; shift; read a _ < /proc/uptime; i=0; while [ $i -lt $n ]; do "$@" > /dev/null 2>&1; i=$((i+1)); done; read b _ < /proc/uptime; echo "T$n $a $b"; }';
  const warm = subjects.map((x) => `${x.cmd} > /dev/null 2>&1`).join('; ');
  const round = subjects.map((x) => `t ${x.batch} ${x.cmd}`).join('; ');
  const r = await m.run(`${fn}; ${warm}; for r in ${Array.from({ length: SV_ROUNDS }, (_, i) => i + 1).join(' ')}; do ${round}; done`, { timeout: 600_000 });
  const lines = [...r.output.matchAll(/T(\d+) (\d+\.\d+) (\d+\.\d+)/g)].map((x) => (Number(x[3]) - Number(x[2])) * 1000 / Number(x[1]));
  if (lines.length !== SV_ROUNDS * subjects.length) throw new Error(`sv timing in the guest: expected ${SV_ROUNDS * subjects.length} lines, got ${r.output}`);
  return subjects.map((_, i) => lines.filter((_, j) => j % subjects.length === i));
}

/**
 * `a` against `b` where both were timed in the same rounds of one boot: the median of the
 * rounds' ratios. A round's calls are seconds apart, the boots minutes: what slows a whole
 * boot or a stretch of it (the host's load, QEMU's translated code) slows both sides of a
 * round alike and drops out of the ratio, as it does not out of the ratio of two medians.
 */
function pairedRatio(a: number[], b: number[]): number {
  return summary(a.map((x, i) => x / b[i]!)).median;
}

const STEPS: Array<[keyof Breakdown, string]> = [
  ['unpackStart', 'kernel: unpacking the initramfs'],
  ['unpackEnd', 'kernel: initramfs freed (unpacked)'],
  ['runInit', 'kernel: runs PID 1'],
  ['stage1Forked', 'stage 1 forked'],
  ['stage1Start', 'stage 1 code starts (ours: Node up)'],
  ['stage1End', 'stage 1 ends'],
  ['supervisor', 'supervisor starts'],
  ['firstSetUp', 'first service supervised (runit: runsv)'],
  ['lastSetUp', 'last service supervised (runit: runsv)'],
  ['firstSpawn', 'first spawn (runit: runsv; ours: prestart)'],
  ['firstUp', 'first service up'],
  ['allUp', `all ${N} services up`],
];

/** dmesg timestamp of the first line matching re (the brackets removed: the console
 * harness drops lines that look like kernel messages from a command's output) */
function kmsgTime(dmesg: string, re: RegExp): number {
  for (const line of dmesg.split('\n')) {
    const m = /^(\d+\.\d+)\s+(.*)$/.exec(line.trim());
    if (m && re.test(m[2]!)) return Number(m[1]);
  }
  return NaN;
}

/** the breakdown from the guest: kernel log, stage 1's marks, the supervisor's timeline */
async function breakdown(m: Awaited<ReturnType<typeof boot>>, name: string, ours: boolean): Promise<Breakdown> {
  const dmesg = (await m.run("dmesg | grep -E 'crng init done|unpack|Freeing initrd|as init process| UP b' | tr -d '[]'", { timeout: 60_000 })).output;
  const ups = [...dmesg.matchAll(/ UP b\d+ (\d+\.\d+)/g)].map((x) => Number(x[1]));
  const marksText = (await m.run(`cat ${ours ? '/run/runit-ts/boot.json' : '/run/ref-boot.json'}`, { timeout: 60_000 })).output;
  let marks = { kernel: NaN, stage1Start: NaN, stage1End: NaN };
  try {
    marks = JSON.parse(marksText.slice(marksText.indexOf('{'), marksText.lastIndexOf('}') + 1));
  } catch {
    process.stderr.write(`[bench] ${name}: no stage 1 marks: ${marksText}\n`);
  }
  let firstSpawn = NaN;
  let supervisor = NaN;
  let setUp: number[] = [];
  if (ours) {
    // the timeline has a line of its own per service: read the marks out of it ("wanted":
    // the service is set up and its state machine asks to start it)
    const tl = (await m.run("grep -oE '\"(spawned|wanted|supervisorStart)\":[0-9.]*' /etc/service/.timeline.json", { timeout: 60_000 })).output;
    const times = (key: string) => [...tl.matchAll(new RegExp(`"${key}":([0-9.]+)`, 'g'))].map((x) => Number(x[1]));
    const spawns = times('spawned');
    if (spawns.length) firstSpawn = Math.min(...spawns);
    supervisor = times('supervisorStart')[0] ?? NaN;
    setUp = times('wanted');
  } else {
    // the start times of runsvdir and of the first runsv (it spawns that one right away);
    // a service is supervised once its runsv runs: the first and the last runsv
    const first = async (comm: string, end: 'head' | 'tail' = 'head') => {
      const st = (await m.run(`for p in /proc/[0-9]*; do [ "$(cat $p/comm)" = ${comm} ] && awk '{print $22}' $p/stat; done 2>/dev/null | sort -n | ${end} -1`, { timeout: 60_000 })).output;
      const t = Number(st.trim());
      return st.trim() && Number.isFinite(t) ? t / 100 : NaN;
    };
    firstSpawn = await first('runsv');
    supervisor = await first('runsvdir');
    setUp = [firstSpawn, await first('runsv', 'tail')];
  }
  return {
    unpackStart: kmsgTime(dmesg, /unpack rootfs image as initramfs|Unpacking initramfs/),
    unpackEnd: kmsgTime(dmesg, /Freeing initrd memory/),
    runInit: kmsgTime(dmesg, /^Run \S+ as init process/),
    stage1Forked: Number(marks.kernel),
    stage1Start: Number(marks.stage1Start),
    stage1End: Number(marks.stage1End),
    supervisor,
    firstSetUp: setUp.length ? Math.min(...setUp) : NaN,
    lastSetUp: setUp.length ? Math.max(...setUp) : NaN,
    firstSpawn,
    firstUp: ups.length ? Math.min(...ups) : NaN,
    allUp: ups.length === N ? Math.max(...ups) : NaN,
    crng: kmsgTime(dmesg, /crng init done/),
  };
}

/** where our supervisor's CPU profile is written in the guest (--cpuprof; scripts/sea-loader.cjs) */
const GUEST_PROFILE = '/run/runit-ts.cpuprofile';
const profiles: Record<string, number> = {};
/** --cpuprof: copy the boot's profile out of the guest (gzip, base64 over the console) */
async function fetchProfile(m: Awaited<ReturnType<typeof boot>>, name: string): Promise<void> {
  const r = await m.run(`while [ ! -s ${GUEST_PROFILE} ]; do sleep 1; done; gzip -c ${GUEST_PROFILE} | base64`, { timeout: 300_000 });
  const n = (profiles[name] = (profiles[name] ?? 0) + 1);
  const file = join(cpuprofDir!, `boot-${arch}-${name.replace('*', '-compare')}-${n}.cpuprofile`);
  writeFileSync(file, gunzipSync(Buffer.from(r.output.replace(/\s+/g, ''), 'base64')));
  process.stderr.write(`[bench] ${file}\n`);
}

async function measure(arch: Arch, v: Variant): Promise<Result> {
  const { name } = v;
  const append = `${v.append} printk.devkmsg=on printk.time=1`;
  const m = await boot({
    arch, kernel: v.kernel, initrd: v.initrd, append, memory: 1024, consoleLog: join(repoRoot, 'out', 'test-logs', `bench-${arch}-${name}.log`),
    ...(v.drives ? { drives: v.drives } : {}), ...(v.pmem ? { pmem: v.pmem } : {}), ...(values.cpu ? { cpu: values.cpu } : {}), ...(smp ? { smp } : {}),
  });
  try {
    let last = 0;
    for (let i = 0; i < N; i++) last = Math.max(last, (await m.waitFor(`UP b${i} `, { timeout: 120_000 })).elapsed);
    await m.waitFor(/# /, { timeout: 60_000 });
    const host = m.hostUsage();
    const [guestUser, , guestSys] = ((await m.run(GUEST_CPU, { timeout: 60_000 })).output.match(/^cpu\s+(\d+) (\d+) (\d+)/m) ?? []).slice(1).map((t) => Number(t) / USER_HZ);
    const cost: BootCost = { qemuUser: (host?.userMs ?? NaN) / 1000, qemuSys: (host?.systemMs ?? NaN) / 1000, qemuAnonMiB: (host?.anonKiB ?? NaN) / 1024, guestUser: guestUser ?? NaN, guestSys: guestSys ?? NaN };
    // steady state: measured 10 s after the shell is up
    await new Promise((r) => setTimeout(r, 10_000));
    const at = await breakdown(m, name, v.ours);
    if (v.ours && cpuprofDir) await fetchProfile(m, name);
    const pss = await m.run(STACK_PSS, { timeout: 60_000 });
    const [pssKb, procs] = pss.output.trim().split(/\s+/).map(Number);
    const kinds: Record<string, number> = {};
    if (v.ours) for (const x of (await m.run(SUPERVISOR_KINDS, { timeout: 60_000 })).output.matchAll(/^K (\w+) (\d+)/gm)) kinds[x[1]!] = Number(x[2]);
    const logged = await m.run('cat /etc/sv/b*/log/main/current | grep -c started', { timeout: 60_000 });
    if (logged.output.trim() !== String(N)) throw new Error(`${name}: expected ${N} logged lines, got ${logged.output}`);
    const st = await m.run(SV_CMD, { timeout: 60_000 });
    if ((st.output.match(/^run: /gm) ?? []).length < N) throw new Error(`${name}: ${SV_CMD} did not answer run for the ${N}: ${st.output}`);
    const subjects = [{ cmd: SV_CMD, batch: v.ours ? SV_BATCH_NODE : SV_BATCH_C }, ...(v.hello ? [HELLO, SV_VERSION_CMD, SV_ONE_CMD].map((cmd) => ({ cmd, batch: SV_BATCH_NODE })) : [])];
    const [svRounds = [], helloRounds = [], versionRounds = [], oneRounds = []] = await guestTimes(m, subjects);
    const med = (xs: number[]) => summary(xs).median;
    const perHello = v.hello ? { sv: pairedRatio(svRounds, helloRounds), version: pairedRatio(versionRounds, helloRounds), one: pairedRatio(oneRounds, helloRounds) } : { sv: NaN, version: NaN, one: NaN };
    const [svMs, helloMs, svVersionMs, svOneMs] = [svRounds, helloRounds, versionRounds, oneRounds].map(med);
    const t0 = performance.now();
    await m.sendLine(HALT);
    const exit = await m.waitForExit({ timeout: 60_000 });
    if (exit.reason !== 'guest-shutdown') throw new Error(`${name}: ended with ${exit.reason}`);
    return { up: last, halt: (performance.now() - t0) / 1000, size: v.bytes, pssKb: pssKb ?? NaN, procs: procs ?? NaN, at, svMs: svMs ?? NaN, helloMs: helloMs ?? NaN, svVersionMs: svVersionMs ?? NaN, svOneMs: svOneMs ?? NaN, perHello, kinds, cost };
  } finally {
    await m.dispose();
  }
}

const { values } = parseArgs({
  options: {
    arch: { type: 'string' }, runs: { type: 'string' }, variants: { type: 'string' }, append: { type: 'string' }, compress: { type: 'string' }, cpu: { type: 'string' }, smp: { type: 'string' }, bin: { type: 'string' }, compare: { type: 'string' },
    'compare-append': { type: 'string' }, cpuprof: { type: 'string' }, help: { type: 'boolean', short: 'h' },
  },
});
if (values.help) {
  process.stdout.write('usage: node bench/boot.ts [--arch x86_64|aarch64] [--runs N] [--variants initramfs,exedisk,pmem]\n' +
    '                          [--append WORDS] [--compress none|lz4|gzip|zstd|xz] [--cpu MODEL] [--smp N] [--bin DIR] [--compare DIR]\n' +
    '                          [--compare-append WORDS] [--cpuprof DIR]\n' +
    'Boots Debian\'s runit image and ours (each variant) in turn, one QEMU at a time; prints medians (min-max).\n' +
    '--compare DIR: the same images also from DIR\'s binaries (marked *), the two sets in swapped order every run.\n' +
    '--compare-append WORDS: kernel command-line words for the second set only (without --compare: the same binaries).\n' +
    '--smp N: N vCPUs for every image (default 1, the harness\'s).\n' +
    '--cpuprof DIR: V8 CPU profiles of our supervisor\'s first 10 s, one per boot, into DIR (the profiler slows the boot).\n' +
    'Our images are built from the binaries in --bin DIR (default out/ARCH: runit-ts, runit-ts.node, runit,\n' +
    'early) with the reference\'s services: initramfs (all in the initramfs), exedisk and pmem (x86_64): the\n' +
    'executable on a read-only erofs disk. The kernel and its command line are out/ARCH\'s (make image).\n');
  process.exit(0);
}
const arch = values.arch ? parseArch(values.arch) : requireHostArch();
const runs = runsOption(values.runs);
const available = ['initramfs', 'exedisk', ...(EXE_DEVICES[arch].includes('pmem') ? ['pmem'] : [])];
const wanted = (values.variants ?? available.join(',')).split(',').filter(Boolean);
for (const w of wanted) {
  if (!available.includes(w)) {
    process.stderr.write(`--variants: unknown or unavailable variant ${w} on ${arch} (${available.join(', ')})\n`);
    process.exit(2);
  }
}
/** --smp N: vCPUs for every image (the harness's default: 1) */
const smp = values.smp === undefined ? undefined : Number(values.smp);
if (smp !== undefined && !(Number.isInteger(smp) && smp >= 1 && smp <= 8)) {
  process.stderr.write(`--smp: expected a number of vCPUs from 1 to 8, got ${values.smp}\n`);
  process.exit(2);
}
let compress: Compression = 'none';
try {
  compress = parseCompression(values.compress ?? 'none');
} catch (e) {
  process.stderr.write(`--compress: ${(e as Error).message}\n`);
  process.exit(2);
}
/** --cpuprof: our images' stage 1 writes a CPU profile, fetched after each boot */
const cpuprofDir = values.cpuprof;
if (cpuprofDir) mkdirSync(cpuprofDir, { recursive: true });
const extra = `${values.append ? ` ${values.append.trim()}` : ''}${cpuprofDir ? ` RUNIT_TS_CPUPROF=${GUEST_PROFILE}` : ''}`;
/** the command-line words added to one set of ours: --compare-append's for the second ('*') */
const extraFor = (mark: string): string => (mark && values['compare-append'] ? `${extra} ${values['compare-append'].trim()}` : extra);
/** the binaries our images are built from (--bin: another build's, to compare builds) */
const binDir = values.bin ?? join(repoRoot, 'out', arch);
/** the second set's binaries: --compare's, or the same ones when only the command line differs */
const compareDir = values.compare ?? (values['compare-append'] ? binDir : undefined);
const binDirs = [binDir, ...(compareDir && compareDir !== binDir ? [compareDir] : [])];
const needs = [
  ...binDirs.flatMap((d) => [join(d, 'runit-ts'), join(d, 'runit-ts.node'), join(d, 'runit'), ...(wanted.some((w) => w !== 'initramfs') ? [join(d, 'early')] : [])]),
  join(repoRoot, 'out', arch, 'vmlinuz'),
];
const missing = needs.filter((f) => !existsSync(f));
if (missing.length) {
  process.stderr.write(`missing ${missing.join(', ')}: run make image ARCH=${arch} (and make out/${arch}/early) first; the benchmark builds its images from them\n`);
  process.exit(2);
}
const dir = mkdtempSync(join(tmpdir(), 'runit-ts-bench-'));
const files = bootFiles(join(repoRoot, 'out', arch), arch);
/** our images from one build's binaries; mark: '' for --bin's, '*' for --compare's */
async function ourVariants(bin: string, mark: string): Promise<Variant[]> {
  const set: Variant[] = [];
  if (wanted.includes('initramfs')) set.push(await ourImage(arch, dir, compress, bin, mark));
  if (wanted.some((w) => w !== 'initramfs')) {
    const exeDir = await buildExeDiskImage(arch, dir, bin, mark);
    if (wanted.includes('exedisk')) set.push(exeDiskImage(arch, exeDir, 'blk', mark));
    if (wanted.includes('pmem')) set.push(exeDiskImage(arch, exeDir, 'pmem', mark));
  }
  return set;
}
const mine = await ourVariants(binDir, '');
const theirs = compareDir ? await ourVariants(compareDir, '*') : [];
const variants: Variant[] = [...mine, ...theirs];
const refImg = referenceImage(arch, dir);
variants.push({ name: 'debian-runit', kernel: files.kernel, initrd: refImg, append: files.append, ours: false, bytes: statSync(refImg).size });
const REF = 'debian-runit';
const res: Record<string, Result[]> = Object.fromEntries(variants.map((v) => [v.name, []]));
try {
  for (let r = 0; r < runs; r++) {
    // the reference last; with --compare, the two sets of ours swap places every run
    const order = r % 2 ? [...theirs, ...mine, ...variants.slice(mine.length + theirs.length)] : variants;
    for (const v of order) {
      process.stderr.write(`[bench] boot ${arch} run ${r + 1}/${runs}: ${v.name}\n`);
      res[v.name]!.push(await measure(arch, v));
    }
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
const names = variants.map((v) => v.name);
const ourNames = names.filter((n) => n !== REF);
const S = (name: string, f: (x: Result) => number) => summary(res[name]!.map(f));
const W = 20;
const line = (label: string, f: (x: Result) => number, unit: string, digits = 2, note = '') => {
  const cols = names.map((n) => fmt(S(n, f), digits).padStart(W)).join(' ');
  const ratios = ourNames.map((n) => ratio(S(n, f).median, S(REF, f).median).padStart(14)).join('');
  console.log(`${label.padEnd(26)} ${cols} ${unit.padEnd(4)}${ratios}${note}`);
};
const header = `${''.padEnd(26)} ${names.map((n) => n.padStart(W)).join(' ')}     ${ourNames.map((n) => `${n}/ref`.padStart(14)).join('')}`;
console.log(`boot benchmark, ${arch}${values.cpu ? ` (-cpu ${values.cpu})` : ''}${smp ? ` (-smp ${smp})` : ''}, ${N} services each logging through svlogd, median of ${runs} runs (min-max) (QEMU, same kernel and accelerator)`);
console.log(`runit-ts: the executable in the initramfs${compress !== 'none' ? ` (${compress})` : ''}; erofs: on a read-only erofs disk (virtio-blk); pmem: the same on virtio-pmem with DAX${extra ? `; ours booted with${extra}` : ''}`);
console.log(`ours built from ${binDir}${compareDir ? `; marked *: from ${compareDir}${values['compare-append'] ? `, command line + ${values['compare-append'].trim()}` : ''} (the two sets in swapped order every run)` : ''}`);
console.log(await machineLine());
console.log(header);
line(`QEMU start -> ${N} up`, (x) => x.up, 's', 2, '   target: <= 1.15x in two runs an hour apart (aim <= 1.0x)');
// on the host clock as `up` is: the guest's step from all up to the last service supervised added
line(`QEMU start -> ${N} supervised`, (x) => x.up + (x.at.lastSetUp - x.at.allUp), 's', 2, '   (the last service set up by our supervisor; runit: its runsv started)');
line('halt -> QEMU exit', (x) => x.halt, 's');
const procs = names.map((n) => res[n]![0]!.procs).join(' vs ');
line('stack PSS', (x) => x.pssKb / 1024, 'MiB', 1, `   target: <= 12 MiB (${procs} processes: PID 1, supervision, loggers)`);
line(`${SV_CMD.split(' /')[0]} (${N}), guest`, (x) => x.svMs, 'ms', 1, '   ratio to Debian\'s C sv: context');
const helloNames = variants.filter((v) => v.hello).map((v) => v.name);
if (helloNames.length) {
  console.log(`${'minimal SEA, guest'.padEnd(26)} ${names.map((n) => (helloNames.includes(n) ? fmt(S(n, (x) => x.helloMs), 1) : '-').padStart(W)).join(' ')} ms`);
  // the target: each boot's ratio of its rounds (pairedRatio), median of the boots (min-max);
  // beside it the ratio of the two medians over the boots, which the boots' own spread moves
  const paired = (n: string, get: (x: Result) => number) => {
    const s = S(n, get);
    return `${s.median.toFixed(2)}x (${s.min.toFixed(2)}-${s.max.toFixed(2)})`;
  };
  console.log(`${'sv status / minimal SEA'.padEnd(26)} ${names.map((n) => (helloNames.includes(n) ? paired(n, (x) => x.perHello.sv) : '-').padStart(W)).join(' ')}        target: <= 1.0x (the same boot's minimal single executable, ${HELLO}; each boot's rounds paired)`);
  console.log(`${'  ratio of the medians'.padEnd(26)} ${names.map((n) => (helloNames.includes(n) ? ratio(S(n, (x) => x.svMs).median, S(n, (x) => x.helloMs).median) : '-').padStart(W)).join(' ')}        (the medians of the boots, not paired)`);
  // where it goes: the start with no work, then one service, then twenty
  for (const [label, get, per] of [['sv -V (no work), guest', (x: Result) => x.svVersionMs, (x: Result) => x.perHello.version], ['sv status (1), guest', (x: Result) => x.svOneMs, (x: Result) => x.perHello.one]] as const)
    console.log(`${label.padEnd(26)} ${names.map((n) => (helloNames.includes(n) ? `${fmt(S(n, get), 1)} ${S(n, per).median.toFixed(2)}x` : '-').padStart(W)).join(' ')} ms; paired ratio to the minimal SEA`);
}
if (names.includes('pmem')) console.log(`${''.padEnd(26)} (pmem: the executable's DAX-mapped pages are in no process's PSS; they are the host's memory, not the guest's)`);
console.log(`where our supervisor's PSS goes (MiB, median): ${SUPERVISOR_KIND_NAMES.map(([k, label]) => `${label} ${ourNames.map((n) => (S(n, (x) => x.kinds[k] ?? 0).median / 1024).toFixed(1)).join('/')}`).join(', ')} (${ourNames.join('/')})`);
// why a boot took what it took, on this machine: the host's side and the guest's
line('QEMU CPU to prompt: user', (x) => x.cost.qemuUser, 's', 2, '   (host: translating and running guest code)');
line('QEMU CPU to prompt: sys', (x) => x.cost.qemuSys, 's', 2, '   (host kernel: mostly fresh memory for QEMU, see the machine line)');
line('QEMU anonymous memory', (x) => x.cost.qemuAnonMiB, 'MiB', 0, '   (guest RAM touched, translated code, QEMU\'s heap)');
line('guest CPU to prompt: user', (x) => x.cost.guestUser, 's', 2);
line('guest CPU to prompt: sys', (x) => x.cost.guestSys, 's', 2, '   (the kernel\'s boot included)');
console.log(`${'image (initramfs + disk)'.padEnd(26)} ${names.map((n) => (res[n]![0]!.size / 1048576).toFixed(1).padStart(W)).join(' ')} MiB`);
console.log('');
console.log(`where the boot goes, ${arch}: seconds since boot on the guest's clock, median of ${runs} (min-max); +: time since the row above (medians)`);
console.log(`${''.padEnd(36)} ${names.map((n) => `${n.padStart(17)}      +`).join(' ')}`);
const prev: Record<string, number> = Object.fromEntries(names.map((n) => [n, 0]));
for (const [k, label] of STEPS) {
  const cells = names.map((n) => {
    const s = S(n, (x) => x.at[k]);
    const step = Number.isFinite(s.median) ? (s.median - prev[n]!).toFixed(2) : '-';
    if (Number.isFinite(s.median)) prev[n] = s.median;
    return `${fmt(s).padStart(17)} ${step.padStart(6)}`;
  });
  console.log(`${label.padEnd(36)} ${cells.join(' ')}`);
}
// not a step: when the kernel's random pool got ready (a Node start blocks until then)
console.log(`${'kernel: CRNG ready (crng init done)'.padEnd(36)} ${names.map((n) => `${fmt(S(n, (x) => x.at.crng)).padStart(17)} ${''.padStart(6)}`).join(' ')}`);
