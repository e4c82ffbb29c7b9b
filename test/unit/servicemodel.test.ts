// The optional service files (src/lib/servicemodel.ts), the dependency coordinator
// (src/runsv/deps.ts) and the timeline analysis (src/analyze/timeline.ts), on files
// and timelines made here.
import t from 'tap';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readServiceModel } from '../../src/lib/servicemodel.ts';
import { Coordinator, type DepState, type Participant, type Timeline } from '../../src/runsv/deps.ts';
import { analyse, criticalChain, formatBlame, formatChain, formatTime, plotSvg } from '../../src/analyze/timeline.ts';

const work = mkdtempSync(join(tmpdir(), 'servicemodel-'));
t.teardown(() => rmSync(work, { recursive: true, force: true }));

function svc(name: string, files: Record<string, string>): string {
  const d = join(work, name);
  for (const [rel, text] of Object.entries(files)) {
    mkdirSync(join(d, rel, '..'), { recursive: true });
    writeFileSync(join(d, rel), text);
  }
  mkdirSync(d, { recursive: true });
  return d;
}

t.test('reading the files', async (t) => {
  let m = readServiceModel(svc('plain', { run: '' }));
  t.same([m.readiness, m.type, m.dependencies, m.waitsFor, m.timeoutUpMs, m.problems], ['started', 'longrun', [], [], 0, []], 'nothing new: as runit');
  m = readServiceModel(svc('full', { 'dependencies.d/b': '', 'dependencies.d/a': '', 'waits-for.d/c': '', 'waits-for.d/a': '', 'notification-fd': '5\n', 'timeout-up': '1500\n', 'restart-with-dependency': '', check: '' }));
  t.same(m.dependencies, ['a', 'b'], 'sorted');
  t.same(m.waitsFor, ['c'], 'a name in both is a hard dependency');
  t.equal(m.readiness, 'notification-fd', 'a notification beats ./check');
  t.equal(m.notificationFd, 5);
  t.equal(m.timeoutUpMs, 1500);
  t.ok(m.restartWithDependency);
  t.equal(readServiceModel(svc('ns', { 'notify-socket': '', check: '' })).readiness, 'notify-socket');
  t.equal(readServiceModel(svc('ck', { check: '' })).readiness, 'check');
  t.equal(readServiceModel(svc('os', { type: 'oneshot\n', 'notification-fd': '3' })).readiness, 'oneshot');
  m = readServiceModel(svc('bad', { type: 'bundle', 'notification-fd': '1', 'timeout-up': '2s' }));
  t.same(m.problems, [
    "type: expected oneshot or longrun, not 'bundle'; taken as longrun",
    "notification-fd: expected a number from 3 to 1023, not '1'; ignored",
    "timeout-up: expected milliseconds, not '2s'; no bound",
  ]);
  t.equal(m.readiness, 'started');
});

function member(c: Coordinator, name: string, deps: string[], waits: string[] = [], state: DepState = 'pending'): Participant & { state: DepState; kicks: number } {
  const p = {
    name,
    state,
    kicks: 0,
    declared: () => ({ dependencies: deps, waitsFor: waits, restartWithDependency: false }),
    depState: () => p.state,
    failure: () => (p.state === 'failed' ? 'exited 1' : undefined),
    kick: () => void p.kicks++,
    dependencyLost: () => undefined,
  };
  c.add(p);
  return p;
}

t.test('the coordinator: blockers, cycles, unknown names, each said once', async (t) => {
  const said: string[] = [];
  const c = new Coordinator(undefined, (l) => said.push(l));
  const a = member(c, 'a', []);
  member(c, 'b', ['a'], ['x']);
  member(c, 'p', ['q']);
  member(c, 'q', ['r']);
  member(c, 'r', ['p']);
  t.same(c.blockers('b', ['a'], ['x']), [{ name: 'a', hard: true, why: 'not ready yet' }]);
  a.state = 'failed';
  t.same(c.blockers('b', ['a'], []), [{ name: 'a', hard: true, why: 'failed: exited 1' }], 'hard: a failure blocks');
  t.same(c.blockers('b', [], ['a']), [], 'soft: a failure is enough');
  a.state = 'ready';
  t.same(c.blockers('b', ['a'], ['x']), []);
  t.same(c.blockers('b', ['nosuch'], []), [{ name: 'nosuch', hard: true, why: 'not a service here' }]);
  c.blockers('b', ['nosuch'], []);
  t.same(c.blockers('p', ['q'], []), [], 'a cycle does not block');
  c.blockers('q', ['r'], []);
  t.same(said, ["b: x in waits-for.d is not a service here; not waiting for it", 'b: nosuch in dependencies.d is not a service here; waiting for it to appear', 'dependency cycle: p -> q -> r -> p; these start without waiting for each other'], 'each said once');
  const before = a.kicks;
  c.changed('b');
  t.equal(a.kicks, before + 1, 'a change makes the others look again');
});

const TL: Timeline = {
  version: 1,
  scandir: '/etc/service',
  supervisorStart: 5.0,
  written: 9,
  services: {
    net: { type: 'longrun', readiness: 'notification-fd', dependencies: [], waitsFor: [], wanted: 5.1, depsMet: 5.1, spawned: 5.11, ready: 5.71 },
    mnt: { type: 'oneshot', readiness: 'oneshot', dependencies: [], waitsFor: [], wanted: 5.1, depsMet: 5.1, spawned: 5.12, exited: 5.2, ready: 5.2 },
    app: { type: 'longrun', readiness: 'started', dependencies: ['net', 'mnt'], waitsFor: [], wanted: 5.1, depsMet: 5.72, spawned: 5.73, ready: 5.74 },
    bad: { type: 'oneshot', readiness: 'oneshot', dependencies: [], waitsFor: [], wanted: 5.1, depsMet: 5.1, spawned: 5.1, exited: 5.3, failed: 'exited 2', failedAt: 5.3 },
    stuck: { type: 'longrun', readiness: 'started', dependencies: ['bad'], waitsFor: [], wanted: 5.1 },
  },
};

t.test('time, blame, critical-chain, plot', async (t) => {
  const a = analyse(TL, { kernel: 3.2, stage1Start: 4.1, stage1End: 4.6 });
  t.equal(formatTime(a), 'Startup finished in 3.200s (kernel) + 1.400s (stage 1) + 1.140s (services) = 5.740s\nAll 4 services up at 5.740s (last: app)\nNot ready: stuck\n');
  t.equal(formatBlame(a).split('\n')[0], '  0.600s net (notification-fd)');
  t.match(formatBlame(a), /0\.200s bad \(oneshot, failed: exited 2\)/);
  t.match(formatBlame(a), /0\.010s app \(started, waited 0\.620s for dependencies\)/);
  t.equal(formatChain(criticalChain(a)), 'app @5.740s +0.010s\n└─net @5.710s +0.600s\n');
  const svg = plotSvg(a);
  t.match(svg, /^<\?xml[^]*<svg [^]*<\/svg>\n$/);
  t.equal(svg.match(/<text x="\d+" y="\d+" text-anchor="end">/g)?.length, 7, 'a row each: kernel, stage 1 and five services');
  t.match(svg, /<title>bad: task failed \(exited 2\)<\/title>/);
  const b = analyse(TL, undefined);
  t.equal(b.origin, 'supervisor');
  t.equal(b.allUp, 0.74, 'without boot marks, from the supervisor start');
});
