// Host tests of image/runit.c, our PID 1, run as PID 1 of fresh PID + mount
// namespaces (needs root).  Each scenario builds a tiny root: /usr bound
// read-only from the host, its own /etc/runit stages (small sh scripts
// appending timestamped markers to /log), an empty /run and a fresh /proc.
// `unshare --pid --fork --mount` then chroots into it and execs the binary
// as PID 1.  In a child PID namespace the kernel ends reboot(2) by killing
// the namespace's init: SIGHUP for RB_AUTOBOOT, SIGINT for RB_POWER_OFF /
// RB_HALT_SYSTEM; unshare then kills itself with that signal, so the
// result's signal tells us which one PID 1 chose.
//
// The binary: $RUNIT_TS_PID1 if set (the Makefile points it at
// out/x86_64/runit), else image/runit.c compiled here with the image flags.
// All scenarios start at once (several wait 5 s by design); the subtests
// then check their results.
import t from 'tap'
import { execa } from 'execa'
import { chmod, copyFile, lstat, mkdir, mkdtemp, readFile, readdir, readlink, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const source = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'image', 'runit.c')
const CFLAGS = ['-static', '-Os', '-Wall', '-Wextra']

if (process.platform !== 'linux' || process.getuid?.() !== 0) {
  t.plan(0, 'needs Linux and root (PID namespaces)')
  process.exit(0)
}

const work = await mkdtemp(join(tmpdir(), 'pid1-test-'))
t.teardown(() => rm(work, { recursive: true, force: true }))

// ---------------------------------------------------------------- binary
let bin = process.env.RUNIT_TS_PID1 ?? ''
if (bin === '') {
  bin = join(work, 'runit')
  const cc = await execa('gcc', [...CFLAGS, '-o', bin, source], { reject: false })
  t.equal(cc.exitCode, 0, 'image/runit.c compiles (gcc -static -Os)')
  t.equal(cc.stderr, '', 'gcc: no warnings with -Wall -Wextra')
  if (cc.exitCode !== 0) process.exit(1)
}

// ------------------------------------------------------------- scenarios
interface Scenario {
  // files relative to the new root; string = shell script body (mode 0755,
  // with the log() prelude), [content, mode] for anything else, null: absent
  files?: Record<string, string | [string, number] | null>
  console?: boolean // a plain file stands in for /dev/console
  noSysBoot?: boolean // drop CAP_SYS_BOOT, as in a container
  timeout?: number
}
interface Line { t: number, text: string }
interface Run {
  exitCode?: number
  signal?: string
  timedOut: boolean
  out: string // runit's messages + stage output (console file or stderr+stdout)
  msgs: string[] // lines from runit itself ("- runit: ...")
  log: Line[]
  endT: number // wall clock (s) when unshare returned
  root: string
}

const PRELUDE = '#!/bin/sh\nlog() { echo "$(date +%s.%N) $*" >> /log; }\n'
const defaultStages = {
  'etc/runit/1': 'log 1',
  'etc/runit/2': 'log 2',
  'etc/runit/3': 'log 3',
}

