// The chpst applet and runit's argv0 aliases of it: setuidgid, envuidgid, envdir,
// pgrphack, setlock, softlimit. Parses the command line into a Plan (chpst.ts) and
// applies it; success never returns (the process becomes the program).
import { basename } from 'node:path';
import { errWrite, runTool, usage as usageExit } from '../lib/diag.ts';
import { Getopt, scanUlong } from '../lib/getopt.ts';
import {
  RLIMIT_AS, RLIMIT_CORE, RLIMIT_CPU, RLIMIT_DATA, RLIMIT_FSIZE, RLIMIT_MEMLOCK, RLIMIT_NOFILE, RLIMIT_NPROC, RLIMIT_RSS, RLIMIT_STACK,
} from '../lib/native.ts';
import { apply, type Limits, type Plan } from './chpst.ts';

// runit 2.3.0's usage line (Debian's 2.1.2 prints the same without -C, which came in 2.2.0)
const USAGE_MAIN =
  ' [-vVP012] [-u user[:group]] [-U user[:group]] [-b argv0] [-e dir] [-/ root] [-C pwd] [-n nice] [-l|-L lock] [-m n] [-d n] [-o n] [-p n] [-f n] [-c n] [-t n] prog';
const VERSION = '$Id: runit-ts chpst $';
const ALIAS_USAGE: Record<string, string> = {
  setuidgid: ' account child',
  envuidgid: ' account child',
  envdir: ' dir child',
  pgrphack: ' child',
  setlock: ' [ -nNxX ] file program [ arg ... ]',
  softlimit:
    ' [-a allbytes] [-c corebytes] [-d databytes] [-f filebytes] [-l lockbytes] [-m membytes] [-o openfiles] [-p processes] [-r residentbytes] [-s stackbytes] [-t cpusecs] child',
};

export const HELP = `usage: chpst [-vVP012] [-u user[:group]] [-U user[:group]] [-b argv0] [-e dir] [-/ root]
             [-C dir] [-n nice] [-l|-L lock] [-m n] [-d n] [-o n] [-p n] [-f n] [-c n] [-r n] [-t n] prog

Runs prog with a changed process state (runit's chpst), in this order:
  -P         new session and process group (setsid)
  -e dir     environment from dir: a file per variable, its first line the value, empty = unset
  -/ root    chroot to root;  -C dir: then change to dir
  -n inc     add inc to the nice value
  -U u[:g]   set $UID and $GID of user u (or :uid:gid) in the environment
  -u u[:g:g] run as user u with group(s) g (default: u's group), or :uid:gid[:gid...]
  -l file    wait for an exclusive lock on file, held while prog runs (-L: fail at once)
  -0 -1 -2   close standard input, output, error
  -m bytes   limit data, stack, locked and address space memory; -d data, -o open files,
             -p processes, -f file size, -c core size, -r resident size, -t cpu seconds
             (a limit above the hard limit is the hard limit)
  -b argv0   run prog with this argv[0];  -v: verbose;  -V: version
Also as setuidgid, envuidgid, envdir, pgrphack, setlock [-nNxX], softlimit (daemontools).
Exit codes: 100 usage, 111 failure; otherwise prog's own.
`;

/** chpst's own options. */
function parseChpst(argv: string[], prog: string): Plan {
  const usage = (): never => usageExit(prog, USAGE_MAIN);
  const plan: Plan = { argv: [], extended: true, lenientDirs: true };
  const limits: Limits = new Map();
  const num = (s: string) => {
    const [v, used] = scanUlong(s);
    if (used !== s.length) throw usage();
    return v;
  };
  const g = new Getopt(argv, 'u:U:b:e:m:d:o:p:f:c:r:t:/:C:n:l:L:vP012V', prog, errWrite);
  for (let o = g.next(); o; o = g.next()) {
    const a = o.arg ?? '';
    switch (o.c) {
      case 'u':
        plan.setUser = a;
        break;
      case 'U':
        plan.envUser = a;
        break;
      case 'b':
        plan.argv0 = a;
        break;
      case 'e':
        plan.envdir = a;
        break;
      case 'm': {
        const v = num(a);
        for (const r of [RLIMIT_STACK, RLIMIT_MEMLOCK, RLIMIT_AS, RLIMIT_DATA]) limits.set(r, v);
        break;
      }
      case 'd':
        limits.set(RLIMIT_DATA, num(a));
        break;
      case 'o':
        limits.set(RLIMIT_NOFILE, num(a));
        break;
      case 'p':
        limits.set(RLIMIT_NPROC, num(a));
        break;
      case 'f':
        limits.set(RLIMIT_FSIZE, num(a));
        break;
      case 'c':
        limits.set(RLIMIT_CORE, num(a));
        break;
      case 'r':
        limits.set(RLIMIT_RSS, num(a));
        break;
      case 't':
        limits.set(RLIMIT_CPU, num(a));
        break;
      case '/':
        plan.root = a;
        break;
      case 'C':
        plan.chdir = a;
        break;
      case 'n': {
        if (a[0] === '-') plan.nice = -num(a.slice(1));
        else plan.nice = num(a[0] === '+' ? a.slice(1) : a);
        break;
      }
      case 'l':
      case 'L':
        if (plan.lock) throw usage();
        plan.lock = { path: a, wait: o.c === 'l' };
        break;
      case 'v':
        plan.verbose = true;
        break;
      case 'P':
        plan.setsid = true;
        break;
      case '0':
      case '1':
      case '2': {
        const c = plan.close ?? [false, false, false];
        c[Number(o.c)] = true;
        plan.close = c;
        break;
      }
      case 'V':
        errWrite(`${VERSION}\n`);
        throw usage();
      default:
        throw usage();
    }
  }
  plan.argv = g.rest();
  if (plan.argv.length === 0) throw usage();
  if (limits.size) plan.limits = limits;
  return plan;
}

