// The reliability suite's fault cases at boot level, run by `make reliability` only
// (test/faults/<case>-<arch>.test.ts: each takes minutes under TCG):
//  - OOM: the supervisor (stage 2, our runsvdir), alone in a cgroup v2 group, is killed by
//    the kernel's OOM killer when memory.max is lowered below what it was charged since
//    (its log traffic makes it allocate); PID 1 starts stage 2 again, the new supervisor
//    stops what the old one left running and starts every service once;
//  - power loss: QEMU SIGKILLed at a random moment (a seeded RNG, the seed printed) while
//    services write numbered lines through svlogd (in-process and a process) on the ext4
//    root of the disk output, at least 20 times on the same disk, every other boot with the
//    clock stepped an hour ahead first (the next starts an hour behind the newest file);
//    after each boot every log file holds whole, well-formed lines in order, and sv works.
import t, { type Test } from 'tap';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomInt } from 'node:crypto';
import { execa } from 'execa';
import type { Arch } from '../../image/inputs.ts';
import type { Entry } from '../../src/lib/entry.ts';
import { buildDisk, diskBoot } from '../../image/packers/disk.ts';
import { resolveImage } from '../../image/resolve.ts';
import type { ImageSpec, ServiceDef } from '../../image/rootfs.ts';
import { boot, type Machine } from '../../src/harness/index.ts';
import { haveImage, PROMPT, start, testImage } from './boot.ts';
import { fsckRoot } from './disk-suite.ts';
import { repo } from './host.ts';

/** USER_HZ of both arches' kernels: /proc/PID/stat's start time is in these ticks */
const CLOCK_TICKS_PER_S = 100;
/** the supervisor is limited once the group holds at least this much of its memory (bytes) */
const OOM_MIN_CHARGE = 1 << 20;
/** OOM kill -> every service up again: PID 1's 5 s pause, stage 2's start under TCG, the leftovers' stop (the console shell ignores TERM: KILLed after 5 s) */
const OOM_RECOVERY_LIMIT_S = 40;
/**
 * More kernel command-line words for these many boots: under TCG on a busy host an x86_64
 * kernel can miss its IO-APIC timer check and panic at boot ("IO-APIC + timer doesn't
 * work!", seen with the host's load at 7 on 2 cores); no_timer_check skips the check
 */
const EXTRA_APPEND: Record<Arch, string> = { x86_64: ' no_timer_check', aarch64: '' };
/** power-loss cycles per arch unless RUNIT_TS_FAULT_CYCLES says otherwise */
const DEFAULT_CYCLES = 20;
/** QEMU is killed at a moment drawn uniformly from this window after the writers resume (ms) */
const KILL_WINDOW_MS = 8000;
/** the virtio-serial port a writer records its last sequence number on (a port has one opener at a time): this, a dot, its name */
const PORT_PREFIX = 'org.runit-ts.faults';
/**
 * Every other boot steps the guest's clock this far forward (s) and has each logger rotate,
 * so that the next boot starts with its clock behind the newest file's name, as a board
 * without a real-time clock does (and a TCG guest whose clock ran fast, as seen)
 */
const CLOCK_STEP_S = 3600;
/** every log line ends with this, so that a line cut short or run into another shows */
const PAD = 'abcdefghijklmnopqrstuvwxyz-0123456789-ABCDEFGHIJKLMNOPQRSTUVWXYZ';
/** each writer's log/main/config: rotated at 32 KiB, 12 old files kept (a few boots of lines) */
const LOG_CONFIG = 's32768\nn12\n';

/** A guest shell script as an image entry (mode 0755). */
function script(path: string, text: string): Entry {
  return { path, type: 'file', mode: 0o755, data: Buffer.from(text) };
}

// ----------------------------------------------------------------------------- OOM

/**
 * The guest's process table and what the supervisor recorded, one line each, for the host
 * to count: P|pid|cwd|cmdline|cgroup|stat, and S|service|supervise/pid|log/supervise/pid.
 */
const PROCS_SCRIPT = `#!/bin/sh
for d in /proc/[0-9]*; do
  read -r s < "$d/stat" 2>/dev/null || continue
  read -r g < "$d/cgroup" 2>/dev/null
  c=$(tr '\\000' ' ' < "$d/cmdline" 2>/dev/null)
  w=$(readlink "$d/cwd" 2>/dev/null)
  echo "P|\${d#/proc/}|$w|$c|$g|$s"
done
for s in /etc/service/*; do
  echo "S|\${s##*/}|$(cat "$s/supervise/pid" 2>/dev/null)|$(cat "$s/log/supervise/pid" 2>/dev/null)"
done
`;

