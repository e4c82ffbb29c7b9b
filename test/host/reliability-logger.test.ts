// Reliability: a service writes 100,000 numbered lines while its logger is killed
// (SIGKILL) or restarted (`sv t NAME/log`, 20 times) mid-stream. runsv holds the log
// pipe, so no line may be lost or written twice: checked over every file of the log
// directory (current and the rotated ones). Both kinds of logger: the supervisor's
// in-process svlogd (log/run is `exec svlogd ./main`) and a plain svlogd process
// (`exec env svlogd ./main`, which the in-process rule does not take).
import t, { type Test } from 'tap';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { BIN, haveBin, readIf, until } from '../lib/host.ts';
import { pidIn, readStatus } from '../lib/runit.ts';
import { ourSv, serviceDir, sh, sleep, supervisor } from '../lib/reliability.ts';

if (!haveBin()) t.fail(`${BIN} is missing: run make build`);

const LINES = 100_000;
const BATCHES = 100;
const PER = LINES / BATCHES;
// 100 batches of 1,000 lines, `pause` s apart. runsv holds a logger that ran less than a
// second for a second before starting it again, so 20 restarts need a stream of 20 s+.
// Each line is its number in six digits: the tail of a line whose head a killed logger
// had read (and lost) is shorter, never taken for another line.
const WIDTH = 6;
const writer = (pause: number) =>
  sh(
    'exec 2>&1\n' +
      `b=0; while [ $b -lt ${BATCHES} ]; do seq -f '%0${WIDTH}.0f' $((b*${PER}+1)) $((b*${PER}+${PER})); b=$((b+1)); sleep ${pause}; done\n` +
      'touch ../stream.done\nexec sleep 100000',
  );

/**
 * Every line of every file in the log directory, counted: lost, duplicated, torn (the
 * tail of a line, fewer digits) and other lines.
 */
function audit(main: string): { lost: number; lostRuns: number; dup: number; torn: number; junk: number; total: number } {
  const seen = new Uint8Array(LINES + 1);
  let dup = 0;
  let torn = 0;
  let junk = 0;
  let total = 0;
  const whole = new RegExp(`^\\d{${WIDTH}}$`);
  const tail = new RegExp(`^\\d{1,${WIDTH - 1}}$`);
  for (const f of readdirSync(main)) {
    if (f !== 'current' && !f.startsWith('@')) continue;
    for (const l of readFileSync(join(main, f), 'latin1').split('\n')) {
      if (l === '') continue;
      total++;
      const n = whole.test(l) ? Number(l) : 0;
      if (n >= 1 && n <= LINES) {
        if (seen[n]!++) dup++;
      } else if (tail.test(l)) torn++;
      else junk++;
    }
  }
  let lost = 0;
  let lostRuns = 0; // maximal runs of consecutive missing lines
  for (let i = 1; i <= LINES; i++) {
    if (seen[i]) continue;
    lost++;
    if (i === 1 || seen[i - 1]) lostRuns++;
  }
  return { lost, lostRuns, dup, torn, junk, total };
}

