// The library's client (SupervisedServices) and service builder against real
// supervisors: Debian's runsvdir/runsv and ours, the same steps and the same answers.
import t, { type Test } from 'tap';
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, readlinkSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { BIN, haveBin, publicBin, readIf, spawnBg, tree, until, type Tree } from '../lib/host.ts';
import { debianPath, toolFor, type Kind } from '../lib/runit.ts';
import { ServiceBuilder, ServiceError, SupervisedServices } from '../../src/index.ts';
import { failure } from '../lib/control.ts';

if (!haveBin()) t.fail(`${BIN} is missing: run make build`);

const KINDS: Kind[] = ['debian', 'ours'];

/** A scan directory with `kind`'s runsvdir on it; stopped at teardown. */
function supervisor(t: Test, kind: Kind): Tree {
  const tr = tree(`control-${kind}-`);
  const env: Record<string, string> = { PATH: kind === 'debian' ? debianPath() : `${tr.bin}:${process.env.PATH}` };
  if (kind === 'ours') toolFor('ours', tr.bin, 'runsv');
  const bg = spawnBg(toolFor(kind, tr.bin, 'runsvdir'), ['-P', tr.sv], { env });
  t.teardown(async () => {
    bg.proc.kill('SIGHUP'); // runsvdir: TERM every runsv, then exit
    await bg.proc;
    tr.cleanup();
  });
  return tr;
}

for (const kind of KINDS) {
  t.test(`client against ${kind} runsvdir`, async (t) => {
    const tr = supervisor(t, kind);
    const sv = new SupervisedServices({ scanDir: tr.sv, timeoutMs: 8000 });
    const src = tr.service('web', { run: '#!/bin/sh\nexec sleep 1000\n', 'log/run': '#!/bin/sh\nexec cat >/dev/null\n' });
    symlinkSync(src, join(tr.sv, 'web'));
    const up = await sv.wait('web', 'up', { timeoutMs: 10000 }).catch(async (e: unknown) => {
      // the supervisor may not have made supervise/ yet: wait for it, then again
      if (e instanceof ServiceError && (e.reason === 'no-supervise' || e.reason === 'not-running')) {
        await until(() => existsSync(join(src, 'supervise/ok')), 10000, 'supervise/ok');
        return sv.wait('web', 'up', { timeoutMs: 10000 });
      }
      throw e;
    });
    t.equal(up?.state, 'run');
    t.ok(up?.pid, 'a pid');
    t.equal(up?.want, 'up');
    t.equal(up?.normallyUp, true);
    t.equal(up?.ready, true, 'no ./check: ready');
    await until(async () => (await sv.status('web')).log?.state === 'run', 10000, 'log up');
    t.equal((await sv.status('web')).log?.state, 'run', 'the log service is reported');
    t.equal(readFileSync(join(src, 'supervise/pid'), 'utf8').trim(), String(up?.pid), 'the pid runsv wrote');

    const down = await sv.stop('web');
    t.equal(down.state, 'down');
    t.equal(down.pid, undefined);
    t.equal(down.want, 'down');

    const again = await sv.start('web');
    t.equal(again.state, 'run');
    const restarted = await sv.restart('web');
    t.not(restarted.pid, again.pid, 'restart: a new process');

    await sv.signal('web', 'STOP');
    await until(async () => (await sv.status('web')).paused, 3000, 'paused');
    await sv.signal('web', 'CONT');
    await until(async () => !(await sv.status('web')).paused, 3000, 'continued');

    // ./check decides readiness: a start waits for it, and times out while it fails
    writeFileSync(join(src, 'check'), '#!/bin/sh\ntest -e ready\n', { mode: 0o755 });
    await sv.stop('web');
    const t0 = Date.now();
    const e = await sv.start('web', { timeoutMs: 1500 }).catch((e: unknown) => e);
    t.type(e, ServiceError);
    t.equal((e as ServiceError).reason, 'timeout');
    t.match((e as ServiceError).message, /^web: not up within 1500 ms/);
    t.equal((e as ServiceError).status?.ready, false, 'status says not ready');
    t.ok(Date.now() - t0 >= 1400, 'waited the timeout');
    writeFileSync(join(src, 'ready'), '');
    t.equal((await sv.start('web')).ready, true);

    // a service that ignores TERM: stop times out; with kill it is killed
    const stubborn = tr.service('stubborn', { run: "#!/bin/sh\ntrap '' TERM\nwhile :; do sleep 1; done\n" });
    symlinkSync(stubborn, join(tr.sv, 'stubborn'));
    await until(() => existsSync(join(stubborn, 'supervise/ok')), 10000, 'stubborn supervised');
    await sv.wait('stubborn', 'up', { timeoutMs: 10000 });
    t.has(await failure(sv.stop('stubborn', { timeoutMs: 1200, kill: true })), { reason: 'killed' });
    await until(async () => (await sv.status('stubborn')).state === 'down', 5000, 'killed');

    // errors name the service and the reason
    t.has(await failure(sv.status('missing')), { reason: 'no-service', message: 'missing: unable to change to service directory: file does not exist' });
    mkdirSync(join(tr.root, 'bare'));
    t.has(await failure(sv.status(join(tr.root, 'bare'))), { reason: 'no-supervise' });

    // exit: the runsv goes away; a second exit is "runsv not running", which is fine
    await sv.exit(join(tr.sv, 'stubborn'), { timeoutMs: 5000 });
    t.ok(true, 'runsv exited');
  });
}

