// Serial console text helpers: pattern search from an offset, run() markers, kernel message filtering.

/** Where a string or RegExp was found in console text (findPattern, Machine.waitFor). */
export interface ConsoleMatch {
  /** The matched text. */
  readonly text: string;
  /** Offset of the match in the console text. */
  readonly index: number;
  /** Offset just after the match: pass it as `from` to wait for the next occurrence. */
  readonly end: number;
  /** Capture groups (index 0 is the whole match, like RegExp exec). */
  readonly groups: readonly (string | undefined)[];
  /** Named capture groups, if the pattern has any. */
  readonly named?: Readonly<Record<string, string | undefined>>;
}

/** Finds the first occurrence of pattern at or after offset `from`. RegExp flags are kept; g/y are ignored. */
export function findPattern(text: string, pattern: string | RegExp, from = 0): ConsoleMatch | undefined {
  const start = Math.max(0, from);
  if (typeof pattern === 'string') {
    const i = text.indexOf(pattern, start);
    if (i < 0) return undefined;
    return { text: pattern, index: i, end: i + pattern.length, groups: [pattern] };
  }
  const re = new RegExp(pattern.source, pattern.flags.replace(/[gy]/g, '') + 'g');
  re.lastIndex = start;
  const m = re.exec(text);
  if (m === null) return undefined;
  const res: { -readonly [K in keyof ConsoleMatch]: ConsoleMatch[K] } = {
    text: m[0],
    index: m.index,
    end: m.index + m[0].length,
    groups: [...m],
  };
  if (m.groups !== undefined) res.named = { ...m.groups };
  return res;
}

/** A printable description of a pattern for error messages. */
export function describePattern(pattern: string | RegExp): string {
  return typeof pattern === 'string' ? JSON.stringify(pattern) : String(pattern);
}

/** The last `bytes` characters of text (whole text if shorter), prefixed with a note when cut. */
export function consoleTail(text: string, chars = 2048): string {
  if (text.length <= chars) return text;
  return `[... ${text.length - chars} earlier characters omitted ...]\n${text.slice(-chars)}`;
}

/**
 * Kernel console lines ("[    1.234567] msg\r\n") as printed with CONFIG_PRINTK_TIME; they
 * may start in the middle of a userspace line. Lines without a timestamp cannot be told apart.
 */
const KERNEL_LINE = /\[\s*\d+\.\d{6}\] [^\n]*\n/g;

/** Removes timestamped kernel messages (see KERNEL_LINE) from console text. */
export function stripKernelMessages(text: string): string {
  return text.replace(KERNEL_LINE, '');
}

/** Removes the CRs a tty adds (ONLCR) and those of CRLF line ends. */
export function normalizeNewlines(text: string): string {
  return text.replace(/\r+\n/g, '\n').replace(/\r/g, '');
}

/** A command framed by runMarkers(): the line to type and the pattern that finds its output. */
export interface RunMarkers {
  /** Alphanumeric id that makes the markers unique to this command. */
  readonly id: string;
  /** The line to type (without the final Enter). */
  readonly line: string;
  /** Matches the complete framed output; group 1 = output, group 2 = exit status. */
  readonly pattern: RegExp;
}

const BEGIN = 'RTS_BEGIN';
const END = 'RTS_END';

/**
 * Frames a shell command so its output and exit status can be cut out of the console.
 * The markers are printed with printf from split words, so the echo of the typed
 * line never contains them: `printf '%s_%s\n' RTS_BEGIN id; cmd; printf '\n%s_%s %s\n' RTS_END id $?`.
 * The END marker starts on a new line (an extra newline printf adds, removed by parseRunOutput).
 */
export function runMarkers(cmd: string, id: string): RunMarkers {
  if (!/^[A-Za-z0-9]+$/.test(id)) throw new Error(`marker id must be alphanumeric: ${id}`);
  if (/[\r\n]/.test(cmd)) throw new Error('run(): the command must be a single line (join commands with ; or &&)');
  const line = `printf '%s_%s\\n' ${BEGIN} ${id}; ${cmd}; printf '\\n%s_%s %s\\n' ${END} ${id} $?`;
  const pattern = new RegExp(`${BEGIN}_${id}\\r*\\n([\\s\\S]*?)\\r*\\n${END}_${id} (\\d+)\\r*\\n`);
  return { id, line, pattern };
}

/** Output and exit status of a framed command, as cut from the console by parseRunOutput. */
export interface RunOutput {
  /** What the command printed (stdout and stderr), CRs and timestamped kernel messages removed. */
  readonly output: string;
  /** The command's exit status ($?). */
  readonly status: number;
}

/** Extracts output and status from a match of RunMarkers.pattern. */
export function parseRunOutput(match: ConsoleMatch): RunOutput {
  const raw = match.groups[1] ?? '';
  const status = Number(match.groups[2] ?? 'NaN');
  // Kernel lines end with "\r\n": strip them before dropping CRs. The raw group lacks the
  // final newline printf added before END, so give it one for a trailing kernel line.
  const output = normalizeNewlines(stripKernelMessages(`${raw}\n`)).slice(0, -1);
  return { output, status };
}
