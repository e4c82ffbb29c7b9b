// Public API of the QEMU boot-test harness (package export "runit-ts/harness").
//
//   import { boot } from 'runit-ts/harness';
//   await using m = await boot({ arch: 'x86_64', kernel, initrd, consoleLog: 'boot.log' });
//   await m.waitFor('login:', { timeout: 60_000 });
//   const { output, status } = await m.run('uname -m');
//   await m.ctrlAltDel();
//   const { reason } = await m.waitForExit();   // 'guest-shutdown' | 'guest-reset' | ...
//
// With the guest agent (the harness image, make vm-image):
//   await using m = await boot({ arch, kernel, initrd, append, agent: true, shares: [{ host: dir, tag: 'src' }] });
//   await m.mountShare('src', '/mnt/src');
//   const { code, stdout, stderr } = await m.exec(['make', '-C', '/mnt/src', 'check']);

export { type Arch, ARCHES, ARCH_INFO, type ArchInfo, hostArch, parseArch, findExecutable, QemuNotFoundError } from './arch.ts';
export {
  type Accel,
  type ResolvedAccel,
  ACCEL_ENV,
  accelFromEnv,
  resolveAccel,
  resolveAccelSync,
  probeKvm,
  probeKvmSync,
  clearKvmProbeCache,
  runProbeGuest,
  x86ProbeFirmware,
  aarch64ProbeImage,
  type KvmProbeResult,
  type KvmProbeOptions,
} from './kvm.ts';
export { qemuCommand, defaultCmdline, type Drive, type Share, type QemuOptions, type QemuCommand, type ConsoleMode, type CmdlineOptions } from './qemu.ts';
export { QmpClient, QmpParser, QmpError, parseQmpMessage, type QmpEvent, type QmpMessage, type QmpErrorBody, type QmpWaitOptions } from './qmp.ts';
export {
  findPattern,
  consoleTail,
  stripKernelMessages,
  normalizeNewlines,
  runMarkers,
  parseRunOutput,
  type ConsoleMatch,
  type RunMarkers,
  type RunOutput,
} from './console.ts';
export {
  boot,
  killAll,
  Machine,
  BootError,
  type BootOptions,
  type WaitOptions,
  type TimedMatch,
  type RunOptions,
  type RunResult,
  type ExitInfo,
  type ExitWaitOptions,
  type ShutdownReason,
  savedRamFile,
  type SnapshotOptions,
  type SnapshotInfo,
  type QemuUsage,
} from './machine.ts';
export { AgentClient, AgentError, DEFAULT_AGENT_TIMEOUT_MS, type ExecOptions, type ExecResult } from './agent.ts';
export {
  AGENT_PORT_NAME,
  PROTOCOL_VERSION,
  AgentProtocolError,
  encodeFrame,
  parseRequest,
  parseReply,
  FrameSplitter,
  type AgentRequest,
  type AgentRequestBody,
  type AgentReply,
} from '../lib/agent-protocol.ts';
export { extractVmlinux, cachedVmlinux } from './kernel.ts';
