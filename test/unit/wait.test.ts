// src/lib/wait.ts, the one wait engine: its answer for each of sv's letters on status
// records made here, readiness from ./check and from our supervisor's stats.json, the
// time limit, and the one-place rules beside it (the request runsv already has, the
// state names, the status record's corrupt fields).
import t from 'tap';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeStatus, encodeStatus, S_DOWN, S_FINISH, S_RUN, stateName, statLine, type Status } from '../../src/lib/status.ts';
import { alreadyRequested, type StatusResult } from '../../src/lib/supervise.ts';
import { tainFromMs, type Tain } from '../../src/lib/tai.ts';
import { decide, expired, POLL_MS, pollInterval, type WaitSpec } from '../../src/lib/wait.ts';

const work = mkdtempSync(join(tmpdir(), 'wait-lib-'));
t.teardown(() => rmSync(work, { recursive: true, force: true }));
/** A plain service directory: ./check (absent here) decides readiness. */
const plain = join(work, 'plain');
mkdirSync(plain);

const T0: Tain = tainFromMs(1_700_000_000_000);
const spec = (acts: string, more: Partial<WaitSpec> = {}): WaitSpec => ({ acts, t0: T0, request: true, untilSupervised: false, ...more });
const st = (o: Partial<Status>): Status => ({ start: { sec: T0.sec - 100n, nano: 500 }, pid: 0, paused: false, want: 'up', term: false, state: S_DOWN, ...o });
const ok = (s: Status): StatusResult => ({ kind: 'ok', status: s, raw: encodeStatus(s) });
const RUNNING = st({ pid: 42, state: S_RUN });
const DOWN = st({ want: 'down' });

t.test('each letter, as runit 2.3.0 sv', async (t) => {
  t.equal(decide(spec('u'), ok(RUNNING), plain), 'check', 'up and running: ./check decides');
  t.equal(decide(spec('u'), ok(RUNNING), plain, true), 'done');
  t.equal(decide(spec('u'), ok(RUNNING), plain, false), 'wait');
  t.equal(decide(spec('u'), ok(st({ pid: 42, state: S_FINISH })), plain), 'wait', 'finish is not up');
  t.equal(decide(spec('d'), ok(DOWN), plain), 'done');
  t.equal(decide(spec('d'), ok(RUNNING), plain), 'wait');
  t.equal(decide(spec('x'), ok(RUNNING), plain), 'wait', 'x: the runsv is still there');
  t.equal(decide(spec('p'), ok({ ...RUNNING, paused: true }), plain), 'done');
  t.equal(decide(spec('p'), ok(RUNNING), plain), 'wait');
  t.equal(decide(spec('c'), ok(RUNNING), plain), 'done');
  t.equal(decide(spec('c'), ok({ ...RUNNING, paused: true }), plain), 'wait');
  t.equal(decide(spec('h'), ok(RUNNING), plain), 'done', 'signals: at once');
  t.equal(decide(spec('o'), ok({ ...RUNNING, want: 'down' }), plain), 'done');
  t.equal(decide(spec('o'), ok(RUNNING), plain), 'wait', 'once: still wanted up');
  t.equal(decide(spec('o'), ok(DOWN), plain), 'wait', 'once: down since before the wait');
  t.equal(decide(spec('C'), ok(DOWN), plain), 'done', 'check: wanted down, and down');
  t.equal(decide(spec('C'), ok(RUNNING), plain, true), 'done', 'check: wanted up, up and ready');
  t.equal(decide(spec('r'), ok(RUNNING), plain), 'done', 'r: running, readiness aside');
});

t.test('t and k: restarted since the wait began, to the nanosecond', async (t) => {
  const fresh = st({ start: T0, pid: 43, state: S_RUN });
  t.equal(decide(spec('t'), ok(fresh), plain, true), 'done');
  t.equal(decide(spec('k'), ok(fresh), plain), 'check');
  t.equal(decide(spec('t'), ok(RUNNING), plain, true), 'wait', 'started before the wait');
  const sameSecond = st({ start: { sec: T0.sec, nano: 0 }, pid: 43, state: S_RUN });
  t.equal(decide(spec('t'), ok(sameSecond), plain, true), 'wait', 'the same second, but before the wait: runsv has not read the request yet');
  const samePid = st({ start: { sec: T0.sec, nano: T0.nano + 1000 }, pid: 42, state: S_RUN });
  t.equal(decide(spec('t'), ok(samePid), plain, true), 'done', 'started again with the same pid (an in-process logger has the supervisor\'s)');
  t.equal(decide(spec('t'), ok({ ...fresh, term: true }), plain, true), 'wait', 'TERM pending');
  t.equal(decide(spec('t'), ok(DOWN), plain), 'done', 'down and wanted down');
  t.equal(decide(spec('tcu'), ok(fresh), plain), 'check', 'restart asks ./check once...');
  t.equal(decide(spec('tcu'), ok(fresh), plain, true), 'done', '...and its verdict serves t and u');
});

