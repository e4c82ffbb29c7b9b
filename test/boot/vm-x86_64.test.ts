// runit-ts-vm on x86_64 guests: see test/lib/vm-suite.ts.
import { vmSuite } from '../lib/vm-suite.ts';

vmSuite('x86_64');
