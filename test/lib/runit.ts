// Helpers for the supervision tests: Debian's runit beside ours, supervise/ snapshots,
// waiting out sv's one-second race, fake supervise/ directories for sv alone.
import { closeSync, constants as C, lstatSync, mkdirSync, openSync, readdirSync, readFileSync, readlinkSync, readSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { BIN, debianBin, DEBIAN, readIf } from './host.ts';

export type Kind = 'debian' | 'ours';

/** PATH with Debian's runit first (runsvdir execs "runsv" through PATH). */
export function debianPath(): string {
  return `${join(DEBIAN, 'usr/bin')}:${process.env.PATH ?? '/usr/bin:/bin'}`;
}

/** Path of a tool: Debian's binary, or a symlink named after the applet to our binary. */
export function toolFor(kind: Kind, bin: string, name: string): string {
  if (kind === 'debian') return name === 'runsvchdir' ? join(DEBIAN, 'usr/sbin/runsvchdir') : debianBin(name);
  const p = join(bin, name);
  try {
    lstatSync(p);
  } catch {
    mkdirSync(bin, { recursive: true });
    symlinkSync(BIN, p);
  }
  return p;
}

/** The 20-byte status record, decoded (undefined if missing or short). */
export function readStatus(supervise: string): { sec: number; pid: number; paused: number; want: string; term: number; state: number } | undefined {
  let b: Buffer;
  try {
    b = readFileSync(join(supervise, 'status'));
  } catch {
    return undefined;
  }
  if (b.length !== 20) return undefined;
  return {
    sec: Number(b.readBigUInt64BE(0) - 0x400000000000000an),
    pid: b.readUInt32LE(12),
    paused: b[16]!,
    want: String.fromCharCode(b[17]!),
    term: b[18]!,
    state: b[19]!,
  };
}

export function pidIn(supervise: string): number {
  return Number(readIf(join(supervise, 'pid')) ?? 0);
}

/**
 * Files our supervisor keeps in supervise/ beyond runit's (README, compatibility
 * notes): left out of snapshots, each checked on its own where it matters.
 */
export const OUR_EXTRA_FILES = new Set(['stats.json', 'stats.json.new']);

/**
 * A comparable picture of a supervise/ directory: every entry's name, type and mode
 * (our documented extra files left out);
 * stat and pid (pid replaced by "N"); status bytes 16..19 (time and pid left out).
 */
export function snapshot(supervise: string): string {
  const lines: string[] = [];
  const d = statSync(supervise);
  lines.push(`. ${kindOf(d)} ${(d.mode & 0o7777).toString(8)}`);
  for (const name of readdirSync(supervise).sort()) {
    if (OUR_EXTRA_FILES.has(name)) continue;
    const st = lstatSync(join(supervise, name));
    let extra = '';
    if (name === 'stat') extra = JSON.stringify(readFileSync(join(supervise, name), 'utf8'));
    if (name === 'pid') extra = JSON.stringify(readFileSync(join(supervise, name), 'utf8').replace(/^\d+\n$/, 'N\n'));
    if (name === 'status') extra = `${st.size} bytes, [16..19] ${readFileSync(join(supervise, name)).subarray(16).toString('hex')}`;
    if (name === 'lock') extra = `size ${st.size}`;
    lines.push(`${name} ${kindOf(st)} ${(st.mode & 0o7777).toString(8)} ${extra}`.trimEnd());
  }
  return lines.join('\n') + '\n';
}

function kindOf(st: { isDirectory(): boolean; isFIFO(): boolean; isFile(): boolean; isSymbolicLink(): boolean }): string {
  return st.isDirectory() ? 'dir' : st.isFIFO() ? 'fifo' : st.isSymbolicLink() ? 'symlink' : st.isFile() ? 'file' : 'other';
}

/**
 * sv's checks for t/k/o (restart, once, ...) compare whole seconds: a command given in the
 * same second as the last status change can be answered from the old status. Wait until
 * the clock is past the second of every given supervise/status.
 */
export async function pastStatusSecond(supervises: string[]): Promise<void> {
  const last = Math.max(0, ...supervises.map((s) => readStatus(s)?.sec ?? 0));
  for (;;) {
    const now = Date.now() / 1000;
    if (Math.floor(now) > last) return;
    await new Promise((r) => setTimeout(r, Math.ceil((Math.floor(now) + 1 - now) * 1000) + 5));
  }
}

/**
 * A supervise/ directory with nobody behind it: we hold supervise/ok open (so sv sees a
 * "runsv"), write status ourselves and read what sv writes to supervise/control.
 */
export async function fakeSupervise(dir: string, status: Buffer): Promise<{ control: () => string; close: () => void }> {
  const sup = join(dir, 'supervise');
  mkdirSync(sup, { recursive: true });
  const missing = ['ok', 'control'].map((f) => join(sup, f)).filter((p) => {
    try {
      statSync(p);
      return false;
    } catch {
      return true;
    }
  });
  if (missing.length) await execa('mkfifo', ['-m', '600', ...missing]);
  writeFileSync(join(sup, 'status'), status);
  const ok = openSync(join(sup, 'ok'), C.O_RDONLY | C.O_NONBLOCK);
  const ctl = openSync(join(sup, 'control'), C.O_RDONLY | C.O_NONBLOCK);
  return {
    control: () => {
      const buf = Buffer.alloc(256);
      let s = '';
      for (;;) {
        let n = 0;
        try {
          n = readSync(ctl, buf, 0, buf.length, null);
        } catch {
          n = 0;
        }
        if (n <= 0) return s;
        s += buf.subarray(0, n).toString('latin1');
      }
    },
    close: () => {
      closeSync(ok);
      closeSync(ctl);
    },
  };
}

/** A status record as runsv writes it. */
export function statusRecord(o: { sec?: number; pid?: number; paused?: boolean; want?: 'u' | 'd'; term?: boolean; state?: number }): Buffer {
  const b = Buffer.alloc(20);
  b.writeBigUInt64BE(0x400000000000000an + BigInt(o.sec ?? Math.floor(Date.now() / 1000)), 0);
  b.writeUInt32BE(500, 8);
  b.writeUInt32LE(o.pid ?? 0, 12);
  b[16] = o.paused ? 1 : 0;
  b[17] = (o.want ?? 'u').charCodeAt(0);
  b[18] = o.term ? 1 : 0;
  b[19] = o.state ?? (o.pid ? 1 : 0);
  return b;
}

/** /proc/PID/cmdline as ps shows it (NULs as spaces, trailing ones dropped). */
export function psArgs(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'latin1').replace(/\0+$/, '').replace(/\0/g, ' ');
  } catch {
    return '';
  }
}

/** Fields of /proc/PID/stat after the command name: [state, ppid, pgrp, session, ...]. */
export function procStat(pid: number): string[] {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return s.slice(s.lastIndexOf(')') + 2).split(' ');
  } catch {
    return [];
  }
}

export function linkTarget(p: string): string | undefined {
  try {
    return readlinkSync(p);
  } catch {
    return undefined;
  }
}
