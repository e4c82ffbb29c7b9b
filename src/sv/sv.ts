// sv's core: run an SvPlan (parsed by main.ts) against services supervised by runsv
// (ours or runit's), with runit's exact output lines and exit codes. The protocol itself
// (status, control, runsv detection, the request runsv already has) is
// src/lib/supervise.ts, when a wait is over src/lib/wait.ts, ./check src/lib/check.ts;
// this file keeps sv's loop and its output.
import { accessSync, constants as C } from 'node:fs';
import { fileKind, inDir, S_IFDIR } from '../lib/files.ts';
import { optionalNative } from '../lib/native.ts';
import { checkSync, svVerdict } from '../lib/check.ts';
import { errWrite, exit, outWrite } from '../lib/diag.ts';
import { errorStr } from '../lib/errstr.ts';
import { S_DOWN, stateName } from '../lib/status.ts';
import { alreadyRequested, describe, readStatus, sendControl, type StatusRecord, type StatusResult } from '../lib/supervise.ts';
import { monotonicMs } from '../lib/sys.ts';
import { taiNow } from '../lib/tai.ts';
import { decide, expired, POLL_MS, type WaitSpec } from '../lib/wait.ts';

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
  /** the last status read (svstatusGet) */
  private read: StatusResult = { kind: 'not-running' };
  /** the last record read successfully: what svstatusPrint() shows, as sv shows its buffer */
  private last: StatusRecord | undefined;
  private service = '';
  /** index of the current service in plan.services */
  private cur = 0;
  /** directory of the current service */
  private cwd = '';
  private tstart = taiNow();
  private tnow = this.tstart;
  /** when sv started and the last look, on the monotonic clock: how long -w has waited */
  private readonly mstart = monotonicMs();
  private mnow = this.mstart;
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
      this.cur = i;
      const rel = name.startsWith('/') || name.startsWith('.') || name === '' || name.endsWith('/');
      if (!this.enter(rel ? name : inDir(this.svdir, name))) {
        live[i] = undefined;
        continue;
      }
      if (act && act(acts) === -1) live[i] = undefined;
    }
    if (cbk) {
      for (;;) {
        const over = expired(this.mstart, this.mnow, this.wait * 1000);
        let done = true;
        for (let i = 0; i < live.length; i++) {
          const name = live[i];
          if (name === undefined) continue;
          this.service = name;
          this.cur = i;
          const rel = name.startsWith('/') || name.startsWith('.');
          if (!this.enter(rel ? name : inDir(this.svdir, name))) {
            live[i] = undefined;
            continue;
          }
          if (cbk(acts) !== 0) live[i] = undefined;
          else done = false;
          if (live[i] !== undefined && over) {
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
        this.mnow = monotonicMs();
      }
    }
    this.flush();
    return this.rc > 99 ? 99 : this.rc;
  }

  /** chdir into the service directory (by path: sv's later relative opens use it). */
  private enter(path: string): boolean {
    try {
      const kind = fileKind(path);
      if (!kind) throw Object.assign(new Error('ENOENT'), { code: 'ENOENT' });
      if (kind !== S_IFDIR) {
        this.fail('unable to change to service directory', 'ENOTDIR');
        return false;
      }
      // the addon's answer where it loads (Node's accessSync only to throw the error)
      if (!optionalNative()?.access(path, C.X_OK)) accessSync(path, C.X_OK);
    } catch (e) {
      this.fail('unable to change to service directory', e);
      return false;
    }
    this.cwd = path;
    return true;
  }

  private p(rel: string): string {
    return inDir(this.supervised(), rel);
  }

  /** The directory holding the current service's supervise/ (its log's, for the log). */
  private supervised(): string {
    return this.islog ? inDir(this.cwd, 'log') : this.cwd;
  }

  /** 1 status read, 0 runsv not running, -1 error (warned). */
  private svstatusGet(): number {
    const r = readStatus(this.supervised());
    this.read = r;
    if (r.kind === 'not-running') {
      if (this.acts[0] === 'x') this.ok('runsv not running');
      else this.fail('runsv not running');
      return 0;
    }
    if (r.kind === 'error') {
      this.warn(describe(r));
      return -1;
    }
    this.last = r;
    return 1;
  }

  /** The status line; returns 1 if a pid is running, 2 if not, 0 on error. */
  private svstatusPrint(m: string): number {
    if (!this.last) return 0;
    const st = this.last.status;
    // (no exception for the usual absent file: making one costs, interpreted under emulation)
    let normallyup: boolean;
    try {
      normallyup = fileKind(this.p('down')) === 0;
    } catch (e) {
      this.warn2(`warning: unable to stat ${this.service}/down: ${errorStr(e)}\n`);
      return 0;
    }
    const pid = st.pid;
    // a corrupt record's unknown state: no word, as sv
    const word = stateName(st.state);
    if (word) this.outs(`${word}: `);
    this.outs(`${m}: `);
    // sv keeps the pid in an int and prints it as unsigned long: a corrupt one >= 2^31 wraps
    // (any state byte but down's, a corrupt one too)
    if (st.state !== S_DOWN) this.outs(`(pid ${pid >= 0x80000000 ? 2n ** 64n - BigInt(0x100000000 - pid) : pid}) `);
    const now = this.tnow.sec;
    this.outs(`${now < st.start.sec ? 0n : now - st.start.sec}s`);
    if (pid && !normallyup) this.outs(', normally down');
    if (!pid && normallyup) this.outs(', normally up');
    if (pid && st.paused) this.outs(', paused');
    if (!pid && st.want === 'up') this.outs(', want up');
    if (pid && st.want === 'down') this.outs(', want down');
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
      const kind = fileKind(inDir(this.cwd, 'log'));
      if (!kind) logErr = { code: 'ENOENT' };
      else if (kind !== S_IFDIR) logErr = { code: 'ENOTDIR' };
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

  /** ./check's verdict as runit's sv gives it (src/lib/check.ts), its warning printed. */
  private checkscript(): boolean {
    const r = checkSync(this.cwd, { name: this.service });
    if (r.end === 'failed') this.warn2(`${r.warning}\n`);
    return svVerdict(r);
  }

  /** Is the wait for this service over? 1 done ("ok: " and its status printed), 0 not yet, -1 failed. */
  private check(a: string): number {
    if (this.svstatusGet() === -1) return -1;
    const spec: WaitSpec = { acts: a, t0: this.tstart, request: this.plan.op === 'control', untilSupervised: false };
    const dir = this.supervised();
    let d = decide(spec, this.read, dir);
    if (d === 'check') d = decide(spec, this.read, dir, this.checkscript());
    if (d === 'wait') return 0;
    if (d === 'fail') return -1;
    // exit: the runsv is gone ("ok: NAME: runsv not running" said so)
    if (this.read.kind !== 'ok') return 1;
    this.outs('ok: ');
    this.svstatusPrint(this.service);
    this.flush('\n');
    return 1;
  }

  /** Send the command's bytes (unless runsv already has the request): 1 sent, 0 skipped, -1 failed (said). */
  private control(a: string): number {
    if (this.svstatusGet() <= 0 || this.read.kind !== 'ok') return -1;
    if (alreadyRequested(this.read, a)) return 0;
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
