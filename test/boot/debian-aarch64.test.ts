// The Debian-based image on aarch64 (test/lib/debian-suite.ts): the direct disk boot, reboot,
// power-off and a clean root (make test; the firmware paths: test/long/debian-aarch64.test.ts).
import { debianSuite } from '../lib/debian-suite.ts';

debianSuite('aarch64', 'direct');