/**
 * The supervisor alone in a cgroup v2 group with the memory controller (cgroup2 mounted at
 * /sys/fs/cgroup first: stage 1 does not), then, once the group holds OOM_MIN_CHARGE of
 * it, memory.max lowered to half of that: anonymous memory cannot be reclaimed without
 * swap, so the write OOM-kills the group's one process. Prints what it did.
 */
const OOM_SCRIPT = `#!/bin/sh
cg=/sys/fs/cgroup
g=$cg/supervisor
case "$1" in
setup)
  grep -q " $cg cgroup2 " /proc/mounts || mount -t cgroup2 cgroup2 $cg || exit 1
  echo +memory > $cg/cgroup.subtree_control || exit 1
  mkdir -p $g || exit 1
  sup=$2
  echo "$sup" > $g/cgroup.procs || exit 1
  echo "PROCS $(cat $g/cgroup.procs | tr '\\n' ' ')"
  i=0
  while [ "$(cat $g/memory.current)" -lt ${OOM_MIN_CHARGE} ] && [ $i -lt 240 ]; do usleep 250000; i=$((i+1)); done
  echo "CHARGED $(cat $g/memory.current)"
  ;;
kill)
  c=$(cat $g/memory.current)
  echo $((c / 2)) > $g/memory.max
  echo "MAX $(cat $g/memory.max) $(grep '^oom_kill ' $g/memory.events | tr '\\n' ' ')"
  ;;
after)
  echo "AFTER $(grep '^oom_kill ' $g/memory.events | tr '\\n' ' ')procs:$(cat $g/cgroup.procs | tr '\\n' ' ')"
  # (re-prefixed: a line that looks like the kernel's own is not part of a command's output to the harness)
  dmesg | grep 'Memory cgroup out of memory: Killed process' | sed 's/^\\[ *\\([0-9.]*\\)\\] /OOM-KILL \\1 /'
  ;;
esac
`;

/** A service whose one process is \`exec sleep ARG\` (ARG unique to it), logged or not. */
function sleeper(name: string, arg: number, log?: 'in-process' | 'process'): ServiceDef {
  const files: Record<string, string> = { run: `#!/bin/sh\nexec 2>&1\necho "${name} up"\nexec sleep ${arg}\n` };
  if (log) {
    // "exec svlogd" runs inside the supervisor; anything else (env first) is a process
    files['log/run'] = log === 'in-process' ? '#!/bin/sh\nexec svlogd ./main\n' : '#!/bin/sh\nexec env svlogd ./main\n';
    files['log/main/config'] = LOG_CONFIG;
  }
  return { name, files };
}

/** The OOM case's services: sleepers (plain, in-process logger, svlogd process) and a writer whose log traffic makes the supervisor allocate. */
export function oomServices(): ServiceDef[] {
  return [
    sleeper('oom0', 300000),
    sleeper('oom1', 300001),
    sleeper('oom2', 300002, 'in-process'),
    sleeper('oom3', 300003, 'process'),
    {
      name: 'oomwriter',
      files: {
        run: '#!/bin/sh\nexec 2>&1\ni=0\nwhile :; do i=$((i+1)); echo "oomwriter line $i"; case $i in *0) usleep 20000 ;; esac; done\n',
        'log/run': '#!/bin/sh\nexec svlogd ./main\n',
        'log/main/config': LOG_CONFIG,
      },
    },
  ];
}

interface Proc {
  pid: number;
  cwd: string;
  cmdline: string;
  cgroup: string;
  state: string;
  ppid: number;
  /** seconds after boot */
  start: number;
}

/** PROCS_SCRIPT's output: the processes by pid, and each service's supervise/pid and log/supervise/pid. */
export function parseProcs(out: string): { procs: Map<number, Proc>; services: Map<string, { pid: number; logPid: number | undefined }> } {
  const procs = new Map<number, Proc>();
  const services = new Map<string, { pid: number; logPid: number | undefined }>();
  for (const line of out.split(/\r?\n/)) {
    const f = line.split('|');
    if (f[0] === 'P' && f.length >= 6) {
      const stat = f.slice(5).join('|');
      // after the comm's closing parenthesis: state ppid pgrp session ... (starttime is field 22)
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      procs.set(Number(f[1]), { pid: Number(f[1]), cwd: f[2]!, cmdline: f[3]!.trim(), cgroup: f[4]!, state: rest[0]!, ppid: Number(rest[1]), start: Number(rest[19]) / CLOCK_TICKS_PER_S });
    } else if (f[0] === 'S' && f.length === 4) {
      services.set(f[1]!, { pid: Number(f[2]), logPid: f[3] ? Number(f[3]) : undefined });
    }
  }
  return { procs, services };
}

