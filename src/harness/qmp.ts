// A small QMP (QEMU Machine Protocol) client over a unix socket.

import { connect, type Socket } from 'node:net';

/** The `error` member of a QMP error reply. */
export interface QmpErrorBody {
  /** QMP error class, e.g. 'GenericError', 'CommandNotFound'. */
  readonly class: string;
  /** Human-readable description from QEMU. */
  readonly desc: string;
}

/** An asynchronous QMP event from QEMU (SHUTDOWN, RESET, STOP, ...). */
export interface QmpEvent {
  /** Event name, e.g. 'SHUTDOWN'. */
  readonly event: string;
  /** Event-specific data, e.g. { guest, reason } for SHUTDOWN. */
  readonly data?: Record<string, unknown>;
  /** QEMU's host clock when it emitted the event. */
  readonly timestamp?: { readonly seconds: number; readonly microseconds: number };
  /** performance.now() when the harness received it. */
  readonly receivedAt: number;
}

/**
 * One QMP line, classified by parseQmpMessage: the server greeting, a command's return or
 * error reply (with the id it was sent with), an event, or an invalid line with the reason.
 */
export type QmpMessage =
  | { readonly kind: 'greeting'; readonly greeting: Record<string, unknown> }
  | { readonly kind: 'return'; readonly id?: unknown; readonly value: unknown }
  | { readonly kind: 'error'; readonly id?: unknown; readonly error: QmpErrorBody }
  | { readonly kind: 'event'; readonly event: QmpEvent }
  | { readonly kind: 'invalid'; readonly line: string; readonly problem: string };

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Classifies one QMP line (a JSON object). Never throws. */
export function parseQmpMessage(line: string, receivedAt = performance.now()): QmpMessage {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch (e) {
    return { kind: 'invalid', line, problem: `not JSON: ${(e as Error).message}` };
  }
  if (!isObject(v)) return { kind: 'invalid', line, problem: 'not a JSON object' };
  if ('QMP' in v) return { kind: 'greeting', greeting: v };
  if ('return' in v) return { kind: 'return', id: v['id'], value: v['return'] };
  if ('error' in v) {
    const err = isObject(v['error']) ? v['error'] : {};
    const cls = typeof err['class'] === 'string' ? err['class'] : 'GenericError';
    const desc = typeof err['desc'] === 'string' ? err['desc'] : JSON.stringify(v['error']);
    return { kind: 'error', id: v['id'], error: { class: cls, desc } };
  }
  if (typeof v['event'] === 'string') {
    const ev: { event: string; data?: Record<string, unknown>; timestamp?: { seconds: number; microseconds: number }; receivedAt: number } = {
      event: v['event'],
      receivedAt,
    };
    if (isObject(v['data'])) ev.data = v['data'];
    const ts = v['timestamp'];
    if (isObject(ts) && typeof ts['seconds'] === 'number' && typeof ts['microseconds'] === 'number') {
      ev.timestamp = { seconds: ts['seconds'], microseconds: ts['microseconds'] };
    }
    return { kind: 'event', event: ev };
  }
  return { kind: 'invalid', line, problem: 'unknown QMP message' };
}

/** Splits a QMP byte stream (CRLF-terminated JSON objects) into messages; keeps partial lines between pushes. */
export class QmpParser {
  #partial = '';

  push(chunk: string, receivedAt = performance.now()): QmpMessage[] {
    const text = this.#partial + chunk;
    const lines = text.split('\n');
    this.#partial = lines.pop() ?? '';
    const out: QmpMessage[] = [];
    for (const raw of lines) {
      const line = raw.trim();
      if (line !== '') out.push(parseQmpMessage(line, receivedAt));
    }
    return out;
  }

  /** Text received after the last newline. */
  get pending(): string {
    return this.#partial;
  }
}

/** Rejection of a QMP command that QEMU answered with an error reply. */
export class QmpError extends Error {
  /** QMP error class, e.g. 'GenericError'. */
  readonly class: string;
  /** The command that failed. */
  readonly command: string;
  constructor(command: string, body: QmpErrorBody) {
    super(`QMP ${command} failed: ${body.class}: ${body.desc}`);
    this.name = 'QmpError';
    this.class = body.class;
    this.command = command;
  }
}

/** Options of waitForEvent (QmpClient and Machine). */
export interface QmpWaitOptions {
  /** ms; default 30000. */
  readonly timeout?: number;
  /** Only events with index >= from in `events` count (default: events from now on). */
  readonly from?: number;
}

interface Pending {
  readonly command: string;
  readonly resolve: (v: unknown) => void;
  readonly reject: (e: Error) => void;
  readonly timer: NodeJS.Timeout | undefined;
}

/**
 * A QMP client on QEMU's unix socket: connect() negotiates capabilities; then execute()
 * runs commands, and events are recorded in `events` and can be awaited with waitForEvent().
 */
export class QmpClient {
  readonly #socket: Socket;
  readonly #parser = new QmpParser();
  readonly #pending = new Map<number, Pending>();
  readonly #listeners = new Set<(e: QmpEvent) => void>();
  #nextId = 1;
  #closedError: Error | undefined;
  #greeting: Record<string, unknown> | undefined;
  #onGreeting: ((g: Record<string, unknown>) => void) | undefined;
  /** Every event received so far, in order. */
  readonly events: QmpEvent[] = [];
  /** Resolves when the connection has closed (QEMU exited or close() was called). */
  readonly closed: Promise<void>;

