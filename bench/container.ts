// bench/container.ts: a container's start and stop under podman, runit-ts's container-init
// against Debian's runit 2.1.2 (its runsvdir as PID 1, its runsv for each service) on the
// same image, measured in the same run, with podman's --init (catatonit, the role tini
// plays: PID 1 running one process) as the floor.
//   start: `podman run -d` -> all N services ran (each `./run` touches a file in a
//          directory bind-mounted from the host, polled every POLL_MS)
//   stop:  `podman stop` -> it returned (the container exited, code checked)
//   exit:  without podman, PID 1 of a fresh pid namespace on the host (`unshare --pid`,
//          as runc makes it) with the same N services: SIGTERM -> its parent sees it
//          gone, the kernel having killed what was left; beside it a bare Node that
//          exits on SIGTERM, the floor of any Node PID 1. podman 4's stop returns once
//          the `podman container cleanup` that conmon starts at PID 1's exit is done,
//          so this time counts in full in the stop.
// One image for all three (runit-ts-image from a generated spec: N inline services, and
// Debian's runit binaries under /opt/runit-c), started with a different entry point each.
// Runs interleave the three; printed: medians with their spread (min-max), the ratios to
// Debian's runit, the machine, and our executable's start time (`sv -V` on the host).
//   node bench/container.ts [--services N (10)] [--runs N (5)]
import { cpus, release, tmpdir } from 'node:os';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { execa } from 'execa';
import { repoRoot } from '../image/inputs.ts';
import { cacheDir, requireHostArch } from '../src/lib/platform.ts';
import { fmt, ratio, runsOption, summary } from './stats.ts';

const { values } = parseArgs({ options: { services: { type: 'string' }, runs: { type: 'string' }, help: { type: 'boolean', short: 'h' } } });
if (values.help) {
  process.stdout.write('usage: node bench/container.ts [--services N (10)] [--runs N (5)]\n');
  process.exit(0);
}
const N = runsOption(values.services, 10);
const RUNS = runsOption(values.runs);
/** How often the ready directory is looked at (ms). */
const POLL_MS = 2;
/** Give up on a start after this long (ms). */
const START_TIMEOUT_MS = 60_000;
/** podman stop's timeout (s): well above every side's stop. */
const STOP_TIMEOUT_S = 10;
/** Runs of `sv -V` for our executable's start time. */
const SELF_START_RUNS = 10;

const arch = requireHostArch();
const IMAGE = 'localhost/runit-ts-bench:container';
const DEBIAN = join(cacheDir(), `runit-${arch}`, 'usr', 'bin');
const work = mkdtempSync(join(tmpdir(), 'bench-container-'));
const podman = (args: string[], reject = true) => execa('podman', args, { reject, timeout: 120_000 });

type Kind = 'runit-ts' | 'runit (C)' | 'catatonit, 1 process';
/** How each side is started: its entry point and command, and how many ready files it makes. */
const SIDES: Record<Kind, { flags: string[]; cmd: string[]; ready: number }> = {
  'runit-ts': { flags: [], cmd: [], ready: N },
  'runit (C)': { flags: ['--entrypoint', '/opt/runit-c/runsvdir', '-e', 'PATH=/opt/runit-c:/usr/sbin:/usr/bin:/sbin:/bin'], cmd: ['-P', '/etc/service'], ready: N },
  'catatonit, 1 process': { flags: ['--init', '--entrypoint', '/bin/sh'], cmd: ['-c', 'touch /ready/one; exec sleep 100000'], ready: 1 },
};

/** The spec of the bench image: N services that each mark themselves ready, and Debian's runit. */
function specText(): string {
  const svc = (i: number) => `  - name: s${i}\n    files:\n      run: |\n        #!/bin/sh\n        touch /ready/s${i}\n        exec sleep 100000\n`;
  const bins = ['runsvdir', 'runsv', 'sv'].map((b) => `  - { path: /opt/runit-c/${b}, source: ${join(DEBIAN, b)}, mode: "0755" }\n`).join('');
  return `name: runit-ts-bench\ntag: container\narches: [${arch}]\noutputs: [docker]\ncompression: none\nfiles:\n${bins}inline:\n${Array.from({ length: N }, (_, i) => svc(i)).join('')}`;
}

