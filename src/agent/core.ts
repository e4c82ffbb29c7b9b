// The guest agent: serves the host's requests (src/lib/agent-protocol.ts) on a virtio-serial
// port. It runs commands with separate, streamed stdout and stderr and their exit code or
// signal, copies files both ways, mounts 9p shares, and forwards the supervisor's events.
// Nothing like it is in runit: it stands in for qemu-guest-agent in the harness image.
//
// The port (a character device) is used non-blocking: a read gives 0 while no host is
// connected (QEMU's socket has no client, e.g. after a snapshot was restored and before
// the host reconnected), EAGAIN while one is connected and has sent nothing; a write
// gives EAGAIN while no host is connected or the queue to QEMU is full. So the agent
// watches the port while a host is there and polls it while none is, and it never blocks.
import { closeSync, constants as C, createReadStream, mkdirSync, openSync, readdirSync, readFileSync, readSync, write, writeSync } from 'node:fs';
import { constants } from 'node:os';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { SupervisedServices } from '../control/client.ts';
import { MS_RDONLY, native, readPipe, type FdWatch, type Native } from '../lib/native.ts';
import { type ChildEnd, spawnWatched } from '../runsv/children.ts';
import { AgentProtocolError, CHUNK_BYTES, encodeFrame, FrameSplitter, parseRequest, type AgentReply, type AgentRequest } from '../lib/agent-protocol.ts';

/** Where the kernel lists virtio-serial ports (vportNpM/name holds the port's name). */
export const VIRTIO_PORTS_DIR = '/sys/class/virtio-ports';
/** How often (ms) the port is tried while no host is connected. */
export const RECONNECT_POLL_MS = 20;
/** How long (ms) a write waits before trying again when the queue to QEMU is full. */
export const WRITE_RETRY_MS = 2;
/** How long (ms) the events subscription waits before connecting again to a supervisor that is not there. */
export const EVENTS_RETRY_MS = 500;
/** 9p's message size (bytes): larger than the kernel's 8 KiB default, for faster copies. */
export const NINEP_MSIZE = 262144;
/** What runs a command file that is neither a "#!" script nor a binary (execvp's fallback). */
const SHELL = '/bin/sh';
/** The commands' PATH when the agent's environment has none. */
export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** The device of the virtio-serial port called name (/dev/vportNpM), or undefined when there is none (yet). */
export function findPort(name: string, sysDir = VIRTIO_PORTS_DIR, devDir = '/dev'): string | undefined {
  let entries: string[];
  try {
    entries = readdirSync(sysDir);
  } catch {
    return undefined;
  }
  for (const e of entries.sort()) {
    try {
      if (readFileSync(join(sysDir, e, 'name'), 'utf8').trim() === name) return join(devDir, e);
    } catch {
      // a port being set up: its name is not there yet
    }
  }
  return undefined;
}

/** What the agent core needs of its connection to the host. */
export interface AgentTransport {
  /** Queue bytes for the host (dropped when the host goes away before they are written). */
  write(data: Buffer): void;
}

/** A port the agent serves: a virtio-serial device, read non-blocking, reopened as hosts come and go. */
export class PortTransport implements AgentTransport {
  readonly path: string;
  readonly #fd: number;
  #watch: FdWatch | undefined;
  #poll: NodeJS.Timeout | undefined;
  #probeBuf: Buffer | undefined;
  #out: Buffer[] = [];
  #retry: NodeJS.Timeout | undefined;
  #connected = false;
  readonly #onData: (data: Buffer) => void;
  readonly #onConnect: () => void;
  readonly #onDisconnect: () => void;

  /** Opens path; the callbacks get the host's bytes, and each host's arrival and departure. */
  constructor(path: string, cb: { onData: (data: Buffer) => void; onConnect: () => void; onDisconnect: () => void }) {
    this.path = path;
    this.#onData = cb.onData;
    this.#onConnect = cb.onConnect;
    this.#onDisconnect = cb.onDisconnect;
    this.#fd = openSync(path, C.O_RDWR | C.O_NONBLOCK);
    this.#probe();
  }

