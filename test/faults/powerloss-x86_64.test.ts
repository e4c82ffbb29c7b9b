// Power losses of a x86_64 disk image while services log through svlogd (test/lib/faults-boot.ts).
import { powerLossSuite } from '../lib/faults-boot.ts';

powerLossSuite('x86_64');
