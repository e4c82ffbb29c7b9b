// A Debian-based image on aarch64: test/lib/debian-suite.ts.
import { debianSuite } from '../lib/debian-suite.ts';

debianSuite('aarch64');
