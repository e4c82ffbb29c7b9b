// The uid and gid of an account: whom the builder gives ./log/main to (servicebuilder
// chowns it to nobody). In the executable the C library answers through the addon
// (getpwnam, NSS included: the lookup chpst -u makes when the logger starts); the npm
// package has no addon, and there the account file is read.
import { readFileSync } from 'node:fs';
import { native } from '../lib/native.ts';

/** An account's name and ids. */
export interface Account {
  name: string;
  uid: number;
  /** the account's primary group (chpst -u runs the logger with it) */
  gid: number;
}

/** The account file read where the C library cannot be asked. */
export const PASSWD_FILE = '/etc/passwd';

/** getpwnam through the addon, or undefined where there is no addon (the npm package). */
function addonLookup(): ((name: string) => [number, number] | null) | undefined {
  let n;
  try {
    n = native();
  } catch {
    return undefined;
  }
  return (name) => n.getpwnam(name);
}

/** The account `name` in passwd(5) text; undefined if it is not there. */
export function accountIn(passwd: string, name: string): Account | undefined {
  for (const line of passwd.split('\n')) {
    const f = line.split(':');
    if (f[0] !== name || f.length < 4 || !/^\d+$/.test(f[2]!) || !/^\d+$/.test(f[3]!)) continue;
    return { name, uid: Number(f[2]), gid: Number(f[3]) };
  }
  return undefined;
}

/** The account `name`; undefined if the system has no such account. */
export function lookupAccount(name: string): Account | undefined {
  const getpwnam = addonLookup();
  if (getpwnam) {
    const pw = getpwnam(name);
    return pw ? { name, uid: pw[0], gid: pw[1] } : undefined;
  }
  return accountIn(readFileSync(PASSWD_FILE, 'latin1'), name);
}