/** The daemontools-style names chpst answers to. */
function parseAlias(name: string, argv: string[]): Plan {
  const usage = (): never => usageExit(name, ALIAS_USAGE[name]!);
  switch (name) {
    case 'setuidgid':
    case 'envuidgid': {
      const [account, ...prog] = argv;
      if (account === undefined || prog.length === 0) throw usage();
      return name === 'setuidgid' ? { setUser: account, extended: false, argv: prog } : { envUser: account, extended: false, argv: prog };
    }
    case 'envdir': {
      const [dir, ...prog] = argv;
      if (dir === undefined || prog.length === 0) throw usage();
      return { envdir: dir, lenientDirs: false, argv: prog };
    }
    case 'pgrphack':
      if (argv.length === 0) throw usage();
      return { setsid: true, argv };
    case 'setlock': {
      let wait = false;
      let quiet = false;
      const g = new Getopt(argv, 'nNxX', name, errWrite);
      for (let o = g.next(); o; o = g.next()) {
        if (o.c === 'n') wait = true;
        else if (o.c === 'N') wait = false;
        else if (o.c === 'x') quiet = true;
        else if (o.c === 'X') quiet = false;
        else throw usage();
      }
      const [file, ...prog] = g.rest();
      if (file === undefined || prog.length === 0) throw usage();
      return { lock: { path: file, wait, quiet }, argv: prog, quietExec: quiet };
    }
    default: {
      // softlimit: "=" is the hard limit; a bad number is chpst's usage (as runit has it)
      const limits: Limits = new Map();
      const map: Record<string, number[]> = {
        a: [RLIMIT_AS], c: [RLIMIT_CORE], d: [RLIMIT_DATA], f: [RLIMIT_FSIZE], l: [RLIMIT_MEMLOCK],
        m: [RLIMIT_DATA, RLIMIT_STACK, RLIMIT_MEMLOCK, RLIMIT_AS], o: [RLIMIT_NOFILE], p: [RLIMIT_NPROC],
        r: [RLIMIT_RSS], s: [RLIMIT_STACK], t: [RLIMIT_CPU],
      };
      const g = new Getopt(argv, 'a:c:d:f:l:m:o:p:r:s:t:', name, errWrite);
      for (let o = g.next(); o; o = g.next()) {
        const rs = map[o.c];
        if (!rs) throw usage();
        let v = -1;
        if (o.arg !== '=') {
          const [n, used] = scanUlong(o.arg!);
          if (used !== o.arg!.length) usageExit(name, USAGE_MAIN);
          v = n;
        }
        for (const r of rs) limits.set(r, v);
      }
      const prog = g.rest();
      if (prog.length === 0) throw usage();
      return { limits, argv: prog };
    }
  }
}

export function main(argv: string[], argv0: string): number {
  let name = basename(argv0);
  if (name.startsWith('d')) name = name.slice(1);
  if (argv[0] === '--help') {
    process.stdout.write(name in ALIAS_USAGE ? `usage: ${name}${ALIAS_USAGE[name]}\n\n${HELP}` : HELP);
    return 0;
  }
  return runTool(() => {
    const plan = name in ALIAS_USAGE ? parseAlias(name, argv) : parseChpst(argv, name);
    apply(plan);
    return 0; // setlock -x: a lock or exec failure ends quietly
  });
}
