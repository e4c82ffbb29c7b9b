// supervise/status (20 bytes), supervise/stat and supervise/pid, exactly as runsv writes
// them: one Status type, written by runsv (encodeStatus) and read back by every client
// (decodeStatus: sv, the library client, container-probe, a new runsv looking for
// leftovers). A record holds bytes runsv never writes only when it is corrupt: those
// fields decode to null, which sv shows as runit's sv does (no state word, no want).
import { packTain, unpackTain, type Tain } from './tai.ts';

/** State byte (status[19]): no process. */
export const S_DOWN = 0;
/** State byte: ./run is running. */
export const S_RUN = 1;
/** State byte: ./finish is running. */
export const S_FINISH = 2;
export type State = typeof S_DOWN | typeof S_RUN | typeof S_FINISH;

export type Want = 'up' | 'down' | 'exit';

/** A state as sv status and supervise/stat name it. */
export type StateName = 'down' | 'run' | 'finish';

/** Byte 17 of the record: 'u' for want up, 'd' for want down and for want exit. */
const WANT_UP = 0x75;
const WANT_DOWN = 0x64;
/** Size of the supervise/status record, in bytes. */
export const STATUS_SIZE = 20;

export interface Status {
  /** time of the last state change (./run start or the service going down) */
  start: Tain;
  pid: number;
  paused: boolean;
  /**
   * what runsv was last told; on disk only 'u' or 'd' (want exit is written 'd', so it
   * reads back as 'down'); null when the byte is neither (a corrupt record)
   */
  want: Want | null;
  /** TERM sent and the process has not exited yet */
  term: boolean;
  /** null when the byte is none of S_DOWN, S_RUN, S_FINISH (a corrupt record) */
  state: State | null;
}

const STATE_NAMES: readonly StateName[] = ['down', 'run', 'finish'];

/** The state's name; undefined for the unknown state of a corrupt record. */
export function stateName(state: State): StateName;
export function stateName(state: State | null): StateName | undefined;
export function stateName(state: State | null): StateName | undefined {
  return state === null ? undefined : STATE_NAMES[state];
}

/** A decoded corrupt record has no bytes runsv would write for its unknown fields. */
function writable(s: Status): { want: Want; state: State } {
  if (s.want === null || s.state === null) throw new Error(`status record: want ${s.want} and state ${s.state} cannot be written (a corrupt record's fields)`);
  return { want: s.want, state: s.state };
}

/** The 20-byte supervise/status record. */
export function encodeStatus(s: Status): Buffer {
  const { want, state } = writable(s);
  const b = Buffer.alloc(STATUS_SIZE);
  packTain(s.start, b, 0); // bytes 0..11 (taia_pack's atto part, 12..15, is overwritten by the pid)
  b.writeUInt32LE(s.pid >>> 0, 12);
  b[16] = s.paused ? 1 : 0;
  b[17] = want === 'up' ? WANT_UP : WANT_DOWN;
  b[18] = s.term ? 1 : 0;
  b[19] = state;
  return b;
}

/** A 20-byte supervise/status record as a Status (any bytes: a corrupt field reads as null). */
export function decodeStatus(b: Buffer): Status {
  if (b.length !== STATUS_SIZE) throw new Error(`status record must be ${STATUS_SIZE} bytes, got ${b.length}`);
  const want = b[17] === WANT_UP ? 'up' : b[17] === WANT_DOWN ? 'down' : null;
  const state = b[19]! <= S_FINISH ? (b[19] as State) : null;
  return { start: unpackTain(b, 0), pid: b.readUInt32LE(12), paused: b[16] !== 0, want, term: b[18] !== 0, state };
}

/** supervise/stat: "<down|run|finish>[, paused][, got TERM][, want down|, want exit]\n" */
export function statLine(s: Status): string {
  const { want, state } = writable(s);
  let l: string = stateName(state);
  if (s.paused) l += ', paused';
  if (s.term) l += ', got TERM';
  if (state !== S_DOWN) {
    if (want === 'down') l += ', want down';
    else if (want === 'exit') l += ', want exit';
  }
  return l + '\n';
}

/** supervise/pid: "<pid>\n", or empty when no process. */
export function pidFile(pid: number): string {
  return pid ? `${pid}\n` : '';
}
