// Reliability, the long run (make reliability only, about 8 minutes): 10,000 generated
// image specs and 10,000 service-builder template files, 20 of the invalid ones of each
// through the commands. The case: test/lib/inputs-suite.ts.
import t from 'tap';
import { BIN, haveBin } from '../lib/host.ts';
import { inputsSuite } from '../lib/inputs-suite.ts';

if (!haveBin()) t.fail(`${BIN} is missing: run make build`);

inputsSuite(t, 10_000, 20);
