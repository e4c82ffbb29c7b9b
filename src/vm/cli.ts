#!/usr/bin/env node
// runit-ts-vm: run a command in a fresh QEMU VM (the runit-ts harness image, or your own
// kernel with it) and exit with its exit code; run a config file's targets as TAP/JUnit;
// or open the VM's console. The work is done by src/vm's modules; this file only dispatches.
import { basename, join } from 'node:path';
import { parseRunArgs, parseShellArgs, parseTestArgs, DEFAULT_TIMEOUT_S, DEFAULT_MEMORY_MIB } from './args.ts';
import { loadConfig } from './config.ts';
import { EXIT, usageError, VmError } from './errors.ts';
import { IMAGE_ENV, IMAGE_TARGET } from './image.ts';
import { defaultLogDir, failureLine, runInVm, verboseLine } from './run.ts';
import { shell } from './shell.ts';
import { CORES_PER_JOB, defaultJobs, runSuite, suiteCode, suiteName } from './suite.ts';

/** The name messages start with. */
const PROG = 'runit-ts-vm';

const CODES = `Exit codes: the command's own (128+N when signal N killed it), or
  ${EXIT.usage}   usage error (bad option, missing file, unknown arch, bad share, bad config)
  ${EXIT.boot}   boot failure (no image, QEMU failed, no shell, a share not mounted, a kernel
       that lacks what the harness needs)
  ${EXIT.panic}   the guest kernel panicked
  ${EXIT.timeout}  the command ran past --timeout
Each failure of the runner prints one line, with the path of the console log it keeps.`;

const BOOT_HELP = `What to boot (default: the harness image of this checkout for the host's arch, out/ARCH,
built by 'make ${IMAGE_TARGET}'; $${IMAGE_ENV} names another image directory):
  --arch A          x86_64 or aarch64 (amd64, arm64); default: the host's
  --image DIR       an image directory: vmlinuz (or vmlinux), initramfs.img, cmdline
  --kernel K        your own kernel, booted with the harness initramfs; it needs virtio-pci,
                    virtio-console, 9p over virtio and the console UART (built in, or as
                    modules: --modules or found beside K); its config (.config, config-VERSION
                    beside it, or IKCONFIG) is checked and what it lacks named in one line
  --modules DIR     K's lib/modules/VERSION tree: its modules are appended as a second cpio
  --disk D          a disk image attached as /dev/vda (writes go to a throw-away overlay)
  --memory MiB      guest RAM (default ${DEFAULT_MEMORY_MIB})
Shares (9p over virtio):
  --share HOST[:GUEST][,rw]   mount host directory HOST at GUEST (default: the same absolute
                    path) read-only, or read-write with ,rw; repeatable
  The working directory is shared read-only at its own path and is the command's working
  directory; --share .,rw makes it writable, --no-cwd-share leaves it out (cwd is / then).`;

const HELP = `usage: ${PROG} run [options] -- COMMAND [ARG...]
       ${PROG} test CONFIG [--jobs N] [--junit FILE] [--filter NAME] [--log-dir DIR]
       ${PROG} shell [options]
       ${PROG} SUBCOMMAND --help

Boots a fresh QEMU VM (KVM when usable, else TCG), runs COMMAND in it and exits with
its exit code; 'test' runs the targets of a config file and prints TAP; 'shell' puts the
VM's console on this terminal.

${CODES}
`;

const RUN_HELP = `usage: ${PROG} run [options] [--timeout S] [--snapshot] -- COMMAND [ARG...]

Boots a fresh VM, mounts the shares, runs COMMAND (argv, no shell: use sh -c '...' for
shell syntax) with stdin empty, copies its stdout and stderr to ours, and exits with its
exit code. The console log is kept when the run fails (its path is printed).

  --timeout S       seconds the command may run (default ${DEFAULT_TIMEOUT_S}; 0: no limit)
  --snapshot        start from a snapshot of the booted VM (saved on first use, under
                    $TMPDIR/runit-ts-vm-UID/snapshots, keyed by kernel, initramfs, memory and
                    shares) instead of a cold boot; needs the agent (the harness image)
  --log-dir DIR     where console logs go (default: a folder under $TMPDIR)
  -v, --verbose     say how the VM started (cold boot, restored) and how long it took
${BOOT_HELP}

${CODES}
`;