async function scenario(t: Test, kind: 'in-process' | 'process', how: 'kill' | 'restart') {
  const logRun = kind === 'in-process' ? sh('exec svlogd ./main') : sh('exec env svlogd ./main');
  const sup = supervisor(t, (tr) => {
    serviceDir(join(tr.sv, 'talker'), { run: writer(how === 'kill' ? 0.1 : 0.27), 'log/run': logRun, 'log/main/config': 's100000\nn1000\n' });
  });
  const { tr } = sup;
  const svc = join(tr.sv, 'talker');
  const logSup = join(svc, 'log', 'supervise');
  const main = join(svc, 'log', 'main');
  await until(() => pidIn(join(svc, 'supervise')) > 0 && pidIn(logSup) > 0, 10_000, 'service and logger up');
  const logPid = pidIn(logSup);
  if (kind === 'in-process') t.equal(logPid, sup.bg.proc.pid, 'the logger runs inside the supervisor');
  else t.not(logPid, sup.bg.proc.pid, 'the logger is a process of its own');
  const times = how === 'kill' ? 5 : 20;
  let done = 0;
  for (let i = 0; i < times && !existsSync(join(tr.sv, 'stream.done')); i++) {
    await sleep(how === 'kill' ? 500 : 50);
    const before = readStatus(logSup)?.pid;
    if (how === 'restart') {
      const r = await ourSv(tr, ['t', join(svc, 'log')]);
      t.equal(r.exitCode, 0, `sv t talker/log (${i + 1})`);
    } else if (kind === 'in-process') {
      const r = await ourSv(tr, ['k', join(svc, 'log')]);
      t.equal(r.exitCode, 0, `sv k talker/log: SIGKILL (${i + 1})`);
    } else process.kill(before!, 'SIGKILL');
    // the logger is back before the next one
    if (kind === 'process') await until(() => { const p = readStatus(logSup)?.pid; return p && p !== before; }, 5000, 'logger restarted');
    else await until(() => readStatus(logSup)?.state === 1, 5000, 'logger restarted');
    done++;
  }
  await until(() => existsSync(join(tr.sv, 'stream.done')), 60_000, 'the stream ended');
  t.ok(done === times, `${done} ${how === 'kill' ? 'SIGKILLs' : 'restarts'} during the stream (asked ${times})`);
  // let the logger take the rest of the pipe
  let last = -1;
  await until(() => { const a = audit(main).total; const same = a === last && a >= LINES; last = a; return same; }, 20_000, 'the log caught up').catch(() => undefined);
  const a = audit(main);
  t.comment(`figure: ${kind} logger, ${done} ${how === 'kill' ? 'SIGKILLs' : '`sv t NAME/log`'} during ${LINES} lines: ${a.lost} lost, ${a.dup} duplicated, ${a.torn} torn, ${a.junk} other lines, ${readdirSync(main).filter((f) => f.startsWith('@')).length} rotated files`);
  if (kind === 'process' && how === 'kill') {
    // A logger process killed by SIGKILL loses what it had read from the pipe and not yet
    // written (runit's svlogd as well: its buffer): at most one contiguous run of lines
    // per kill, and never a line twice; where the read ended inside a line, the next
    // logger reads that line's tail (one per kill). The in-process logger (the common
    // case) and any logger stopped by TERM lose nothing: the supervisor holds the pipe.
    t.ok(a.lostRuns <= done, `lines lost only as in-flight reads: ${a.lost} lines in ${a.lostRuns} runs for ${done} kills`);
    t.ok(a.torn <= done, `at most one torn line per kill: ${a.torn} for ${done} kills`);
  } else {
    t.equal(a.lost, 0, 'no line lost');
    t.equal(a.torn, 0, 'no line torn');
  }
  t.equal(a.dup, 0, 'no line duplicated');
  t.equal(a.junk, 0, 'no torn or foreign line');
}

for (const kind of ['in-process', 'process'] as const) {
  t.test(`${kind} logger SIGKILLed mid-stream`, (t) => scenario(t, kind, 'kill'));
  t.test(`${kind} logger restarted 20 times mid-stream (sv t NAME/log)`, (t) => scenario(t, kind, 'restart'));
}

t.test('a logger killed while it pauses on an unusable log directory lets go of it', async (t) => {
  // svlogd pauses (retrying every 3 s) when it cannot open current; a process killed then
  // loses its lock with it, and the in-process logger must too
  const sup = supervisor(t, (tr) => {
    serviceDir(join(tr.sv, 'talker'), { run: sh('exec 2>&1\necho hello\nexec sleep 100000'), 'log/run': sh('exec svlogd ./main'), 'log/main/current/README': 'current is a directory\n' });
  });
  const { tr } = sup;
  const svc = join(tr.sv, 'talker');
  await until(() => sup.bg.output().includes('pausing: unable to open current'), 10_000, 'the logger pausing');
  const r = await ourSv(tr, ['k', join(svc, 'log')]);
  t.equal(r.exitCode, 0, 'sv k talker/log while it pauses');
  rmSync(join(svc, 'log', 'main', 'current'), { recursive: true });
  await until(() => readIf(join(svc, 'log', 'main', 'current')) === 'hello\n', 10_000, 'the new logger writing the line').catch(() => undefined);
  t.equal(readIf(join(svc, 'log', 'main', 'current')), 'hello\n', 'the logger started again took the directory and logged the line');
  t.notMatch(sup.bg.output(), /unable to lock directory/, 'no "unable to lock directory" from the new logger');
});
