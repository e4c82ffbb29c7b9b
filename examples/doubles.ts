// Test code that drives services without a supervisor: a deploy step that must stop the
// worker before it restarts the web service, checked with the recording double.
import assert from 'node:assert/strict';
import { FailingServices, FakeServices, RecordingServices, type ServiceControl } from '../src/index.ts';

/** The code under test: stop the worker, restart web, start the worker again. */
async function deploy(sv: ServiceControl): Promise<void> {
  await sv.stop('worker', { timeoutMs: 10_000 });
  await sv.restart('web');
  await sv.start('worker');
}

const rec = new RecordingServices(new FakeServices(['web', 'worker']));
await deploy(rec);
assert.deepEqual(rec.lines(), ['stop worker', 'restart web', 'start worker']);
await assert.rejects(deploy(new FailingServices()), { reason: 'not-running' });
console.log('deploy: order checked, failure propagates');