/** `sv status` lines: service name -> pid, for those that run. */
function runningPids(status: string): Map<string, number> {
  return new Map([...status.matchAll(/^run: \/etc\/service\/([^:]+): \(pid (\d+)\)/gm)].map((m) => [m[1]!, Number(m[2])]));
}

/** The OOM case on a booted image of `arch` (test/faults/oom-<arch>.test.ts). */
export function oomSuite(arch: Arch): void {
  if (!haveImage(arch)) {
    t.fail(`out/${arch}/initramfs.img is missing: run make image ARCH=${arch}`);
    return;
  }
  mkdirSync(join(repo, 'out', 'test-logs'), { recursive: true });

  t.test(`${arch}: the supervisor killed by the kernel's OOM killer: stage 2 restarted, every service once`, async (t) => {
    const img = testImage(arch, oomServices(), 'faults-oom', [script('usr/local/bin/faults-procs', PROCS_SCRIPT), script('usr/local/bin/faults-oom', OOM_SCRIPT)]);
    const m = await start(arch, { ...img, append: img.append + EXTRA_APPEND[arch] }, 'faults-oom');
    t.teardown(() => m.dispose());
    await m.waitFor(PROMPT, { timeout: 180_000 });
    let r = await m.run('sv -w 60 up /etc/service/* >/dev/null; sv status /etc/service/*', { timeout: 180_000 });
    const before = runningPids(r.output);
    const names = [...r.output.matchAll(/^\w+: \/etc\/service\/([^:]+):/gm)].map((x) => x[1]!);
    t.same([...before.keys()].sort(), [...names].sort(), `every service runs before: ${names.join(' ')}`);
    r = await m.run("awk '{print $4}' /proc/$(cat /etc/service/oom0/supervise/pid)/stat", { timeout: 60_000 });
    const sup = Number(r.output.trim());
    t.ok(sup > 1, `the supervisor is pid ${sup}`);

    r = await m.run(`faults-oom setup ${sup}`, { timeout: 180_000 });
    t.equal(r.status, 0, `cgroup2 mounted, the memory controller on, the supervisor moved: ${r.output.trim()}`);
    t.match(r.output, new RegExp(`^PROCS ${sup} $`, 'm'), 'the supervisor is alone in its group');
    const charged = Number(/^CHARGED (\d+)/m.exec(r.output)?.[1]);
    t.ok(charged >= OOM_MIN_CHARGE, `the group holds ${charged} bytes of the supervisor's memory (its log traffic), at least ${OOM_MIN_CHARGE}`);

    const mark = m.mark();
    r = await m.run('faults-oom kill', { timeout: 120_000 });
    t.match(r.output, /^MAX \d+ oom_kill 1 $/m, `memory.max lowered below what it holds: one OOM kill (${r.output.trim()})`);
    await m.waitFor('- runit: warning: child crashed: /etc/runit/2', { from: mark, timeout: 60_000 });
    await m.waitFor('- runit: enter stage: /etc/runit/2', { from: mark, timeout: 60_000 });
    // the console shell is one of the leftovers: stopped, then started again
    const banner = await m.waitFor('built-in shell (ash)', { from: mark, timeout: 120_000 });
    await m.waitFor(PROMPT, { from: banner.end, timeout: 60_000 });
    r = await m.run('sv -w 60 up /etc/service/* >/dev/null; sv status /etc/service/*', { timeout: 180_000 });
    const after = runningPids(r.output);
    t.same([...after.keys()].sort(), [...names].sort(), 'every service runs again');

    r = await m.run('faults-oom after', { timeout: 60_000 });
    const killed = /^OOM-KILL ([\d.]+) Memory cgroup out of memory: Killed process (\d+) \((\S+)\)/m.exec(r.output);
    t.ok(killed, `the kernel's OOM killer killed it (dmesg): ${killed?.[0]}`);
    t.equal(Number(killed?.[2]), sup, 'the process killed is the supervisor');
    t.equal(killed?.[3], 'runsvdir', 'named runsvdir');
    t.match(r.output, /^AFTER oom_kill 1 procs:$/m, 'one OOM kill in all; nothing was started into the limited group (it is empty)');
    const oomAt = Number(killed?.[1]);

    r = await m.run('faults-procs', { timeout: 180_000 });
    const { procs, services } = parseProcs(r.output);
    t.same([...services.keys()].sort(), [...names].sort(), 'a supervise/pid for each service');
    const newSup = procs.get(services.get('oom0')!.pid)?.ppid ?? -1;
    t.not(newSup, sup, `a new supervisor: pid ${newSup}`);
    t.equal(procs.get(newSup)?.cgroup, '0::/', 'the new supervisor runs in the root group, as PID 1 does');
    const alive = [...procs.values()].filter((p) => p.state !== 'Z');
    let lastUp = 0;
    let lastName = '';
    for (const name of names) {
      const s = services.get(name)!;
      const p = procs.get(s.pid);
      if (!p || p.state === 'Z') {
        t.fail(`${name}: supervise/pid ${s.pid} is no live process`);
        continue;
      }
      // the same program in the same directory: a second instance of the service
      const twins = alive.filter((q) => q.cwd === p.cwd && q.cmdline === p.cmdline);
      t.ok(p.ppid === newSup && s.pid !== before.get(name) && twins.length === 1, `${name}: pid ${s.pid} (was ${before.get(name)}), a child of the new supervisor, ${twins.length} process(es) of "${p.cmdline}" in ${p.cwd}`);
      if (s.logPid !== undefined) {
        const lp = procs.get(s.logPid);
        t.ok(s.logPid === newSup || (lp?.ppid === newSup && lp.state !== 'Z'), `${name}/log: pid ${s.logPid}, supervised by the new supervisor`);
      }
      if (p.start > lastUp) [lastUp, lastName] = [p.start, name];
    }
    // beyond runit: the new supervisor serves the events socket the dead one left behind
    r = await m.run('runit-ts events -c 1 -t 30 oom0', { timeout: 90_000 });
    t.match(r.output, /^\{.*"service":"oom0".*\}$/m, `runit-ts events answers from the new supervisor: ${r.output.trim()}`);
    const orphans = alive.filter((p) => p.ppid === 1 && p.cwd.startsWith('/etc/sv/'));
    t.same(orphans.map((p) => `${p.pid} ${p.cmdline}`), [], 'no process of a service left to PID 1');
    const said = m.console.slice(mark);
    t.notMatch(said, /unable to lock|fatal/, 'no supervise/lock held by a dead supervisor, nothing fatal');
    const leftovers = [...said.matchAll(/runsv (\S+): warning: (log\/)?stopping pid \d+ left by a previous supervisor/g)].map((x) => `${x[1]}${x[2] ? '/log' : ''}`);
    const recovery = lastUp - oomAt;
    t.comment(`figure: ${arch}: supervisor OOM-killed (memory.max ${charged >> 1} bytes, in its cgroup): all ${names.length} services up again ${recovery.toFixed(2)} s after the kill (the last: ${lastName}; limit ${OOM_RECOVERY_LIMIT_S} s), ${leftovers.length} leftovers stopped, none running twice`);
    t.ok(recovery > 0 && recovery <= OOM_RECOVERY_LIMIT_S, `all up ${recovery.toFixed(2)} s after the OOM kill (limit ${OOM_RECOVERY_LIMIT_S} s)`);

    await m.sendLine('init 0');
    const exit = await m.waitForExit({ timeout: 120_000 });
    t.equal(exit.reason, 'guest-shutdown', 'init 0 powers off');
  });
}

