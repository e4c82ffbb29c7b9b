// `runit-ts-vm test`: the config's targets, each in its own VM, a bounded number at a time,
// reported as TAP 14 (in the config's order, each as soon as it and those before it are done).
import { availableParallelism } from 'node:os';
import { mkdirSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { RunRequest } from './args.ts';
import { runInVm } from './run.ts';
import { junitXml, tapHeader, tapPoint, type TargetResult } from './report.ts';

/** Host cores per TCG guest: QEMU's vCPU thread takes one, its I/O and the host's work the other. */
export const CORES_PER_JOB = 2;

/** Default --jobs: one VM per CORES_PER_JOB cores, at least one. */
export function defaultJobs(cores = availableParallelism()): number {
  return Math.max(1, Math.floor(cores / CORES_PER_JOB));
}

/** Options of runSuite. */
export interface SuiteOptions {
  readonly jobs: number;
  readonly logDir: string;
  /** Where TAP goes (process.stdout's write). */
  readonly write: (text: string) => void;
  readonly junit?: string;
  /** Name of the JUnit testsuite (the config file's name). */
  readonly suite: string;
}

/** Runs every target, writes the reports; resolves with the results in config order. */
export async function runSuite(targets: readonly RunRequest[], o: SuiteOptions): Promise<TargetResult[]> {
  mkdirSync(o.logDir, { recursive: true });
  o.write(tapHeader(targets.length));
  const results: (TargetResult | undefined)[] = targets.map(() => undefined);
  let printed = 0;
  let next = 0;
  const flush = (): void => {
    while (printed < results.length && results[printed] !== undefined) {
      o.write(tapPoint(printed + 1, results[printed]!));
      printed++;
    }
  };
  const worker = async (): Promise<void> => {
    for (;;) {
      const i = next++;
      if (i >= targets.length) return;
      const t = targets[i]!;
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      const outcome = await runInVm(t, { stdout: (b) => out.push(b), stderr: (b) => err.push(b) }, join(o.logDir, `${t.name}.console.log`));
      // the command's own streams, beside its console log
      writeFileSync(join(o.logDir, `${t.name}.stdout`), Buffer.concat(out));
      writeFileSync(join(o.logDir, `${t.name}.stderr`), Buffer.concat(err));
      results[i] = {
        name: t.name,
        code: outcome.code,
        ok: outcome.kind === 'exit' && outcome.code === 0,
        ...(outcome.line !== undefined ? { line: outcome.line } : {}),
        seconds: outcome.seconds,
        consoleLog: outcome.consoleLog,
        stderrTail: outcome.stderrTail,
      };
      flush();
    }
  };
  await Promise.all(Array.from({ length: Math.min(o.jobs, targets.length) }, worker));
  const done = results as TargetResult[];
  if (o.junit !== undefined) writeFileSync(o.junit, junitXml(o.suite, done));
  return done;
}

/** The exit code of a suite: 0 when every target passed, else 1. */
export function suiteCode(results: readonly TargetResult[]): number {
  return results.every((r) => r.ok) ? 0 : 1;
}

/** The JUnit suite name of a config file. */
export function suiteName(config: string): string {
  return basename(config).replace(/\.(ya?ml|json)$/, '');
}