t.test('no runsv, an unreadable status', async (t) => {
  const gone: StatusResult = { kind: 'not-running' };
  t.equal(decide(spec('x'), gone, plain), 'done');
  t.equal(decide(spec('u'), gone, plain), 'fail', 'sv: fail');
  t.equal(decide(spec('u', { untilSupervised: true }), gone, plain), 'wait', 'the client: waits for a runsv');
  const nosup: StatusResult = { kind: 'error', message: 'unable to open supervise/ok', reason: 'file does not exist', cause: Object.assign(new Error('x'), { code: 'ENOENT' }) };
  t.equal(decide(spec('u'), nosup, plain), 'fail');
  t.equal(decide(spec('u', { untilSupervised: true }), nosup, plain), 'wait', 'no supervise/ yet');
  const bad: StatusResult = { kind: 'error', message: 'unable to read supervise/status', reason: 'bad format' };
  t.equal(decide(spec('u', { untilSupervised: true }), bad, plain), 'fail', 'a broken status fails the client too');
});

t.test('a corrupt record: neither up nor down, as sv reads it', async (t) => {
  const garbage = Buffer.from([0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 5, 0x7a, 9, 7]);
  const s = decodeStatus(garbage);
  t.same([s.state, s.want, s.paused, s.term, s.pid], [null, null, true, true, 0xffffffff]);
  const r: StatusResult = { kind: 'ok', status: s, raw: garbage };
  t.equal(decide(spec('u'), r, plain), 'wait');
  t.equal(decide(spec('d'), r, plain), 'wait');
  t.equal(decide(spec('o'), r, plain), 'wait', 'o: a pid not wanted down');
  t.throws(() => encodeStatus(s), /cannot be written/, 'a corrupt record is not written back');
  t.equal(stateName(s.state), undefined);
  t.same([stateName(S_DOWN), stateName(S_RUN), stateName(S_FINISH)], ['down', 'run', 'finish']);
  t.equal(statLine(RUNNING), 'run\n');
});

t.test('readiness beyond runit: our supervisor\'s record', async (t) => {
  const svc = (name: string, files: Record<string, string>, ready: object | null): string => {
    const dir = join(work, name);
    mkdirSync(join(dir, 'supervise'), { recursive: true });
    for (const [f, text] of Object.entries(files)) writeFileSync(join(dir, f), text);
    writeFileSync(join(dir, 'supervise', 'stats.json'), JSON.stringify({ restarts: 0, lastExit: null, ready }) + '\n');
    return dir;
  };
  const at = (ms: number) => new Date(ms).toISOString();
  const nfd = svc('nfd', { 'notification-fd': '3\n' }, { how: 'notification-fd', pid: 42, time: at(1_700_000_000_000), monotonic: 1, afterSpawn: 0.1 });
  t.equal(decide(spec('u'), ok(RUNNING), nfd), 'done', 'the record names this process');
  t.equal(decide(spec('u'), ok({ ...RUNNING, pid: 41 }), nfd), 'wait', 'a record of another process');
  const before = svc('task-old', { type: 'oneshot\n' }, { how: 'oneshot', pid: 0, time: at(1_699_999_990_000), monotonic: 1, afterSpawn: 0.1 });
  const after = svc('task-new', { type: 'oneshot\n' }, { how: 'oneshot', pid: 0, time: at(1_700_000_001_000), monotonic: 1, afterSpawn: 0.1 });
  t.equal(decide(spec('u'), ok(DOWN), after), 'done', 'a one-shot run since the request succeeded: up with no process');
  t.equal(decide(spec('u'), ok(DOWN), before), 'wait', 'sv start: the run before the request does not count');
  t.equal(decide(spec('u', { request: false }), ok(DOWN), before), 'done', 'a pure wait: the last run succeeded');
  t.equal(decide(spec('C'), ok(DOWN), before), 'done', 'sv check on a one-shot wanted down: its last run');
  const failed = svc('task-failed', { type: 'oneshot\n' }, null);
  t.equal(decide(spec('C'), ok(DOWN), failed), 'wait', 'a one-shot that has not succeeded');
});

t.test('the time limit and the interval', async (t) => {
  t.equal(expired(5_000, 12_000, 7000), false, 'not more than the wait');
  t.equal(expired(5_000, 12_001, 7000), true);
  t.equal(POLL_MS, 420, "runit's sv");
  t.equal(pollInterval(), POLL_MS);
  t.equal(pollInterval(50), 50);
  t.throws(() => pollInterval(0), /not 0/);
  t.throws(() => pollInterval(Number.NaN), /not NaN/);
});

t.test('the request runsv already has (sv and the client skip it)', async (t) => {
  const rec = (want: number, term: number): StatusResult & { kind: 'ok' } => {
    const raw = encodeStatus(RUNNING);
    raw[17] = want;
    raw[18] = term;
    return { kind: 'ok', status: decodeStatus(raw), raw };
  };
  const u = 'u'.charCodeAt(0);
  const d = 'd'.charCodeAt(0);
  t.equal(alreadyRequested(rec(u, 0), 'u'), true);
  t.equal(alreadyRequested(rec(u, 0), 'tcu'), false, 'restart always goes');
  t.equal(alreadyRequested(rec(d, 1), 'd'), true, 'down with TERM pending');
  t.equal(alreadyRequested(rec(d, 0), 'd'), false, "'once w/o term': down goes again");
  t.equal(alreadyRequested(rec(d, 9), 'd'), false, 'sv compares the byte with 1');
  t.equal(alreadyRequested(rec(d, 1), 'x'), false);
});
