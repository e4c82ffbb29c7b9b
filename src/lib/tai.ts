// TAI64 / TAI64N labels as runit writes them (no leap-second table: runit adds the
// constant 10 s of 1972 and nothing else, so we match it byte for byte).
export const TAI_OFFSET = 0x400000000000000An;

/** A point in time as runit keeps it: unix seconds plus nanoseconds. */
export interface Tain {
  sec: bigint;
  nano: number;
}

/**
 * Now, with runit's rounding (gettimeofday microseconds): nano = usec * 1000 + 500.
 * Date.now() follows the wall clock when it steps (NTP, an RTC set at boot), which
 * supervise/status must; its millisecond resolution is plenty for sv's whole seconds.
 */
export function taiNow(): Tain {
  return tainFromMs(Date.now());
}

export function tainFromMs(ms: number): Tain {
  const sec = Math.floor(ms / 1000);
  const usec = Math.min(999999, Math.floor((ms - sec * 1000) * 1000));
  return { sec: BigInt(sec), nano: usec * 1000 + 500 };
}

/** Is a earlier than b (to the nanosecond)? */
export function tainBefore(a: Tain, b: Tain): boolean {
  return a.sec < b.sec || (a.sec === b.sec && a.nano < b.nano);
}

/** Seconds as a float, for comparisons. */
export function tainSeconds(t: Tain): number {
  return Number(t.sec) + t.nano / 1e9;
}

/** 12-byte TAI64N pack: 8 bytes seconds + 4 bytes nanoseconds, big-endian. */
export function packTain(t: Tain, buf: Buffer = Buffer.alloc(12), off = 0): Buffer {
  buf.writeBigUInt64BE(TAI_OFFSET + t.sec, off);
  buf.writeUInt32BE(t.nano, off + 8);
  return buf;
}

export function unpackTain(buf: Buffer, off = 0): Tain {
  return { sec: buf.readBigUInt64BE(off) - TAI_OFFSET, nano: buf.readUInt32BE(off + 8) };
}

/** "@4000000065a1b2c3" + 8 hex nanos: the 25-character label svlogd -t and runsvdir use. */
export function tai64nLabel(t: Tain): string {
  return '@' + packTain(t).toString('hex');
}

/** The time a tai64nLabel() names, or undefined for anything that is not one. */
export function labelTain(label: string): Tain | undefined {
  if (!/^@[0-9a-f]{24}$/.test(label)) return undefined;
  return unpackTain(Buffer.from(label.slice(1), 'hex'));
}

/** The nanosecond after t. */
export function tainNext(t: Tain): Tain {
  return t.nano >= 999_999_999 ? { sec: t.sec + 1n, nano: 0 } : { sec: t.sec, nano: t.nano + 1 };
}
