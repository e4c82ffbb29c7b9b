// runsvdir's "log" argument: runsvdir's stderr (inherited by every runsv and service)
// becomes a pipe, and every non-NUL byte read from it scrolls through the last
// characters of that argument, so `ps` shows the latest messages. The first 5
// characters stay ("log: "); a '.' is written every 900 s.
//
// Node cannot write into argv[N] directly; process.title rewrites the whole original
// argv area (libuv allows exactly its size). We rebuild the command line with spaces
// where argv had NULs - `ps` shows the same text - with the log argument at its
// original place. That needs the argument to be in this process's real argv: started
// in-process under another name (stage 2 as /etc/runit/2) there is no room, and then
// stderr is left where it is (the console) rather than sent where nobody can see it.
import { closeSync, constants as C, openSync, writeFileSync, writeSync } from 'node:fs';
import { native, readPipe } from '../lib/native.ts';
import { setErrFd } from '../lib/diag.ts';

export interface PsLog {
  /** the log argument as it is now */
  text(): string;
  /** true when `ps` shows it (process.title has the room) */
  shown: boolean;
  close(): void;
}

/**
 * Point fd 2 at a new pipe (keeping it non-blocking, as runsvdir does) and scroll what
 * is read from it through `rplog`. `args` are runsvdir's own arguments; `logIndex` is the
 * index of the log argument in them. Throws when the pipe cannot be set up.
 */
export function setupPsLog(args: string[], logIndex: number, warn: (m: string) => void): PsLog {
  const [r, w] = native().pipe();
  // dup2(w, 2) without dup2: reopening a pipe through /proc gives the same pipe, and
  // open() takes the lowest free descriptor. Try it once before giving up fd 2.
  try {
    closeSync(openSync(`/proc/self/fd/${w}`, C.O_WRONLY | C.O_NONBLOCK));
  } catch {
    closeSync(r);
    closeSync(w);
    throw new Error('unable to set filedescriptor for log.');
  }
  const spare: number[] = [];
  let fd2 = -1;
  try {
    closeSync(2);
    for (;;) {
      const fd = openSync(`/proc/self/fd/${w}`, C.O_WRONLY | C.O_NONBLOCK);
      if (fd === 2) {
        fd2 = fd;
        break;
      }
      if (fd > 2) {
        closeSync(fd);
        break;
      }
      spare.push(fd);
    }
  } catch {
    /* fd2 stays -1 */
  } finally {
    for (const fd of spare) closeSync(fd);
  }
  closeSync(w);
  if (fd2 !== 2) {
    // never leave fd 2 free: the next open() would take it
    try {
      if (openSync('/dev/null', C.O_WRONLY) !== 2) throw new Error('fd 2');
    } catch {
      /* nothing better to do */
    }
    closeSync(r);
    throw new Error('unable to set filedescriptor for log.');
  }
  // our own messages go through a non-blocking descriptor of our own (see setErrFd)
  let own = 2;
  try {
    own = openSync('/proc/self/fd/2', C.O_WRONLY | C.O_NONBLOCK);
  } catch {
    /* fd 2 then */
  }
  setErrFd(own);

  const log = Buffer.from(args[logIndex]!, 'latin1');
  const title = titleLayout(args, logIndex);
  const show = () => {
    if (!title) return;
    process.title = title.before + printable(log) + title.after;
    // libuv also renames the thread (PR_SET_NAME): back to the name ps -C and pidof know
    setComm('runsvdir');
  };

  // read by the addon's poll handle: no node:net to load at the supervisor's start
  const watch = readPipe(r, (buf, e) => {
    if (!buf) {
      if (e) warn(`unable to read log pipe: ${e.message}`);
      watch.close();
      return;
    }
    let changed = false;
    for (const ch of buf) {
      if (!ch) continue;
      if (log.length > 5) {
        log.copy(log, 5, 6);
        log[log.length - 1] = ch;
      }
      changed = true;
    }
    if (changed) show();
  });
  const dot = () => {
    try {
      writeSync(own, '.');
    } catch {
      /* pipe full */
    }
  };
  dot();
  const timer = setInterval(dot, 900_000);
  timer.unref();
  watch.unref();
  return {
    text: () => log.toString('latin1'),
    shown: !!title,
    close: () => {
      clearInterval(timer);
      watch.close();
    },
  };
}

/** The process name (/proc/PID/comm): Node 24 calls its main thread "MainThread". */
export function setComm(name: string): void {
  try {
    writeFileSync('/proc/self/comm', name.slice(0, 15));
  } catch {
    /* cosmetic */
  }
}

/** True when `ps` can show the log argument: it is in this process's own command line. */
export function psLogFits(args: string[], logIndex: number): boolean {
  return titleLayout(args, logIndex) !== undefined;
}

/** What surrounds the log argument in the title, if this process's real argv holds our arguments. */
function titleLayout(args: string[], logIndex: number): { before: string; after: string } | undefined {
  // process.argv: [execPath, argv0 as called, ...args] in a single executable
  const real = process.argv.slice(1);
  if (real.length < args.length + 1) return undefined;
  const off = real.length - args.length;
  for (let i = 0; i < args.length; i++) if (real[off + i] !== args[i]) return undefined;
  const at = off + logIndex;
  const before = real.slice(0, at).join(' ');
  const after = real.slice(at + 1).join(' ');
  return { before: before ? before + ' ' : '', after: after ? ' ' + after : '' };
}

/** Keep one byte per character: the title is UTF-8, and a wider character would shift it. */
function printable(b: Buffer): string {
  let s = '';
  for (const c of b) s += c < 0x80 ? String.fromCharCode(c) : '?';
  return s;
}
