// SNTP (RFC 4330) over UDP: a client query (offset and round-trip delay from the four
// timestamps) and a small server. Hand-written: it is one 48-byte packet each way, and
// the image has no other NTP client (Debian's busybox builds have no ntpd applet).
import { createSocket, type Socket } from 'node:dgram';
import { isIPv6 } from 'node:net';

/** Seconds between the NTP era (1900) and the Unix epoch (1970). */
const EPOCH = 2208988800;

export interface SntpResult {
  server: string;
  /** seconds to add to the local clock */
  offset: number;
  /** round trip, seconds */
  delay: number;
  stratum: number;
}

/** ms since the Unix epoch -> 64-bit NTP timestamp at `o` in `b`. */
export function writeTimestamp(b: Buffer, o: number, ms: number): void {
  const s = Math.floor(ms / 1000);
  b.writeUInt32BE((s + EPOCH) >>> 0, o);
  b.writeUInt32BE(Math.floor(((ms - s * 1000) / 1000) * 2 ** 32) >>> 0, o + 4);
}

/** 64-bit NTP timestamp at `o` -> ms since the Unix epoch (era 0: until 2036). */
export function readTimestamp(b: Buffer, o: number): number {
  return (b.readUInt32BE(o) - EPOCH) * 1000 + (b.readUInt32BE(o + 4) / 2 ** 32) * 1000;
}

/** "host", "host:port", "[v6]:port" -> host and port (default 123). */
export function parseServer(s: string): { host: string; port: number } {
  const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(s) ?? (isIPv6(s) ? [s, s, undefined] : /^([^:]+)(?::(\d+))?$/.exec(s));
  if (!m || !m[1]) throw new Error(`not a server: ${s} (host, host:port or [v6]:port)`);
  const port = m[2] === undefined ? 123 : Number(m[2]);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`not a port: ${m[2]}`);
  return { host: m[1], port };
}

/** One query: mode 3 (client), version 4; checks the reply is the answer to it. */
export function query(server: string, timeoutMs = 5000, now: () => number = Date.now): Promise<SntpResult> {
  const { host, port } = parseServer(server);
  return new Promise((resolve, reject) => {
    const sock = createSocket(isIPv6(host) ? 'udp6' : 'udp4');
    const done = (e: Error | undefined, r?: SntpResult) => {
      clearTimeout(timer);
      sock.close();
      if (e) reject(e);
      else resolve(r!);
    };
    const timer = setTimeout(() => done(new Error(`no answer from ${server} in ${timeoutMs / 1000} s`)), timeoutMs);
    const req = Buffer.alloc(48);
    req[0] = (0 << 6) | (4 << 3) | 3;
    let t1 = 0;
    sock.on('error', (e) => done(new Error(`${server}: ${e.message}`)));
    sock.on('message', (msg) => {
      const t4 = now();
      if (msg.length < 48) return;
      const mode = msg[0]! & 7;
      const li = msg[0]! >> 6;
      const stratum = msg[1]!;
      // the reply's originate timestamp must be our transmit timestamp
      if (mode !== 4 || !msg.subarray(24, 32).equals(req.subarray(40, 48))) return;
      if (li === 3 || stratum === 0 || stratum > 15) return done(new Error(`${server}: not synchronised (leap ${li}, stratum ${stratum})`));
      const t2 = readTimestamp(msg, 32);
      const t3 = readTimestamp(msg, 40);
      done(undefined, { server, offset: (t2 - t1 + (t3 - t4)) / 2000, delay: (t4 - t1 - (t3 - t2)) / 1000, stratum });
    });
    t1 = now();
    writeTimestamp(req, 40, t1);
    sock.send(req, port, host, (e) => e && done(new Error(`${server}: ${e.message}`)));
  });
}

/** A server answering every client query with this host's clock plus `offsetMs` (stratum 2). */
export function serve(port: number, address: string, offsetMs = 0): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const sock = createSocket(isIPv6(address) ? 'udp6' : 'udp4');
    sock.on('error', reject);
    sock.on('message', (msg, rinfo) => {
      const rx = Date.now() + offsetMs;
      if (msg.length < 48 || (msg[0]! & 7) !== 3) return;
      const r = Buffer.alloc(48);
      r[0] = (0 << 6) | (((msg[0]! >> 3) & 7) << 3) | 4;
      r[1] = 2; // stratum
      r[2] = msg[2]!; // poll
      r[3] = 0xec; // precision 2^-20
      r.write('LOCL', 12, 'latin1');
      msg.copy(r, 24, 40, 48); // originate = the client's transmit
      writeTimestamp(r, 16, rx); // reference
      writeTimestamp(r, 32, rx);
      writeTimestamp(r, 40, Date.now() + offsetMs);
      sock.send(r, rinfo.port, rinfo.address);
    });
    sock.bind(port, address, () => {
      sock.off('error', reject);
      resolve(sock);
    });
  });
}
