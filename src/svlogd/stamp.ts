// Line timestamps for svlogd -t / -tt / -ttt, written straight into output buffers.
//   -t    "@" + TAI64N (24 hex digits)             @400000006b0137f0335b29d4
//   -tt   "YYYY-MM-DD_HH:MM:SS.xxxxx" (UTC)        2026-11-21_06:19:12.03423
//   -ttt  "YYYY-MM-DDTHH:MM:SS.xxxxx" (UTC)        2026-11-21T06:19:12.03423
// each followed by a space (26 bytes). runit takes the time as gettimeofday() gives it
// (nanoseconds = microseconds * 1000 + 500) and prints 5 of the 9 fraction digits.
// localTime (our -T) prints -tt/-ttt in the local time zone instead of UTC.

import { monotonicMs } from '../lib/sys.ts';
import { TAI_OFFSET, tai64nLabel, tainFromMs } from '../lib/tai.ts';

export const STAMP_LEN = 26;
const HEX = '0123456789abcdef';

/**
 * Wall-clock time with microsecond resolution, cheaply: the monotonic clock (fine)
 * plus an offset to the real-time clock. Date.now() alone has only milliseconds, and
 * performance.timeOrigin + performance.now() never notices the clock being set (at boot
 * the clock is often stepped by NTP or an RTC driver after we started).
 */
export class WallClock {
  private offset = 0;
  constructor() {
    this.sync();
  }

  /** Align to the real-time clock: wait (< 1 ms) for Date.now() to tick, as the tick is exact. */
  sync(): void {
    const d0 = Date.now();
    let d = d0;
    let p = monotonicMs();
    const limit = p + 2;
    while (d === d0 && p < limit) {
      d = Date.now();
      p = monotonicMs();
    }
    this.offset = d - p;
  }

  /** Milliseconds since the epoch, fractional. */
  now(): number {
    return monotonicMs() + this.offset;
  }

  /** Re-align if the real-time clock was stepped (checked at most once per call site batch). */
  check(): void {
    const t = this.now();
    const d = Date.now();
    if (t < d - 1 || t > d + 2) this.sync();
  }
}

let shared: WallClock | undefined;
/**
 * The process's wall clock: made once, as its alignment waits for the real-time clock to
 * tick (up to a millisecond, spent spinning: a supervisor starting 20 in-process loggers at
 * boot paid it 20 times). The offset is the process's, so one serves every logger.
 */
export function wallClock(): WallClock {
  return (shared ??= new WallClock());
}

/** Writes 26-byte stamps (timestamp + space) for one of runit's formats. */
export class Stamper {
  readonly kind: 1 | 2 | 3;
  private readonly local: boolean;
  private cachedSec = Number.NaN;
  /** the part that depends on the second only: 17 bytes for -t, 20 for -tt/-ttt */
  private readonly head: Buffer;

  constructor(kind: 1 | 2 | 3, localTime = false) {
    this.kind = kind;
    this.local = localTime;
    this.head = Buffer.alloc(kind === 1 ? 17 : 20);
  }

  /** Write the stamp for time ms (from WallClock.now) at out[off..off+26). */
  write(ms: number, out: Buffer, off: number): void {
    const sec = Math.floor(ms / 1000);
    let usec = Math.floor((ms - sec * 1000) * 1000);
    if (usec > 999999) usec = 999999;
    if (sec !== this.cachedSec) this.fill(sec);
    const head = this.head;
    if (this.kind === 1) {
      head.copy(out, off);
      let nano = usec * 1000 + 500;
      for (let i = off + 24; i > off + 16; i--) {
        out[i] = HEX.charCodeAt(nano & 15);
        nano >>>= 4;
      }
    } else {
      head.copy(out, off);
      let frac = Math.floor(usec / 10);
      for (let i = off + 24; i > off + 19; i--) {
        out[i] = 48 + (frac % 10);
        frac = Math.floor(frac / 10);
      }
    }
    out[off + 25] = 32;
  }

  private fill(sec: number): void {
    this.cachedSec = sec;
    if (this.kind === 1) {
      const b = Buffer.alloc(8);
      b.writeBigUInt64BE(TAI_OFFSET + BigInt(sec));
      this.head.write('@' + b.toString('hex'), 'latin1');
      return;
    }
    const d = new Date(sec * 1000);
    const l = this.local;
    const p2 = (n: number) => (n < 10 ? '0' : '') + n;
    const text =
      `${l ? d.getFullYear() : d.getUTCFullYear()}-${p2((l ? d.getMonth() : d.getUTCMonth()) + 1)}-` +
      `${p2(l ? d.getDate() : d.getUTCDate())}${this.kind === 2 ? '_' : 'T'}` +
      `${p2(l ? d.getHours() : d.getUTCHours())}:${p2(l ? d.getMinutes() : d.getUTCMinutes())}:` +
      `${p2(l ? d.getSeconds() : d.getUTCSeconds())}.`;
    this.head.write(text, 'latin1');
  }
}

/** "@" + 24 hex digits: the TAI64N label of time ms, as rotated log files are named. */
export function tai64nName(ms: number): string {
  return tai64nLabel(tainFromMs(ms));
}