let seq = 0
async function scenario (sc: Scenario): Promise<Run> {
  const root = join(work, `root${seq++}`)
  for (const d of ['usr', 'proc', 'dev', 'run', 'tmp', 'etc/runit']) {
    await mkdir(join(root, d), { recursive: true })
  }
  const binds = ['/usr']
  for (const l of ['bin', 'sbin', 'lib', 'lib64']) { // mirror merged-/usr links
    const st = await lstat(`/${l}`).catch(() => undefined)
    if (st?.isSymbolicLink()) await symlink(await readlink(`/${l}`), join(root, l))
    else if (st?.isDirectory()) { await mkdir(join(root, l)); binds.push(`/${l}`) }
  }
  await writeFile(join(root, 'dev/null'), '')
  if (sc.console === true) await writeFile(join(root, 'dev/console'), '')
  await writeFile(join(root, 'log'), '')
  await copyFile(bin, join(root, 'runit'))
  await chmod(join(root, 'runit'), 0o755)
  for (const [path, body] of Object.entries({ ...defaultStages, ...sc.files })) {
    if (body === null) continue
    const [content, mode] = typeof body === 'string' ? [PRELUDE + body + '\n', 0o755] : body
    await writeFile(join(root, path), content)
    await chmod(join(root, path), mode)
  }
  const setup = [
    'set -e',
    'R=$1',
    ...binds.map(b => `mount --bind -o ro ${b} "$R${b}"`),
    'mount -t proc proc "$R/proc"',
    'mount --bind /dev/null "$R/dev/null"',
    `exec ${sc.noSysBoot === true ? 'setpriv --bounding-set=-sys_boot ' : ''}chroot "$R" /runit`,
  ].join('\n')
  const r = await execa('unshare',
    ['--pid', '--fork', '--kill-child', '--mount', '--propagation', 'private', 'sh', '-c', setup, 'sh', root], {
      reject: false,
      stdin: 'ignore',
      timeout: sc.timeout ?? 30_000,
      killSignal: 'SIGKILL',
      extendEnv: false,
      env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', FOO: 'bar baz' },
    })
  const endT = Date.now() / 1000
  const out = sc.console === true
    ? await readFile(join(root, 'dev/console'), 'utf8')
    : `${r.stderr}\n${r.stdout}`
  const log = (await readFile(join(root, 'log'), 'utf8')).split('\n').filter(l => l !== '').map(l => {
    const i = l.indexOf(' ')
    return { t: Number(l.slice(0, i)), text: l.slice(i + 1) }
  })
  return {
    exitCode: r.exitCode,
    signal: r.signal,
    timedOut: r.timedOut,
    out,
    msgs: out.split('\n').filter(l => l.startsWith('- runit: ')),
    log,
    endT,
    root,
  }
}

const has = (run: Run, text: string) => run.log.some(l => l.text === text)
const at = (run: Run, text: string) => run.log.find(l => l.text === text || l.text.startsWith(`${text} `))?.t ?? NaN
const stages = (run: Run) => run.log.map(l => l.text.split(' ')[0]).filter(w => w === '1' || w === '2' || w === '3')
const value = (run: Run, key: string) => run.log.find(l => l.text.startsWith(`${key}=`))?.text.slice(key.length + 1)
const count = (run: Run, msg: string) => run.msgs.filter(m => m === `- runit: ${msg}`).length

// A stage 2 that waits (up to 20 s) to be told to stop.
const LINGER = 'i=0; while [ $i -lt 200 ]; do sleep 0.1; i=$((i+1)); done; log lingered; exit 0'
const STOPIT = 'touch /run/runit.stopit; chmod 100 /run/runit.stopit'
const INFO = '$(cut -d" " -f6 /proc/$$/stat) $$ $0 $# $(grep SigBlk /proc/self/status | cut -f2)'

