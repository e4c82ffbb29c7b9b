// bench/vm.ts: what runit-ts-vm costs, per arch, under the accelerator this host gives
// (TCG here): a command (`true`) in a fresh VM cold-booted, the same restored from a
// snapshot (--snapshot), and the round trip of a small command through the guest agent
// against the console's shell (Machine.run), each as the median (min-max) of N runs. It
// prints the machine, its load, QEMU's version and Node's own start time first: on a
// shared host those move every figure. Published figures of similar tools are printed
// beside ours (measured by their authors on their machines, under KVM: not comparable
// one to one). Target: a restored VM to its command done under 0.5 s. The restore is also
// timed part by part through the library: boot() (QEMU's start and the state loaded),
// the agent's answer, the first `true` (TCG translates the guest's code again) and a second.
//   node bench/vm.ts [--arch x86_64|aarch64|all] [--runs N]
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { execa } from 'execa';
import { boot } from '../src/harness/index.ts';
import { ARCHES, type Arch } from '../src/lib/platform.ts';
import { bootInputs, defaultImageDir } from '../src/vm/image.ts';
import { cachedAccel, runInVm, settleForSnapshot, SNAPSHOT_CMDLINE } from '../src/vm/run.ts';
import { PROMPT } from '../src/vm/guest.ts';
import type { RunRequest } from '../src/vm/args.ts';
import { fmt, runsOption, summary } from './stats.ts';

/** Published figures of other tools, with where they were published. */
const PUBLISHED = [
  'virtme-ng: four kernels booted one after another in a pipe, each running `cat && uname -r`, 2.737 s wall in all (KVM; README, "Examples": https://github.com/arighi/virtme-ng#examples)',
  'vmtest: no boot or run time is published (README: https://github.com/danobi/vmtest#readme; design notes: https://dxuuu.xyz/vmtest.html)',
];
/** Guest RAM of the benchmark's VMs (MiB): runit-ts-vm's default. */
const MEMORY_MIB = 1024;

const { values } = parseArgs({ options: { arch: { type: 'string' }, runs: { type: 'string' } } });
const runs = runsOption(values.runs, 5);
const arches: Arch[] = values.arch === undefined || values.arch === 'all' ? [...ARCHES] : [values.arch as Arch];
const logs = join(process.cwd(), 'out', 'bench-logs');

/** Seconds of `node -e 0` on this Node: the floor of any Node tool's start. */
async function nodeStart(): Promise<string> {
  const xs: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await execa(process.execPath, ['-e', '0']);
    xs.push((performance.now() - t0) / 1000);
  }
  return fmt(summary(xs), 3);
}

/** A request for `true` in a fresh VM of the harness image, no shares. */
function request(arch: Arch, snapshot: boolean): RunRequest {
  return { arch, name: `bench-${arch}`, shares: [], timeout: 60, snapshot, command: ['true'], cwd: '/', memory: MEMORY_MIB };
}

/** N runs of `true`: seconds to command done, and to the guest being ready. */
async function runTrue(arch: Arch, snapshot: boolean): Promise<{ done: string; ready: string }> {
  const done: number[] = [];
  const ready: number[] = [];
  const quiet = { stdout: () => {}, stderr: () => {} };
  if (snapshot) await runInVm(request(arch, true), quiet, join(logs, `${arch}-prime.log`)); // saves it when missing
  for (let i = 0; i < runs; i++) {
    const o = await runInVm(request(arch, snapshot), quiet, join(logs, `${arch}-${snapshot ? 'restore' : 'cold'}-${i}.log`));
    if (o.kind !== 'exit' || o.code !== 0) throw new Error(`${arch}: run ${i} failed: ${o.line ?? o.code}`);
    if (snapshot && o.start !== 'restore') throw new Error(`${arch}: run ${i} was not restored (${o.start})`);
    done.push(o.seconds);
    ready.push(o.readySeconds ?? NaN);
  }
  return { done: fmt(summary(done)), ready: fmt(summary(ready)) };
}

