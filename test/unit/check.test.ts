// src/lib/check.ts, the one ./check runner: its synchronous form (sv, container-probe) and
// its asynchronous, cancellable one (the library client, the supervisor), on service
// directories made here.
import t from 'tap';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkSync, startCheck, svVerdict, type CheckResult } from '../../src/lib/check.ts';

const work = mkdtempSync(join(tmpdir(), 'check-lib-'));
t.teardown(() => rmSync(work, { recursive: true, force: true }));

let n = 0;
/** A service directory with this ./check (mode 0755 unless told), or none. */
function service(check?: string, mode = 0o755): string {
  const dir = join(work, `svc${++n}`);
  mkdirSync(dir);
  if (check !== undefined) {
    writeFileSync(join(dir, 'check'), check);
    chmodSync(join(dir, 'check'), mode);
  }
  return dir;
}

/** Both forms on the same directory: they must agree. */
async function both(dir: string, name = 'web'): Promise<CheckResult> {
  const sync = checkSync(dir, { name });
  const async = await startCheck(dir, { name }).done;
  // (the Error itself names spawn or spawnSync)
  const plain = (r: CheckResult) => ({ ...r, cause: undefined });
  t.same(plain(async), plain(sync), `${dir}: checkSync and startCheck agree`);
  return sync;
}

t.test('no ./check is ready; exit 0 is ready, any other code is not', async (t) => {
  t.same(await both(service()), { ready: true, end: 'absent' });
  t.same(await both(service('#!/bin/sh\nexit 0\n')), { ready: true, end: 'exit', code: 0 });
  t.same(await both(service('#!/bin/sh\nexit 3\n')), { ready: false, end: 'exit', code: 3 });
});

t.test('a ./check that cannot be executed is not ready, with sv\'s warning', async (t) => {
  const noexec = await both(service('#!/bin/sh\nexit 0\n', 0o644));
  t.match(noexec, { ready: false, end: 'failed', step: 'run', message: 'unable to run web/check: access denied', warning: 'warning: unable to run web/check: access denied' });
  // libuv would run it with /bin/sh; execve() refuses it
  const format = await both(service('exit 0\n'));
  t.match(format, { ready: false, end: 'failed', step: 'run', message: 'unable to run web/check: exec format error' });
  const interp = await both(service('#!/nonexistent/interpreter\nexit 0\n'));
  t.match(interp, { ready: false, end: 'failed', step: 'run', message: 'unable to run web/check: file does not exist' });
  // stat() itself fails: "unable to stat"
  const file = join(work, 'a-file');
  writeFileSync(file, '');
  t.match(checkSync(file, { name: 'x' }), { ready: false, end: 'failed', step: 'stat', message: 'unable to stat x/check: not a directory' });
  t.match(checkSync(service('exit 0\n')), { message: /^unable to run \/.*\/svc\d+\/check: exec format error$/ }, 'named by its directory by default');
});

t.test('stdout is closed, stdin and stderr are not; a script is named check', async (t) => {
  // a write to stdout fails (EBADF), as with sv's close(1)
  t.same(await both(service('#!/bin/sh\necho noise 2>/dev/null || exit 7\nexit 0\n')), { ready: false, end: 'exit', code: 7 });
  t.same(await both(service('#!/bin/sh\necho fine >&2 2>/dev/null || exit 7\n[ "$0" = check ] || exit 8\n')), { ready: true, end: 'exit', code: 0 });
});

t.test('killed by a signal: not ready (runit\'s sv alone says ready)', async (t) => {
  const r = await both(service('#!/bin/sh\nkill -9 $$\n'));
  t.same(r, { ready: false, end: 'signal', signal: 'SIGKILL' });
  t.equal(svVerdict(r), true, 'sv: wait_exitcode() of a signal is 0');
});

t.test('svVerdict keeps runit sv\'s answers for sv', async (t) => {
  t.equal(svVerdict(checkSync(service('exit 0\n'), { name: 'x' })), true, 'cannot run: sv\'s child exits 0 after the warning');
  t.equal(svVerdict(checkSync(join(work, 'a-file'), { name: 'x' })), false, 'cannot stat: not ready');
  t.equal(svVerdict(checkSync(service('#!/bin/sh\nexit 1\n'))), false);
  t.equal(svVerdict(checkSync(service())), true);
});

t.test('checkSync: a time limit; startCheck: cancel kills it', async (t) => {
  const slow = service('#!/bin/sh\nexec sleep 30\n');
  const t0 = Date.now();
  t.same(checkSync(slow, { timeoutMs: 200 }), { ready: false, end: 'timeout' });
  t.ok(Date.now() - t0 < 5000, 'killed at the limit');
  const pidFile = join(work, 'pid');
  const run = startCheck(service(`#!/bin/sh\necho $$ > ${pidFile}\nexec sleep 30\n`));
  for (let i = 0; i < 200; i++) {
    try {
      if (Number(readFileSync(pidFile, 'utf8'))) break;
    } catch {
      /* not yet */
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  const pid = Number(readFileSync(pidFile, 'utf8'));
  run.cancel();
  t.same(await run.done, { ready: false, end: 'cancelled' });
  let gone = false;
  for (let i = 0; i < 200 && !gone; i++) {
    try {
      process.kill(pid, 0);
      await new Promise((r) => setTimeout(r, 25));
    } catch {
      gone = true;
    }
  }
  t.ok(gone, 'the ./check process is gone');
  run.cancel(); // twice: nothing more
  const absent = startCheck(service());
  absent.cancel();
  t.same(await absent.done, { ready: true, end: 'absent' }, 'nothing to cancel when nothing ran');
});
