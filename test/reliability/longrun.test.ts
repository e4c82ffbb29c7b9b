// Reliability, the long run (make reliability only, about 8 minutes): 100,000 restarts
// of 500 crash-looping services (runsv restarts a service that ran less than a second
// once a second: 500 in parallel make about 250 a second on two loaded cores) and a day's
// worth of log rotations (1,440, one a minute) of each of 10 loggers, compressed into
// minutes (svlogd s4096). The case, its measures and its bounds: test/lib/longrun-suite.ts.
import t from 'tap';
import { BIN, haveBin } from '../lib/host.ts';
import { longrunSuite } from '../lib/longrun-suite.ts';

if (!haveBin()) t.fail(`${BIN} is missing: run make build`);

t.test('100,000 restarts and a day of rotations: memory, descriptors and timers afterwards', (t) => longrunSuite(t, { crashers: 500, restarts: 100_000, loggers: 10, rotations: 1440, boundMs: 900_000, pssGrowth: 0.1 }));
