// bench/stats.ts: the summary every benchmark prints: the median of N runs with the
// spread (min-max), and the ratio of two medians measured in the same run.

export interface Summary { median: number; min: number; max: number; p95: number; n: number }

export function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

/** median (the lower middle for an even count, like percentile 50), spread and p95 */
export function summary(xs: number[]): Summary {
  if (!xs.length) return { median: NaN, min: NaN, max: NaN, p95: NaN, n: 0 };
  const s = [...xs].sort((a, b) => a - b);
  return { median: s[Math.floor((s.length - 1) / 2)]!, min: s[0]!, max: s[s.length - 1]!, p95: percentile(s, 95), n: s.length };
}

/** "1.23 (1.10-1.40)": median and spread with `digits` decimals */
export function fmt(s: Summary, digits = 2): string {
  return `${s.median.toFixed(digits)} (${s.min.toFixed(digits)}-${s.max.toFixed(digits)})`;
}

export function ratio(a: number, b: number): string {
  return b && Number.isFinite(a) && Number.isFinite(b) ? `${(a / b).toFixed(2)}x` : '-';
}

/** --runs N from argv (default 5); a bad value is an error, not a silent default */
export function runsOption(value: string | undefined, def = 5): number {
  const n = Number(value ?? def);
  if (!Number.isInteger(n) || n < 1) {
    process.stderr.write(`--runs: expected a positive integer, got ${value}\n`);
    process.exit(2);
  }
  return n;
}