const TEST_HELP = `usage: ${PROG} test CONFIG [--jobs N] [--junit FILE] [--filter NAME] [--log-dir DIR]

Runs every target of CONFIG (YAML), each in its own VM, and prints TAP version 14: one
test point per target (ok when its command exits 0) with a YAML block giving its exit
code, duration, console log and the last lines of its stderr. Exits 0 when all pass, 1
when any fails, ${EXIT.usage} on a bad command line or config.

  --jobs N        VMs at a time (default: one per ${CORES_PER_JOB} cores, here ${defaultJobs()})
  --junit FILE    also write JUnit XML to FILE
  --filter NAME   only the targets whose name contains NAME
  --log-dir DIR   console logs and each target's NAME.stdout/NAME.stderr (default: a folder
                  under $TMPDIR)

CONFIG:
  targets:
    - name: smoke                 # [A-Za-z0-9._-]; names the logs
      command: "make check"       # a string runs with sh -c; a list is argv
      arch: x86_64                # default: the host's
      timeout: 300                # seconds (default ${DEFAULT_TIMEOUT_S}; 0: no limit)
      kernel: build/bzImage       # paths are relative to CONFIG's folder
      modules: build/lib/modules/6.12.0
      image: out/x86_64           # or an image directory; or disk: a disk image
      shares: ["data:/data,rw"]   # HOST[:GUEST][,rw] as --share
      cwdShare: true              # share CONFIG's folder read-only (its working directory)
      snapshot: false
      memory: 1024
`;

const SHELL_HELP = `usage: ${PROG} shell [options]

Boots the VM with its serial console on this terminal (a root shell). Ctrl-a x quits QEMU,
Ctrl-a c toggles the QEMU monitor; 'poweroff' in the guest ends it too. The lines that
mount the shares are printed before it starts. With --kernel K --initrd I, boots your own
initramfs as is.
${BOOT_HELP}
`;

/** Runs one subcommand; resolves with the exit code. */
async function main(argv: readonly string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === '--help' || sub === '-h' || sub === 'help') {
    process.stdout.write(HELP);
    return sub === undefined ? EXIT.usage : 0;
  }
  if (sub === 'run') {
    const a = parseRunArgs(rest);
    if (a.help) {
      process.stdout.write(RUN_HELP);
      return 0;
    }
    const req = a.request!;
    const log = join(a.logDir ?? defaultLogDir(), `run-${process.pid}-${Date.now()}.console.log`);
    const o = await runInVm(req, { stdout: (b) => process.stdout.write(b), stderr: (b) => process.stderr.write(b) }, log);
    if (o.kind !== 'exit') process.stderr.write(`${failureLine(o)}\n`);
    if (a.verbose === true) process.stderr.write(`${verboseLine(o)}\n`);
    return o.code;
  }
  if (sub === 'test') {
    const a = parseTestArgs(rest);
    if (a.help) {
      process.stdout.write(TEST_HELP);
      return 0;
    }
    const targets = loadConfig(a.config!, a.filter);
    const logDir = a.logDir ?? join(defaultLogDir(), `test-${basename(a.config!)}-${process.pid}-${Date.now()}`);
    const results = await runSuite(targets, {
      jobs: a.jobs ?? defaultJobs(),
      logDir,
      write: (t) => process.stdout.write(t),
      suite: suiteName(a.config!),
      ...(a.junit !== undefined ? { junit: a.junit } : {}),
    });
    return suiteCode(results);
  }
  if (sub === 'shell') {
    const a = parseShellArgs(rest);
    if (a.help) {
      process.stdout.write(SHELL_HELP);
      return 0;
    }
    return shell({ source: a.source!, shares: a.shares!, memory: a.memory! });
  }
  throw usageError(`unknown subcommand '${sub}' (run, test, shell; --help)`);
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e: unknown) => {
    if (e instanceof VmError) {
      process.stderr.write(`${PROG}: ${e.message}\n`);
      process.exit(e.code);
    }
    process.stderr.write(`${PROG}: internal error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exit(EXIT.boot);
  },
);
