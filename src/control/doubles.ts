// Test doubles of ServiceControl, for programs that drive services and want to test
// themselves without a supervisor: a fake that keeps runsv's state in memory, a
// recorder of every request, and one that always fails.
import { ServiceError, type ProcessStatus, type ServiceControl, type ServiceErrorReason, type ServiceSignal, type ServiceStatus, type WaitCondition, type WaitOptions } from './types.ts';

interface FakeService {
  state: ProcessStatus['state'];
  pid: number | undefined;
  since: Date;
  paused: boolean;
  want: 'up' | 'down';
  normallyUp: boolean;
  /** false once `exit` retired its runsv */
  supervised: boolean;
  ready: boolean | undefined;
}

/** How a service added to a FakeServices starts out. */
export interface FakeServiceOptions {
  /** the state it is in when added (default: running, as runsv starts a normally-up service) */
  state?: 'run' | 'down';
  /** a down file: normally down */
  normallyDown?: boolean;
  /** what ./check answers (default: no ./check) */
  ready?: boolean;
}

/**
 * An in-memory supervisor: each verb changes the state as runsv would, at once, so a
 * wait succeeds immediately or times out immediately. Unknown names reject with
 * reason 'no-service'; a service retired by exit() with 'not-running'.
 */
export class FakeServices implements ServiceControl {
  private readonly services = new Map<string, FakeService>();
  private nextPid = 1000;
  /** the clock the fake stamps `since` with (tests may replace it) */
  now: () => Date = () => new Date();

  constructor(names: Iterable<string> = []) {
    for (const n of names) this.add(n);
  }

  /** Add a service, running unless told otherwise. */
  add(name: string, opts: FakeServiceOptions = {}): this {
    const running = (opts.state ?? (opts.normallyDown ? 'down' : 'run')) === 'run';
    this.services.set(name, {
      state: running ? 'run' : 'down',
      pid: running ? this.nextPid++ : undefined,
      since: this.now(),
      paused: false,
      want: running ? 'up' : 'down',
      normallyUp: !opts.normallyDown,
      supervised: true,
      ready: opts.ready,
    });
    return this;
  }

  /** Simulate the service's process exiting by itself (runsv restarts it if wanted up). */
  crash(name: string): void {
    const s = this.get(name);
    if (s.state !== 'run') return;
    if (s.want === 'up') this.spawn(s);
    else this.setDown(s);
  }

  private get(name: string): FakeService {
    const s = this.services.get(name);
    if (!s) throw new ServiceError(name, 'no-service', 'unable to change to service directory: file does not exist');
    if (!s.supervised) throw new ServiceError(name, 'not-running', 'runsv not running');
    return s;
  }

  private spawn(s: FakeService): void {
    s.state = 'run';
    s.pid = this.nextPid++;
    s.since = this.now();
    s.paused = false;
  }

  private setDown(s: FakeService): void {
    s.state = 'down';
    s.pid = undefined;
    s.since = this.now();
    s.paused = false;
  }

  private view(name: string, s: FakeService): ServiceStatus {
    return {
      name,
      dir: name,
      state: s.state,
      pid: s.pid,
      since: s.since,
      seconds: Math.max(0, Math.floor((this.now().getTime() - s.since.getTime()) / 1000)),
      paused: s.paused,
      want: s.want,
      gotTerm: false,
      normallyUp: s.normallyUp,
      ready: s.state === 'run' ? s.ready : undefined,
      log: undefined,
      restarts: undefined,
      lastExit: undefined,
    };
  }

  async status(service: string): Promise<ServiceStatus> {
    return this.view(service, this.get(service));
  }
  async up(service: string): Promise<void> {
    const s = this.get(service);
    s.want = 'up';
    if (s.state === 'down') this.spawn(s);
  }
  async down(service: string): Promise<void> {
    const s = this.get(service);
    s.want = 'down';
    if (s.state === 'run') this.setDown(s);
  }
  async once(service: string): Promise<void> {
    const s = this.get(service);
    s.want = 'down';
    if (s.state === 'down') this.spawn(s);
  }
  async signal(service: string, signal: ServiceSignal): Promise<void> {
    const s = this.get(service);
    if (s.state !== 'run') return;
    if (signal === 'STOP') s.paused = true;
    else if (signal === 'CONT') s.paused = false;
    else if (signal === 'TERM' || signal === 'KILL') this.crash(service);
  }
  async start(service: string, opts?: WaitOptions): Promise<ServiceStatus> {
    await this.up(service);
    return this.settle(service, 'up', opts);
  }
  async stop(service: string, opts?: WaitOptions): Promise<ServiceStatus> {
    await this.down(service);
    return this.settle(service, 'down', opts);
  }
  async restart(service: string, opts?: WaitOptions): Promise<ServiceStatus> {
    const s = this.get(service);
    s.want = 'up';
    this.spawn(s);
    return this.settle(service, 'up', opts);
  }
  async exit(service: string): Promise<void> {
    const s = this.get(service);
    this.setDown(s);
    s.supervised = false;
  }
  async wait(service: string, condition: WaitCondition, opts?: WaitOptions): Promise<ServiceStatus | undefined> {
    if (condition === 'exit') {
      const s = this.services.get(service);
      if (s && s.supervised) throw new ServiceError(service, 'timeout', 'runsv still running', { status: this.view(service, s) });
      return undefined;
    }
    return this.settle(service, condition, opts);
  }