const runs = {
  order: scenario({
    files: {
      'etc/runit/1': `log 1; log info1 ${INFO}; log foo="$FOO"; log handoff1="$RUNIT_TS_HANDOFF"`,
      'etc/runit/2': `log 2; log info2 ${INFO}; log handoff2="$RUNIT_TS_HANDOFF"`,
      'etc/runit/3': `log 3; log info3 ${INFO}`,
    },
  }),
  skip100: scenario({ files: { 'etc/runit/1': 'log 1; exit 100' } }),
  skipCrash: scenario({ files: { 'etc/runit/1': 'log 1; kill -9 $$' } }),
  stage1Fail: scenario({ files: { 'etc/runit/1': 'log 1; exit 1' } }),
  noStage2: scenario({ files: { 'etc/runit/2': null } }),
  restart111: scenario({
    files: {
      'etc/runit/2': `
if [ ! -e /run/ran ]; then
  touch /run/ran; log 2 first
  sleep 1000 & echo $! > /run/grouped
  exit 111
fi
log 2 second
if [ -e /proc/$(cat /run/grouped) ]; then log grouped=alive; else log grouped=gone; fi`,
    },
  }),
  restartCrash: scenario({
    files: {
      'etc/runit/2': `
if [ ! -e /run/ran ]; then
  touch /run/ran; log 2 first
  sleep 1000 & echo $! > /run/grouped
  kill -9 $$
fi
log 2 second
if [ -e /proc/$(cat /run/grouped) ]; then log grouped=alive; else log grouped=gone; fi`,
    },
  }),
  normalExit: scenario({
    files: {
      'etc/runit/2': 'log 2; sleep 1000 & echo $! > /run/grouped; exit 3',
      'etc/runit/3': 'log 3; if [ -e /proc/$(cat /run/grouped) ]; then log grouped=alive; else log grouped=gone; fi',
    },
  }),
  stopit: scenario({
    files: {
      'etc/runit/2': `log 2; trap 'log got-TERM; exit 0' TERM; ${STOPIT}; log cont; kill -CONT 1; ${LINGER}`,
      'etc/runit/3': 'log 3; log stopit=$(stat -c %a /run/runit.stopit)',
    },
  }),
  contNothing: scenario({
    files: {
      'etc/runit/2': `log 2; trap 'log got-TERM' TERM
kill -CONT 1; sleep 0.5; log after-cont
kill -INT 1; sleep 0.5; log after-int
touch /run/runit.stopit; chmod 644 /run/runit.stopit
kill -CONT 1; sleep 0.5; log after-cont-nox; exit 0`,
      'etc/runit/3': 'log 3; log stopit=$(stat -c %a /run/runit.stopit)',
    },
  }),
  termIgnored: scenario({
    files: { 'etc/runit/2': `log 2; trap '' TERM; ${STOPIT}; log cont; kill -CONT 1; ${LINGER}` },
  }),
  ctrlaltdel: scenario({
    files: {
      'etc/runit/2': `log 2; trap 'log got-TERM; exit 0' TERM; kill -INT 1; ${LINGER}`,
      'etc/runit/ctrlaltdel': `log ctrlaltdel ${INFO}; sleep 0.3; ${STOPIT}; log ctrlaltdel-done`,
      'etc/runit/3': 'log 3',
    },
  }),
  signals13: scenario({
    files: {
      'etc/runit/1': `log 1; ${STOPIT}; kill -CONT 1; sleep 0.3; kill -INT 1; sleep 0.3`,
      'etc/runit/ctrlaltdel': 'log ctrlaltdel',
      'etc/runit/2': 'log 2; log stopit=$(stat -c %a /run/runit.stopit); exit 0',
      'etc/runit/3': 'log 3; kill -CONT 1; sleep 0.3; log 3-done',
    },
  }),
  reaping: scenario({
    files: {
      'etc/runit/2': `log 2
for i in 1 2 3 4 5 6 7 8 9 10; do sh -c 'sleep 1 & echo $! > /run/orphan; exit 0'; done
log orphan-ppid=$(cut -d" " -f4 /proc/$(cat /run/orphan)/stat)
sleep 2.5
log zombies=$(grep -l ') Z ' /proc/[0-9]*/stat | wc -l)
log orphan-left=$(ls -d /proc/$(cat /run/orphan) 2>/dev/null | wc -l)`,
    },
  }),
  reboot: scenario({ files: { 'etc/runit/3': 'log 3; touch /run/runit.reboot; chmod 100 /run/runit.reboot' } }),
  rebootNotX: scenario({ files: { 'etc/runit/3': 'log 3; touch /run/runit.reboot; chmod 644 /run/runit.reboot' } }),
  pwr: scenario({
    files: {
      'etc/runit/2': `log 2; touch /run/runit.reboot; chmod 100 /run/runit.reboot
trap 'log got-TERM; exit 0' TERM; kill -PWR 1; ${LINGER}`,
    },
  }),
  alrm: scenario({
    files: {
      'etc/runit/2': `log 2; trap 'log got-ALRM' ALRM; trap 'log got-TERM' TERM; ${STOPIT}
kill -ALRM 1; kill -HUP 1; kill -TERM 1; kill -PIPE 1; sleep 1; log still-here; exit 0`,
    },
  }),
  noSysBoot: scenario({
    noSysBoot: true,
    files: {
      'etc/runit/2': `log 2
setsid sh -c 'trap "" TERM HUP INT; while :; do date +%s.%N >> /ticks; sleep 0.05; done' &
sleep 0.3; exit 0`,
      'etc/runit/3': 'log 3; sleep 0.3; log ticks-in-3=$(wc -l < /ticks); sleep 0.3; log 3-done',
    },
  }),
  // stage 1 goes on as stage 2 in its own process: session leader, then USR1 to PID 1
  handoff: scenario({
    files: {
      'etc/runit/1': 'log 1; log pid1=$$; exec setsid /etc/runit/2h',
      'etc/runit/2h': `kill -USR1 1; sleep 0.3; log 2h ${INFO}; trap 'log got-TERM; exit 0' TERM; ${STOPIT}; kill -CONT 1; ${LINGER}`,
      'etc/runit/2': 'log 2',
      'etc/runit/3': 'log 3',
    },
  }),
  handoffPwr: scenario({
    files: {
      'etc/runit/1': 'log 1; kill -PWR 1; sleep 0.3; exec setsid /etc/runit/2h',
      'etc/runit/2h': `trap 'log got-TERM; exit 0' TERM; kill -USR1 1; ${LINGER}`,
      'etc/runit/3': 'log 3',
    },
  }),
  handoffCrash: scenario({
    files: {
      'etc/runit/1': 'log 1; exec setsid /etc/runit/2h',
      'etc/runit/2h': 'kill -USR1 1; sleep 0.3; log 2h; kill -9 $$',
      'etc/runit/2': 'log 2; exit 0',
    },
  }),
  usr1Others: scenario({
    files: {
      'etc/runit/1': "log 1; sh -c 'kill -USR1 1'; sleep 0.3; log 1-done",
      'etc/runit/2': 'log 2; kill -USR1 1; sleep 0.3; log 2-done; exit 0',
      'etc/runit/3': 'log 3; kill -USR1 1; sleep 0.3; log 3-done',
    },
  }),
  console: scenario({
    console: true,
    files: {
      'etc/runit/1': 'log 1; log stdin1=$(readlink /proc/$$/fd/0); echo hello-from-1',
      'etc/runit/2': 'log 2; log stdout2=$(readlink /proc/$$/fd/1); echo hello-from-2',
    },
  }),
}
// Fail fast and loudly if a scenario itself blew up.
for (const [name, p] of Object.entries(runs)) p.catch(err => t.fail(`scenario ${name}: ${String(err)}`))

