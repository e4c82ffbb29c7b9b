// The guest agent (runit-ts agent in the harness image, out/harness/ARCH) through the
// harness's Machine.exec and friends, one boot per arch: exit code, stdout and stderr
// apart, stdin, env, cwd, a timeout, a signal, streaming, files both ways, 9p shares
// read-only and read-write, a supervisor event, a reconnect, and a snapshot restored.
import t from 'tap';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { bootFiles } from '../../image/packers/initramfs.ts';
import type { Arch } from '../../image/inputs.ts';
import { boot, findExecutable, type BootOptions, type Machine } from '../../src/harness/index.ts';
import { PROMPT } from './boot.ts';
import { processTempDir, repo } from './host.ts';

/** Round trips measured for each of the agent and the console. */
const ROUNDS = 5;
/** Size of the scratch disk (bytes) that checks a restore brings the disk back as saved. */
const DISK_BYTES = 4 * 1024 * 1024;
/** What the guest writes at the start of that disk before the snapshot. */
const DISK_MARK = 'disk-state-before-snapshot';

/** The median of some numbers. */
function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

export function agentSuite(arch: Arch): void {
  const dir = join(repo, 'out', 'harness', arch);
  if (!existsSync(join(dir, 'initramfs.img'))) {
    t.fail(`out/harness/${arch}/initramfs.img is missing: run make vm-image ARCH=${arch}`);
    return;
  }
  const logs = join(repo, 'out', 'test-logs');
  mkdirSync(logs, { recursive: true });
  const tmp = processTempDir('runit-ts-agent-');
  const ro = join(tmp, 'ro');
  const rw = join(tmp, 'rw');
  mkdirSync(ro);
  mkdirSync(rw);
  writeFileSync(join(ro, 'hello.txt'), 'from the host\n');
  // a writable disk through a qcow2 overlay (restorable), when qemu-img is there to make one
  const disk = findExecutable('qemu-img') !== undefined ? join(tmp, 'disk.raw') : undefined;
  if (disk !== undefined) writeFileSync(disk, Buffer.alloc(DISK_BYTES));
  const opts: BootOptions = {
    arch,
    ...bootFiles(dir, arch),
    memory: 512,
    agent: true,
    snapshotRam: true,
    shares: [
      { host: ro, tag: 'ro', readOnly: true },
      { host: rw, tag: 'rw' },
    ],
    ...(disk !== undefined ? { drives: [{ file: disk }], restorable: true } : {}),
  };
  let m: Machine;

  t.before(async () => {
    m = await boot({ ...opts, consoleLog: join(logs, `${arch}-agent.log`) });
  });
  t.teardown(() => m?.dispose());

  t.test('the agent answers', async (t) => {
    const agent = await m.waitForAgent();
    t.ok(agent.pid > 1, `agent pid ${agent.pid}`);
    t.comment(`figure: ${arch} QEMU start -> agent answered: ${m.elapsed().toFixed(1)} s`);
  });

  t.test('exit code, stdout and stderr apart', async (t) => {
    const r = await m.exec(['sh', '-c', 'echo to-out; echo to-err >&2; exit 3']);
    t.equal(r.code, 3, 'exit code');
    t.equal(r.signal, null, 'no signal');
    t.equal(r.stdout, 'to-out\n', 'stdout alone');
    t.equal(r.stderr, 'to-err\n', 'stderr alone');
    t.equal(r.via, 'agent');
    t.equal(r.timedOut, false);
  });

  t.test('stdin, env and cwd are passed', async (t) => {
    const cat = await m.exec(['cat'], { stdin: 'line one\nline two\n' });
    t.equal(cat.stdout, 'line one\nline two\n', 'stdin reached the command');
    t.equal(cat.code, 0);
    const env = await m.exec(['sh', '-c', 'echo "$GREETING"; pwd'], { env: { GREETING: 'hi there' }, cwd: '/tmp' });
    t.equal(env.stdout, 'hi there\n/tmp\n');
  });

  t.test('a missing command is an error', async (t) => {
    await t.rejects(m.exec(['/no/such/command']), /ENOENT/);
  });

  t.test('a timeout kills the command', async (t) => {
    const r = await m.exec(['sh', '-c', 'echo started; sleep 60; echo never'], { timeout: 1000 });
    t.equal(r.timedOut, true, 'timed out');
    t.equal(r.signal, 'SIGKILL');
    t.equal(r.code, null);
    t.equal(r.stdout, 'started\n', 'output before the kill kept');
    t.ok(r.ms < 20_000, `ended after ${r.ms.toFixed(0)} ms`);
  });

  t.test('a signal is reported as such', async (t) => {
    const r = await m.exec(['sh', '-c', 'kill -TERM $$']);
    t.equal(r.signal, 'SIGTERM');
    t.equal(r.code, null);
  });

  t.test('output is streamed as it comes', async (t) => {
    const t0 = performance.now();
    let first: number | undefined;
    const r = await m.exec(['sh', '-c', 'echo early; sleep 2; echo late'], {
      onStdout: (c) => {
        if (first === undefined && c.toString().includes('early')) first = performance.now() - t0;
      },
    });
    t.equal(r.stdout, 'early\nlate\n');
    t.ok(first !== undefined && first < r.ms - 1000, `first chunk at ${first?.toFixed(0)} ms, end at ${r.ms.toFixed(0)} ms`);
  });

  t.test('files are copied in and out', async (t) => {
    const data = randomBytes(700 * 1024);
    const src = join(tmp, 'in.bin');
    writeFileSync(src, data, { mode: 0o640 });
    await m.copyIn(src, '/root/sub/in.bin');
    const sum = await m.exec(['sha256sum', '/root/sub/in.bin']);
    t.equal(sum.stdout.split(' ')[0], createHash('sha256').update(data).digest('hex'), 'the guest has the same bytes');
    const mode = await m.exec(['stat', '-c', '%a', '/root/sub/in.bin']);
    t.equal(mode.stdout.trim(), '640', 'mode kept');
    const back = join(tmp, 'out', 'back.bin');
    await m.copyOut('/root/sub/in.bin', back);
    t.ok(readFileSync(back).equals(data), 'copied back unchanged');
    await t.rejects(m.copyOut('/no/such/file', join(tmp, 'x')), /ENOENT/);
  });

  t.test('9p shares: read-only and read-write', async (t) => {
    await m.mountShare('ro', '/mnt/ro', { readOnly: true });
    await m.mountShare('rw', '/mnt/rw');
    const read = await m.exec(['cat', '/mnt/ro/hello.txt']);
    t.equal(read.stdout, 'from the host\n', 'the guest reads the host file');
    const denied = await m.exec(['sh', '-c', 'echo x > /mnt/ro/new.txt']);
    t.not(denied.code, 0, `a write to the read-only share fails: ${denied.stderr.trim()}`);
    t.match(denied.stderr, /Read-only/);
    t.notOk(existsSync(join(ro, 'new.txt')), 'nothing written on the host');
    const wrote = await m.exec(['sh', '-c', 'echo from the guest > /mnt/rw/out.txt']);
    t.equal(wrote.code, 0, wrote.stderr);
    t.equal(readFileSync(join(rw, 'out.txt'), 'utf8'), 'from the guest\n', 'the host sees the guest write');
    await t.rejects(m.mountShare('nosuchtag', '/mnt/x'), /nosuchtag/);
    // QEMU refuses to save a machine with a share mounted; the guest runs on
    await t.rejects(m.snapshot(join(tmp, 'refused.state')), /snapshot .*VirtFS/);
    t.equal((await m.exec(['echo', 'running on'])).stdout, 'running on\n', 'the guest runs on after the refusal');
    await m.umountShare('/mnt/ro');
    await m.umountShare('/mnt/rw');
  });

  t.test('a service going down is an event', async (t) => {
    const down = m.waitForAgentEvent((e) => e.event === 'down' && e.service === 'crond' && e.replay !== true, { timeout: 30_000 });
    const r = await m.exec(['sv', 'down', 'crond']);
    t.equal(r.code, 0, r.stdout + r.stderr);
    const e = await down;
    t.equal(e.service, 'crond');
    t.ok(m.agentEvents.some((x) => x.replay === true && x.event === 'up'), 'the backlog came first (replayed up events)');
    await m.exec(['sv', 'up', 'crond']);
  });

  t.test('the agent survives the host closing and reopening its end', async (t) => {
    const before = (await m.waitForAgent()).pid;
    const again = await m.reconnectAgent();
    t.equal(again.pid, before, 'the same agent process answers');
    const r = await m.exec(['echo', 'still here']);
    t.equal(r.stdout, 'still here\n');
  });

  t.test('the console fallback: exit code, stdout and stderr apart, stdin, cwd, env, timeout', async (t) => {
    await m.sendLine('');
    await m.waitFor(PROMPT, { from: 0, timeout: 60_000 });
    const r = await m.exec(['sh', '-c', 'cat; echo "to-err $X" >&2; pwd; exit 3'], { via: 'console', stdin: 'piped in\n', cwd: '/tmp', env: { X: 'it is' } });
    t.equal(r.via, 'console');
    t.equal(r.code, 3, 'exit code');
    t.equal(r.stdout, 'piped in\n/tmp\n', 'stdout alone, stdin passed');
    t.equal(r.stderr, 'to-err it is\n', 'stderr alone');
    const slow = await m.exec(['sleep', '30'], { via: 'console', timeout: 1000 });
    t.equal(slow.timedOut, true, 'timed out');
    t.equal(slow.signal, 'SIGKILL');
  });

  t.test('round trips: agent against console', async (t) => {
    const agent: number[] = [];
    const con: number[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      const t0 = performance.now();
      const r = await m.exec(['true']);
      agent.push(performance.now() - t0);
      t.equal(r.code, 0);
      // /bin/true: a process, as the agent's (ash's own true would start none)
      const c0 = performance.now();
      const c = await m.run('/bin/true');
      con.push(performance.now() - c0);
      t.equal(c.status, 0);
    }
    t.comment(`figure: ${arch} round trip of \`true\` (a process): agent ${median(agent).toFixed(0)} ms, console m.run ${median(con).toFixed(0)} ms (median of ${ROUNDS})`);
  });

  t.test('snapshot, then restore and exec in the restored machine', async (t) => {
    await m.exec(['sh', '-c', 'echo before-snapshot > /tmp/state']);
    if (disk !== undefined) {
      const w = await m.exec(['sh', '-c', `printf %s ${DISK_MARK} | dd of=/dev/vda conv=fsync 2>&1`]);
      t.equal(w.code, 0, w.stdout);
    }
    const file = join(tmp, 'snap', 'vm.state');
    t.equal(await m.waitForIdle({ timeout: 60_000 }), true, 'the guest goes quiet before it is saved');
    // what the run has cost the host so far: a booted guest has had QEMU translate and run its code and touch its RAM
    const usage = m.hostUsage();
    t.ok(usage !== undefined && usage.userMs > 100 && usage.systemMs >= 0 && usage.anonKiB > 32 * 1024, `QEMU's host usage: ${JSON.stringify(usage)}`);
    const snap = await m.snapshot(file, { then: 'quit' });
    t.ok(snap.bytes > 1024 * 1024, `state file ${(snap.bytes / 1048576).toFixed(1)} MiB in ${snap.ms.toFixed(0)} ms`);
    t.comment(`figure: ${arch} snapshot (${(snap.bytes / 1048576).toFixed(0)} MiB): ${snap.ms.toFixed(0)} ms`);
    const t0 = performance.now();
    // without events: the restored session subscribes only when waited on (below)
    const r2 = await boot({ ...opts, agentEvents: false, restore: file, consoleLog: join(logs, `${arch}-agent-restored.log`) });
    try {
      const loaded = performance.now() - t0;
      await r2.waitForAgent();
      const answered = performance.now() - t0;
      const r = await r2.exec(['true']);
      const ms = performance.now() - t0;
      t.equal(r.code, 0);
      t.comment(`figure: ${arch} restore -> \`true\` done: ${ms.toFixed(0)} ms (state loaded and running at ${loaded.toFixed(0)} ms, agent answered at ${answered.toFixed(0)} ms)`);
      const state = await r2.exec(['cat', '/tmp/state']);
      t.equal(state.stdout, 'before-snapshot\n', 'the guest state is the one saved');
      if (disk === undefined) t.comment('no qemu-img: the restorable disk is not checked');
      else {
        // the page cache dropped, so the bytes come from the restored disk itself
        const d = await r2.exec(['sh', '-c', `echo 3 > /proc/sys/vm/drop_caches; head -c ${DISK_MARK.length} /dev/vda`]);
        t.equal(d.stdout, DISK_MARK, 'the disk is the one saved with the snapshot');
        t.ok(readFileSync(disk).equals(Buffer.alloc(DISK_BYTES)), 'the disk image itself was never written');
        t.ok(snap.disks.length === 1 && existsSync(snap.disks[0]!), `the overlay saved: ${snap.disks[0]}`);
      }
      await r2.mountShare('ro', '/mnt/ro', { readOnly: true });
      t.equal((await r2.exec(['cat', '/mnt/ro/hello.txt'])).stdout, 'from the host\n', 'a share mounts after the restore');
      t.same(r2.agentEvents, [], 'no events before one is waited for');
      const up = await r2.waitForAgentEvent((e) => e.replay === true && e.event === 'up', { timeout: 30_000 });
      t.ok(up.service !== undefined, `the first wait subscribes: the backlog comes (${up.service} up)`);
    } finally {
      await r2.dispose();
    }
  });
}
