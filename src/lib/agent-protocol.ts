// The guest agent's wire protocol, imported by both ends: the agent in the guest
// (src/agent/core.ts) and the host's client (src/harness/agent.ts).
//
// Framing: one JSON object per line ('\n'-terminated, UTF-8), at most MAX_FRAME_BYTES.
// Every frame carries `v` (PROTOCOL_VERSION). Byte payloads (stdin, output, file
// contents) are base64 strings. The host sends requests, each with a positive integer
// `id`; the guest answers with replies carrying that id (a command streams `output`
// replies, then one `exit`; a file read streams `data`, then `done`), and sends `event`
// replies (the supervisor's service events) once the host has subscribed. Empty lines
// are ignored (the guest writes one before its hello reply, so bytes left over from an
// earlier connection end there). A frame that is not valid JSON, or not one of the
// shapes below, is an AgentProtocolError naming what was wrong and quoting the frame.

import type { ServiceEvent } from './events.ts';

/** Version of this protocol; both ends send it in every frame and refuse another. */
export const PROTOCOL_VERSION = 1;
/** Name of the virtio-serial port the agent listens on (QEMU's virtserialport name=). */
export const AGENT_PORT_NAME = 'org.runit-ts.agent';
/** Longest frame, in bytes, newline excluded: a longer line is refused. */
export const MAX_FRAME_BYTES = 1 << 20;
/** Bytes of file or output payload per frame (before base64): well under MAX_FRAME_BYTES. */
export const CHUNK_BYTES = 256 * 1024;
/** How many characters of a bad frame an error message quotes. */
const QUOTE_CHARS = 200;

/** A request from the host. */
export type AgentRequest =
  /** open a session: the agent answers with a `hello` reply echoing the nonce */
  | { v: 1; id: number; op: 'hello'; nonce: string }
  /** run argv (no shell); env adds to the agent's base environment; stdin is base64; timeoutMs kills it (SIGKILL, its process group) */
  | { v: 1; id: number; op: 'exec'; argv: string[]; env?: Record<string, string>; cwd?: string; stdin?: string; timeoutMs?: number }
  /** write (or with append, extend) a guest file from base64 data; parent directories are made */
  | { v: 1; id: number; op: 'write'; path: string; data: string; append?: boolean; mode?: number }
  /** read a guest file: `data` replies, then `done` with its size */
  | { v: 1; id: number; op: 'read'; path: string }
  /** mount a 9p share (virtio transport) at path, made if missing */
  | { v: 1; id: number; op: 'mount'; tag: string; path: string; readOnly?: boolean }
  /** unmount path */
  | { v: 1; id: number; op: 'umount'; path: string }
  /** forward the supervisor's events (its backlog first, marked replay) for the rest of this session */
  | { v: 1; id: number; op: 'subscribe' };

/** A request without its version and id (what a client fills in), one per op. */
export type AgentRequestBody = AgentRequest extends infer R ? (R extends AgentRequest ? Omit<R, 'v' | 'id'> : never) : never;

/** A reply from the guest. `id` is the request's (0 for an error about a frame with no usable id). */
export type AgentReply =
  | { v: 1; id: number; type: 'hello'; nonce: string; pid: number }
  | { v: 1; id: number; type: 'output'; stream: 'stdout' | 'stderr'; data: string }
  | { v: 1; id: number; type: 'exit'; code: number | null; signal: string | null; timedOut: boolean }
  | { v: 1; id: number; type: 'data'; data: string }
  | { v: 1; id: number; type: 'done'; size?: number }
  | { v: 1; id: number; type: 'error'; message: string; code?: string }
  | { v: 1; id: 0; type: 'event'; event: ServiceEvent };

/** Request operations, for checking a frame's `op`. */
export const REQUEST_OPS = ['hello', 'exec', 'write', 'read', 'mount', 'umount', 'subscribe'] as const;
/** Reply types, for checking a frame's `type`. */
export const REPLY_TYPES = ['hello', 'output', 'exit', 'data', 'done', 'error', 'event'] as const;

/** A frame that is not one this protocol defines (bad JSON, version, shape or size). */
export class AgentProtocolError extends Error {
  /** the id of the frame when it had a usable one, so the error can be answered to it */
  readonly id: number;
  constructor(message: string, id = 0) {
    super(message);
    this.name = 'AgentProtocolError';
    this.id = id;
  }
}

/** The first characters of a bad frame, for an error message. */
function quote(text: string): string {
  return JSON.stringify(text.length > QUOTE_CHARS ? `${text.slice(0, QUOTE_CHARS)}...` : text);
}