const notPid1 = execa('unshare', ['--pid', '--fork', '--kill-child', 'sh', '-c', '"$0"; echo "rc=$?"', bin],
  { reject: false, timeout: 10_000, killSignal: 'SIGKILL' })

// ----------------------------------------------------------------- tests
// PID 1's messages of a boot through the three stages and a power off (no console)
const NORMAL_RUN = [
  /^- runit: \$Id.*: booting\.$/,
  '- runit: warning: unable to open /dev/console: file does not exist',
  '- runit: enter stage: /etc/runit/1',
  '- runit: leave stage: /etc/runit/1',
  '- runit: enter stage: /etc/runit/2',
  '- runit: leave stage: /etc/runit/2',
  '- runit: enter stage: /etc/runit/3',
  '- runit: leave stage: /etc/runit/3',
  '- runit: sending KILL signal to all processes...',
  '- runit: power off...',
]

t.test('refuses to run unless it is process no 1', async t => {
  const r = await notPid1
  t.match(r.stdout, /^rc=111$/m, 'exits 111')
  t.equal(r.stderr.trim(), '- runit: fatal: must be run as process no 1.', 'says why')
})

t.test('stage order 1 -> 2 -> 3, then power off', async t => {
  const r = await runs.order
  t.same(stages(r), ['1', '2', '3'], 'stages ran in order')
  t.match(r.msgs, NORMAL_RUN, 'runit messages')
  t.equal(r.msgs.length, 10, 'no other messages')
  t.equal(r.signal, 'SIGINT', 'reboot(RB_POWER_OFF): namespace init ended by SIGINT')
  const info = (n: number) => (r.log.find(l => l.text.startsWith(`info${n} `))?.text ?? '').split(' ')
  const [, sid1, pid1, argv01, argc1, blk1] = info(1)
  t.equal(sid1, '1', 'stage 1 stays in PID 1\'s session')
  t.not(pid1, '1', 'stage 1 is a child process')
  t.equal(argv01, '/etc/runit/1', 'argv[0] is the path')
  t.equal(argc1, '0', 'no arguments')
  t.equal(blk1, '0000000000000000', 'stage 1 starts with no signal blocked')
  for (const n of [2, 3]) {
    const [, sid, pid, argv0, argc, blk] = info(n)
    t.equal(sid, pid, `stage ${n} is a session leader (setsid)`)
    t.equal(argv0, `/etc/runit/${n}`, `stage ${n} argv[0]`)
    t.equal(argc, '0', `stage ${n} gets no arguments`)
    t.equal(blk, '0000000000000000', `stage ${n} starts with no signal blocked`)
  }
  t.equal(value(r, 'foo'), 'bar baz', 'stages get runit\'s environment')
  t.equal(value(r, 'handoff1'), '1', 'stage 1 is offered the handoff')
  t.equal(value(r, 'handoff2'), '', 'stage 2 is not')
})

