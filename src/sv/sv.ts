// sv's core: run an SvPlan (parsed by main.ts) against services supervised by runsv
// (ours or runit's), with runit's exact output lines and exit codes. The protocol itself
// (status, control, runsv detection) is src/lib/supervise.ts.
import { spawnSync } from 'node:child_process';
import { accessSync, closeSync, constants as C, statSync } from 'node:fs';
import { join } from 'node:path';
import { errWrite, exit, outWrite } from '../lib/diag.ts';
import { errorStr } from '../lib/errstr.ts';
import { closedStdout, execFormatError, shebang } from '../lib/exec.ts';
import { S_DOWN, S_FINISH, S_RUN, type RawStatus } from '../lib/status.ts';
import { readReady, readServiceModel, readyFromFile } from '../lib/servicemodel.ts';
import { describe, readStatus, sendControl } from '../lib/supervise.ts';
import { taiNow, tainSeconds } from '../lib/tai.ts';

/** How often sv looks again while it waits for a command to take effect (runit's sv: 420 ms). */
export const POLL_MS = 420;

/** What sv is asked to do, as main.ts parses it from the command line. */
export interface SvPlan {
  /** the name sv was called by (basename): 'sv', or the service's in LSB mode */
  progname: string;
  /** LSB mode (called as /etc/init.d/NAME): other usage and exit codes */
  lsb: boolean;
  /** where service names are looked up ($SVDIR, default /etc/service/) */
  svdir: string;
  /** how long to wait for the result, in seconds (-w, $SVWAIT, default 7) */
  waitSec: number;
  /** send control bytes, print the status, or only wait for a state (check) */
  op: 'control' | 'status' | 'check';
  /** the control bytes to send (control), or the states to wait for ('C' for check) */
  acts: string;
  /** wait until the command took effect (or waitSec passed), and report it */
  wait: boolean;
  /** force-*: kill a service that did not stop within waitSec */
  kill: boolean;
  /** the services named on the command line */
  services: string[];
}

/** Run the plan; the exit code is the number of services that failed (at most 99), or LSB status's. */
export function runPlan(plan: SvPlan): number {
  return new Sv(plan).run();
}

class Sv {
  private readonly plan: SvPlan;
  private readonly lsb: boolean;
  private readonly svdir: string;
  private readonly wait: number;
  private readonly kll: boolean;
  private islog = false;
  private rc = 0;
  private out = '';
  private svstatus: RawStatus | undefined;
  /** the 20 bytes of supervise/status as read */
  private raw: Buffer = Buffer.alloc(20);
  private service = '';
  /** directory of the current service */
  private cwd = '';
  private tstart = taiNow();
  private tnow = this.tstart;
  private acts = '';

  constructor(plan: SvPlan) {
    this.plan = plan;
    this.lsb = plan.lsb;
    this.svdir = plan.svdir;
    this.wait = plan.waitSec;
    this.kll = plan.kill;
    this.acts = plan.acts;
  }

  private outs(s: string): void {
    this.out += s;
  }

  private flush(s = ''): void {
    this.out += s;
    if (this.out) outWrite(this.out);
    this.out = '';
  }

  private warn2(msg: string): void {
    this.flush();
    errWrite(msg);
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

  run(): number {
    const { services, acts } = this.plan;
    const act: ((a: string) => number) | undefined =
      this.plan.op === 'control' ? (a) => this.control(a) : this.plan.op === 'status' ? (a) => this.status(a) : undefined;
    const cbk: ((a: string) => number) | undefined = this.plan.wait ? (a) => this.check(a) : undefined;
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
        sleepMs(POLL_MS);
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

  /** The directory holding the current service's supervise/ (its log's, for the log). */
  private supervised(): string {
    return this.islog ? join(this.cwd, 'log') : this.cwd;
  }

  /** 1 status read, 0 runsv not running, -1 error (warned). */
  private svstatusGet(): number {
    const r = readStatus(this.supervised());
    if (r.kind === 'not-running') {
      if (this.acts[0] === 'x') this.ok('runsv not running');
      else this.fail('runsv not running');
      return 0;
    }
    if (r.kind === 'error') {
      this.warn(describe(r));
      return -1;
    }
    this.raw = r.raw;
    this.svstatus = r.status;
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
    this.outs(st.state === S_DOWN ? 'down: ' : st.state === S_RUN ? 'run: ' : st.state === S_FINISH ? 'finish: ' : '');
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
    exit(code);
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

  /**
   * Is the running service ready? runit's answer is ./check's; beyond runit, a service
   * whose readiness our supervisor learns otherwise (notification-fd, NOTIFY_SOCKET,
   * a one-shot) is ready when supervise/stats.json's "ready" names this start.
   */
  private ready(): boolean {
    const dir = this.supervised();
    if (this.islog || !readyFromFile(dir)) return this.checkscript();
    const r = readReady(dir);
    if (!r) return false;
    if (r.how === 'oneshot') return Date.parse(r.time) / 1000 >= tainSeconds(this.tstart);
    return r.pid === this.svstatus!.pid;
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
      // beyond runit: a one-shot under our supervisor is checked for its result (up = ran to success)
      const oneshot = !this.islog && readyFromFile(this.supervised()) && readServiceModel(this.supervised()).type === 'oneshot';
      const c = ch === 'C' ? (st.wantChar === 'd' && !oneshot ? 'd' : 'u') : ch;
      const pid = st.pid;
      switch (c) {
        case 'x':
          return 0;
        case 'u':
          // a one-shot that ran to success is up (ready) with no process
          if (oneshot) {
            // check: its last run succeeded; start: this run (after sv's request) did
            if (ch === 'C' ? readReady(this.supervised())?.how !== 'oneshot' : !this.ready()) return 0;
            break;
          }
          if (!pid || st.state !== S_RUN) return 0;
          if (!this.ready()) return 0;
          break;
        case 'd':
          if (pid || st.state !== S_DOWN) return 0;
          break;
        case 't':
        case 'k':
          if (!pid && st.wantChar === 'd') break;
          if (this.tstart.sec > st.start.sec || !pid || st.term || !this.ready()) return 0;
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
    const r = sendControl(this.cwd, a);
    if (r.kind === 'not-running') {
      if (a[0] === 'x') this.ok('runsv not running');
      else this.fail('runsv not running');
      return -1;
    }
    if (r.kind === 'error') {
      this.warn(describe(r));
      return -1;
    }
    return 1;
  }
}

function sleepMs(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}
