// A log directory's `config` file, read as runit's svlogd reads it: one instruction per
// line, chosen by the line's first character; unknown lines are ignored.
import { scanUlong } from '../lib/getopt.ts';

export type Selector = '+' | '-' | 'e' | 'E';

export interface Instruction {
  kind: Selector;
  pattern: Buffer;
}

export interface LogdirConfig {
  /** s: rotate when current reaches this size (0: never by size) */
  sizemax: number;
  /** n: keep at most this many old log files (0: all) */
  nmax: number;
  /** N: on a full disk, delete old files only while more than this many are left */
  nmin: number;
  /** t: rotate when current is this many seconds old and not empty (0: never) */
  tmax: number;
  /** !: the processor, run with sh -c ('' = none) */
  processor: string;
  /** u/U: send selected lines to this UDP address (port 0 = none) */
  udpAddress: string;
  udpPort: number;
  /** U: UDP only, not to the log file */
  udpOnly: boolean;
  /** p: prefix for every line written */
  prefix: Buffer;
  /** + - e E in order: the last matching pattern decides */
  inst: Instruction[];
}

export function defaultConfig(): LogdirConfig {
  return {
    sizemax: 1000000,
    nmax: 10,
    nmin: 10,
    tmax: 0,
    processor: '',
    udpAddress: '',
    udpPort: 0,
    udpOnly: false,
    prefix: Buffer.alloc(0),
    inst: [],
  };
}

/** runit's ip4_scan: "a.b.c.d" (each part decimal, taken modulo 256); [address, chars used] or undefined. */
function ip4Scan(s: string): [string, number] | undefined {
  const parts: number[] = [];
  let at = 0;
  for (let k = 0; k < 4; k++) {
    if (k > 0) {
      if (s[at] !== '.') return undefined;
      at++;
    }
    const [v, used] = scanUlong(s.slice(at));
    if (!used) return undefined;
    parts.push(v % 256);
    at += used;
  }
  return [parts.join('.'), at];
}

/**
 * Parse config bytes. warn(m0, m1) reports runit's "unable to scan ..." problems.
 */
export function parseConfig(data: Buffer, warn: (what: string, text: string) => void): LogdirConfig {
  const cfg = defaultConfig();
  const n = data.length;
  // runit walks lines while at least two bytes are left: a last, unterminated
  // one-character line is skipped
  for (let i = 0; i + 1 < n; i++) {
    let end = data.indexOf(10, i);
    if (end < 0) end = n;
    const line = data.subarray(i, end);
    const rest = line.subarray(1);
    const text = rest.toString('latin1');
    switch (line[0]) {
      case 0x2b: // +
      case 0x2d: // -
      case 0x65: // e
      case 0x45: // E
        cfg.inst.push({ kind: String.fromCharCode(line[0]) as Selector, pattern: Buffer.from(rest) });
        break;
      case 0x73: { // s<size>[k|m]
        const [v, used] = scanUlong(text);
        const unit = text[used];
        cfg.sizemax = unit === 'm' ? v * 1024 * 1024 : unit === 'k' ? v * 1024 : v;
        break;
      }
      case 0x6e: // n
        cfg.nmax = scanUlong(text)[0];
        break;
      case 0x4e: // N
        cfg.nmin = scanUlong(text)[0];
        break;
      case 0x74: { // t<secs>[m|h]
        const [v, used] = scanUlong(text);
        const unit = text[used];
        cfg.tmax = unit === 'h' ? v * 3600 : unit === 'm' ? v * 60 : v;
        break;
      }
      case 0x21: // !
        if (line.length > 1) cfg.processor = rest.toString('utf8');
        break;
      case 0x55: // U: as u, and not to the file (set even if the address is bad, as runit does)
      case 0x75: { // u
        if (line[0] === 0x55) cfg.udpOnly = true;
        const ip = ip4Scan(text);
        if (!ip) {
          warn('unable to scan ip address', text);
          break;
        }
        let port = 514;
        if (text[ip[1]] === ':') {
          const portText = text.slice(ip[1] + 1);
          port = scanUlong(portText)[0];
          if (port === 0) {
            warn('unable to scan port number', portText);
            break;
          }
        }
        cfg.udpAddress = ip[0];
        cfg.udpPort = port % 65536;
        break;
      }
      case 0x70: // p
        if (line.length > 1) cfg.prefix = Buffer.from(rest);
        break;
    }
    i = end;
  }
  return cfg;
}
