// sv: control and query services supervised by runsv (ours or runit's), with runit's
// exact output lines and exit codes. Written from runit's documented behaviour.
import { spawnSync } from 'node:child_process';
import { accessSync, closeSync, constants as C, openSync, readSync, statSync, writeSync } from 'node:fs';
import { basename, join } from 'node:path';
import { errorStr } from '../lib/errstr.ts';
import { closedStdout, execFormatError, shebang } from '../lib/exec.ts';
import { decodeStatus, type RawStatus } from '../lib/status.ts';
import { taiNow, tainSeconds } from '../lib/tai.ts';

export const VERSION = '$Id: runit-ts sv 0.1 $';

export const HELP = `usage: sv [-v] [-w sec] command service ...

Commands (the first letter is enough where runit accepts it):
  status        print the state of each service (and its log)
  up, down      start; stop and keep down          once    start once, no restart
  pause, cont, hup, alarm, interrupt, quit, 1, 2, term, kill
                send that signal (p c h a i q 1 2 t k)
  exit          stop the service and its runsv
  start, stop, restart, shutdown, reload, try-restart, check
                LSB-like: act, then wait up to -w seconds for the result
  force-stop, force-reload, force-restart, force-shutdown
                as above, and kill the service if it does not stop in time
Options:
  -v            wait for up/down/... to take effect and report ok/timeout
  -w sec        wait at most sec seconds (default $SVWAIT or 7); implies -v
  -V            print the version
Environment: SVDIR (default /etc/service/), SVWAIT.
A service name is taken relative to $SVDIR unless it starts with '/' or '.'
or ends with '/'. Called by another name (e.g. /etc/init.d/NAME), sv acts on
service NAME in LSB mode: 'NAME [-w sec] command'.
Exit code: the number of services that failed (at most 99); 100 usage or fatal
(LSB mode: status gives 0 up, 3 down, 4 unknown; usage 2; fatal 151).
`;

class Done extends Error {
  readonly code: number;
  constructor(code: number) {
    super(`exit ${code}`);
    this.code = code;
  }
}

type Act = (acts: string) => number;

export function main(argv: string[], argv0: string, env: NodeJS.ProcessEnv = process.env): number {
  try {
    return new Sv(argv0, env).run(argv);
  } catch (e) {
    if (e instanceof Done) return e.code;
    throw e;
  }
}

function scanUlong(s: string): number {
  const m = /^\d+/.exec(s);
  return m ? Number(m[0]) : 0;
}

class Sv {
  private readonly progname: string;
  private readonly lsb: boolean;
  private readonly svdir: string;
  private wait = 7;
  private verbose = false;
  private kll = false;
  private islog = false;
  private rc = 0;
  private out = '';
  private svstatus: RawStatus | undefined;
  /** the 20 bytes of supervise/status as read */
  private raw = Buffer.alloc(20);
  private service = '';
  /** directory of the current service */
  private cwd = '';
  private tstart = taiNow();
  private tnow = this.tstart;
  private acts = '';

  constructor(argv0: string, env: NodeJS.ProcessEnv) {
    this.progname = basename(argv0);
    this.lsb = this.progname !== 'sv';
    this.svdir = env.SVDIR ?? '/etc/service/';
    if (env.SVWAIT !== undefined) this.wait = scanUlong(env.SVWAIT);
  }

  private usage(): never {
    if (!this.lsb) this.die(100, `usage: ${this.progname} [-v] [-w sec] command service ...\n\n`);
    this.die(2, `usage: ${this.progname} [-w sec] command\n\n`);
  }

  private die(code: number, stderr: string): never {
    this.flush();
    writeSync(2, stderr);
    throw new Done(code);
  }

  private outs(s: string): void {
    this.out += s;
  }

  private flush(s = ''): void {
    this.out += s;
    if (this.out) writeSync(1, this.out);
    this.out = '';
  }

  private warn2(msg: string): void {
    this.flush();
    writeSync(2, msg);
  }

  /** runit's out(): "<p><service>[/log]: <m>[: <error>]" */
  private line(prefix: string, m: string, err?: unknown): void {
    this.outs(`${prefix}${this.service}${this.islog ? '/log' : ''}: ${m}${err === undefined ? '' : `: ${errorStr(err)}`}\n`);
    this.flush();
  }
  private fail(m: string, err?: unknown): void {
    ++this.rc;
    this.line('fail: ', m, err);
  }
  private warn(m: string, err?: unknown): void {
    ++this.rc;
    this.line('warning: ', m, err);
  }
  private ok(m: string): void {
    this.line('ok: ', m);
  }

