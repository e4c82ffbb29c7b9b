// A Debian-based image on x86_64: test/lib/debian-suite.ts.
import { debianSuite } from '../lib/debian-suite.ts';

debianSuite('x86_64');