  /** Tries a read: data or EAGAIN mean a host is there (watch it), 0 means none is (try again soon). */
  #probe(): void {
    this.#poll = undefined;
    // one buffer for every probe: a fresh one each time would be garbage every RECONNECT_POLL_MS,
    // and V8's collections of it would keep an idle guest busy between hosts
    const buf = (this.#probeBuf ??= Buffer.allocUnsafe(CHUNK_BYTES));
    let n: number;
    try {
      n = readSync(this.#fd, buf, 0, buf.length, null);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'EAGAIN' && code !== 'EWOULDBLOCK') throw e;
      n = -1;
    }
    if (n === 0) {
      this.#poll = setTimeout(() => this.#probe(), RECONNECT_POLL_MS);
      return;
    }
    this.#setConnected(true);
    if (n > 0) this.#onData(Buffer.from(buf.subarray(0, n)));
    this.#watch = native().watchFd(this.#fd, (data, err) => {
      if (data !== null) return this.#onData(data);
      // end of file: the host closed its end; a read error would repeat, so it is told and polled alike
      if (err) process.stderr.write(`agent: reading ${this.path}: ${err.message}\n`);
      this.#watch = undefined;
      this.#setConnected(false);
      this.#poll = setTimeout(() => this.#probe(), RECONNECT_POLL_MS);
    });
  }

  /** Tells the core when a host comes or goes; what was queued for a host that went is dropped. */
  #setConnected(on: boolean): void {
    if (on === this.#connected) return;
    this.#connected = on;
    if (!on) {
      this.#out = [];
      clearTimeout(this.#retry);
      this.#retry = undefined;
      this.#onDisconnect();
    } else {
      this.#onConnect();
    }
  }

  /** Queues bytes for the host and writes what the port takes now; nothing while no host is connected. */
  write(data: Buffer): void {
    if (!this.#connected) return;
    this.#out.push(data);
    if (this.#retry === undefined && this.#out.length === 1) this.#flush();
  }

  /** Writes what is queued until the port would block; then tries again a little later. */
  #flush(): void {
    this.#retry = undefined;
    while (this.#out.length > 0) {
      const head = this.#out[0]!;
      let n: number;
      try {
        n = writeSync(this.#fd, head);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code !== 'EAGAIN' && code !== 'EWOULDBLOCK') {
          process.stderr.write(`agent: writing ${this.path}: ${(e as Error).message}\n`);
          this.#out = [];
          return;
        }
        this.#retry = setTimeout(() => this.#flush(), WRITE_RETRY_MS);
        return;
      }
      if (n >= head.length) this.#out.shift();
      else this.#out[0] = head.subarray(n);
    }
  }

  /** Stops reading and closes the port. */
  close(): void {
    clearTimeout(this.#poll);
    clearTimeout(this.#retry);
    this.#watch?.close();
    closeSync(this.#fd);
  }
}

/** What an Agent is given. */
export interface AgentOptions {
  /** the supervisor's scan directory, whose events are forwarded (default /etc/service) */
  readonly scanDir?: string;
}

/** One running command: its process (the leader of its group) and whether its timeout killed it. */
interface Running {
  readonly pid: number;
  timedOut: boolean;
}

/** The agent's requests and replies over one transport, session by session (a session is one host connection). */
export class Agent {
  readonly #transport: AgentTransport;
  readonly #splitter = new FrameSplitter();
  readonly #scanDir: string;
  readonly #running = new Map<number, Running>();
  // the commands' environment when a request gives none: the agent's own (nothing in the
  // agent changes it), made once, not spread, listed and joined again for every command
  readonly #env = commandEnv({ ...process.env, PATH: process.env['PATH'] ?? DEFAULT_PATH });
  #events: AbortController | undefined;
  // the nonce of the current session's hello
  #nonce: string | undefined;

  constructor(transport: AgentTransport, opts: AgentOptions = {}) {
    this.#transport = transport;
    this.#scanDir = opts.scanDir ?? '/etc/service';
  }

  /** Bytes from the host: each complete frame is served. */
  receive(data: Buffer): void {
    for (const item of this.#splitter.push(data)) {
      if (item instanceof AgentProtocolError) this.#send({ v: 1, id: 0, type: 'error', message: item.message, code: 'EPROTO' });
      else if (item.trim() !== '') this.#serve(item);
    }
  }

  /** The host went away: its commands are killed, its subscription ended, its partial frame forgotten. */
  endSession(): void {
    this.#splitter.reset();
    this.#endWork();
  }

  /** What a session started ends with it: its commands are killed, its subscription ended. */
  #endWork(): void {
    this.#nonce = undefined;
    this.#events?.abort();
    this.#events = undefined;
    for (const r of this.#running.values()) killGroup(r.pid);
    this.#running.clear();
  }

  /** One reply to the host, framed. */
  #send(reply: AgentReply): void {
    this.#transport.write(encodeFrame(reply));
  }

  /** A failed request's error reply: the message, and the errno name when there is one. */
  #fail(id: number, e: unknown): void {
    const err = e as NodeJS.ErrnoException;
    this.#send({ v: 1, id, type: 'error', message: err.message ?? String(e), ...(typeof err.code === 'string' ? { code: err.code } : {}) });
  }

  /** One frame: checked, then dispatched; a bad one is answered with an error naming what was wrong. */
  #serve(line: string): void {
    let req: AgentRequest;
    try {
      req = parseRequest(line);
    } catch (e) {
      const id = e instanceof AgentProtocolError ? e.id : 0;
      this.#send({ v: 1, id, type: 'error', message: (e as Error).message, code: 'EPROTO' });
      return;
    }
    const done = (p: Promise<void>) => p.catch((e: unknown) => this.#fail(req.id, e));
    switch (req.op) {
      case 'hello':
        // another nonce is another host, come while the session before still stood (a machine
        // restored with its host end connected before it ran again sees no host leave): that
        // session's work ends, as if its host had gone (a hello sent again keeps its nonce)
        if (this.#nonce !== undefined && this.#nonce !== req.nonce && (this.#events !== undefined || this.#running.size > 0)) this.#endWork();
        this.#nonce = req.nonce;
        // a newline first: whatever an earlier connection left half-written ends there
        this.#transport.write(Buffer.from('\n'));
        this.#send({ v: 1, id: req.id, type: 'hello', nonce: req.nonce, pid: process.pid });
        return;
      case 'exec':
        return this.#exec(req);
      case 'write':
        return void done(this.#write(req));
      case 'read':
        return void done(this.#read(req));
      case 'mount':
        return void done(Promise.resolve().then(() => this.#mount(req)));
      case 'umount':
        return void done(Promise.resolve().then(() => {
          native().umount(req.path, 0);
          this.#send({ v: 1, id: req.id, type: 'done' });
        }));
      case 'subscribe':
        this.#subscribe();
        this.#send({ v: 1, id: req.id, type: 'done' });
        return;
    }
  }

  /**
   * Runs argv (no shell) in a session and process group of its own, streaming its output,
   * then its exit once it has ended and closed its output. Started with the addon's spawn
   * (clone with CLONE_VM|CLONE_VFORK, as the supervisor starts services), not Node's: no copy
   * of the agent's memory map for a child that execs at once, and far less code on the way,
   * which is what a restored machine's first command costs under TCG (all of it translated
   * again). stdin: a pipe fed with the request's bytes, else /dev/null.
   */
  #exec(req: Extract<AgentRequest, { op: 'exec' }>): void {
    const { id } = req;
    const [file, ...args] = req.argv;
    const env = req.env === undefined ? this.#env : commandEnv({ ...this.#env.vars, ...req.env });
    const cwd = req.cwd ?? '/';
    let run: Running;
    let finished = false;
    let timer: NodeJS.Timeout | undefined;
    // the exit, once the process has ended and both of its outputs are at their end
    let ended: ChildEnd | undefined;
    let open = 2;
    const finish = (reply: AgentReply) => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      // a command of a session that has ended is not answered
      if (this.#running.get(id) !== run) return;
      this.#running.delete(id);
      this.#send(reply);
    };
    const maybeDone = () => {
      if (ended !== undefined && open === 0) finish({ v: 1, id, type: 'exit', code: ended.sig === 0 ? ended.code : null, signal: ended.sig === 0 ? null : signalName(ended.sig), timedOut: run.timedOut });
    };
    let child: StartedCommand;
    try {
      child = startCommand(file!, args, env, cwd, req.stdin !== undefined ? Buffer.from(req.stdin, 'base64') : undefined, (end) => {
        ended = end;
        maybeDone();
      });
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      // Node's spawn() error, as the agent has always reported it
      if (typeof err.code === 'string' && err.syscall !== 'fork') return this.#fail(id, Object.assign(new Error(`${JSON.stringify(file)}: spawn ${file} ${err.code}`), { code: err.code }));
      return this.#fail(id, e);
    }
    run = { pid: child.pid, timedOut: false };
    this.#running.set(id, run);
    if (req.timeoutMs !== undefined) {
      timer = setTimeout(() => {
        run.timedOut = true;
        killGroup(child.pid);
      }, req.timeoutMs);
    }
    for (const [stream, fd] of [['stdout', child.stdout], ['stderr', child.stderr]] as const) {
      const watch = readPipe(fd, (d) => {
        if (d === null) {
          watch.close();
          open--;
          return maybeDone();
        }
        if (this.#running.get(id) !== run) return;
        for (let o = 0; o < d.length; o += CHUNK_BYTES) this.#send({ v: 1, id, type: 'output', stream, data: d.subarray(o, o + CHUNK_BYTES).toString('base64') });
      });
    }
  }

  /** Writes (or appends to) a file, making its directory. */
  async #write(req: Extract<AgentRequest, { op: 'write' }>): Promise<void> {
    await mkdir(dirname(req.path), { recursive: true });
    const data = Buffer.from(req.data, 'base64');
    await writeFile(req.path, data, { flag: req.append === true ? 'a' : 'w', ...(req.mode !== undefined ? { mode: req.mode } : {}) });
    if (req.mode !== undefined) await chmod(req.path, req.mode);
    this.#send({ v: 1, id: req.id, type: 'done', size: data.length });
  }

  /** Streams a file to the host in CHUNK_BYTES pieces. */
  async #read(req: Extract<AgentRequest, { op: 'read' }>): Promise<void> {
    let size = 0;
    for await (const chunk of createReadStream(req.path, { highWaterMark: CHUNK_BYTES })) {
      size += (chunk as Buffer).length;
      this.#send({ v: 1, id: req.id, type: 'data', data: (chunk as Buffer).toString('base64') });
    }
    this.#send({ v: 1, id: req.id, type: 'done', size });
  }

  /** Mounts the 9p share tag at path (virtio transport, 9P2000.L), read-only on request. */
  #mount(req: Extract<AgentRequest, { op: 'mount' }>): void {
    mkdirSync(req.path, { recursive: true });
    try {
      native().mount(req.tag, req.path, '9p', req.readOnly === true ? MS_RDONLY : 0, `trans=virtio,version=9p2000.L,msize=${NINEP_MSIZE}`);
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      // ENOENT from mount(2) here: QEMU exports no share of that tag
      throw Object.assign(new Error(`mount of 9p share ${JSON.stringify(req.tag)} on ${req.path}: ${err.message}${err.code === 'ENOENT' ? ' (no share with that tag?)' : ''}`), { code: err.code });
    }
    this.#send({ v: 1, id: req.id, type: 'done' });
  }

  /** Forwards the supervisor's events for the rest of the session, reconnecting while it is not there. */
  #subscribe(): void {
    if (this.#events !== undefined) return;
    const ctl = new AbortController();
    this.#events = ctl;
    const services = new SupervisedServices({ scanDir: this.#scanDir });
    void (async () => {
      while (!ctl.signal.aborted) {
        try {
          for await (const event of services.events({ signal: ctl.signal })) this.#send({ v: 1, id: 0, type: 'event', event });
        } catch (e) {
          if (!ctl.signal.aborted) process.stderr.write(`agent: events of ${this.#scanDir}: ${(e as Error).message}\n`);
        }
        if (!ctl.signal.aborted) await new Promise((r) => setTimeout(r, EVENTS_RETRY_MS));
      }
    })();
  }
}

/**
 * SIGKILL a command's process group (it was started as a group leader), so what it
 * started dies too (and lets go of its output pipes); the command alone if that fails.
 */
function killGroup(pid: number): void {
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone already
    }
  }
}

/** A command's environment: its variables, and the same as execve's NAME=value strings. */
interface CommandEnv {
  readonly vars: Readonly<Record<string, string | undefined>>;
  readonly envp: string[];
}

/** The CommandEnv of vars (undefined values are left out, as Node's spawn leaves them). */
function commandEnv(vars: Record<string, string | undefined>): CommandEnv {
  return { vars, envp: Object.entries(vars).flatMap(([k, v]) => (v === undefined ? [] : [`${k}=${v}`])) };
}

/** A command startCommand started: its pid, and the read ends of its stdout and stderr. */
interface StartedCommand {
  readonly pid: number;
  readonly stdout: number;
  readonly stderr: number;
}

/**
 * Starts file (looked up in PATH as execvp does) with args in a session of its own, its
 * stdout and stderr on pipes, its stdin fed with `stdin` (else /dev/null); onEnd gets its
 * end once it is reaped. A file that is neither a script with "#!" nor a binary is run by
 * /bin/sh, as execvp (and Node's spawn) run it. Throws the start's errno error.
 */
function startCommand(file: string, args: string[], env: CommandEnv, cwd: string, stdin: Buffer | undefined, onEnd: (end: ChildEnd) => void): StartedCommand {
  const path = findCommand(file, env.vars['PATH'] ?? '', cwd);
  const envp = env.envp;
  const out = native().pipe();
  const err = native().pipe();
  let inp: [number, number] | undefined;
  let pid: number;
  try {
    inp = stdin !== undefined ? native().pipe() : undefined;
    const fds = [inp?.[0] ?? -1, out[1], err[1]];
    try {
      pid = spawnWatched(path, [file, ...args], envp, cwd, fds, true, onEnd);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOEXEC') throw e;
      pid = spawnWatched(SHELL, [SHELL, path, ...args], envp, cwd, fds, true, onEnd);
    }
  } catch (e) {
    for (const fd of [out[0], err[0], inp?.[1]]) if (fd !== undefined) closeQuietly(fd);
    throw e;
  } finally {
    // the child's ends: it has its own copies now
    for (const fd of [out[1], err[1], inp?.[0]]) if (fd !== undefined) closeQuietly(fd);
  }
  if (inp !== undefined) feed(inp[1], stdin!);
  return { pid, stdout: out[0], stderr: err[0] };
}

/**
 * The path execve is given for file: file itself when it has a slash, else the first
 * executable regular file of that name in PATH's directories (an empty one is the working
 * directory, relative ones are taken from cwd as the child's execve would). Throws ENOENT
 * when there is none, EACCES when one is there but cannot be run (execvp's answers).
 */
export function findCommand(file: string, path: string, cwd: string): string {
  if (file.includes('/')) return file;
  let denied = false;
  if (file !== '') {
    for (const dir of path.split(':')) {
      const candidate = join(dir === '' ? '.' : dir, file);
      const abs = resolve(cwd, candidate);
      let st: ReturnType<Native['stat']>;
      try {
        st = native().stat(abs);
      } catch {
        continue; // ENOTDIR, ELOOP...: execvp goes on to the next directory too
      }
      if (st === null) continue;
      if ((st[0] & C.S_IFMT) === C.S_IFREG && native().access(abs, C.X_OK)) return candidate.startsWith('/') ? candidate : abs;
      denied = true;
    }
  }
  const code = denied ? 'EACCES' : 'ENOENT';
  throw Object.assign(new Error(`spawn ${file} ${code}`), { code, syscall: 'spawn' });
}

/** Writes data to fd (a pipe's write end) without blocking the agent, then closes it; a reader that went away ends it early. */
function feed(fd: number, data: Buffer): void {
  const step = (off: number): void => {
    if (off >= data.length) return closeQuietly(fd);
    write(fd, data, off, data.length - off, null, (e, n) => (e ? closeQuietly(fd) : step(off + n)));
  };
  step(0);
}

/** close(fd), whatever it says. */
function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // closed already
  }
}

/** The name of signal number n ('SIGKILL'), as Node's child processes report it. */
function signalName(n: number): string {
  return Object.entries(constants.signals).find(([, v]) => v === n)?.[0] ?? `SIG${n}`;
}
