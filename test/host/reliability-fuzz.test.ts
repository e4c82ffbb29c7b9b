// Reliability: garbage in supervise/. The control FIFO of a service, and of a log service,
// fed 1,000,000 random bytes each; a service's status file overwritten with random bytes,
// truncated, and replaced by a directory. The supervisor must not crash, the other
// services must not notice, and the damaged service must come back under control.
import t, { type Test } from 'tap';
import { randomBytes } from 'node:crypto';
import { closeSync, constants as C, mkdirSync, openSync, readdirSync, readlinkSync, rmSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { alive, BIN, haveBin, readIf, until } from '../lib/host.ts';
import { pidIn, readStatus } from '../lib/runit.ts';
import { ourSv, serviceDir, sh, sleep, supervisor, type Supervisor } from '../lib/reliability.ts';

if (!haveBin()) t.fail(`${BIN} is missing: run make build`);

const BYTES = 1_000_000;
const others = ['calm0', 'calm1', 'calm2'];

function build(sup: Supervisor['tr']) {
  for (const n of others) serviceDir(join(sup.sv, n), { run: sh('exec sleep 100000'), 'log/run': sh('exec svlogd ./main'), 'log/main/config': '' });
  serviceDir(join(sup.sv, 'target'), { run: sh('exec sleep 100000') });
  serviceDir(join(sup.sv, 'logged'), { run: sh('exec sleep 100000'), 'log/run': sh('exec svlogd ./main'), 'log/main/config': '' });
}

/** pids of the other services and their loggers, and the supervisor's */
function snapshotOthers(s: Supervisor): number[] {
  return [s.bg.proc.pid!, ...others.flatMap((n) => [pidIn(join(s.tr.sv, n, 'supervise')), pidIn(join(s.tr.sv, n, 'log', 'supervise'))])];
}

async function unaffected(t: Test, s: Supervisor, before: number[]) {
  t.equal(s.bg.proc.exitCode, null, 'the supervisor still runs');
  t.same(snapshotOthers(s), before, 'the other services and loggers: the same processes');
  t.ok(before.every(alive), 'all alive');
  const r = await ourSv(s.tr, ['status', ...others.map((n) => join(s.tr.sv, n))]);
  t.equal(r.stdout.split('\n').filter((l) => /^run: .*; run: log: /.test(l)).length, others.length, 'sv status: the others run, with their loggers');
  t.notMatch(s.bg.output(), /TypeError|RangeError|ReferenceError|    at |Uncaught|unhandled/i, 'no exception in the supervisor\'s output');
}

/**
 * Write `data` into a control FIFO as fast as it is read. A runsv that reads an 'x' exits
 * (the rest of what sat in the FIFO goes with it); the supervisor is then told to rescan
 * (SIGALRM), and writing goes on into the new runsv's FIFO.
 */
async function feed(s: Supervisor, control: string, data: Buffer): Promise<{ written: number; exits: number; ms: number }> {
  const t0 = performance.now();
  let off = 0;
  let exits = 0;
  let fd = -1;
  while (off < data.length) {
    if (performance.now() - t0 > 120_000) throw new Error(`only ${off} bytes taken in 120 s`);
    if (fd < 0) {
      try {
        fd = openSync(control, C.O_WRONLY | C.O_NONBLOCK);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENXIO' && (e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
        s.bg.proc.kill('SIGALRM'); // runsv not running: rescan now
        await sleep(20);
        continue;
      }
    }
    try {
      off += writeSync(fd, data, off, Math.min(4096, data.length - off));
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'EAGAIN') await sleep(1);
      else if (code === 'EPIPE') {
        closeSync(fd);
        fd = -1;
        exits++;
      } else throw e;
    }
  }
  if (fd >= 0) closeSync(fd);
  return { written: off, exits, ms: performance.now() - t0 };
}

/** Bring a fuzzed service back to a known state: continue, up; true when it runs. */
async function recover(s: Supervisor, dir: string, timeoutMs = 20_000): Promise<void> {
  await until(async () => {
    const r = await ourSv(s.tr, ['cont', dir]);
    if (r.exitCode !== 0) {
      s.bg.proc.kill('SIGALRM');
      return false;
    }
    await ourSv(s.tr, ['up', dir]);
    const st = readStatus(join(dir, 'supervise'));
    return st && st.state === 1 && st.pid > 0 && !st.paused && alive(st.pid);
  }, timeoutMs, `${dir} running again`).catch(async (e: Error) => {
    const st = await ourSv(s.tr, ['status', dir]);
    const fds = readdirSync(`/proc/${s.bg.proc.pid}/fd`).map((f) => { try { return readlinkSync(`/proc/${s.bg.proc.pid}/fd/${f}`); } catch { return ''; } }).filter((l) => l.includes('lock'));
    throw new Error(`${e.message}: lock fds: ${fds.join(' ')} sv status: ${st.stdout.trim()} ${st.stderr.trim()}; status ${JSON.stringify(readStatus(join(dir, 'supervise')))}; supervisor output: ${s.bg.output().slice(-600)}`);
  });
}

