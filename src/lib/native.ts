// The Node-API addon (src/native/runit-ts.c) with the system calls Node lacks.
// Loaded on first use, from $RUNIT_TS_ADDON or beside the executable.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';

export interface Native {
  mkfifo(path: string, mode: number): void;
  /** false when LOCK_NB was given and another holder has the lock */
  flock(fd: number, op: number): boolean;
  setsid(): number;
  /** [read, write], close-on-exec */
  pipe(): [number, number];
  mount(source: string, target: string, fstype: string, flags: number, data: string): void;
  umount(target: string, flags: number): void;
  sethostname(name: string): void;
  finitModule(fd: number, params: string): void;
  ifUp(name: string): void;
  sync(): void;
}

export const LOCK_SH = 1;
export const LOCK_EX = 2;
export const LOCK_NB = 4;
export const LOCK_UN = 8;
export const MS_RDONLY = 1;
export const MS_NOSUID = 2;
export const MS_NODEV = 4;
export const MS_NOEXEC = 8;
export const MS_REMOUNT = 32;
export const MNT_DETACH = 2;

let loaded: Native | undefined;

export function addonPath(): string {
  const candidates = [
    process.env.RUNIT_TS_ADDON,
    join(dirname(process.execPath), 'runit-ts.node'),
    '/usr/lib/runit-ts/runit-ts.node',
  ].filter((p): p is string => !!p);
  const found = candidates.find((p) => existsSync(p));
  if (!found) throw new Error(`cannot find runit-ts.node (looked in: ${candidates.join(', ')}); set RUNIT_TS_ADDON`);
  return found;
}

export function native(): Native {
  if (!loaded) {
    const mod = { exports: {} as Native };
    process.dlopen(mod, addonPath());
    loaded = mod.exports;
  }
  return loaded;
}