/** The parts of a restore, timed in N restores of one snapshot (saved here first, from a cold boot). */
async function restoreParts(arch: Arch): Promise<Record<'boot' | 'agent' | 'first' | 'second', string>> {
  const inputs = bootInputs({ arch }, []);
  const opts = {
    arch, kernel: inputs.kernel, initrd: inputs.initrd, append: `${inputs.append} ${SNAPSHOT_CMDLINE}`, memory: MEMORY_MIB, agent: true,
    accel: await cachedAccel(arch), agentTimeout: 180_000, snapshotRam: true, agentEvents: false,
  } as const;
  const file = join(logs, `${arch}-parts.state`);
  {
    await using m = await boot({ ...opts, consoleLog: join(logs, `${arch}-parts-boot.log`) });
    await m.waitForAgent();
    await settleForSnapshot(m);
    await m.snapshot(file, { then: 'quit' });
  }
  const ms = { boot: [] as number[], agent: [] as number[], first: [] as number[], second: [] as number[] };
  for (let i = 0; i < runs; i++) {
    let t0 = performance.now();
    const lap = (xs: number[]) => {
      const t = performance.now();
      xs.push(t - t0);
      t0 = t;
    };
    await using m = await boot({ ...opts, restore: file, consoleLog: join(logs, `${arch}-parts-${i}.log`) });
    lap(ms.boot);
    await m.waitForAgent();
    lap(ms.agent);
    await m.exec(['true']);
    lap(ms.first);
    await m.exec(['true']);
    lap(ms.second);
  }
  return { boot: fmt(summary(ms.boot), 0), agent: fmt(summary(ms.agent), 0), first: fmt(summary(ms.first), 0), second: fmt(summary(ms.second), 0) };
}

/** Round trips of `true` through the agent (Machine.exec) and the console shell (Machine.run), in one VM. */
async function roundTrips(arch: Arch): Promise<{ agent: string; console: string }> {
  const inputs = bootInputs({ arch }, []);
  await using m = await boot({
    arch, kernel: inputs.kernel, initrd: inputs.initrd, append: inputs.append, memory: MEMORY_MIB, agent: true,
    accel: await cachedAccel(arch), consoleLog: join(logs, `${arch}-roundtrip.log`),
  });
  await m.waitForAgent();
  await m.waitFor(PROMPT, { timeout: 120_000 });
  const agent: number[] = [];
  const cons: number[] = [];
  // one of each first: TCG translates the code paths on their first use
  await m.exec(['true']);
  await m.run('true');
  for (let i = 0; i < runs; i++) {
    let t0 = performance.now();
    await m.exec(['true']);
    agent.push(performance.now() - t0);
    t0 = performance.now();
    await m.run('true');
    cons.push(performance.now() - t0);
  }
  return { agent: fmt(summary(agent), 1), console: fmt(summary(cons), 1) };
}

const qemu = (await execa('qemu-system-x86_64', ['--version'], { reject: false })).stdout.split('\n')[0] ?? '?';
process.stdout.write(
  `# machine: ${cpus()[0]?.model ?? '?'}, ${cpus().length} cores, load ${loadavg().map((x) => x.toFixed(2)).join(' ')}\n` +
    `# ${qemu}; Node ${process.version}: node -e 0 takes ${await nodeStart()} s\n` +
    `# ${runs} runs each, median (min-max); runInVm in this process (no CLI start)\n`,
);
for (const arch of arches) {
  defaultImageDir(arch);
  const accel = await cachedAccel(arch);
  const cold = await runTrue(arch, false);
  const restored = await runTrue(arch, true);
  const parts = await restoreParts(arch);
  const rt = await roundTrips(arch);
  process.stdout.write(
    `${arch} (${accel}):\n` +
      `  cold boot -> \`true\` done:        ${cold.done} s   (guest ready ${cold.ready} s)\n` +
      `  restored  -> \`true\` done:        ${restored.done} s   (guest ready ${restored.ready} s; target 0.5 s)\n` +
      `  restore parts (library): boot() ${parts.boot} ms, agent +${parts.agent} ms, first \`true\` +${parts.first} ms (a second: ${parts.second} ms)\n` +
      `  round trip of \`true\`: agent ${rt.agent} ms, console shell ${rt.console} ms\n`,
  );
}
process.stdout.write(`# load at the end: ${loadavg().map((x) => x.toFixed(2)).join(' ')}\n# published (not comparable: other machines, KVM):\n${PUBLISHED.map((p) => `#   ${p}\n`).join('')}`);