// ----------------------------------------------------------------------- power loss

/** The device of the virtio-serial port named $1, once it has shown up (10 s at most). */
const PORT_SCRIPT = `#!/bin/sh
i=0
while [ $i -lt 100 ]; do
  for p in /sys/class/virtio-ports/*; do
    [ "$(cat "$p/name" 2>/dev/null)" = "$1" ] && [ -c "/dev/\${p##*/}" ] && { echo "/dev/\${p##*/}"; exit 0; }
  done
  usleep 100000
  i=$((i+1))
done
exit 1
`;

/**
 * faults-check NAME...: once the loggers are idle, every log file of each writer (old ones
 * by their TAI64N names, then current), as the lines were written: FILE lines (size, NUL bytes, the last byte: a file
 * must end with a newline), BAD lines (a line not as written), per writer a LOG line (lines,
 * bad, gaps in a run's numbers, a run met again after another began) and a RUN line for each
 * run of the writer (boot id, pid: first and last number, lines).
 */
const CHECK_SCRIPT = `#!/bin/sh
# the writers are paused: first let the loggers write what is still in the pipes (a rotation
# then renames current and removes the oldest file), until the listing stays the same
prev=
for i in $(seq 40); do
  cur=$(for w in "$@"; do ls -l "/etc/sv/$w/log/main"; done | md5sum)
  [ "$cur" = "$prev" ] && break
  prev=$cur
  usleep 500000
done
for w in "$@"; do
  d=/etc/sv/$w/log/main
  files=$(ls "$d" | grep -E '^(@[0-9a-f]{24}\\.[su]|current)$')
  for f in $files; do
    size=$(wc -c < "$d/$f")
    nul=$(tr -dc '\\000' < "$d/$f" | wc -c)
    last=none
    [ "$size" -gt 0 ] && last=$(tail -c 1 "$d/$f" | od -An -tx1 | tr -d ' ')
    echo "FILE $w $f size=$size nul=$nul last=$last"
  done
  ts=0
  grep -q -- ' -tt ' "/etc/sv/$w/log/run" && ts=1
  [ -n "$files" ] && (cd "$d" && awk -v w="$w" -v pad="${PAD}" -v ts=$ts '
    function bad(why,  s) { nbad++; if (nbad <= 5) { s = $0; gsub(/[^ -~]/, "?", s); print "BAD " w " " FILENAME ":" FNR ": " why ": " substr(s, 1, 200) } }
    {
      lines++
      n = split($0, f, " ")
      o = 0
      if (ts) {
        if (n != 6 || length(f[1]) != 25 || f[1] !~ /^[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]_[0-9][0-9]:[0-9][0-9]:[0-9][0-9][.][0-9]+$/) { bad("stamp"); next }
        o = 1
      } else if (n != 5) { bad("fields"); next }
      if (f[o+1] != w || length(f[o+2]) != 36 || f[o+2] !~ /^[0-9a-f-]+$/ || f[o+3] !~ /^[0-9]+$/ || f[o+4] !~ /^[0-9]+$/ || f[o+5] != pad) { bad("form"); next }
      k = f[o+2] " " f[o+3]
      q = f[o+4] + 0
      if (k != cur) {
        if (k in last) { again++; bad("run met again") }
        else { order[++nk] = k; first[k] = q }
        cur = k
      } else if (q != last[k] + 1) { gaps++; if (gaps <= 5) print "GAP " w " " FILENAME ":" FNR ": " last[k] " then " q }
      last[k] = q
      count[k]++
    }
    END {
      print "LOG " w " lines=" lines+0 " bad=" nbad+0 " gaps=" gaps+0 " again=" again+0
      for (i = 1; i <= nk; i++) { k = order[i]; print "RUN " w " " k " first=" first[k] " last=" last[k] " n=" count[k] }
    }' $files)
done
echo "BOOT $(cat /proc/sys/kernel/random/boot_id)"
`;

