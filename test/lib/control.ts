// Helpers for tests of the library's service control.
import { ServiceError } from '../../src/index.ts';

/** How a request failed: its ServiceError's reason and message (undefined if it did not). */
export async function failure(p: Promise<unknown>): Promise<{ reason: string; message?: string } | undefined> {
  try {
    await p;
  } catch (e) {
    if (!(e instanceof ServiceError)) throw e;
    return { reason: e.reason, message: e.message };
  }
  return undefined;
}
