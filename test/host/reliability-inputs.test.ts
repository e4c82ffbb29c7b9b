// Reliability: generated image specs and service-builder templates, a short run for
// make test (500 of each, 4 of the invalid ones through the commands); make reliability
// runs 10,000 of each (test/reliability/inputs.test.ts). The case: test/lib/inputs-suite.ts.
import t from 'tap';
import { BIN, haveBin } from '../lib/host.ts';
import { inputsSuite } from '../lib/inputs-suite.ts';

if (!haveBin()) t.fail(`${BIN} is missing: run make build`);

inputsSuite(t, 500, 4);
