// The addon's fd watch (a libuv poll handle), which reads the supervisor's control FIFOs:
// what a read() gives reaches the callback, the promise jobs it queues run before the next
// event, end of file is told once, close() stops it, a bad fd throws.
import t from 'tap';
import { closeSync, constants as C, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
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
  const close = native().watchFd(rd, (buf, e) => {
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
  close();
  writeSync(wr, 't');
  await tick(100);
  t.same(got, ['u', 'dx'], 'nothing after close()');
  close(); // twice is harmless
  closeSync(rd);
  closeSync(wr);
});

t.test('the promise jobs a callback queues run before the next event', async (t) => {
  const { rd, wr } = fifo('order');
  const order: string[] = [];
  let done: () => void = () => {};
  const finished = new Promise<void>((r) => (done = r));
  const close = native().watchFd(rd, (buf) => {
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
  close();
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