/** A writer's opening: its boot id, and the device of its port (or /dev/null without one). */
function writerHead(name: string): string {
  return `#!/bin/sh
exec 2>&1
boot=$(cat /proc/sys/kernel/random/boot_id)
port=$(faults-port ${PORT_PREFIX}.${name}) || port=/dev/null
`;
}

/** A line at a time from the shell, each numbered line then its number on the port; a pause every 10 lines. */
function lineWriter(name: string): string {
  return `${writerHead(name)}exec 3>>"$port"\ni=0\nwhile :; do\n  i=$((i+1))\n  echo "${name} $boot $$ $i ${PAD}"\n  echo "${name} $boot $$ $i" >&3\n  case $i in *0) usleep 100000 ;; esac\ndone\n`;
}

/**
 * 60 numbered lines at a time from awk (its 4 KiB stdio buffer cuts them into writes that end
 * inside a line), the last number on the port after each flush, then a second's pause.
 */
function burstWriter(name: string): string {
  return `${writerHead(name)}exec awk -v name=${name} -v boot="$boot" -v pid=$$ -v port="$port" -v pad=${PAD} 'BEGIN { for (i = 1; ; i++) { print name, boot, pid, i, pad; if (i % 60 == 0) { fflush(); print name, boot, pid, i > port; fflush(port); system("usleep 1000000") } } }'\n`;
}

/** The writers: w1 and w2 logged by the supervisor itself (w2 with -tt stamps), w3 by an svlogd process. */
export const WRITERS: ServiceDef[] = [
  { name: 'w1', files: { run: lineWriter('w1'), 'log/run': '#!/bin/sh\nexec svlogd ./main\n', 'log/main/config': LOG_CONFIG } },
  { name: 'w2', files: { run: burstWriter('w2'), 'log/run': '#!/bin/sh\nexec svlogd -tt ./main\n', 'log/main/config': LOG_CONFIG } },
  { name: 'w3', files: { run: burstWriter('w3'), 'log/run': '#!/bin/sh\nexec env svlogd ./main\n', 'log/main/config': LOG_CONFIG } },
];
const WRITER_NAMES = WRITERS.map((w) => w.name);

