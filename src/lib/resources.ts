// A debugging aid for leaks, off unless RUNIT_TS_RESOURCES names a file: the process
// counts its live asynchronous resources by kind (timers, immediates, handles, requests:
// every one made and not yet ended, unref()ed timers included, which Node's own
// process.getActiveResourcesInfo() leaves out) and, on SIGUSR2, writes them with its
// open descriptors and its heap's size as one JSON line to that file, after `settle`: the
// supervisor's trim (src/lib/trim.ts), which it runs every few minutes anyway, so that a
// heap grown for garbage not yet collected is not taken for a leak. The reliability suite
// reads it before and after a long run (test/lib/longrun-suite.ts); nothing else uses it.
import { readdirSync, writeFileSync } from 'node:fs';

/** The environment variable that turns it on (its value: the file to write). */
export const RESOURCES_ENV = 'RUNIT_TS_RESOURCES';

/** What is written on SIGUSR2. */
export interface ResourceReport {
  /** live resources by async_hooks type (Timeout, Immediate, PIPEWRAP, ...); promises left out */
  live: Record<string, number>;
  /** open file descriptors (/proc/self/fd, less the one reading it) */
  fds: number;
  /** V8's heap after `settle` (bytes): what is live in it, and what it holds of the system */
  heap: { used: number; committed: number };
}

/** Start counting, and answer SIGUSR2, when RUNIT_TS_RESOURCES is set; else nothing. */
export function watchResources(env: NodeJS.ProcessEnv = process.env, settle: () => void = () => {}): void {
  const file = env[RESOURCES_ENV];
  if (!file) return;
  const live = new Map<number, string>();
  // loaded only when asked for: not on the supervisor's start
  process.getBuiltinModule('node:async_hooks').createHook({
    // promises end only when collected: counting them would show the garbage collector's pace
    init: (id, type) => {
      if (type !== 'PROMISE') live.set(id, type);
    },
    destroy: (id) => {
      live.delete(id);
    },
  }).enable();
  process.on('SIGUSR2', () => {
    const counts: Record<string, number> = {};
    for (const type of live.values()) counts[type] = (counts[type] ?? 0) + 1;
    settle();
    const h = process.getBuiltinModule('node:v8').getHeapStatistics();
    const heap = { used: h.used_heap_size, committed: h.total_heap_size };
    const report: ResourceReport = { live: counts, fds: readdirSync('/proc/self/fd').length - 1, heap };
    writeFileSync(file, JSON.stringify(report) + '\n');
  });
}