/** Until `n` ready files are in `dir` (polled every POLL_MS), START_TIMEOUT_MS after `t0` at most. */
async function waitReady(dir: string, n: number, t0: number, what: string): Promise<void> {
  for (;;) {
    if (readdirSync(dir).length >= n) return;
    if (performance.now() - t0 > START_TIMEOUT_MS) throw new Error(`${what}: ${readdirSync(dir).length} of ${n} ready after ${START_TIMEOUT_MS} ms`);
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

/** One start and stop of a side: (ms to all ready, ms podman stop took). */
async function once(kind: Kind, run: number): Promise<{ start: number; stop: number }> {
  const side = SIDES[kind];
  const name = `bench-container-${run}-${kind.replace(/[^a-z]/g, '')}`;
  const ready = join(work, name);
  mkdirSync(ready);
  await podman(['rm', '-f', '-t', '0', name], false);
  const t0 = performance.now();
  await podman(['run', '-d', '--name', name, '--network', 'none', '-v', `${ready}:/ready`, ...side.flags, IMAGE, ...side.cmd]);
  await waitReady(ready, side.ready, t0, kind);
  const start = performance.now() - t0;
  // every side settled (runsv's 1 s crash throttle, supervise/ written) before it is stopped
  await new Promise((r) => setTimeout(r, 1000));
  const s0 = performance.now();
  await podman(['stop', '-t', String(STOP_TIMEOUT_S), name]);
  const stop = performance.now() - s0;
  const code = (await podman(['inspect', name, '--format', '{{.State.ExitCode}}'])).stdout.trim();
  await podman(['rm', '-f', '-t', '0', name], false);
  rmSync(ready, { recursive: true, force: true });
  if (kind === 'runit-ts' && code !== '0') throw new Error(`${kind}: exit code ${code} after podman stop`);
  return { start, stop };
}

type ExitKind = 'runit-ts' | 'runit (C)' | 'Node, exits on SIGTERM';
/** How PID 1 of the namespace is started: its command, given the services directory, the ready directory and the state directory. */
const EXIT_SIDES: Record<ExitKind, (sv: string, ready: string, state: string) => { cmd: string[]; env: Record<string, string>; ready: number }> = {
  // a link named container-init: the executable picks its applet by the name it was started as
  'runit-ts': (sv, _ready, state) => ({ cmd: [join(work, 'container-init')], env: { RUNIT_TS_SERVICES: sv, RUNIT_TS_STATE: state }, ready: N }),
  'runit (C)': (sv) => ({ cmd: [join(DEBIAN, 'runsvdir'), '-P', sv], env: { PATH: `${DEBIAN}:${process.env.PATH}` }, ready: N }),
  // the handler is in place before the ready file is written
  'Node, exits on SIGTERM': (_sv, ready) => ({
    cmd: [process.execPath, '-e', `process.on('SIGTERM', () => process.reallyExit(0)); require('fs').writeFileSync(${JSON.stringify(join(ready, 'one'))}, ''); setInterval(() => {}, 1e9);`],
    env: {},
    ready: 1,
  }),
};

/** One stop of PID 1 in a fresh pid namespace: ms from SIGTERM to its parent (unshare) seeing it gone. */
async function exitOnce(kind: ExitKind, run: number): Promise<number> {
  const dir = join(work, `exit-${run}-${kind.replace(/[^a-z]/g, '')}`);
  const [sv, ready, state] = ['sv', 'ready', 'state'].map((d) => join(dir, d)) as [string, string, string];
  for (const d of [sv, ready, state]) mkdirSync(d, { recursive: true });
  for (let i = 0; i < N; i++) {
    mkdirSync(join(sv, `s${i}`));
    writeFileSync(join(sv, `s${i}`, 'run'), `#!/bin/sh\ntouch ${join(ready, `s${i}`)}\nexec sleep 100000\n`, { mode: 0o755 });
  }
  const side = EXIT_SIDES[kind](sv, ready, state);
  const child = execa('unshare', ['--pid', '--fork', '--kill-child', '--', ...side.cmd], { env: side.env, stdio: 'ignore', reject: false });
  await waitReady(ready, side.ready, performance.now(), `${kind} in a pid namespace`);
  // settled, as before a podman stop
  await new Promise((r) => setTimeout(r, 1000));
  const init = Number(readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, 'utf8').trim().split(/\s+/)[0]);
  const s0 = performance.now();
  process.kill(init, 'SIGTERM');
  await child;
  const ms = performance.now() - s0;
  rmSync(dir, { recursive: true, force: true });
  return ms;
}

try {
  process.stdout.write(`machine: ${cpus()[0]?.model ?? '?'} x${cpus().length}, Linux ${release()}, ${(await podman(['--version'])).stdout.trim()}; Node ${process.version}\n`);
  const self: number[] = [];
  for (let i = 0; i < SELF_START_RUNS; i++) {
    const t0 = performance.now();
    await execa(join(repoRoot, 'out', arch, 'runit-ts'), ['-V'], { argv0: 'sv', reject: false });
    self.push(performance.now() - t0);
  }
  process.stdout.write(`our executable's start (sv -V on the host, ${SELF_START_RUNS} runs): ${fmt(summary(self), 0)} ms\n`);
  symlinkSync(join(repoRoot, 'out', arch, 'runit-ts'), join(work, 'container-init'));
  const exitKinds = Object.keys(EXIT_SIDES) as ExitKind[];
  const exits = new Map(exitKinds.map((k) => [k, [] as number[]]));
  for (let r = 0; r < RUNS * 3; r++) for (const k of r % 2 ? [...exitKinds].reverse() : exitKinds) exits.get(k)!.push(await exitOnce(k, r));
  const exitRef = summary(exits.get('runit (C)')!).median;
  process.stdout.write(`\nPID 1 of a fresh pid namespace on the host, ${N} services: SIGTERM -> gone, ${RUNS * 3} runs, ms: median (min-max)\n`);
  for (const k of exitKinds) process.stdout.write(`${k.padEnd(24)} ${fmt(summary(exits.get(k)!)).padEnd(24)} ${ratio(summary(exits.get(k)!).median, exitRef)}\n`);
  writeFileSync(join(work, 'spec.yaml'), specText());
  await execa(process.execPath, [join(repoRoot, 'image', 'cli.ts'), 'build', join(work, 'spec.yaml'), '--out', join(work, 'out')], { cwd: repoRoot });
  await podman(['load', '-q', '-i', join(work, 'out', arch, 'image.tar')]);
  const kinds = Object.keys(SIDES) as Kind[];
  const figures = new Map(kinds.map((k) => [k, { start: [] as number[], stop: [] as number[] }]));
  for (let r = 0; r < RUNS; r++)
    for (const k of r % 2 ? [...kinds].reverse() : kinds) {
      const f = await once(k, r);
      figures.get(k)!.start.push(f.start);
      figures.get(k)!.stop.push(f.stop);
    }
  const ref = figures.get('runit (C)')!;
  process.stdout.write(`\n${N} services (catatonit: 1 process), ${RUNS} runs, ms: median (min-max)\n`);
  process.stdout.write(`${'side'.padEnd(22)} ${'podman run -> ready'.padEnd(26)} ${'ratio'.padEnd(7)} ${'podman stop'.padEnd(26)} ratio\n`);
  for (const k of kinds) {
    const f = figures.get(k)!;
    const [s, p] = [summary(f.start), summary(f.stop)];
    process.stdout.write(`${k.padEnd(22)} ${fmt(s, 0).padEnd(26)} ${ratio(s.median, summary(ref.start).median).padEnd(7)} ${fmt(p, 0).padEnd(26)} ${ratio(p.median, summary(ref.stop).median)}\n`);
  }
  const ours = figures.get('runit-ts')!;
  process.stdout.write(`runit-ts / runit (C), podman run -> ready   ${ratio(summary(ours.start).median, summary(ref.start).median)}   target: <= 1.25x\n`);
  process.stdout.write(`runit-ts / runit (C), podman stop -> exited ${ratio(summary(ours.stop).median, summary(ref.stop).median)}   target: <= 1.0x\n`);
} finally {
  await podman(['rmi', '-f', IMAGE], false);
  rmSync(work, { recursive: true, force: true });
}