/** The power-loss disk: the console shell, the writers, the port and check scripts, the modules of the port. */
export function powerLossSpec(arch: Arch): ImageSpec {
  return {
    arch,
    services: ['shell'],
    modules: ['virtio_pci', 'virtio_console'],
    inline: WRITERS,
    files: [
      { path: '/usr/local/bin/faults-port', mode: '0755', content: PORT_SCRIPT },
      { path: '/usr/local/bin/faults-check', mode: '0755', content: CHECK_SCRIPT },
    ],
  };
}

/** A small seeded PRNG (mulberry32): the same seed gives the same kill moments. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = a;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

/** What faults-check printed. */
export interface CheckResult {
  files: Array<{ writer: string; name: string; size: number; nul: number; last: string }>;
  logs: Map<string, { lines: number; bad: number; gaps: number; again: number }>;
  /** writer -> "bootid pid" -> numbers */
  runs: Map<string, Map<string, { first: number; last: number; n: number }>>;
  problems: string[];
  boot: string;
}

/** faults-check's output, line by line. */
export function parseCheck(out: string): CheckResult {
  const res: CheckResult = { files: [], logs: new Map(), runs: new Map(), problems: [], boot: '' };
  for (const line of out.split(/\r?\n/)) {
    let m: RegExpExecArray | null;
    if ((m = /^FILE (\S+) (\S+) size=(\d+) nul=(\d+) last=(\S+)$/.exec(line))) res.files.push({ writer: m[1]!, name: m[2]!, size: Number(m[3]), nul: Number(m[4]), last: m[5]! });
    else if ((m = /^LOG (\S+) lines=(\d+) bad=(\d+) gaps=(\d+) again=(\d+)$/.exec(line))) res.logs.set(m[1]!, { lines: Number(m[2]), bad: Number(m[3]), gaps: Number(m[4]), again: Number(m[5]) });
    else if ((m = /^RUN (\S+) (\S+ \d+) first=(\d+) last=(\d+) n=(\d+)$/.exec(line))) {
      if (!res.runs.has(m[1]!)) res.runs.set(m[1]!, new Map());
      res.runs.get(m[1]!)!.set(m[2]!, { first: Number(m[3]), last: Number(m[4]), n: Number(m[5]) });
    } else if (/^(BAD|GAP) /.test(line)) res.problems.push(line);
    else if ((m = /^BOOT (\S+)$/.exec(line))) res.boot = m[1]!;
  }
  return res;
}

/** The last number a writer put on its port, per run: "bootid pid" -> number. */
export function parsePort(text: string, writer: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const m of text.matchAll(/^(\S+) (\S+) (\d+) (\d+)$/gm)) if (m[1] === writer) out.set(`${m[2]} ${m[3]}`, Number(m[4]));
  return out;
}

/** The early stage's e2fsck of the root, from a boot's console: did it replay the journal, what did it repair (exit code). */
export function parseEarlyFsck(console: string): { checked: boolean; journal: boolean; exit: number; text: string } {
  const from = console.indexOf('early: checking ');
  const to = console.indexOf('early: mounting ', from);
  const text = from < 0 ? '' : console.slice(from, to < 0 ? undefined : to);
  const rc = /early: e2fsck repaired \S+ \(exit (\d+)\)/.exec(text);
  return { checked: from >= 0, journal: /recovering journal/.test(text), exit: rc ? Number(rc[1]) : 0, text: text.trim() };
}

/** The median of some numbers (0 for none). */
function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.floor(s.length / 2)]! : 0;
}

