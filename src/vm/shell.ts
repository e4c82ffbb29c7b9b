// `runit-ts-vm shell`: the VM's serial console on this terminal (like `make boot`), with
// the shares attached; the lines to mount them are printed before it starts.
import { execa } from 'execa';
import { qemuCommand } from '../harness/qemu.ts';
import type { ShellArgs } from './args.ts';
import { mountLine } from './guest.ts';
import { bootInputs } from './image.ts';
import { cachedAccel } from './run.ts';

/** Boots with the console on this terminal until QEMU ends; resolves with QEMU's exit code. */
export async function shell(a: Required<Pick<ShellArgs, 'source' | 'shares' | 'memory'>>): Promise<number> {
  const inputs = bootInputs(a.source, a.shares);
  const accel = await cachedAccel(a.source.arch);
  const cmd = qemuCommand({
    arch: a.source.arch, kernel: inputs.kernel, initrd: inputs.initrd, append: inputs.append, drives: inputs.drives,
    memory: a.memory, accel, console: 'interactive', shares: inputs.shares,
  });
  process.stderr.write(`runit-ts-vm: ${a.source.arch} (${accel}): Ctrl-a x quits, Ctrl-a c toggles the QEMU monitor\n`);
  for (const [i, s] of a.shares.entries()) {
    process.stderr.write(`runit-ts-vm: ${s.host} (${s.rw ? 'rw' : 'ro'}): ${mountLine(inputs.shares[i]!.tag, s.guest, s.rw)}\n`);
  }
  const r = await execa(cmd.bin, cmd.args, { stdio: 'inherit', reject: false });
  return r.exitCode ?? 1;
}