/** One frame on the wire: the JSON text and its newline. */
export function encodeFrame(frame: AgentRequest | AgentReply): Buffer {
  const text = JSON.stringify(frame);
  const bytes = Buffer.byteLength(text);
  if (bytes > MAX_FRAME_BYTES) throw new AgentProtocolError(`frame of ${bytes} bytes is over the limit of ${MAX_FRAME_BYTES}`);
  return Buffer.from(`${text}\n`);
}

/**
 * Splits a byte stream into frame lines. A line longer than MAX_FRAME_BYTES is dropped
 * up to its newline and reported once (as an error item) instead of growing the buffer.
 */
export class FrameSplitter {
  #parts: Buffer[] = [];
  #size = 0;
  #overlong = false;

  /** The complete lines (without newline) in what came so far; an AgentProtocolError item for each overlong one. */
  push(chunk: Buffer): (string | AgentProtocolError)[] {
    const out: (string | AgentProtocolError)[] = [];
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(0x0a, start);
      const end = nl < 0 ? chunk.length : nl;
      const piece = chunk.subarray(start, end);
      if (!this.#overlong) {
        this.#parts.push(piece);
        this.#size += piece.length;
        if (this.#size > MAX_FRAME_BYTES) {
          this.#overlong = true;
          this.#parts = [];
          out.push(new AgentProtocolError(`frame over the limit of ${MAX_FRAME_BYTES} bytes (dropped to its newline)`));
        }
      }
      if (nl < 0) break;
      if (!this.#overlong) out.push(Buffer.concat(this.#parts).toString('utf8'));
      this.#parts = [];
      this.#size = 0;
      this.#overlong = false;
      start = nl + 1;
    }
    return out;
  }

  /** Forgets a partial line (the connection it came on has ended). */
  reset(): void {
    this.#parts = [];
    this.#size = 0;
    this.#overlong = false;
  }
}

type Obj = Record<string, unknown>;

/** The object of a frame line, with version and id checked. */
function parseObject(line: string): { o: Obj; id: number } {
  let o: unknown;
  try {
    o = JSON.parse(line);
  } catch (e) {
    throw new AgentProtocolError(`frame is not JSON (${(e as Error).message}): ${quote(line)}`);
  }
  if (typeof o !== 'object' || o === null || Array.isArray(o)) throw new AgentProtocolError(`frame is not a JSON object: ${quote(line)}`);
  const obj = o as Obj;
  const id = obj['id'];
  const okId = typeof id === 'number' && Number.isSafeInteger(id) && id >= 0 ? id : 0;
  if (obj['v'] !== PROTOCOL_VERSION) throw new AgentProtocolError(`frame has protocol version ${JSON.stringify(obj['v'])}, expected ${PROTOCOL_VERSION}: ${quote(line)}`, okId);
  if (typeof id !== 'number' || !Number.isSafeInteger(id) || id < 0) throw new AgentProtocolError(`frame has a bad id ${JSON.stringify(id)}: ${quote(line)}`);
  return { o: obj, id };
}

/** Field checks of one frame: each throws an AgentProtocolError naming the field and frame. */
function fields(o: Obj, line: string, id: number) {
  const bad = (name: string, want: string): never => {
    throw new AgentProtocolError(`frame field ${name} must be ${want}, got ${JSON.stringify(o[name]) ?? 'nothing'}: ${quote(line)}`, id);
  };
  return {
    str(name: string): string {
      const v = o[name];
      return typeof v === 'string' ? v : bad(name, 'a string');
    },
    optStr(name: string): string | undefined {
      const v = o[name];
      return v === undefined || typeof v === 'string' ? v : bad(name, 'a string');
    },
    optBool(name: string): boolean | undefined {
      const v = o[name];
      return v === undefined || typeof v === 'boolean' ? v : bad(name, 'true or false');
    },
    optNat(name: string): number | undefined {
      const v = o[name];
      return v === undefined || (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) ? v : bad(name, 'a whole number >= 0');
    },
    nullableInt(name: string): number | null {
      const v = o[name];
      return v === null || (typeof v === 'number' && Number.isSafeInteger(v)) ? v : bad(name, 'a whole number or null');
    },
    nullableStr(name: string): string | null {
      const v = o[name];
      return v === null || typeof v === 'string' ? v : bad(name, 'a string or null');
    },
    b64(name: string): string {
      const v = o[name];
      return typeof v === 'string' && /^[A-Za-z0-9+/]*={0,2}$/.test(v) && v.length % 4 === 0 ? v : bad(name, 'base64');
    },
    path(name: string): string {
      const v = o[name];
      return typeof v === 'string' && v.startsWith('/') && !v.includes('\0') ? v : bad(name, 'an absolute path');
    },
    argv(name: string): string[] {
      const v = o[name];
      return Array.isArray(v) && v.length > 0 && v.every((a) => typeof a === 'string' && !a.includes('\0')) ? (v as string[]) : bad(name, 'a non-empty list of strings');
    },
    env(name: string): Record<string, string> | undefined {
      const v = o[name];
      if (v === undefined) return undefined;
      const ok = typeof v === 'object' && v !== null && !Array.isArray(v) && Object.entries(v).every(([k, x]) => /^[^=\0]+$/.test(k) && typeof x === 'string' && !x.includes('\0'));
      return ok ? (v as Record<string, string>) : bad(name, 'an object of strings (names without =)');
    },
    bad,
  };
}

