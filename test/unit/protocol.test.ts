import t from 'tap';
import { decodeStatus, encodeStatus, statLine, pidFile, S_DOWN, S_FINISH, S_RUN, type Status } from '../../src/lib/status.ts';
import { labelTain, packTain, tai64nLabel, tainFromMs, tainNext, unpackTain, TAI_OFFSET } from '../../src/lib/tai.ts';
import { errorStr } from '../../src/lib/errstr.ts';

t.test('TAI64N packing', async (t) => {
  const tn = { sec: 1700000000n, nano: 123456500 };
  const b = packTain(tn);
  t.equal(b.length, 12);
  t.equal(b.readBigUInt64BE(0), TAI_OFFSET + 1700000000n, 'seconds are unix + 2^62 + 10');
  t.equal(b.toString('hex'), '400000006553f10a075bcbf4');
  t.same(unpackTain(b), tn);
  t.equal(tai64nLabel(tn), '@400000006553f10a075bcbf4');
  t.equal(tai64nLabel(tn).length, 25);
});

t.test('a TAI64N label read back, and the nanosecond after a time', async (t) => {
  const tn = { sec: 1700000000n, nano: 123456500 };
  t.same(labelTain(tai64nLabel(tn)), tn, 'the label names the time it was made from');
  for (const bad of ['400000006553f10a075bcbf4', '@400000006553f10a075bcbf', '@400000006553F10A075BCBF4', '@400000006553f10a075bcbf4.s']) t.equal(labelTain(bad), undefined, `not a label: ${bad}`);
  t.same(tainNext(tn), { sec: 1700000000n, nano: 123456501 });
  t.same(tainNext({ sec: 1700000000n, nano: 999_999_999 }), { sec: 1700000001n, nano: 0 }, 'carries into the next second');
  t.ok(tai64nLabel(tainNext({ sec: 1700000000n, nano: 999_999_999 })) > tai64nLabel({ sec: 1700000000n, nano: 999_999_999 }), 'and its label sorts after');
});

t.test('runit rounds to microseconds + 500 ns', async (t) => {
  const x = tainFromMs(1700000000123.456);
  t.equal(x.sec, 1700000000n);
  t.equal(x.nano, 123456 * 1000 + 500);
  t.equal(tainFromMs(1700000000999.9995).nano, 999999 * 1000 + 500, 'never carries into the next second');
});

t.test('status record layout', async (t) => {
  const st: Status = { start: { sec: 1700000000n, nano: 500 }, pid: 0x01020304, paused: true, want: 'up', term: true, state: S_RUN };
  const b = encodeStatus(st);
  t.equal(b.length, 20);
  t.equal(b.subarray(0, 8).toString('hex'), '400000006553f10a');
  t.equal(b.readUInt32BE(8), 500);
  t.same([...b.subarray(12, 16)], [4, 3, 2, 1], 'pid little-endian');
  t.equal(b[16], 1, 'paused');
  t.equal(String.fromCharCode(b[17]!), 'u');
  t.equal(b[18], 1, 'term');
  t.equal(b[19], 1, 'run');
  t.equal(encodeStatus({ ...st, want: 'exit' })[17], 'd'.charCodeAt(0), 'want exit is written as d');
  t.equal(encodeStatus({ ...st, want: 'down', paused: false, term: false, state: S_FINISH }).subarray(16).toString('hex'), '00640002');
  const back = decodeStatus(b);
  t.equal(back.pid, 0x01020304);
  t.equal(back.want, 'up');
  t.ok(back.paused && back.term);
  t.equal(back.state, 1);
  t.throws(() => decodeStatus(Buffer.alloc(19)), /20 bytes/);
});

t.test('stat line', async (t) => {
  const base: Status = { start: { sec: 0n, nano: 0 }, pid: 5, paused: false, want: 'up', term: false, state: S_RUN };
  t.equal(statLine(base), 'run\n');
  t.equal(statLine({ ...base, paused: true, term: true, want: 'down' }), 'run, paused, got TERM, want down\n');
  t.equal(statLine({ ...base, state: S_FINISH, want: 'exit' }), 'finish, want exit\n');
  t.equal(statLine({ ...base, state: S_DOWN, want: 'down' }), 'down\n', 'no want part when down');
  t.equal(pidFile(123), '123\n');
  t.equal(pidFile(0), '');
});

t.test('djb error strings', async (t) => {
  t.equal(errorStr({ code: 'ENOENT' }), 'file does not exist');
  t.equal(errorStr('EAGAIN'), 'temporary failure');
  t.equal(errorStr({ code: 'ENXIO' }), 'device not configured');
  t.equal(errorStr({ code: 'EACCES' }), 'access denied');
});
