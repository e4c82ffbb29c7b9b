// The boot's prestart, its C half and the supervisor's adoption, on the host: image/prestart.c
// is built here with a plan of the test's own and a main() that carries it out and then
// executes our runsvdir in the same process, as PID 1's stage 1 child carries it out and
// executes stage 1 (which goes on as the supervisor). The services the plan started must
// be adopted, not started again: same pid, their output before the supervisor started in
// their log, the supervisor's environment; a service that ended before the supervisor was
// up is reaped and started again; what the plan does not allow is left to the supervisor.
import t from 'tap';
import { execa } from 'execa';
import { existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { alive, haveBin, readIf, repo, spawnBg, sv, tree, until, type Tree } from '../lib/host.ts';
import { PRESTART_ONLY } from '../../image/prestart.ts';

const MAIN = `#include <stdio.h>
#include <unistd.h>
#include <fcntl.h>
void prestart(void);
/* argv[1]: a file made once the plan is carried out; argv[2...]: what to execute */
int main(int argc, char **argv) {
  (void)argc;
  prestart();
  usleep(500000);
  close(open(argv[1], O_WRONLY | O_CREAT, 0644));
  execv(argv[2], argv + 2);
  return 111;
}
`;

/** A service that says whether it started before the supervisor (the mark file missing then) and counts its starts. */
function service(tr: Tree, name: string, opts: { log?: boolean; exit?: number; extra?: string; unlinked?: boolean } = {}): string {
  const dir = join(tr.root, 'sv', name);
  mkdirSync(dir, { recursive: true });
  const when = `if [ -e ${tr.root}/mark ]; then echo late; else echo early; fi`;
  writeFileSync(join(dir, 'run'), `#!/bin/sh\necho $$ >> starts\n${when} > when\nenv > env.txt\necho "${name}: hello before or after"\n${opts.exit === undefined ? 'exec sleep 100000' : `exit ${opts.exit}`}\n`, { mode: 0o755 });
  if (opts.log) {
    mkdirSync(join(dir, 'log', 'main'), { recursive: true });
    writeFileSync(join(dir, 'log', 'run'), '#!/bin/sh\nexec svlogd -tt ./main\n', { mode: 0o755 });
  }
  if (opts.extra) writeFileSync(join(dir, opts.extra), '');
  if (!opts.unlinked) symlinkSync(dir, join(tr.sv, name));
  return dir;
}

/** image/prestart.c with MAIN, reading its plan from the tree's `plan`. */
async function build(tr: Tree): Promise<{ exe: string; plan: string }> {
  const exe = join(tr.root, 'prestart');
  const plan = join(tr.root, 'plan');
  writeFileSync(join(tr.root, 'main.c'), MAIN);
  await execa('gcc', ['-O2', '-Wall', '-Wextra', '-Werror', `-DPLAN="${plan}"`, '-o', exe, join(tr.root, 'main.c'), join(repo, 'image', 'prestart.c')]);
  return { exe, plan };
}

t.test('services started before the supervisor are adopted', { skip: haveBin() ? false : 'no build' }, async (t) => {
  const tr = tree('runit-ts-prestart-');
  t.teardown(() => tr.cleanup());
  const { exe, plan } = await build(tr);
  const logged = service(tr, 'logged', { log: true });
  const plain = service(tr, 'plain');
  const quick = service(tr, 'quick', { log: true, exit: 3 });
  const checked = service(tr, 'checked', { extra: 'check' });
  const gone = join(tr.root, 'sv', 'gone');
  const outside = service(tr, 'outside', { unlinked: true });
  // the plan's PATH is what stage 2 sets; here one the supervisor's own does not have
  const path = `${tr.bin}:/usr/bin:/bin:/plan`;
  const lines = [
    'unless-env runitdir',
    `scan ${tr.sv} ${tr.sv}`,
    `only ${PRESTART_ONLY.join(' ')}`,
    `path ${path}`,
    ...['logged 1', 'plain 0', 'quick 1', 'checked 0', 'gone 0'].map((l) => `service ${tr.sv}/${l}`),
    `service ${outside} 0`,
  ];
  writeFileSync(plan, lines.join('\n') + '\n');
  const bg = spawnBg(exe, [join(tr.root, 'mark'), tr.our('runsvdir'), '-P', tr.sv], { env: { PATH: `${tr.bin}:/usr/bin:/bin`, RUNIT_TS_HANDOFF: '1' } });
  const proc = bg.proc;
  t.teardown(async () => {
    proc.kill('SIGHUP'); // runsvdir: stop every service, then exit
    const killer = setTimeout(() => proc.kill('SIGKILL'), 10_000);
    await proc;
    clearTimeout(killer);
  });
  const stat = (dir: string) => (readIf(join(dir, 'supervise', 'stat')) ?? '').trim();
  await until(() => [logged, plain, checked].every((d) => stat(d) === 'run') && (readIf(join(quick, 'starts')) ?? '').split('\n').filter(Boolean).length >= 2, 15_000, `the services up: ${bg.output()}`);

  for (const dir of [logged, plain]) {
    const starts = readFileSync(join(dir, 'starts'), 'utf8').trim().split('\n');
    t.equal(starts.length, 1, `${dir}: started once`);
    t.equal(readFileSync(join(dir, 'when'), 'utf8').trim(), 'early', 'before the supervisor');
    t.equal(readFileSync(join(dir, 'supervise', 'pid'), 'utf8').trim(), starts[0], 'the supervisor has the prestarted pid');
    const env = readFileSync(join(dir, 'env.txt'), 'utf8');
    t.match(env, new RegExp(`^PATH=${path}$`, 'm'), "the plan's PATH");
    t.notMatch(env, /RUNIT_TS_(HANDOFF|PRESTART)/, 'neither the handoff offer nor the hand-over');
  }
  const st = await sv(tr.our('sv'), tr, ['status', 'logged']);
  t.match(st.stdout, /^run: logged: \(pid \d+\) \d+s; run: log: \(pid \d+\) \d+s$/m, 'sv status: the service and its logger');
  // what the service wrote before the supervisor (and its logger) ran waited in the pipe
  await until(() => (readIf(join(logged, 'log', 'main', 'current')) ?? '').includes('logged: hello'), 10_000, 'the log line');
  t.pass('its first line is in its log');

  const quickStarts = readFileSync(join(quick, 'starts'), 'utf8').trim().split('\n');
  t.ok(quickStarts.length >= 2, 'a prestarted service that exited was reaped and started again');
  t.equal(readFileSync(join(checked, 'when'), 'utf8').trim(), 'late', 'a directory with more than the plan allows is started by the supervisor');
  t.notOk(existsSync(gone), 'a planned directory that does not exist: nothing');
  t.ok(alive(proc.pid!), 'the supervisor runs');
  // a planned directory the supervisor does not supervise: its ./run is stopped
  const stray = Number(readFileSync(join(outside, 'starts'), 'utf8').trim());
  await until(() => !alive(stray), 10_000, 'the stray service stopped');
  t.match(bg.output(), new RegExp(`stopping ${outside}/run, started at boot for a service not in`), 'said once stopped');
});

t.test('runitdir= on the command line: nothing is prestarted', { skip: haveBin() ? false : 'no build' }, async (t) => {
  const tr = tree('runit-ts-prestart-env-');
  t.teardown(() => tr.cleanup());
  const { exe, plan } = await build(tr);
  const dir = service(tr, 'one');
  writeFileSync(plan, ['unless-env runitdir', `only ${PRESTART_ONLY.join(' ')}`, `path ${tr.bin}:/usr/bin:/bin`, `service ${tr.sv}/one 0`].join('\n') + '\n');
  const { proc } = spawnBg(exe, [join(tr.root, 'mark'), tr.our('runsvdir'), '-P', tr.sv], { env: { PATH: `${tr.bin}:/usr/bin:/bin`, runitdir: 'single' } });
  t.teardown(async () => {
    proc.kill('SIGHUP');
    await proc;
  });
  await until(() => readIf(join(dir, 'when')), 15_000, 'the service up');
  t.equal(readFileSync(join(dir, 'when'), 'utf8').trim(), 'late', 'started by the supervisor');
});