t.test('handoff: USR1 from stage 1 makes its process stage 2', async t => {
  const r = await runs.handoff
  t.same(r.log.map(l => l.text.split(' ')[0]).filter(w => /^(1|2|2h|3|got-TERM)$/.test(w ?? '')), ['1', '2h', 'got-TERM', '3'], '/etc/runit/2 never started; the process was stopped as stage 2')
  t.match(r.msgs, NORMAL_RUN, 'the messages of a stage 1 that ends and a stage 2 that starts')
  t.equal(r.msgs.length, 10, 'no other messages')
  const [, sid, pid] = (r.log.find(l => l.text.startsWith('2h '))?.text ?? '').split(' ')
  t.equal(pid, value(r, 'pid1'), 'stage 2 is stage 1\'s process')
  t.equal(sid, pid, 'a session leader')
  const p = await runs.handoffPwr
  t.same(stages(p), ['1', '3'], 'SIGPWR in stage 1: acted on as soon as stage 2 runs')
  t.ok(has(p, 'got-TERM'), 'stage 2 (the handed-off process) got TERM')
  t.equal(p.signal, 'SIGINT', 'and the system powered off')
  const c = await runs.handoffCrash
  t.same(c.log.map(l => l.text.split(' ')[0]), ['1', '2h', '2', '3'], 'the handed-off stage 2 crashed: /etc/runit/2 started after 5 s')
  t.equal(count(c, 'warning: child crashed: /etc/runit/2'), 1, 'as a stage 2 crash')
})

t.test('USR1 from anyone else, or in stages 2 and 3, is ignored', async t => {
  const r = await runs.usr1Others
  t.same(r.log.map(l => l.text), ['1', '1-done', '2', '2-done', '3', '3-done'], 'every stage ran to its end')
  t.equal(r.msgs.length, 10, 'no other messages')
})

t.test('stage 1 exit 100 or crash skips stage 2; other failures do not', async t => {
  for (const [name, p, why] of [['exit 100', runs.skip100, 'failed'], ['crash', runs.skipCrash, 'crashed']] as const) {
    const r = await p
    t.same(stages(r), ['1', '3'], `${name}: stage 2 skipped`)
    t.equal(count(r, `warning: child ${why}: /etc/runit/1`), 1, `${name}: child ${why} warning`)
    t.equal(count(r, 'warning: skipping stage 2...'), 1, `${name}: says so`)
    t.equal(count(r, 'enter stage: /etc/runit/2'), 0, `${name}: never entered stage 2`)
  }
  const r = await runs.stage1Fail
  t.same(stages(r), ['1', '2', '3'], 'exit 1: stage 2 still runs')
  t.equal(count(r, 'warning: child failed: /etc/runit/1'), 1, 'exit 1: child failed warning')
})

t.test('a stage that cannot be started counts as exit 0 (as in runit)', async t => {
  const r = await runs.noStage2
  t.same(stages(r), ['1', '3'], 'no stage 2, straight to stage 3')
  t.equal(count(r, 'fatal: unable to start child: /etc/runit/2: file does not exist'), 1, 'says why')
  t.equal(count(r, 'enter stage: /etc/runit/2'), 1, 'not restarted')
  t.equal(r.signal, 'SIGINT', 'then powers off')
})

t.test('stage 2 exit 111 or crash: group killed, restart after 5 s', async t => {
  for (const [name, p, why] of [['exit 111', runs.restart111, 'failed'], ['crash', runs.restartCrash, 'crashed']] as const) {
    const r = await p
    t.same(stages(r), ['1', '2', '2', '3'], `${name}: stage 2 ran twice, then stage 3`)
    const gap = at(r, '2 second') - at(r, '2 first')
    t.ok(gap >= 4.9 && gap < 8, `${name}: restarted after ~5 s (${gap.toFixed(2)} s)`)
    t.equal(value(r, 'grouped'), 'gone', `${name}: old stage 2's process group was killed and reaped`)
    t.equal(count(r, `warning: child ${why}: /etc/runit/2`), 1, `${name}: child ${why} warning`)
    t.equal(count(r, 'warning: killing all processes in stage 2...'), 1, `${name}: killing message`)
    t.equal(count(r, 'warning: restarting.'), 1, `${name}: restarting message`)
    t.equal(r.signal, 'SIGINT', `${name}: then powers off`)
  }
})