for (const kind of KINDS) {
  t.test(`service builder against ${kind} runsvdir`, async (t) => {
    const tr = supervisor(t, kind);
    const conf = join(tr.root, 'servicebuilder.d');
    const stage = join(tr.root, 'stage');
    mkdirSync(conf);
    const lines: string[] = [];
    const sv = new SupervisedServices({ scanDir: tr.sv, timeoutMs: 8000 });
    const builder = new ServiceBuilder({ configRoot: conf, stagingRoot: stage, runitRoot: tr.sv }, { control: sv, log: (l) => lines.push(l), pruneTimeoutMs: 3000 });
    writeFileSync(join(conf, 'app.yaml'), `web:\n  run: [sleep, "1000"]\n  sleep: 0\n  log: [cat]\nbatch:\n  run: [sleep, "1000"]\n  sleep: 0\n  restart: never\n`);
    writeFileSync(join(conf, 'broken.yaml'), `oops:\n  run: sleep 1000\n`);
    writeFileSync(join(conf, 'notes.txt'), 'not a template');

    let r = await builder.apply();
    t.same(r.activated.sort(), ['batch', 'web']);
    t.same(r.errors.map((e) => e.message), [`${join(conf, 'broken.yaml')}: oops.run: must be a list`], 'the bad file is reported, the others applied');
    t.equal(r.pruneSkipped, true, 'no pruning while a file is unreadable');
    t.equal(readlinkSync(join(tr.sv, 'web')), join(stage, 'web'));
    t.ok(existsSync(join(stage, 'batch/down')), 'restart never: a down file');
    t.equal(statSync(join(stage, 'web/run')).mode & 0o777, 0o755);

    await until(() => existsSync(join(stage, 'web/supervise/ok')), 10000, 'web supervised');
    t.equal((await sv.wait('web', 'up', { timeoutMs: 10000 }))?.state, 'run');
    await until(() => existsSync(join(stage, 'batch/supervise/ok')), 10000, 'batch supervised');
    const batch = await sv.status('batch');
    t.equal(batch.state, 'down', 'normally down: not started');
    t.equal(batch.normallyUp, false);

    // activating twice is a no-op, and an existing supervise/ (ok FIFO and all) is left alone
    const runStat = statSync(join(stage, 'web/run'));
    lines.length = 0;
    writeFileSync(join(conf, 'broken.yaml'), `oops:\n  run: [sleep, "1000"]\n  sleep: 0\n`);
    r = await builder.apply();
    t.same(r.staged, ['oops'], 'only the new service was written');
    t.same(r.activated, ['oops']);
    t.equal(statSync(join(stage, 'web/run')).mtimeMs, runStat.mtimeMs, 'unchanged file not rewritten');
    r = await builder.apply();
    t.same([r.staged, r.activated, r.pruned], [[], [], []], 'second apply: nothing to do');

    // a changed template rewrites only what changed; removing one prunes it (stopped first)
    const webPid = (await sv.status('web')).pid;
    writeFileSync(join(conf, 'app.yaml'), `web:\n  run: [sleep, "2000"]\n  sleep: 0\n  log: [cat]\n`);
    lines.length = 0;
    r = await builder.apply();
    t.same(r.staged, ['web']);
    t.same(r.pruned, ['batch']);
    t.notOk(existsSync(join(stage, 'batch')), 'pruned: staged dir gone');
    t.notOk(existsSync(join(tr.sv, 'batch')), 'pruned: link gone');
    t.equal((await sv.status('web')).pid, webPid, 'a rewritten run script takes effect at the next start');

    await until(() => existsSync(join(stage, 'oops/supervise/ok')), 10000, 'oops supervised');
    await sv.wait('oops', 'up', { timeoutMs: 10000 });
    const oopsPid = (await sv.status('oops')).pid!;
    writeFileSync(join(conf, 'broken.yaml'), '');
    r = await builder.apply();
    t.same(r.pruned, ['oops']);
    await until(() => {
      try {
        process.kill(oopsPid, 0);
        return false;
      } catch {
        return true;
      }
    }, 5000, 'the pruned service stopped');
    t.ok(lines.includes('oops: pruned'), 'pruning is reported');

    // a link in the scan directory that the builder did not make is never pruned
    const other = tr.service('other', { run: '#!/bin/sh\nexec sleep 1000\n' });
    symlinkSync(other, join(tr.sv, 'other'));
    r = await builder.apply();
    t.same(r.pruned, []);
    t.ok(existsSync(join(tr.sv, 'other')));
  });
}


