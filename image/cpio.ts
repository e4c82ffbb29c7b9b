// The newc cpio writer lives in src/lib/cpio.ts (the VM runner appends cpio archives too).
export * from '../src/lib/cpio.ts';