t.test('stage 2 other exit -> stage 3, its group left alone', async t => {
  const r = await runs.normalExit
  t.same(stages(r), ['1', '2', '3'], 'stage 3 follows')
  t.equal(count(r, 'enter stage: /etc/runit/2'), 1, 'stage 2 not restarted')
  t.equal(count(r, 'warning: child failed: /etc/runit/2'), 1, 'child failed warning')
  t.equal(value(r, 'grouped'), 'alive', 'stage 2\'s background process survives into stage 3')
})

t.test('SIGCONT with u+x stopit: TERM stage 2, chmod stopit 0, stage 3', async t => {
  const r = await runs.stopit
  t.same(stages(r), ['1', '2', '3'], 'stages')
  t.ok(has(r, 'got-TERM'), 'stage 2 got SIGTERM')
  t.notOk(has(r, 'lingered'), 'stage 2 did not just run out')
  t.ok(at(r, 'got-TERM') < at(r, '3'), 'TERM before stage 3')
  const delay = at(r, '3') - at(r, 'cont')
  t.ok(delay < 2.5, `stage 3 starts soon after stage 2 exits (${delay.toFixed(2)} s)`)
  t.equal(value(r, 'stopit'), '0', 'stopit chmod\'ed to 0')
  t.equal(count(r, 'leave stage: /etc/runit/2'), 1, 'leave stage 2 message')
})

t.test('SIGCONT without (executable) stopit and SIGINT without ctrlaltdel do nothing', async t => {
  const r = await runs.contNothing
  t.ok(has(r, 'after-cont') && has(r, 'after-int') && has(r, 'after-cont-nox'), 'stage 2 kept running')
  t.notOk(has(r, 'got-TERM'), 'stage 2 never got TERM')
  t.same(stages(r), ['1', '2', '3'], 'stage 3 only after stage 2 exited')
  t.equal(value(r, 'stopit'), '644', 'non-executable stopit left alone')
  t.equal(count(r, 'warning: signals only work in stage 2.'), 0, 'no stage warning')
})

t.test('stage 2 ignoring TERM is killed after 5 s', async t => {
  const r = await runs.termIgnored
  t.same(stages(r), ['1', '2', '3'], 'stages')
  const delay = at(r, '3') - at(r, 'cont')
  t.ok(delay >= 4.9 && delay < 8, `SIGKILL after ~5 s (${delay.toFixed(2)} s)`)
  t.notOk(has(r, 'lingered'), 'stage 2 was killed, did not run out')
  t.equal(count(r, 'warning: stage 2 not terminated, sending sigkill...'), 1, 'says so')
})

t.test('SIGINT runs /etc/runit/ctrlaltdel, then acts as SIGCONT', async t => {
  const r = await runs.ctrlaltdel
  t.same(r.log.map(l => l.text.split(' ')[0]), ['1', '2', 'ctrlaltdel', 'ctrlaltdel-done', 'got-TERM', '3'], 'order of events')
  t.equal(count(r, 'ctrl-alt-del request...'), 1, 'ctrl-alt-del message')
  t.equal(count(r, 'enter stage: /etc/runit/ctrlaltdel'), 1, 'enter ctrlaltdel')
  t.equal(count(r, 'leave stage: /etc/runit/ctrlaltdel'), 1, 'leave ctrlaltdel')
  const [, sid, , argv0, argc, blk] = (r.log.find(l => l.text.startsWith('ctrlaltdel '))?.text ?? '').split(' ')
  t.equal(argv0, '/etc/runit/ctrlaltdel', 'argv[0]')
  t.equal(argc, '0', 'no arguments')
  t.equal(sid, '1', 'runs in PID 1\'s session (no setsid)')
  t.equal(blk, '0000000000000000', 'starts with no signal blocked')
  t.equal(r.signal, 'SIGINT', 'then powers off')
})

t.test('signals in stages 1 and 3 are refused', async t => {
  const r = await runs.signals13
  t.same(stages(r), ['1', '2', '3'], 'stage 2 still ran')
  t.equal(value(r, 'stopit'), '100', 'stopit untouched by the stage 1 SIGCONT')
  t.notOk(has(r, 'ctrlaltdel'), 'ctrlaltdel not run for a stage 1 SIGINT')
  t.ok(has(r, '3-done'), 'stage 3 ran to its end')
  const warnings = count(r, 'warning: signals only work in stage 2.')
  t.ok(warnings >= 2, `warned (${warnings} times)`)
})