// The loggers of the usual shape write their ./log/main, as nobody: the default one and a
// template's own `chpst -u nobody svlogd -tt ./main` (our runsvdir: the logger, as
// nobody, runs our tools from a world-readable copy).
t.test('service builder: every log/main is nobody\'s, and the default logger writes it as nobody', { skip: process.geteuid?.() !== 0 && 'chpst -u nobody needs root' }, async (t) => {
  const pub = publicBin();
  const tr = tree('control-logmain-', pub.bin);
  chmodSync(tr.root, 0o755); // nobody must reach the tools in tr.bin
  symlinkSync(pub.bin, join(tr.bin, 'chpst'));
  const bg = spawnBg(join(tr.bin, 'runsvdir'), ['-P', tr.sv], { env: { PATH: `${tr.bin}:${process.env.PATH}` } });
  t.teardown(async () => {
    bg.proc.kill('SIGHUP');
    await bg.proc;
    tr.cleanup();
  });
  const conf = join(tr.root, 'servicebuilder.d');
  const stage = join(tr.root, 'stage');
  mkdirSync(conf);
  const builder = new ServiceBuilder({ configRoot: conf, stagingRoot: stage, runitRoot: tr.sv }, { control: new SupervisedServices({ scanDir: tr.sv, timeoutMs: 8000 }) });
  writeFileSync(join(conf, 'app.yaml'), [
    'plain:\n  run: [sh, -c, "echo from-plain; exec sleep 1000"]\n  sleep: 0\n',
    'own:\n  run: [sh, -c, "echo from-own; exec sleep 1000"]\n  sleep: 0\n  log: [chpst, -u, nobody, svlogd, -tt, ./main]\n',
  ].join(''));
  const r = await builder.apply();
  t.same(r.errors, []);
  const nobody = Number((await execa('id', ['-u', 'nobody'])).stdout);
  for (const name of ['plain', 'own']) {
    const current = join(stage, name, 'log/main/current');
    const logged = await until(() => readIf(current)?.includes(`from-${name}`), 15000, `${name}: its output in log/main/current`).catch((e: Error) => t.fail(`${e.message}; the supervisor said: ${bg.output()}`));
    if (logged) t.equal(statSync(current).uid, nobody, `${name}: the logger wrote as nobody`);
  }
});

// The applet in the executable: as root it gives log/main to nobody (the account looked
// up through the addon); as another user it chowns nothing and its default logger runs
// as that user (only root can switch users).
t.test('servicebuilder applet as root and as another user', { skip: process.geteuid?.() !== 0 && 'running as nobody needs root' }, async (t) => {
  const pub = publicBin();
  const tr = tree('control-sbuser-', pub.bin);
  chmodSync(tr.root, 0o755);
  t.teardown(() => tr.cleanup());
  const nobody = { uid: Number((await execa('id', ['-u', 'nobody'])).stdout), gid: Number((await execa('id', ['-g', 'nobody'])).stdout) };
  const yaml = 'web:\n  run: [sleep, "1000"]\n';
  const setup = (who: string, owner?: { uid: number; gid: number }) => {
    const d = { conf: join(tr.root, `${who}-conf`), stage: join(tr.root, `${who}-stage`), sv: join(tr.root, `${who}-service`) };
    for (const p of Object.values(d)) {
      mkdirSync(p);
      if (owner) chownSync(p, owner.uid, owner.gid);
    }
    writeFileSync(join(d.conf, 'app.yaml'), yaml);
    return d;
  };
  const run = (d: { conf: string; stage: string; sv: string }, ids: { uid?: number; gid?: number } = {}) =>
    execa(pub.bin, ['servicebuilder', '-n', '-c', d.conf, '-s', d.stage, '-d', d.sv], { ...ids, reject: false });

  const root = setup('root');
  let r = await run(root);
  t.equal(r.exitCode, 0, r.stderr);
  t.same([statSync(join(root.stage, 'web/log/main')).uid, statSync(join(root.stage, 'web/log/main')).gid], [nobody.uid, nobody.gid], 'as root: log/main is nobody\'s');
  t.match(readFileSync(join(root.stage, 'web/log/run'), 'utf8'), /\nexec chpst -u nobody svlogd -tt \.\/main\n$/);

  const user = setup('user', nobody);
  r = await run(user, nobody);
  t.equal(r.exitCode, 0, r.stderr);
  t.equal(statSync(join(user.stage, 'web/log/main')).uid, nobody.uid, 'as another user: log/main is that user\'s');
  t.match(readFileSync(join(user.stage, 'web/log/run'), 'utf8'), /\nexec svlogd -tt \.\/main\n$/, 'and the default logger runs as that user');
});
