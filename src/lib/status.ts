// supervise/status (20 bytes), supervise/stat and supervise/pid, exactly as runsv writes them.
import { packTain, unpackTain, type Tain } from './tai.ts';

/** State byte (status[19]): no process. */
export const S_DOWN = 0;
/** State byte: ./run is running. */
export const S_RUN = 1;
/** State byte: ./finish is running. */
export const S_FINISH = 2;
export type State = typeof S_DOWN | typeof S_RUN | typeof S_FINISH;

export type Want = 'up' | 'down' | 'exit';

export interface Status {
  /** time of the last state change (./run start or the service going down) */
  start: Tain;
  pid: number;
  paused: boolean;
  want: Want;
  /** TERM sent and the process has not exited yet */
  term: boolean;
  state: State;
}

/** The 20-byte supervise/status record. */
export function encodeStatus(s: Status): Buffer {
  const b = Buffer.alloc(20);
  packTain(s.start, b, 0); // bytes 0..11 (taia_pack's atto part, 12..15, is overwritten by the pid)
  b.writeUInt32LE(s.pid >>> 0, 12);
  b[16] = s.paused ? 1 : 0;
  b[17] = s.want === 'up' ? 0x75 /* u */ : 0x64 /* d */;
  b[18] = s.term ? 1 : 0;
  b[19] = s.state;
  return b;
}

/** What a client (sv) reads back; `want` is only 'u' or 'd' on disk. */
export interface RawStatus {
  start: Tain;
  pid: number;
  paused: boolean;
  wantChar: string;
  term: boolean;
  state: number;
}

export function decodeStatus(b: Buffer): RawStatus {
  if (b.length !== 20) throw new Error(`status record must be 20 bytes, got ${b.length}`);
  return {
    start: unpackTain(b, 0),
    pid: b.readUInt32LE(12),
    paused: b[16] !== 0,
    wantChar: String.fromCharCode(b[17]!),
    term: b[18] !== 0,
    state: b[19]!,
  };
}

/** supervise/stat: "<down|run|finish>[, paused][, got TERM][, want down|, want exit]\n" */
export function statLine(s: Status): string {
  let l = s.state === S_DOWN ? 'down' : s.state === S_RUN ? 'run' : 'finish';
  if (s.paused) l += ', paused';
  if (s.term) l += ', got TERM';
  if (s.state !== S_DOWN) {
    if (s.want === 'down') l += ', want down';
    else if (s.want === 'exit') l += ', want exit';
  }
  return l + '\n';
}

/** supervise/pid: "<pid>\n", or empty when no process. */
export function pidFile(pid: number): string {
  return pid ? `${pid}\n` : '';
}
