// Kernel module resolution lives in src/lib/kmod.ts (the VM runner resolves modules too).
export * from '../src/lib/kmod.ts';
