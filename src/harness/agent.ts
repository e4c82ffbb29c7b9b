// The host's client of the guest agent (runit-ts agent, src/agent/): connects to the unix
// socket QEMU serves for the agent's virtio-serial port, opens a session (hello), and
// then runs commands, copies files, mounts 9p shares and collects the supervisor's
// events. Protocol: src/lib/agent-protocol.ts, shared with the guest.
import { connect, type Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import type { ServiceEvent } from '../lib/events.ts';
import { AgentProtocolError, CHUNK_BYTES, encodeFrame, FrameSplitter, MAX_FRAME_BYTES, parseReply, type AgentReply, type AgentRequest, type AgentRequestBody } from '../lib/agent-protocol.ts';

/** How often (ms) a connection to the agent's socket is tried again while QEMU has not made it. */
export const CONNECT_RETRY_MS = 20;
/** How often (ms) the hello is sent again until the agent answers (it may start, or restart, after the first). */
export const HELLO_RETRY_MS = 250;
/** Default wait (ms) for the agent to answer: a boot under TCG plus the agent's start. */
export const DEFAULT_AGENT_TIMEOUT_MS = 120_000;
/** Default wait (ms) of waitForEvent. */
const EVENT_TIMEOUT_MS = 30_000;

/** A request the agent refused or could not do (its message; code: the errno name when there is one), or a lost connection. */
export class AgentError extends Error {
  readonly code: string | undefined;
  constructor(message: string, code?: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'AgentError';
    this.code = code;
  }
}

/** Options of a command run in the guest (Machine.exec). */
export interface ExecOptions {
  /** Variables added to the agent's environment. */
  readonly env?: Readonly<Record<string, string>>;
  /** Working directory (absolute); default '/'. */
  readonly cwd?: string;
  /** The command's standard input (it gets end of file after it); default none (empty). */
  readonly stdin?: string | Uint8Array;
  /** ms after which the guest kills the command's process group (SIGKILL); the result has timedOut. Default: none. */
  readonly timeout?: number;
  /** Each piece of standard output, as it comes (the streaming form). */
  readonly onStdout?: (chunk: Buffer) => void;
  /** Each piece of standard error, as it comes. */
  readonly onStderr?: (chunk: Buffer) => void;
  /** Machine.exec: 'console' types the command on the console even when the machine has the agent. Default: the agent when there is one. */
  readonly via?: 'agent' | 'console';
}

/** How a command run in the guest ended, and its output. */
export interface ExecResult {
  /** Exit code; null when a signal ended it. */
  readonly code: number | null;
  /** The signal that ended it ('SIGKILL'), else null. */
  readonly signal: string | null;
  /** Standard output, decoded as UTF-8. */
  readonly stdout: string;
  /** Standard error, decoded as UTF-8. */
  readonly stderr: string;
  /** The timeout killed it. */
  readonly timedOut: boolean;
  /** ms from the request to the result. */
  readonly ms: number;
  /** How it ran: through the agent, or typed on the console (no agent: stdout/stderr still apart, signals seen as 128+n). */
  readonly via: 'agent' | 'console';
}

/** Waits for an agent event (AgentClient.waitForEvent). */
interface EventWaiter {
  readonly match: (e: ServiceEvent) => boolean;
  readonly resolve: (e: ServiceEvent) => void;
}

/** A pending request: gets its replies until it settles. */
type Handler = (reply: AgentReply) => void;

/**
 * A session with the guest agent over QEMU's chardev socket. Create with
 * AgentClient.connect(); the session subscribes to the supervisor's events at once (with
 * events: false, on its first waitForEvent).
 */
export class AgentClient {
  readonly #sock: Socket;
  readonly #splitter = new FrameSplitter();
  readonly #handlers = new Map<number, Handler>();
  readonly #events: ServiceEvent[] = [];
  readonly #eventWaiters = new Set<EventWaiter>();
  #nextId = 1;
  #closed: Error | undefined;
  #subscribed: Promise<void> | undefined;
  /** the guest agent's process id (from its hello) */
  pid = 0;

  private constructor(sock: Socket) {
    this.#sock = sock;
  }

  /**
   * Connects to the agent's socket (trying again while QEMU has not made it), says hello
   * until the agent answers, then subscribes to events (unless opts.events is false: the
   * guest then does no work for them). Rejects after opts.timeout ms (default
   * DEFAULT_AGENT_TIMEOUT_MS), or when opts.abort resolves (QEMU exited). opts.socket: a
   * connection to the socket made already (openSocket), used first.
   */
  static async connect(path: string, opts: { timeout?: number; abort?: Promise<unknown>; events?: boolean; socket?: Socket } = {}): Promise<AgentClient> {
    const timeout = opts.timeout ?? DEFAULT_AGENT_TIMEOUT_MS;
    const deadline = performance.now() + timeout;
    let gone = false;
    void opts.abort?.then(() => (gone = true));
    const fail = (why: string) => new AgentError(`guest agent on ${path}: ${why}`);
    let given = opts.socket;
    for (;;) {
      if (gone) throw fail('QEMU exited before the agent answered');
      if (performance.now() > deadline) throw fail(`no answer within ${timeout} ms (is the agent service in the image, and virtio_console loaded?)`);
      const sock = given ?? (await AgentClient.openSocket(path));
      given = undefined;
      if (sock === undefined) {
        await new Promise((r) => setTimeout(r, CONNECT_RETRY_MS));
        continue;
      }
      const client = new AgentClient(sock);
      if (await client.#hello(deadline, () => gone)) {
        if (opts.events !== false) await client.#subscribe();
        return client;
      }
      sock.destroy();
    }
  }

  /** One try at connecting to the agent's socket: the connection, or undefined when QEMU does not take it (yet). */
  static openSocket(path: string): Promise<Socket | undefined> {
    return new Promise<Socket | undefined>((resolve) => {
      const s = connect(path);
      s.once('connect', () => resolve(s));
      s.once('error', () => resolve(undefined));
    });
  }

  /** Says hello until the agent answers with the nonce (true), or the deadline passes or the socket closes (false). */
  async #hello(deadline: number, gone: () => boolean): Promise<boolean> {
    const nonce = randomBytes(8).toString('hex');
    let answered = false;
    const ok = new Promise<boolean>((resolve) => {
      const lines = (d: Buffer) => {
        for (const line of this.#splitter.push(d)) {
          if (typeof line !== 'string' || !line.includes(nonce)) continue;
          let reply: AgentReply;
          try {
            reply = parseReply(line);
          } catch {
            continue;
          }
          if (reply.type === 'hello' && reply.nonce === nonce) {
            answered = true;
            this.pid = reply.pid;
            this.#sock.off('data', lines);
            this.#sock.on('data', (more: Buffer) => this.#receive(more));
            resolve(true);
            return;
          }
        }
      };
      this.#sock.on('data', lines);
      this.#sock.once('close', () => resolve(false));
      this.#sock.on('error', () => undefined);
    });
    this.#sock.once('close', () => this.#lost(new AgentError('connection to the guest agent closed (QEMU exited?)')));
    // until the hello is answered, what comes is dropped: leftovers of an earlier session
    while (!answered) {
      if (gone() || performance.now() > deadline) return false;
      this.#sock.write(encodeFrame({ v: 1, id: this.#nextId++, op: 'hello', nonce }));
      const r = await Promise.race([ok, new Promise<undefined>((res) => setTimeout(() => res(undefined), HELLO_RETRY_MS))]);
      if (r === false) return false;
    }
    return true;
  }

  /** Frames of the session: each reply goes to its request, events to the list. */
  #receive(data: Buffer): void {
    for (const item of this.#splitter.push(data)) {
      if (item instanceof AgentProtocolError) {
        this.#lost(new AgentError(`the guest agent sent a bad frame: ${item.message}`, 'EPROTO'));
        return;
      }
      if (item.trim() === '') continue;
      let reply: AgentReply;
      try {
        reply = parseReply(item);
      } catch (e) {
        this.#lost(new AgentError(`the guest agent sent a bad frame: ${(e as Error).message}`, 'EPROTO'));
        return;
      }
      if (reply.type === 'event') {
        this.#events.push(reply.event);
        for (const w of [...this.#eventWaiters]) {
          if (w.match(reply.event)) {
            this.#eventWaiters.delete(w);
            w.resolve(reply.event);
          }
        }
        continue;
      }
      if (reply.type === 'error' && reply.id === 0) {
        this.#lost(new AgentError(`the guest agent refused a frame: ${reply.message}`, reply.code));
        return;
      }
      // replies to hellos sent again before the first answer came have no handler: dropped
      this.#handlers.get(reply.id)?.(reply);
    }
  }

  /** The session is over: every pending request fails with why. */
  #lost(why: Error): void {
    if (this.#closed !== undefined) return;
    this.#closed = why;
    for (const h of [...this.#handlers.values()]) h({ v: 1, id: 0, type: 'error', message: why.message, ...(why instanceof AgentError && why.code ? { code: why.code } : {}) });
    this.#handlers.clear();
    this.#sock.destroy();
  }

  /** Sends a request; onReply gets its replies until it returns true (settled). */
  #request(req: AgentRequestBody, onReply: (reply: AgentReply) => boolean): void {
    if (this.#closed !== undefined) throw this.#closed;
    const id = this.#nextId++;
    const frame = encodeFrame({ v: 1, id, ...req } as AgentRequest);
    this.#handlers.set(id, (reply) => {
      if (onReply(reply)) this.#handlers.delete(id);
    });
    this.#sock.write(frame);
  }

  /** A request answered by one `done` (resolves with its size) or an error. */
  #simple(req: AgentRequestBody, what: string): Promise<number | undefined> {
    return new Promise((resolve, reject) => {
      this.#request(req, (r) => {
        if (r.type === 'done') resolve(r.size);
        else if (r.type === 'error') reject(new AgentError(`${what}: ${r.message}`, r.code));
        else return false;
        return true;
      });
    });
  }

  /** Asks the agent for the supervisor's events for the rest of the session (once). */
  #subscribe(): Promise<void> {
    this.#subscribed ??= this.#simple({ op: 'subscribe' }, 'subscribe to events').then(() => undefined);
    return this.#subscribed;
  }

  /** Runs argv in the guest (no shell): exit code or signal, stdout and stderr apart, streamed to the callbacks as they come. */
  exec(argv: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
    const t0 = performance.now();
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    const stdin = opts.stdin === undefined ? undefined : Buffer.from(typeof opts.stdin === 'string' ? Buffer.from(opts.stdin) : opts.stdin).toString('base64');
    if (stdin !== undefined && stdin.length > MAX_FRAME_BYTES - 4096) {
      return Promise.reject(new AgentError(`exec ${JSON.stringify(argv)}: stdin of ${Buffer.byteLength(stdin, 'base64')} bytes is too large for one frame (write a file with copyIn and redirect it)`));
    }
    return new Promise((resolve, reject) => {
      this.#request(
        {
          op: 'exec',
          argv: [...argv],
          ...(opts.env ? { env: { ...opts.env } } : {}),
          ...(opts.cwd !== undefined ? { cwd: opts.cwd } : {}),
          ...(stdin !== undefined ? { stdin } : {}),
          ...(opts.timeout !== undefined ? { timeoutMs: opts.timeout } : {}),
        },
        (r) => {
          if (r.type === 'output') {
            const chunk = Buffer.from(r.data, 'base64');
            (r.stream === 'stdout' ? out : err).push(chunk);
            try {
              (r.stream === 'stdout' ? opts.onStdout : opts.onStderr)?.(chunk);
            } catch {
              // a failing callback must not break the session
            }
            return false;
          }
          if (r.type === 'exit') {
            resolve({
              code: r.code,
              signal: r.signal,
              stdout: Buffer.concat(out).toString('utf8'),
              stderr: Buffer.concat(err).toString('utf8'),
              timedOut: r.timedOut,
              ms: performance.now() - t0,
              via: 'agent',
            });
            return true;
          }
          if (r.type === 'error') {
            reject(new AgentError(`exec ${JSON.stringify(argv)}: ${r.message}`, r.code));
            return true;
          }
          return false;
        },
      );
    });
  }

  /** Writes data to a guest file (made with its directories; mode applied when given), in CHUNK_BYTES pieces. */
  async writeFile(path: string, data: Uint8Array, opts: { mode?: number } = {}): Promise<void> {
    const buf = Buffer.from(data);
    let o = 0;
    do {
      const piece = buf.subarray(o, o + CHUNK_BYTES);
      await this.#simple({ op: 'write', path, data: piece.toString('base64'), append: o > 0, ...(opts.mode !== undefined ? { mode: opts.mode } : {}) }, `write ${path}`);
      o += CHUNK_BYTES;
    } while (o < buf.length);
  }

  /** Reads a guest file whole. */
  readFile(path: string): Promise<Buffer> {
    const parts: Buffer[] = [];
    return new Promise((resolve, reject) => {
      this.#request({ op: 'read', path }, (r) => {
        if (r.type === 'data') {
          parts.push(Buffer.from(r.data, 'base64'));
          return false;
        }
        if (r.type === 'done') resolve(Buffer.concat(parts));
        else if (r.type === 'error') reject(new AgentError(`read ${path}: ${r.message}`, r.code));
        else return false;
        return true;
      });
    });
  }

  /** Mounts the 9p share tag at the guest's path (made if missing). */
  async mount(tag: string, path: string, opts: { readOnly?: boolean } = {}): Promise<void> {
    await this.#simple({ op: 'mount', tag, path, ...(opts.readOnly !== undefined ? { readOnly: opts.readOnly } : {}) }, `mount ${tag} on ${path}`);
  }

  /** Unmounts the guest's path. */
  async umount(path: string): Promise<void> {
    await this.#simple({ op: 'umount', path }, `umount ${path}`);
  }

  /** The supervisor's events received so far (the backlog first, marked replay). */
  get events(): readonly ServiceEvent[] {
    return this.#events;
  }

  /**
   * Waits for an event matching match (one received already counts when opts.past is
   * true; default only events from now on). Rejects after opts.timeout ms (default EVENT_TIMEOUT_MS, 30 s).
   * A session opened without events (connect's events: false) subscribes now.
   */
  waitForEvent(match: (e: ServiceEvent) => boolean, opts: { timeout?: number; past?: boolean } = {}): Promise<ServiceEvent> {
    if (opts.past === true) {
      const seen = this.#events.find(match);
      if (seen !== undefined) return Promise.resolve(seen);
    }
    const timeout = opts.timeout ?? EVENT_TIMEOUT_MS;
    return new Promise((resolve, reject) => {
      const w: EventWaiter = {
        match,
        resolve: (e) => {
          clearTimeout(timer);
          resolve(e);
        },
      };
      const timer = setTimeout(() => {
        this.#eventWaiters.delete(w);
        reject(new AgentError(`no matching agent event within ${timeout} ms (last: ${JSON.stringify(this.#events.slice(-3))})`));
      }, timeout);
      this.#eventWaiters.add(w);
      this.#subscribe().catch((e: unknown) => {
        clearTimeout(timer);
        this.#eventWaiters.delete(w);
        reject(e as Error);
      });
    });
  }

  /** Ends the session (the agent kills what it still runs for it). */
  close(): void {
    this.#lost(new AgentError('agent session closed'));
  }
}
