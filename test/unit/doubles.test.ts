// The test doubles behave as runsv would, record faithfully, and fail as documented.
import t from 'tap';
import { FailingServices, FakeServices, RecordingServices, ServiceError, type ServiceControl } from '../../src/index.ts';
import { failure } from '../lib/control.ts';

t.test('FakeServices follows runsv state changes', async (t) => {
  const sv = new FakeServices(['web']).add('batch', { normallyDown: true });
  const web = await sv.status('web');
  t.equal(web.state, 'run');
  t.ok(web.pid);
  t.equal(web.normallyUp, true);
  t.equal((await sv.status('batch')).state, 'down');
  t.equal((await sv.status('batch')).normallyUp, false);

  const stopped = await sv.stop('web');
  t.equal(stopped.state, 'down');
  t.equal(stopped.want, 'down');
  const started = await sv.start('web');
  t.equal(started.state, 'run');
  t.not(started.pid, web.pid, 'a new process');
  const restarted = await sv.restart('web');
  t.not(restarted.pid, started.pid);

  await sv.once('batch');
  t.equal((await sv.status('batch')).state, 'run');
  sv.crash('batch');
  t.equal((await sv.status('batch')).state, 'down', 'once: not restarted after it exits');
  sv.crash('web');
  t.equal((await sv.status('web')).state, 'run', 'wanted up: restarted');

  await sv.signal('web', 'STOP');
  t.equal((await sv.status('web')).paused, true);
  await sv.signal('web', 'CONT');
  t.equal((await sv.status('web')).paused, false);

  t.has(await failure(sv.status('nope')), { reason: 'no-service' });
  await sv.exit('web');
  t.has(await failure(sv.status('web')), { reason: 'not-running' });
  t.equal(await sv.wait('web', 'exit'), undefined);
});

t.test('FakeServices: a failing ./check makes start time out (or kill with kill: true)', async (t) => {
  const sv = new FakeServices().add('db', { ready: false, state: 'down' });
  const e = await sv.start('db').catch((e: unknown) => e);
  t.type(e, ServiceError);
  t.equal((e as ServiceError).reason, 'timeout');
  t.equal((e as ServiceError).service, 'db');
  t.equal((e as ServiceError).status?.state, 'run');
  t.has(await failure(sv.restart('db', { kill: true })), { reason: 'killed' });
  t.equal((await sv.status('db')).state, 'down');
});

t.test('RecordingServices records in order and passes through', async (t) => {
  const rec = new RecordingServices();
  await rec.start('a', { timeoutMs: 100 });
  await rec.signal('a', 'HUP');
  await rec.stop('b');
  await rec.wait('a', 'up');
  t.same(rec.lines(), ['start a', 'signal a HUP', 'stop b', 'wait a up']);
  t.same(rec.commands[0], { verb: 'start', service: 'a', args: [{ timeoutMs: 100 }] });
  t.equal((await rec.status('b')).state, 'down', 'the inner fake acted');

  const over = new RecordingServices(new FailingServices('io'));
  t.has(await failure(over.up('x')), { reason: 'io' });
  t.same(over.lines(), ['up x'], 'a failed request is still recorded');
});

t.test('FailingServices rejects every verb with a ServiceError', async (t) => {
  const sv: ServiceControl = new FailingServices();
  for (const call of [() => sv.status('s'), () => sv.up('s'), () => sv.down('s'), () => sv.once('s'), () => sv.signal('s', 'TERM'), () => sv.start('s'), () => sv.stop('s'), () => sv.restart('s'), () => sv.exit('s'), () => sv.wait('s', 'up')]) {
    const e = await call().then(() => undefined, (e: unknown) => e);
    t.type(e, ServiceError);
    t.equal((e as ServiceError).reason, 'not-running');
    t.equal((e as ServiceError).message, 's: runsv not running');
  }
});