/** Checks a line from the host: the request it is, or an AgentProtocolError (with the id when it had one). */
export function parseRequest(line: string): AgentRequest {
  const { o, id } = parseObject(line);
  const f = fields(o, line, id);
  const op = o['op'];
  if (id === 0) throw new AgentProtocolError(`request id must be a positive whole number, got 0: ${quote(line)}`);
  switch (op) {
    case 'hello':
      return { v: 1, id, op, nonce: f.str('nonce') };
    case 'exec': {
      const r: AgentRequest = { v: 1, id, op, argv: f.argv('argv') };
      const env = f.env('env');
      const cwd = o['cwd'] === undefined ? undefined : f.path('cwd');
      const stdin = o['stdin'] === undefined ? undefined : f.b64('stdin');
      const timeoutMs = f.optNat('timeoutMs');
      return { ...r, ...(env ? { env } : {}), ...(cwd !== undefined ? { cwd } : {}), ...(stdin !== undefined ? { stdin } : {}), ...(timeoutMs !== undefined ? { timeoutMs } : {}) };
    }
    case 'write': {
      const append = f.optBool('append');
      const mode = f.optNat('mode');
      if (mode !== undefined && mode > 0o7777) f.bad('mode', 'a file mode (0 to 0o7777)');
      return { v: 1, id, op, path: f.path('path'), data: f.b64('data'), ...(append !== undefined ? { append } : {}), ...(mode !== undefined ? { mode } : {}) };
    }
    case 'read':
      return { v: 1, id, op, path: f.path('path') };
    case 'mount': {
      const tag = f.str('tag');
      if (!/^[A-Za-z0-9_.-]{1,31}$/.test(tag)) f.bad('tag', 'a 9p mount tag (1-31 of A-Z a-z 0-9 _ . -)');
      const readOnly = f.optBool('readOnly');
      return { v: 1, id, op, tag, path: f.path('path'), ...(readOnly !== undefined ? { readOnly } : {}) };
    }
    case 'umount':
      return { v: 1, id, op, path: f.path('path') };
    case 'subscribe':
      return { v: 1, id, op };
    default:
      throw new AgentProtocolError(`unknown request op ${JSON.stringify(op) ?? 'nothing'} (expected one of ${REQUEST_OPS.join(', ')}): ${quote(line)}`, id);
  }
}

/** Checks a line from the guest: the reply it is, or an AgentProtocolError. */
export function parseReply(line: string): AgentReply {
  const { o, id } = parseObject(line);
  const f = fields(o, line, id);
  const type = o['type'];
  switch (type) {
    case 'hello': {
      const pid = f.optNat('pid');
      if (pid === undefined) f.bad('pid', 'a process id');
      return { v: 1, id, type, nonce: f.str('nonce'), pid: pid! };
    }
    case 'output': {
      const stream = o['stream'];
      if (stream !== 'stdout' && stream !== 'stderr') f.bad('stream', "'stdout' or 'stderr'");
      return { v: 1, id, type, stream: stream as 'stdout' | 'stderr', data: f.b64('data') };
    }
    case 'exit': {
      const timedOut = f.optBool('timedOut');
      if (timedOut === undefined) f.bad('timedOut', 'true or false');
      return { v: 1, id, type, code: f.nullableInt('code'), signal: f.nullableStr('signal'), timedOut: timedOut! };
    }
    case 'data':
      return { v: 1, id, type, data: f.b64('data') };
    case 'done': {
      const size = f.optNat('size');
      return { v: 1, id, type, ...(size !== undefined ? { size } : {}) };
    }
    case 'error': {
      const code = f.optStr('code');
      return { v: 1, id, type, message: f.str('message'), ...(code !== undefined ? { code } : {}) };
    }
    case 'event': {
      const e = o['event'];
      if (typeof e !== 'object' || e === null || typeof (e as Obj)['event'] !== 'string' || typeof (e as Obj)['service'] !== 'string')
        f.bad('event', 'a service event (with event and service)');
      return { v: 1, id: 0, type, event: e as ServiceEvent };
    }
    default:
      throw new AgentProtocolError(`unknown reply type ${JSON.stringify(type) ?? 'nothing'} (expected one of ${REPLY_TYPES.join(', ')}): ${quote(line)}`, id);
  }
}