t.test(`control FIFOs fed ${BYTES.toLocaleString('en')} random bytes`, async (t) => {
  const s = supervisor(t, build);
  const { tr } = s;
  await until(() => ['target', 'logged', ...others].every((n) => pidIn(join(tr.sv, n, 'supervise')) > 0) && others.every((n) => pidIn(join(tr.sv, n, 'log', 'supervise')) > 0), 15_000, 'all up');
  const before = snapshotOthers(s);

  const target = join(tr.sv, 'target');
  const a = await feed(s, join(target, 'supervise', 'control'), randomBytes(BYTES));
  t.comment(`figure: service control FIFO: ${a.written} random bytes taken in ${(a.ms / 1000).toFixed(1)} s; runsv exited ${a.exits} times (an 'x'), restarted at the next scan`);
  t.equal(a.written, BYTES, 'every byte taken');
  await recover(s, target);
  t.pass('the service is under control again (sv cont, sv up)');

  const logged = join(tr.sv, 'logged', 'log');
  const b = await feed(s, join(logged, 'supervise', 'control'), randomBytes(BYTES));
  t.comment(`figure: log service control FIFO: ${b.written} random bytes taken in ${(b.ms / 1000).toFixed(1)} s ('x' is ignored for a log service: ${b.exits} exits)`);
  t.equal(b.written, BYTES, 'every byte taken');
  t.equal(b.exits, 0, 'a log service does not exit on x');
  // the supervisor queues every control byte it reads and acts on them in order, a
  // second's throttle after each quick exit of the logger: the queue may take a while
  const r0 = performance.now();
  await recover(s, logged, 90_000);
  t.comment(`figure: log service under control again ${((performance.now() - r0) / 1000).toFixed(1)} s after the last byte`);
  // the logger works: a line through it lands in the log
  const r = await ourSv(tr, ['restart', join(tr.sv, 'logged')]);
  t.equal(r.exitCode, 0, 'sv restart logged');
  await unaffected(t, s, before);
});

t.test('status file overwritten, truncated, replaced by a directory', async (t) => {
  const s = supervisor(t, build);
  const { tr } = s;
  await until(() => ['target', ...others].every((n) => pidIn(join(tr.sv, n, 'supervise')) > 0) && others.every((n) => pidIn(join(tr.sv, n, 'log', 'supervise')) > 0), 15_000, 'all up');
  const before = snapshotOthers(s);
  const target = join(tr.sv, 'target');
  const status = join(target, 'supervise', 'status');
  const cases: Array<[string, () => void, RegExp]> = [
    ['random bytes', () => writeFileSync(status, randomBytes(20)), /./],
    ['truncated to 7 bytes', () => truncateSync(status, 7), /^warning: .*target: unable to read supervise\/status: bad format$/m],
    ['empty', () => truncateSync(status, 0), /^warning: .*target: unable to read supervise\/status: bad format$/m],
    ['a directory', () => { rmSync(status); mkdirSync(join(status, 'sub'), { recursive: true }); }, /^warning: .*target: unable to read supervise\/status: is a directory$/m],
  ];
  // sv reads status before it writes a command, and refuses a bad one (as runit's sv);
  // an admin then writes the control byte by hand, as runit's documentation allows
  const control = (c: string) => {
    const fd = openSync(join(target, 'supervise', 'control'), C.O_WRONLY | C.O_NONBLOCK);
    writeSync(fd, c);
    closeSync(fd);
  };
  for (const [what, damage, says] of cases) {
    damage();
    const r = await ourSv(tr, ['status', target]);
    t.match(r.stdout + r.stderr, says, `${what}: sv status says so (${JSON.stringify((r.stdout + r.stderr).trim())})`);
    t.notMatch(r.stderr, /    at |Error:/, `${what}: sv does not crash`);
    // the supervisor writes status at the next change: it says what failed and goes on
    control('d');
    await until(() => readIf(join(target, 'supervise', 'stat')) === 'down\n', 5000, 'down');
    if (what === 'a directory') {
      await until(() => /unable to rename status\.new/.test(s.bg.output()), 5000, 'the supervisor reports the status it cannot write');
      t.pass(`${what}: the supervisor says: ${/.*unable to rename status\.new.*/.exec(s.bg.output())![0]}`);
      rmSync(status, { recursive: true });
      control('u');
      await until(() => readStatus(join(target, 'supervise'))?.state === 1, 5000, 'status written again');
    }
    const up = await ourSv(tr, ['-w', '5', 'up', target]);
    t.equal(up.exitCode, 0, `${what}: then sv -w 5 up: ${up.stdout.trim()}`);
    t.equal(readStatus(join(target, 'supervise'))?.state, 1, `${what}: status rewritten, run`);
  }
  await unaffected(t, s, before);
});
