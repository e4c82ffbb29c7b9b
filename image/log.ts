// The image builder's progress lines on stderr ("[image] ..."), and how they show sizes.

/** One progress line. */
export function say(m: string): void {
  process.stderr.write(`[image] ${m}\n`);
}

const MIB = 1048576;

/** A size in bytes as the progress lines show it ("112.6 MiB"). */
export function mib(n: number): string {
  return `${(n / MIB).toFixed(1)} MiB`;
}