t.test('orphans are reaped', async t => {
  const r = await runs.reaping
  t.equal(value(r, 'orphan-ppid'), '1', 'the orphans were reparented to PID 1')
  t.equal(value(r, 'zombies'), '0', 'no zombie left')
  t.equal(value(r, 'orphan-left'), '0', 'exited orphan is gone from /proc')
})

t.test('reboot vs power off is chosen by /run/runit.reboot being u+x', async t => {
  const reboot = await runs.reboot
  t.equal(reboot.signal, 'SIGHUP', 'u+x: reboot(RB_AUTOBOOT): namespace init ended by SIGHUP')
  t.equal(count(reboot, 'system reboot.'), 1, 'system reboot message')
  t.equal(count(reboot, 'power off...'), 0, 'no power off message')
  const notX = await runs.rebootNotX
  t.equal(notX.signal, 'SIGINT', 'mode 644: power off')
  t.equal(count(notX, 'power off...'), 1, 'power off message')
})

t.test('SIGPWR (Debian): shut down without stopit, and power off', async t => {
  const r = await runs.pwr
  t.same(stages(r), ['1', '2', '3'], 'stages')
  t.ok(has(r, 'got-TERM'), 'stage 2 got SIGTERM')
  t.notOk(has(r, 'lingered'), 'stage 2 did not just run out')
  t.equal(r.signal, 'SIGINT', 'powers off although /run/runit.reboot is u+x')
})

t.test('ALRM, HUP, TERM, PIPE are ignored (not forwarded as Debian does ALRM)', async t => {
  const r = await runs.alrm
  t.ok(has(r, 'still-here'), 'stage 2 ran on')
  t.notOk(has(r, 'got-ALRM'), 'stage 2 got no SIGALRM')
  t.notOk(has(r, 'got-TERM'), 'no shutdown: stage 2 got no SIGTERM')
  t.same(stages(r), ['1', '2', '3'], 'nothing else happened')
  t.equal(count(r, 'warning: signals only work in stage 2.'), 0, 'no warning either')
})

t.test('without CAP_SYS_BOOT: kill -1 KILL, power off, halt, then exit', async t => {
  const r = await runs.noSysBoot
  t.same(stages(r), ['1', '2', '3'], 'stages')
  t.match(r.msgs.slice(-4), [
    '- runit: sending KILL signal to all processes...',
    '- runit: power off...',
    '- runit: system halt.',
    '- runit: exit.',
  ], 'tries power off, then halt, then exits')
  t.equal(r.exitCode, 0, 'exit code 0')
  const ticks = (await readFile(join(r.root, 'ticks'), 'utf8')).split('\n').filter(l => l !== '').map(Number)
  const inStage3 = Number(value(r, 'ticks-in-3'))
  t.ok(ticks.length > inStage3 && inStage3 > 0, 'the setsid\'d process was alive during stage 3')
  const last = ticks.at(-1) ?? NaN
  const done = at(r, '3-done')
  t.ok(r.endT - done > 1.8, `PID 1 lived on ~2 s after stage 3 (${(r.endT - done).toFixed(2)} s)`)
  t.ok(done - last < 0.3, `it was alive until stage 3 ended (last tick ${(last - done).toFixed(2)} s after)`)
  t.ok(last - done < 0.6, `it was SIGKILLed right after stage 3 (last tick ${(last - done).toFixed(2)} s after)`)
})

t.test('stdio goes to /dev/console; stage 1 reads it', async t => {
  const r = await runs.console
  t.same(stages(r), ['1', '2', '3'], 'stages')
  t.equal(value(r, 'stdin1'), '/dev/console', 'stage 1 stdin is /dev/console')
  t.equal(value(r, 'stdout2'), '/dev/console', 'stage 2 stdout is /dev/console')
  t.match(r.out, /hello-from-1\n/, 'stage 1 output on console')
  t.match(r.out, /hello-from-2\n/, 'stage 2 output on console')
  t.ok(r.msgs.includes('- runit: enter stage: /etc/runit/2'), 'runit messages on console')
  t.ok(r.msgs.includes('- runit: power off...'), 'down to the last one')
})
