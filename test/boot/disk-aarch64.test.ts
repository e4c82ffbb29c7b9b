import { diskSuite } from '../lib/disk-suite.ts';

diskSuite('aarch64');
