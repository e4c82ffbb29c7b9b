// The addon's fd watch (a libuv poll handle), which reads the supervisor's control FIFOs
// and the in-process loggers' pipes: what a read() gives reaches the callback, the promise
// jobs it queues run before the next event, end of file is told once, pause() holds what
// comes until resume(), close() stops it, a bad fd throws, a method off its watch throws.
// And the addon's v8Flags, which spares the supervisor's start node:v8, and lowMemory,
// which shrinks V8's heap after the supervisor's start.
import t from 'tap';
import { closeSync, constants as C, mkdtempSync, openSync, readSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { BIN } from '../lib/host.ts';

// before anything loads the addon: the built one
process.env.RUNIT_TS_ADDON ??= join(dirname(BIN), 'runit-ts.node');
const { native } = await import('../../src/lib/native.ts');

const work = mkdtempSync(join(tmpdir(), 'runit-ts-watch-'));
t.teardown(() => rmSync(work, { recursive: true, force: true }));

function fifo(name: string): { rd: number; wr: number } {
  const path = join(work, name);
  native().mkfifo(path, 0o600);
  const rd = openSync(path, C.O_RDONLY | C.O_NONBLOCK);
  return { rd, wr: openSync(path, C.O_WRONLY | C.O_NONBLOCK) };
}

const tick = (ms: number) => new Promise((r) => setTimeout(r, ms));

t.test('bytes as they are written, each read in one call, in order', async (t) => {
  const { rd, wr } = fifo('control');
  const got: string[] = [];
  let wake: () => void = () => {};
  const watch = native().watchFd(rd, (buf, e) => {
    t.equal(e, undefined, 'no error with data');
    got.push(buf!.toString('latin1'));
    wake();
  });
  const next = () => new Promise<void>((r) => (wake = r));
  let p = next();
  writeSync(wr, 'u');
  await p;
  p = next();
  writeSync(wr, 'dx');
  await p;
  t.same(got, ['u', 'dx']);
  watch.close();
  writeSync(wr, 't');
  await tick(100);
  t.same(got, ['u', 'dx'], 'nothing after close()');
  watch.close(); // twice is harmless
  watch.resume(); // and resume() after it starts nothing
  closeSync(rd);
  closeSync(wr);
});

t.test('the promise jobs a callback queues run before the next event', async (t) => {
  const { rd, wr } = fifo('order');
  const order: string[] = [];
  let done: () => void = () => {};
  const finished = new Promise<void>((r) => (done = r));
  const watch = native().watchFd(rd, (buf) => {
    const b = buf!.toString('latin1');
    order.push(`data ${b}`);
    void Promise.resolve().then(() => {
      order.push(`job ${b}`);
      if (b === '2') done();
    });
  });
  writeSync(wr, '1');
  await tick(50);
  writeSync(wr, '2');
  await finished;
  t.same(order, ['data 1', 'job 1', 'data 2', 'job 2']);
  watch.close();
  closeSync(rd);
  closeSync(wr);
});

t.test('end of file: told once as (null, null), then the watch stops', async (t) => {
  const [rd, wr] = native().pipe();
  const calls: Array<[string | null, unknown]> = [];
  let ended: () => void = () => {};
  const end = new Promise<void>((r) => (ended = r));
  native().watchFd(rd, (buf, e) => {
    calls.push([buf ? buf.toString() : null, e]);
    if (!buf) ended();
  });
  writeSync(wr, 'last words');
  closeSync(wr);
  await end;
  await tick(50);
  t.same(calls, [['last words', undefined], [null, null]]);
  closeSync(rd);
});

t.test('a descriptor that is not open throws, with its errno name', async (t) => {
  const { rd, wr } = fifo('gone');
  closeSync(rd);
  closeSync(wr);
  t.throws(() => native().watchFd(rd, () => {}), { code: 'EBADF' });
});

t.test('pause() holds what comes in the pipe until resume(); one read takes a full pipe', async (t) => {
  const [rd, wr] = native().pipe();
  const got: Buffer[] = [];
  let wake: () => void = () => {};
  const watch = native().watchFd(rd, (buf) => {
    got.push(buf!);
    wake();
  });
  watch.pause();
  watch.pause(); // twice is harmless
  // a full pipe (64 KiB, Linux's default size: the write does not block)
  writeSync(wr, Buffer.alloc(65536, 'a'));
  await tick(100);
  t.same(got, [], 'nothing read while paused');
  const first = new Promise<void>((r) => (wake = r));
  watch.resume();
  await first;
  await tick(100);
  t.same(got.map((b) => b.length), [65536], 'all of it in one read');
  watch.close();
  closeSync(rd);
  closeSync(wr);
});

t.test('the fd is made non-blocking, as a net.Socket makes it', async (t) => {
  // native().pipe() makes blocking ends: a read() of the empty pipe would wait
  const [rd, wr] = native().pipe();
  const watch = native().watchFd(rd, () => {});
  t.throws(() => readSync(rd, Buffer.alloc(1)), { code: 'EAGAIN' }, 'a read() of the empty pipe returns at once');
  watch.close();
  closeSync(rd);
  closeSync(wr);
});

t.test('a method taken off its watch throws instead of touching freed state', async (t) => {
  const [rd, wr] = native().pipe();
  const watch = native().watchFd(rd, () => {});
  const { close } = watch;
  t.throws(() => close(), TypeError);
  watch.close();
  closeSync(rd);
  closeSync(wr);
});

t.test('v8Flags sets V8 flags without node:v8: natives syntax parses only after it', async (t) => {
  const parse = () => new Function('return %IsBeingInterpreted()');
  t.throws(parse, SyntaxError, 'not allowed before');
  t.equal(native().v8Flags('--allow-natives-syntax'), true, "this Node exports V8's SetFlagsFromString");
  t.equal(typeof parse()(), 'boolean', 'allowed after');
  native().v8Flags('--no-allow-natives-syntax');
  t.throws(parse, SyntaxError, 'and taken back');
});

t.test("lowMemory tells V8 (this Node exports it) and the heap's garbage is gone after it", async (t) => {
  // garbage in the young and the old generation: collected by the notification
  let keep: unknown[] | undefined = Array.from({ length: 2000 }, (_, i) => ({ i, s: `x${i}`.repeat(100) }));
  const before = process.memoryUsage().heapUsed;
  keep = undefined;
  t.equal(native().lowMemory(), true, "this Node exports V8's Isolate::LowMemoryNotification");
  t.ok(process.memoryUsage().heapUsed < before, `heap used ${process.memoryUsage().heapUsed} < ${before} (the garbage collected)`);
  t.equal(keep, undefined);
});

t.test('externalLatin1 makes a string over the bytes, equal to their Latin-1 copy', async (t) => {
  const bytes = new Uint8Array(300_000);
  for (let i = 0; i < bytes.length; i++) bytes[i] = 32 + (i % 95);
  bytes[7] = 0xe9; // beyond ASCII: still one character per byte
  const s = native().externalLatin1(bytes.buffer);
  t.equal(typeof s, 'string', 'this Node has node_api_create_external_string_latin1');
  t.equal(s, Buffer.from(bytes.buffer).toString('latin1'), 'the same text as the copy');
  t.equal(s!.charCodeAt(7), 0xe9);
  t.throws(() => native().externalLatin1('no buffer' as unknown as ArrayBuffer), TypeError, 'anything but an ArrayBuffer is refused');
  // the string is over these bytes: they must outlive it (here, this test's)
  t.equal(bytes[0], 32);
});

t.test('ignoreLockOrder turns off the lock checking this Node has; dropLockGraph touches only 0xff pages, and only then', async (t) => {
  t.equal(native().ignoreLockOrder(), true, "this Node exports Abseil's SetMutexDeadlockDetectionMode");
  t.equal(native().ignoreLockOrder(), true, 'and says so again');
  // a range not on page boundaries is refused without a look
  t.equal(native().dropLockGraph(1n, 4096n), 0);
  t.throws(() => native().dropLockGraph(4096 as unknown as bigint, 4096n), TypeError);
});
