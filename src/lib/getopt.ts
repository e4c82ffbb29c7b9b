// Option parsing as runit's tools do it (djb's sgetopt): options until the first
// non-option, "--" ends them (and is dropped), a lone "-" ends them (and is kept),
// clustered flags ("-tt"), arguments attached ("-l80") or separate ("-l 80").
// Problems are reported to stderr in sgetopt's words, and the caller sees '?'.
import { basename } from 'node:path';
import { errWrite } from './diag.ts';

export interface Opt {
  /** the option character, or '?' for a problem (already reported) */
  c: string;
  /** its argument, for options declared with ':' */
  arg?: string;
}

export class Getopt {
  /** index of the first argument not consumed yet */
  index = 0;
  private pos = 0;
  private readonly argv: readonly string[];
  private readonly spec: string;
  private readonly prog: string;
  private readonly report: (s: string) => void;

  /**
   * argv: the arguments after the program name; spec: getopt's option string ("l:tv");
   * prog: the name messages start with (its basename is used, as sgetopt does).
   */
  constructor(argv: readonly string[], spec: string, prog: string, report?: (s: string) => void) {
    this.argv = argv;
    this.spec = spec;
    this.prog = basename(prog);
    this.report = report ?? errWrite;
  }

  /** The next option, or undefined when the options are over. */
  next(): Opt | undefined {
    const argv = this.argv;
    if (this.index >= argv.length) return undefined;
    if (this.pos > 0 && this.pos >= argv[this.index]!.length) {
      this.index++;
      this.pos = 0;
      if (this.index >= argv.length) return undefined;
    }
    const word = argv[this.index]!;
    if (this.pos === 0) {
      if (word[0] !== '-') return undefined;
      if (word.length === 1) return undefined;
      if (word[1] === '-') {
        this.index++;
        return undefined;
      }
      this.pos = 1;
    }
    const c = word[this.pos++]!;
    const at = c === ':' ? -1 : this.spec.indexOf(c);
    if (at < 0) return this.problem(c, true);
    if (this.spec[at + 1] !== ':') return { c };
    let arg = word.slice(this.pos);
    this.index++;
    this.pos = 0;
    if (arg === '') {
      if (this.index >= argv.length) return this.problem(c, false);
      arg = argv[this.index++]!;
    }
    return { c, arg };
  }

  /** The arguments left after the options. */
  rest(): string[] {
    if (this.pos > 0) {
      this.index++;
      this.pos = 0;
    }
    return this.argv.slice(this.index);
  }

  private problem(c: string, illegal: boolean): Opt {
    this.report(`${this.prog}: ${illegal ? 'illegal option' : 'option requires an argument'} -- ${c}\n`);
    return { c: '?' };
  }
}

/** djb's scan_ulong: the leading decimal digits of s (0 if none), and how many there were. */
export function scanUlong(s: string): [value: number, used: number] {
  let v = 0;
  let i = 0;
  while (i < s.length) {
    const d = s.charCodeAt(i) - 48;
    if (d < 0 || d > 9) break;
    v = v * 10 + d;
    i++;
  }
  return [v, i];
}
