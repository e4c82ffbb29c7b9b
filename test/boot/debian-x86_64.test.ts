// The Debian-based image on x86_64 (test/lib/debian-suite.ts): the direct disk boot, reboot,
// power-off and a clean root (make test; the firmware paths: test/long/debian-x86_64.test.ts).
import { debianSuite } from '../lib/debian-suite.ts';

debianSuite('x86_64', ['direct']);
