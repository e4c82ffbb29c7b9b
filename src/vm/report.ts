// Reports of `runit-ts-vm test`: TAP version 14 on stdout (one test point per target, with a
// YAML diagnostic block) and JUnit XML for CI systems that read it.
import { stringify } from 'yaml';

/** What a report says about one target. */
export interface TargetResult {
  readonly name: string;
  /** Exit code of the target: its command's, or one of EXIT's. */
  readonly code: number;
  /** Passed: the command exited 0. */
  readonly ok: boolean;
  /** The runner's one line when it failed (boot, timeout, panic), if any. */
  readonly line?: string;
  readonly seconds: number;
  readonly consoleLog: string;
  readonly stderrTail: string;
}

/** Lines of stderr a report quotes. */
export const STDERR_LINES = 10;

/** The last STDERR_LINES lines of a text. */
export function lastLines(text: string, n = STDERR_LINES): string {
  const lines = text.replace(/\n$/, '').split('\n');
  return lines.slice(-n).join('\n');
}

/** TAP 14's header and plan. */
export function tapHeader(count: number): string {
  return `TAP version 14\n1..${count}\n`;
}

/** One TAP test point with its YAML diagnostics, indented two spaces between --- and ... */
export function tapPoint(n: number, r: TargetResult): string {
  const diag: Record<string, unknown> = {
    exitCode: r.code,
    duration_ms: Math.round(r.seconds * 1000),
    consoleLog: r.consoleLog,
  };
  if (r.line !== undefined) diag['message'] = r.line;
  const err = lastLines(r.stderrTail);
  if (err !== '') diag['stderr'] = err;
  const yaml = stringify(diag, { lineWidth: 0 }).replace(/\n$/, '').split('\n').map((l) => `  ${l}`).join('\n');
  // '#' and '\' are TAP's directive and escape characters in a description
  const name = r.name.replace(/\\/g, '\\\\').replace(/#/g, '\\#');
  return `${r.ok ? 'ok' : 'not ok'} ${n} - ${name}\n  ---\n${yaml}\n  ...\n`;
}

/** Text escaped for XML (attributes and text); characters XML 1.0 cannot hold become U+FFFD. */
export function xmlEscape(text: string): string {
  return text
    .replace(/[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu, '\uFFFD')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;');
}

/** A JUnit XML document: one testsuite named `suite`, a testcase per target. */
export function junitXml(suite: string, results: readonly TargetResult[]): string {
  const failures = results.filter((r) => !r.ok).length;
  const total = results.reduce((a, r) => a + r.seconds, 0);
  const cases = results.map((r) => {
    const head = `    <testcase name="${xmlEscape(r.name)}" classname="${xmlEscape(suite)}" time="${r.seconds.toFixed(3)}">\n`;
    const failure = r.ok ? '' : `      <failure message="${xmlEscape(r.line ?? `exit code ${r.code}`)}" type="exit-${r.code}">${xmlEscape(`exit code ${r.code}\nconsole log: ${r.consoleLog}\n${lastLines(r.stderrTail)}`)}</failure>\n`;
    const err = r.stderrTail === '' ? '' : `      <system-err>${xmlEscape(r.stderrTail)}</system-err>\n`;
    return `${head}${failure}${err}    </testcase>\n`;
  });
  return (
    '<?xml version="1.0" encoding="UTF-8"?>\n' +
    `<testsuites tests="${results.length}" failures="${failures}" time="${total.toFixed(3)}">\n` +
    `  <testsuite name="${xmlEscape(suite)}" tests="${results.length}" failures="${failures}" errors="0" skipped="0" time="${total.toFixed(3)}">\n` +
    cases.join('') +
    '  </testsuite>\n</testsuites>\n'
  );
}
