// runit-ts-vm on aarch64 guests: see test/lib/vm-suite.ts.
import { vmSuite } from '../lib/vm-suite.ts';

vmSuite('aarch64');
