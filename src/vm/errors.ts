// runit-ts-vm's exit codes and the error that carries one: each failure of the runner
// (not of the guest's command) ends the command with ONE line and a code of its own.
//
// The codes come from sysexits.h (64, 69, 70) and timeout(1) (124), so they cannot be
// taken for what commands commonly return: 0-2, 126/127 (not executable/not found),
// 128+N (killed by signal N).

/** Exit codes of runit-ts-vm besides the guest command's own. */
export const EXIT = {
  /** Bad command line or config file (sysexits EX_USAGE). */
  usage: 64,
  /** The VM did not come up: no image, QEMU failed, no shell/agent, a share not mounted (EX_UNAVAILABLE). */
  boot: 69,
  /** The guest kernel panicked (EX_SOFTWARE). */
  panic: 70,
  /** The command ran past --timeout (like timeout(1)). */
  timeout: 124,
} as const;

/** Which of the runner's own failures happened. */
export type FailureKind = keyof typeof EXIT;

/** A failure of the runner itself: its kind picks the exit code; the message is the one line shown. */
export class VmError extends Error {
  readonly kind: FailureKind;
  constructor(kind: FailureKind, message: string) {
    super(message);
    this.name = 'VmError';
    this.kind = kind;
  }

  /** The exit code for this failure. */
  get code(): number {
    return EXIT[this.kind];
  }
}

/** Shorthand for a usage error (bad argument or config value). */
export function usageError(message: string): VmError {
  return new VmError('usage', message);
}