  private constructor(socket: Socket) {
    this.#socket = socket;
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => this.#onData(chunk));
    this.closed = new Promise((resolve) => {
      socket.once('close', () => {
        this.#fail(this.#closedError ?? new Error('QMP connection closed (QEMU exited?)'));
        resolve();
      });
    });
    socket.on('error', (e) => {
      this.#closedError ??= new Error(`QMP connection error: ${e.message}`);
    });
  }

  /** Connects to a QMP unix socket, reads the greeting and negotiates capabilities. */
  static async connect(path: string, opts: { timeout?: number } = {}): Promise<QmpClient> {
    const timeout = opts.timeout ?? 10000;
    const socket = connect(path);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error(`QMP: no connection to ${path} within ${timeout} ms`));
      }, timeout);
      socket.once('connect', () => {
        clearTimeout(timer);
        resolve();
      });
      socket.once('error', (e) => {
        clearTimeout(timer);
        reject(new Error(`QMP: cannot connect to ${path}: ${e.message}`));
      });
    });
    const client = new QmpClient(socket);
    try {
      await client.#waitGreeting(timeout);
      await client.execute('qmp_capabilities', undefined, { timeout });
    } catch (e) {
      client.close();
      throw e;
    }
    return client;
  }

  get greeting(): Record<string, unknown> | undefined {
    return this.#greeting;
  }

  #waitGreeting(timeout: number): Promise<Record<string, unknown>> {
    if (this.#greeting !== undefined) return Promise.resolve(this.#greeting);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`QMP: no greeting within ${timeout} ms`)), timeout);
      this.#onGreeting = (g) => {
        clearTimeout(timer);
        resolve(g);
      };
      void this.closed.then(() => {
        clearTimeout(timer);
        reject(new Error('QMP: connection closed before the greeting'));
      });
    });
  }

  #onData(chunk: string): void {
    const now = performance.now();
    for (const msg of this.#parser.push(chunk, now)) {
      switch (msg.kind) {
        case 'greeting':
          this.#greeting = msg.greeting;
          this.#onGreeting?.(msg.greeting);
          break;
        case 'event':
          this.events.push(msg.event);
          for (const l of [...this.#listeners]) l(msg.event);
          break;
        case 'return':
        case 'error': {
          const id = typeof msg.id === 'number' ? msg.id : undefined;
          const p = id === undefined ? undefined : this.#pending.get(id);
          if (p === undefined || id === undefined) break;
          this.#pending.delete(id);
          if (p.timer !== undefined) clearTimeout(p.timer);
          if (msg.kind === 'return') p.resolve(msg.value);
          else p.reject(new QmpError(p.command, msg.error));
          break;
        }
        case 'invalid':
          break;
      }
    }
  }

  #fail(e: Error): void {
    for (const [id, p] of this.#pending) {
      this.#pending.delete(id);
      if (p.timer !== undefined) clearTimeout(p.timer);
      p.reject(new Error(`QMP ${p.command}: ${e.message}`));
    }
  }

  /** Runs a QMP command and resolves with its `return` value (rejects with QmpError on an `error` reply). */
  execute<T = unknown>(command: string, args?: Record<string, unknown>, opts: { timeout?: number } = {}): Promise<T> {
    if (this.#socket.destroyed || !this.#socket.writable) {
      return Promise.reject(new Error(`QMP ${command}: ${this.#closedError?.message ?? 'connection closed'}`));
    }
    const id = this.#nextId++;
    const timeout = opts.timeout ?? 30000;
    return new Promise<T>((resolve, reject) => {
      const timer =
        timeout > 0
          ? setTimeout(() => {
              this.#pending.delete(id);
              reject(new Error(`QMP ${command}: no reply within ${timeout} ms`));
            }, timeout)
          : undefined;
      this.#pending.set(id, { command, resolve: resolve as (v: unknown) => void, reject, timer });
      const msg: Record<string, unknown> = { execute: command, id };
      if (args !== undefined) msg['arguments'] = args;
      this.#socket.write(`${JSON.stringify(msg)}\n`);
    });
  }

  /** Calls listener for every future event; returns an unsubscribe function. */
  onEvent(listener: (e: QmpEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Resolves with the first event (at index >= from) named `name` or matching the predicate. */
  waitForEvent(match: string | ((e: QmpEvent) => boolean), opts: QmpWaitOptions = {}): Promise<QmpEvent> {
    const pred = typeof match === 'string' ? (e: QmpEvent) => e.event === match : match;
    const from = opts.from ?? this.events.length;
    const seen = this.events.slice(from).find(pred);
    if (seen !== undefined) return Promise.resolve(seen);
    const timeout = opts.timeout ?? 30000;
    const what = typeof match === 'string' ? match : 'matching event';
    return new Promise((resolve, reject) => {
      const done = (): void => {
        clearTimeout(timer);
        off();
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`QMP: no ${what} event within ${timeout} ms`));
      }, timeout);
      const off = this.onEvent((e) => {
        if (pred(e)) {
          done();
          resolve(e);
        }
      });
      void this.closed.then(() => {
        done();
        reject(new Error(`QMP: connection closed while waiting for ${what}`));
      });
    });
  }

  close(): void {
    this.#closedError ??= new Error('QMP connection closed by the harness');
    this.#socket.destroy();
  }
}
