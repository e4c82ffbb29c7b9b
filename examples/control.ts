// Restart a service and wait until it is up again (./check included), then print its
// status. Usage: node examples/control.ts SERVICE   (SVDIR names the scan directory)
import { ServiceError, SupervisedServices } from '../src/index.ts';

const name = process.argv[2] ?? 'web';
const sv = new SupervisedServices(); // $SVDIR, else /etc/service; waits $SVWAIT or 7 s
try {
  const before = await sv.status(name);
  const after = await sv.restart(name, { timeoutMs: 5000 });
  console.log(`${name}: pid ${before.pid} -> ${after.pid}, ready: ${after.ready}, log: ${after.log?.state ?? 'none'}`);
} catch (e) {
  if (!(e instanceof ServiceError)) throw e;
  console.error(`${e.message} (${e.reason})`); // e.g. "web: runsv not running (not-running)"
  process.exitCode = 1;
}