/** The power-loss case on a disk image of `arch` (test/faults/powerloss-<arch>.test.ts). */
export function powerLossSuite(arch: Arch): void {
  const bin = join(repo, 'out', arch);
  if (!existsSync(join(bin, 'runit-ts'))) {
    t.fail(`out/${arch}/runit-ts is missing: run make build ARCH=${arch}`);
    return;
  }
  const cycles = Number(process.env.RUNIT_TS_FAULT_CYCLES ?? DEFAULT_CYCLES);
  const seed = process.env.RUNIT_TS_FAULT_SEED !== undefined ? Number(process.env.RUNIT_TS_FAULT_SEED) : randomInt(2 ** 31);
  if (!Number.isInteger(cycles) || cycles < 1) throw new Error(`RUNIT_TS_FAULT_CYCLES must be a whole number of cycles, 1 or more, not '${process.env.RUNIT_TS_FAULT_CYCLES}'`);
  if (!Number.isInteger(seed)) throw new Error(`RUNIT_TS_FAULT_SEED must be an integer, not '${process.env.RUNIT_TS_FAULT_SEED}'`);
  mkdirSync(join(repo, 'out', 'test-logs'), { recursive: true });
  const work = mkdtempSync(join(tmpdir(), `runit-ts-faults-${arch}-`));
  t.teardown(() => rmSync(work, { recursive: true, force: true }));
  const dir = join(work, 'image');
  const disk = join(work, 'persist.img');

  t.before(async () => {
    await buildDisk(resolveImage(powerLossSpec(arch), bin), dir);
    await execa('cp', ['--sparse=always', join(dir, 'disk.img'), disk]);
  });

  /** A writer's port in boot n, on the host. */
  const portFile = (n: number, writer: string) => join(work, `port-${n}-${writer}.log`);
  /** One boot (the n-th) of the disk, its writes kept, each writer's port recorded into its portFile. */
  const startDisk = (n: number): Promise<Machine> => {
    const b = diskBoot(dir, arch, 'direct');
    return boot({
      arch,
      kernel: b.kernel!,
      initrd: b.initrd!,
      append: b.append! + EXTRA_APPEND[arch],
      drives: [{ file: disk, snapshot: false }],
      memory: 1024,
      consoleLog: join(repo, 'out', 'test-logs', `${arch}-faults-powerloss-${n}.log`),
      extraArgs: [
        '-device', 'virtio-serial-pci,id=faults0',
        ...WRITER_NAMES.flatMap((w) => [
          '-chardev', `file,id=faults-${w},path=${portFile(n, w)}`,
          '-device', `virtserialport,bus=faults0.0,chardev=faults-${w},name=${PORT_PREFIX}.${w}`,
        ]),
      ],
    });
  };

  t.test(`${arch}: QEMU killed ${cycles} times at random moments while services log through svlogd on the ext4 root`, async (t: Test) => {
    const rng = seededRandom(seed);
    t.comment(`seed ${seed} (RUNIT_TS_FAULT_SEED=${seed} repeats these kill moments)`);
    const t0 = performance.now();
    let replays = 0;
    let repairs = 0;
    /** files found torn (NUL bytes, no final newline), logs with malformed lines, gaps or runs out of order: each once per boot */
    let defects = 0;
    /** boots whose clock was stepped ahead before the kill */
    let steps = 0;
    const lost: Record<string, number[]> = Object.fromEntries(WRITER_NAMES.map((w) => [w, []]));
    const written: Record<string, number[]> = Object.fromEntries(WRITER_NAMES.map((w) => [w, []]));
    let prev: { boot: string; n: number } | undefined;
    /** the boot ids so far, in order */
    const boots: string[] = [];
    // boot n checks what the kill that ended boot n-1 left; the last boot is shut down cleanly
    for (let n = 0; n <= cycles; n++) {
      const m = await startDisk(n);
      try {
        const p = await m.waitFor(PROMPT, { timeout: 300_000 });
        const fsck = parseEarlyFsck(m.console.slice(0, p.index));
        if (fsck.journal) replays++;
        if (fsck.exit) repairs++;
        t.ok(fsck.checked && fsck.exit < 4, `boot ${n}: up; the early stage's e2fsck -p: ${fsck.journal ? 'journal replayed, ' : ''}exit ${fsck.exit}`);
        let r = await m.run('sv -w 60 up /etc/service/* >/dev/null; sv status /etc/service/*', { timeout: 180_000 });
        const status = r.output.trim().split(/\r?\n/);
        const up = status.filter((l) => /^run: \/etc\/service\/(shell: \(pid \d+\) \d+s|w\d: \(pid \d+\) \d+s; run: log: \(pid \d+\) \d+s)$/.test(l));
        t.equal(up.length, WRITER_NAMES.length + 1, `boot ${n}: sv status: every service and logger runs (${status.join(' | ')})`);
        // the writers paused (sv pause: STOP) while their logs are read: every file ends where a write ended
        r = await m.run(`sv pause ${WRITER_NAMES.join(' ')} >/dev/null; faults-check ${WRITER_NAMES.join(' ')}; sv cont ${WRITER_NAMES.join(' ')} >/dev/null`, { timeout: 600_000 });
        const check = parseCheck(r.output);
        const torn = check.files.filter((f) => f.nul > 0 || (f.size > 0 && f.last !== '0a'));
        defects += torn.length;
        t.same(torn.map((f) => `${f.writer}/${f.name} size ${f.size} nul ${f.nul} last byte ${f.last}`), [], `boot ${n}: ${check.files.length} log files, each ends with a newline, no NUL bytes`);
        boots.push(check.boot);
        for (const w of WRITER_NAMES) {
          const l = check.logs.get(w);
          const whole = !!l && l.lines > 0 && l.bad === 0 && l.gaps === 0 && l.again === 0;
          if (!whole) defects++;
          t.ok(whole, `boot ${n}: ${w}: ${l?.lines} lines, all whole and well-formed (bad ${l?.bad}), each run's numbers consecutive (gaps ${l?.gaps}, runs met again ${l?.again})`);
          // the runs in the files' order are the boots' order (the oldest may have been rotated away), this boot's last, from its first line
          const runs = [...(check.runs.get(w) ?? new Map<string, { first: number }>()).entries()];
          const order = runs.map(([k]) => boots.indexOf(k.split(' ')[0]!));
          const inOrder = order.every((b, i) => b >= 0 && (i === 0 || b > order[i - 1]!)) && order.at(-1) === n && runs.at(-1)?.[1].first === 1;
          if (!inOrder) defects++;
          t.ok(inOrder, `boot ${n}: ${w}: the runs of boots ${order.join(', ')} in that order, this boot's from its line 1`);
        }
        if (check.problems.length) t.comment(check.problems.join('\n'));
        // a pid recorded in supervise/ by the boot before is no leftover of this one; a log directory left by a kill is taken as it is
        const said = [...m.console.matchAll(/^.*(left by a previous supervisor|: fatal: |svlogd: (warning|pausing): ).*$/gm)].map((x) => x[0]);
        t.same(said, [], `boot ${n}: no leftover stopped, no supervisor or svlogd complaint on the console`);
        if (prev) {
          // the kill's toll: the last number each writer recorded on the port vs the last in its log
          for (const w of WRITER_NAMES) {
            const file = portFile(prev.n, w);
            const runs = [...parsePort(existsSync(file) ? readFileSync(file, 'utf8') : '', w).entries()].filter(([k]) => k.startsWith(prev!.boot + ' '));
            t.equal(runs.length, 1, `boot ${n - 1}: ${w} ran once and recorded on the port (${runs.map(([k, v]) => `${k}: ${v}`).join(', ')})`);
            for (const [k, wrote] of runs) {
              const inLog = check.runs.get(w)?.get(k);
              // (a writer may have written a few lines past its last record: none lost then)
              lost[w]!.push(Math.max(0, wrote - (inLog?.last ?? 0)));
              written[w]!.push(wrote);
            }
          }
        }
        prev = { boot: check.boot, n };
        if (n === cycles) {
          await m.sendLine('init 0');
          t.equal((await m.waitForExit({ timeout: 120_000 })).reason, 'guest-shutdown', 'the last boot: init 0 powers off');
          break;
        }
        if (n % 2 === 1) {
          r = await m.run(`date -s @$(( $(date +%s) + ${CLOCK_STEP_S} )) >/dev/null && sv alarm ${WRITER_NAMES.map((w) => `${w}/log`).join(' ')} >/dev/null`, { timeout: 60_000 });
          t.equal(r.status, 0, `boot ${n}: the clock stepped ${CLOCK_STEP_S} s ahead, every log rotated: the next boot starts behind the newest file's name`);
          steps++;
        }
        const delay = Math.round(rng() * KILL_WINDOW_MS);
        await new Promise((res) => setTimeout(res, delay));
        await m.kill();
        t.comment(`boot ${n}: QEMU SIGKILLed ${delay} ms after the writers resumed`);
      } finally {
        await m.dispose();
      }
    }
    const fsck = await fsckRoot(disk);
    t.ok(fsck.code === 0 && fsck.clean, `after the last, clean shutdown: e2fsck -fn exit ${fsck.code}, clean ${fsck.clean} (${fsck.summary})`);
    const minutes = (performance.now() - t0) / 60_000;
    const toll = WRITER_NAMES.map((w) => `${w} ${median(lost[w]!)} (max ${Math.max(...lost[w]!)}) of ${median(written[w]!)} written`).join('; ');
    t.comment(`figure: ${arch}: ${cycles} power losses (seed ${seed}) in ${minutes.toFixed(1)} min: every boot came up (${steps} after a boot whose clock was stepped ${CLOCK_STEP_S} s ahead), e2fsck replayed the journal ${replays} times and repaired ${repairs} times; ${defects ? `${defects} torn files or logs out of order (see above)` : 'no torn or malformed line, every run in order'}; sv status right after each boot; lines lost at the end per kill, median (max) of the median written in a boot: ${toll}`);
  });
}
