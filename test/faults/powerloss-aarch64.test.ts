// Power losses of a aarch64 disk image while services log through svlogd (test/lib/faults-boot.ts).
import { powerLossSuite } from '../lib/faults-boot.ts';

powerLossSuite('aarch64');
