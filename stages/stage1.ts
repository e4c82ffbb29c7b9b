// /etc/runit/1: one-time system initialisation. Errors are printed with the stage's
// name and do not stop the boot: a console shell is more use than a halted machine.
import { constants as C, existsSync, mkdirSync, openSync, closeSync, readFileSync, realpathSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { errLine, withCause } from '../src/lib/diag.ts';
import { MS_NODEV, MS_NOEXEC, MS_NOSUID, native } from '../src/lib/native.ts';
import { canonicalModuleName, moduleName } from '../src/lib/platform.ts';
import { BOOT_MARKS_FILE, kernelDone, writeBootMarks } from '../src/analyze/timeline.ts';
import { monotonicNow } from '../src/lib/servicemodel.ts';
import { selfExe } from '../src/lib/sys.ts';
import { interpreterOnly, systemMemorySettings } from '../src/lib/trim.ts';
import { dropPrestarted, takePrestartEnv } from '../src/lib/prestart.ts';
import { debianStage1, isDebian } from './debian.ts';
import { mountFstab } from './fstab.ts';
import { main as stage2 } from './stage2.ts';

export const HELP = `usage: /etc/runit/1

runit stage 1: mounts /proc, /sys, /dev (devtmpfs), /dev/pts and /run (tmpfs),
sets the hostname from /etc/hostname, loads the kernel modules listed in
/etc/modules (with their dependencies from modules.dep), carries out
/etc/fstab if there is one (remounts / as it says, mount -a, swapon -a),
brings up lo and seeds the random pool, sets the kernel's memory settings
(fault-around of one page, transparent huge pages on request only), and
records its start and end for runit-ts analyze in /run/runit-ts/boot.json.
On a Debian system (/etc/debian_version) it also makes /run/runit.stopit and
/run/runit.reboot (mode 0), /run/lock and /dev/shm, as Debian's stage 1 does.
Exit 100 makes runit skip stage 2.

Started by runit-ts's PID 1 (RUNIT_TS_HANDOFF=1 in the environment) and with
/etc/runit/2 being this same executable, it then goes on as stage 2 in this
process instead of exiting, which spares a second program start.

With a prestart plan in the image (/etc/runit-ts/prestart), PID 1's child has
already done the work above that services rely on and started the plain services
before it executed this stage; the supervisor adopts them (RUNIT_TS_PRESTART).
`;

/** Put by PID 1 (image/runit.c) in stage 1's environment: it takes a handoff. */
export const HANDOFF_ENV = 'RUNIT_TS_HANDOFF';
const STAGE2 = '/etc/runit/2';

function err(what: string, e: unknown): void {
  errLine(`stage 1: ${withCause(what, e)}`);
}

interface Mount { src: string; target: string; type: string; flags: number; data: string; mode?: number }
export const MOUNTS: Mount[] = [
  { src: 'proc', target: '/proc', type: 'proc', flags: MS_NOSUID | MS_NODEV | MS_NOEXEC, data: '' },
  { src: 'sysfs', target: '/sys', type: 'sysfs', flags: MS_NOSUID | MS_NODEV | MS_NOEXEC, data: '' },
  { src: 'devtmpfs', target: '/dev', type: 'devtmpfs', flags: MS_NOSUID, data: 'mode=0755' },
  { src: 'devpts', target: '/dev/pts', type: 'devpts', flags: MS_NOSUID | MS_NOEXEC, data: 'gid=5,mode=620,ptmxmode=000' },
  { src: 'tmpfs', target: '/run', type: 'tmpfs', flags: MS_NOSUID | MS_NODEV, data: 'mode=0755' },
];

function mountAll(): void {
  const n = native();
  for (const m of MOUNTS) {
    try {
      mkdirSync(m.target, { recursive: true });
      n.mount(m.src, m.target, m.type, m.flags, m.data);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EBUSY') err(`unable to mount ${m.target}`, e);
    }
  }
}

function hostname(): void {
  let name = 'runit-ts';
  try {
    name = readFileSync('/etc/hostname', 'utf8').trim() || name;
  } catch {
    /* default */
  }
  try {
    native().sethostname(name);
  } catch (e) {
    err('unable to set hostname', e);
  }
}

/** modules.dep: "kernel/x/a.ko: kernel/y/b.ko kernel/z/c.ko" -> name -> [path, deps] */
export function parseModulesDep(text: string): Map<string, { path: string; deps: string[] }> {
  const m = new Map<string, { path: string; deps: string[] }>();
  for (const line of text.split('\n')) {
    const i = line.indexOf(':');
    if (i < 0) continue;
    const path = line.slice(0, i).trim();
    const deps = line.slice(i + 1).trim().split(/\s+/).filter(Boolean);
    m.set(moduleName(path), { path, deps });
  }
  return m;
}

export { moduleName };

/** Module files to load for the names listed, dependencies first, each once. */
export function loadOrder(names: string[], dep: Map<string, { path: string; deps: string[] }>): { order: string[]; missing: string[] } {
  const order: string[] = [];
  const missing: string[] = [];
  const byPath = new Map([...dep.values()].map((e) => [e.path, e.deps]));
  // depth first over each module's own line, so that a dependency two levels down
  // comes before the module that needs it whatever order modules.dep lists them in
  const visit = (p: string, seen = new Set<string>()): void => {
    if (order.includes(p) || seen.has(p)) return;
    seen.add(p);
    for (const d of [...(byPath.get(p) ?? [])].reverse()) visit(d, seen);
    order.push(p);
  };
  for (const raw of names) {
    const e = dep.get(canonicalModuleName(raw));
    if (!e) {
      missing.push(raw);
      continue;
    }
    visit(e.path);
  }
  return { order, missing };
}

function modules(): void {
  let list: string[];
  try {
    list = readFileSync('/etc/modules', 'utf8').split('\n').map((l) => l.replace(/#.*/, '').trim()).filter(Boolean);
  } catch {
    return;
  }
  if (!list.length) return;
  const base = join('/lib/modules', process.getBuiltinModule('node:os').release());
  let dep;
  try {
    dep = parseModulesDep(readFileSync(join(base, 'modules.dep'), 'utf8'));
  } catch (e) {
    err(`unable to read ${base}/modules.dep`, e);
    return;
  }
  const { order, missing } = loadOrder(list.map((l) => l.split(/\s+/)[0]!), dep);
  for (const m of missing) errLine(`stage 1: module ${m} not found in ${base}/modules.dep`);
  for (const p of order) {
    let fd = -1;
    try {
      fd = openSync(join(base, p), 'r');
      native().finitModule(fd, '');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') err(`unable to load module ${p}`, e);
    } finally {
      if (fd >= 0) closeSync(fd);
    }
  }
}

/** The random seed stage 1 writes to /dev/urandom when it exists. */
export const SEED_FILE = '/var/lib/runit-ts/random-seed';

function seed(): void {
  const file = SEED_FILE;
  try {
    if (existsSync(file)) writeFileSync('/dev/urandom', readFileSync(file));
  } catch (e) {
    err('unable to seed /dev/urandom', e);
  }
}

/** Is /etc/runit/2 this very executable (so that stage 2 can run in this process)? */
export function stage2IsOurs(stage2 = STAGE2, self = selfExe()): boolean {
  try {
    // the kernel's realpath: one system call each (Node's own walks every component)
    return realpathSync.native(stage2) === realpathSync.native(self);
  } catch {
    return false;
  }
}

/**
 * Go on as stage 2: what PID 1 gives a stage 2 it starts (its own session, stdin the
 * console opened for writing only, as PID 1 has it), then USR1 to PID 1, which takes
 * this process as stage 2 from then on.
 */
function handoff(): Promise<number> | number {
  native().setsid();
  try {
    // open once to know it opens (else fd 0 stays as it is), then reopen as fd 0:
    // open() takes the lowest free descriptor
    const flags = C.O_WRONLY | C.O_NOCTTY | C.O_APPEND;
    const probe = openSync('/dev/console', flags);
    closeSync(0);
    const zero = openSync('/dev/console', flags);
    closeSync(probe);
    if (zero !== 0) closeSync(zero);
  } catch (e) {
    err('unable to reopen /dev/console as stdin', e);
  }
  process.kill(1, 'SIGUSR1');
  return stage2([]);
}

export function main(argv: string[]): Promise<number> | number {
  if (argv[0] === '--help') {
    process.stdout.write(HELP);
    return 0;
  }
  const start = monotonicNow();
  // Stage 1 runs once and briefly, and goes on as the supervisor, which interprets only:
  // from its first line, so that neither the baseline compiler nor the regexp compiler
  // runs during the boot (under emulation compiling costs more than it saves).
  interpreterOnly();
  const offered = process.env[HANDOFF_ENV] === '1';
  delete process.env[HANDOFF_ENV];
  // services PID 1 started while Node started (image/prestart.c): the supervisor adopts them
  takePrestartEnv();
  mountAll();
  if (isDebian()) debianStage1();
  for (const f of systemMemorySettings()) errLine(`stage 1: unable to set ${f}`);
  hostname();
  modules();
  mountFstab();
  try {
    native().ifUp('lo');
  } catch (e) {
    err('unable to bring up lo', e);
  }
  seed();
  const ours = offered && stage2IsOurs();
  // the boot timeline's first marks (runit-ts analyze), on the monotonic clock, in /run
  try {
    writeBootMarks(BOOT_MARKS_FILE, { kernel: kernelDone(), stage1Start: start, stage1End: monotonicNow(), ...(ours ? { stage2Pid: process.pid } : {}) });
  } catch (e) {
    err(`unable to write ${BOOT_MARKS_FILE}`, e);
  }
  if (!ours) dropPrestarted(); // no supervisor of ours to adopt them: stopped, PID 1 reaps them
  return ours ? handoff() : 0;
}