  run(argv: string[]): number {
    const args = [...argv];
    if (args[0] === '--help') {
      process.stdout.write(HELP);
      return 0;
    }
    // getopt("w:vV"), stopping at the first non-option
    while (args.length && args[0]!.startsWith('-') && args[0] !== '-') {
      const a = args.shift()!;
      if (a === '--') break;
      for (let i = 1; i < a.length; i++) {
        const o = a[i];
        if (o === 'w') {
          const val = a.length > i + 1 ? a.slice(i + 1) : args.shift();
          if (val === undefined) {
            writeSync(2, `${this.progname}: option requires an argument -- w\n`);
            this.usage();
          }
          this.wait = scanUlong(val);
          this.verbose = true;
          break;
        } else if (o === 'v') this.verbose = true;
        else if (o === 'V') {
          writeSync(2, `${VERSION}\n`);
          this.usage();
        } else {
          writeSync(2, `${this.progname}: illegal option -- ${o}\n`);
          this.usage();
        }
      }
    }
    const action = args.shift();
    if (action === undefined) this.usage();
    const services = this.lsb ? [this.progname] : args;
    if (!services.length || !services[0]) this.usage();

    let act: Act | undefined = (a) => this.control(a);
    let acts = 's';
    let cbk: Act | undefined = this.verbose ? (a) => this.check(a) : undefined;
    const check: Act = (a) => this.check(a);
    switch (action[0]) {
      case 'x': case 'e':
        acts = 'x'; break;
      case 'X': case 'E':
        acts = 'x'; this.kll = true; cbk = check; break;
      case 'D':
        acts = 'd'; this.kll = true; cbk = check; break;
      case 'T':
        acts = 'tc'; this.kll = true; cbk = check; break;
      case 't':
        if (action === 'try-restart') { acts = 'tc'; cbk = check; break; }
        acts = action[0]; break;
      case 'c':
        if (action === 'check') { act = undefined; acts = 'C'; cbk = check; break; }
        acts = action[0]; break;
      case 'u': case 'd': case 'o': case 'p': case 'h':
      case 'a': case 'i': case 'k': case 'q': case '1': case '2':
        acts = action[0]; break;
      case 's':
        if (action === 'shutdown') { acts = 'x'; cbk = check; break; }
        if (action === 'start') { acts = 'u'; cbk = check; break; }
        if (action === 'stop') { acts = 'd'; cbk = check; break; }
        if (this.lsb && action !== 'status') this.usage();
        act = (a) => this.status(a); cbk = undefined; break;
      case 'r':
        if (action === 'restart') { acts = 'tcu'; cbk = check; break; }
        if (action === 'reload') { acts = 'h'; cbk = check; break; }
        this.usage();
      // falls through (usage never returns)
      case 'f':
        if (action === 'force-reload') { acts = 'tc'; this.kll = true; cbk = check; break; }
        if (action === 'force-restart') { acts = 'tcu'; this.kll = true; cbk = check; break; }
        if (action === 'force-shutdown') { acts = 'x'; this.kll = true; cbk = check; break; }
        if (action === 'force-stop') { acts = 'd'; this.kll = true; cbk = check; break; }
        this.usage();
      // falls through
      default:
        this.usage();
    }
    this.acts = acts;

    const live: Array<string | undefined> = [...services];
    for (let i = 0; i < live.length; i++) {
      const name = live[i]!;
      this.service = name;
      const rel = name.startsWith('/') || name.startsWith('.') || name === '' || name.endsWith('/');
      if (!this.enter(rel ? name : join(this.svdir, name))) {
        live[i] = undefined;
        continue;
      }
      if (act && act(acts) === -1) live[i] = undefined;
    }
    if (cbk) {
      for (;;) {
        const tdiff = tainSeconds(this.tnow) - tainSeconds(this.tstart);
        let done = true;
        for (let i = 0; i < live.length; i++) {
          const name = live[i];
          if (name === undefined) continue;
          this.service = name;
          const rel = name.startsWith('/') || name.startsWith('.');
          if (!this.enter(rel ? name : join(this.svdir, name))) {
            live[i] = undefined;
            continue;
          }
          if (cbk(acts) !== 0) live[i] = undefined;
          else done = false;
          if (live[i] !== undefined && tdiff > this.wait) {
            this.outs(this.kll ? 'kill: ' : 'timeout: ');
            if (this.svstatusGet() > 0) {
              this.svstatusPrint(name);
              ++this.rc;
            }
            this.flush('\n');
            if (this.kll) this.control('k');
            live[i] = undefined;
          }
        }
        if (done) break;
        sleepMs(420);
        this.tnow = taiNow();
      }
    }
    this.flush();
    return this.rc > 99 ? 99 : this.rc;
  }

