// Which log/run scripts the supervisor may replace by an in-process Svlogd.
//
// A Node process per logger costs 8-15 MB, runit's svlogd ~100 kB; with one supervisor
// process for all services, a log service whose ./run is exactly
//
//     #!/bin/sh
//     exec svlogd [options] dir ...        (optionally preceded by `exec 2>&1`)
//
// and whose svlogd is this executable runs as an Svlogd object inside the supervisor:
// same files, same signals, same supervise/ status. Anything else (chpst, variables,
// quoting, redirections, another logger, another svlogd binary) runs as a process.
import { constants as C } from 'node:fs';
import { basename, isAbsolute, join } from 'node:path';
import { parseArgs, type SvlogdSettings } from './options.ts';
import { selfExe } from '../lib/sys.ts';
import { fileAccess, fileRead, fileStat, isFile, type FileStat } from '../lib/files.ts';

export interface LogRun {
  /** the program word: "svlogd" or an absolute path ending in /svlogd */
  program: string;
  /** svlogd's arguments */
  args: readonly string[];
  /** `exec 2>&1` came first: svlogd's stderr goes where its stdout goes */
  stderrToStdout: boolean;
}

const SHELLS = new Set(['sh', 'bash', 'dash', 'ash']);
const WORD = /^[A-Za-z0-9_@%+=:,./-]+$/;

/** One plain shell word, or a single-quoted one; undefined if it needs the shell. */
function word(tok: string): string | undefined {
  if (WORD.test(tok)) return tok;
  const m = /^'([^']*)'$/.exec(tok);
  return m ? m[1] : undefined;
}

/** Parse the script text; undefined unless it is the recognisable form. */
export function parseLogRun(text: string): LogRun | undefined {
  const lines = text.split('\n');
  const shebang = /^#!\s*(\S+)(?:\s+(\S.*))?$/.exec(lines[0] ?? '');
  if (!shebang) return undefined;
  let shell = basename(shebang[1]!);
  let flags = (shebang[2] ?? '').trim();
  if (shell === 'env') {
    const [s, ...rest] = flags.split(/\s+/);
    shell = s ?? '';
    flags = rest.join(' ');
  }
  if (!SHELLS.has(shell) || (flags && !/^(-[a-zA-Z]+\s*)+$/.test(flags))) return undefined;
  let stderrToStdout = false;
  let found: LogRun | undefined;
  for (const raw of lines.slice(1)) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    if (found) return undefined; // nothing may follow the exec
    if (/^exec\s+2>&1$/.test(line)) {
      stderrToStdout = true;
      continue;
    }
    const toks = line.split(/\s+/);
    if (toks[0] !== 'exec' || toks.length < 3) return undefined;
    const words = toks.slice(1).map(word);
    if (words.some((w) => w === undefined)) return undefined;
    const [program, ...args] = words as string[];
    if (program !== 'svlogd' && !(isAbsolute(program!) && basename(program!) === 'svlogd')) return undefined;
    found = { program: program!, args, stderrToStdout };
  }
  return found;
}

export interface RecogniseOptions {
  /** PATH is looked up here (default process.env) */
  env?: NodeJS.ProcessEnv;
  /** our executable (default: /proc/self/exe); the svlogd found must be it */
  self?: string;
}

export interface InProcessLogger extends LogRun {
  settings: SvlogdSettings;
}

/**
 * Where PATH lookups found a program, by PATH and name: a supervisor looks up svlogd for
 * every log service, and each directory without it costs a failed call (and an exception)
 * per service. A hit is checked again, so a program that moved is looked up anew.
 */
const found = new Map<string, string>();
/** our own executable's file, once: (device, inode) */
let selfId: string | undefined;

/** A file's identity: (device, inode) of what a path names, symlinks followed. */
const idOf = (st: FileStat): string => `${st.dev}:${st.ino}`;

function fileId(p: string): string | undefined {
  const st = fileStat(p);
  return st ? idOf(st) : undefined;
}
/**
 * Scripts parsed, by their text: the log services of a scan directory mostly have the same
 * log/run, and its parse (a few regular expressions per line, interpreted in a supervisor)
 * was a part of each one's first start under emulation. Bounded: a new text past the
 * limit empties it.
 */
const parsed = new Map<string, LogRun | undefined>();
const PARSED_MAX = 64;

function parseCached(text: string): LogRun | undefined {
  if (parsed.has(text)) return parsed.get(text);
  if (parsed.size >= PARSED_MAX) parsed.clear();
  const run = parseLogRun(text);
  parsed.set(text, run);
  return run;
}

/** p is an executable regular file: its stat, else undefined. */
function executable(p: string): FileStat | undefined {
  try {
    if (!fileAccess(p, C.X_OK)) return undefined;
    const st = fileStat(p);
    return st && isFile(st) ? st : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The svlogd settings for an in-process logger if log/run (runPath) is recognisable and
 * its svlogd is this executable; undefined means: start ./run as a process.
 */
export function recogniseLogRun(runPath: string, opts: RecogniseOptions = {}): InProcessLogger | undefined {
  let text: string;
  try {
    if (!executable(runPath)) return undefined;
    const b = fileRead(runPath);
    if (!b) return undefined;
    text = b.toString('utf8');
  } catch {
    return undefined;
  }
  const run = parseCached(text);
  if (!run) return undefined;
  // the program's stat, kept from the check that it is executable
  let prog: FileStat | undefined;
  if (isAbsolute(run.program)) prog = executable(run.program);
  else {
    const path = (opts.env ?? process.env).PATH ?? '/bin:/usr/bin';
    const key = `${path}\0${run.program}`;
    const known = found.get(key);
    if (known !== undefined) prog = executable(known);
    if (!prog) {
      for (const dir of path.split(':')) {
        const p = join(dir || '.', run.program);
        prog = executable(p);
        if (prog) {
          found.set(key, p);
          break;
        }
      }
    }
  }
  if (!prog) return undefined;
  try {
    // the same file as this executable (a realpath would walk every component)
    const self = opts.self !== undefined ? fileId(opts.self) : (selfId ??= fileId(selfExe()));
    if (!self || idOf(prog) !== self) return undefined;
  } catch {
    return undefined;
  }
  const settings = parseArgs(run.args, 'svlogd', () => {});
  if ('code' in settings) return undefined;
  return { ...run, settings };
}