  private settle(service: string, condition: 'up' | 'run' | 'down', opts?: WaitOptions): ServiceStatus {
    const st = this.view(service, this.get(service));
    const ok = condition === 'up' ? st.state === 'run' && st.ready !== false : condition === 'run' ? st.state === 'run' : st.state === 'down';
    if (ok) return st;
    if (opts?.kill) {
      this.setDown(this.get(service));
      throw new ServiceError(service, 'killed', `timeout: killed`, { status: this.view(service, this.get(service)) });
    }
    throw new ServiceError(service, 'timeout', `timeout waiting for ${condition}`, { status: st });
  }
}

/** One request as a RecordingServices saw it. */
export interface RecordedCommand {
  verb: keyof ServiceControl;
  service: string;
  /** the verb's other arguments (signal, condition, options) */
  args: unknown[];
}

/**
 * Records every request, then passes it on to another ServiceControl (by default a
 * FakeServices that knows every name), so a test can assert what was asked, in order.
 */
export class RecordingServices implements ServiceControl {
  readonly commands: RecordedCommand[] = [];
  private readonly inner: ServiceControl;

  constructor(inner?: ServiceControl) {
    this.inner = inner ?? new FakeServices();
  }

  /** Note the request, make sure the inner fake knows the name, then pass it on. */
  private async record<T>(verb: keyof ServiceControl, service: string, args: unknown[], call: () => Promise<T>): Promise<T> {
    this.commands.push({ verb, service, args });
    await this.ensure(service);
    return call();
  }

  /** Just the verbs and services, as 'verb service' strings. */
  lines(): string[] {
    return this.commands.map((c) => `${c.verb} ${c.service}${c.args.length && typeof c.args[0] === 'string' ? ` ${c.args[0]}` : ''}`);
  }

  private async ensure(service: string): Promise<void> {
    if (!(this.inner instanceof FakeServices)) return;
    try {
      await this.inner.status(service);
    } catch (e) {
      if (e instanceof ServiceError && e.reason === 'no-service') this.inner.add(service);
    }
  }

  status(service: string) {
    return this.record('status', service, [], () => this.inner.status(service));
  }
  up(service: string) {
    return this.record('up', service, [], () => this.inner.up(service));
  }
  down(service: string) {
    return this.record('down', service, [], () => this.inner.down(service));
  }
  once(service: string) {
    return this.record('once', service, [], () => this.inner.once(service));
  }
  signal(service: string, signal: ServiceSignal) {
    return this.record('signal', service, [signal], () => this.inner.signal(service, signal));
  }
  start(service: string, opts?: WaitOptions) {
    return this.record('start', service, opts ? [opts] : [], () => this.inner.start(service, opts));
  }
  stop(service: string, opts?: WaitOptions) {
    return this.record('stop', service, opts ? [opts] : [], () => this.inner.stop(service, opts));
  }
  restart(service: string, opts?: WaitOptions) {
    return this.record('restart', service, opts ? [opts] : [], () => this.inner.restart(service, opts));
  }
  exit(service: string, opts?: WaitOptions) {
    return this.record('exit', service, opts ? [opts] : [], () => this.inner.exit(service, opts));
  }
  wait(service: string, condition: WaitCondition, opts?: WaitOptions) {
    return this.record('wait', service, opts ? [condition, opts] : [condition], () => this.inner.wait(service, condition, opts));
  }
}

/** Fails every request with the same reason (default 'not-running'), for error paths. */
export class FailingServices implements ServiceControl {
  readonly reason: ServiceErrorReason;
  private readonly message: string;
  constructor(reason: ServiceErrorReason = 'not-running', message = reason === 'not-running' ? 'runsv not running' : reason) {
    this.reason = reason;
    this.message = message;
  }
  private fail(service: string): Promise<never> {
    return Promise.reject(new ServiceError(service, this.reason, this.message));
  }
  status(service: string) {
    return this.fail(service);
  }
  up(service: string) {
    return this.fail(service);
  }
  down(service: string) {
    return this.fail(service);
  }
  once(service: string) {
    return this.fail(service);
  }
  signal(service: string) {
    return this.fail(service);
  }
  start(service: string) {
    return this.fail(service);
  }
  stop(service: string) {
    return this.fail(service);
  }
  restart(service: string) {
    return this.fail(service);
  }
  exit(service: string) {
    return this.fail(service);
  }
  wait(service: string) {
    return this.fail(service);
  }
}