  /** chdir into the service directory (by path: sv's later relative opens use it). */
  private enter(path: string): boolean {
    try {
      if (!statSync(path).isDirectory()) {
        this.fail('unable to change to service directory', 'ENOTDIR');
        return false;
      }
      accessSync(path, C.X_OK);
    } catch (e) {
      this.fail('unable to change to service directory', e);
      return false;
    }
    this.cwd = path;
    return true;
  }

  private p(rel: string): string {
    return join(this.cwd, this.islog ? 'log' : '', rel);
  }

  /** 1 status read, 0 runsv not running, -1 error (warned). */
  private svstatusGet(): number {
    let fd: number;
    try {
      fd = openSync(this.p('supervise/ok'), C.O_WRONLY | C.O_NONBLOCK);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENXIO') {
        if (this.acts[0] === 'x') this.ok('runsv not running');
        else this.fail('runsv not running');
        return 0;
      }
      this.warn('unable to open supervise/ok', e);
      return -1;
    }
    closeSync(fd);
    let sfd: number;
    try {
      sfd = openSync(this.p('supervise/status'), C.O_RDONLY | C.O_NONBLOCK);
    } catch (e) {
      this.warn('unable to open supervise/status', e);
      return -1;
    }
    // one read() of up to 20 bytes, as sv: a short file is "bad format"
    const buf = Buffer.alloc(20);
    let n: number;
    try {
      n = readSync(sfd, buf, 0, 20, null);
    } catch (e) {
      this.warn('unable to read supervise/status', e);
      return -1;
    } finally {
      closeSync(sfd);
    }
    if (n !== 20) {
      this.warn('unable to read supervise/status: bad format');
      return -1;
    }
    this.raw = buf;
    this.svstatus = decodeStatus(buf);
    return 1;
  }

  /** The status line; returns 1 if a pid is running, 2 if not, 0 on error. */
  private svstatusPrint(m: string): number {
    const st = this.svstatus!;
    let normallyup = false;
    try {
      statSync(this.p('down'));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') {
        this.warn2(`warning: unable to stat ${this.service}/down: ${errorStr(e)}\n`);
        return 0;
      }
      normallyup = true;
    }
    const pid = st.pid;
    this.outs(st.state === 0 ? 'down: ' : st.state === 1 ? 'run: ' : st.state === 2 ? 'finish: ' : '');
    this.outs(`${m}: `);
    // sv keeps the pid in an int and prints it as unsigned long: a corrupt one >= 2^31 wraps
    if (st.state) this.outs(`(pid ${pid >= 0x80000000 ? 2n ** 64n - BigInt(0x100000000 - pid) : pid}) `);
    const now = this.tnow.sec;
    this.outs(`${now < st.start.sec ? 0n : now - st.start.sec}s`);
    if (pid && !normallyup) this.outs(', normally down');
    if (!pid && normallyup) this.outs(', normally up');
    if (pid && st.paused) this.outs(', paused');
    if (!pid && st.wantChar === 'u') this.outs(', want up');
    if (pid && st.wantChar === 'd') this.outs(', want down');
    if (pid && st.term) this.outs(', got TERM');
    return pid ? 1 : 2;
  }

  private status(_acts: string): number {
    let r = this.svstatusGet();
    if (r === -1 && this.lsb) this.done(4);
    if (r <= 0) return 0;
    r = this.svstatusPrint(this.service);
    this.islog = true;
    let logErr: unknown;
    try {
      if (!statSync(join(this.cwd, 'log')).isDirectory()) logErr = { code: 'ENOTDIR' };
    } catch (e) {
      logErr = e;
    }
    if (logErr !== undefined) {
      if ((logErr as { code?: string }).code !== 'ENOENT') {
        this.outs('; ');
        this.warn('unable to change directory', logErr);
      } else this.outs('\n');
    } else {
      this.outs('; ');
      if (this.svstatusGet()) {
        // runit 2.1.2 bug: its rc (and so LSB status's exit code) became the log's status;
        // 2.3.0 keeps the service's, and so do we
        this.svstatusPrint('log');
        this.outs('\n');
      }
    }
    this.islog = false;
    this.flush();
    if (this.lsb) this.done(r === 1 ? 0 : r === 2 ? 3 : 4);
    return r;
  }

  private done(code: number): never {
    this.flush();
    throw new Done(code);
  }

  /** ./check: exit 0 = ready; missing = ready; stdout closed. */
  private checkscript(): boolean {
    const path = join(this.cwd, 'check');
    try {
      statSync(path);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return true;
      this.warn2(`warning: unable to stat ${this.service}/check: ${errorStr(e)}\n`);
      return false;
    }
    // sv's child closes stdout: a read-only /dev/null fails writes with EBADF the same way
    const enoexec = execFormatError(path);
    let r: { error?: unknown; status: number | null };
    if (enoexec) r = { error: enoexec, status: null };
    else {
      const out = closedStdout();
      try {
        const stdio: Array<'inherit' | number> = ['inherit', out, 'inherit'];
        // execve("check", ["./check"]): a script's interpreter gets "check" as $0
        const script = shebang(path, 'check');
        try {
          accessSync(path, C.X_OK);
          r = script
            ? spawnSync(script.file, script.args, { cwd: this.cwd, stdio, argv0: script.file })
            : spawnSync('./check', [], { cwd: this.cwd, stdio, argv0: './check' });
        } catch (e) {
          r = { error: e, status: null };
        }
      } finally {
        closeSync(out);
      }
    }
    if (r.error) {
      // sv's child prints this and exits 0, which counts as ready
      this.warn2(`warning: unable to run ${this.service}/check: ${errorStr(r.error)}\n`);
      return true;
    }
    // sv tests wait_exitcode() == 0: killed by a signal counts as ready too
    return !r.status;
  }

  private check(a: string): number {
    const r = this.svstatusGet();
    if (r === -1) return -1;
    for (const ch of a) {
      if (r === 0) return ch === 'x' ? 1 : -1;
      const st = this.svstatus!;
      // check ('C'): as runit 2.3.0, wait for up (or for down when the service wants down).
      // runit 2.1.2 had a bug here: it passed any state without a pid at once, and one
      // with a pid as soon as ./check did, whatever the state (finish, want down)
      const c = ch === 'C' ? (st.wantChar === 'd' ? 'd' : 'u') : ch;
      const pid = st.pid;
      switch (c) {
        case 'x':
          return 0;
        case 'u':
          if (!pid || st.state !== 1) return 0;
          if (!this.checkscript()) return 0;
          break;
        case 'd':
          if (pid || st.state !== 0) return 0;
          break;
        case 't':
        case 'k':
          if (!pid && st.wantChar === 'd') break;
          if (this.tstart.sec > st.start.sec || !pid || st.term || !this.checkscript()) return 0;
          break;
        case 'o':
          if ((!pid && this.tstart.sec > st.start.sec) || (pid && st.wantChar !== 'd')) return 0;
          break;
        case 'p':
          if (pid && !st.paused) return 0;
          break;
        case 'c':
          if (pid && st.paused) return 0;
          break;
      }
    }
    this.outs('ok: ');
    this.svstatusPrint(this.service);
    this.flush('\n');
    return 1;
  }

  private control(a: string): number {
    if (this.svstatusGet() <= 0) return -1;
    const st = this.svstatus!;
    if (st.wantChar === a[0] && (a[0] !== 'd' || this.raw[18] === 1)) return 0; // once w/o term
    let fd: number;
    try {
      fd = openSync(join(this.cwd, 'supervise/control'), C.O_WRONLY | C.O_NONBLOCK);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENXIO') this.warn('unable to open supervise/control', e);
      else if (a[0] === 'x') this.ok('runsv not running');
      else this.fail('runsv not running');
      return -1;
    }
    let n = -1;
    try {
      n = writeSync(fd, a);
    } catch {
      n = -1;
    }
    closeSync(fd);
    if (n !== a.length) {
      this.warn('unable to write to supervise/control');
      return -1;
    }
    return 1;
  }
}

function sleepMs(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}
